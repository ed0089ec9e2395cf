"""The job's process: its identity and environment, spawning it, capturing its output, timing it out.

The wrapper forks and execs the job in a new session (``setsid``), so the
job's process group is its pid and timeouts, ``replace`` and forwarded
signals reach grandchildren.  It waits with ``poll`` on the output pipe, a
``pidfd`` and the signal wake-up pipe (``Signals``), never in a busy loop.
"""

from __future__ import annotations

import fcntl
import os
import select
import time

try:
    # signal is _signal plus enums, and importing enum costs the wrapper ~2 ms
    # at every start (docs/benchmarks.md); it needs the numbers only.
    import _signal
except ImportError:  # not CPython
    import signal as _signal

from jobctl.applied import DEFAULTS, integer
from jobctl.runner import host
from jobctl.runner.cmdline import EX_CANNOT_EXEC, EX_JOBCTL

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from jobctl.applied import Definition
    from jobctl.runner.host import Lock

FORWARDED_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
#: what the job's child sets back to the default before exec: the wrapper's handlers and what Python ignores
_RESET_IN_CHILD = (*FORWARDED_SIGNALS, _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD)
READ_CHUNK = 1 << 20
#: reads of what a job left in the pipe when its main process exited: the pipe holds at most
#: READ_CHUNK, so two take it all, and a background writer cannot keep the wrapper reading
DRAIN_READS = 2
_F_SETPIPE_SZ = 1031
#: the longest single poll(2): it takes a C int of milliseconds (~24.8 days); loops re-check their deadlines
MAX_POLL_MS = 86_400_000


def poll_ms(seconds: float | None) -> int:
    """A poll(2) timeout in milliseconds for ``seconds`` (None: no limit), rounded up, at most MAX_POLL_MS."""
    if seconds is None:
        return -1
    if seconds <= 0:
        return 0
    return min(int(seconds * 1000) + 1, MAX_POLL_MS)


def signame(num: int) -> str:
    import signal  # only when a run ends by a signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


#: The spool (STATE/spool/RUN_ID) is the live copy of a run's output, bounded like the run log's:
#: a header, the head (the first half of output_limit, at SPOOL_HEADER), then one tail segment of
#: at most SPOOL_SEGMENT(half) bytes.  When the next chunk would overflow the segment, the segment is
#: cut back (ftruncate) and starts again with the last `half` bytes of the output, so the file never
#: holds more than SPOOL_HEADER + half + SPOOL_SEGMENT(half) bytes (1.5 x output_limit, with a 64 KiB
#: floor for the segment), and a reader that attaches late still finds the newest output.
#: Header: magic (8 bytes), half (8, little-endian), base (8): the output position the segment starts
#: at, 0 until the first cut (the segment then follows the head).  A cut truncates, then writes the
#: new base, then the kept bytes: a reader that sees the same base before and after its read read
#: bytes of that segment (SpoolReader).
SPOOL_MAGIC = b"jobctl\x01\n"
SPOOL_HEADER = 24
_SPOOL_BASE_AT = 16
SPOOL_MIN_SEGMENT = 1 << 16


def spool_segment(half: int) -> int:
    """A spool's tail segment capacity: twice what a cut keeps, so a cut comes once per ``half`` bytes at most."""
    return max(2 * half, SPOOL_MIN_SEGMENT)


