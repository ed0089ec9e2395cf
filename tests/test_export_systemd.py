"""`jobctl export systemd`: the cron → OnCalendar conversion proven with systemd-analyze, and the units.

The calendar conversion is checked against systemd itself: for every schedule
of the corpus, the next 100 elapse times `systemd-analyze calendar` computes
from fixed base times equal jobctl's next runs (Schedule.next_runs, which
follows Debian's cron).  The units are checked as text, with
`systemd-analyze verify`, and through the configuration systemd parses out of
them (its debug dump), so quoting and `%`/`$` escaping are systemd's reading,
not ours.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from export_corpus import JOB_FILES, SCHEDULES
from typer.testing import CliRunner

from jobctl import applied, clock, paths
from jobctl.cli.app import app
from jobctl.export import MARK
from jobctl.export import systemd as sd
from jobctl.install import compile
from jobctl.jobs import loader, schedule
from jobctl.runner import cmdline

ROOT = Path(__file__).resolve().parent.parent
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze missing (apt-get install systemd; "
                                   ".ci/run installs it)")
cli = CliRunner()
#: fixed base times: a year's start, and mid-minute just before the end of a day, a month, a
#: year and a leap day, where a carry runs through several fields at once
BASES = (
    datetime(2026, 1, 1, tzinfo=timezone.utc),
    datetime(2026, 3, 17, 23, 56, 30, tzinfo=timezone.utc),
    datetime(2026, 6, 30, 21, 58, 30, tzinfo=timezone.utc),
    datetime(2027, 12, 31, 23, 59, 30, tzinfo=timezone.utc),
    datetime(2028, 2, 28, 23, 59, 30, tzinfo=timezone.utc),
)
#: systemd computes calendar events up to about 2200; a rare schedule's 100 runs reach beyond
SYSTEMD_LAST_YEAR = 2190
_ELAPSE = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$", re.M)


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def elapses(lines: list[str], base: datetime, count: int) -> list[datetime]:
    """The first ``count`` times after ``base`` at which a timer with these OnCalendar= lines elapses."""
    proc = subprocess.run(
        [ANALYZE, "calendar", f"--base-time=@{int(base.timestamp())}", f"--iterations={count}", *lines],
        capture_output=True, text=True, env={**os.environ, "TZ": "UTC"},
    )
    assert proc.returncode == 0, proc.stderr
    times = {datetime.fromisoformat(m).replace(tzinfo=timezone.utc) for m in _ELAPSE.findall(proc.stdout)}
    return sorted(times)[:count]


def dump(path: Path) -> str:
    """The unit as systemd loaded it (systemd-analyze verify prints its dump at debug level)."""
    proc = subprocess.run([ANALYZE, "verify", "--man=no", str(path)], capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "debug"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def dumped(text: str, key: str) -> list[str]:
    return re.findall(rf"^\t+{re.escape(key)}: (.*)$", text, re.M)


def unquote_command_line(text: str) -> list[str]:
    """Split the dump's `Command Line:` the way systemd quoted it (shell_maybe_quote)."""
    words, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            i += 1
            word = ""
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                word += text[i]
                i += 1
            i += 1
        else:
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            word, i = text[i:end], end
        # `$$` stays in the parsed unit; systemd turns it into `$` when it runs the command
        words.append(word.replace("$$", "$"))
    return words


def export(*args: str):
    return cli.invoke(app, ["export", "systemd", *args])


@pytest.fixture
def corpus(write_job):
    for name, text in JOB_FILES.items():
        write_job(name, text)
    return {j.name: j for j in loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])}


@pytest.fixture
def units(corpus, tmp_path):
    result = export("--out", str(tmp_path / "units"))
    assert result.exit_code == 0, result.output
    return tmp_path / "units"


# --- the calendar conversion -------------------------------------------------------------------

def test_the_corpus_is_large_and_varied():
    assert len(SCHEDULES) >= 50
    two_lines = [s for s in SCHEDULES if len(sd.calendar(schedule.parse(s).cron)) == 2]
    assert len(two_lines) >= 4


@needs_analyze
@pytest.mark.parametrize("text", SCHEDULES)
def test_systemd_elapses_exactly_when_cron_runs(text):
    sched = schedule.parse(text)
    lines = sd.calendar(sched.cron)
    for base in BASES:
        got = elapses(lines, base, 100)
        want = sched.next_runs(base, 100)
        assert len(got) == 100 or got[-1].year >= SYSTEMD_LAST_YEAR, (lines, got[-3:])
        assert got == want[:len(got)], (lines, base)


def test_calendar_never_uses_systemd_repetition():
    """`a/step` is mis-stepped by systemd 252 across a double carry; every step is spelled as values."""
    for text in SCHEDULES:
        assert not any("/" in line for line in sd.calendar(schedule.parse(text).cron)), text


