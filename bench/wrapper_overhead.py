"""Wrapper overhead: one scheduled run of `true`, as cron starts it.

Compares, in one interleaved run (round robin, the starting variant rotating
each round):

  sh -c true        the bare job
  flock idiom       sh -c 'flock -n LOCK timeout 60 sh -c true >>LOG 2>&1'
  wrapper (TARGET)  the exact argv of jobctl.runner.wrapper_argv(state, name),
                    on a definition written by jobctl.applied.write
  python -I -c pass the target's interpreter alone: a yardstick for how fast
                    the machine is right now (it varies on a shared VM), and
                    issue 13's measure: each wrapper's wall and CPU as a ratio
                    to it on the same interpreter (the median of the per-round
                    ratios, both run in every round; target <= 1.5)
  wrapper, old line the crontab line as jobctl wrote it before issue 13
                    (PYTHON -I -m jobctl.runner --scheduled --state-dir S NAME),
                    shown only when the target now writes another form: old
                    lines must keep working

Wall is spawn to reap; CPU is user+sys of the child and everything it reaped
(os.wait4).  Every run must exit 0 with nothing on stderr.

--install-variants adds copies of each non-dev venv with one change: no
setuptools distutils-precedence.pth, or no .pyc for jobctl (python -B).

--alternatives adds the interpreter floor without site (-S) and
other ways of starting the same wrapper (no runpy: -c; no site: -S -c with
the package directory put on sys.path by hand) to see what each costs.

    .venv/bin/python bench/wrapper_overhead.py [--quick] [--runs N]
        [--targets dev,installed,system] [--alternatives] [--install-variants]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import common

TARGET_MS = 40.0  # the bound on median wall and CPU over bare sh -c true
TARGET_RATIO = 1.5  # issue 13: a scheduled run within 1.5 x python -I -c pass on the same interpreter

# The same exit as `python -m jobctl.runner` of that revision (_exit_now skips teardown).
NO_RUNPY = "from jobctl.runner.__main__ import run; run()"
NO_SITE = "import sys; sys.path.append({dir!r}); " + NO_RUNPY


def _venv_copy(py: str, name: str) -> str:
    """A fresh copy of the venv of interpreter py under bench/out/; returns its site-packages."""
    import glob
    import shutil

    venv = os.path.dirname(os.path.dirname(py))
    copy = os.path.join(common.OUT, name)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(venv, copy, symlinks=True)
    [site] = glob.glob(os.path.join(copy, "lib", "python*", "site-packages"))
    return site


def install_variants(target: str, py: str, argv: list[str]) -> dict[str, list[str]]:
    """The same install with one thing changed, for what install.sh should do."""
    found = {}
    site = _venv_copy(py, f"venv-nopth-{common.slug(target)}")
    pth = os.path.join(site, "distutils-precedence.pth")  # setuptools' hook, run by site at every start
    if os.path.exists(pth):
        os.unlink(pth)
        copy_py = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(site))), "bin", "python")
        found[f"wrapper, no distutils-precedence.pth ({target})"] = [copy_py, *argv[1:]]
    site = _venv_copy(py, f"venv-nopyc-{common.slug(target)}")
    import shutil

    shutil.rmtree(os.path.join(site, "jobctl", "__pycache__"))
    copy_py = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(site))), "bin", "python")
    # -B: as when __pycache__ cannot be written (a root-owned venv, jobs run as a user)
    found[f"wrapper, jobctl without .pyc ({target})"] = [copy_py, "-B", *argv[1:]]
    return found


def variants(targets: list[str], out: str, alternatives: bool, install: bool) -> dict[str, list[str]]:
    lock, log = os.path.join(out, "idiom.lock"), os.path.join(out, "idiom.log")
    found = {
        "sh -c true": ["/bin/sh", "-c", "true"],
        "flock idiom": ["/bin/sh", "-c", f"flock -n {lock} timeout 60 sh -c true >>{log} 2>&1"],
    }
    for target in targets:
        py = common.python(target)
        state = os.path.join(out, common.slug(target), "state")
        [argv] = common.apply_definitions(py, state, [common.definition("bench-true", "true")])
        found[f"wrapper ({target})"] = argv
        found[f"python -I -c pass ({target})"] = [py, "-I", "-c", "pass"]  # the interpreter alone, a yardstick
        # the line every crontab held before the start.py line, with this target's interpreter
        old = [argv[0], "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state, "bench-true"]
        if argv != old:
            found[f"wrapper, old line ({target})"] = old
        if install and target != "dev":
            found.update(install_variants(target, py, argv))
        if not alternatives:
            continue
        args = old[4:]  # the wrapper's own arguments, after whichever interpreter line apply wrote
        pkg_parent = common.helper(py, "import os, jobctl; print(os.path.dirname(os.path.dirname(jobctl.__file__)))")
        found[f"python -I -S -c pass ({target})"] = [py, "-I", "-S", "-c", "pass"]
        found[f"wrapper -I -c, no runpy ({target})"] = [py, "-I", "-c", NO_RUNPY, *args]
        found[f"wrapper -I -S -c, no site ({target})"] = [
            py, "-I", "-S", "-c", NO_SITE.format(dir=pkg_parent.strip()), *args]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 rounds instead of 40")
    parser.add_argument("--runs", type=int, help="rounds (every variant runs once per round)")
    parser.add_argument("--targets", default="dev,installed,system", type=common.targets_arg,
                        help="interpreters to measure (dev, installed, system)")
    parser.add_argument("--alternatives", action="store_true", help="also measure other ways to start the wrapper")
    parser.add_argument("--install-variants", action="store_true",
                        help="also measure copies of each non-dev venv without setuptools' .pth, and without .pyc")
    opts = parser.parse_args()
    rounds = opts.runs or (10 if opts.quick else 40)

    out = common.scratch("wrapper_overhead")
    env = common.cron_env()
    found = variants(opts.targets, out, opts.alternatives, opts.install_variants)
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    names = list(found)
    errs = {name: os.path.join(out, f"stderr.{i}") for i, name in enumerate(names)}
    for name in names:  # warm-up: page cache, .pyc files, the run log's creation
        for _ in range(3):
            common.run(found[name], env, stderr=errs[name])
    results: dict[str, list[common.Result]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            res = common.run(found[name], env, stderr=errs[name])
            if res.code != 0:
                sys.exit(f"{name} exited {res.code}; see {errs[name]}")
            results[name].append(res)

    problems = [f"{name}: stderr not empty ({errs[name]})" for name in names if os.path.getsize(errs[name])]
    for target in opts.targets:
        state = os.path.join(out, common.slug(target), "state")
        got = common.helper(common.python(target, refresh=False),
                            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
                            "\"SELECT count(*) FROM runs WHERE status = 'succeeded'\").fetchone()[0])",
                            os.path.join(state, "runs.db"))
        wrappers = sum(1 for n in names if n.endswith(f"({target})") and n.startswith("wrapper"))
        if int(got) != wrappers * (rounds + 3):
            problems.append(f"{target}: {got.strip()} succeeded runs recorded, expected {wrappers * (rounds + 3)}")
        if os.path.exists(os.path.join(state, "jobctl-errors.log")):
            problems.append(f"{target}: {state}/jobctl-errors.log exists")

    common.print_machine(load, cpu_busy, others)
    for target in opts.targets:
        print(f"{target}: {common.python(target, refresh=False)} (Python "
              f"{common.python_version(common.python(target, refresh=False))})")
    bare_wall = common.median([x.wall for x in results["sh -c true"]])
    bare_cpu = common.median([x.cpu for x in results["sh -c true"]])
    rows = []
    for name in names:
        wall = common.median([x.wall for x in results[name]])
        cpu = common.median([x.cpu for x in results[name]])
        verdict = ""
        if name.startswith("wrapper ("):
            ok = (wall - bare_wall) * 1000 <= TARGET_MS and (cpu - bare_cpu) * 1000 <= TARGET_MS
            verdict = "yes" if ok else "NO"
        rows.append([name, common.ms(wall), common.ms(cpu), common.ms(wall - bare_wall), common.ms(cpu - bare_cpu),
                     verdict])
    print(f"\n{rounds} interleaved rounds, medians in ms; target: wrapper <= {TARGET_MS:.0f} ms wall and CPU "
          "over sh -c true\n")
    print(common.table(["variant", "wall", "CPU", "wall over bare", "CPU over bare", "within target"], rows))
    rows = []
    for target in opts.targets:
        floor = results[f"python -I -c pass ({target})"]
        for name in names:
            if not (name.startswith("wrapper") and name.endswith(f"({target})")):
                continue
            # paired: the wrapper and the interpreter ran in the same round
            wall = common.median([w.wall / p.wall for w, p in zip(results[name], floor, strict=True)])
            cpu = common.median([w.cpu / p.cpu for w, p in zip(results[name], floor, strict=True) if p.cpu > 0])
            rows.append([name, common.ms(common.median([x.wall for x in results[name]])),
                         common.ms(common.median([x.wall for x in floor])), f"{wall:.2f}", f"{cpu:.2f}",
                         "yes" if wall <= TARGET_RATIO else "NO"])
    print(f"\nIssue 13: each wrapper against python -I -c pass on the same interpreter; ratios are the median of "
          f"the per-round ratios (target <= {TARGET_RATIO})\n")
    print(common.table(["variant", "wall", "python -I -c pass wall", "wall ratio", "CPU ratio",
                        f"within {TARGET_RATIO} x"], rows))
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({n: [[x.wall, x.cpu] for x in results[n]] for n in names}, fh)
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
