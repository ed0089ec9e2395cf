"""The machine's own floor for a herd: N bare interpreters released together, as bench/herd.py releases wrappers.

A herd of wrappers is measured against N x one run's CPU / cores (herd.py).
Short processes started by the thousand cost more CPU each than one alone
(the scheduler, page faults, caches), whatever they run; this measures how
much on this machine with ``python -I -c pass`` and ``python -I -S -c pass``
(the yardsticks of wrapper_overhead.py), through herd.py's own launcher and
gate, so that a herd figure can be read against it.

    .venv/bin/python bench/herd_floor.py [N] [--repeat 3] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import herd  # noqa: E402


def solo_cpu(argv: list[str], runs: int = 20) -> float:
    cpus = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    opts = parser.parse_args()
    cores = os.cpu_count() or 1
    print("; ".join(f"{k}: {v}" for k, v in common.machine().items()))
    print("| argv | solo CPU/run | herd CPU/run (median) | total wall | CPU bound | wall / CPU bound |")
    print("|---|---|---|---|---|---|")
    for argv in ([opts.python, "-I", "-c", "pass"], [opts.python, "-I", "-S", "-c", "pass"]):
        solo = solo_cpu(argv)
        bound = opts.n * solo / cores
        for _ in range(opts.repeat):
            r = herd.herd([argv] * opts.n, {"PATH": "/usr/bin:/bin"}, os.path.join(common.OUT, "herd_floor"))
            cpus = r["cpus"]
            assert isinstance(cpus, list) and not r["bad_codes"]
            print(f"| {' '.join(argv[1:])} | {solo * 1000:.1f} ms | {statistics.median(cpus) * 1000:.1f} ms "
                  f"| {r['total']:.2f} s | {bound:.2f} s | {float(r['total']) / bound:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