@pytest.mark.parametrize(("cron", "lines"), [
    ("*/15 * * * *", ["*-*-* *:00,15,30,45:00"]),
    ("5-55/10 * * * *", ["*-*-* *:05,15,25,35,45,55:00"]),
    ("0 9-17/2 * * *", ["*-*-* 09,11,13,15,17:00:00"]),
    ("0 22-23,0-6 * * *", ["*-*-* 00..06,22,23:00:00"]),
    ("0 0 1 */3 *", ["*-01,04,07,10-01 00:00:00"]),
    ("0 0 15 feb-apr *", ["*-02..04-15 00:00:00"]),
    ("0 0 * * 7", ["Sun *-*-* 00:00:00"]),
    ("0 0 * * sat,sun", ["Sat,Sun *-*-* 00:00:00"]),
    ("0 8 * * 5-7", ["Fri..Sun *-*-* 08:00:00"]),
    ("0 0 * * 1-5/2", ["Mon,Wed,Fri *-*-* 00:00:00"]),
    ("0 8 * * 0-7", ["*-*-* 08:00:00"]),
    # both restricted, neither starting with '*': either day matches, so two lines
    ("0 12 13 * 5", ["Fri *-*-* 12:00:00", "*-*-13 12:00:00"]),
    ("30 2 28-31 2 sun", ["Sun *-02-* 02:30:00", "*-02-28..31 02:30:00"]),
    # a side that is every day makes the OR every day
    ("0 0 1,* * 1", ["*-*-* 00:00:00"]),
    # a day field starting with '*' (even */2): both must match, one line
    ("0 0 */2 * 1", ["Mon *-*-01,03,05,07,09,11,13,15,17,19,21,23,25,27,29,31 00:00:00"]),
    ("0 0 *,1 * 1", ["Mon *-*-* 00:00:00"]),
])
def test_calendar_spelling(cron, lines):
    assert sd.calendar(cron) == lines


def test_calendar_appends_the_time_zone():
    assert sd.calendar("17 3 * * *", "Europe/Berlin") == ["*-*-* 03:17:00 Europe/Berlin"]
    assert sd.calendar("0 12 13 * 5", "UTC") == ["Fri *-*-* 12:00:00 UTC", "*-*-13 12:00:00 UTC"]


# --- time zones and clock changes ---------------------------------------------------------------

def _transitions(zone_name: str, year: int) -> list[datetime]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    t = datetime(year, 1, 1, tzinfo=timezone.utc)
    out = []
    while t.year == year:
        if t.astimezone(zone).utcoffset() != (t + timedelta(hours=1)).astimezone(zone).utcoffset():
            out.append(t)
        t += timedelta(hours=1)
    return out


DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe")
DST_SCHEDULES = ("30 2 * * *", "15 2 * * *", "30 * * * *", "*/20 1-3 * * *", "17 3 * * *", "45 1 * * *",
                 "0 */2 * * *", "30 2 * * 0", "0 12 * * *")


@needs_analyze
@pytest.mark.parametrize("zone", DST_ZONES)
@pytest.mark.parametrize("cron", DST_SCHEDULES)
def test_clock_changes_differ_from_cron_exactly_where_the_export_warns(cron, zone):
    """Around every 2026 transition: systemd's elapses vs the minutes cron(8) runs the job (clock.due)."""
    fields = schedule.compile_fields(cron)
    lines = sd.calendar(cron, zone)
    for transition in _transitions(zone, 2026):
        start, end = transition - timedelta(hours=5), transition + timedelta(hours=6)
        cron_runs = []
        t = start
        while t < end:
            if clock.due(fields, zone, t):
                cron_runs.append(t)
            t += timedelta(minutes=1)
        systemd_runs = [t for t in elapses(lines, start - timedelta(seconds=1), 40) if t < end]
        notes = sd.dst_notes(cron, zone, transition - timedelta(hours=2), days=1)
        assert set(systemd_runs) <= set(cron_runs), (transition, systemd_runs, cron_runs)
        if not notes:
            assert systemd_runs == cron_runs, (transition, notes)
        else:
            assert systemd_runs != cron_runs, (transition, notes)


@needs_analyze
def test_time_zone_without_clock_change_trouble_matches_next_runs():
    from zoneinfo import ZoneInfo

    for cron, zone in (("17 3 * * *", "Europe/Berlin"), ("0 12 13 * 5", "America/New_York"),
                       ("*/30 9-17 * * 1-5", "Asia/Tokyo"), ("0 0 1 * *", "Australia/Sydney")):
        base = datetime(2026, 1, 1, tzinfo=timezone.utc)
        assert sd.dst_notes(cron, zone, base) == []
        want = schedule.parse(cron).next_runs(base.astimezone(ZoneInfo(zone)), 100)
        assert elapses(sd.calendar(cron, zone), base, 100) == [w.astimezone(timezone.utc) for w in want]


