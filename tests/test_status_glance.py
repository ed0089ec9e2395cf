"""`jobctl status` at a glance (issue 14): the strip of recent results, the usual duration, relative times, the
zone named once, the pager, and the JSON fields that carry the same.

The statuses come from real runs (the wrapper, cron's scheduled entry point, a wrapper killed under its run) and
are checked against the run log as SQLite itself reads it; rendering-only checks write runs straight into the log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from typer.testing import CliRunner

from jobctl import store
from jobctl.cli.app import app
from jobctl.read import render

import runhelp

cli = CliRunner()

#: the documented marks (README, jobctl(1)): what an operator learns once
UTF8_MARKS = {"succeeded": "\u2713", "failed": "\u2717", "timeout": "\u23f1", "skipped": "\u2298", "killed": "\u21af",
              "lost": "?", "running": "\u25b8"}
ASCII_MARKS = {"succeeded": "+", "failed": "x", "timeout": "T", "skipped": "-", "killed": "K", "lost": "?",
               "running": ">"}
#: the SGR colour number each status's mark is drawn in
COLOUR = {"succeeded": "32", "failed": "31", "timeout": "31", "skipped": "33", "killed": "35", "lost": "35",
          "running": "36"}
OLD_FIELDS = ["name", "description", "schedule", "schedule_description", "next_run", "state", "last_run",
              "consecutive_failures", "paused", "late", "missed", "last_started_run", "jobs_dir"]


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


@pytest.fixture(autouse=True)
def fresh_locale(monkeypatch):
    """The locale is read once a process; in this one every test chooses its own."""
    monkeypatch.setattr(render, "_utf8", None)
    for name in ("LC_ALL", "LC_CTYPE", "NO_COLOR", "PAGER", "JOBCTL_PAGER", "LESS", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def statuses(job: str) -> list[str]:
    """The job's runs, oldest first, a run once by its last attempt: read from the log by plain SQLite."""
    return [r["status"] for r in runhelp.rows(state(), job) if not r["retried"]]


def column(table: str, header: str, job: str) -> str:
    """The first word of ``job``'s row under ``header`` in a plain table (the last, for a right-aligned one)."""
    lines = table.splitlines()
    at = lines[0].index(header)
    row = next(line for line in lines[1:] if line.split()[0] == job)
    if header in ("DURATION", "USUAL", "FAILS", "MISSED"):
        return row[:at + len(header)].split()[-1]
    rest = row[at:].split()
    return rest[0] if rest and row[at] != " " else ""


def status_json(job: str) -> dict:
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    return next(r for r in json.loads(result.stdout) if r["name"] == job)


def on_pty(*args: str, env: dict, rows: int = 50, columns: int = 200) -> tuple[int, str]:
    """Run the real jobctl on a pseudo-terminal of rows x columns; (exit code, what it showed)."""
    code, got = runhelp.on_terminal(*args, env=env, rows=rows, columns=columns)
    return code, got.decode()


def jobctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=60,
                          env=env if env is not None else dict(os.environ))



# --- the strip: real runs of every kind ----------------------------------------------------------------

def test_the_strip_shows_the_last_ten_runs_in_order_with_their_marks(write_job, tmp_path, monkeypatch):
    plan = tmp_path / "plan"
    write_job("mixed.yaml", 'schedule: "* * * * *"\ntimeout: 1s\nkill_grace: 1s\ncommand: |\n'
                            f'  read first rest < {plan}\n  echo "$rest" > {plan}\n'
                            '  case $first in ok) exit 0;; fail) exit 3;; slow) sleep 30;;\n'
                            '    kill) kill -TERM $$;; esac\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    plan.write_text("ok fail ok slow ok kill ok ok fail ok\n")
    for _ in range(10):
        cli.invoke(app, ["run", "mixed", "-q"])
    # a scheduled run while paused is a skip, recorded by the wrapper cron starts
    assert cli.invoke(app, ["pause", "mixed"]).exit_code == 0
    done = subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state(),
                           "mixed"], capture_output=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    assert cli.invoke(app, ["resume", "mixed"]).exit_code == 0
    # a wrapper killed with its job: lost once a read command finalises it
    wrapper = runhelp.start(state(), runhelp.job("mixed", "sleep 60"))
    row = runhelp.wait_for(lambda: [r for r in runhelp.rows(state(), "mixed") if r["status"] == "running"
                                    and r["pid"]])[0]
    wrapper.kill()
    wrapper.wait()
    os.killpg(row["pid"], signal.SIGKILL)
    runhelp.wait_for(lambda: not runhelp.pids_with("sleep 60"))
    assert cli.invoke(app, ["status", "--json"]).exit_code == 0
    # and one still running
    live = runhelp.start(state(), runhelp.job("mixed", "sleep 61"))
    try:
        runhelp.wait_for(lambda: [r for r in runhelp.rows(state(), "mixed") if r["status"] == "running"])
        recorded = statuses("mixed")
        assert len(recorded) == 13
        assert set(recorded) == set(UTF8_MARKS)  # every kind of run is there
        last_ten = recorded[-10:]

        assert status_json("mixed")["recent"] == last_ten
        table = cli.invoke(app, ["status"]).stdout  # piped: the plain table
        assert column(table, "RECENT", "mixed") == "".join(UTF8_MARKS[s] for s in last_ten)
    finally:
        live.terminate()
        live.communicate(timeout=30)


