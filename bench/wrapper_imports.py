"""What the wrapper imports: `python -X importtime` of one scheduled run of `true`.

For each target, runs the exact wrapper argv with -X importtime (median of
several runs per module) and prints the modules it imports beyond a bare
`python -I -c pass` of the same interpreter, with their own import time, and
the total.  importtime adds its own overhead; use the numbers to rank
modules, and wrapper_overhead.py for the real cost.

    .venv/bin/python bench/wrapper_imports.py [--quick] [--targets installed]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import common


def importtime(argv: list[str], env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """[(module, self us, cumulative us, depth)] in import order."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        sys.exit(f"{argv} exited {proc.returncode}: {proc.stderr[-2000:]}")
    found = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _, self_us, cum_us, name = line.split("|", 3) if line.count("|") == 3 else (None, *line[12:].split("|"))
        self_us = self_us.replace("import time:", "")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        found.append((name.strip(), int(self_us), int(cum_us), depth))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 samples instead of 11")
    parser.add_argument("--targets", default="installed", type=common.targets_arg)
    opts = parser.parse_args()
    samples = 3 if opts.quick else 11
    env = common.cron_env()
    out = common.scratch("wrapper_imports")
    common.print_machine()
    for target in opts.targets:
        py = common.python(target)
        state = os.path.join(out, common.slug(target))
        [argv] = common.apply_definitions(py, state, [common.definition("bench-true", "true")])
        for _ in range(2):  # warm-up: the run log exists, .pyc files are written
            importtime(argv, env)
        base = {name for name, *_ in importtime([py, "-I", "-c", "pass"], env)}
        runs = [importtime(argv, env) for _ in range(samples)]
        order = [name for name, *_ in runs[0]]
        self_us = {name: common.median([next(s for n, s, _, _ in r if n == name) for r in runs if
                                        any(n == name for n, *_ in r)]) for name in order}
        depth = {name: d for name, _, _, d in runs[0]}
        extra = [name for name in order if name not in base]
        total_all = sum(self_us[n] for n in order)
        total_extra = sum(self_us[n] for n in extra)
        print(f"\n{target}: {py} (Python {common.python_version(py)}), median of {samples} runs")
        print(f"{len(order)} modules imported, {total_all / 1000:.1f} ms; beyond `python -I -c pass`: "
              f"{len(extra)} modules, {total_extra / 1000:.1f} ms\n")
        rows = [["  " * depth[n] + n, f"{self_us[n] / 1000:.2f}"] for n in extra]
        print(common.table(["module (beyond python -I -c pass; indented: imported by the one above)", "self ms"],
                           rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