def test_dst_notes():
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    skipped = ("clock change in Europe/Berlin: a run due in the time the clocks skip is not made up by systemd "
               "(cron runs it right after the jump)")
    repeated = ("clock change in Europe/Berlin: in the time the clocks repeat systemd runs it once "
                "(cron runs it in both passes)")
    assert sd.dst_notes("30 2 * * *", "Europe/Berlin", base) == [skipped]
    assert sd.dst_notes("30 * * * *", "Europe/Berlin", base) == [repeated]
    assert sd.dst_notes("30 2 * * 1-5", "Europe/Berlin", base) == []  # Berlin changes on Sundays
    assert sd.dst_notes("17 3 * * *", "Europe/Berlin", base) == []
    assert sd.dst_notes("30 * * * *", "Asia/Tokyo", base) == []


# --- the units ---------------------------------------------------------------------------------

def test_every_mapping_in_the_units_of_a_job_with_every_key(units, corpus, jobs_dir):
    wrapper = " ".join(cmdline.interpreter_argv())  # python -I -S .../jobctl/runner/start.py
    assert (units / "jobctl-full.service").read_text() == f"""\
{MARK} systemd from {jobs_dir}/full.yaml:1; edits are overwritten by the next export.
[Unit]
Description=jobctl job full: Every key: 50%% of the disk, "quoted", back\\slash
Documentation=man:jobctl(1)
# as cron.service: a run at boot (@reboot, a catch-up) waits for these
After=remote-fs.target nss-user-lookup.target

[Service]
Type=oneshot
# The wrapper runs the job as defined in {state()}/applied/full.json (recorded by jobctl export systemd --record):
# lock, retries, timeout, run log and notifications as under cron.
ExecStart={wrapper} --timer --no-chain --state-dir {state()} full
# user: root: the wrapper starts the job as root, as under /etc/cron.d/jobctl; no User= here, or the wrapper \
could not use the state directory
WorkingDirectory=-/srv/app data
# The wrapper gives the job exactly these variables; they are shown by systemctl show to every user, so keep \
secrets out of env.
Environment="LC_ALL=C.UTF-8"
Environment="GREETING=hello world"
Environment="PERCENT=100%%"
Environment="QUOTES=say \\"hi\\" and 'bye'"
Environment="BACKSLASH=C:\\\\path\\\\"
Environment="DOLLAR=$HOME and ${{USER}}"
Environment="UNICODE=grüße ✓"
# SIGTERM to the wrapper only: it forwards it to the job's process group, kills it after
# kill_grace and records the run; systemd kills what is left after TimeoutStopSec=.
KillMode=mixed
TimeoutStopSec=1m30s
TimeoutStartSec=2h20m30s
SuccessExitStatus=75
"""
    assert (units / "jobctl-full.timer").read_text() == f"""\
{MARK} systemd from {jobs_dir}/full.yaml:1; edits are overwritten by the next export.
[Unit]
Description=Schedule of jobctl job full (30 2 * * 1-5)

[Timer]
OnCalendar=Mon..Fri *-*-* 02:30:00 Europe/Berlin
# cron starts jobs on the minute; systemd's default would be up to a minute late
AccuracySec=1s
RandomizedDelaySec=5m
Persistent=true

[Install]
WantedBy=timers.target
"""


def test_timeout_bounds_every_attempt_and_delay():
    job = loader.load_jobs(_dir_with("t.yaml", "schedule: '@daily'\ncommand: x\ntimeout: 10m\nkill_grace: 5s\n"
                                     "retries: {attempts: 3, delay: 1m, backoff: 2, max_delay: 3m}\n"))[0]
    # 4 attempts of 10m + 5s, retry delays 1m + 2m + 3m (capped), and the wrapper's margin
    assert sd.start_bound(job) == 4 * 605 + 60 + 120 + 180 + sd.WRAPPER_MARGIN
    no_timeout = loader.load_jobs(_dir_with("u.yaml", "schedule: '@daily'\ncommand: x\n"))[0]
    assert sd.start_bound(no_timeout) is None
    service, _ = sd.service_unit(no_timeout, "/s", False)
    assert "TimeoutStartSec" not in service and "TimeoutStopSec=40s\n" in service


def _dir_with(name: str, text: str) -> str:
    directory = Path(os.environ["JOBCTL_JOBS_DIR"]).parent / f"jobs-{name}"
    directory.mkdir()
    (directory / name).write_text(text)
    return str(directory)


