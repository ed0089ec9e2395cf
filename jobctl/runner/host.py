"""What the kernel says of processes, and the job's lock: liveness, groups, start times, lock holders, boot id.

Read from /proc and kill(2), for the wrapper (hot path) and for the CLI
(``status`` and ``run --detach`` ask whether a recorded run still lives).
The job's lock lives here too (``Lock``: ``fcntl.flock`` on
STATE/locks/NAME.lock and the record of who holds it), next to the checks
``replace`` runs on its holder (not_the_runs_group, lock_holders): every
module the wrapper imports costs each scheduled run its import (~0.2 ms).

Every run takes it through the wrapper (``jobctl run`` and catch-up runs
start the same wrapper as cron), so nothing else locks a job.  The lock's descriptor is deliberately inherited by the
job: the lock is then held exactly as long as any process of the job lives,
even if the wrapper is killed with SIGKILL (a FileLock descriptor is
close-on-exec and would free the lock while the job runs on).
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable

try:
    import _signal  # signal without its enums (~2 ms the wrapper need not pay)
except ImportError:  # not CPython
    import signal as _signal

# The PATH a job starts with unless its file sets one: cron's own default and then some.
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def alive(pid: int) -> bool:
    """Whether a process (pid > 0) or process group (pid < 0) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def proc_stat(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat from the state on (field 3 is [0]); None when there is no such process."""
    try:
        # os.read rather than open(): no file object, so a few pages less touched where that counts
        # (the spawn reads its child's start time between fork and exec); the line is well under 4 KiB
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        fields = data.rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None


def start_ticks(pid: int) -> int:
    """When process ``pid`` started, in clock ticks after boot (field 22); 0 when unknown.

    With the pid, this names one process for the machine's uptime: a pid
    can be reused, a (pid, start time) pair cannot.
    """
    fields = proc_stat(pid)
    return int(fields[19]) if fields else 0


#: nanoseconds in a clock tick of /proc's times (CLK_TCK, 100 a second on Linux)
_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def forked_ticks(pid: int, before_ns: int, after_ns: int) -> int:
    """start_ticks(pid) of a child forked between two readings of CLOCK_BOOTTIME, mostly without reading /proc.

    The kernel takes a process's start time from CLOCK_BOOTTIME during the
    fork and /proc shows it in whole clock ticks (field 22: the nanoseconds
    divided by 10**9 / CLK_TCK, rounded down); when both readings fall in
    the same tick, so does the start.  Otherwise (one fork in ~50 at 100
    ticks a second) /proc says.  The spawn needs this between fork and exec,
    where every page it touches is copied (process.Attempt.spawn).
    """
    if before_ns // _TICK_NS == after_ns // _TICK_NS:
        return before_ns // _TICK_NS
    return start_ticks(pid)


def group_members(pgid: int) -> list[int]:
    """The live processes of group ``pgid`` (zombies do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    members = []
    for entry in entries:
        if entry.isdigit():
            fields = proc_stat(entry)
            # fields after the command: state, ppid, pgrp, ...
            if fields and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                members.append(int(entry))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any process of a group still lives (zombies do not count).

    Orphaned zombies linger where PID 1 is slow to reap (containers, some
    VMs), and kill(-pgid, 0) still finds them.
    """
    if pgid <= 1 or not alive(-pgid):
        return False
    if not os.path.isdir("/proc/self"):
        return True
    return bool(group_members(pgid))


def open_on(pid: int, file_id: tuple[int, int], locked: bool = False) -> bool:
    """Whether process ``pid`` has the file (st_dev, st_ino) open; ``locked``: through a descriptor holding a flock."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != file_id:
            continue
        if not locked:
            return True
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as fh:
                if b"\nlock:" in fh.read():  # the locks this open file description holds
                    return True
        except OSError:
            continue
    return False


def lock_holders(file_id: tuple[int, int]) -> list[int]:
    """The processes (other than this one) whose descriptors hold the flock on file ``file_id``."""
    me = os.getpid()
    try:
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]
    except OSError:
        return []
    return [pid for pid in pids if open_on(pid, file_id, locked=True)]


def not_the_runs_group(pgid: int, start: int, lock_id: tuple[int, int]) -> str | None:
    """Why process group ``pgid`` cannot be proven to be the one the lock holder's run started; None when it is.

    The lock file names the holder's group, and ``replace`` signals it as
    root.  Only a group that passes these checks is ever signalled: an id
    that is not a job's (negative, 0, 1, the wrapper's own), a recorded start
    time that does not match the session leader now using that id (the job
    ended and the pid was reused), or, when the leader has exited, a group
    none of whose processes holds this job's lock.  A process group id is
    never reused while the group has members, and the lock descriptor is
    only inherited by the job's own processes.
    """
    if pgid <= 1:
        return f"process group {pgid} is not a job's"
    if pgid in (os.getpid(), os.getpgrp()):
        return f"process group {pgid} is the wrapper's own"
    if start <= 0:
        return f"no start time is recorded for process group {pgid} (written by an older jobctl?)"
    leader = proc_stat(pgid)
    if leader is not None:
        if int(leader[2]) != pgid or int(leader[19]) != start:
            return f"process {pgid} is not the one the run started (its pid was reused)"
        return None
    if any(open_on(pid, lock_id) for pid in group_members(pgid)):
        return None
    return f"no process of group {pgid} holds the job's lock"


def kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid`` (its leader is our unreaped child, so the id is not reused)."""
    killpg(sid, _signal.SIGKILL)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if entry.isdigit() and int(entry) != os.getpid():
            fields = proc_stat(entry)
            if fields and int(fields[3]) == sid:
                try:
                    os.kill(int(entry), _signal.SIGKILL)
                except OSError:
                    pass


#: where a chained run's JOBCTL_PARENT_OUTPUT lives: /tmp/jobctl-parent-STATE-RUN-RANDOM
PARENT_OUTPUT_ROOT = "/tmp"


def parent_output_prefix(state: str) -> str:
    """``jobctl-parent-DEV.INO-``: the names of the parent-output directories of this state directory's runs."""
    try:
        st = os.stat(state)
        tag = f"{st.st_dev:x}.{st.st_ino:x}"
    except OSError:
        tag = "0"
    return f"jobctl-parent-{tag}-"


def sweep_parent_outputs(state: str, running: Callable[[int], bool]) -> int:
    """Remove the parent-output directories of this state's runs that are over (their wrapper died: SIGKILL).

    A directory is named after its run (parent_output_prefix); ``running(run_id)``
    says whether that run is still going.  fd-based rmtree: no link is followed.
    """
    import shutil

    prefix = parent_output_prefix(state)
    removed = 0
    try:
        names = [n for n in os.listdir(PARENT_OUTPUT_ROOT) if n.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        run = name[len(prefix):].split("-", 1)[0]
        if run.isdigit() and not running(int(run)):
            shutil.rmtree(os.path.join(PARENT_OUTPUT_ROOT, name), ignore_errors=True)
            removed += 1
    return removed


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
            return fh.read().strip().decode()
    except OSError:
        return ""


def killpg(pgid: int, sig: int) -> None:
    if pgid <= 1:  # killpg(0) is our own group, 1 init's, and a negative id an error
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- the job's lock ----------------------------------------------------------------------------

class Holder:
    """What the lock file says of the run holding the lock; zeros where unknown."""

    __slots__ = ("run", "pgid", "wrapper", "start")

    def __init__(self, run: int = 0, pgid: int = 0, wrapper: int = 0, start: int = 0) -> None:
        self.run, self.pgid, self.wrapper = run, pgid, wrapper
        #: the group leader's start time (/proc/PGID/stat field 22); 0 in records of older wrappers
        self.start = start

    def key(self) -> tuple[int, int, int]:
        return self.run, self.pgid, self.start


class Lock:
    """The per-job lock file; its content names the run holding it.

    The descriptor that holds the flock is read-only, because it is
    inherited by the job (see the module docstring): a job, which may run as
    another user, must not be able to rewrite the holder record through it
    and so make a later ``replace`` run signal a process group of its
    choosing.  flock(2) needs no write access.  The record is written through
    a separate descriptor that never leaves the wrapper; the file is 0600 in
    the 0700 state directory, so a ``user:`` job cannot open it either.
    """

    RECORD = 64  # bytes: the record is padded, so rewriting it never leaves a shorter, half-read file

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        #: a second lock held with this one (a lock_group job: the group's, then its own), closed with it
        self.companion: Lock | None = None
        self.fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        st = os.fstat(self.fd)
        self.file_id = (st.st_dev, st.st_ino)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def holder(self) -> Holder:
        """The holder's record, zeros where unknown."""
        try:
            nums = [int(f) for f in os.pread(self.fd, 2 * self.RECORD, 0).split()[:4]]
        except (OSError, ValueError):
            nums = []
        return Holder(*nums)

    def set_holder(self, run_id: int, pgid: int, start: int) -> None:
        data = f"{run_id} {pgid} {os.getpid()} {start}".encode().ljust(self.RECORD - 1) + b"\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
            finally:
                os.close(fd)
        except OSError:
            pass  # then replace will not signal the group (it cannot verify it); the flock is the lock

    def fds(self) -> tuple[int, ...]:
        """The descriptors holding the flocks, which the job inherits: this one's and its companion's."""
        return (self.fd,) if self.companion is None else (self.fd, self.companion.fd)

    def close(self) -> None:
        os.close(self.fd)
        if self.companion is not None:
            self.companion.close()
