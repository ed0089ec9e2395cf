"""Helpers for tests that run the real wrapper in real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from typing import Any

#: the wrapper as crontab lines, timers and `run --detach` start it (cmdline.interpreter_argv), with this
#: interpreter; tests of lines an older jobctl wrote run ``python -I -m jobctl.runner`` themselves
RUNNER = [sys.executable, "-I", "-S", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                   "jobctl", "runner", "start.py")]


def job(name: str = "t", command: Any = "true", **keys: Any) -> dict[str, Any]:
    """A compiled definition, as apply writes it."""
    defn: dict[str, Any] = {
        "name": name, "command": command, "shell": "/bin/sh", "working_dir": None, "env": {},
        "timeout": None, "kill_grace": 2, "retries": {"attempts": 0, "delay": 1, "backoff": 2, "max_delay": 60},
        "concurrency": "forbid", "output_limit": 1 << 20,
    }
    defn.update(keys)
    return defn


def start(state: str, defn: dict[str, Any], *flags: str, **popen: Any) -> subprocess.Popen:
    """Start a wrapper on ``defn`` (passed on stdin, as `run --detach` does)."""
    proc = subprocess.Popen(
        [*RUNNER, "--state-dir", state, "--definition-stdin", "--quiet", *flags, defn["name"]],
        stdin=subprocess.PIPE, stdout=popen.pop("stdout", subprocess.PIPE),
        stderr=popen.pop("stderr", subprocess.PIPE), **popen,
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(defn).encode())
    proc.stdin.close()
    proc.stdin = None  # communicate() must not touch it again
    return proc


# ru_maxrss of an exec'ed child starts at its parent's resident size (the kernel
# carries the old image's high-water mark over exec), so a wrapper started from
# a large pytest process would report pytest's memory.  A small interpreter
# forks the wrapper instead and reports the grandchild's own peak.
_SPAWNER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
)


def peak_rss(state: str, defn: dict[str, Any]) -> tuple[int, int]:
    """(exit code, peak RSS in KiB) of one wrapper run, measured from a minimal spawner."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _SPAWNER, *RUNNER, "--state-dir", state, "--definition-stdin", "--quiet",
         defn["name"]], input=json.dumps(defn).encode(), capture_output=True, timeout=300)
    code, rss = proc.stdout.split()
    return int(code), int(rss)


def run(state: str, defn: dict[str, Any], *flags: str, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = start(state, defn, *flags)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def rows(state: str, job: str | None = None) -> list[dict[str, Any]]:
    if not os.path.exists(os.path.join(state, "runs.db")):
        return []
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    db.row_factory = sqlite3.Row
    try:
        sql = "SELECT * FROM runs" + (" WHERE job = ?" if job else "") + " ORDER BY id"
        try:
            return [dict(r) for r in db.execute(sql, (job,) if job else ())]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the wrapper is creating the log right now
                return []
            raise
    finally:
        db.close()


def output(state: str, run_id: int) -> tuple[bytes, bytes, int]:
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    try:
        row = db.execute("SELECT head, tail, dropped FROM run_output WHERE run_id = ?", (run_id,)).fetchone()
        return (bytes(row[0]), bytes(row[1]), row[2]) if row else (b"", b"", 0)
    finally:
        db.close()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.02) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def pids_with(marker: str) -> list[int]:
    """Processes whose command line contains ``marker`` (for leftover checks)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != b"Z":
            found.append(int(entry))
    return found


def fill(fs: Any) -> Any:
    """Take every remaining byte of the file system at ``fs`` (a Path); returns the filler to delete."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def log_at_version(path: str, version: int) -> None:
    """A run log as the release with schema ``version`` created it: migrations 1..version only."""
    from jobctl import store

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN")
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                   " applied_at REAL NOT NULL)")
        for number, (name, apply) in enumerate(store.MIGRATIONS[:version], start=1):
            apply(db)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (number, name))
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    finally:
        db.close()
    os.chmod(path, 0o600)


def live_pids_with(marker: str) -> list[int]:
    """pids_with, zombies left out (PID 1 may be slow to reap orphaned wrappers here)."""
    live = []
    for pid in pids_with(marker):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    live.append(pid)
        except OSError:
            continue
    return live


def on_terminal(*args: str, env: dict[str, str] | None = None, rows: int = 50,
                columns: int = 200) -> tuple[int, bytes]:
    """Run the real jobctl with stdout and stderr on a pseudo-terminal of rows x columns.

    (exit code, what the terminal got, with the terminal's \\r\\n made \\n again).
    """
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "jobctl", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env=env if env is not None else dict(os.environ))
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    return proc.wait(60), got.replace(b"\r\n", b"\n")  # the terminal's onlcr


def crontab_command(marker: str) -> list[str]:
    """The command of the crontab line ``apply`` wrote for ``marker`` (a job, or ``_catch-up``): what cron runs."""
    import shlex
    from pathlib import Path

    text = Path(os.environ["JOBCTL_CRONTAB"]).read_text()
    for line in text.splitlines():
        body, sep, tail = line.partition(" # jobctl:")
        if sep and tail.split()[0] == marker:
            words = shlex.split(body)
            return words[1:] if words[0].startswith("@") else words[5:]
    raise AssertionError(f"no crontab line for {marker}:\n{text}")
