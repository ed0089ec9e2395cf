"""Thundering herd: N trivial jobs (distinct names, each `true`) started at once.

Each job is started with the exact argv of jobctl.runner.wrapper_argv, all
at the same moment (forked first and held at a gate, then released), the way
cron starts every job of a minute, only harder.
Every run must exit 0 with an empty stderr, be recorded as succeeded, and
STATE/jobctl-errors.log must not exist.  The bound from the issue: total wall
(first spawn to last exit) within 1.5 x (N x one run's CPU time / cores),
where one run's CPU time is the median of sequential runs measured first.

    .venv/bin/python bench/herd.py [--quick] [--jobs 500] [--repeat 3]
        [--targets installed] [--fresh]

--fresh starts every herd on a state directory without a run log, so all N
wrappers race to create it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import time

import common

BOUND = 1.5
MAX_PROCS = 600  # the machine's agreed limit on processes at once


def count_rows(state: str, prefix: str, after: int) -> tuple[int, int, int]:
    """(succeeded runs, other runs, distinct jobs) of jobs named prefix* with id > after."""
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    try:
        ok, other, jobs = db.execute(
            "SELECT sum(status = 'succeeded'), sum(status != 'succeeded'), count(DISTINCT job) FROM runs"
            " WHERE job LIKE ? AND id > ?", (prefix + "%", after)).fetchone()
        return ok or 0, other or 0, jobs or 0
    finally:
        db.close()


def max_id(state: str) -> int:
    if not os.path.exists(os.path.join(state, "runs.db")):
        return 0
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    try:
        return db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()[0]
    finally:
        db.close()


def _forked_at_gate(argv: list[str], env: dict[str, str], gate: tuple[int, int], err: str) -> int:
    """A child that waits for the gate to open (EOF on a pipe), then execs argv."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.close(gate[1])
        os.read(gate[0], 1)  # blocks until the parent closes the write end
        fd = os.open(os.devnull, os.O_RDWR)
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)


def herd(argvs: list[list[str]], env: dict[str, str], errdir: str) -> dict[str, object]:
    """Fork every job first, held at a gate, then open the gate: all start within milliseconds.

    Spawning one by one from this process would not do: on a 2-core machine the
    first wrappers already compete with the spawning, and the last would start
    seconds later.  Cron forks its jobs one by one too, but from a small process
    that is not slowed by the jobs it started.
    """
    shutil.rmtree(errdir, ignore_errors=True)
    os.makedirs(errdir)
    gate_r, gate_w = os.pipe()
    started: dict[int, str] = {}
    for i, argv in enumerate(argvs):
        err = os.path.join(errdir, f"{i}.err")
        started[_forked_at_gate(argv, env, (gate_r, gate_w), err)] = err
    os.close(gate_r)
    t0 = time.perf_counter()
    os.close(gate_w)  # go
    latencies, cpus, codes, errs = [], [], [], []
    while started:
        pid, status, ru = os.wait4(-1, 0)
        if pid not in started:
            continue
        err = started.pop(pid)
        latencies.append(time.perf_counter() - t0)
        cpus.append(ru.ru_utime + ru.ru_stime)
        codes.append(os.waitstatus_to_exitcode(status))
        if os.path.getsize(err):
            errs.append(err)
    total = time.perf_counter() - t0
    return {"total": total, "latencies": sorted(latencies), "cpus": cpus,
            "bad_codes": [c for c in codes if c != 0], "stderr": errs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 jobs, one herd")
    parser.add_argument("--jobs", type=int, help="jobs per herd (default 500)")
    parser.add_argument("--repeat", type=int, help="herds per target (default 3)")
    parser.add_argument("--solo-runs", type=int, default=20, help="sequential runs for one run's CPU time")
    parser.add_argument("--targets", default="installed", type=common.targets_arg)
    parser.add_argument("--fresh", action="store_true", help="no run log before each herd")
    opts = parser.parse_args()
    jobs = opts.jobs or (100 if opts.quick else 500)
    repeat = opts.repeat or (1 if opts.quick else 3)
    if jobs > MAX_PROCS:
        sys.exit(f"at most {MAX_PROCS} jobs at once")
    cores = len(os.sched_getaffinity(0))
    env = common.cron_env()
    out = common.scratch("herd")
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    rows, problems = [], []
    for target in opts.targets:
        py = common.python(target)
        state = os.path.join(out, common.slug(target), "state")
        defns = [common.definition(f"herd-{i:03d}") for i in range(jobs)]
        defns.append(common.definition("solo"))
        argvs = common.apply_definitions(py, state, defns)
        solo_argv = argvs.pop()
        for _ in range(3):
            common.run(solo_argv, env)  # .pyc files, the run log
        solo = [common.run(solo_argv, env) for _ in range(opts.solo_runs)]
        solo_cpu = common.median([r.cpu for r in solo])
        solo_wall = common.median([r.wall for r in solo])
        bound = BOUND * jobs * solo_cpu / cores
        for n in range(repeat):
            if opts.fresh:
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.unlink(os.path.join(state, "runs.db" + suffix))
                    except FileNotFoundError:
                        pass
            after = max_id(state)
            res = herd(argvs, env, os.path.join(out, common.slug(target), f"stderr-{n}"))
            ok, other, distinct = count_rows(state, "herd-", after)
            errlog = os.path.exists(os.path.join(state, "jobctl-errors.log"))
            lat = res["latencies"]
            verdict = res["total"] <= bound and not res["bad_codes"] and not res["stderr"] and ok == jobs \
                and distinct == jobs and not other and not errlog
            rows.append([
                target, str(n + 1), str(jobs), f"{res['total']:.2f}",
                f"{bound:.2f}", common.ms(common.median(res["cpus"])), common.ms(solo_cpu), common.ms(solo_wall),
                common.ms(lat[len(lat) // 2]), common.ms(lat[int(len(lat) * 0.99) - 1]),
                f"{ok}/{jobs}", str(len(res["bad_codes"]) + len(res["stderr"]) + other + int(errlog)),
                "yes" if verdict else "NO",
            ])
            if res["bad_codes"]:
                problems.append(f"{target} herd {n + 1}: {len(res['bad_codes'])} non-zero exits")
            for err in res["stderr"][:5]:
                with open(err, errors="replace") as fh:
                    problems.append(f"{target} herd {n + 1}: stderr {err}: {fh.read().strip()[:300]}")
            if errlog:
                problems.append(f"{target} herd {n + 1}: {state}/jobctl-errors.log exists")
            if ok != jobs or other or distinct != jobs:
                problems.append(f"{target} herd {n + 1}: recorded {ok} succeeded + {other} other runs of "
                                f"{distinct} jobs, expected {jobs}")
    common.print_machine(load, cpu_busy, others)
    print(f"\n{jobs} jobs per herd{' on a fresh state (no run log)' if opts.fresh else ''}; bound = "
          f"{BOUND} x jobs x solo CPU / {cores} cores; times in ms unless marked s\n")
    print(common.table(["target", "herd", "jobs", "total wall s", "bound s", "CPU/run in herd",
                        "solo CPU/run", "solo wall/run", "p50 done at", "p99 done at", "recorded", "errors",
                        "within bound"], rows))
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
