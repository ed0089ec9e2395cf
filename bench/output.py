"""Output: 1 GiB through the wrapper, against the same bytes through a plain pipe.

  wrapper    a scheduled run (the exact argv of wrapper_argv) of
             `head -c SIZE /dev/zero`, output captured with the default
             output_limit (1 MiB kept: head and tail)
  pipe       sh -c 'head -c SIZE /dev/zero | cat >/dev/null'

Both measured the same way: wall from spawn to reap, and peak RSS and CPU
from os.wait4 (the largest RSS of the child and what it reaped; for the
wrapper that is the wrapper itself).  Bounds from the issue: wrapper peak
RSS under 60 MB, throughput at least half the pipe's.

    .venv/bin/python bench/output.py [--quick] [--size BYTES] [--runs 3] [--targets installed]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

import common

RSS_BOUND = 60_000_000  # bytes
SPEED_BOUND = 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB, one run each")
    parser.add_argument("--size", type=int, help="bytes of output (default 1 GiB)")
    parser.add_argument("--runs", type=int, help="runs of each variant, interleaved (default 3)")
    parser.add_argument("--targets", default="installed", type=common.targets_arg)
    opts = parser.parse_args()
    size = opts.size or ((256 << 20) if opts.quick else (1 << 30))
    runs = opts.runs or (1 if opts.quick else 3)
    env = common.cron_env()
    out = common.scratch("output")

    found = {"pipe": ["/bin/sh", "-c", f"head -c {size} /dev/zero | cat >/dev/null"]}
    states = {}
    for target in opts.targets:
        py = common.python(target)
        states[target] = os.path.join(out, common.slug(target), "state")
        [argv] = common.apply_definitions(py, states[target],
                                          [common.definition("bench-output", f"head -c {size} /dev/zero")])
        found[f"wrapper ({target})"] = argv
    names = list(found)
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    errs = {name: os.path.join(out, f"stderr.{i}") for i, name in enumerate(names)}
    results: dict[str, list[common.Result]] = {name: [] for name in names}
    problems = []
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            res = common.run_small(found[name], env, stderr=errs[name])
            if res.code != 0:
                problems.append(f"{name} exited {res.code}")
            results[name].append(res)
    for name in names:
        if os.path.getsize(errs[name]):
            problems.append(f"{name}: stderr not empty ({errs[name]})")
    for target, state in states.items():
        db = sqlite3.connect(os.path.join(state, "runs.db"))
        got = db.execute("SELECT status, output_bytes, output_truncated FROM runs ORDER BY id").fetchall()
        db.close()
        if got != [("succeeded", size, 1)] * runs:
            problems.append(f"{target}: runs recorded as {sorted(set(got))}, expected {runs} x succeeded, "
                            f"{size} bytes, truncated")

    floor = max(common.run_small(["/bin/true"], env).maxrss_kib for _ in range(3)) * 1024
    common.print_machine(load, cpu_busy, others)
    pipe_wall = common.median([x.wall for x in results["pipe"]])
    rows = []
    for name in names:
        wall = common.median([x.wall for x in results[name]])
        rss = max(x.maxrss_kib for x in results[name]) * 1024
        speed = size / wall
        verdict = ""
        if name != "pipe":
            verdict = "yes" if rss < RSS_BOUND and speed >= SPEED_BOUND * size / pipe_wall else "NO"
        rows.append([name, f"{wall:.2f}", f"{speed / (1 << 20):.0f}", f"{pipe_wall / wall:.2f}",
                     f"{common.median([x.cpu for x in results[name]]):.2f}", f"{rss / 1e6:.1f}", verdict])
    print(f"\n{size} bytes ({size / (1 << 20):.0f} MiB), median of {runs} interleaved runs; bounds: peak RSS < "
          f"{RSS_BOUND / 1e6:.0f} MB, throughput >= {SPEED_BOUND} x pipe\n")
    print(common.table(["variant", "wall s", "MiB/s", "x pipe", "CPU s", "peak RSS MB", "within bounds"], rows))
    print(f"\npeak RSS is measured from a {floor / 1e6:.1f} MB spawner: no figure can be lower (/bin/true shows "
          f"{floor / 1e6:.1f})")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
