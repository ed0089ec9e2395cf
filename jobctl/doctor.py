"""`jobctl doctor`: checks an operator can act on, each with a fix."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import dataclass

from . import paths
from .runner import CLEAN_PATH


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _alive_not_zombie(pid: str) -> bool:
    """A killed daemon lingers as a zombie where PID 1 does not reap orphans."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _same_root(pid: str) -> bool:
    """A daemon seen through /proc from inside a chroot serves another file system."""
    try:
        theirs, ours = os.stat(f"/proc/{pid}/root"), os.stat("/")
    except OSError:
        return True  # cannot tell (another user's process): assume ours
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def cron_daemon() -> Check:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in ("cron", "crond") and _alive_not_zombie(pid) and _same_root(pid):
            return Check("cron daemon", True, f"running ({comm}, pid {pid})")
    return Check("cron daemon", False, "no cron daemon is running: scheduled jobs will not start",
                 "start it: systemctl enable --now cron (or /usr/sbin/cron where there is no systemd)")


def crontab_command() -> Check:
    found = shutil.which("crontab")
    if found:
        return Check("crontab command", True, found)
    return Check("crontab command", False, "not on PATH", "apt-get install cron")


def state_permissions(state: str) -> Check:
    if not os.path.isdir(state):
        return Check("state directory", True, f"{state} does not exist yet (created 0700 on first use)")
    problems = []
    st = os.stat(state)
    if stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(f"{state} is {stat.S_IMODE(st.st_mode):04o}, not 0700")
    if st.st_uid != os.geteuid():
        problems.append(f"{state} is owned by uid {st.st_uid}, not {os.geteuid()}")
    for sub in ("runs.db", "applied"):
        path = os.path.join(state, sub)
        if sub == "applied" and os.path.isdir(path):
            files = [os.path.join(path, f) for f in os.listdir(path)]
        else:
            files = [path] if os.path.exists(path) else []
        for f in files:
            mode = stat.S_IMODE(os.stat(f).st_mode)
            if mode & 0o077:
                problems.append(f"{f} is {mode:04o}, not 0600")
    if problems:
        return Check("state directory", False, "; ".join(problems), f"chmod -R go-rwx {shlex.quote(state)}")
    if not os.access(state, os.W_OK):
        return Check("state directory", False, f"{state} is not writable", "fix its ownership")
    return Check("state directory", True, f"{state} (0700)")


def run_log(state: str) -> Check:
    path = paths.runs_db(state)
    if not os.path.exists(path):
        return Check("run log", True, "none yet (created by the first run)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
        try:
            result = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Check("run log", False, f"{path}: {exc}",
                     f"move it aside (mv {path} {path}.broken); the next run starts a new one")
    if result != [("ok",)]:
        return Check("run log", False, f"{path}: quick_check: {result[0][0]}",
                     f"move it aside (mv {path} {path}.broken); the next run starts a new one")
    return Check("run log", True, f"{path}: quick_check ok")


def crontab_in_sync(jobs: list, state: str, system: bool) -> Check:
    from . import crontab
    from .errors import JobctlError

    try:
        plan = crontab.make_plan(jobs, state, crontab.target(system))
    except JobctlError as exc:
        return Check("crontab in sync", False, exc.message, "see the message; then jobctl apply")
    if plan.pending:
        changed = [f"{c.action} {c.name}" for c in plan.changes if c.action != "unchanged"]
        return Check("crontab in sync", False, f"{plan.target.label}: {', '.join(changed) or 'block differs'}",
                     "jobctl plan, then jobctl apply")
    return Check("crontab in sync", True, f"{plan.target.label}: {len(plan.changes)} jobs as applied")


def job_files_safe(directory: str) -> Check:
    """As root: the job files, the jobs directory and every directory above it are root's alone.

    The same rule ``validate`` and ``apply`` enforce (loader.unsafe_paths):
    owned by root, not writable by group or others (sticky directories above
    the jobs directory excepted), links judged by what they point at.
    """
    from . import loader
    from .errors import JobctlError

    if os.geteuid() != 0:
        return Check("job file permissions", True, "not running as root")
    try:
        unsafe = loader.unsafe_paths(directory)
    except JobctlError as exc:
        return Check("job file permissions", False, exc.message, f"jobctl init {shlex.quote(directory)}")
    if unsafe:
        targets = list(dict.fromkeys(shlex.quote(u.fix_path) for u in unsafe))
        listed = ", ".join(f"{u.fix_path} ({u.reason})" for u in unsafe)
        return Check("job file permissions", False,
                     f"writable by others, a root shell for anyone: {listed}",
                     f"chown root: {' '.join(targets)}; chmod go-w {' '.join(targets)} "
                     "(or move the jobs directory under a directory only root can change)")
    return Check("job file permissions", True,
                 f"{directory}, the directories above it and its job files are root's and writable only by root")


def _first_word(command: str | list) -> str | None:
    if isinstance(command, list):
        return str(command[0])
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    for word in words:
        if "=" in word.split("/")[0] and not word.startswith(("/", ".")):
            continue  # VAR=value prefix
        return word
    return None


def commands_found(jobs: list) -> list[Check]:
    checks = []
    for job in jobs:
        defn = job.to_applied()
        word = _first_word(defn["command"])
        if word is None:
            checks.append(Check(f"command of {job.name}", True, "cannot tell the program (complex shell)"))
            continue
        path = (defn.get("env") or {}).get("PATH", CLEAN_PATH)
        shell = defn.get("shell") or "/bin/sh"
        result = subprocess.run([shell, "-c", 'command -v -- "$1"', "sh", word], env={"PATH": path},
                                capture_output=True, text=True)
        if result.returncode == 0:
            checks.append(Check(f"command of {job.name}", True, f"{word} → {result.stdout.strip()}"))
        else:
            checks.append(Check(f"command of {job.name}", False,
                                f"{word!r} is not found on the run PATH ({path})",
                                f"use an absolute path, install {word}, or set env: PATH in {job.source}"))
    return checks
