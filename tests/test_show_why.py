"""`jobctl show` and `jobctl why` against a real apply, real wrapper runs, real pauses and the zone database.

Runs are made by the wrapper itself, started with the words of the crontab
line apply wrote (what cron's ``sh -c`` runs) or as the catch-up pass starts
it (``--catch-up-run MINUTE``).  Times the tests expect are computed here
from zoneinfo and the clock, never taken from jobctl's own code.  Where a
case needs the jobs to have been applied well before the minute asked
about, the applied definitions are aged as tests/test_operations.py does for
status's missed runs: apply records "applied at" as the file's time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from jobctl.cli.app import app

import runhelp

cli = CliRunner()
BERLIN = ZoneInfo("Europe/Berlin")


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def crontab_text() -> str:
    return Path(os.environ["JOBCTL_CRONTAB"]).read_text()


def line_of(name: str) -> str:
    lines = [ln for ln in crontab_text().splitlines() if re.search(rf"# jobctl:{re.escape(name)} [0-9a-f]{{12}}$", ln)]
    assert len(lines) == 1, crontab_text()
    return lines[0]


def cron_runs(name: str, *extra: str) -> subprocess.CompletedProcess:
    """What cron runs for the job's line: its command words (after the five schedule fields), as sh -c would."""
    words = shlex.split(line_of(name), comments=True)[5:]
    return subprocess.run(words + list(extra), capture_output=True, timeout=120, cwd="/")


def catch_up_run(name: str, minute: datetime) -> subprocess.CompletedProcess:
    """The run the catch-up pass starts for a missed minute (cmdline --catch-up-run), through the real wrapper."""
    return subprocess.run([*runhelp.RUNNER, "--state-dir", state(), "--catch-up-run", str(int(minute.timestamp())),
                           name], capture_output=True, timeout=120)


def apply() -> None:
    result = cli.invoke(app, ["apply"])
    assert result.exit_code == 0, result.output


def age_applied(*names: str, seconds: float = 3600) -> None:
    """As if apply had run ``seconds`` ago (the time status and catch-up read as "applied at")."""
    t = time.time() - seconds
    for name in names:
        os.utime(os.path.join(state(), "applied", name + ".json"), (t, t))


