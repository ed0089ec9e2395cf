"""Thundering herd: N trivial jobs (distinct names, each `true`) started at once.

Each job is started with the exact argv of the target's wrapper_argv (found
wherever that revision defines it), all at the same moment (forked first and
held at a gate, then released), the way cron starts every job of a minute,
only harder.  Every run must exit 0 with an empty stderr, be recorded as
succeeded, and STATE/jobctl-errors.log must not exist.

The CPU bound is N x one run's CPU time / cores, one run's CPU time being the
median of sequential runs measured first; the table gives total wall (gate
opened to last exit) divided by it, and the verdict against --bound (issue
13: 1.3; issue 2 had 1.5).

Peak memory, two ways (neither is exact): the sum over the N wrappers of
their peak RSS (ru_maxrss from wait4, each forked by a ~9 MB launcher so not
inflated by this driver; counts the interpreter's shared pages once per
process, so an upper bound of what they held at once), and the peak rise of the machine's
memory in use (MemTotal - MemAvailable in /proc/meminfo, sampled every 10 ms
from the gate to the last exit; includes page cache the herd writes and
anything else running) over its value just before; and the same rise of this
process's memory cgroup when one is readable (cgroup v1 usage_in_bytes or v2
memory.current).

    .venv/bin/python bench/herd.py [N] [--quick] [--repeat 3]
        [--targets installed] [--fresh] [--bound 1.3]

N defaults to 500 (100 with --quick); at most --max-procs (1,000) unless
raised, and never more than the process limit (RLIMIT_NPROC) leaves room for.
--fresh starts every herd on a state directory without a run log, so all N
wrappers race to create it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import sys
import threading

import common

BOUND = 1.3  # issue 13: total wall within 1.3 x the CPU bound
MAX_PROCS = 1000  # default cap on processes at once (--max-procs raises it)


def _meminfo_used() -> int:
    """MemTotal - MemAvailable, bytes."""
    values = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                values[key] = int(rest.split()[0]) * 1024
    return values["MemTotal"] - values["MemAvailable"]


def _cgroup_memory_file() -> str | None:
    """This process's memory cgroup usage file (v2 memory.current or v1 memory.usage_in_bytes), if readable."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/memory.current"):
            return f"/sys/fs/cgroup{path}/memory.current"
        if "memory" in controllers.split(","):
            candidate = f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"
            if os.path.exists(candidate):
                return candidate
    return None


class MemorySampler:
    """Peak rise of the machine's (and the cgroup's) memory in use while running, every 10 ms."""

    def __init__(self) -> None:
        self.cgroup = _cgroup_memory_file()
        self.base_sys = _meminfo_used()
        self.base_cg = self._cg()
        self.peak_sys, self.peak_cg = self.base_sys, self.base_cg
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cg(self) -> int | None:
        if self.cgroup is None:
            return None
        try:
            with open(self.cgroup) as fh:
                return int(fh.read())
        except (OSError, ValueError):
            return None

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_sys = max(self.peak_sys, _meminfo_used())
            cg = self._cg()
            if cg is not None and self.peak_cg is not None:
                self.peak_cg = max(self.peak_cg, cg)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> tuple[int, int | None]:
        self._stop.set()
        self._thread.join()
        cg = None if self.peak_cg is None or self.base_cg is None else self.peak_cg - self.base_cg
        return self.peak_sys - self.base_sys, cg


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


# The herd is forked by a small launcher (python -I -S, ~9 MB), not by this
# driver: Linux starts a child's peak RSS (ru_maxrss) at its forker's, so
# children of the driver (~20 MB and more) would all report the driver's size.
# The launcher forks every job, each held at a gate (EOF on a pipe), says
# "ready", waits for "go" on stdin, opens the gate, reaps every job and prints
# one line per job: seconds from the gate to its exit, CPU, peak RSS KiB, exit
# status, stderr file.
LAUNCHER = r"""
import json, os, sys, time
spec = json.loads(sys.stdin.readline())
env, jobs = spec["env"], spec["jobs"]
gate_r, gate_w = os.pipe()
started = {}
for argv, err in jobs:
    pid = os.fork()
    if pid == 0:
        try:
            os.close(gate_w)
            os.read(gate_r, 1)  # blocks until the launcher closes the write end
            fd = os.open(os.devnull, os.O_RDWR)
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    started[pid] = err
os.close(gate_r)
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
os.close(gate_w)  # go
out = []
while started:
    pid, status, ru = os.wait4(-1, 0)
    if pid in started:
        out.append([time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, status, started.pop(pid)])
print(json.dumps([time.perf_counter() - t0, out]), flush=True)
"""