def test_reboot_disabled_and_argv_jobs(units):
    boot = (units / "jobctl-boot.timer").read_text()
    assert "\nOnBootSec=0\n" in boot and "OnCalendar" not in boot and "Persistent" not in boot
    assert boot.endswith("[Install]\nWantedBy=timers.target\n")
    disabled = (units / "jobctl-disabled.timer").read_text()
    assert "\n[Install]\n" not in disabled and "WantedBy" not in disabled
    assert disabled.endswith("AccuracySec=1s\n# enabled: false: no [Install] section, so systemctl enable "
                             "refuses this timer\n")
    assert "OnCalendar=*-*-01 04:00:00\n" in disabled
    assert "OnCalendar=*-*-* *:00,15,30,45:00\n" in (units / "jobctl-argv.timer").read_text()
    assert "OnCalendar=Fri *-*-* 12:00:00\nOnCalendar=*-*-13 12:00:00\n" in (
        units / "jobctl-either-day.timer").read_text()
    assert "OnCalendar=*-*-* 01:15:00 America/New_York\n" in (units / "jobctl-db.nightly_vacuum.timer").read_text()


def test_warnings_name_everything_systemd_does_not_carry(corpus, tmp_path):
    result = export("--out", str(tmp_path / "units"), "--record")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "jobctl: warning: argv: concurrency: allow is not carried: systemd does not start a service that is still "
        "running, so a run due meanwhile is skipped (as forbid)",
        "jobctl: warning: boot: @reboot: OnBootSec=0 also runs it when the timer is first started on a running "
        "machine (systemctl enable --now), not only at the next boot",
        "jobctl: warning: disabled: disabled (enabled: false): its timer has no [Install] section, so systemctl "
        "enable refuses it",
        "jobctl: warning: disabled: concurrency: wait is not carried: systemd does not start a service that is "
        "still running, so a run due meanwhile is skipped (as forbid)",
        "jobctl: warning: full: catch_up 2h: Persistent=true makes up a missed run however long ago it was due; "
        "the window is not carried",
        "jobctl: warning: full: catch_up_mode: each is not carried: Persistent=true makes up one run for the missed "
        "ones; jobctl backfill makes up each of them",
        "jobctl: warning: full: concurrency: replace is not carried: systemd does not start a service that is still "
        "running, so a run due meanwhile is skipped (as forbid)",
        "jobctl: warning: full: cron_mail: always is not carried: systemd mails nothing; the run log (jobctl logs) and "
        "the journal keep the output",
        "jobctl: warning: pipeline: then: argv: carried as OnSuccess= (systemd 249 or later; older versions ignore "
        "it), which starts their units as their timers do: JOBCTL_PARENT_RUN_ID, _JOB, _STATUS and _OUTPUT stay "
        "empty and history shows no chain",
        "jobctl: warning: pipeline: on_failure: either-day: carried as OnFailure=, which starts their units as their "
        "timers do: JOBCTL_PARENT_RUN_ID, _JOB, _STATUS and _OUTPUT stay empty and history shows no chain; a run "
        "ended by systemctl stop starts them too (the stopped wrapper exits 143, a failure to systemd)",
    ]
    units = tmp_path / "units"
    timers = " ".join(f"jobctl-{n}.timer" for n in ("argv", "boot", "db.nightly_vacuum", "either-day", "full",
                                                    "pipeline"))
    assert result.stdout == (f"wrote 14 files to {units}\n"
                             f"next: systemctl daemon-reload && systemctl enable --now {timers}\n"
                             f"recorded 7 definitions for the timers in {state()}/applied (0 unchanged)\n")
    assert sorted(p.name for p in units.iterdir()) == sorted(
        f"jobctl-{n}.{kind}" for n in corpus for kind in ("service", "timer"))


def test_paused_job_keeps_its_install_section_and_is_named(write_job, tmp_path):
    from jobctl import pause

    write_job("p.yaml", "schedule: '0 3 * * *'\ncommand: x\n")
    pause.pause(state(), "p")
    result = export("--out", str(tmp_path / "u"), "--record")
    assert result.exit_code == 0, result.output
    assert result.stderr == ("jobctl: warning: p: paused: the timer starts it and the wrapper skips the run until "
                             "jobctl resume\n")
    assert (tmp_path / "u" / "jobctl-p.timer").read_text().endswith("[Install]\nWantedBy=timers.target\n")


def test_dst_warning_through_the_cli(write_job):
    write_job("berlin.yaml", "schedule: '30 2 * * *'\ncommand: x\ntimezone: Europe/Berlin\n")
    result = export()
    assert result.exit_code == 0, result.output
    assert result.stderr == ("jobctl: warning: berlin: clock change in Europe/Berlin: a run due in the time the "
                             "clocks skip is not made up by systemd (cron runs it right after the jump)\n")


