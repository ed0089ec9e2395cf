"""Slots: the time a run stands for in its environment, catch-up of each missed run, backfill (real processes).

Every run here is a real wrapper starting a real shell that dumps its
environment; what it saw is read back from the run log.  Expected times are
worked out here with plain arithmetic on UTC seconds, not with jobctl's clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobctl import applied
from jobctl.jobs import schedule
from jobctl.runner import catchup

from runhelp import crontab_command, job, live_pids_with, output, rows, wait_for

DUMP = 'echo "SF=$JOBCTL_SCHEDULED_FOR SS=$JOBCTL_SLOT_START SE=$JOBCTL_SLOT_END"'
CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": "/root", "LOGNAME": "root"}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seen(state: str, run_id: int) -> dict[str, str]:
    text = output(state, run_id)[0].decode().strip()
    return dict(part.split("=", 1) for part in text.split(" "))


def jobctl(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, **kw)



def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def write_job(text: str, name: str = "slot") -> None:
    d = Path(os.environ["JOBCTL_JOBS_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text)


# --- the environment of a run ---------------------------------------------------------------------

def test_a_scheduled_run_from_the_crontab_line_sees_its_slot():
    # cron starts a time-zone job's line at a superset of its minutes and the wrapper runs only the
    # job's own: the schedule is made to match this minute
    now = time.time()
    if now % 60 > 50:
        time.sleep(61 - now % 60)
        now = time.time()
    g = time.gmtime(now)
    write_job(f"schedule: '{g.tm_min} {g.tm_hour} * * *'\ntimezone: UTC\ncommand: '{DUMP}'\n")
    assert jobctl("apply").returncode == 0
    done = subprocess.run(crontab_command("slot"), env=CRON_ENV, cwd="/", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [r] = rows(state())
    minute = now - now % 60
    assert (r["trigger"], r["scheduled_for"]) == ("schedule", minute)
    # a daily job: its slot is the day before this minute
    assert seen(state(), r["id"]) == {"SF": iso(minute), "SS": iso(minute - 86400), "SE": iso(minute)}


def test_a_manual_run_has_no_slot():
    write_job(f"schedule: '*/5 * * * *'\ncommand: '{DUMP}'\n")
    assert jobctl("apply").returncode == 0
    assert jobctl("run", "slot", "--quiet").returncode == 0
    [r] = rows(state())
    assert r["trigger"] == "manual"
    assert seen(state(), r["id"]) == {"SF": "", "SS": "", "SE": ""}


def test_a_catch_up_run_sees_the_slot_it_makes_up_for():
    st = state()
    now = time.time()
    missed_at = now - now % 3600 - 3600  # the top of the hour before the last: surely past
    expr = "0 * * * *"
    applied.write(st, job(name="cu", cron=expr, fields=schedule.compile_fields(expr), timezone="UTC",
                          catch_up=3 * 3600, command=DUMP))
    old = now - 5 * 3600
    os.utime(os.path.join(st, "applied", "cu.json"), (old, old))
    assert subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--state-dir", st, "--catch-up-run",
                           str(int(missed_at)), "cu"], env=CRON_ENV, cwd="/", timeout=60).returncode == 0
    [r] = rows(st)
    assert (r["trigger"], r["scheduled_for"]) == ("catchup", missed_at)
    assert seen(st, r["id"]) == {"SF": iso(missed_at), "SS": iso(missed_at - 3600), "SE": iso(missed_at)}


# --- catch_up_mode: each --------------------------------------------------------------------------

def _downtime(name: str, mode: str, window: int, every_min: int = 5, **keys) -> tuple[str, float]:
    st = state()
    expr = f"*/{every_min} * * * *"
    applied.write(st, job(name=name, cron=expr, fields=schedule.compile_fields(expr), timezone="UTC",
                          catch_up=window, catch_up_mode=mode, command=DUMP + "; sleep 0.2", **keys))
    now = time.time()
    old = now - 10 * 3600  # applied before the machine went down, ten hours ago; no run since
    os.utime(os.path.join(st, "applied", f"{name}.json"), (old, old))
    return st, now


def _expected(now: float, window: int, step: int) -> list[float]:
    """Every multiple of ``step`` seconds in [now - window, now - 120] (the pass leaves the last 2 minutes)."""
    first = -(-(now - window) // step) * step
    return [float(t) for t in range(int(first), int(now - 120) + 1, step)]


def test_each_catch_up_replays_every_missed_slot_once_in_order():
    st, now = _downtime("each", "each", 3600)
    want = _expected(now, 3600, 300)
    assert len(want) >= 11
    started = catchup.run_pass(st, now)
    assert [w for _, w in started] == [want[0]]  # one wrapper, starting at the oldest
    wait_for(lambda: len(rows(st)) == len(want) and all(r["status"] != "running" for r in rows(st)), timeout=60)
    for _ in range(3):  # later passes (cron's every minute) start nothing more
        assert catchup.run_pass(st, time.time()) == []
    runs = rows(st)
    assert [r["scheduled_for"] for r in runs] == want  # every slot once, oldest first (ids ascend)
    assert all((r["status"], r["trigger"]) == ("succeeded", "catchup") for r in runs)
    for a, b in zip(runs, runs[1:], strict=False):
        assert b["started_at"] >= a["finished_at"]  # one after another, never together
    for r in runs:
        t = r["scheduled_for"]
        assert seen(st, r["id"]) == {"SF": iso(t), "SS": iso(t - 300), "SE": iso(t)}


def test_a_slot_still_settling_when_catch_up_ran_is_made_up_by_a_later_pass():
    """A minute within the 2 minutes the pass leaves to cron was missed too: the next passes make it up."""
    st, now = _downtime("settle", "each", 600, every_min=1)
    first = _expected(now, 600, 60)
    catchup.run_pass(st, now)
    wait_for(lambda: len(rows(st)) == len(first) and all(r["status"] != "running" for r in rows(st)), timeout=60)
    # its wrapper has gone too (it holds the job's catch-up lock until it exits: the pass skips it till then)
    wait_for(lambda: not live_pids_with("--catch-up-run"), timeout=60)
    later = now + 180  # cron did not run the minutes after the downtime either
    catchup.run_pass(st, later)
    want = _expected(later, 780, 60)
    wait_for(lambda: len(rows(st)) == len(want) and all(r["status"] != "running" for r in rows(st)), timeout=60)
    assert [r["scheduled_for"] for r in rows(st)] == want  # every minute once: none left behind, none twice
    assert catchup.run_pass(st, later) == []


def test_each_catch_up_is_bounded_by_catch_up_max_and_says_what_it_dropped():
    st, now = _downtime("bound", "each", 3600, catch_up_max=3)
    want = _expected(now, 3600, 300)
    catchup.run_pass(st, now)
    wait_for(lambda: len(rows(st)) == 3 and all(r["status"] != "running" for r in rows(st)), timeout=60)
    time.sleep(0.5)
    assert [r["scheduled_for"] for r in rows(st)] == want[-3:]  # the latest three
    log = Path(st, "jobctl-errors.log").read_text()
    assert f"catch-up: {len(want) - 3} missed run(s) before {iso(want[-3])} dropped: catch_up_max is 3" in log


def test_latest_catch_up_is_still_one_run():
    st, now = _downtime("latest", "latest", 3600)
    want = _expected(now, 3600, 300)
    catchup.run_pass(st, now)
    wait_for(lambda: rows(st) and all(r["status"] != "running" for r in rows(st)), timeout=60)
    time.sleep(0.5)
    assert [r["scheduled_for"] for r in rows(st)] == [want[-1]]


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    ("catch_up_mode: all", "2:16: job slot: catch_up_mode: 'all' is not a catch_up_mode; use one of latest, each"),
    ("catch_up_mode: eahc", "2:16: job slot: catch_up_mode: 'eahc' is not a catch_up_mode; use one of latest, "
                            "each; did you mean 'each'?"),
    ("catch_up_max: 0", "2:15: job slot: catch_up_max"),
    ("catch_up_max: 20000", "2:15: job slot: catch_up_max"),
    ("catch_up_max: many", "2:15: job slot: catch_up_max must be a whole number of runs, not a string"),
])
def test_bad_catch_up_keys_are_reported_with_their_place(line, message):
    write_job(f"schedule: '@hourly'\n{line}\ncommand: 'true'\ncatch_up: 1h\n")
    done = jobctl("validate")
    assert done.returncode == 1
    assert message in done.stdout + done.stderr, done.stdout + done.stderr


# --- backfill -------------------------------------------------------------------------------------

def _hourly(command: str) -> None:
    write_job(f"schedule: '0 * * * *'\ntimezone: UTC\ncommand: '{command}'\n")
    assert jobctl("apply").returncode == 0


def test_backfill_interrupted_and_resumed_runs_every_slot_once_in_order():
    _hourly(DUMP + "; sleep 1")
    now = time.time()
    top = now - now % 3600
    since, until = top - 8 * 3600, top - 2 * 3600  # six slots
    want = [float(t) for t in range(int(since), int(until), 3600)]
    args = ["backfill", "slot", "--since", iso(since), "--until", iso(until)]
    proc = subprocess.Popen([sys.executable, "-m", "jobctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    wait_for(lambda: len(rows(state())) >= 2, timeout=60)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the current slot finishes, no next one starts
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "interrupted" in out and "run the same command again" in out
    first = rows(state())
    assert 2 <= len(first) < len(want)
    assert all(r["status"] == "succeeded" for r in first)  # the slot in progress was let finish
    resumed = jobctl(*args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(first)} of {len(want)} slots already succeeded: skipped" in resumed.stdout
    runs = rows(state())
    assert [r["scheduled_for"] for r in runs] == want  # each slot exactly once, oldest first
    assert all((r["status"], r["trigger"]) == ("succeeded", "backfill") for r in runs)
    for r in runs:
        t = r["scheduled_for"]
        assert seen(state(), r["id"]) == {"SF": iso(t), "SS": iso(t - 3600), "SE": iso(t)}
    again = jobctl(*args, "--json")  # all done: nothing runs
    assert again.returncode == 0
    import json

    report = json.loads(again.stdout)
    assert report["counts"] == {"done": len(want)} and len(rows(state())) == len(want)
    history = json.loads(jobctl("history", "slot", "--json").stdout)
    assert {r["trigger"] for r in (history if isinstance(history, list) else history["runs"])} == {"backfill"}


def test_backfill_force_reruns_and_dry_run_changes_nothing():
    _hourly("true")
    now = time.time()
    top = now - now % 3600
    args = ["backfill", "slot", "--since", iso(top - 3 * 3600), "--until", iso(top)]
    dry = jobctl(*args, "--dry-run")
    assert dry.returncode == 1 and dry.stdout.count(" run\n") == 3 and "nothing ran" in dry.stdout
    assert rows(state()) == []
    assert jobctl(*args).returncode == 0
    assert len(rows(state())) == 3
    dry = jobctl(*args, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("skip (succeeded)") == 3
    assert jobctl(*args, "--force").returncode == 0
    assert len(rows(state())) == 6


def test_a_failing_slot_makes_the_exit_code_1():
    _hourly('test "$JOBCTL_SCHEDULED_FOR" != "$(date -u -d @$(( $(date +%s) / 3600 * 3600 - 7200 )) '
            '+%Y-%m-%dT%H:%M:%SZ)"')
    now = time.time()
    top = now - now % 3600
    done = jobctl("backfill", "slot", "--since", iso(top - 3 * 3600), "--until", iso(top))
    assert done.returncode == 1
    assert [r["status"] for r in rows(state())] == ["succeeded", "failed", "succeeded"]


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "--since 'yesterday': not a time"),
    (["--since", "2026-12-01T00:00Z", "--until", "2026-11-01T00:00Z"], "must be before --until"),
    (["--since", "2020-01-01T00:00Z"], "slots of slot between"),
    (["--since", "1h", "--until", "2999-01-01"], "is in the future"),
    (["--since", "0001-01-01T00:00Z"], "out of range"),
    (["--since", "0001-01-01"], "out of range"),
    (["--since", "3000000d"], "before 1970"),
    (["--since", "99999999999999999999d"], "--since"),
])
def test_backfill_usage_errors(args, message):
    write_job("schedule: '* * * * *'\ncommand: 'true'\n")
    assert jobctl("apply").returncode == 0
    done = jobctl("backfill", "slot", *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert rows(state()) == []


def test_backfill_of_a_job_not_applied_fails_clearly():
    done = jobctl("backfill", "nope", "--since", "1h")
    assert done.returncode == 1 and "nope is not applied" in done.stderr


# --- the wrapper's arithmetic agrees with the clock (itself checked against cron's own main loop) ----

@pytest.mark.parametrize("zone", [None, "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_previous_slot_by_arithmetic_is_the_clocks_previous_run(zone):
    from datetime import timedelta

    from jobctl import clock
    from jobctl.runner import wallclock

    table = clock.offsets(zone, 2026) if zone else None
    for expr in ("* * * * *", "*/15 * * * *", "30 2 * * *", "0 * * * *", "5 1-3 * * *", "0 0 29 2 *",
                 "15 */2 * * 1-5", "0 0 13 * 5"):
        f = schedule.compile_fields(expr)
        # every run in two days around each of 2026's clock changes in the zone, and a few beyond
        for day in (datetime(2026, 3, 28, tzinfo=timezone.utc), datetime(2026, 4, 4, tzinfo=timezone.utc),
                    datetime(2026, 10, 24, tzinfo=timezone.utc), datetime(2026, 10, 31, tzinfo=timezone.utc)):
            for run in clock.next_runs(f, zone, day, 60):
                if run > day + timedelta(days=2):
                    break
                # in UTC: arithmetic on an aware datetime of a zone is wall-clock arithmetic
                want = clock.prev_run(f, zone, run.astimezone(timezone.utc) - timedelta(minutes=1))
                got = wallclock.previous_slot(f, table, zone, run.timestamp())
                assert got == (want.timestamp() if want else None), (zone, expr, run)


def test_a_second_backfill_of_the_same_job_is_refused_while_the_first_runs():
    """Two would plan the same slots and run each twice."""
    _hourly("sleep 1")
    now = time.time()
    top = now - now % 3600
    args = ["backfill", "slot", "--since", iso(top - 4 * 3600), "--until", iso(top)]
    first = subprocess.Popen([sys.executable, "-m", "jobctl", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    wait_for(lambda: len(rows(state())) >= 1, timeout=60)
    second = jobctl(*args)
    assert second.returncode == 1 and "another jobctl backfill of slot is running" in second.stderr
    assert first.wait(120) == 0
    runs = rows(state())
    assert sorted(r["scheduled_for"] for r in runs) == [float(t) for t in range(int(top - 4 * 3600), int(top), 3600)]


def test_a_backfill_does_not_hide_a_downtime_from_catch_up():
    """A run for last month, made today, is no sign that today's slots ran."""
    st, now = _downtime("gap", "each", 3600)
    want = _expected(now, 3600, 300)
    assert jobctl("backfill", "gap", "--since", iso(now - 40 * 86400), "--until", iso(now - 40 * 86400 + 600)
                  ).returncode == 0
    backfilled = len(rows(st))
    assert backfilled == 2
    catchup.run_pass(st, now)
    wait_for(lambda: len(rows(st)) == backfilled + len(want) and all(r["status"] != "running" for r in rows(st)),
             timeout=60)
    assert [r["scheduled_for"] for r in rows(st)][backfilled:] == want


def test_pausing_during_an_each_catch_up_says_what_was_not_made_up():
    st, now = _downtime("pz", "each", 3600)
    want = _expected(now, 3600, 300)
    catchup.run_pass(st, now)
    wait_for(lambda: len(rows(st)) >= 1, timeout=60)
    assert jobctl("pause", "pz").returncode == 0
    wait_for(lambda: "catch-up: paused with" in (Path(st, "jobctl-errors.log").read_text()
                                                 if Path(st, "jobctl-errors.log").exists() else ""), timeout=60)
    log = Path(st, "jobctl-errors.log").read_text()
    assert "jobctl backfill pz --since" in log and len(rows(st)) < len(want)
