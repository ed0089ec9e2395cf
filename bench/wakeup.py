"""Cost of a time-zone job's wake-up that is not its minute, against a real run.

Debian's cron ignores CRON_TZ, so a job with a timezone wakes the wrapper on a
superset of its minutes; the wake-ups that do not match must cost little and
leave no run row and no lock (issue 5).  Measured interleaved, as cron starts
them (cron's bare environment, stdin /dev/null), wall and CPU from os.wait4:

  python -I -c pass        the interpreter alone
  wake-up, not its minute  the wrapper on a time-zone job due in 12 hours
  same, via zoneinfo       without the offsets table apply stores (datetime + zoneinfo)
  run of `true`            the wrapper running a job (lock, two transactions)

Usage: python bench/wakeup.py [--runs N] [--python PATH] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jobctl import applied, clock  # noqa: E402
from jobctl.jobs import schedule  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root", "SHELL": "/bin/sh", "LOGNAME": "root"}


def once(argv: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd="/")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--python", default=os.path.join(sys.prefix, "bin", "python3"))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    runs = 10 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="jobctl-wakeup-") as state:
        later = (datetime.now(timezone.utc) + timedelta(hours=12)).astimezone()
        expr = f"{later.minute} {later.hour} * * *"
        base = {"command": "true", "shell": "/bin/sh", "env": {}, "timeout": None, "kill_grace": 10,
                "retries": {"attempts": 0}, "concurrency": "forbid", "output_limit": 1 << 20,
                "cron": expr, "fields": schedule.compile_fields(expr)}
        applied.write(state, dict(base, name="tz", timezone="Asia/Kolkata",
                                  tz_offsets=clock.offsets("Asia/Kolkata", time.gmtime().tm_year)))
        # the same job without the precomputed offsets: the zoneinfo path
        applied.write(state, dict(base, name="tz-zoneinfo", timezone="Asia/Kolkata"))
        applied.write(state, dict(base, name="plain", cron="* * * * *", fields=schedule.compile_fields("* * * * *")))
        runner = [args.python, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state]
        variants = {
            "python -I -c pass": [args.python, "-I", "-c", "pass"],
            "wake-up, not its minute": runner + ["tz"],
            "same, via zoneinfo": runner + ["tz-zoneinfo"],
            "run of `true`": runner + ["plain"],
        }
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(runs):
            for name, argv in variants.items():
                results[name].append(once(argv))
        rows = os.path.exists(os.path.join(state, "runs.db"))
        lock = os.path.exists(os.path.join(state, "locks", "tz.lock"))
    print(f"{datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, {args.python}, median of {runs} "
          "interleaved runs")
    for name, values in results.items():
        wall = statistics.median(v[0] for v in values) * 1000
        cpu = statistics.median(v[1] for v in values) * 1000
        print(f"  {name:<26} wall {wall:6.1f} ms   cpu {cpu:6.1f} ms")
    print(f"  tz job after {runs} non-matching wake-ups: lock file {'EXISTS' if lock else 'absent'}; "
          f"run log {'exists (from the plain job)' if rows else 'absent'}")


if __name__ == "__main__":
    main()
