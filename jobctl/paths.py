"""Where things live: the jobs directory, the state directory, the crontab.

One module resolves every path so the rules are written once.  It is imported
by the wrapper, so it stays on the standard library's cheapest modules.
"""

from __future__ import annotations

import os

SYSTEM_JOBS_DIR = "/etc/jobctl/jobs.d"
SYSTEM_STATE_DIR = "/var/lib/jobctl"
SYSTEM_CRONTAB = "/etc/cron.d/jobctl"


def _is_root() -> bool:
    return os.geteuid() == 0


def home() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return os.environ.get("HOME", "/")


def jobs_dir(explicit: str | None = None) -> str:
    """--jobs-dir, else $JOBCTL_JOBS_DIR, else ./jobs.d, else the user default."""
    if explicit:
        return explicit
    env = os.environ.get("JOBCTL_JOBS_DIR")
    if env:
        return env
    if os.path.isdir("jobs.d"):
        return os.path.abspath("jobs.d")
    if _is_root():
        return SYSTEM_JOBS_DIR
    return os.path.join(home(), ".config", "jobctl", "jobs.d")


class UnsafePath(ValueError):
    """A state directory jobctl refuses: its path would be written into crontab lines."""


def _control_character(path: str) -> str | None:
    for i, c in enumerate(path):
        if ord(c) < 32 or 127 <= ord(c) < 160:
            return f"U+{ord(c):04X} at character {i + 1}"
    return None


def check_state_dir(path: str, source: str) -> str:
    """``path`` if it is safe to write into a crontab line, else UnsafePath naming ``source``.

    The state directory is an argument of every crontab line jobctl writes
    (``--state-dir DIR``): a newline in it would end the entry and start one
    of the path's choosing, and other control characters garble the line.
    """
    where = _control_character(path)
    if where is not None:
        raise UnsafePath(f"{source} {path!r} contains a control character ({where}); "
                         "a state directory is written into crontab lines, so jobctl refuses it: "
                         "use a path without control characters")
    return path


def state_dir() -> str:
    """$JOBCTL_STATE_DIR, else /var/lib/jobctl (root) or the XDG state home.

    Raises UnsafePath when the result holds a control character (see check_state_dir).
    """
    env = os.environ.get("JOBCTL_STATE_DIR")
    if env:
        return check_state_dir(os.path.abspath(env), "JOBCTL_STATE_DIR")
    if _is_root():
        return SYSTEM_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return check_state_dir(os.path.join(xdg, "jobctl"), "the state directory under XDG_STATE_HOME")
    return check_state_dir(os.path.join(home(), ".local", "state", "jobctl"),
                           "the state directory under your home directory")


def crontab_file() -> str | None:
    """$JOBCTL_CRONTAB names a crontab file to manage instead of the user's."""
    return os.environ.get("JOBCTL_CRONTAB") or None


def ensure_state_dir(path: str | None = None) -> str:
    """Create the state directory 0700 (and its parents) and return it.

    Raises OSError; callers turn it into an environment error with context.
    """
    path = path or state_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path)
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, 0o700)
    return path


# Files inside the state directory.  Named here so every module agrees.
def runs_db(state: str) -> str:
    return os.path.join(state, "runs.db")


def locks_dir(state: str) -> str:
    return os.path.join(state, "locks")


def lock_file(state: str, job: str) -> str:
    return os.path.join(state, "locks", job + ".lock")


def group_lock_file(state: str, group: str) -> str:
    """The lock every job of ``lock_group: GROUP`` takes (an @ name: no job's lock is named like it)."""
    return os.path.join(state, "locks", "@" + group + ".lock")


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def valid_job_name(name: str) -> bool:
    """A job (or lock group) name as job files allow it (spec.NAME_RE), checked without ``re`` for the wrapper.

    Names become file names under the state directory: one with / or .. in it would reach outside.
    """
    return 0 < len(name) <= 63 and name[0] not in "_.-" and _NAME_CHARS.issuperset(name)


def requests_lock(state: str, name: str) -> str:
    """Held (flock) by the wrapper the pass started for a job's due requests, so a pass starts no second one."""
    return os.path.join(state, "locks", f"{name}.requests")


def catch_up_job_lock(state: str, name: str) -> str:
    """Held (flock) by a job's catch-up wrapper while it makes up the job's missed runs; never deleted."""
    return os.path.join(state, "locks", f"{name}.catchup")


def catch_up_lock(state: str) -> str:
    """The guard that lets one catch-up pass run at a time (a dot file: no job is named like it)."""
    return os.path.join(state, "locks", ".catch-up.lock")


def paused_dir(state: str) -> str:
    return os.path.join(state, "paused")


def paused_file(state: str, job: str) -> str:
    return os.path.join(state, "paused", job)


def applied_dir(state: str) -> str:
    return os.path.join(state, "applied")


def applied_file(state: str, job: str) -> str:
    return os.path.join(state, "applied", job + ".json")


def spool_dir(state: str) -> str:
    """Where live runs' output is spooled while they run (created 0700 by the first wrapper that needs it)."""
    return os.path.join(state, "spool")


def output_spool(state: str, run_id: int) -> str:
    """The live output of run ``run_id`` (process.Output writes it, `logs --follow` reads it; removed once recorded)."""
    return os.path.join(state, "spool", str(run_id))


def errors_log(state: str) -> str:
    return os.path.join(state, "jobctl-errors.log")


def backups_dir(state: str) -> str:
    return os.path.join(state, "backups")


def backfill_lock(state: str, name: str) -> str:
    """Held (flock) by the one `jobctl backfill` of a job that may run at a time; never deleted."""
    return os.path.join(state, "locks", f"{name}.backfill")


def adopted_records(state: str) -> str:
    """What each `import --adopt` took out of the crontab, for `uninstall --restore` (never pruned with backups)."""
    return os.path.join(backups_dir(state), "import-adopted.json")


def apply_lock(state: str) -> str:
    """Serialises apply, uninstall and export --record (a blocking flock, crontab.apply_lock; never deleted)."""
    return os.path.join(state, "apply.lock")


def parent_output(state: str, run_id: int) -> str:
    """A finished run's captured output, kept for the jobs its then/on_failure start (JOBCTL_PARENT_OUTPUT)."""
    return os.path.join(state, "spool", f"{run_id}.parent")


def crash_report_name(pid: int) -> str:
    """The file a crash report goes to, in the state directory (or the temp directory when that fails)."""
    import time

    return time.strftime("jobctl-crash-%Y%m%dT%H%M%S") + f"-{pid}.txt"
