"""Run requests with real processes and the real run log: submit, the pass, queue, cancel, wait, parameters.

Every request here goes through the real CLI (`python -m jobctl submit`),
the real wrapper it starts, and the real catch-up pass (`python -m
jobctl.runner --catch-up`) where the issue says the pass starts them.  What
ran is read from the run log with sqlite3 and from files the jobs write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from runhelp import live_pids_with, pids_with, rows, wait_for


def jobctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def write_job(name: str, text: str) -> None:
    d = Path(os.environ["JOBCTL_JOBS_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text)


def boot_pass() -> None:
    done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--catch-up", "--state-dir", state()],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


def requests_table() -> list[dict]:
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        db.close()


def over(n: int) -> list[dict]:
    """Wait until ``n`` requests are over (not queued, not running); all requests."""
    def done() -> list[dict] | None:
        found = requests_table()
        return found if sum(r["status"] not in ("queued", "running") for r in found) >= n else None
    return wait_for(done, timeout=90)


NEWS = """schedule: "@yearly"
command: 'echo "list=[$JOBCTL_PARAM_LIST] dry=[$JOBCTL_PARAM_DRY_RUN]" >> {log}'
concurrency: {concurrency}
params:
  list: {{required: true, pattern: '[a-z0-9-]+', description: the mailing list}}
  dry_run: {{default: "no", pattern: 'yes|no'}}
