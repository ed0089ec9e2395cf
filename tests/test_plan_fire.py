"""`jobctl plan` shows when added and changed jobs fire, before and after, with the runs DST moves flagged.

Every expected time here comes from zoneinfo arithmetic in this file and the
rule cron(8)'s main loop follows (tests/cron_oracle.py has it from Debian's
cron.c): a wall time that happens once runs then; one a spring-forward jump
skips runs, for a fixed-time job (no * in minute or hour), at the first minute
after the jump and, for a job with *, not at all; one that happens twice
(clocks going back) runs once, at the first pass, for a fixed-time job and at
both for a job with *.  Never from jobctl's clock.  The CLI runs as a real
process with TZ set, so the server's zone is a real second zone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc
MINUTE = timedelta(minutes=1)


def jobctl(*args: str, tz: str = "America/New_York") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TZ": tz, "NO_COLOR": "1"})


def plan_json(*args: str, tz: str = "America/New_York") -> dict[str, Any]:
    done = jobctl("plan", "--json", *args, tz=tz)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def fires(plan: dict[str, Any], name: str) -> dict[str, Any]:
    (job,) = [j for j in plan["jobs"] if j["name"] == name]
    return job["fires"]


def job_file(jobs_dir: Path, name: str, schedule: str, zone: str | None = "Europe/Berlin", command: str = "true"):
    text = f'schedule: "{schedule}"\ncommand: "{command}"\n' + (f"timezone: {zone}\n" if zone else "")
    (jobs_dir / f"{name}.yaml").write_text(text)


def apply() -> None:
    done = jobctl("apply")
    assert done.returncode == 0, done.stderr


# --- the independent computation -------------------------------------------------------------------

def instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """UTC instants whose wall time in ``zone`` is ``wall`` (zoneinfo's folds, checked by the round trip)."""
    found = set()
    for fold in (0, 1):
        u = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if u.astimezone(zone).replace(tzinfo=None) == wall:
            found.add(u)
    return sorted(found)


def after_jump(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first UTC minute whose wall time in ``zone`` is past ``wall`` (a wall time in a gap)."""
    u = wall.replace(tzinfo=zone).astimezone(UTC) - timedelta(hours=3)
    while u.astimezone(zone).replace(tzinfo=None) <= wall:
        u += MINUTE
    return u


def expected(walls: list[datetime], zone: ZoneInfo, fixed: bool, start: datetime, count: int = 5):
    """[(utc, dst flag)] of the first ``count`` runs after ``start`` for these matching wall times, cron's way."""
    out = []
    for wall in walls:
        real = instants(wall, zone)
        if len(real) == 2:
            flag = "repeated-once" if fixed else "repeated-twice"
            out += [(real[0], flag)] if fixed else [(u, flag) for u in real]
        elif real:
            out.append((real[0], None))
        elif fixed:
            out.append((after_jump(wall, zone), "shifted"))
    return sorted(o for o in out if o[0] > start)[:count]


def daily(hour: int, minute: int, first: datetime, days: int = 10) -> list[datetime]:
    return [first.replace(hour=hour, minute=minute) + timedelta(days=d) for d in range(days)]


def iso_in(u: datetime, zone: ZoneInfo | None) -> str:
    return (u.astimezone(zone) if zone else u.astimezone()).isoformat()


def z(u: datetime) -> str:
    return u.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def check_runs(runs: list[dict[str, Any]], want: list[tuple[datetime, str | None]], zone: ZoneInfo,
               server: ZoneInfo) -> None:
    assert [(r["utc"], r["dst"]) for r in runs] == [(z(u), flag) for u, flag in want]
    assert [r["job_zone"] for r in runs] == [iso_in(u, zone) for u, _ in want]
    assert [r["server_zone"] for r in runs] == [iso_in(u, server) for u, _ in want]


# --- spring forward --------------------------------------------------------------------------------

def test_a_schedule_moved_into_the_skipped_hour_shows_the_shifted_run(jobs_dir: Path) -> None:
    job_file(jobs_dir, "backup", "0 3 * * *")
    apply()
    job_file(jobs_dir, "backup", "30 2 * * *")
    start = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)
    plan = plan_json("--from", "2026-03-27T00:00Z")
    assert plan["server_zone"] == "America/New_York" and plan["fires_after"] == z(start)
    f = fires(plan, "backup")
    assert f["same"] is False
    assert (f["before"]["schedule"], f["before"]["timezone"]) == ("0 3 * * *", "Europe/Berlin")
    assert (f["after"]["schedule"], f["after"]["timezone"]) == ("30 2 * * *", "Europe/Berlin")
    first = datetime(2026, 3, 27)
    before = expected(daily(3, 0, first), BERLIN, True, start)
    after = expected(daily(2, 30, first), BERLIN, True, start)
    check_runs(f["before"]["runs"], before, BERLIN, NEW_YORK)
    check_runs(f["after"]["runs"], after, BERLIN, NEW_YORK)
    assert [flag for _, flag in before] == [None] * 5
    # 02:30 does not exist on 29 March in Berlin: cron runs it at the jump, 03:00 CEST (01:00 UTC)
    assert [flag for _, flag in after] == [None, None, "shifted", None, None]
    shifted = f["after"]["runs"][2]
    assert shifted["for"] == ["2026-03-29T02:30"] and shifted["job_zone"] == "2026-03-29T03:00:00+02:00"
    assert "02:30" in shifted["note"] and "03:00" in shifted["note"]

    # the text: both zones, the flag on the run's line and why on the next
    done = jobctl("plan", "--from", "2026-03-27T00:00Z")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  backup: 0 3 * * * in Europe/Berlin -> 30 2 * * * in Europe/Berlin" in lines
    u = after[2][0]
    flagged = [i for i, ln in enumerate(lines) if "[DST: shifted]" in ln]
    assert len(flagged) == 1
    line = lines[flagged[0]]
    assert u.astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M %Z") in line  # Sun 2026-03-29 03:00 CEST
    assert u.astimezone(NEW_YORK).strftime("%a %Y-%m-%d %H:%M %Z") in line  # Sat 2026-03-28 21:00 EDT
    assert "02:30 shifted by DST" in lines[flagged[0] + 1]
    assert "\x1b" not in done.stdout


def test_a_job_with_a_star_loses_the_skipped_runs_and_they_are_listed(jobs_dir: Path) -> None:
    job_file(jobs_dir, "hourly", "30 * * * *")
    start = datetime(2026, 3, 29, 0, 10, tzinfo=UTC)
    plan = plan_json("--from", "2026-03-29T00:10Z")
    f = fires(plan, "hourly")
    assert f["before"] is None and f["same"] is False
    walls = [datetime(2026, 3, 29, h, 30) for h in range(24)]
    want = expected(walls, BERLIN, False, start)
    check_runs(f["after"]["runs"], want, BERLIN, NEW_YORK)
    gone = [w for w in walls if not instants(w, BERLIN) and w.replace(tzinfo=BERLIN).astimezone(UTC) <= want[-1][0]]
    assert [s["wall"] for s in f["after"]["dst_skipped"]] == [w.strftime("%Y-%m-%dT%H:%M") for w in gone]
    assert gone == [datetime(2026, 3, 29, 2, 30)]
    lines = jobctl("plan", "--from", "2026-03-29T00:10Z").stdout.splitlines()
    # in its place: after the run at 01:30 CET, before the one at 03:30 CEST
    at = lines.index("      not run: Sun 2026-03-29 02:30  [DST: skipped]")
    assert lines[at - 1].startswith("      Sun 2026-03-29 01:30 CET ")
    assert lines[at + 1].startswith("        skipped by DST: clocks jump from 02:00 to 03:00")
    assert lines[at + 2].startswith("      Sun 2026-03-29 03:30 CEST ")


def test_a_job_in_the_servers_zone_follows_the_same_rules(jobs_dir: Path) -> None:
    job_file(jobs_dir, "local", "30 2 * * *", zone=None)
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    plan = plan_json("--from", "2026-03-28T12:00Z", tz="Europe/Berlin")
    assert plan["server_zone"] == "Europe/Berlin"
    runs = fires(plan, "local")["after"]["runs"]
    want = expected(daily(2, 30, datetime(2026, 3, 28)), BERLIN, True, start)
    check_runs(runs, want, BERLIN, BERLIN)
    assert want[0][1] == "shifted"
    text = jobctl("plan", "--from", "2026-03-28T12:00Z", tz="Europe/Berlin").stdout
    assert "  local: 30 2 * * * in the server's zone (not applied before)" in text
    # one zone: one column
    assert "      Sun 2026-03-29 03:00 CEST  [DST: shifted]" in text


# --- fall back --------------------------------------------------------------------------------------

def test_the_repeated_hour_runs_a_star_job_twice_and_a_fixed_one_once(jobs_dir: Path) -> None:
    job_file(jobs_dir, "every30", "*/30 2 * * *")
    job_file(jobs_dir, "fixed", "30 2 * * *")
    start = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    plan = plan_json("--from", "2026-10-24T12:00Z")
    first = datetime(2026, 10, 25)
    star_walls = sorted(daily(2, 0, first) + daily(2, 30, first))
    star = expected(star_walls, BERLIN, False, start)
    fixed = expected(daily(2, 30, first), BERLIN, True, start)
    check_runs(fires(plan, "every30")["after"]["runs"], star, BERLIN, NEW_YORK)
    check_runs(fires(plan, "fixed")["after"]["runs"], fixed, BERLIN, NEW_YORK)
    # 02:00 and 02:30 happen twice on 25 October: the * job runs at all four, the fixed job once
    assert [flag for _, flag in star] == ["repeated-twice"] * 4 + [None]
    assert [flag for _, flag in fixed] == ["repeated-once"] + [None] * 4
    assert fixed[0][0] == instants(datetime(2026, 10, 25, 2, 30), BERLIN)[0]  # the first pass, CEST
    notes = [r["note"] for r in fires(plan, "every30")["after"]["runs"][:4]]
    assert [n.endswith("this is the first") for n in notes] == [True, True, False, False]
    text = jobctl("plan", "--from", "2026-10-24T12:00Z").stdout
    assert text.count("[DST: repeated hour, runs twice]") == 4
    assert text.count("[DST: repeated hour, runs once]") == 1
    assert "Sun 2026-10-25 02:30 CEST" in text and "Sun 2026-10-25 02:30 CET " in text


# --- what else plan says ----------------------------------------------------------------------------

def test_a_change_that_moves_no_run_lists_the_times_once(jobs_dir: Path) -> None:
    job_file(jobs_dir, "backup", "0 3 * * *")
    apply()
    job_file(jobs_dir, "backup", "0 3 * * *", command="true 2")
    plan = plan_json("--from", "2026-06-01T00:00Z")
    f = fires(plan, "backup")
    assert f["same"] is True and f["before"]["runs"] == f["after"]["runs"] and len(f["after"]["runs"]) == 5
    text = jobctl("plan", "--from", "2026-06-01T00:00Z").stdout
    assert "  backup: 0 3 * * * in Europe/Berlin, as before (this change moves no run)" in text
    assert "before:" not in text


def test_unchanged_removed_and_reboot_jobs(jobs_dir: Path) -> None:
    job_file(jobs_dir, "same", "0 3 * * *")
    job_file(jobs_dir, "gone", "0 4 * * *")
    apply()
    (jobs_dir / "gone.yaml").unlink()
    job_file(jobs_dir, "boot", "@reboot", zone=None)
    plan = plan_json()
    assert {j["name"]: (j["action"], j["fires"] is None) for j in plan["jobs"]} == {
        "same": ("unchanged", True), "gone": ("remove", True), "boot": ("add", False)}
    assert fires(plan, "boot")["after"]["runs"] == [] and fires(plan, "boot")["after"]["cron"] == "@reboot"
    assert "  boot: @reboot (not applied before)" in jobctl("plan").stdout


def test_an_unreadable_applied_definition_is_one_line_not_a_traceback(jobs_dir: Path) -> None:
    job_file(jobs_dir, "backup", "0 3 * * *")
    apply()
    (Path(os.environ["JOBCTL_STATE_DIR"]) / "applied" / "backup.json").write_text("{not json")
    plan = plan_json("--from", "2026-06-01T00:00Z")
    before = fires(plan, "backup")["before"]
    assert before["runs"] == [] and "cannot be read" in before["problem"]
    done = jobctl("plan", "--from", "2026-06-01T00:00Z")
    assert done.returncode == 0 and "Traceback" not in done.stderr + done.stdout
    assert "its applied definition cannot be read" in done.stdout


def test_check_computes_no_fire_times(jobs_dir: Path) -> None:
    job_file(jobs_dir, "backup", "0 3 * * *")
    probe = ("import sys; sys.argv = ['jobctl', *sys.argv[1:]]\nfrom jobctl.cli import app\ntry:\n app.main()\n"
             "except SystemExit as e:\n print('exit', e.code, 'jobctl.install.fire' in sys.modules, file=sys.stderr)")
    for args, fire_loaded in ((["plan", "--check"], False), (["plan", "--check", "--json"], True),
                              (["plan"], True)):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
        code = 0 if args == ["plan"] else 1
        assert done.stderr.splitlines()[-1] == f"exit {code} {fire_loaded}", done.stderr
        assert ("when the added and changed jobs fire" in done.stdout) == (args == ["plan"])
    plan = json.loads(jobctl("plan", "--check", "--json").stdout)
    assert plan["fires_after"] is None and [j["fires"] for j in plan["jobs"]] == [None]


@pytest.mark.parametrize("args", [["--from", "yesterday"], ["--from", "2026-13-01"], ["--from", "\x1b[31m"],
                                  ["--check", "--from", "2026-01-01"]])
def test_a_bad_from_is_a_usage_error(jobs_dir: Path, args: list[str]) -> None:
    job_file(jobs_dir, "backup", "0 3 * * *")
    done = jobctl("plan", *args)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "--from" in done.stderr and "\x1b" not in done.stderr


@pytest.mark.parametrize("moment", ["9999-12-31T23:59Z", "9998-12-31T23:59-12:00", "0001-01-02T00:00+14:00"])
def test_from_outside_the_years_fire_times_can_reach_is_a_usage_error(write_job, moment):
    write_job("a.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    done = jobctl("plan", "--from", moment)
    assert done.returncode == 2 and "years 1970 to 9998" in done.stderr, done.stderr