def test_user_units(write_job, tmp_path):
    write_job("mine.yaml", "schedule: '@reboot'\ncommand: x\nuser: root\nenv: {A: b}\n")
    result = export("--user", "--out", str(tmp_path / "u"))
    assert result.exit_code == 0, result.output
    service = (tmp_path / "u" / "jobctl-mine.service").read_text()
    assert "After=" not in service and "User=" not in service and "# user:" not in service
    assert f"--timer --no-chain --state-dir {state()} mine\n" in service
    assert result.stderr.splitlines()[0] == (
        "jobctl: warning: --user: the timers run only while your user manager runs; loginctl enable-linger keeps "
        "it running when you are logged out")
    assert result.stdout.endswith("next: systemctl --user daemon-reload && systemctl --user enable --now "
                                  "jobctl-mine.timer\n")


def test_system_units_exported_by_a_user_say_whose_state_they_use(write_job, monkeypatch):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = sd.export(loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"]), "/home/u/.local/state/jobctl", False)
    assert result.warnings == ["system units start the wrapper as root with your state directory "
                               "/home/u/.local/state/jobctl; export them as root (state in /var/lib/jobctl), "
                               "or use --user"]


def test_user_units_refuse_a_job_of_another_user(write_job, jobs_dir):
    path = write_job("other.yaml", "schedule: '@daily'\ncommand: x\nuser: nobody\n")
    result = export("--user")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{path}:1:1: job other: user 'nobody' needs system units (jobctl export systemd without --user, as root); "
        "your user manager runs as root\n"
        "jobctl: 1 problem in job files; nothing was changed\n")
    assert not os.path.exists(os.path.join(state(), "applied"))


def test_system_units_run_the_wrapper_as_root_and_name_the_user(write_job):
    write_job("n.yaml", "schedule: '@daily'\ncommand: x\nuser: nobody\n")
    result = export()
    assert result.exit_code == 0, result.output
    assert ("# user: nobody: the wrapper starts the job as nobody, as under /etc/cron.d/jobctl; no User= here, "
            "or the wrapper could not use the state directory\n") in result.stdout
    assert "\nUser=" not in result.stdout


def test_stdout_shows_every_unit_as_systemctl_cat_does(write_job):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    result = export()
    assert result.exit_code == 0, result.output
    service, _ = sd.service_unit(loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])[0], state(), False)
    assert result.stdout.startswith(f"# jobctl-a.service\n{service}\n# jobctl-a.timer\n{MARK} systemd")


# --- issue 11: printing an export changes nothing; --record is the one step that records ------------

def _snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``path``: its bytes and mtime (what "nothing changed" means for the state directory)."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_printing_or_writing_units_changes_no_state(write_job, tmp_path):
    write_job("a.yaml", "schedule: '@daily'\ncommand: echo one\n")
    write_job("b.yaml", "schedule: '@hourly'\ncommand: echo b\n")
    export("--out", str(tmp_path / "first"))
    assert not os.path.exists(state())  # not even the state directory is created
    assert cli.invoke(app, ["apply"]).exit_code == 0
    write_job("a.yaml", "schedule: '@daily'\ncommand: echo two\n")  # an edit that was never applied
    crontab_file = Path(os.environ["JOBCTL_CRONTAB"])
    before, crontab_before = _snapshot(Path(state())), crontab_file.read_bytes()
    printed = export()
    assert printed.exit_code == 0, printed.output
    written = export("--out", str(tmp_path / "units"))
    assert written.exit_code == 0, written.output
    # what cron runs is still what apply installed, and missed-run detection still counts from apply
    assert _snapshot(Path(state())) == before and crontab_file.read_bytes() == crontab_before
    assert applied.read(state(), "a")["command"] == "echo one"
    assert json.loads(cli.invoke(app, ["status", "a", "--json"]).stdout)[0]["state"] == "changed"
    # the units it wrote need a record: it says which jobs lack one, and how to make it
    assert (f"jobctl: warning: not recorded: the timers run {state()}/applied/NAME.json, which --record keeps for "
            "them; it is missing, differs from the job file or is kept for cron only for a, b; record them with "
            f"jobctl export systemd --out {tmp_path / 'units'} --record\n") in written.stderr


def test_record_writes_what_the_timers_run_and_plan_shows_it(write_job, tmp_path):
    write_job("t.yaml", "schedule: '@daily'\ncommand: echo timer\n")
    result = export("--out", str(tmp_path / "u"), "--record")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"recorded 1 definition for the timers in {state()}/applied (0 unchanged)\n")
    job = loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])[0]
    recorded = applied.read(state(), "t")
    assert {k: v for k, v in recorded.items() if k not in ("jobs_dir", "recorded_for")} == \
        json.loads(json.dumps(compile.definition(job)))
    assert recorded["recorded_for"] == ["systemd"] and recorded["jobs_dir"] == os.environ["JOBCTL_JOBS_DIR"]
    assert oct(os.stat(paths.applied_file(state(), "t")).st_mode & 0o777) == "0o600"
    assert not Path(os.environ["JOBCTL_CRONTAB"]).exists()
    assert json.loads(cli.invoke(app, ["status", "--json"]).stdout)[0]["state"] == "timer"
    # recording again changes nothing, not even the time missed-run detection counts from
    mtime = os.stat(paths.applied_file(state(), "t")).st_mtime_ns
    again = export("--record")
    assert again.exit_code == 0 and "recorded 0 definitions for the timers" in again.stderr
    assert os.stat(paths.applied_file(state(), "t")).st_mtime_ns == mtime
    # plan shows what the record means: a timer running an old definition, and a job that would run twice
    write_job("t.yaml", "schedule: '@daily'\ncommand: echo edited\n")
    lines = cli.invoke(app, ["plan"]).stdout.splitlines()
    assert "  add       t: also recorded for its systemd timer (export systemd --record): it would run twice" in lines
    assert ("  timer     t (command): its job file differs; jobctl export systemd --record updates it") in lines


