"""Operating jobs: pause/resume, retention and prune, metrics, doctor, late/missed, catch-up logic."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import applied, store
from jobctl.cli.app import app
from jobctl.jobs import schedule
from jobctl.runner import catchup

cli = CliRunner()


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def insert_runs(job: str, times: list[float], status: str = "succeeded", output: bytes = b"",
                scheduled: float | None = None) -> None:
    os.makedirs(state(), mode=0o700, exist_ok=True)
    log = store.connect(os.path.join(state(), "runs.db"))
    with log.write() as db:
        for t in times:
            cur = db.execute(
                "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at, finished_at,"
                " duration_s, host, output_bytes, reason) VALUES (?, ?, 0, 'schedule', 1, ?, ?, ?, 1.0, 'h', ?, ?)",
                (job, status, t - t % 60 if scheduled is None else scheduled, t, t + 1, len(output), "exit status 0"))
            if output:
                db.execute("INSERT INTO run_output (run_id, head, tail, dropped) VALUES (?, ?, x'', 0)",
                           (cur.lastrowid, output))
    log.close()


def count(job: str | None = None) -> int:
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    try:
        if job:
            return db.execute("SELECT count(*) FROM runs WHERE job = ?", (job,)).fetchone()[0]
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        db.close()


# --- pause / resume --------------------------------------------------------------

def test_pause_and_resume(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    crontab_before = Path(os.environ["JOBCTL_CRONTAB"]).read_bytes()
    result = cli.invoke(app, ["pause", "a"])
    assert result.exit_code == 0 and result.stdout == "paused a\n"
    assert cli.invoke(app, ["pause", "a"]).stdout == "a was already paused\n"
    status = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert status[0]["paused"] is True
    assert Path(os.environ["JOBCTL_CRONTAB"]).read_bytes() == crontab_before  # no crontab rewrite
    assert cli.invoke(app, ["resume", "a"]).stdout == "resumed a\n"
    assert json.loads(cli.invoke(app, ["status", "--json"]).stdout)[0]["paused"] is False
    assert cli.invoke(app, ["resume", "a"]).stdout == "a was not paused\n"


def test_pausing_an_unknown_job_changes_nothing(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    result = cli.invoke(app, ["pause", "a", "typo"])
    assert result.exit_code == 1
    assert result.stderr.startswith("jobctl: no job named 'typo'")
    assert not os.path.exists(os.path.join(state(), "paused", "a"))


# --- retention ---------------------------------------------------------------------

def test_retention_keeps_the_newest_and_drops_the_old(jobs_dir):
    now = time.time()
    insert_runs("a", [now - 86400 * d for d in range(100, 0, -1)], output=b"x" * 100)  # 100 days, one a day
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    with db:
        assert store.prune_job(db, "a", keep=50, max_age=30 * 86400, now=now) == 70
    left = [r[0] for r in db.execute("SELECT started_at FROM runs ORDER BY id")]
    assert len(left) == 30 and min(left) >= now - 30 * 86400  # the age limit bit first
    assert db.execute("SELECT count(*) FROM run_output").fetchone()[0] == 30  # their output went too
    with db:
        assert store.prune_job(db, "a", keep=10, max_age=365 * 86400, now=now) == 20
    newest = [r[0] for r in db.execute("SELECT started_at FROM runs ORDER BY id")]
    assert newest == sorted(left)[-10:]


def test_retention_never_deletes_a_running_run(jobs_dir):
    now = time.time()
    insert_runs("a", [now - 200 * 86400], status="running")
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    with db:
        assert store.prune_job(db, "a", keep=1, max_age=86400, now=now) == 0


def test_prune_command_uses_each_jobs_history_settings(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\nhistory: {keep: 5}\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    now = time.time()
    insert_runs("a", [now - i for i in range(20, 0, -1)])
    insert_runs("gone", [now - i for i in range(300, 0, -1)])  # no longer applied: default keep 200
    dry = cli.invoke(app, ["prune", "--dry-run"])
    assert dry.exit_code == 0
    assert "a: would delete 15 runs" in dry.stdout and "gone: would delete 100 runs" in dry.stdout
    assert count() == 320
    real = cli.invoke(app, ["prune"])
    assert real.exit_code == 0 and "deleted 115 runs" in real.stdout
    assert count("a") == 5 and count("gone") == 200


def test_a_year_of_every_minute_runs_stays_small_after_pruning(jobs_dir):
    now = time.time()
    minute_runs = [now - 60 * i for i in range(365 * 24 * 60, 0, -1)]
    insert_runs("busy", minute_runs, output=b"done\n")
    path = os.path.join(state(), "runs.db")
    big = os.path.getsize(path) + os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else \
        os.path.getsize(path)
    assert count("busy") == 525_600
    log = store.connect(path)
    with log.write() as db:
        store.prune_job(db, "busy", keep=200, max_age=90 * 86400, now=now)
    store.vacuum(log.db)
    log.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.close()
    small = os.path.getsize(path)
    assert count("busy") == 200
    assert small < 1024 * 1024 and small < big / 50, (big, small)


def test_runs_prune_their_job_once_past_keep_by_the_margin(write_job):
    """A run prunes past keep + store.margin (a tenth, at least one run), down to keep; never more kept."""
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\nhistory: {keep: 3}\n')
    counts = []
    for _ in range(9):
        assert cli.invoke(app, ["run", "a", "-q"]).exit_code == 0
        counts.append(count("a"))
    assert counts == [1, 2, 3, 4, 3, 4, 3, 4, 3]


# --- metrics ---------------------------------------------------------------------------

def test_metrics_parse_as_prometheus_text(write_job, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    write_job("ok.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    write_job("bad.yaml", 'schedule: "@daily"\ncommand: "exit 3"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    cli.invoke(app, ["run", "ok", "-q"])
    cli.invoke(app, ["run", "bad", "-q"])
    cli.invoke(app, ["run", "bad", "-q"])
    cli.invoke(app, ["pause", "bad"])
    result = cli.invoke(app, ["metrics"])
    assert result.exit_code == 0
    got = {}
    for family in text_string_to_metric_families(result.stdout):
        assert family.type == ("counter" if family.name == "jobctl_missed_runs" else "gauge")
        for sample in family.samples:
            got[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    ok, bad = (("job_name", "ok"),), (("job_name", "bad"),)
    assert got[("jobctl_job_last_exit_code", bad)] == 3
    assert got[("jobctl_job_last_exit_code", ok)] == 0
    assert got[("jobctl_job_runs", (("job_name", "bad"), ("status", "failed")))] == 2
    assert got[("jobctl_job_runs", (("job_name", "ok"), ("status", "succeeded")))] == 1
    assert got[("jobctl_job_consecutive_failures", bad)] == 2
    assert got[("jobctl_job_paused", bad)] == 1 and got[("jobctl_job_paused", ok)] == 0
    assert got[("jobctl_job_running", ok)] == 0
    assert ("jobctl_job_last_success_timestamp_seconds", bad) not in got
    assert got[("jobctl_job_next_run_timestamp_seconds", ok)] % 300 == 0
    assert got[("jobctl_job_next_run_timestamp_seconds", ok)] > time.time()
    assert not any("job" in dict(labels) for _, labels in got)  # `job` is the scrape target's label
    target = tmp_path / "textfile" / "jobctl.prom"
    target.parent.mkdir()
    assert cli.invoke(app, ["metrics", "--textfile", str(target)]).exit_code == 0
    assert target.read_text() == result.stdout and oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["jobctl.prom"]  # no temp file left


# --- doctor ------------------------------------------------------------------------------

def test_doctor_reports_each_failure_with_a_fix(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: no-such-program-anywhere --flag\n')
    os.makedirs(state(), mode=0o700)
    Path(state(), "runs.db").write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    os.chmod(state(), 0o755)
    result = cli.invoke(app, ["doctor"])
    assert result.exit_code == 1
    out = result.stdout
    assert f"FAIL  state directory: {state()} is 0755, not 0700" in out
    assert "FAIL  run log:" in out and "fix: move it aside" in out
    assert "FAIL  crontab in sync:" in out and "add a" in out
    assert "FAIL  command of a: 'no-such-program-anywhere' is not found on the run PATH" in out
    assert out.rstrip().endswith("failed")


def test_doctor_passes_on_a_healthy_setup(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: [ls, /]\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert cli.invoke(app, ["run", "a", "-q"]).exit_code == 0
    result = cli.invoke(app, ["doctor"])
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    failing = [line for line in lines if line.startswith("FAIL")]
    # the cron daemon may or may not run on a developer's machine; nothing else may fail
    assert all(line.startswith("FAIL  cron daemon") for line in failing), failing
    assert "ok    command of a: ls → " in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the check only applies as root")
def test_doctor_flags_world_writable_job_files(write_job):
    path = write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    os.chmod(path, 0o666)
    result = cli.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert f"FAIL  job file permissions: writable by others, a root shell for anyone: {path} (0666)" in result.stdout


# --- late / missed ---------------------------------------------------------------------------

def _age_applied(name: str, seconds: float) -> None:
    path = os.path.join(state(), "applied", name + ".json")
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_status_flags_missed_and_late_runs(write_job):
    write_job("every.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("late.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("fine.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    for name in ("every", "late", "fine"):
        _age_applied(name, 3600)
    now = time.time()
    due = now - now % 60 - 60  # the last minute that should have started by now (1 minute of grace)
    insert_runs("late", [due + 150], scheduled=due)
    insert_runs("fine", [due + 1], scheduled=due)
    rows = {r["name"]: r for r in json.loads(cli.invoke(app, ["status", "--json"]).stdout)}
    if time.time() - due > 119:  # the minute turned over while we set up: the check would be vacuous
        pytest.skip("minute boundary crossed during the test")
    assert (rows["every"]["missed"], rows["every"]["late"]) == (True, False)
    assert (rows["late"]["missed"], rows["late"]["late"]) == (False, True)
    assert (rows["fine"]["missed"], rows["fine"]["late"]) == (False, False)


def test_a_job_applied_after_its_last_schedule_is_not_missed(write_job):
    write_job("daily.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    row = json.loads(cli.invoke(app, ["status", "--json"]).stdout)[0]
    assert row["missed"] is False and row["late"] is False


# --- catch-up decisions ------------------------------------------------------------------------

def _defn(expr: str, catch_up: int, tz: str | None = None) -> dict:
    return {"cron": expr, "fields": schedule.compile_fields(expr), "catch_up": catch_up, "timezone": tz}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_catch_up_picks_the_last_missed_schedule_in_the_window():
    d = _defn("0 * * * *", 6 * 3600, "UTC")
    applied_at = ts("2026-06-01T00:00")
    # machine off from 03:10 to 09:30; last run at 03:00
    when = catchup.missed(d, applied_at, ts("2026-06-01T03:00"), ts("2026-06-01T09:30"))
    assert when == ts("2026-06-01T09:00")  # many missed; exactly one run, for the latest


def test_catch_up_coalesces_thousands_of_missed_schedules_into_one():
    d = _defn("* * * * *", 7 * 86400, "UTC")
    when = catchup.missed(d, ts("2026-01-01T00:00"), ts("2026-06-01T00:00"), ts("2026-06-05T00:00"))
    assert when == ts("2026-06-04T23:58")  # 5,758 missed minutes, one run (Kubernetes gives up after 100)


def test_catch_up_respects_window_apply_time_and_later_runs():
    d = _defn("0 2 * * *", 3 * 3600, "UTC")
    assert catchup.missed(d, ts("2026-06-01T00:00"), None, ts("2026-06-02T06:00")) is None  # 02:00 is > 3 h ago
    assert catchup.missed(d, ts("2026-06-02T02:30"), None, ts("2026-06-02T04:00")) is None  # applied after it
    assert catchup.missed(d, ts("2026-06-01T00:00"), ts("2026-06-02T02:00"), ts("2026-06-02T04:00")) is None  # ran
    assert catchup.missed(d, ts("2026-06-01T00:00"), ts("2026-06-01T02:00"), ts("2026-06-02T04:00")) == \
        ts("2026-06-02T02:00")


def test_catch_up_reads_schedules_in_the_jobs_zone():
    d = _defn("30 2 * * *", 6 * 3600, "Europe/Berlin")
    # 02:30 Berlin (summer, +2) is 00:30 UTC
    assert catchup.missed(d, ts("2026-06-01T00:00"), None, ts("2026-06-02T04:00")) == ts("2026-06-02T00:30")


def test_catch_up_ignores_jobs_without_it_and_reboot_jobs():
    assert catchup.missed(_defn("* * * * *", 0), 0, None, time.time()) is None
    reboot = {"cron": "@reboot", "fields": None, "catch_up": 3600}
    assert catchup.missed(reboot, 0, None, time.time()) is None


def test_applied_definition_carries_the_compiled_fields(write_job):
    write_job("a.yaml", 'schedule: "30 2 * * mon-fri"\ncommand: "true"\ntimezone: Europe/Berlin\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    d = applied.read(state(), "a")
    assert d["fields"]["minute"] == [30] and d["fields"]["dow"] == [1, 2, 3, 4, 5] and d["fields"]["fixed"]


# --- issue 11, item 10: doctor words each fix for the case at hand ---------------------------------

def _doctor_lines(jobs_dir: str | None = None) -> list[str]:
    args = ["doctor"] + (["--jobs-dir", jobs_dir] if jobs_dir else [])
    return cli.invoke(app, args).stdout.splitlines()


def _check(lines: list[str], name: str) -> tuple[str, str]:
    """(the check's line, its fix line or "")."""
    i = next(i for i, line in enumerate(lines) if f"  {name}: " in line)
    fix = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("      fix: ") else ""
    return lines[i], fix


def test_doctor_does_not_ask_for_an_absolute_path_it_was_given(write_job, tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    write_job("gone.yaml", 'schedule: "@hourly"\ncommand: /opt/nowhere/bin/report --daily\n')
    write_job("noexec.yaml", f'schedule: "@hourly"\ncommand: [{script}]\n')
    write_job("bare.yaml", 'schedule: "@hourly"\ncommand: no-such-program-anywhere\n')
    lines = _doctor_lines()
    line, fix = _check(lines, "command of gone")
    assert line == "FAIL  command of gone: /opt/nowhere/bin/report does not exist"
    assert fix.startswith("fix: install the program at /opt/nowhere/bin/report, or correct the command in ")
    assert "absolute path" not in line + fix and "run PATH" not in line + fix
    line, fix = _check(lines, "command of noexec")
    assert line == f"FAIL  command of noexec: {script} is not executable by root"
    assert fix.startswith(f"fix: chmod +x {script}, or run it through its interpreter")
    line, fix = _check(lines, "command of bare")
    assert "is not found on the run PATH" in line
    assert fix.startswith("fix: install no-such-program-anywhere on this host, or correct the command in ")


def test_doctor_names_the_absolute_path_of_a_program_only_the_operator_finds(write_job, tmp_path, monkeypatch):
    bindir = tmp_path / "opt-bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    write_job("t.yaml", 'schedule: "@hourly"\ncommand: mytool --flag\n')
    _, fix = _check(_doctor_lines(), "command of t")
    assert fix.startswith(f"fix: use its absolute path ({tool}) in the command, or add {bindir} to env: PATH in ")


def test_doctor_checks_the_working_directory(write_job, tmp_path):
    ok_dir = tmp_path / "work"
    ok_dir.mkdir()
    write_job("gone.yaml", 'schedule: "@hourly"\ncommand: "true"\nworking_dir: /srv/no-such-dir\n')
    write_job("file.yaml", f'schedule: "@hourly"\ncommand: "true"\nworking_dir: {tmp_path / "state"}x\n')
    (tmp_path / "statex").write_text("")
    write_job("fine.yaml", f'schedule: "@hourly"\ncommand: "true"\nworking_dir: {ok_dir}\n')
    lines = _doctor_lines()
    line, fix = _check(lines, "working directory of gone")
    assert line == ("FAIL  working directory of gone: working_dir /srv/no-such-dir does not exist: every run would "
                    "fail (exit 125)")
    assert fix.startswith("fix: mkdir -p /srv/no-such-dir, or correct working_dir in ")
    line, _ = _check(lines, "working directory of file")
    assert line.startswith("FAIL") and "is not a directory" in line
    line, _ = _check(lines, "working directory of fine")
    assert line.startswith(f"ok    working directory of fine: {ok_dir} (as ")


@pytest.fixture
def job_user():
    """A fresh Unix user, removed afterwards (the checks are made with its rights)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to check paths as another user")
    user = f"jobctl-d{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent-home-" + user,
                    "--shell", "/usr/sbin/nologin", user], check=True, capture_output=True)
    try:
        yield user
    finally:
        subprocess.run(["userdel", user], capture_output=True)


@pytest.fixture
def open_dir():
    """A directory every user may enter (pytest's own tmp_path is root's alone)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="jobctl-doctor-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_doctor_checks_paths_as_the_jobs_user(write_job, open_dir, job_user):
    private = open_dir / "private"
    private.mkdir(mode=0o700)  # root's: the job's user may not enter it
    (private / "work").mkdir()
    tool = private / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    write_job("locked.yaml", f'schedule: "@hourly"\ncommand: [{tool}]\nuser: {job_user}\n'
                             f'working_dir: {private / "work"}\n')
    write_job("homeless.yaml", f'schedule: "@hourly"\ncommand: "true"\nuser: {job_user}\n')
    lines = _doctor_lines()
    line, fix = _check(lines, "working directory of locked")
    assert line == (f"FAIL  working directory of locked: {job_user} cannot enter working_dir {private / 'work'}: no "
                    "search (x) permission on it or a directory above; every run would fail (exit 125)")
    assert fix.startswith(f"fix: give {job_user} access (chown {job_user}: {private / 'work'}")
    line, fix = _check(lines, "command of locked")
    assert line == (f"FAIL  command of locked: {job_user} cannot reach {tool}: a directory above it is not "
                    "searchable by that user")
    line, fix = _check(lines, "working directory of homeless")
    assert line == (f"FAIL  working directory of homeless: /nonexistent-home-{job_user}, the home of {job_user} "
                    "(working_dir is not set) does not exist: every run would fail (exit 125)")
    assert fix.startswith("fix: set working_dir: to an existing directory in ")
    private.chmod(0o755)
    lines = _doctor_lines()
    assert _check(lines, "working directory of locked")[0].startswith("ok    ")
    assert _check(lines, "command of locked")[0] == f"ok    command of locked: {tool} (executable by {job_user})"
