"""An operator's first day, the run side: skips never push real runs out, a run with its retries is one
run, skips carry no exit code, cron mail on failure (cronic's contract), `run` says what happened."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest

from jobctl import applied, store
from jobctl.read import metrics

from runhelp import RUNNER, job, rows


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


def scheduled(state: str, name: str) -> subprocess.CompletedProcess:
    """The crontab line's invocation, as cron runs it (no terminal)."""
    return subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state, name],
                          capture_output=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL)


# --- item 2: pausing never wipes history -------------------------------------------

def test_skips_never_push_real_runs_out(state):
    os.makedirs(state)
    log = store.connect(os.path.join(state, "runs.db"))
    for i in range(5):
        rid = log.start_run("j", "schedule", 1, None, 1000.0 + i, 1, "h", "b")
        log.finish_run(rid, "succeeded", 0, None, 1000.5 + i, "exit status 0", b"out %d\n" % i, b"", 0, 6)
    for i in range(300):  # a long pause: far more skips than keep
        log.record("j", "skipped", "schedule", 1, None, 2000.0 + i, 1, "h", "skipped: paused", None)
    with log.write() as db:
        store.prune_job(db, "j", 3, 10**9, 3000.0)
    kept = log.db.execute("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status").fetchall()
    assert [tuple(r) for r in kept] == [("skipped", 3), ("succeeded", 3)]  # keep counts each kind apart
    outputs = [bytes(r[0]) for r in log.db.execute("SELECT head FROM run_output ORDER BY run_id")]
    assert outputs == [b"out 2\n", b"out 3\n", b"out 4\n"]  # the real runs' output survived the pause
    log.close()


# --- item 3: a run with its retries is one run -------------------------------------

def test_a_run_with_retries_counts_once(state):
    defn = job("r", command="echo try $JOBCTL_ATTEMPT; exit 3",
               retries={"attempts": 2, "delay": 0, "backoff": 1, "max_delay": 0})
    applied.write(state, defn)
    result = scheduled(state, "r")
    assert result.returncode == 3
    assert [r["attempt"] for r in rows(state)] == [1, 2, 3]  # three attempts recorded ...
    log = store.connect(os.path.join(state, "runs.db"))
    assert log.failure_streak("r") == 1  # ... one failed run
    text = metrics.exposition(state, log)
    assert 'jobctl_job_runs{job_name="r",status="failed"} 1' in text
    assert 'jobctl_job_consecutive_failures{job_name="r"} 1' in text
    log.close()
    assert scheduled(state, "r").returncode == 3
    log = store.connect(os.path.join(state, "runs.db"))
    assert log.failure_streak("r") == 2
    log.close()


def test_an_old_log_is_marked_by_the_migration(tmp_path):
    """Runs recorded before the retried column: the migration marks attempts a retry followed."""
    import sqlite3

    path = str(tmp_path / "runs.db")
    log = store.connect(path)
    a = log.start_run("r", "schedule", 1, None, 1.0, 1, "h", "b")
    log.finish_run(a, "failed", 1, None, 2.0, "exit status 1", b"", b"", 0, 0)
    b = log.start_run("r", "retry", 2, None, 3.0, 1, "h", "b")
    log.finish_run(b, "failed", 1, None, 4.0, "exit status 1", b"", b"", 0, 0)
    log.close()
    db = sqlite3.connect(path)  # as an older jobctl left it: no column, no later index, user_version 2
    db.execute("DROP INDEX runs_job_scheduled")
    db.execute("DROP INDEX runs_parent")
    db.execute("ALTER TABLE runs DROP COLUMN retried")
    db.execute("ALTER TABLE runs DROP COLUMN failures")
    for column in ("parent_run_id", "params", "request_id"):
        db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    db.execute("DROP TABLE alerts")
    db.execute("DROP TABLE requests")
    db.execute("DELETE FROM schema_migrations WHERE version >= 3")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    log = store.connect(path)
    assert [tuple(r) for r in log.db.execute("SELECT id, retried FROM runs ORDER BY id")] == [(a, 1), (b, 0)]
    assert log.failure_streak("r") == 1
    log.close()


# --- item 6: skips are recorded one way ---------------------------------------------

def test_skips_record_no_exit_code(state, tmp_path):
    applied.write(state, job("p", command="true"))
    os.makedirs(os.path.join(state, "paused"))
    open(os.path.join(state, "paused", "p"), "w").close()
    assert scheduled(state, "p").returncode == 0
    applied.write(state, job("f", command="sleep 5"))
    holder = subprocess.Popen([*RUNNER, "--state-dir", state, "--quiet", "f"], stdin=subprocess.DEVNULL)
    try:
        from runhelp import wait_for

        wait_for(lambda: [r for r in rows(state, "f") if r["status"] == "running" and r["pid"]])
        assert scheduled(state, "f").returncode == 75  # the process still says "skipped"
    finally:
        holder.kill()
        holder.wait()
    skips = [r for r in rows(state) if r["status"] == "skipped"]
    assert len(skips) == 2 and all(r["exit_code"] is None for r in skips)


# --- item 7: cron mail --------------------------------------------------------------