def test_a_run_with_its_retries_is_one_mark(write_job):
    write_job("flaky.yaml", 'schedule: "@hourly"\ncommand: "exit 2"\nretries: {attempts: 2, delay: 0s}\n')
    write_job("fine.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    cli.invoke(app, ["run", "flaky", "-q"])
    cli.invoke(app, ["run", "fine", "-q"])
    attempts = runhelp.rows(state(), "flaky")
    assert [r["attempt"] for r in attempts] == [1, 2, 3]
    assert status_json("flaky")["recent"] == statuses("flaky") == ["failed"]
    table = cli.invoke(app, ["status"]).stdout
    assert column(table, "RECENT", "flaky") == UTF8_MARKS["failed"]
    assert column(table, "RECENT", "fine") == UTF8_MARKS["succeeded"]


# --- the locale: ASCII marks where it is not UTF-8 ----------------------------------------------------

def _record(job: str, status: str, started: float, took: float | None = 1.0, trigger: str = "schedule") -> None:
    log = store.connect(os.path.join(state(), "runs.db"))
    try:
        with log.write() as db:
            db.execute("INSERT INTO runs (job, status, exit_code, trigger, scheduled_for, started_at, finished_at,"
                       " duration_s, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'h')",
                       (job, status, {"succeeded": 0, "failed": 1}.get(status), trigger, None, started,
                        None if took is None else started + took, took))
    finally:
        log.close()


def _every_kind(write_job) -> list[str]:
    write_job("all.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    kinds = ["succeeded", "failed", "timeout", "skipped", "killed", "lost", "succeeded", "running"]
    now = time.time()
    for i, kind in enumerate(kinds):
        _record("all", kind, now - 600 + i * 60, None if kind == "running" else 2.0)
    return kinds


@pytest.mark.parametrize(("env", "marks"), [
    ({"LANG": "C"}, ASCII_MARKS),
    ({"LC_ALL": "C", "LANG": "C.UTF-8"}, ASCII_MARKS),  # LC_ALL wins, as in the C library
    ({"LANG": "POSIX"}, ASCII_MARKS),
    ({}, ASCII_MARKS),  # nothing set: the C locale
    ({"LANG": "C.UTF-8"}, UTF8_MARKS),
    ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, UTF8_MARKS),
    ({"LANG": "en_US.UTF-8"}, UTF8_MARKS),  # whether or not the machine has that locale
])
def test_marks_follow_the_locale(write_job, env, marks):
    kinds = _every_kind(write_job)
    clean = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONUTF8",
                                                              "PYTHONIOENCODING")}
    done = jobctl("status", env={**clean, **env})
    assert done.returncode == 0, done.stderr
    assert column(done.stdout, "RECENT", "all") == "".join(marks[k] for k in kinds)
    if marks is ASCII_MARKS:
        assert done.stdout.isascii()


def test_no_color_means_no_escape_codes_and_colours_otherwise(write_job):
    kinds = _every_kind(write_job)
    env = {**os.environ, "TERM": "xterm-256color"}
    code, plain = on_pty("status", "--no-pager", env={**env, "NO_COLOR": "1"})
    assert code == 0 and "\x1b" not in plain
    assert column(plain, "RECENT", "all") == "".join(UTF8_MARKS[k] for k in kinds)
    code, coloured = on_pty("status", "--no-pager", env=env)
    assert code == 0
    line = next(ln for ln in coloured.splitlines() if ln.startswith("all "))
    # each mark in its status's colour: the escape codes in force where it is drawn
    drawn = []
    sgr = ""
    for part in re.split(r"(\x1b\[[0-9;]*m)", line):
        if part.startswith("\x1b["):
            sgr = "" if part in ("\x1b[0m", "\x1b[m") else sgr + part
        else:
            drawn += [(ch, sgr) for ch in part if ch in UTF8_MARKS.values()]
    marks = [(UTF8_MARKS[k], COLOUR[k]) for k in kinds]
    assert [ch for ch, _ in drawn] == [m for m, _ in marks]
    for (ch, sgr), (_, colour) in zip(drawn, marks, strict=True):
        assert re.search(rf"\x1b\[([0-9;]*;)?{colour}(;[0-9;]*)?m", sgr), (ch, sgr)