class Output:
    """Bounded capture: the first and last halves of the limit, and a count between; spooled live when asked."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.dropped = 0
        #: the spool's path (spool_to), opened at the first output: a silent run costs no file
        self.spool_path = ""
        self.spool = -1  # its descriptor; -2: given up (an error), the run goes on without it
        self.base = self.half  # the output position the spool's tail segment starts at

    def spool_to(self, path: str) -> None:
        self.spool_path = path

    def feed(self, chunk: bytes) -> None:
        start = self.total
        self.total += len(chunk)
        rest = chunk
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            rest = chunk[room:]
        if rest:
            self.tail += rest
            excess = len(self.tail) - self.half
            # Trim in batches: deleting the front of a bytearray copies the rest.
            if excess > max(self.half, 1 << 16):
                del self.tail[:excess]
                self.dropped += excess
        if self.spool_path and self.spool != -2:
            self._spool(chunk, start)

    def _spool(self, chunk: bytes, start: int) -> None:
        """Write ``chunk`` (output positions start..total) to the spool; on any error stop spooling, never the job."""
        try:
            if self.spool < 0:
                self.spool = self._open_spool()
            end = self.total
            if end - self.base > spool_segment(self.half):
                self._cut(chunk, start, end)
            elif start >= self.half:
                os.pwrite(self.spool, chunk, SPOOL_HEADER + self.half + start - self.base)
            else:  # in or across the head: the segment still follows it (base == half)
                os.pwrite(self.spool, chunk, SPOOL_HEADER + start)
        except OSError:
            self.close_spool()
            self.spool = -2

    def _open_spool(self) -> int:
        """Create the spool 0600, close-on-exec, never through a link (the directory, 0700, is made when missing)."""
        path = self.spool_path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        for _ in range(3):
            try:
                fd = os.open(path, flags, 0o600)
                break
            except FileNotFoundError:
                try:
                    os.mkdir(os.path.dirname(path), 0o700)
                except FileExistsError:
                    pass  # another wrapper made it
            except FileExistsError:
                os.unlink(path)  # left by a wrapper killed with this run id (ids of deleted rows come back)
        else:
            raise FileExistsError(path)
        os.write(fd, SPOOL_MAGIC + self.half.to_bytes(8, "little") + bytes(8))
        return fd

    def _cut(self, chunk: bytes, start: int, end: int) -> None:
        """Start the tail segment again with the output's last ``half`` bytes (self.tail holds them after feed)."""
        fd, half = self.spool, self.half
        if start < half:  # the chunk completes the head first
            os.pwrite(fd, chunk[:half - start], SPOOL_HEADER + start)
        base = max(end - half, half)
        keep = end - base
        os.ftruncate(fd, SPOOL_HEADER + half)  # first: a reader then finds nothing where it looks
        os.pwrite(fd, base.to_bytes(8, "little"), _SPOOL_BASE_AT)  # then the new base, then the bytes
        if keep:
            os.pwrite(fd, self.tail[len(self.tail) - keep:], SPOOL_HEADER + half)
        self.base = base

    def close_spool(self) -> None:
        """Remove the spool (the run is recorded: its output is in the run log); a reader's open descriptor reads on."""
        if self.spool >= 0:
            fd, self.spool = self.spool, -1
            try:
                os.close(fd)
                os.unlink(self.spool_path)
            except OSError:
                pass
        self.spool_path = ""

    def finish(self) -> tuple[bytes, bytes, int]:
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess
        return bytes(self.head), bytes(self.tail), self.dropped