def test_under_cron_success_prints_nothing_and_failure_prints_a_summary_and_the_tail(state):
    applied.write(state, job("ok", command="echo fine"))
    quiet = scheduled(state, "ok")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")
    applied.write(state, job("bad", command="for i in $(seq 1 40); do echo line $i; done; exit 4"))
    loud = scheduled(state, "bad")
    assert loud.returncode == 4
    lines = loud.stdout.decode().splitlines()
    run_id = rows(state, "bad")[-1]["id"]
    assert lines[0].startswith("jobctl: job bad: failed, exit code 4, ") and f"run {run_id}" in lines[0]
    assert lines[1] == f"--- last 20 lines of output (jobctl logs {run_id}) ---"
    assert lines[2:] == [f"line {i}" for i in range(21, 41)]


def test_cron_mail_always_and_never(state):
    applied.write(state, job("a", command="echo hello", cron_mail="always"))
    out = scheduled(state, "a").stdout.decode()
    assert out.startswith("jobctl: job a: succeeded, exit code 0") and out.endswith("hello\n")
    applied.write(state, job("n", command="echo oops; exit 1", cron_mail="never"))
    result = scheduled(state, "n")
    assert (result.returncode, result.stdout, result.stderr) == (1, b"", b"")


def test_a_scheduled_timeout_and_a_cannot_start_are_mailed_and_logged(state):
    applied.write(state, job("t", command="sleep 30", timeout=1, kill_grace=1))
    out = scheduled(state, "t").stdout.decode()
    assert out.startswith("jobctl: job t: timeout, exit code 124") and "timed out after 1s" in out
    applied.write(state, job("c", command="true", working_dir="/nonexistent/dir"))
    result = scheduled(state, "c")
    assert result.returncode == 125
    assert result.stdout.decode().startswith("jobctl: job c: failed, exit code 125")
    with open(os.path.join(state, "jobctl-errors.log")) as fh:
        assert "job c: cannot start: working directory /nonexistent/dir" in fh.read()  # item 17


# --- item 14: `run` says what happened ----------------------------------------------

def _on_a_terminal(state: str, defn: dict, *flags: str) -> tuple[int, str]:
    import json

    leader, follower = pty.openpty()
    proc = subprocess.Popen([*RUNNER, "--state-dir", state, "--definition-stdin", *flags, defn["name"]],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    proc.stdin.write(json.dumps(defn).encode())
    proc.stdin.close()
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode()


def test_run_on_a_terminal_says_each_retry_and_how_it_ended(state):
    defn = job("x", command="exit 2", retries={"attempts": 2, "delay": 0, "backoff": 1, "max_delay": 0})
    code, err = _on_a_terminal(state, defn)
    assert code == 2
    lines = [line for line in err.replace("\r", "").splitlines() if line]
    assert lines[0] == "jobctl: job x: attempt 2/3 after 0s (attempt 1: exit status 2)"
    assert lines[1] == "jobctl: job x: attempt 3/3 after 0s (attempt 2: exit status 2)"
    last = rows(state, "x")[-1]
    assert lines[2].startswith("jobctl: job x: failed, exit code 2, ") and f"run {last['id']}, attempt 3 of 3" \
        in lines[2]


def test_run_quiet_on_a_terminal_says_nothing(state):
    code, err = _on_a_terminal(state, job("q", command="exit 2"), "--quiet")
    assert (code, err) == (2, "")


# --- review: retention keeps whole runs; the streak outlives what retention prunes ---

def test_keep_counts_runs_with_their_retries_and_the_streak_is_not_capped(state, tmp_path):
    fired = tmp_path / "fired"
    defn = job("n", command="echo x; exit 1", retries={"attempts": 2, "delay": 0, "backoff": 1, "max_delay": 0},
               history={"keep": 2, "max_age": 10**8},
               notify={"when": ["failure"], "after_failures": 3, "command": f"echo $JOBCTL_RUN_ID >> {fired}"})
    applied.write(state, defn)
    for _ in range(5):
        assert scheduled(state, "n").returncode == 1
    kept = rows(state, "n")
    # two whole runs of three attempts each: attempt 1 of a kept run is never cut off
    assert [r["attempt"] for r in kept] == [1, 2, 3, 1, 2, 3]
    log = store.connect(os.path.join(state, "runs.db"))
    assert log.failure_streak("n") == 5  # five failed runs, though only two are kept
    log.close()
    from runhelp import wait_for

    wait_for(lambda: fired.exists() and len(fired.read_text().split()) == 3)  # runs 3, 4 and 5 alerted


def test_a_long_pause_keeps_only_keep_skips(state):
    applied.write(state, job("p", command="true", history={"keep": 3, "max_age": 10**8}))
    os.makedirs(os.path.join(state, "paused"))
    open(os.path.join(state, "paused", "p"), "w").close()
    for _ in range(8):
        assert scheduled(state, "p").returncode == 0
    # pruned as they come, not at the next run: at most keep plus retention's margin (store.margin)
    kept = [r["status"] for r in rows(state, "p")]
    assert set(kept) == {"skipped"} and 3 <= len(kept) <= 3 + store.margin(3, 10**8)[0] < 8
    from jobctl import retention

    log = store.connect(os.path.join(state, "runs.db"))
    retention.prune_all(log, state, time.time())  # jobctl prune: down to keep exactly
    log.close()
    assert [r["status"] for r in rows(state, "p")] == ["skipped"] * 3


def test_a_timer_run_prints_no_cron_mail(state):
    """cron_mail is cron's: under a systemd timer (--timer) the journal would get it twice."""
    applied.write(state, job("t", command="echo oops; exit 1"))
    done = subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--timer", "--state-dir", state, "t"],
                          capture_output=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (1, b"")