# --- durations ------------------------------------------------------------------------------------------

def _mad(values: list[float]) -> float:
    middle = statistics.median(values)
    return statistics.median(abs(v - middle) for v in values)


def test_json_fields_are_the_runs_as_recorded(write_job):
    write_job("sleepy.yaml", 'schedule: "@hourly"\ncommand: "sleep 0.1"\n')
    write_job("broken.yaml", 'schedule: "@hourly"\ncommand: "exit 4"\n')
    write_job("idle.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    for _ in range(5):  # baseline.min_runs: the usual duration needs five successes
        cli.invoke(app, ["run", "sleepy", "-q"])
    cli.invoke(app, ["run", "broken", "-q"])
    rows = {r["name"]: r for r in json.loads(cli.invoke(app, ["status", "--json"]).stdout)}
    assert all(list(r)[:len(OLD_FIELDS)] == OLD_FIELDS for r in rows.values())  # the fields before, as before
    runs = runhelp.rows(state(), "sleepy")
    took = [r["duration_s"] for r in runs]
    sleepy = rows["sleepy"]
    assert sleepy["recent"] == ["succeeded"] * 5
    assert sleepy["usual_duration_s"] == round(statistics.median(took), 3)
    assert sleepy["usual_mad_s"] == round(_mad(took), 3) and sleepy["usual_runs"] == 5
    assert sleepy["last_duration_s"] == round(runs[-1]["duration_s"], 3) == sleepy["last_started_run"]["duration_s"]
    broken = rows["broken"]
    assert broken["recent"] == ["failed"] and broken["usual_duration_s"] is None  # no success: no usual
    assert (broken["usual_mad_s"], broken["usual_runs"]) == (None, 0)
    assert broken["last_duration_s"] == round(runhelp.rows(state(), "broken")[0]["duration_s"], 3)
    idle = rows["idle"]
    assert (idle["recent"], idle["usual_duration_s"], idle["last_duration_s"]) == ([], None, None)
    assert all(r["missed_runs"] == 0 for r in rows.values())


def test_usual_is_the_median_of_the_latest_successes(write_job):
    """USUAL is jobctl.baseline's: the latest baseline.runs (20) successes, whatever else ran between them."""
    write_job("d.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    now = time.time()
    durations = [500, 400] + [float(n) for n in range(1, 21)] + [30, 100]  # the first two fall out of the latest 20
    for i, took in enumerate(durations):
        _record("d", "failed" if took == 30 else "succeeded", now - 3600 + i * 60, float(took))
    _record("d", "skipped", now - 10, 0.0)
    row = status_json("d")
    successes = [r["duration_s"] for r in runhelp.rows(state(), "d") if r["status"] == "succeeded"][-20:]
    assert row["usual_duration_s"] == statistics.median(successes) == 11.5
    assert row["usual_mad_s"] == _mad(successes) and row["usual_runs"] == 20
    assert row["last_duration_s"] == 100.0  # the latest run that started: the skip is no result
    table = cli.invoke(app, ["status"]).stdout
    assert column(table, "DURATION", "d") == render.duration(100.0) == "1m40s"
    assert column(table, "USUAL", "d") == "11.5s"


def test_usual_needs_min_runs_successes(write_job):
    """Below baseline.min_runs successes there is no usual duration (the default five; the job's own when set)."""
    write_job("few.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    write_job("strict.yaml", 'schedule: "@hourly"\ncommand: "true"\nbaseline: {min_runs: 8}\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    now = time.time()
    for i in range(7):
        _record("strict", "succeeded", now - 3600 + i * 60, 10.0 + i)
        if i < 4:
            _record("few", "succeeded", now - 3600 + i * 60, 3.0)
    few, strict = status_json("few"), status_json("strict")
    assert (few["usual_duration_s"], few["usual_mad_s"], few["usual_runs"]) == (None, None, 4)
    assert (strict["usual_duration_s"], strict["usual_runs"]) == (None, 7)  # 7 < its min_runs 8
    assert column(cli.invoke(app, ["status"]).stdout, "USUAL", "strict") == "-"
    _record("few", "succeeded", now - 60, 5.0)
    _record("strict", "succeeded", now - 60, 40.0)
    few, strict = status_json("few"), status_json("strict")
    assert (few["usual_duration_s"], few["usual_mad_s"], few["usual_runs"]) == (3.0, 0.0, 5)
    assert (strict["usual_duration_s"], strict["usual_runs"]) == (statistics.median([10.0 + i for i in range(7)]
                                                                                    + [40.0]), 8)


# --- missed runs: the every-minute pass's alerts ------------------------------------------------------------

def test_missed_runs_are_counted_in_the_table_only_when_there_are_some(write_job):
    write_job("a.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    write_job("b.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    _record("a", "succeeded", time.time() - 30, 1.0)
    table = cli.invoke(app, ["status"]).stdout
    assert "MISSED" not in table.splitlines()[0]
    assert status_json("a")["missed_runs"] == 0
    log = store.connect(os.path.join(state(), "runs.db"))
    minute = (time.time() // 60) * 60
    try:
        for k in range(3, 6):  # what the pass records: one row per scheduled minute that never started
            assert log.alert_once("a", "missed", minute - k * 60, minute)
        assert not log.alert_once("a", "missed", minute - 3 * 60, minute)  # once per slot
        log.alert_once("a", "overdue", 1, minute)  # another kind of alert: not a missed run
    finally:
        log.close()
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    [(recorded,)] = db.execute("SELECT count(*) FROM alerts WHERE job = 'a' AND kind = 'missed'").fetchall()
    db.close()
    assert status_json("a")["missed_runs"] == recorded == 3 and status_json("b")["missed_runs"] == 0
    table = cli.invoke(app, ["status"]).stdout
    assert "MISSED" in table.splitlines()[0]
    assert (column(table, "MISSED", "a"), column(table, "MISSED", "b")) == ("3", "0")


# --- times: relative next to absolute, the zone once ------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "now"), (30, "in 30 s"), (-30, "30 s ago"), (89, "in 89 s"), (240, "in 4 min"), (-720, "12 min ago"),
    (-749, "12 min ago"), (-780, "13 min ago"), (89 * 60, "in 89 min"), (90 * 60, "in 2 h"), (-5 * 3600, "5 h ago"),
    (35 * 3600, "in 35 h"), (36 * 3600, "in 2 days"), (-9 * 86400, "9 days ago"),
])
def test_relative_times(seconds, text):
    now = 1_800_000_000.0
    assert render.relative(now + seconds, now) == text


def test_relative_times_against_a_known_clock(write_job, monkeypatch):
    """status with "now" fixed: the next run of */5 at 11:56 is "in 4 min", a run 12 minutes before is "12 min ago"."""
    from rich.console import Console

    from jobctl.install import crontab
    from jobctl.jobs import loader
    from jobctl.read import status

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        write_job("five.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
        assert cli.invoke(app, ["apply"]).exit_code == 0
        now = datetime(2026, 12, 2, 11, 56, 0).astimezone()
        _record("five", "succeeded", now.timestamp() - 12 * 60, 3.0)
        log = store.connect(os.path.join(state(), "runs.db"))
        rows = status.collect(loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"]), state(),
                              crontab.installed(state(), crontab.target()), log, now)
        log.close()
        buffer = StringIO()
        render.status_screen(rows, out=Console(width=300, file=buffer, force_terminal=True, color_system=None),
                             now=now.timestamp())
        lines = buffer.getvalue().splitlines()
        assert column(buffer.getvalue(), "NEXT RUN", "five") == "2026-12-02"
        row = lines[1]
        assert "2026-12-02 12:00 (in 4 min)" in row and "2026-12-02 11:44:00 (12 min ago)" in row
        assert "CET" not in row and "+01" not in row  # no zone in the cells ...
        assert lines[-1] == "times in Europe/Berlin (CET, UTC+01:00); now 2026-12-02 11:56:00"  # ... but once here
        # narrow: the relative times alone
        buffer = StringIO()
        render.status_table(rows, out=Console(width=80, file=buffer, color_system=None), now=now.timestamp())
        assert "in 4 min" in buffer.getvalue() and "12 min ago" in buffer.getvalue()
        assert "2026-12-02" not in buffer.getvalue()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_cli_shows_times_relative_to_its_own_clock(write_job):
    write_job("h.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    started = time.time() - 12 * 60 - 5
    _record("h", "succeeded", started, 1.0)
    table = cli.invoke(app, ["status"]).stdout
    row = next(line for line in table.splitlines() if line.startswith("h "))
    assert f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))} (12 min ago)" in row
    nxt = (datetime.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    assert re.search(rf"{nxt:%Y-%m-%d %H:%M} \(in \d+ (min|s)\)", row), row
    assert "times in" not in table  # piped: the table alone, a job a line


def test_the_zone_line_on_a_terminal_names_the_zone_once(write_job):
    from zoneinfo import ZoneInfo

    write_job("h.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    _record("h", "succeeded", time.time() - 60, 1.0)
    for zone in ("Asia/Kolkata", "America/New_York", "UTC"):
        code, seen = on_pty("status", "--no-pager", env={**os.environ, "TZ": zone, "NO_COLOR": "1"})
        assert code == 0, seen
        lines = seen.splitlines()
        now = datetime.now(ZoneInfo(zone))
        offset = now.utcoffset() or timedelta(0)
        sign = "+" if offset >= timedelta(0) else "-"
        hhmm = f"{abs(offset) // timedelta(hours=1):02d}:{abs(offset) % timedelta(hours=1) // timedelta(minutes=1):02d}"
        expected = zone if zone == "UTC" else f"{zone} ({now.tzname()}, UTC{sign}{hhmm})"
        assert lines[-1].startswith(f"times in {expected}; now "), lines[-1]
        assert sum(zone in line for line in lines) == 1


# --- the pager ----------------------------------------------------------------------------------------------

@pytest.fixture
def many(write_job):
    for i in range(12):
        write_job(f"job-{i:02d}.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    for i in range(12):
        _record(f"job-{i:02d}", "succeeded", time.time() - 300, 1.0)


def _pager(tmp_path, name: str = "pager"):
    """A pager that records that it ran, its LESS, and what it was given."""
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\necho "called LESS=$LESS" >> {tmp_path}/{name}.calls\ncat > {tmp_path}/{name}.got\n')
    script.chmod(0o755)
    return str(script), tmp_path / f"{name}.calls", tmp_path / f"{name}.got"


def test_long_output_on_a_terminal_goes_through_the_pager(many, tmp_path):
    pager, calls, got = _pager(tmp_path)
    env = {**os.environ, "PAGER": pager, "TERM": "xterm"}
    code, seen = on_pty("status", env=env, rows=8)
    assert code == 0 and calls.read_text() == "called LESS=FRX\n"
    text = got.read_text()
    assert "job-11" in text and "\x1b[" in text  # the table, in colour for the terminal
    assert "job-11" not in seen
    # a LESS of the operator's own is kept; JOBCTL_PAGER comes before PAGER
    other, other_calls, _ = _pager(tmp_path, "other")
    code, _ = on_pty("status", env={**env, "LESS": "S", "JOBCTL_PAGER": other}, rows=8)
    assert code == 0 and other_calls.read_text() == "called LESS=S\n" and calls.read_text() == "called LESS=FRX\n"


def test_a_pager_that_cannot_be_run_leaves_the_table_printed(many, tmp_path):
    env = {**os.environ, "PAGER": str(tmp_path / "no-such-pager"), "TERM": "xterm"}
    code, seen = on_pty("status", env=env, rows=8)
    assert code == 0 and "job-11" in seen and "could not be run; printing without it" in seen


def test_no_pager_when_it_fits_when_asked_or_when_not_a_terminal(many, tmp_path):
    pager, calls, _ = _pager(tmp_path)
    env = {**os.environ, "PAGER": pager}
    code, seen = on_pty("status", env=env, rows=40)  # fits on the screen
    assert code == 0 and "job-11" in seen
    code, seen = on_pty("status", "--no-pager", env=env, rows=8)
    assert code == 0 and "job-11" in seen
    for off in ("", "cat"):
        code, seen = on_pty("status", env={**env, "PAGER": off}, rows=8)
        assert code == 0 and "job-11" in seen
    done = jobctl("status", env=env)  # piped
    assert done.returncode == 0 and "job-11" in done.stdout
    done = jobctl("status", "--json", env=env)
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 12
    assert not calls.exists()


# --- the statement -----------------------------------------------------------------------------------------

def test_the_recent_runs_come_from_one_indexed_statement(tmp_path):
    log = store.connect(str(tmp_path / "runs.db"))
    seen: list[str] = []
    log.db.set_trace_callback(seen.append)
    log.recent("a")
    log.db.set_trace_callback(None)
    [sql] = seen
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
    db.close()
    log.close()
    assert plan == ["SEARCH runs USING INDEX runs_job_id (job=?)"], plan  # newest first, no sort, no scan