"""


def news(tmp: Path, concurrency: str = "wait") -> Path:
    log = tmp / "sent"
    write_job("news", NEWS.format(log=log, concurrency=concurrency))
    assert jobctl("apply").returncode == 0
    return log


def test_a_request_due_now_runs_once_with_its_parameters_recorded(tmp_path: Path):
    log = news(tmp_path)
    done = jobctl("submit", "news", "-p", "list=customers")
    assert done.returncode == 0, done.stderr
    request_id = int(done.stdout.strip())
    [req] = over(1)
    assert (req["id"], req["status"], req["exit_code"]) == (request_id, "done", 0)
    assert log.read_text() == "list=[customers] dry=[no]\n"
    [run] = rows(state(), "news")
    assert (run["trigger"], run["request_id"], json.loads(run["params"])) == \
        ("request", request_id, {"dry_run": "no", "list": "customers"})
    assert req["run_id"] == run["id"]
    hist = json.loads(jobctl("history", "news", "--json").stdout)
    assert hist[0]["params"] == {"dry_run": "no", "list": "customers"}
    logs = jobctl("logs", str(run["id"]))
    assert logs.stdout == "" and f"run {run['id']} (request {request_id}): params dry_run=no list=customers" in \
        logs.stderr


def test_a_request_survives_a_crash_and_the_boot_pass_runs_it_exactly_once(tmp_path: Path):
    log = news(tmp_path)
    # submitted for a moment later: nothing is started now, and then "the machine goes down"
    done = jobctl("submit", "news", "-p", "list=survivors", "--in", "2s")
    assert done.returncode == 0, done.stderr
    request_id = int(done.stdout)
    assert [r["status"] for r in requests_table()] == ["queued"]
    assert not live_pids_with("--request")
    time.sleep(2.2)
    # after the reboot: the @reboot pass and the minute's pass start at once, and once more later
    passes = [subprocess.Popen([sys.executable, "-m", "jobctl.runner", "--catch-up", "--state-dir", state()])
              for _ in range(3)]
    for p in passes:
        assert p.wait(timeout=60) == 0
    [req] = over(1)
    boot_pass()
    time.sleep(1)
    assert (req["id"], req["status"]) == (request_id, "done")
    assert log.read_text() == "list=[survivors] dry=[no]\n"
    assert len(rows(state(), "news")) == 1
    out = jobctl("queue", "--json")
    assert json.loads(out.stdout) == []


def test_a_request_whose_wrapper_was_killed_is_settled_and_never_run_again(tmp_path: Path):
    write_job("slow", "schedule: '@yearly'\ncommand: 'sleep 30'\n")
    assert jobctl("apply").returncode == 0
    request_id = int(jobctl("submit", "slow").stdout)
    wait_for(lambda: any(r["pid"] for r in rows(state(), "slow")))
    [run] = rows(state(), "slow")
    for pid in pids_with(f"--request {request_id}"):
        os.kill(pid, 9)  # the wrapper dies; its job's process group goes on
    os.killpg(run["pid"], 9)  # and then the job too: a crash
    time.sleep(0.5)
    boot_pass()
    [req] = over(1)
    assert req["status"] == "done" and req["run_id"] == run["id"]
    assert rows(state(), "slow")[0]["status"] == "lost"
    boot_pass()
    assert len(rows(state(), "slow")) == 1


def test_200_submits_with_20_keys_make_20_runs(tmp_path: Path):
    log = tmp_path / "ran"
    write_job("hook", f"schedule: '@yearly'\nconcurrency: allow\nmax_queued: 1000\n"
                      f"params: {{n: {{}}}}\ncommand: 'echo \"$JOBCTL_PARAM_N\" >> {log}'\n")
    assert jobctl("apply").returncode == 0
    # a web hook retried: 10 deliveries of each of 20 events, concurrently, all while they wait their turn
    script = "\n".join(f"{sys.executable} -m jobctl submit hook --in 3s --key event-{i % 20} -p n={i % 20}"
                       for i in range(200))
    done = subprocess.run(["xargs", "-P", "8", "-I", "{}", "sh", "-c", "{}"], input=script, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ids = [int(x) for x in done.stdout.split()]
    errors = [ln for ln in done.stderr.splitlines() if ln.strip() and "already queued" not in ln]
    assert len(ids) == 200 and len(set(ids)) == 20, errors
    time.sleep(3.2)
    boot_pass()
    reqs = over(20)
    assert len(reqs) == 20 and {r["status"] for r in reqs} == {"done"}
    wait_for(lambda: log.exists() and len(log.read_text().split()) == 20)
    assert sorted(int(x) for x in log.read_text().split()) == list(range(20))
    # a key whose request is over can be used again: a new request
    again = int(jobctl("submit", "hook", "--key", "event-0", "-p", "n=0").stdout)
    assert again not in ids


def test_at_in_the_past_runs_at_once_and_in_the_future_waits_for_the_pass(tmp_path: Path):
    log = news(tmp_path)
    assert jobctl("submit", "news", "-p", "list=past", "--at", "2020-01-01T00:00Z").returncode == 0
    over(1)
    assert log.read_text() == "list=[past] dry=[no]\n"
    later = int(jobctl("submit", "news", "-p", "list=later", "--in", "3s").stdout)
    boot_pass()  # not due yet: nothing starts
    time.sleep(0.5)
    assert [r["status"] for r in requests_table() if r["id"] == later] == ["queued"]
    time.sleep(3)
    boot_pass()
    over(2)
    assert log.read_text().splitlines()[-1] == "list=[later] dry=[no]"


def test_requests_of_a_wait_job_run_in_submit_order(tmp_path: Path):
    log = tmp_path / "order"
    write_job("seq", f"schedule: '@yearly'\nconcurrency: wait\nparams: {{n: {{}}}}\n"
                     f"command: 'echo \"$JOBCTL_PARAM_N\" >> {log}; sleep 0.3'\n")
    assert jobctl("apply").returncode == 0
    for n in range(6):
        assert jobctl("submit", "seq", "-p", f"n={n}").returncode == 0
    over(6)
    assert log.read_text().split() == [str(n) for n in range(6)]
    runs = rows(state(), "seq")
    assert [r["request_id"] for r in sorted(runs, key=lambda r: r["id"])] == sorted(r["request_id"] for r in runs)


def test_forbid_records_a_request_skipped_and_wait_says_75(tmp_path: Path):
    write_job("solo", "schedule: '@yearly'\nconcurrency: forbid\ncommand: 'sleep 3'\n")
    assert jobctl("apply").returncode == 0
    first = int(jobctl("submit", "solo").stdout)
    wait_for(lambda: any(r["pid"] for r in rows(state(), "solo")))
    second = int(jobctl("submit", "solo").stdout)
    assert jobctl("wait", str(second), "--timeout", "30s").returncode == 75
    assert jobctl("wait", str(first), "--timeout", "30s").returncode == 0
    skipped = [r for r in rows(state(), "solo") if r["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["request_id"] == second


def test_cancel_and_wait(tmp_path: Path):
    write_job("exit7", "schedule: '@yearly'\ncommand: 'sleep 1; exit 7'\n")
    write_job("long", "schedule: '@yearly'\ncommand: 'sleep 20'\n")
    assert jobctl("apply").returncode == 0
    queued = int(jobctl("submit", "exit7", "--in", "1h").stdout)
    done = jobctl("cancel", str(queued))
    assert done.returncode == 0 and "cancelled" in done.stdout
    assert jobctl("cancel", str(queued)).returncode == 1  # no longer queued
    assert jobctl("wait", str(queued)).returncode == 1
    assert [r["status"] for r in requests_table()] == ["cancelled"]
    assert jobctl("cancel", "999").returncode == 1
    # the exit code passes through
    assert jobctl("wait", jobctl("submit", "exit7").stdout.strip(), "--timeout", "1m").returncode == 7
    # the timeout is honoured, and the request is left as it is
    long_id = jobctl("submit", "long").stdout.strip()
    started = time.monotonic()
    waited = jobctl("wait", long_id, "--timeout", "1s")
    assert waited.returncode == 124 and time.monotonic() - started < 10
    assert "still running" in waited.stderr or "still queued" in waited.stderr
    assert jobctl("cancel", long_id).returncode == 1  # running: cancel does not stop it


def test_max_queued_bounds_the_backlog(tmp_path: Path):
    write_job("small", "schedule: '@yearly'\nmax_queued: 3\ncommand: 'true'\n")
    assert jobctl("apply").returncode == 0
    for _ in range(3):
        assert jobctl("submit", "small", "--in", "1h").returncode == 0
    full = jobctl("submit", "small", "--in", "1h")
    assert full.returncode == 1
    assert full.stderr.strip() == ("jobctl: job small has 3 requests queued, its max_queued; wait for some to run, "
                                   "cancel some (jobctl queue small; jobctl cancel ID) or raise max_queued")
    assert len(requests_table()) == 3


def test_parameters_are_declared_defaulted_refused_and_never_interpolated(tmp_path: Path):
    marker = tmp_path / "pwned"
    out = tmp_path / "seen"
    write_job("echo", f"schedule: '@yearly'\nparams: {{text: {{required: true}}}}\n"
                      f"command: 'printf \"%s\\n\" \"$JOBCTL_PARAM_TEXT\" > {out}'\n")
    write_job("plain", "schedule: '@yearly'\ncommand: 'true'\n")
    assert jobctl("apply").returncode == 0
    evil = f"$(touch {marker}); `touch {marker}`"
    assert jobctl("run", "echo", "-p", f"text={evil}").returncode == 0
    assert out.read_text() == evil + "\n" and not marker.exists()
    done = jobctl("submit", "echo", "-p", f"text={evil}")
    over(1)
    assert out.read_text() == evil + "\n" and not marker.exists()
    assert done.returncode == 0
    # refused, with the declaration's words, and nothing recorded
    missing = jobctl("submit", "echo")
    assert missing.returncode == 2 and "text: required; give -p text=VALUE" in missing.stderr
    undeclared = jobctl("submit", "plain", "-p", "x=1")
    assert undeclared.returncode == 2
    assert "job plain declares no parameter 'x' (it accepts none: it declares no params)" in undeclared.stderr
    assert jobctl("run", "plain", "-p", "x=1").returncode == 2
    assert jobctl("run", "echo", "-p", "text").returncode == 2  # no =
    assert len(requests_table()) == 1


def test_a_paused_jobs_requests_wait_and_run_after_resume(tmp_path: Path):
    log = news(tmp_path)
    assert jobctl("pause", "news").returncode == 0
    assert jobctl("submit", "news", "-p", "list=held").returncode == 0
    boot_pass()
    time.sleep(0.5)
    assert [r["status"] for r in requests_table()] == ["queued"] and not log.exists()
    assert jobctl("resume", "news").returncode == 0
    boot_pass()
    over(1)
    assert log.read_text() == "list=[held] dry=[no]\n"


def test_a_request_claimed_by_a_wrapper_killed_before_its_job_started_runs_once(tmp_path: Path):
    log = news(tmp_path)
    request_id = int(jobctl("submit", "news", "-p", "list=again", "--in", "1h").stdout)
    # a wrapper claimed it and was SIGKILLed before the job's process started: its pid is gone, no run
    dead = subprocess.Popen(["true"])
    dead.wait()
    from jobctl.runner import host

    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    with db:
        db.execute("UPDATE requests SET status = 'running', claimed_pid = ?, claimed_at = ?, host = ?, boot_id = ?,"
                   " due = 0 WHERE id = ?", (dead.pid, time.time(), os.uname().nodename, host.boot_id(), request_id))
    db.close()
    boot_pass()
    [req] = over(1)
    assert (req["status"], req["exit_code"]) == ("done", 0)
    assert log.read_text() == "list=[again] dry=[no]\n"
    boot_pass()
    time.sleep(0.5)
    assert len(rows(state(), "news")) == 1


def test_a_request_whose_requirement_is_not_met_is_skipped_not_left_queued(tmp_path: Path):
    write_job("base", "schedule: '@yearly'\ncommand: 'exit 1'\n")
    write_job("dep", "schedule: '@yearly'\ncommand: 'true'\nrequires: [base]\n")
    assert jobctl("apply").returncode == 0
    jobctl("run", "base", "-q")
    request_id = jobctl("submit", "dep").stdout.strip()
    assert jobctl("wait", request_id, "--timeout", "30s").returncode == 75
    [req] = requests_table()
    assert req["status"] == "skipped" and "requires job base succeeded" in req["reason"]
    [run] = rows(state(), "dep")
    assert run["status"] == "skipped" and run["request_id"] == int(request_id)


def test_a_jobs_own_timeout_is_not_waits(tmp_path: Path):
    write_job("slowish", "schedule: '@yearly'\ntimeout: 1s\ncommand: 'sleep 5'\n")
    assert jobctl("apply").returncode == 0
    waited = jobctl("wait", jobctl("submit", "slowish").stdout.strip(), "--timeout", "30s")
    assert waited.returncode == 124 and "still" not in waited.stderr
    assert "timed out after 1s" in waited.stderr


def test_values_too_large_together_for_one_environment_string_are_refused(tmp_path: Path):
    names = [f"p{i}" for i in range(20)]
    write_job("big", "schedule: '@yearly'\ncommand: 'true'\nparams:\n" + "".join(f"  {n}: {{}}\n" for n in names))
    assert jobctl("apply").returncode == 0
    args = [a for n in names for a in ("-p", f"{n}={'x' * 4096}")]
    done = jobctl("submit", "big", *args)
    assert done.returncode == 2 and "bytes together; at most 65536" in done.stderr
    assert not os.path.exists(os.path.join(state(), "runs.db")) or requests_table() == []
