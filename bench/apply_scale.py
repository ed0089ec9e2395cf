"""apply / plan --check / status --json at scale: 1,000 job files, 1,000,000 runs.

Targets (issue 4), wall time including start-up:
  apply from scratch < 3 s; plan --check in sync < 1.5 s; status --json < 1.5 s.

Usage: .venv/bin/python bench/apply_scale.py [--jobs N] [--runs N] [--repeat N] [--quick]
Runs the installed `jobctl` next to this interpreter in subprocesses; everything lives in a
temporary directory (JOBCTL_CRONTAB points at a file there, never at a real crontab).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

SCHEDULES = ["*/5 * * * *", "17 3 * * *", "@hourly", "0 */2 * * *", "30 4 * * 1-5", "@daily", "@every 15m"]


def timed(cmd: list[str], env: dict[str, str], ok=(0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return wall


def fill_log(state: str, jobs: int, runs: int) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from jobctl import store

    os.makedirs(state, mode=0o700, exist_ok=True)
    log = store.connect(os.path.join(state, "runs.db"))
    now = time.time()
    batch = []
    with log.write() as db:
        for i in range(runs):
            job = f"job-{i % jobs:04d}"
            t = now - (runs - i) * 30
            status = "succeeded" if i % 7 else "failed"
            batch.append((job, status, 0 if status == "succeeded" else 1, "schedule", 1, t, t, t + 2, 2.0, 1234,
                          "bench", 0, 0, "exit status 0"))
            if len(batch) == 50_000:
                db.executemany(
                    "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at,"
                    " finished_at, duration_s, pid, host, output_bytes, output_truncated, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
                batch.clear()
        if batch:
            db.executemany(
                "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at,"
                " finished_at, duration_s, pid, host, output_bytes, output_truncated, reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
    log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="100 jobs, 100,000 runs, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.runs, args.repeat = 100, 100_000, 3
    jobctl = os.path.join(os.path.dirname(sys.executable), "jobctl")
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="jobctl-bench-") as tmp:
        jobs_dir = os.path.join(tmp, "jobs.d")
        os.makedirs(jobs_dir)
        for i in range(args.jobs):
            with open(os.path.join(jobs_dir, f"job-{i:04d}.yaml"), "w") as fh:
                fh.write(f'description: bench job {i}\nschedule: "{rng.choice(SCHEDULES)}"\n'
                         f"command: echo {i} && sleep 0\ntimeout: 5m\nretries: {{attempts: 2, delay: 30s}}\n"
                         f"env: {{N: \"{i}\"}}\ntags: [bench]\n")
        env = dict(os.environ, JOBCTL_JOBS_DIR=jobs_dir)
        env.pop("JOBCTL_CRONTAB", None)
        applies, checks = [], []
        for r in range(args.repeat):
            run_env = dict(env, JOBCTL_STATE_DIR=os.path.join(tmp, f"state-{r}"),
                           JOBCTL_CRONTAB=os.path.join(tmp, f"crontab-{r}"))
            applies.append(timed([jobctl, "apply"], run_env))
            checks.append(timed([jobctl, "plan", "--check"], run_env))
        status_env = dict(env, JOBCTL_STATE_DIR=os.path.join(tmp, "state-0"),
                          JOBCTL_CRONTAB=os.path.join(tmp, "crontab-0"))
        t = time.perf_counter()
        fill_log(status_env["JOBCTL_STATE_DIR"], args.jobs, args.runs)
        fill = time.perf_counter() - t
        statuses = [timed([jobctl, "status", "--json"], status_env) for _ in range(args.repeat)]
    print(f"{args.jobs} job files, {args.runs:,} runs in the log (filled in {fill:.1f} s); "
          f"median of {args.repeat} (min-max), wall incl. start-up")
    for label, values, target in (("apply from scratch", applies, 3.0), ("plan --check in sync", checks, 1.5),
                                  ("status --json", statuses, 1.5)):
        med = statistics.median(values)
        print(f"  {label:<22} {med * 1000:7.0f} ms  ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"
              f"  target < {target * 1000:.0f} ms  {'OK' if med < target else 'OVER'}")


if __name__ == "__main__":
    main()
