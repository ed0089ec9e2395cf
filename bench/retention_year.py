"""A job that runs every minute for a year: the run log's size before and after retention.

Inserts 525,600 finished runs (with a line of output each) straight into a run
log created by jobctl.store, prunes to the default retention (200 runs, 90
days) as `jobctl prune` does, hands the pages back, and prints the file sizes.

Usage: python bench/retention_year.py [--keep N] [--days D]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from jobctl import retention, store  # noqa: E402


def size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=int, default=retention.DEFAULT_KEEP)
    ap.add_argument("--days", type=int, default=365)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="jobctl-year-") as tmp:
        path = os.path.join(tmp, "runs.db")
        log = store.connect(path)
        now = time.time()
        n = args.days * 24 * 60
        t0 = time.perf_counter()
        with log.write() as db:
            for i in range(n):
                t = now - 60 * (n - i)
                cur = db.execute(
                    "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at,"
                    " finished_at, duration_s, host, output_bytes, reason)"
                    " VALUES ('every-minute', 'succeeded', 0, 'schedule', 1, ?, ?, ?, 0.2, 'h', 12, 'exit status 0')",
                    (t, t, t + 0.2))
                db.execute("INSERT INTO run_output (run_id, head, tail, dropped) VALUES (?, ?, x'', 0)",
                           (cur.lastrowid, b"backup done\n"))
        log.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        fill = time.perf_counter() - t0
        before = size(path)
        t0 = time.perf_counter()
        with log.write() as db:
            pruned = store.prune_job(db, "every-minute", args.keep, retention.DEFAULT_MAX_AGE, now)
        store.vacuum(log.db)
        log.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        took = time.perf_counter() - t0
        left = log.db.execute("SELECT count(*) FROM runs").fetchone()[0]
        after = size(path)
        log.close()
    print(f"{n:,} runs (one a minute for {args.days} days) inserted in {fill:.1f} s: {before / 2**20:.1f} MiB")
    print(f"pruned {pruned:,} (keep {args.keep}, max_age 90d) and vacuumed in {took:.1f} s: "
          f"{left} runs, {after / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