class SpoolReader:
    """`jobctl logs --follow`'s side of a spool: what was written since the last read, and what a cut dropped.

    It keeps its descriptor: once the wrapper has recorded the run and
    removed the file, the descriptor still reads the rest of it.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        #: the output position read up to
        self.pos = 0

    @classmethod
    def open(cls, path: str) -> SpoolReader | None:
        """The spool at ``path``; None when there is none (nothing printed yet, or the run is recorded)."""
        try:
            return cls(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW))
        except OSError:
            return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self, most: int = READ_CHUNK) -> tuple[int, bytes]:
        """(bytes dropped before it, up to ``most`` new bytes); (0, b"") when nothing is new."""
        for _ in range(16):  # a cut during the read: read again (each cut needs `half` new bytes)
            header = os.pread(self.fd, SPOOL_HEADER, 0)
            if len(header) < SPOOL_HEADER or header[:8] != SPOOL_MAGIC:
                return 0, b""  # not written yet
            half = int.from_bytes(header[8:16], "little")
            base = int.from_bytes(header[16:24], "little") or half
            pos = self.pos
            if pos < half:  # the head is written once and never cut
                data = os.pread(self.fd, min(most, half - pos), SPOOL_HEADER + pos)
                self.pos += len(data)
                return 0, data
            dropped = max(base - pos, 0)
            pos += dropped
            data = os.pread(self.fd, most, SPOOL_HEADER + half + pos - base)
            if os.pread(self.fd, 8, _SPOOL_BASE_AT) != header[16:24]:
                continue  # cut meanwhile: what was read may be of the new segment
            self.pos = pos + len(data)
            return dropped, data
        return 0, b""


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """Forwarded signals: recorded, and waking the poll loop via a pipe."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        #: when the first forwarded signal arrived (time.monotonic()): the wrapper ends within kill_grace of it
        self.first_at = 0.0
        self.raise_now = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous = {}
        _signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in FORWARDED_SIGNALS:
            self.previous[sig] = _signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.pending:
            self.first_at = time.monotonic()
        self.pending.append(signum)
        if self.raise_now:
            raise Interrupted(signum)

    def drain(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except OSError:
            pass

    def restore(self) -> None:
        _signal.set_wakeup_fd(-1)
        for sig, handler in self.previous.items():
            _signal.signal(sig, handler)
        os.close(self.wake_r)
        os.close(self.wake_w)

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake for a forwarded signal (raises Interrupted)."""
        if self.pending:
            raise Interrupted(self.pending[0])
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            poller.poll(poll_ms(left))
            if self.pending:
                raise Interrupted(self.pending[0])


def _resolve(program: str, path: str) -> str:
    if "/" in program:
        return program
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return program  # execve reports ENOENT


def run_as(defn: Definition) -> tuple[str, str, int, int]:
    """(user, home, uid, gid) the job runs as: its ``user``, else whoever runs the wrapper."""
    import pwd

    user = defn["user"]
    try:
        pw = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        if user:
            raise LookupError(f"user {user!r} does not exist on this host") from None
        return str(os.geteuid()), os.environ.get("HOME", "/"), os.geteuid(), os.getegid()
    if pw.pw_uid != os.geteuid() and os.geteuid() != 0:
        raise LookupError(f"the job runs as {pw.pw_name}; only root can start it as another user")
    return pw.pw_name, pw.pw_dir, pw.pw_uid, pw.pw_gid


def clean_environment(defn: Definition, who: tuple[str, str, int, int]) -> dict[str, str]:
    """The same environment for every run, scheduled or manual (cron-like); ``who`` is run_as(defn)."""
    user, home, _, _ = who
    env = {
        "HOME": home,
        "LOGNAME": user,
        "USER": user,
        "SHELL": defn["shell"] or DEFAULTS["shell"],
        "PATH": host.CLEAN_PATH,
        "LANG": "C.UTF-8",
    }
    env.update(defn["env"] or {})
    return env


def become(ids: tuple[str, int, int]) -> None:
    """Drop to a job's identity in a child (user name, uid, gid): its groups, then its gid, then its uid."""
    name, uid, gid = ids
    os.initgroups(name, gid)
    os.setgid(gid)
    os.setuid(uid)


#: JOBCTL_TEST_STOP, read once: the spawn checks it between fork and exec, where every line of Python costs
_STOP = os.environ.get("JOBCTL_TEST_STOP")


def _checkpoint(point: str) -> None:
    """Stop here (SIGSTOP) when JOBCTL_TEST_STOP names ``point``: tests kill the wrapper at an exact moment.

    The job never sees the variable: its environment is built from scratch
    (clean_environment).
    """
    if point == _STOP:
        os.kill(os.getpid(), _signal.SIGSTOP)


class Attempt:
    """One process of one run: spawn, capture, time out, reap."""

    def __init__(self, defn: Definition, env: dict[str, str], who: tuple[str, str, int, int],
                 lock: Lock | None, signals: Signals, stream: bool, umask: int,
                 sink: Callable[[bytes], Any] | None = None) -> None:
        self.defn = defn
        self.sink = sink
        self.env = env
        self.lock = lock
        self.signals = signals
        self.stream = stream
        self.umask = umask
        self.output = Output(integer(defn["output_limit"], DEFAULTS["output_limit"]))
        self.pid = 0
        user, _, uid, gid = who
        self.ids = (user, uid, gid) if uid != os.geteuid() else None

    def _argv(self) -> list[str]:
        command = self.defn["command"]
        if isinstance(command, list):
            return [_resolve(str(command[0]), self.env.get("PATH", host.CLEAN_PATH))] + [str(a) for a in command[1:]]
        return [self.defn["shell"] or DEFAULTS["shell"], "-c", command]

    def spawn(self, record: Callable[[int, int], None]) -> tuple[str, int] | None:
        """Start the job in its own session.  Returns (stage, errno) when it could not start.

        ``record(pid, start_ticks)`` is called once the child is its own
        session and before it may exec the job: until then it waits on the
        ``go`` pipe.  That closes the window in which the wrapper could be
        killed between starting the job and recording its process group,
        which left a run row with no pid that the next reader marked `lost`
        while the job ran on (1 wrapper in 138 killed at random moments).
        Now a job runs only once its group is on the run row (or the log is
        unusable), and a child whose wrapper died before that sees end of
        file on ``go`` and exits without running anything: the run is then
        rightly `lost`.
        """
        argv = self._argv()
        cwd = self.defn["working_dir"] or self.env["HOME"]
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(out_r, _F_SETPIPE_SZ, READ_CHUNK)
        except OSError:
            pass
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # Until the child execs, it shares every page with this process, and
        # whichever of the two writes to a page first gets a copy of it (4 us
        # a page on a VM; CPython writes to the pages of every object it
        # touches, through reference counts).  So the child is given
        # everything ready-made, and between the fork and its exec each side
        # runs as little Python as it can: a tenth of a scheduled run, before.
        lock_fds = self.lock.fds() if self.lock is not None else ()
        keep = (err_w, go_r, *lock_fds)
        stray = [fd for fd in open_descriptors() if fd > 2 and fd not in keep]
        env, ids, umask = self.env, self.ids, self.umask
        for fd in lock_fds:
            os.set_inheritable(fd, True)
        forking = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        pid = os.fork()
        if pid == 0:  # child: only async-signal-safe-ish work, then exec
            stage = "setsid"
            try:
                os.close(go_w)  # so that the wrapper's death reads as end of file on go_r
                for sig in _RESET_IN_CHILD:
                    _signal.signal(sig, _signal.SIG_DFL)
                _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
                os.setsid()
                os.umask(umask)
                if ids is not None:
                    # apply --system: the wrapper runs as root, the job as its user
                    stage = "setuid"
                    become(ids)
                stage = "chdir"
                os.chdir(cwd)
                stage = "exec"
                os.dup2(devnull, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                # the job gets 0, 1, 2 and the read-only lock; err_w and go_r close at exec
                for fd in stray:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                os.write(err_w, b"R")  # ready: in its own session, as its user
                if os.read(go_r, 1) != b"G":
                    os._exit(EX_JOBCTL)  # the wrapper died before recording the run: do not run unrecorded
                os.execve(argv[0], argv, env)
            except OSError as exc:
                os.write(err_w, f"{stage}:{exc.errno}".encode())
            except BaseException:  # noqa: BLE001 - never return into the parent's code
                os.write(err_w, f"{stage}:0".encode())
            os._exit(EX_CANNOT_EXEC)
        # the child's start time (it exists until we reap it), for the lock's holder record
        start = host.forked_ticks(pid, forking, time.clock_gettime_ns(time.CLOCK_BOOTTIME))
        self.pid = pid
        self.out_r = out_r
        os.close(err_w)  # so that a child that dies reads as end of file
        if _STOP:
            _checkpoint("spawned")
        try:
            ready = os.read(err_r, 64)
            if ready == b"R":
                record(pid, start)
                try:
                    os.write(go_w, b"G")
                except OSError:
                    pass  # the child is gone; waiting reaps it and says how it ended
                os.close(go_w)
                go_w = -1
                if _STOP:
                    _checkpoint("started")
                failure = os.read(err_r, 64)  # EOF once exec succeeded (close-on-exec)
            else:
                failure = ready or b"exec:0"  # EOF without "R": the child died before it was ready
        finally:
            if go_w >= 0:
                os.close(go_w)
            os.close(err_r)
            for fd in (out_w, devnull, go_r):
                os.close(fd)
            for fd in lock_fds:
                os.set_inheritable(fd, False)  # the job has them; later children (notifications) must not
        if failure:
            os.waitpid(pid, 0)
            os.close(out_r)
            stage, _, num = failure.decode().partition(":")
            return stage, int(num or 0)
        return None

    def _write_out(self, chunk: bytes) -> None:
        try:
            if self.sink is not None:
                self.sink(chunk)
                return
            view = memoryview(chunk)
            while view:
                n = os.write(1, view)
                view = view[n:]
        except OSError:
            self.stream = False  # reader went away; keep capturing

    def _read(self) -> int:
        """Read once from the job's output: 1 data, 0 end of file, -1 nothing there now (non-blocking)."""
        try:
            chunk = os.read(self.out_r, READ_CHUNK)
        except BlockingIOError:
            return -1
        if not chunk:
            return 0
        self.output.feed(chunk)
        if self.stream:
            self._write_out(chunk)
        return 1

    def wait(self, timeout: float | None, kill_grace: float) -> tuple[int, str | None, int | None]:
        """Capture until the job ends; returns (wait status, 'timeout'|'signal'|None, signal forwarded)."""
        pid = self.pid
        started = time.monotonic()
        deadline = started + timeout if timeout else None
        kill_at: float | None = None
        ended_by: str | None = None
        forwarded: int | None = None
        status: int | None = None
        poller = select.poll()
        poller.register(self.out_r, select.POLLIN)
        poller.register(self.signals.wake_r, select.POLLIN)
        try:
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pidfd = -1
        pipe_open = True
        exited = False
        give_up: float | None = None
        try:
            while True:
                now = time.monotonic()
                waits = [t for t in (None if ended_by else deadline, kill_at, give_up) if t is not None]
                ms = poll_ms(min(waits) - now if waits else None)
                if pidfd < 0 and (ms < 0 or ms > 100):
                    ms = 100  # no pidfd: look at the child ten times a second
                for fd, _ in poller.poll(ms):
                    if fd == self.out_r:
                        if self._read() == 0:
                            poller.unregister(self.out_r)
                            pipe_open = False
                    elif fd == self.signals.wake_r:
                        self.signals.drain()
                    elif fd == pidfd:
                        poller.unregister(pidfd)
                        exited = True
                now = time.monotonic()
                if self.signals.pending and forwarded is None:
                    forwarded = self.signals.pending[0]
                    host.killpg(pid, forwarded)
                    ended_by = ended_by or "signal"
                    kill_at = now + kill_grace
                if deadline is not None and ended_by is None and now >= deadline:
                    host.killpg(pid, _signal.SIGTERM)
                    ended_by = "timeout"
                    kill_at = now + kill_grace
                if kill_at is not None and now >= kill_at:
                    host.killpg(pid, _signal.SIGKILL)
                    kill_at = None
                if status is None:
                    # The pidfd can report the exit a moment before waitpid
                    # sees it: once it has spoken, wait for real.
                    done, wstatus = os.waitpid(pid, 0 if exited else os.WNOHANG)
                    if done:
                        status = wstatus
                if status is None:
                    continue
                if not ended_by or not host.group_alive(pid):
                    break
                # We are ending the job: its grandchildren must go too (a job
                # that ended by itself may leave background processes, as under cron).
                if kill_at is None:
                    host.killpg(pid, _signal.SIGKILL)
                    # Killed processes vanish once init reaps them; do not wait
                    # forever where nothing reaps.
                    if give_up is None:
                        give_up = now + 2.0
                    elif now >= give_up:
                        break
                    time.sleep(0.01)
            # The main process has exited: take what is already in the pipe and
            # stop.  A background process may hold the write end for hours, so
            # this neither waits for end of file nor spins on an empty pipe, and
            # one that keeps writing gets DRAIN_READS reads, not a loop.
            if pipe_open:
                os.set_blocking(self.out_r, False)
                for _ in range(DRAIN_READS):
                    if self._read() <= 0:
                        break
        finally:
            os.close(self.out_r)
            if pidfd >= 0:
                os.close(pidfd)
        return status, ended_by, forwarded


def open_descriptors() -> list[int]:
    """This process's open descriptors (up to 1023 when /proc is not there)."""
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(1024))


def close_descriptors(*keep: int) -> None:
    """Close every descriptor above 2 but ``keep``.

    In a job's child before exec (listed by the wrapper before the fork) and
    in the notifier: whatever the wrapper inherited -- from cron (its pipes),
    from a root shell running `jobctl run` (an open file) -- must not reach a
    job that runs as another user.
    """
    for fd in open_descriptors():
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
