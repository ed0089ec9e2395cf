"""Shared helpers for the benchmark scripts in bench/ (not a test module).

Every script runs real processes the way cron starts them: a fresh, minimal
environment (cron's PATH, HOME, SHELL, LOGNAME and nothing else), stdin from
/dev/null, and the child's resources read from os.wait4, which counts the
child and every descendant it reaped.  Scratch files live under bench/out/
(git-ignored) or a temporary directory.

Interpreters ("targets") measured:

  dev        the checkout's .venv: jobctl installed editable, so a .pth
             finder imports re, pathlib and importlib.util at every start-up
  installed  bench/out/venv: `python3 -m venv` from the dev venv's base
             interpreter and `pip install <checkout>` (a real, non-editable
             install, as install.sh makes)
  system     bench/out/venv-system: the same from /usr/bin/python3, the
             interpreter install.sh chooses when run as root on Debian

  venv=DIR   any existing venv with jobctl installed, used as it is (e.g.
             one with other dependency versions)
  rev=REV    bench/out/venv-rev-REV: like installed, but jobctl as committed
             at git revision REV (`git archive`), to measure a change against
             its parent in the same interleaved run; rev=REV:system builds
             it on /usr/bin/python3, like system (REV may be HEAD or any
             name git knows; it is resolved to its commit once)
  worktree   another name for installed
  PATH       a venv directory, or a python inside one (same as venv=DIR)

The non-editable venvs are refreshed (jobctl reinstalled without its
dependencies) whenever a file of the jobctl package differs from the
checkout, so they always measure the working tree.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import pwd
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
SYSTEM_PYTHON = "/usr/bin/python3"

TARGETS = ("dev", "installed", "system")


# --- machine and environment

def machine() -> dict[str, str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        # Plumbing only: `git describe --dirty` refreshes (writes) the index, and other
        # people work in this checkout while benchmarks run.
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "--no-optional-locks", "diff-index", "--quiet", "HEAD", "--"],
                               capture_output=True, check=False).returncode
        rev += "-dirty" if dirty == 1 else ""
    except OSError:
        rev = "?"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "kernel": platform.release(),
        "python (bench driver)": platform.python_version(),
        "checkout": rev or "?",
        "nice": str(os.nice(0)),
    }


def loadavg() -> str:
    """The load averages over 1, 5 and 15 minutes: other work on the machine skews every figure."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy(seconds: float = 1.0) -> str:
    """How busy the machine is right now (all cores, %), over a short sample.

    The load average lags by a minute; this shows whether someone else is
    using the CPUs as a measurement starts.
    """
    b0, t0 = _cpu_times()
    time.sleep(seconds)
    b1, t1 = _cpu_times()
    return f"{100 * (b1 - b0) / max(t1 - t0, 1):.0f}%"


class Others:
    """CPU time other processes used while we measured: the machine's busy time
    from /proc/stat minus this process and the children it reaped."""

    def __init__(self) -> None:
        self.busy, self.total = _cpu_times()
        t = os.times()
        self.ours = t.user + t.system + t.children_user + t.children_system

    def share(self) -> str:
        busy, total = _cpu_times()
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system - self.ours
        hz = os.sysconf("SC_CLK_TCK")
        others = max(0.0, (busy - self.busy) / hz - ours)
        return f"{100 * others / max((total - self.total) / hz, 1e-9):.0f}%"


def print_machine(load_before: str | None = None, busy_before: str | None = None,
                  others: Others | None = None) -> None:
    info = machine()
    if load_before is not None:
        info["load average (1/5/15 min) before -> after"] = f"{load_before} -> {loadavg()}"
    if busy_before is not None:
        info["CPU busy just before"] = busy_before
    if others is not None:
        info["CPU used by other processes while measuring"] = others.share()
    print("; ".join(f"{k}: {v}" for k, v in info.items()))