def why(*args: str) -> dict:
    result = cli.invoke(app, ["why", *args, "--json"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def why_text(*args: str) -> list[str]:
    result = cli.invoke(app, ["why", *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout.splitlines()


def z(t: datetime | float) -> str:
    """The run record's time format."""
    ts = t.timestamp() if isinstance(t, datetime) else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def utc_text(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def cron_daemon_pid() -> int | None:
    """A cron daemon of this machine, read from /proc here (independently of jobctl)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm in ("cron", "crond") and stat not in ("Z", "X"):
            return int(entry)
    return None


def minute_of(ts: float) -> datetime:
    return datetime.fromtimestamp(ts - ts % 60, timezone.utc)


# --- show ---------------------------------------------------------------------------------------

def test_show_gives_each_value_with_the_file_and_line_it_comes_from(write_job):
    defaults = write_job("_defaults.yaml", "# shared\nenv:\n  PATH: /usr/bin:/bin\ntimeout: 30m\n")
    job = write_job("report.yaml", 'description: Nightly report\nschedule: "0 12 * * *"\ntimezone: Europe/Berlin\n'
                                   'command: [echo, hi]\nenv:\n  REPORT_DIR: /srv\ntimeout: 1h\n')
    apply()
    shown = json.loads(cli.invoke(app, ["show", "report", "--json"]).stdout)

    def line_in(path: Path, text: str) -> int:
        return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.lstrip().startswith(text))

    o = shown["origins"]
    assert o["timeout"] == {"from": "job file", "path": str(job), "line": line_in(job, "timeout:"), "column": 1}
    assert shown["definition"]["timeout"] == 3600  # the job's own 1h wins over the defaults' 30m
    assert o["env.PATH"] == {"from": "defaults", "path": str(defaults), "line": line_in(defaults, "PATH:"),
                             "column": 3}
    assert o["env.REPORT_DIR"]["from"] == "job file" and o["env.REPORT_DIR"]["line"] == line_in(job, "REPORT_DIR:")
    assert shown["definition"]["env"] == {"PATH": "/usr/bin:/bin", "REPORT_DIR": "/srv"}
    assert o["shell"] == {"from": "default", "path": None, "line": None, "column": None}
    assert shown["definition"]["shell"] == "/bin/sh" and shown["definition"]["kill_grace"] == 10
    assert o["name"]["from"] == "file name"
    assert shown["state"] == "ok" and shown["differences"] == []
    assert shown["crontab"]["line"] == line_of("report")
    assert shown["crontab"]["hash"] == shown["crontab"]["applied_hash"] and shown["crontab"]["drift"] is None

    # the next five noons in Berlin, after now, in both zones
    now = datetime.now(BERLIN)
    noons = []
    day = now.date()
    while len(noons) < 5:
        t = datetime(day.year, day.month, day.day, 12, 0, tzinfo=BERLIN)
        if t > now:
            noons.append(t)
        day += timedelta(days=1)
    assert [r["utc"] for r in shown["next_runs"]] == [z(t) for t in noons]
    assert [r["job_zone"] for r in shown["next_runs"]] == [t.isoformat() for t in noons]
    assert [r["server_zone"] for r in shown["next_runs"]] == [t.astimezone().isoformat() for t in noons]

    text = cli.invoke(app, ["show", "report"]).stdout
    assert f"timeout       1h   ({job}:{line_in(job, 'timeout:')})" in text
    assert f"env.PATH      /usr/bin:/bin   ({defaults}:{line_in(defaults, 'PATH:')})" in text
    assert "shell         /bin/sh   (default)" in text
    assert line_of("report") in text
    assert noons[0].strftime("%Y-%m-%d %H:%M CE") in text


def test_show_says_how_the_job_file_and_the_crontab_differ_from_what_was_applied(write_job):
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    apply()
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\ntimeout: 2m\n')
    shown = json.loads(cli.invoke(app, ["show", "a", "--json"]).stdout)
    assert shown["state"] == "changed" and shown["changed"] == ["timeout"]
    assert shown["differences"] == [{"key": "timeout", "applied": None, "file": 120}]
    assert "timeout       applied - (none)  ->  file 2m" in cli.invoke(app, ["show", "a"]).stdout

    apply()
    path = Path(os.environ["JOBCTL_CRONTAB"])
    path.write_text(path.read_text().replace("*/5 * * * * ", "0 0 1 1 * "))
    shown = json.loads(cli.invoke(app, ["show", "a", "--json"]).stdout)
    assert shown["state"] == "edited"
    assert shown["crontab"]["line"].startswith("0 0 1 1 * ") and "edited by hand" in shown["crontab"]["drift"]


def test_show_an_unknown_job_fails_with_one_line(write_job):
    write_job("backup.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    result = cli.invoke(app, ["show", "bakup"])
    assert result.exit_code == 1
    assert result.stderr == "jobctl: no job named 'bakup' in " + os.environ["JOBCTL_JOBS_DIR"] + \
        " or the crontab; did you mean 'backup'?\n"


# --- why: a run was recorded ------------------------------------------------------------------

def test_why_due_and_ran_names_the_run(write_job):
    write_job("tick.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    assert cron_runs("tick").returncode == 0
    (row,) = runhelp.rows(state(), "tick")
    minute = minute_of(row["scheduled_for"])
    for args in (["--at", z(minute).replace(".000", "")], []):  # an instant, and the default (the latest)
        out = why("tick", *args)
        assert out["reason"] == "ran" and out["due"] and out["ran"]
        assert out["at"] == z(minute) and [r["id"] for r in out["runs"]] == [row["id"]]
        assert out["runs"][0]["status"] == "succeeded"
    lines = why_text("tick")
    assert lines[0] == (f"tick was due at {utc_text(minute.timestamp())} and ran: run {row['id']} started "
                        f"{utc_text(row['started_at'])}, succeeded (exit 0)")
    assert all(ln.startswith("  - ") for ln in lines[1:])


def test_why_two_runs_for_one_minute_are_told_apart(write_job, tmp_path):
    """The line twice in a crontab: the verdict names the last run with its own result, and that it ran twice."""
    flag = tmp_path / "ran-once"
    write_job("tick.yaml", 'schedule: "* * * * *"\n'
                           f'command: "if [ -e {flag} ]; then exit 3; fi; touch {flag}"\n')
    apply()
    for _ in range(3):  # both runs inside one minute
        flag.unlink(missing_ok=True)
        cron_runs("tick")
        cron_runs("tick")
        rows = sorted(runhelp.rows(state(), "tick"), key=lambda r: r["id"])[-2:]
        if rows[0]["scheduled_for"] == rows[1]["scheduled_for"]:
            break
    else:
        pytest.skip("could not start two runs inside one minute")
    first, second = sorted(rows, key=lambda r: r["id"])
    assert (first["status"], second["status"]) == ("succeeded", "failed")
    out = why("tick", "--at", z(minute_of(second["scheduled_for"])))
    assert out["reason"] == "ran"
    assert f"ran 2 times, the last: run {second['id']} " in out["verdict"] and "failed (exit 3)" in out["verdict"]
    assert f"run {first['id']} " not in out["verdict"]
    assert any("it ran more than once" in line for line in out["evidence"])


def test_why_paused_says_since_when(write_job):
    write_job("tick.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    before = int(time.time())
    assert cli.invoke(app, ["pause", "tick"]).exit_code == 0
    after = int(time.time()) + 1
    assert cron_runs("tick").returncode == 0
    (row,) = runhelp.rows(state(), "tick")
    assert row["status"] == "skipped"
    out = why("tick", "--at", z(minute_of(row["scheduled_for"])))
    assert out["reason"] == "paused" and out["due"] and not out["ran"]
    since = re.search(r"paused since (\S+ \S+) UTC", out["verdict"] + " ".join(out["evidence"]))
    assert since is not None
    when = datetime.strptime(since.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    assert before <= when <= after
    assert f"recorded as skipped, run {row['id']}" in out["verdict"]


def test_why_skipped_by_lock_names_the_run_that_held_it(write_job):
    write_job("slow.yaml", 'schedule: "* * * * *"\ncommand: "sleep 60"\nconcurrency: forbid\n')
    apply()
    holder = runhelp.start(state(), runhelp.job("slow", "sleep 60"))  # by hand (jobctl run): no scheduled minute
    try:
        first = runhelp.wait_for(lambda: [r for r in runhelp.rows(state(), "slow") if r["pid"]])[0]
        assert cron_runs("slow").returncode == 75  # forbid: skipped
        skip = [r for r in runhelp.rows(state(), "slow") if r["status"] == "skipped"][0]
        out = why("slow", "--at", z(minute_of(skip["scheduled_for"])))
        assert out["reason"] == "skipped-lock" and not out["ran"]
        assert f"run {first['id']} (started {utc_text(first['started_at'])}) still held its lock (run {skip['id']})" \
            in out["verdict"]
        assert any(e.startswith(f"run {first['id']} (manual, started") and e.endswith("still running")
                   for e in out["evidence"])
    finally:
        os.killpg(first["pid"], signal.SIGKILL)
        holder.communicate(timeout=30)


def test_why_a_catch_up_run_is_named_as_one(write_job):
    write_job("tick.yaml", 'schedule: "* * * * *"\ncommand: "true"\ncatch_up: 1h\n')
    apply()
    missed = minute_of(time.time() - 20 * 60)
    assert catch_up_run("tick", missed).returncode == 0
    (row,) = runhelp.rows(state(), "tick")
    out = why("tick", "--at", "20m")
    assert out["reason"] == "ran" and out["at"] == z(missed)
    assert f"made up by the catch-up pass: run {row['id']}" in out["verdict"]


# --- why: nothing recorded ----------------------------------------------------------------------

def test_why_not_due_names_the_nearest_times(write_job):
    write_job("nightly.yaml", 'schedule: "0 3 * * *"\ntimezone: UTC\ncommand: "true"\n')
    apply()
    out = why("nightly", "--at", "2026-12-01T10:17Z")
    assert out["reason"] == "not-due" and not out["due"]
    assert out["verdict"] == "nightly was not due at 2026-12-01 10:17 UTC (2026-12-01 10:17:00 UTC)"
    assert "it was last due before that at 2026-12-01 03:00 UTC (2026-12-01 03:00:00 UTC)" in out["evidence"]
    assert "it was next due after that at 2026-12-02 03:00 UTC (2026-12-02 03:00:00 UTC)" in out["evidence"]


def test_why_a_fixed_time_skipped_by_spring_forward_runs_after_the_jump(write_job):
    write_job("berlin.yaml", 'schedule: "30 2 * * *"\ntimezone: Europe/Berlin\ncommand: "true"\n')
    write_job("wild.yaml", 'schedule: "30 * * * *"\ntimezone: Europe/Berlin\ncommand: "true"\n')
    apply()
    # 02:30 on 29 March 2026 does not exist in Berlin: the wall time does not survive a round trip
    asked = datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN)
    assert asked.astimezone(timezone.utc).astimezone(BERLIN).replace(tzinfo=None) != asked.replace(tzinfo=None)
    jump = datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)  # the first minute after the jump
    before = jump.astimezone(timezone.utc) - timedelta(minutes=1)
    assert jump.utcoffset() == timedelta(hours=2) and before.astimezone(BERLIN).strftime("%H:%M %Z") == "01:59 CET"
    assert catch_up_run("berlin", jump).returncode == 0  # a real run recorded for that minute
    (row,) = runhelp.rows(state(), "berlin")

    out = why("berlin", "--at", "2026-03-29T02:30")
    assert out["reason"] == "dst-skipped" and out["due"] and out["ran"]
    assert out["at"] == z(jump) and out["wall"] == "2026-03-29T02:30"
    assert [r["id"] for r in out["runs"]] == [row["id"]]
    assert "right after the jump, at 2026-03-29 03:00 CEST" in out["verdict"]
    assert any("clocks jumped forward at 01:00 UTC from 02:00 CET (UTC+01:00) to 03:00 CEST (UTC+02:00)" in e
               for e in out["evidence"])

    wild = why("wild", "--at", "2026-03-29T02:30")
    assert wild["reason"] == "dst-skipped" and not wild["due"] and not wild["ran"] and wild["at"] is None
    assert "cron makes no run for a skipped time of a job with * in its minute or hour field" in wild["verdict"]


def test_why_a_repeated_hour_runs_a_fixed_time_job_once(write_job):
    write_job("berlin.yaml", 'schedule: "30 2 * * *"\ntimezone: Europe/Berlin\ncommand: "true"\n')
    write_job("wild.yaml", 'schedule: "30 * * * *"\ntimezone: Europe/Berlin\ncommand: "true"\n')
    apply()
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0).astimezone(timezone.utc)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1).astimezone(timezone.utc)
    assert second - first == timedelta(hours=1)

    out = why("berlin", "--at", "2026-10-25T02:30")
    assert out["reason"] == "dst-doubled" and out["at"] == z(first)
    assert "cron runs it once, at the first pass" in out["verdict"]
    assert any(f"at 2026-10-25 02:30 CEST ({utc_text(first.timestamp())}) and at 2026-10-25 02:30 CET "
               f"({utc_text(second.timestamp())})" in e for e in out["evidence"])

    at_second = why("berlin", "--at", z(second))
    assert at_second["reason"] == "dst-doubled" and not at_second["due"]
    assert "the second pass of 02:30" in at_second["verdict"]

    wild = why("wild", "--at", "2026-10-25T02:30")
    assert wild["reason"] == "dst-doubled" and "at both passes" in wild["verdict"]


def test_why_cron_did_not_run(write_job):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("b.yaml", 'schedule: "*/2 * * * *"\ncommand: "true"\n')
    apply()
    age_applied("a", "b")
    asked = minute_of(time.time() - 10 * 60)
    asked -= timedelta(minutes=asked.minute % 2)  # a minute b was due too
    out = why("a", "--at", z(asked))
    assert out["reason"] == "cron-not-running" and out["due"] and not out["ran"]
    assert any(e.startswith("no jobctl job recorded a run started by cron for that minute while 1 other job was "
                            "due (b)") for e in out["evidence"])
    pid = cron_daemon_pid()
    daemon = [e for e in out["evidence"] if e.startswith("cron daemon now: ")]
    if pid is None:
        assert daemon == ["cron daemon now: not running (no cron or crond process in /proc)"]
        assert out["verdict"].endswith("the cron daemon is not running now")
    else:
        assert len(daemon) == 1 and f"pid {pid}" in daemon[0]


def test_why_outside_the_catch_up_window(write_job):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\ncatch_up: 5m\n')
    write_job("b.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    age_applied("a", "b")
    assert cron_runs("b").returncode == 0  # cron is back now: b ran
    (back,) = runhelp.rows(state(), "b")
    asked = minute_of(time.time() - 30 * 60)
    out = why("a", "--at", z(asked))
    assert out["reason"] == "outside-catch-up" and not out["ran"]
    closed = asked.timestamp() + 300
    assert f"closed {utc_text(closed)}" in out["verdict"]
    assert any(f"cron started no jobctl job again until {utc_text(back['started_at'])} (run {back['id']} of b)"
               in e for e in out["evidence"])


def test_why_line_not_installed(write_job):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("off.yaml", 'schedule: "* * * * *"\ncommand: "true"\nenabled: false\n')
    before = time.time()
    apply()
    after = time.time()
    out = why("a", "--at", "5m")
    assert out["reason"] == "not-installed" and out["due"]
    stamp = re.search(r"applied at (\S+ \S+) UTC, after that time", out["verdict"])
    assert stamp is not None
    applied_at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    assert int(before) <= applied_at <= after

    off = why("off", "--at", "5m")
    assert off["reason"] == "not-installed" and "(enabled: false: a disabled job is not installed)" in off["verdict"]

    assert cli.invoke(app, ["uninstall"]).exit_code == 0
    gone = why("a", "--at", "1m")
    assert gone["reason"] == "not-installed"
    assert f"a is not in {os.environ['JOBCTL_CRONTAB']} now" in gone["verdict"]


def test_why_crontab_drifted_while_cron_ran_the_others(write_job):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("b.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    age_applied("a", "b")
    assert cron_runs("b").returncode == 0
    (ran,) = runhelp.rows(state(), "b")
    # someone edits a's line by hand: it no longer runs every minute
    path = Path(os.environ["JOBCTL_CRONTAB"])
    path.write_text("\n".join("0 0 1 1 * " + ln.split(" ", 5)[5] if "# jobctl:a " in ln else ln
                              for ln in path.read_text().split("\n")))
    minute = minute_of(ran["scheduled_for"])
    time.sleep(max(0.0, minute.timestamp() + 61 - time.time()))  # that minute is over, with its minute of grace
    out = why("a", "--at", z(minute))
    assert out["reason"] == "drifted" and out["due"] and not out["ran"]
    assert f"cron was running then: 1 other job recorded a run for that minute (b: run {ran['id']})" in out["evidence"]
    assert "edited by hand" in out["verdict"]


def test_why_bad_input_is_one_line_and_a_documented_code(write_job):
    write_job("alpha.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    bad = cli.invoke(app, ["why", "alpha", "--at", "yesterday"])
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr.startswith("jobctl: --at: 'yesterday' is neither a duration ago") and bad.stderr.count("\n") == 1
    unknown = cli.invoke(app, ["why", "alpah"])
    assert unknown.exit_code == 1 and unknown.stderr == \
        f"jobctl: no job named 'alpah' in {os.environ['JOBCTL_JOBS_DIR']} or the crontab; did you mean 'alpha'?\n"


@pytest.mark.parametrize("command", ["show", "why"])
def test_plain_text_when_piped_and_no_colour(write_job, command, monkeypatch):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    apply()
    monkeypatch.setenv("NO_COLOR", "1")
    out = cli.invoke(app, [command, "a"]).stdout
    assert "\x1b" not in out and out.isascii()
