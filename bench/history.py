"""History: `jobctl history NAME --limit 20 --json` over a run log of 1,000,000 runs.

The log is made by the target's own jobctl.store.connect and filled with
direct SQL (executemany, one transaction): runs spread over ~1000 jobs, one
job ("hot") with a tenth of them, interleaved as a real log would be.  It is
kept under bench/out/history/ and reused while the size and schema match.

Measured, interleaved, each as a subprocess with JOBCTL_STATE_DIR pointing at
the big log (wall from spawn to exit, including interpreter start-up):

  jobctl history hot --limit 20 --json      the issue's case (bound: 400 ms)
  jobctl history --limit 20 --json          every job
  jobctl --version                          the CLI's start-up alone
  python -I -c 'import jobctl.cli.app'          importing the CLI module
  python -I -c pass                         the interpreter

plus the query alone in-process (store.history) with its query plan, and the
modules that cost most at start-up (-X importtime).

    .venv/bin/python bench/history.py [--quick] [--runs 1000000] [--repeat 20] [--targets installed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import common

BOUND_MS = 400.0

FILL = r"""
import os, sys, time
from jobctl import store
path, total, jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = store.connect(path)
t0 = time.time() - total * 30.0  # one run every 30 s, ending now
host, boot = os.uname().nodename, "bench"

def rows():
    for i in range(total):
        job = "hot" if i % 10 == 0 else f"job-{i % (jobs - 1):04d}"
        started = t0 + i * 30.0
        failed = i % 97 == 0
        yield (job, "failed" if failed else "succeeded", 1 if failed else 0, "schedule", 1, started - started % 60,
               started, started + 1.5, 1.5, 10000 + i % 30000, 9000 + i % 30000, host, boot, 120,
               "exit status 1" if failed else "exit status 0")

