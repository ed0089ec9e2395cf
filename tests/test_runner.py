"""The wrapper, with real processes, real signals and real SQLite files."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys

import pytest

from runhelp import job, output, peak_rss, pids_with, rows, run, start, wait_for


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


@pytest.fixture
def marker():
    """A sleep argument no other process on the machine has, to find leftovers."""
    import random

    return f"1000.{os.getpid()}{random.randrange(10**6):06d}"


def test_success_is_recorded_with_every_field(state, tmp_path):
    result = run(state, job(command="echo hello"))
    assert result.returncode == 0, result.stderr
    [r] = rows(state)
    assert r["status"] == "succeeded"
    assert r["exit_code"] == 0 and r["signal"] is None
    assert r["trigger"] == "manual" and r["attempt"] == 1
    assert r["reason"] == "exit status 0"
    assert r["finished_at"] >= r["started_at"] and r["duration_s"] >= 0
    assert r["pid"] > 0 and r["host"] == os.uname().nodename
    assert r["output_bytes"] == 6 and r["output_truncated"] == 0
    assert output(state, r["id"]) == (b"hello\n", b"", 0)


def test_failure_exit_code_is_the_jobs(state):
    result = run(state, job(command="exit 3"))
    assert result.returncode == 3
    [r] = rows(state)
    assert (r["status"], r["exit_code"], r["reason"]) == ("failed", 3, "exit status 3")


def test_state_files_are_private(state):
    run(state, job())
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(state, "runs.db")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.join(state, "locks", "t.lock")).st_mode) == 0o600


def test_clean_environment_and_stdin(state, tmp_path):
    out = tmp_path / "env.txt"
    defn = job(command=f"env > {out}; cat; echo stdin-done", env={"FOO": "bar", "PATH": "/usr/bin:/bin"},
               working_dir=str(tmp_path))
    env = dict(os.environ, LEAKED_SECRET="x", PYTHONPATH=os.pathsep.join(sys.path))
    proc = start(state, defn, env=env)
    proc.communicate(timeout=30)
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    seen.pop("PWD", None)  # the shell adds it
    seen.pop("SHLVL", None)
    seen.pop("_", None)
    import pwd

    me = pwd.getpwuid(os.geteuid())
    [r] = rows(state)
    assert seen == {
        "HOME": me.pw_dir, "LOGNAME": me.pw_name, "USER": me.pw_name, "SHELL": "/bin/sh",
        "PATH": "/usr/bin:/bin",  # the job's env wins over the clean default
        "LANG": "C.UTF-8", "FOO": "bar",
        "JOBCTL_JOB": "t", "JOBCTL_RUN_ID": str(r["id"]), "JOBCTL_ATTEMPT": "1",
        # a manual run stands for no scheduled time
        "JOBCTL_SCHEDULED_FOR": "", "JOBCTL_SLOT_START": "", "JOBCTL_SLOT_END": "",
        # nor was it started by another run's then/on_failure
        "JOBCTL_PARENT_RUN_ID": "", "JOBCTL_PARENT_JOB": "", "JOBCTL_PARENT_STATUS": "", "JOBCTL_PARENT_OUTPUT": "",
    }
    assert output(state, r["id"])[0] == b"stdin-done\n"  # cat read /dev/null, not a terminal or pipe


def test_working_dir_and_argv_command(state, tmp_path):
    result = run(state, job(command=["pwd"], working_dir=str(tmp_path)))
    assert result.returncode == 0
    [r] = rows(state)
    assert output(state, r["id"])[0] == f"{tmp_path}\n".encode()


def test_argv_command_is_not_shell_interpreted(state):
    run(state, job(command=["echo", "$HOME", "a;b", "%d"]))
    [r] = rows(state)
    assert output(state, r["id"])[0] == b"$HOME a;b %d\n"


def test_missing_program_and_working_dir(state, tmp_path):
    result = run(state, job(command=["no-such-program-xyz"]))
    assert result.returncode == 127
    result = run(state, job(name="wd", command="true", working_dir=str(tmp_path / "missing")))
    assert result.returncode == 125
    a, b = rows(state)
    assert a["status"] == "failed" and "no-such-program-xyz" in a["reason"] and "No such file" in a["reason"]
    assert b["status"] == "failed" and b["reason"].startswith("cannot start: working directory")


def test_stdout_and_stderr_interleave_in_arrival_order(state):
    run(state, job(command="echo 1; sleep 0.05; echo 2 >&2; sleep 0.05; echo 3; sleep 0.05; echo 4 >&2"))
    [r] = rows(state)
    assert output(state, r["id"])[0] == b"1\n2\n3\n4\n"


def test_output_keeps_head_and_tail_and_counts_the_rest(state):
    # 100 numbered lines of 10 bytes; keep 200 bytes: lines 1-10 and 91-100.
    cmd = "i=1; while [ $i -le 100 ]; do printf 'line %04d\\n' $i; i=$((i+1)); done"
    run(state, job(command=cmd, output_limit=200))
    [r] = rows(state)
    head, tail, dropped = output(state, r["id"])
    assert head == b"".join(b"line %04d\n" % i for i in range(1, 11))
    assert tail == b"".join(b"line %04d\n" % i for i in range(91, 101))
    assert dropped == 800 and r["output_bytes"] == 1000 and r["output_truncated"] == 1


def test_200_mib_of_output_keeps_memory_flat(state):
    limit = 1 << 20
    code, rss = peak_rss(state, job(command="head -c 209715200 /dev/zero", output_limit=limit))
    assert code == 0
    [r] = rows(state)
    assert r["output_bytes"] == 200 * 1024 * 1024
    head, tail, dropped = output(state, r["id"])
    assert len(head) == len(tail) == limit // 2 and dropped == 200 * 1024 * 1024 - limit
    assert rss < 60 * 1024, f"wrapper peak RSS {rss} KiB"


def test_forbid_records_a_skip_and_exits_75(state):
    first = start(state, job(command="sleep 30"))
    wait_for(lambda: rows(state) and rows(state)[0]["pid"])
    second = run(state, job(command="echo should-not-run"))
    assert second.returncode == 75
    skipped = rows(state)[1]
    assert skipped["status"] == "skipped" and skipped["exit_code"] is None  # no exit code; the process exits 75
    assert skipped["reason"] == f"skipped: previous run {rows(state)[0]['id']} still running"
    first.send_signal(signal.SIGTERM)
    first.wait(30)


def _sibling_checking_job(tmp_path, seconds: float) -> str:
    """A job that notices when another copy of itself runs at the same time.

    mkdir is atomic: it fails exactly when a sibling is inside.
    """
    inside = tmp_path / "inside"
    overlap = tmp_path / "overlap"
    return (f"mkdir {inside} 2>/dev/null || echo overlap >> {overlap}; "
            f"sleep {seconds}; rmdir {inside} 2>/dev/null; true")


def test_sigkilled_wrapper_keeps_the_lock_while_its_job_lives(state, tmp_path):
    cmd = _sibling_checking_job(tmp_path, 3)
    first = start(state, job(command=cmd))
    wait_for(lambda: (tmp_path / "inside").exists())
    first.kill()  # SIGKILL: the wrapper cannot clean up
    first.wait()
    second = run(state, job(command=cmd))
    assert second.returncode == 75, second.stderr
    assert not (tmp_path / "overlap").exists()
    # Once the orphaned job ends, the lock is free again and the dead run is lost, not blocking.
    wait_for(lambda: not (tmp_path / "inside").exists())
    wait_for(lambda: run(state, job(command="true")).returncode == 0, timeout=10, interval=0.2)
    statuses = [r["status"] for r in rows(state)]
    assert statuses[0] == "lost" and statuses[1] == "skipped" and "succeeded" in statuses
    assert not (tmp_path / "overlap").exists()


def test_allow_runs_concurrently(state, tmp_path):
    cmd = _sibling_checking_job(tmp_path, 1)
    procs = [start(state, job(command=cmd, concurrency="allow")) for _ in range(2)]
    assert [p.communicate(timeout=30)[1] for p in procs] == [b"", b""]
    assert [p.returncode for p in procs] == [0, 0]
    assert (tmp_path / "overlap").exists()
    assert [r["status"] for r in rows(state)] == ["succeeded", "succeeded"]


def test_wait_queues_behind_the_running_one(state, tmp_path):
    cmd = _sibling_checking_job(tmp_path, 1)
    first = start(state, job(command=cmd, concurrency="wait"))
    wait_for(lambda: (tmp_path / "inside").exists())
    second = start(state, job(command=cmd, concurrency="wait"))
    assert first.wait(30) == 0 and second.wait(30) == 0
    a, b = rows(state)
    assert not (tmp_path / "overlap").exists()
    assert b["started_at"] >= a["finished_at"]
    assert (a["status"], b["status"]) == ("succeeded", "succeeded")


def test_replace_kills_the_running_group_and_runs(state, tmp_path, marker):
    first = start(state, job(command=f"S={marker}; sleep $S & sleep $S; wait", concurrency="replace"))
    wait_for(lambda: len(pids_with(f"sleep {marker}")) == 2)
    second = run(state, job(command="echo new", concurrency="replace"))
    assert second.returncode == 0
    first.wait(30)
    old, new = rows(state)
    assert old["status"] == "killed" and old["signal"] == signal.SIGTERM
    assert "replaced" in old["reason"]
    assert new["status"] == "succeeded" and new["started_at"] >= old["finished_at"]
    assert pids_with(f"sleep {marker}") == []


def test_timeout_kills_the_whole_group_including_grandchildren(state, marker):
    result = run(state, job(command=f"S={marker}; sleep $S & sleep $S", timeout=1, kill_grace=1))
    assert result.returncode == 124
    [r] = rows(state)
    assert (r["status"], r["exit_code"], r["reason"]) == ("timeout", 124, "timed out after 1s")
    assert pids_with(f"sleep {marker}") == []


def test_timeout_escalates_to_sigkill_after_grace(state, marker):
    cmd = f"S={marker}; trap '' TERM; sleep $S & sleep $S"
    result = run(state, job(command=cmd, timeout=1, kill_grace=1))
    assert result.returncode == 124
    assert pids_with(f"sleep {marker}") == []


def test_retries_with_exponential_backoff(state):
    defn = job(command='echo "attempt $JOBCTL_ATTEMPT"; exit 2',
               retries={"attempts": 2, "delay": 1, "backoff": 2, "max_delay": 60})
    result = run(state, defn)
    assert result.returncode == 2
    a, b, c = rows(state)
    assert [r["attempt"] for r in (a, b, c)] == [1, 2, 3]
    assert [r["trigger"] for r in (a, b, c)] == ["manual", "retry", "retry"]
    assert output(state, c["id"])[0] == b"attempt 3\n"
    # delay × backoff^n: 1 s, then 2 s (lower bounds: the backoff happened)
    assert b["started_at"] - a["finished_at"] >= 1.0
    assert c["started_at"] - b["finished_at"] >= 2.0


def test_retries_stop_at_first_success_and_cap_delay(state, tmp_path):
    counter = tmp_path / "n"
    cmd = f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]"
    result = run(state, job(command=cmd, retries={"attempts": 5, "delay": 3, "backoff": 10, "max_delay": 1}))
    assert result.returncode == 0
    a, b = rows(state)
    assert (a["status"], b["status"]) == ("failed", "succeeded")
    assert 1.0 <= b["started_at"] - a["finished_at"] < 3.0  # capped at max_delay, not 3 s


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_to_wrapper_is_passed_to_the_group(state, sig, marker):
    proc = start(state, job(command=f"S={marker}; sleep $S & sleep $S", kill_grace=2))
    wait_for(lambda: len(pids_with(f"sleep {marker}")) == 2)
    proc.send_signal(sig)
    assert proc.wait(30) == 128 + sig
    [r] = rows(state)
    assert r["status"] == "killed" and r["exit_code"] == 128 + sig and r["signal"] == sig
    assert r["reason"] == f"killed: {signal.Signals(sig).name} sent to the wrapper"
    assert pids_with(f"sleep {marker}") == []


def test_lost_run_is_finalised_by_the_next_run(state, marker):
    proc = start(state, job(command=f"S={marker}; sleep $S"))
    wait_for(lambda: pids_with(f"sleep {marker}"))
    pgid = rows(state)[0]["pid"]
    proc.kill()
    os.killpg(pgid, signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not pids_with(f"sleep {marker}"))
    assert rows(state)[0]["status"] == "running"
    assert run(state, job(command="true")).returncode == 0
    lost, ok = rows(state)
    assert lost["status"] == "lost" and lost["reason"].startswith("lost: wrapper")
    assert lost["finished_at"] is not None and ok["status"] == "succeeded"


def _broken_log_case(state, kind):
    os.makedirs(state, mode=0o700, exist_ok=True)
    db = os.path.join(state, "runs.db")
    if kind == "corrupt":
        with open(db, "wb") as fh:
            fh.write(b"this is not a database" * 200)
    elif kind == "directory":
        os.mkdir(db)
    elif kind == "newer-schema":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 999")
        conn.close()


@pytest.mark.parametrize("kind", ["corrupt", "directory", "newer-schema"])
def test_broken_log_never_stops_the_job(state, tmp_path, kind):
    _broken_log_case(state, kind)
    flag = tmp_path / "ran"
    result = run(state, job(command=f"touch {flag}; exit 4"))
    assert flag.exists()
    assert result.returncode == 4
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobctl: job t: run log unusable")
    with open(os.path.join(state, "jobctl-errors.log")) as fh:
        assert "run log unusable" in fh.read()


def test_log_locked_past_busy_timeout_still_runs_the_job(state, tmp_path):
    run(state, job())  # create the log
    holder = sqlite3.connect(os.path.join(state, "runs.db"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        flag = tmp_path / "ran"
        result = run(state, job(command=f"touch {flag}"), timeout=90)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert flag.exists() and result.returncode == 0
    assert "locked" in result.stderr.decode()


def test_three_hundred_wrappers_at_once_are_all_recorded(state):
    run(state, job(name="warmup"))  # the log exists, as it does after the first run
    procs = [start(state, job(name=f"j{i}", command="true"), stderr=subprocess.PIPE) for i in range(300)]
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        if p.returncode != 0 or err:
            errors.append((p.returncode, err))
    assert errors == []
    recorded = [r for r in rows(state) if r["job"] != "warmup"]
    assert len(recorded) == 300 and {r["status"] for r in recorded} == {"succeeded"}
    assert not os.path.exists(os.path.join(state, "jobctl-errors.log"))


def test_scheduled_run_reads_the_applied_definition(state, tmp_path):
    from jobctl import applied

    applied.write(state, job(name="sched", command="echo scheduled"))
    result = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", state, "--scheduled", "sched"],
                            capture_output=True, timeout=30, cwd="/")
    assert result.returncode == 0 and result.stdout == b""  # cron would mail any output
    [r] = rows(state)
    assert r["trigger"] == "schedule" and r["scheduled_for"] == r["started_at"] - r["started_at"] % 60
    assert output(state, r["id"])[0] == b"scheduled\n"


def test_scheduled_run_of_an_unapplied_job_fails_clearly(state):
    result = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", state, "--scheduled", "nope"],
                            capture_output=True, timeout=30)
    assert result.returncode == 125
    assert b"not applied" in result.stderr and b"jobctl apply" in result.stderr


def test_the_job_keeps_crons_umask_and_default_sigpipe(state, tmp_path):
    f = tmp_path / "made"
    old = os.umask(0o022)
    try:
        run(state, job(command=f"touch {f}; yes | head -1 >/dev/null; echo $?"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o644
    [r] = rows(state)
    assert output(state, r["id"])[0] == b"0\n" and r["status"] == "succeeded"
