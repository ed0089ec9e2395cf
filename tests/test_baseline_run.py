"""slow and short alerts from the wrapper, judged against runs of controlled durations (real processes).

The job's earlier successes are written into the run log with exact
durations; the run judged is a real wrapper running a real command.  The
alert is what the job's notify command received, read from a file it wrote.
The expected verdicts come from the figures here (median, MAD), not from
jobctl.baseline.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from jobctl import paths, store

from runhelp import rows


def jobctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def history(job: str, durations: list[float]) -> None:
    """Successful runs of ``job`` that took exactly ``durations`` seconds, oldest first, ending an hour ago."""
    os.makedirs(state(), mode=0o700, exist_ok=True)
    log = store.connect(paths.runs_db(state()))
    t = time.time() - 3600 - sum(durations) - len(durations)
    for d in durations:
        run_id = log.start_run(job, "schedule", 1, t, t, 1, "h", "b")
        log.finish_last(run_id, "succeeded", 0, None, t + d, "exit status 0", b"", b"", 0, 0, job, 200, 9e9, t + d)
        t += d + 1
    log.close()


def setup(tmp: Path, command: str, when: str, baseline: str = "") -> Path:
    alerts = tmp / "alerts"
    d = Path(os.environ["JOBCTL_JOBS_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    (d / "j.yaml").write_text(
        f"schedule: '@daily'\ncommand: '{command}'\n{baseline}"
        f"notify:\n  when: [{when}]\n  command: 'echo \"$JOBCTL_EVENT|$JOBCTL_DETAIL\" >> {alerts}'\n")
    assert jobctl("apply").returncode == 0
    return alerts


def run_scheduled() -> None:
    done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled", "j"],
                          capture_output=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr


def test_a_run_far_slower_than_usual_alerts_once_with_both_figures(tmp_path: Path):
    alerts = setup(tmp_path, "sleep 3.2", "slow, short")
    history("j", [1.0, 1.0, 1.1, 0.9, 1.0])  # median 1.0s, MAD 0.0s: slow beyond max(3x, +5 MAD, +1s) = 3.0s
    run_scheduled()
    [line] = alerts.read_text().splitlines()
    event, detail = line.split("|", 1)
    assert event == "slow"
    assert detail.startswith("took 3.")
    assert "usually 1.0s (median of 5 successful runs, MAD 0.0s)" in detail
    assert detail.endswith("slow beyond 3.0s")
    # the judgement is on the run too, where jobctl logs shows notifications
    assert "slow: took 3." in rows(state(), "j")[-1]["notify"]


def test_a_successful_run_far_shorter_than_usual_alerts_short(tmp_path: Path):
    alerts = setup(tmp_path, "true", "short")
    history("j", [20.0, 21.0, 19.0, 20.0, 20.5, 19.5])  # median 20s: short below min(0.1x, -5 MAD, -1s) = 2.0s
    run_scheduled()
    [line] = alerts.read_text().splitlines()
    assert line.startswith("short|took 0.")
    assert "usually 20.0s (median of 6 successful runs, MAD 0.5s)" in line
    assert line.endswith("short below 2.0s")


def test_nothing_is_judged_below_min_runs_nor_within_the_spread(tmp_path: Path):
    alerts = setup(tmp_path, "sleep 3.2", "slow, short", "baseline: {min_runs: 6}\n")
    history("j", [1.0, 1.0, 1.0, 1.0, 1.0])  # 5 < min_runs 6
    run_scheduled()
    assert not alerts.exists()
    # a job whose durations vary widely: 3.2s is within median + 5 MAD
    db = sqlite3.connect(paths.runs_db(state()))
    with db:
        db.execute("DELETE FROM runs")
    db.close()
    history("j", [1.0, 2.0, 0.5, 1.5, 1.0, 2.5, 0.6])  # median 1.0, MAD 0.5: slow beyond 3.5s
    run_scheduled()
    assert not alerts.exists()


def test_a_job_that_does_not_ask_is_not_judged_by_the_wrapper(tmp_path: Path):
    alerts = setup(tmp_path, "sleep 3.2", "failure")
    history("j", [1.0] * 5)
    run_scheduled()
    assert not alerts.exists()
    assert not rows(state(), "j")[-1]["notify"]