with log.write() as db:
    db.executemany(
        "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at, finished_at,"
        " duration_s, pid, wrapper_pid, host, boot_id, output_bytes, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
log.close()  # no ANALYZE: a real log never gets one, and it changes query plans
"""

QUERY = r"""
import sys, time
from jobctl import store
log = store.connect(sys.argv[1], create=False)
plan = log.db.execute("EXPLAIN QUERY PLAN SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?",
                      ("hot", 20)).fetchall()
print(" / ".join(r[-1] for r in plan))
for job in ("hot", None):
    times = []
    for _ in range(200):
        t = time.perf_counter()
        rows = log.history(job, 20)
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"{times[len(times) // 2] * 1000:.3f}")
"""


def make_log(py: str, state: str, total: int, jobs: int, regenerate: bool) -> None:
    path = os.path.join(state, "runs.db")
    stamp = os.path.join(state, "bench-stamp")
    want = f"v2 {total} {jobs} {common.helper(py, 'from jobctl import store; print(store.SCHEMA_VERSION)').strip()}"
    if not regenerate and os.path.exists(path):
        try:
            with open(stamp) as fh:
                if fh.read().strip() == want:
                    return
        except OSError:
            pass
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    os.makedirs(state, mode=0o700, exist_ok=True)
    print(f"# filling {path} with {total} runs", file=sys.stderr)
    subprocess.run([py, "-I", "-c", FILL, path, str(total), str(jobs)], check=True)
    with open(stamp, "w") as fh:
        fh.write(want + "\n")


def top_imports(argv: list[str], env: dict[str, str], n: int = 12) -> list[tuple[str, float]]:
    """The top-level imports with the largest cumulative import time, in ms."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True,
                          check=False)
    found = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "imported package" not in line:
            _, _, cum, name = line.split("|", 3) if line.count("|") == 3 else ("", "", "0", "")
            fields = line.split("|")
            name, cum = fields[-1], fields[-2]
            if not name.startswith("  ") and name.strip():
                found.append((name.strip(), int(cum) / 1000))
    return sorted(found, key=lambda x: -x[1])[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 runs, 5 repeats")
    parser.add_argument("--runs", type=int, help="runs in the log (default 1,000,000)")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs the runs are spread over")
    parser.add_argument("--repeat", type=int, help="measurements of each command (default 20)")
    parser.add_argument("--targets", default="installed", type=common.targets_arg)
    parser.add_argument("--regenerate", action="store_true", help="fill a new log even if one matches")
    opts = parser.parse_args()
    total = opts.runs or (100_000 if opts.quick else 1_000_000)
    repeat = opts.repeat or (5 if opts.quick else 20)
    problems = []
    variants: dict[str, list[str]] = {}
    envs: dict[str, dict[str, str]] = {}
    extra: dict[str, tuple[str, str, str, list[tuple[str, float]]]] = {}
    for target in opts.targets:
        py = common.python(target)
        jobctl = os.path.join(os.path.dirname(py), "jobctl")
        state = os.path.join(common.OUT, "history", common.slug(target), "state")
        make_log(py, state, total, opts.jobs, opts.regenerate)
        env = dict(common.cron_env(), JOBCTL_STATE_DIR=state)
        for name, argv in {
            "jobctl history hot --limit 20 --json": [jobctl, "history", "hot", "--limit", "20", "--json"],
            "jobctl history --limit 20 --json": [jobctl, "history", "--limit", "20", "--json"],
            "jobctl --version": [jobctl, "--version"],
            "python -I -c 'import jobctl.cli.app'": [py, "-I", "-c", "import jobctl.cli.app"],
            "python -I -c pass": [py, "-I", "-c", "pass"],
        }.items():
            variants[f"{name} ({target})"] = argv
            envs[f"{name} ({target})"] = env
        check = subprocess.run(variants[f"jobctl history hot --limit 20 --json ({target})"], env=env,
                               capture_output=True, text=True, check=False)
        try:
            got = json.loads(check.stdout)
            ids = [r["id"] for r in got]
            if check.returncode != 0 or len(got) != 20 or {r["job"] for r in got} != {"hot"} or ids != sorted(
                    ids, reverse=True):
                problems.append(f"{target}: history returned {len(got)} runs, exit {check.returncode}")
        except ValueError:
            problems.append(f"{target}: history printed no JSON (exit {check.returncode}): {check.stderr[-500:]}")
        query = common.helper(py, QUERY, os.path.join(state, "runs.db")).splitlines()
        extra[target] = (query[0], query[1], query[2],
                         top_imports([py, "-I", "-m", "jobctl", "history", "hot", "--limit", "20", "--json"], env))

    names = list(variants)
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    for name in names:
        common.run(variants[name], envs[name])  # warm-up: page cache, .pyc
    results: dict[str, list[common.Result]] = {name: [] for name in names}
    out = common.scratch("history-out")
    for r in range(repeat):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            res = common.run(variants[name], envs[name], stdout=os.path.join(out, "stdout"),
                             stderr=os.path.join(out, "stderr"))
            if res.code != 0:
                problems.append(f"{name} exited {res.code}")
            results[name].append(res)

    common.print_machine(load, cpu_busy, others)
    print(f"\n{total} runs over {opts.jobs} jobs ('hot' has {total // 10}); medians of {repeat} interleaved runs; "
          f"bound: history NAME <= {BOUND_MS:.0f} ms wall\n")
    rows = []
    for name in names:
        wall = common.median([x.wall for x in results[name]])
        verdict = ("yes" if wall * 1000 <= BOUND_MS else "NO") if name.startswith("jobctl history hot") else ""
        rows.append([name, common.ms(wall), common.ms(common.median([x.cpu for x in results[name]])), verdict])
    print(common.table(["command", "wall ms", "CPU ms", "within bound"], rows))
    for target, (plan, hot_ms, all_ms, imports) in extra.items():
        print(f"\n{target}: query plan: {plan}")
        print(f"{target}: store.history in-process: 'hot' {hot_ms} ms, every job {all_ms} ms (median of 200)")
        print(f"{target}: largest top-level imports of `python -m jobctl history hot ...` (-X importtime, "
              "cumulative ms):")
        print(common.table(["module", "ms"], [[m, f"{t:.1f}"] for m, t in imports]))
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