def test_uninstall_and_apply_keep_what_a_timer_runs(write_job):
    write_job("t.yaml", "schedule: '@daily'\ncommand: echo timer\n")
    assert cli.invoke(app, ["apply"]).exit_code == 0
    applied_at = os.stat(paths.applied_file(state(), "t")).st_mtime_ns
    result = export("--record")
    assert result.exit_code == 0, result.output
    # the same definition cron runs: only who runs it is added, and the time it was applied stays
    assert applied.read(state(), "t")["recorded_for"] == ["cron", "systemd"]
    assert os.stat(paths.applied_file(state(), "t")).st_mtime_ns == applied_at
    write_job("t.yaml", "schedule: '@daily'\ncommand: echo new\n")
    assert ("  change    t (command): its systemd timer runs the new definition too"
            in cli.invoke(app, ["plan"]).stdout.splitlines())
    write_job("t.yaml", "schedule: '@daily'\ncommand: echo timer\n")
    assert cli.invoke(app, ["uninstall"]).exit_code == 0  # as the "would run twice" warning advises
    assert applied.read(state(), "t")["recorded_for"] == ["systemd"]  # the timer still has its definition
    assert applied.read(state(), "t")["command"] == "echo timer"


def test_record_refuses_to_change_what_cron_runs(write_job):
    write_job("a.yaml", "schedule: '@daily'\ncommand: echo one\n")
    write_job("b.yaml", "schedule: '@daily'\ncommand: echo b\n")
    assert cli.invoke(app, ["apply"]).exit_code == 0
    write_job("a.yaml", "schedule: '@daily'\ncommand: echo two\n")
    crontab_file = Path(os.environ["JOBCTL_CRONTAB"])
    before, crontab_before = _snapshot(Path(state())), crontab_file.read_bytes()
    result = export("--record")
    assert result.exit_code == 1
    assert (f"jobctl: a: cron runs it from {crontab_file} with another definition (command); recording this one "
            "for its timer would change what cron runs. Run jobctl apply first (cron and timer then run the same "
            "definition), or jobctl uninstall to leave it to the timer\n") in result.stderr
    assert result.stderr.endswith("jobctl: 1 definition not recorded; nothing was recorded or written\n")
    assert result.stdout == ""
    assert _snapshot(Path(state())) == before and crontab_file.read_bytes() == crontab_before
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert export("--record").exit_code == 0
    assert applied.read(state(), "a")["command"] == "echo two"


def test_jobs_also_installed_in_cron_are_named(write_job, tmp_path):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    write_job("b.yaml", "schedule: '@daily'\ncommand: y\n")
    assert cli.invoke(app, ["apply"]).exit_code == 0
    crontab_file = Path(os.environ["JOBCTL_CRONTAB"])
    before = crontab_file.read_bytes()
    result = export()
    assert result.exit_code == 0, result.output
    assert crontab_file.read_bytes() == before
    # one summary line, not one per job (issue 11: 21 identical warnings)
    assert result.stderr.splitlines() == [
        f"jobctl: warning: 2 jobs (a, b) are also installed in {crontab_file} by jobctl apply: they would run "
        "twice, from cron and from their timers; jobctl uninstall removes jobctl's block there"]
    os.unlink(Path(os.environ["JOBCTL_JOBS_DIR"]) / "b.yaml")
    assert export().stderr.splitlines() == [
        f"jobctl: warning: a: also installed in {crontab_file} by jobctl apply: it would run twice, from cron and "
        "from the timer; jobctl uninstall removes jobctl's block there"]


def test_many_jobs_in_cron_give_one_warning(write_job):
    for n in range(21):
        write_job(f"j{n:02d}.yaml", "schedule: '@daily'\ncommand: x\n")
    assert cli.invoke(app, ["apply"]).exit_code == 0
    result = export()
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"jobctl: warning: 21 jobs (j00, j01, j02, j03, j04 and 16 more) are also installed in "
        f"{os.environ['JOBCTL_CRONTAB']} by jobctl apply: they would run twice, from cron and from their timers; "
        "jobctl uninstall removes jobctl's block there"]