def herd(argvs: list[list[str]], env: dict[str, str], errdir: str) -> dict[str, object]:
    """Fork every job first, held at a gate, then open the gate: all start within milliseconds.

    Spawning one by one would not do: on a 2-core machine the first wrappers
    already compete with the spawning, and the last would start seconds later.
    Cron forks its jobs one by one too, but from a small process that is not
    slowed by the jobs it started.
    """
    import json
    import subprocess

    shutil.rmtree(errdir, ignore_errors=True)
    os.makedirs(errdir)
    jobs = [[argv, os.path.join(errdir, f"{i}.err")] for i, argv in enumerate(argvs)]
    launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert launcher.stdin and launcher.stdout
    launcher.stdin.write(json.dumps({"env": env, "jobs": jobs}) + "\n")
    launcher.stdin.flush()
    if launcher.stdout.readline().strip() != "ready":
        sys.exit("the herd's launcher failed")
    sampler = MemorySampler()
    sampler.start()
    launcher.stdin.write("go\n")
    launcher.stdin.flush()
    total, done = json.loads(launcher.stdout.readline())
    mem_sys, mem_cg = sampler.stop()
    launcher.wait()
    codes = [os.waitstatus_to_exitcode(status) for _, _, _, status, _ in done]
    return {"total": total, "latencies": sorted(d[0] for d in done), "cpus": [d[1] for d in done],
            "bad_codes": [c for c in codes if c != 0], "stderr": [d[4] for d in done if os.path.getsize(d[4])],
            "rss_sum": sum(d[2] for d in done) * 1024, "rss_max": max(d[2] for d in done) * 1024,
            "mem_sys": mem_sys, "mem_cg": mem_cg}


def _room_for(n: int) -> str | None:
    """Why n more processes may not fit under RLIMIT_NPROC (the user's processes count against it)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft == resource.RLIM_INFINITY or os.geteuid() == 0:
        return None  # root is not held to RLIMIT_NPROC
    uid = os.geteuid()
    mine = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    mine += 1
            except OSError:
                pass
    if mine + n + 10 > soft:
        return f"RLIMIT_NPROC is {soft} and this user runs {mine} processes: no room for {n} more"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, help="jobs per herd (default 500)")
    parser.add_argument("--quick", action="store_true", help="100 jobs, one herd")
    parser.add_argument("--jobs", type=int, help="the same as N")
    parser.add_argument("--bound", type=float, default=BOUND, help="within: total wall <= BOUND x the CPU bound")
    parser.add_argument("--max-procs", type=int, default=MAX_PROCS, help="refuse N above this")
    parser.add_argument("--repeat", type=int, help="herds per target (default 3)")
    parser.add_argument("--solo-runs", type=int, default=20, help="sequential runs for one run's CPU time")
    parser.add_argument("--targets", default="installed", type=common.targets_arg)
    parser.add_argument("--fresh", action="store_true", help="no run log before each herd")
    opts = parser.parse_args()
    jobs = opts.n or opts.jobs or (100 if opts.quick else 500)
    repeat = opts.repeat or (1 if opts.quick else 3)
    if jobs > opts.max_procs:
        sys.exit(f"at most {opts.max_procs} jobs at once (--max-procs raises it)")
    why = _room_for(jobs)
    if why:
        sys.exit(why)
    cores = len(os.sched_getaffinity(0))
    env = common.cron_env()
    out = common.scratch("herd")
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    rows, problems = [], []
    for target in opts.targets:
        py = common.python(target)
        state = os.path.join(out, common.slug(target), "state")
        defns = [common.definition(f"herd-{i:04d}") for i in range(jobs)]
        defns.append(common.definition("solo"))
        argvs = common.apply_definitions(py, state, defns)
        solo_argv = argvs.pop()
        for _ in range(3):
            common.run(solo_argv, env)  # .pyc files, the run log
        solo = [common.run(solo_argv, env) for _ in range(opts.solo_runs)]
        solo_cpu = common.median([r.cpu for r in solo])
        solo_wall = common.median([r.wall for r in solo])
        cpu_bound = jobs * solo_cpu / cores
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
            verdict = (res["total"] <= opts.bound * cpu_bound and not res["bad_codes"] and not res["stderr"]
                       and ok == jobs and distinct == jobs and not other and not errlog)
            mib = 1 << 20
            rows.append([
                target, str(n + 1), str(jobs), f"{res['total']:.2f}",
                f"{cpu_bound:.2f}", f"{res['total'] / cpu_bound:.2f}", common.ms(common.median(res["cpus"])),
                common.ms(solo_cpu), common.ms(solo_wall),
                common.ms(lat[len(lat) // 2]), common.ms(lat[max(int(len(lat) * 0.99) - 1, 0)]),
                f"{ok}/{jobs}", str(len(res["bad_codes"]) + len(res["stderr"]) + other + int(errlog)),
                f"{res['rss_sum'] / mib:.0f} ({res['rss_max'] / mib:.0f})", f"{res['mem_sys'] / mib:.0f}",
                "-" if res["mem_cg"] is None else f"{res['mem_cg'] / mib:.0f}",
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
    print(f"\n{jobs} jobs per herd{' on a fresh state (no run log)' if opts.fresh else ''}; CPU bound = "
          f"jobs x solo CPU / {cores} cores; within: total wall <= {opts.bound} x the CPU bound; times in ms "
          "unless marked s; memory in MiB: the sum of the wrappers' peak RSS (an upper bound: shared pages "
          "counted per process), the peak rise of the machine's memory in use (MemTotal - MemAvailable, "
          f"sampled every 10 ms) and of this process's memory cgroup ({_cgroup_memory_file() or 'none readable'})\n")
    print(common.table(["target", "herd", "jobs", "total wall s", "CPU bound s", "wall / CPU bound",
                        "CPU/run in herd", "solo CPU/run", "solo wall/run", "p50 done at", "p99 done at",
                        "recorded", "errors", "sum of peak RSS (largest)", "machine memory rise", "cgroup memory rise",
                        "within"], rows))
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