def cron_env() -> dict[str, str]:
    """What cron gives a job: HOME, LOGNAME, SHELL and PATH=/usr/bin:/bin."""
    pw = pwd.getpwuid(os.geteuid())
    return {"HOME": pw.pw_dir, "LOGNAME": pw.pw_name, "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}


# --- interpreters

def _venv_dir(target: str) -> str:
    if target.startswith("venv="):
        return os.path.abspath(target[5:])
    if target.startswith("rev="):
        return os.path.join(OUT, "venv-rev-" + target[4:].replace(":", "-"))
    return {"dev": os.path.join(REPO, ".venv"), "installed": os.path.join(OUT, "venv"),
            "system": os.path.join(OUT, "venv-system")}[target]


def _base_python(target: str) -> str:
    if target == "system":
        return SYSTEM_PYTHON
    dev = os.path.join(REPO, ".venv", "bin", "python")
    out = subprocess.run([dev, "-I", "-c", "import sys; print(sys._base_executable)"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def _source_digest() -> str:
    """Every .py file of the package, subpackages included (modules move between them)."""
    h = hashlib.sha256()
    rels = []
    for top, dirs, files in os.walk(os.path.join(REPO, "jobctl")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rels += [os.path.relpath(os.path.join(top, n), REPO) for n in files if n.endswith(".py")]
    for rel in ["pyproject.toml"] + sorted(rels):
        h.update(rel.encode())
        with open(os.path.join(REPO, rel), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def python(target: str, refresh: bool = True) -> str:
    """The interpreter of a target, creating or refreshing its venv when needed."""
    venv = _venv_dir(target)
    py = os.path.join(venv, "bin", "python")
    if target == "dev" or target.startswith("venv="):
        if not os.path.exists(py):
            sys.exit(f"no venv at {venv}" + ("; run ./install.sh --dev" if target == "dev" else ""))
        return py
    if target == "system" and not os.path.exists(SYSTEM_PYTHON):
        sys.exit(f"{SYSTEM_PYTHON} missing; choose another --target")
    if target.startswith("rev="):
        rev, _, base = target[4:].partition(":")
        return _rev_python(rev, venv, base or "installed")
    stamp = os.path.join(venv, "jobctl-bench-source.sha256")
    digest = _source_digest()
    fresh = not os.path.exists(py)
    if fresh:
        os.makedirs(OUT, exist_ok=True)
        print(f"# creating {venv} with {_base_python(target)} -m venv", file=sys.stderr)
        subprocess.run([_base_python(target), "-m", "venv", venv], check=True)
    try:
        with open(stamp) as fh:
            current = fh.read().strip() == digest
    except OSError:
        current = False
    if refresh and not current:
        pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
        # The checkout changed: reinstall jobctl only (its dependencies are already there).
        extra = [] if fresh else ["--force-reinstall", "--no-deps"]
        print(f"# installing {REPO} into {venv} (non-editable)", file=sys.stderr)
        subprocess.run([*pip, *extra, REPO], check=True, stdout=subprocess.DEVNULL)
        with open(stamp, "w") as fh:
            fh.write(digest + "\n")
    return py


def _rev_python(rev: str, venv: str, base: str) -> str:
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(py):
        return py  # a revision never changes
    import tempfile

    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(src)
        archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", rev], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
        print(f"# creating {venv} with jobctl at {rev}", file=sys.stderr)
        subprocess.run([_base_python(base), "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", src], check=True,
                       stdout=subprocess.DEVNULL)
    return py


def jobctl_command(target: str, refresh: bool = True) -> str:
    """The target's `jobctl` console script (what an operator runs), next to its python."""
    py = python(target, refresh)
    path = os.path.join(os.path.dirname(py), "jobctl")
    if not os.path.exists(path):
        sys.exit(f"{target}: no jobctl command at {path}")
    return path


def python_version(py: str) -> str:
    return subprocess.run([py, "-I", "-c", "import platform; print(platform.python_version())"], capture_output=True,
                          text=True, check=True).stdout.strip()


def slug(target: str) -> str:
    """A target as one path component."""
    return target.replace("/", "_")


def targets_arg(value: str) -> list[str]:
    chosen = [t.strip() for t in value.split(",") if t.strip()]
    for i, t in enumerate(chosen):
        if t == "worktree":
            chosen[i] = "installed"
        elif t not in TARGETS and "=" not in t and os.path.exists(t):
            # a venv directory, or a python inside one (bin/python -> the venv)
            path = os.path.abspath(t)
            if not os.path.isdir(path):
                path = os.path.dirname(os.path.dirname(path))
            if not os.path.exists(os.path.join(path, "bin", "python")):
                raise SystemExit(f"{t!r}: not a venv (no bin/python)")
            chosen[i] = "venv=" + path
        elif t.startswith("rev=") and len(t) > 4:
            name, _, base = t[4:].partition(":")
            if base not in ("", "system"):
                raise SystemExit(f"{t!r}: only rev=REV or rev=REV:system")
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", name], capture_output=True, text=True,
                                 check=False)
            if rev.returncode != 0:
                raise SystemExit(f"unknown git revision {name!r}")
            chosen[i] = "rev=" + rev.stdout.strip() + (":system" if base else "")
        elif t.startswith("venv=") and len(t) > 5:
            chosen[i] = "venv=" + os.path.abspath(t[5:])
        elif t not in TARGETS:
            raise SystemExit(f"unknown target {t!r}; choose from {', '.join(TARGETS)}, worktree, rev=GITREV, "
                             "venv=DIR or the path of a venv")
    return chosen


# --- running children

class Result:
    __slots__ = ("wall", "cpu", "maxrss_kib", "status", "pid")

    def __init__(self, wall: float, cpu: float, maxrss_kib: int, status: int, pid: int) -> None:
        self.wall = wall
        self.cpu = cpu
        self.maxrss_kib = maxrss_kib
        self.status = status
        self.pid = pid

    @property
    def code(self) -> int:
        return os.waitstatus_to_exitcode(self.status)


def spawn(argv: list[str], env: dict[str, str], stdout: str = os.devnull, stderr: str | None = None) -> int:
    """posix_spawn with stdin /dev/null and stdout/stderr appended to files (like cron's job)."""
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, stderr or stdout, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
    ]
    return os.posix_spawn(path, argv, env, file_actions=actions)


def run(argv: list[str], env: dict[str, str], stdout: str = os.devnull, stderr: str | None = None) -> Result:
    """One child, timed: wall from spawn to reap, CPU and peak RSS from wait4."""
    t0 = time.perf_counter()
    pid = spawn(argv, env, stdout, stderr)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return Result(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, status, pid)


# Linux starts a child's peak RSS at its spawner's: an exec records the
# high-water mark of the memory it replaces, and posix_spawn's child runs in
# the parent's memory until then.  This driver is ~20 MB, so peak RSS is
# measured from a minimal interpreter (python -I -S: ~8 MB, reported as the
# floor) that spawns the command and reports its os.wait4 figures.
SPAWNER = """
import os, sys, time
out, err, env = sys.argv[1], sys.argv[2], {}
n = int(sys.argv[3])
for kv in sys.argv[4:4 + n]:
    k, _, v = kv.partition("=")
    env[k] = v
argv = sys.argv[4 + n:]
actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
           (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
           (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)]
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, status, pid)
"""


def run_small(argv: list[str], env: dict[str, str], stdout: str = os.devnull, stderr: str | None = None) -> Result:
    """Like run(), with peak RSS not inflated by this driver's (see SPAWNER)."""
    path = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH"))
    pairs = [f"{k}={v}" for k, v in env.items()]
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", SPAWNER, stdout, stderr or stdout, str(len(pairs)),
                           *pairs, path, *argv[1:]], capture_output=True, text=True, check=True)
    wall, cpu, rss, status, pid = proc.stdout.split()
    return Result(float(wall), float(cpu), int(rss), int(status), int(pid))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (pastes straight into docs/benchmarks.md)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def definition(name: str, command: object = "true", **keys: object) -> dict[str, object]:
    """A compiled definition as `jobctl apply` writes it (the shape of tests/runhelp.job)."""
    defn: dict[str, object] = {
        "name": name, "command": command, "shell": "/bin/sh", "working_dir": None, "env": {},
        "timeout": None, "kill_grace": 2, "retries": {"attempts": 0, "delay": 1, "backoff": 2, "max_delay": 60},
        "concurrency": "forbid", "output_limit": 1 << 20,
    }
    defn.update(keys)
    return defn


def helper(py: str, code: str, *args: str) -> str:
    """Run a snippet with a target's interpreter (its own jobctl), returning stdout."""
    # -I: never the checkout's jobctl through the current directory
    return subprocess.run([py, "-I", "-c", code, *args], capture_output=True, text=True, check=True).stdout


# Modules move between packages (jobctl.runner was one module, then a package
# with cmdline.py): find applied.write and wrapper_argv wherever the target's
# jobctl defines them, so every revision can be measured with one script.
APPLY_SNIPPET = """
import importlib, json, os, sys
import jobctl

def find(filename=None, defines=None):
    root = os.path.dirname(jobctl.__file__)
    for top, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for n in sorted(files):
            if not n.endswith(".py") or (filename and n != filename):
                continue
            path = os.path.join(top, n)
            if defines:
                with open(path, encoding="utf-8") as fh:
                    if defines not in fh.read():
                        continue
            rel = os.path.relpath(path[:-3], os.path.dirname(root)).replace(os.sep, ".")
            return importlib.import_module(rel[:-9] if rel.endswith(".__init__") else rel)
    sys.exit(f"jobctl at {root}: no module " + (filename or defines))

applied = find(filename="applied.py")
wrapper_argv = find(defines="def wrapper_argv(").wrapper_argv
state = sys.argv[1]
out = []
for defn in json.loads(sys.stdin.read()):
    applied.write(state, defn)
    out.append(wrapper_argv(state, defn["name"]))
print(json.dumps(out))
"""


def apply_definitions(py: str, state: str, defns: list[dict[str, object]]) -> list[list[str]]:
    """Write applied definitions with the target's jobctl; return each job's wrapper argv."""
    import json

    out = subprocess.run([py, "-I", "-c", APPLY_SNIPPET, state], input=json.dumps(defns), capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def scratch(name: str) -> str:
    """A fresh directory under bench/out/."""
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700)
    return path