def test_a_missing_crontab_command_does_not_fail_the_export(write_job, monkeypatch, tmp_path):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    monkeypatch.delenv("JOBCTL_CRONTAB")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(paths, "SYSTEM_CRONTAB", str(tmp_path / "no-cron.d-file"))
    result = export()
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --- --out: what is overwritten ------------------------------------------------------------------

def test_out_overwrites_its_own_files_only(write_job, tmp_path):
    out = tmp_path / "units"
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert export("--out", str(out)).exit_code == 0
    write_job("a.yaml", "schedule: '@hourly'\ncommand: x\n")
    assert export("--out", str(out)).exit_code == 0
    assert "OnCalendar=*-*-* *:00:00\n" in (out / "jobctl-a.timer").read_text()
    assert oct((out / "jobctl-a.timer").stat().st_mode & 0o777) == "0o644"

    write_job("b.yaml", "schedule: '@daily'\ncommand: y\n")
    (out / "jobctl-b.timer").write_text("[Timer]\nOnCalendar=daily\n")  # somebody's own unit
    write_job("a.yaml", "schedule: '@weekly'\ncommand: x\n")
    result = export("--out", str(out))
    assert result.exit_code == 1
    assert result.stderr == (f"jobctl: not overwriting {out}/jobctl-b.timer: not written by jobctl export (the first "
                             f"line is not {MARK!r}); move it away or choose another --out\n")
    assert (out / "jobctl-b.timer").read_text() == "[Timer]\nOnCalendar=daily\n"
    assert not (out / "jobctl-b.service").exists()
    assert "OnCalendar=*-*-* *:00:00\n" in (out / "jobctl-a.timer").read_text()  # nothing was written
    assert applied.read(state(), "b") is None
    assert sorted(p.name for p in out.iterdir()) == ["jobctl-a.service", "jobctl-a.timer", "jobctl-b.timer"]


def test_out_never_writes_through_a_symlink(write_job, tmp_path):
    out = tmp_path / "units"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text(f"{MARK} but a symlink\n")
    (out / "jobctl-a.service").symlink_to(victim)
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    result = export("--out", str(out))
    assert result.exit_code == 1 and "not overwriting" in result.stderr
    assert victim.read_text() == f"{MARK} but a symlink\n"


def test_invalid_job_files_exit_1_with_every_problem(write_job):
    a = write_job("a.yaml", "schedule: '61 * * * *'\ncommand: x\n")
    b = write_job("b.yaml", "schedule: '@daily'\n")
    result = export()
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{a}:1:") and "minute field: 61 is out of range" in lines[0]
    assert lines[1] == f"{b}:1:1: job b: missing required key 'command'"
    assert lines[2].startswith("jobctl: 2 problems in ")
    assert result.stdout == ""
    assert not os.path.exists(os.path.join(state(), "applied"))


def test_usage_errors_exit_2(write_job):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert export("--bogus").exit_code == 2
    assert cli.invoke(app, ["export", "cron"]).exit_code == 2


def test_help_names_the_overwrite_rule():
    result = export("--help")
    assert result.exit_code == 0
    assert "that an earlier export wrote are overwritten; any other file of that name is left alone" in " ".join(
        result.output.split())
    assert "Examples:" in result.output


# --- unit-file syntax, as systemd reads it -------------------------------------------------------

@pytest.mark.parametrize(("arg", "spelled"), [
    ("/usr/bin/python3", "/usr/bin/python3"),
    ("--state-dir", "--state-dir"),
    ("/var/lib/state dir", '"/var/lib/state dir"'),
    ("50%", "50%%"),
    ("$HOME", '"$$HOME"'),
    ('a"b', '"a\\"b"'),
    ("back\\slash", '"back\\\\slash"'),
    ("", '""'),
    (";", '";"'),
])
def test_exec_arg(arg, spelled):
    assert sd.exec_arg(arg) == spelled


@pytest.mark.parametrize(("value", "spelled"), [
    ("plain", '"A=plain"'),
    ("two words", '"A=two words"'),
    ("100%", '"A=100%%"'),
    ("$HOME ${X}", '"A=$HOME ${X}"'),
    ('say "hi"', '"A=say \\"hi\\""'),
    ("it's", '"A=it\'s"'),
    ("trailing\\", '"A=trailing\\\\"'),
    ("", '"A="'),
    ("a=b=c", '"A=a=b=c"'),
])
def test_env_assignment(value, spelled):
    assert sd.env_assignment("A", value) == spelled


def test_env_values_systemd_rejects_are_left_to_the_wrapper(write_job):
    write_job("nl.yaml", 'schedule: "@daily"\ncommand: x\nenv: {OK: "1", MULTI: "line one\\nline two"}\n')
    result = export()
    assert result.exit_code == 0, result.output
    assert 'Environment="OK=1"\n' in result.stdout and "MULTI" not in result.stdout
    assert result.stderr == ("jobctl: warning: nl: env MULTI: systemd rejects non-printable characters in "
                             "Environment=; not in the unit, the wrapper still sets it for the job\n")


@needs_analyze
def test_systemd_reads_back_exactly_what_the_job_says(units, corpus):
    full = corpus["full"]
    service = dump(units / "jobctl-full.service")
    assert dumped(service, "Environment") == [f"{k}={v}" for k, v in full.env.items()]
    assert dumped(service, "WorkingDirectory") == ["/srv/app data"]
    assert dumped(service, "Description") == ['jobctl job full: Every key: 50% of the disk, "quoted", back\\slash']
    [command] = dumped(service, "Command Line")
    assert unquote_command_line(command) == sd.wrapper_argv(state(), "full")
    assert dumped(service, "KillMode") == ["mixed"]
    assert dumped(service, "TimeoutStartSec") == ["2h 20min 30s"]
    assert dumped(service, "TimeoutStopSec") == ["1min 30s"]
    timer = dump(units / "jobctl-full.timer")
    assert dumped(timer, "OnCalendar") == ["Mon..Fri *-*-* 02:30:00 Europe/Berlin"]
    assert dumped(timer, "Persistent") == ["yes"]
    assert dumped(timer, "Accuracy") == ["1s"]
    assert dumped(dump(units / "jobctl-boot.timer"), "OnBootSec") == ["0"]
    assert sorted(dumped(dump(units / "jobctl-either-day.timer"), "OnCalendar")) == ["*-*-13 12:00:00",
                                                                                     "Fri *-*-* 12:00:00"]


@needs_analyze
def test_odd_state_directory_survives_systemd_quoting(write_job, tmp_path, monkeypatch):
    odd = tmp_path / "state dir with 'quotes', \"double\", $dollar, %percent and back\\slash"
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(odd))
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    result = export("--out", str(tmp_path / "u"), "--record")
    assert result.exit_code == 0, result.output
    [command] = dumped(dump(tmp_path / "u" / "jobctl-a.service"), "Command Line")
    assert unquote_command_line(command) == sd.wrapper_argv(str(odd), "a")
    assert applied.read(str(odd), "a") is not None


def test_the_wrapper_command_is_the_crontab_one_with_timer_and_no_chain():
    argv = sd.wrapper_argv("/var/lib/jobctl", "backup")
    expected = cmdline.wrapper_argv("/var/lib/jobctl", "backup")
    assert "--scheduled" in expected and "--scheduled" not in argv
    timer = [("--timer" if a == "--scheduled" else a) for a in expected]
    at = timer.index("--timer") + 1
    # then/on_failure are the units' OnSuccess=/OnFailure= (test_export_rules)
    assert argv == [*timer[:at], "--no-chain", *timer[at:]]
    assert os.path.isabs(argv[0]) and os.path.exists(argv[0])


@needs_analyze
@pytest.mark.parametrize("user_mode", [False, True], ids=["system", "user"])
def test_systemd_analyze_verify_accepts_every_unit(corpus, tmp_path, user_mode):
    shipped = ROOT / "jobs.d"
    for directory, out in ((None, tmp_path / "corpus"), (shipped, tmp_path / "shipped")):
        args = ["--out", str(out)] + (["--jobs-dir", str(directory)] if directory else [])
        result = export(*args, *(["--user"] if user_mode else []))
        assert result.exit_code == 0, result.output
        files = sorted(str(p) for p in out.iterdir())
        assert files
        proc = subprocess.run([ANALYZE, "verify", "--man=no", *(["--user"] if user_mode else []), *files],
                              capture_output=True, text=True,
                              env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
        assert (proc.returncode, proc.stderr) == (0, ""), files


@needs_analyze
def test_working_dir_as_systemd_reads_it_or_left_to_the_wrapper(write_job, tmp_path):
    write_job("pct.yaml", "schedule: '@daily'\ncommand: x\nworking_dir: /srv/50%/x y\n")
    write_job("dots.yaml", "schedule: '@daily'\ncommand: x\nworking_dir: /srv/app/../data\n")
    result = export("--out", str(tmp_path / "u"), "--record")
    assert result.exit_code == 0, result.output
    assert "\nWorkingDirectory=-/srv/50%%/x y\n" in (tmp_path / "u" / "jobctl-pct.service").read_text()
    assert dumped(dump(tmp_path / "u" / "jobctl-pct.service"), "WorkingDirectory") == ["/srv/50%/x y"]
    assert "WorkingDirectory" not in (tmp_path / "u" / "jobctl-dots.service").read_text()
    assert result.stderr == ("jobctl: warning: dots: working_dir '/srv/app/../data' cannot be written as "
                             "WorkingDirectory=; the wrapper still runs the job there\n")
