"""The wrapper cron starts for every run: lock, run, time out, retry, record.

This is the hot path.  Cron may start hundreds of these in the same second, so
it imports only cheap standard-library modules (no typer, rich, yaml,
croniter, python-crontab, filelock) and reads the applied definition as JSON.

Locking uses ``fcntl.flock`` on STATE/locks/NAME.lock, the same lock
filelock's UnixFileLock takes, so the CLI and the wrapper exclude each other.
The descriptor is deliberately inherited by the job: the lock is then held
exactly as long as any process of the job lives, even if this wrapper is
killed with SIGKILL (a FileLock descriptor is close-on-exec and would free
the lock while the job runs on).

The run log is best effort: when it is missing, corrupt, busy or the disk is
full, the job still runs under its lock and timeout; the problem is printed
on stderr and appended to STATE/jobctl-errors.log.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import sys
import time

try:
    # signal is _signal plus enums, and importing enum costs the wrapper ~2 ms
    # at every start (docs/benchmarks.md); it needs the numbers only.
    import _signal
except ImportError:  # not CPython
    import signal as _signal

from jobctl.runner import host

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

EX_SKIPPED = 75
EX_TIMEOUT = 124
EX_JOBCTL = 125
EX_CANNOT_EXEC = 126
EX_NOT_FOUND = 127

#: under cron, how much of a failed run's output goes into the mail: its last lines, bounded in bytes
MAIL_TAIL_LINES = 20
MAIL_TAIL_BYTES = 4096

FORWARDED_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
READ_CHUNK = 1 << 20
#: reads of what a job left in the pipe when its main process exited: the pipe holds at most
#: READ_CHUNK, so two take it all, and a background writer cannot keep the wrapper reading
DRAIN_READS = 2
_F_SETPIPE_SZ = 1031

# Bounds of the arithmetic on an applied definition.  Validation keeps job
# files far inside them; these hold for hand-edited or older definitions too.
#: no duration the wrapper acts on is longer (a century: "never" for a scheduled job)
MAX_SECONDS = 100 * 366 * 86400.0
#: the longest single poll(2): it takes a C int of milliseconds (~24.8 days); loops re-check their deadlines
MAX_POLL_MS = 86_400_000
#: SQLite integers are signed 64-bit
SQLITE_MAX_INT = (1 << 63) - 1
#: retries.attempts' maximum in spec.RANGES (the wrapper does not import spec; a test checks they agree)
MAX_RETRIES = 100
#: likewise notify.after_failures
MAX_AFTER_FAILURES = 10_000


def _number(value: Any, default: float, high: float = MAX_SECONDS) -> float:
    """A number of an applied definition as a float in [0, high].

    Not a number (NaN, a string, null) means ``default``; an infinity or an
    integer too large for a float means ``high``.  So no arithmetic of the
    wrapper can overflow, turn into NaN or make poll(2) raise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return float(min(max(value, 0), high))  # compared as given: a huge int never becomes a float


def _integer(value: Any, default: int, high: int = SQLITE_MAX_INT) -> int:
    """A whole number of an applied definition in [0, high]; see _number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return int(min(max(value, 0), high))


def _poll_ms(seconds: float | None) -> int:
    """A poll(2) timeout in milliseconds for ``seconds`` (None: no limit), rounded up, at most MAX_POLL_MS."""
    if seconds is None:
        return -1
    if seconds <= 0:
        return 0
    return min(int(seconds * 1000) + 1, MAX_POLL_MS)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _fmt_duration(seconds: float) -> str:
    total = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or ("0s" if seconds <= 0 else f"{seconds:.1f}s")


def _signame(num: int) -> str:
    import signal  # only when a run ends by a signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


class ErrorLog:
    """One line to stderr and to STATE/jobctl-errors.log; never raises."""

    def __init__(self, state: str, job: str) -> None:
        self.path = os.path.join(state, "jobctl-errors.log")
        self.job = job

    def __call__(self, message: str, echo: bool = True) -> None:
        line = f"jobctl: job {self.job}: {message}"
        if echo:
            try:
                os.write(2, (line + "\n").encode("utf-8", "replace"))
            except OSError:
                pass
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, f"{_iso(time.time())} {line}\n".encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


class RunLog:
    """The run log seen from the wrapper: every call is allowed to fail.

    The first failure is reported once and the log is dropped for the rest
    of this wrapper, so a broken database costs one line, not one per call.
    """

    def __init__(self, state: str, error: ErrorLog) -> None:
        self.error = error
        self.store: Any = None
        try:
            from jobctl import store

            self.store = store.connect(os.path.join(state, "runs.db"))
        except Exception as exc:  # noqa: BLE001 - any failure of the log must not stop the job
            self._broken(exc)

    def _broken(self, exc: BaseException) -> None:
        self.error(f"run log unusable, running the job without recording it: {type(exc).__name__}: {exc}")
        if self.store is not None:
            try:
                self.store.close()
            except Exception:  # noqa: BLE001
                pass
        self.store = None

    def call(self, method: str, *args: Any, default: Any = None, **kwargs: Any) -> Any:
        if self.store is None:
            return default
        try:
            return getattr(self.store, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self._broken(exc)
            return default


class Output:
    """Bounded capture: the first and last halves of the limit, and a count between."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.half
        # Trim in batches: deleting the front of a bytearray copies the rest.
        if excess > max(self.half, 1 << 16):
            del self.tail[:excess]
            self.dropped += excess

    def finish(self) -> tuple[bytes, bytes, int]:
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess
        return bytes(self.head), bytes(self.tail), self.dropped


class _Interrupted(Exception):
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
            raise _Interrupted(signum)

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
        """Sleep, but wake for a forwarded signal (raises _Interrupted)."""
        if self.pending:
            raise _Interrupted(self.pending[0])
        poller = select.poll()
        poller.register(self.wake_r, select.POLLIN)
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            poller.poll(_poll_ms(left))
            if self.pending:
                raise _Interrupted(self.pending[0])


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

    def close(self) -> None:
        os.close(self.fd)


def _resolve(program: str, path: str) -> str:
    if "/" in program:
        return program
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", program)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return program  # execve reports ENOENT


def run_as(defn: dict[str, Any]) -> tuple[str, str, int, int]:
    """(user, home, uid, gid) the job runs as: its ``user``, else whoever runs the wrapper."""
    import pwd

    user = defn.get("user")
    try:
        pw = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        if user:
            raise LookupError(f"user {user!r} does not exist on this host") from None
        return str(os.geteuid()), os.environ.get("HOME", "/"), os.geteuid(), os.getegid()
    if pw.pw_uid != os.geteuid() and os.geteuid() != 0:
        raise LookupError(f"the job runs as {pw.pw_name}; only root can start it as another user")
    return pw.pw_name, pw.pw_dir, pw.pw_uid, pw.pw_gid


def clean_environment(defn: dict[str, Any], who: tuple[str, str, int, int]) -> dict[str, str]:
    """The same environment for every run, scheduled or manual (cron-like); ``who`` is run_as(defn)."""
    user, home, _, _ = who
    env = {
        "HOME": home,
        "LOGNAME": user,
        "USER": user,
        "SHELL": defn.get("shell") or "/bin/sh",
        "PATH": host.CLEAN_PATH,
        "LANG": "C.UTF-8",
    }
    env.update(defn.get("env") or {})
    return env


def _become(ids: tuple[str, int, int]) -> None:
    """Drop to a job's identity in a child (user name, uid, gid): its groups, then its gid, then its uid."""
    name, uid, gid = ids
    os.initgroups(name, gid)
    os.setgid(gid)
    os.setuid(uid)


def _checkpoint(point: str) -> None:
    """Stop here (SIGSTOP) when JOBCTL_TEST_STOP names ``point``: tests kill the wrapper at an exact moment.

    One dictionary lookup otherwise.  The job never sees the variable: its
    environment is built from scratch (clean_environment).
    """
    if os.environ.get("JOBCTL_TEST_STOP") == point:
        os.kill(os.getpid(), _signal.SIGSTOP)


class Attempt:
    """One process of one run: spawn, capture, time out, reap."""

    def __init__(self, defn: dict[str, Any], env: dict[str, str], who: tuple[str, str, int, int],
                 lock: Lock | None, signals: Signals, stream: bool, umask: int,
                 sink: Callable[[bytes], Any] | None = None) -> None:
        self.defn = defn
        self.sink = sink
        self.env = env
        self.lock = lock
        self.signals = signals
        self.stream = stream
        self.umask = umask
        self.output = Output(_integer(defn.get("output_limit"), 1 << 20))
        self.pid = 0
        user, _, uid, gid = who
        self.ids = (user, uid, gid) if uid != os.geteuid() else None

    def _argv(self) -> list[str]:
        command = self.defn["command"]
        if isinstance(command, list):
            return [_resolve(str(command[0]), self.env.get("PATH", host.CLEAN_PATH))] + [str(a) for a in command[1:]]
        return [self.defn.get("shell") or "/bin/sh", "-c", command]

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
        cwd = self.defn.get("working_dir") or self.env["HOME"]
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(out_r, _F_SETPIPE_SZ, READ_CHUNK)
        except OSError:
            pass
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if self.lock is not None:
            os.set_inheritable(self.lock.fd, True)
        pid = os.fork()
        if pid == 0:  # child: only async-signal-safe-ish work, then exec
            stage = "setsid"
            try:
                os.close(go_w)  # so that the wrapper's death reads as end of file on go_r
                for sig in (*FORWARDED_SIGNALS, _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD):
                    _signal.signal(sig, _signal.SIG_DFL)
                _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
                os.setsid()
                os.umask(self.umask)
                if self.ids is not None:
                    # apply --system: the wrapper runs as root, the job as its user
                    stage = "setuid"
                    _become(self.ids)
                stage = "chdir"
                os.chdir(cwd)
                stage = "exec"
                os.dup2(devnull, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                # the job gets 0, 1, 2 and the read-only lock; err_w and go_r close at exec
                _close_descriptors(err_w, go_r, *((self.lock.fd,) if self.lock is not None else ()))
                os.write(err_w, b"R")  # ready: in its own session, as its user
                if os.read(go_r, 1) != b"G":
                    os._exit(EX_JOBCTL)  # the wrapper died before recording the run: do not run unrecorded
                os.execve(argv[0], argv, self.env)
            except OSError as exc:
                os.write(err_w, f"{stage}:{exc.errno}".encode())
            except BaseException:  # noqa: BLE001 - never return into the parent's code
                os.write(err_w, f"{stage}:0".encode())
            os._exit(EX_CANNOT_EXEC)
        self.pid = pid
        for fd in (out_w, err_w, devnull, go_r):
            os.close(fd)
        if self.lock is not None:
            os.set_inheritable(self.lock.fd, False)  # the job has it; later children (notifications) must not
        self.out_r = out_r
        start = host.start_ticks(pid)  # the child exists until we reap it: this is its start time
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
                _checkpoint("started")
                failure = os.read(err_r, 64)  # EOF once exec succeeded (close-on-exec)
            else:
                failure = ready or b"exec:0"  # EOF without "R": the child died before it was ready
        finally:
            if go_w >= 0:
                os.close(go_w)
            os.close(err_r)
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
                ms = _poll_ms(min(waits) - now if waits else None)
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


class _Notifier:
    """Notifications in a child process, under a wall-clock deadline.

    The child drops to the job's identity before any sink runs (the
    initgroups/setgid/setuid of the job itself; if that fails, nothing is
    sent), so a ``user:`` job's notify command and sendmail run as that user,
    never as root with the user's HOME, and it enters the working directory
    as that user.  It holds neither the job's lock nor the run log's
    descriptors nor cron's pipes, and writes one line per sink to a pipe.
    The wrapper waits for that with poll, wakes for forwarded signals, and
    kills the child's whole session when its budget runs out or the wrapper
    is told to stop.
    """

    RESULT_LIMIT = 4096

    def __init__(self, work: Callable[[], list[str]], ids: tuple[str, int, int] | None, cwd: str,
                 budget: float, what: str) -> None:
        self.what = what
        self.budget = budget
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                import gc

                # No finalizer of an object inherited from the wrapper may run and close
                # a descriptor number this child has reused (the descriptors go below).
                gc.disable()
                _signal.set_wakeup_fd(-1)
                for sig in FORWARDED_SIGNALS:
                    _signal.signal(sig, _signal.SIG_DFL)
                _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # cron reads the wrapper's output until every copy of it is closed
                    os.dup2(null, fd)
                _close_descriptors(w)  # the job's lock, the run log
                if ids is not None:
                    _become(ids)
                try:
                    os.chdir(cwd)
                except OSError:
                    os.chdir("/")
                text = "\n".join(work())
            except BaseException as exc:  # noqa: BLE001 - reported on the run, never raised
                text = f"{what} failed: {type(exc).__name__}: {exc}"
                code = 1
            try:
                os.write(w, text.encode("utf-8", "replace")[:self.RESULT_LIMIT])
            except OSError:
                pass
            os._exit(code)
        os.close(w)
        self.pid = pid
        self.r = r
        self.deadline = time.monotonic() + budget

    def wait(self, signals: Signals, stop_at: float | None = None) -> list[str]:
        """The child's lines, or why it was stopped: its budget ran out, ``stop_at`` passed, or a signal came."""
        poller = select.poll()
        poller.register(self.r, select.POLLIN)
        poller.register(signals.wake_r, select.POLLIN)
        seen = len(signals.pending)
        data = b""
        note = ""
        try:
            while True:
                if len(signals.pending) > seen:
                    note = f"{self.what} stopped: {_signame(signals.pending[-1])} sent to the wrapper"
                    break
                now = time.monotonic()
                if stop_at is not None and now >= stop_at:
                    note = f"{self.what} stopped: {_signame(signals.pending[0])} sent to the wrapper" \
                        if signals.pending else f"{self.what} stopped"
                    break
                if now >= self.deadline:
                    note = f"{self.what} stopped: no answer within {_fmt_duration(self.budget)}"
                    break
                end = self.deadline if stop_at is None else min(self.deadline, stop_at)
                events = dict(poller.poll(_poll_ms(end - now)))
                if signals.wake_r in events:
                    signals.drain()
                if self.r in events:
                    chunk = os.read(self.r, self.RESULT_LIMIT)
                    if not chunk:
                        break
                    data += chunk
        finally:
            os.close(self.r)
            if note:
                host.kill_session(self.pid)
            os.waitpid(self.pid, 0)
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line]
        return lines + [note] if note else lines


def _close_descriptors(*keep: int) -> None:
    """Close every descriptor above 2 but ``keep``.

    In a job's child before exec (and in the notifier): whatever the wrapper
    inherited -- from cron (its pipes), from a root shell running `jobctl run`
    (an open file) -- must not reach a job that runs as another user.
    """
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


class Wrapper:
    """One invocation: all attempts of one run of one job."""

    def __init__(self, defn: dict[str, Any], state: str, trigger: str, stream: bool,
                 scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
                 sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0, mail: str | None = None) -> None:
        self.defn = defn
        self.sink = sink
        self.jitter = _number(jitter, 0.0)
        self.name = defn["name"]
        self.state = state
        self.trigger = trigger
        self.stream = stream
        self.scheduled_for = scheduled_for
        self.on_started = on_started
        self.error = ErrorLog(state, self.name)
        self.host = os.uname().nodename
        self.boot_id = host.boot_id()
        self.run_ids: list[int] = []
        self._notes: list[str] = []
        #: the last attempt's run fields and output, for notifications
        self._last: tuple[dict[str, Any], bytes] | None = None
        self._last_env: dict[str, str] = {}
        self._who: tuple[str, str, int, int] | None = None
        self._start_ping: _Notifier | None = None
        # Every number the wrapper acts on, bounded once (_number): an applied
        # definition may be hand-edited or older than validation's ranges.
        self.timeout = _number(defn.get("timeout"), 0.0) or None  # 0, NaN, null: no timeout
        self.grace = _number(defn.get("kill_grace"), 10.0)
        retries = defn.get("retries")
        if not isinstance(retries, dict):
            retries = {"attempts": retries}  # a bare count
        self.attempts = 1 + _integer(retries.get("attempts"), 0, MAX_RETRIES)
        self.delay = _number(retries.get("delay"), 10.0)
        self.backoff = _number(retries.get("backoff"), 2.0)
        self.max_delay = _number(retries.get("max_delay"), 600.0)
        history = defn.get("history")
        if not isinstance(history, dict):
            history = {}
        self.keep = _integer(history.get("keep"), 200)
        self.max_age = _number(history.get("max_age"), 90 * 86400.0)
        notify_cfg = defn.get("notify")
        self.notify_cfg: dict[str, Any] = dict(notify_cfg) if isinstance(notify_cfg, dict) else {}
        if self.notify_cfg:
            self.notify_cfg["after_failures"] = max(1, _integer(self.notify_cfg.get("after_failures"), 1,
                                                                MAX_AFTER_FAILURES))
        #: (run id, status, exit code, started, finished, attempt, reason, output) of the last attempt
        self.final: tuple[int, str, int | None, float, float, int, str, bytes] | None = None
        self.first_started = 0.0
        #: `jobctl run` on a terminal: a line between attempts and a summary at the end
        self.progress = stream and _isatty(2)
        #: under cron (scheduled, not streamed): cron_mail decides what reaches cron's mail
        self.mail = mail if mail in ("failure", "always") else None

    def retry_delay(self, retry: int) -> float:
        """delay × backoff^(retry-1), at most max_delay, for the n-th retry: never overflows, never NaN."""
        if self.delay <= 0:
            return 0.0
        try:
            factor = self.backoff ** (retry - 1)
        except OverflowError:  # 10 ** 311 and beyond: far past any max_delay
            return self.max_delay
        return min(self.delay * factor, self.max_delay)  # a product past 1e308 is inf, and min() takes max_delay

    def run(self) -> int:
        umask = os.umask(0o077)
        signals = Signals()
        try:
            code = self._run(signals, umask)
        finally:
            signals.restore()
            os.umask(umask)
        if self.final is not None:
            from jobctl.store import FAILED_STATUSES  # loaded already by the run log

            if self.progress:
                self._say(self._summary())
            elif self.mail == "always" or (self.mail == "failure" and self.final[1] in FAILED_STATUSES):
                self._mail()
        return code

    def _summary(self) -> str:
        """One line: job, status, exit code, duration, run id (and attempt of how many)."""
        run_id, status, code, started, finished, attempt, _, _ = self.final or (0, "?", None, 0, 0, 1, "", b"")
        started = self.first_started or started  # the whole run, retries and their delays included
        of = f", attempt {attempt} of {self.attempts}" if self.attempts > 1 else ""
        return (f"{status}, exit code {code}, {_fmt_duration(finished - started)}, run {run_id or '?'}{of}"
                f" ({self.final[6] if self.final else ''})")

    def _say(self, line: str) -> None:
        try:
            os.write(2, f"jobctl: job {self.name}: {line}\n".encode("utf-8", "replace"))
        except OSError:
            pass

    def _mail(self) -> None:
        """cron's contract, as cronic made popular: output only when something is wrong, so cron mails it.

        One summary line and the tail of the captured output on stdout; cron
        mails it where MAILTO and an MTA are set (cron_mail: always also on
        success, never not at all).
        """
        output = self.final[7] if self.final else b""
        lines = output.splitlines()[-MAIL_TAIL_LINES:]
        text = b"\n".join(lines)[-MAIL_TAIL_BYTES:]
        body = f"jobctl: job {self.name}: {self._summary()}\n".encode("utf-8", "replace")
        if text:
            n = len(text.splitlines())
            body += f"--- last {n} line{'s' if n != 1 else ''} of output (jobctl logs {self.final[0]}) ---\n".encode()
            body += text + b"\n"
        try:
            os.write(1, body)
        except OSError:
            pass

    def _lock(self, log: RunLog, signals: Signals) -> tuple[Lock | None, int | None]:
        """Take the job's lock per its concurrency policy; (lock, exit code if not to run)."""
        policy = self.defn.get("concurrency", "forbid")
        if policy == "allow":
            return None, None
        try:
            lock = Lock(os.path.join(self.state, "locks", self.name + ".lock"))
        except OSError as exc:
            self.error(f"cannot open the lock file: {exc}; not running")
            return None, EX_JOBCTL
        if lock.try_acquire():
            return lock, None
        holder = lock.holder()
        if policy == "forbid":
            reason = f"skipped: previous run {holder.run or '?'} still running"
            # a skip has no exit code in the run log (the process still exits 75)
            run_id = log.call("record", self.name, "skipped", self.trigger, 1, self.scheduled_for, time.time(),
                              os.getpid(), self.host, reason, None, default=0)
            log.call("prune", self.name, self.keep, self.max_age, time.time())  # skips are bounded too
            self._started(run_id)
            if self.stream:
                self.error(reason)
            lock.close()
            return None, EX_SKIPPED
        try:
            signals.raise_now = True
            if policy == "replace":
                code = self._replace(log, signals, lock)
                if code is not None:
                    lock.close()
                    return None, code
            else:  # wait
                lock.acquire()
        except _Interrupted as exc:
            reason = f"killed: {_signame(exc.signum)} while waiting for run {holder.run or '?'} to finish"
            run_id = log.call("record", self.name, "killed", self.trigger, 1, self.scheduled_for, time.time(),
                              os.getpid(), self.host, reason, 128 + exc.signum, default=0)
            self._started(run_id)
            lock.close()
            return None, 128 + exc.signum
        finally:
            signals.raise_now = False
        return lock, None

    def _replace(self, log: RunLog, signals: Signals, lock: Lock) -> int | None:
        """Terminate the lock holder's process group and take the lock; None once taken, else the exit code.

        Only a group proven to be the one the holder's run started is
        signalled (host.not_the_runs_group): the holder record may be forged,
        stale or from an older jobctl, and this may run as root.  SIGTERM,
        then SIGKILL after kill_grace, then at most kill_grace more for the
        holder's wrapper to record its run and let go.  A lock that is still
        held then (a process that left the group with setsid and kept the
        inherited lock, or a group that could not be verified) is not waited
        for: the run is recorded as skipped, naming the pids holding the lock,
        and the exit code is 75, as for forbid.
        """
        began = time.monotonic()
        term_at: float | None = None
        kill_at: float | None = None
        target: Holder | None = None  # the holder whose group got SIGTERM
        killed = False
        was_running = False
        refused = ""
        holder = Holder()
        checked: tuple[int, int, int] | None = None
        while not lock.try_acquire():
            now = time.monotonic()
            if target is None and checked != (holder := lock.holder()).key():
                checked = holder.key()  # the checks read /proc: once per record the holder writes
                why = host.not_the_runs_group(holder.pgid, holder.start, lock.file_id)
                if why is None:
                    row = log.call("get", holder.run) if holder.run else None
                    was_running = row is None or row["status"] == "running"
                    host.killpg(holder.pgid, _signal.SIGTERM)
                    target, term_at, kill_at = holder, now, now + self.grace
                elif why != refused and (holder.run or holder.pgid):  # zeros: the holder has not written it yet
                    refused = why
                    self.error(f"replace: not signalling the holder of the lock (run {holder.run or '?'}): {why}")
            elif kill_at is not None and now >= kill_at:
                kill_at = None
                if host.not_the_runs_group(target.pgid, target.start, lock.file_id) is None:  # still that group?
                    host.killpg(target.pgid, _signal.SIGKILL)
                    killed = True
            if now >= (began + self.grace if term_at is None else term_at + 2 * self.grace):
                pids = host.lock_holders(lock.file_id)
                reason = f"skipped: run {holder.run or '?'} could not be replaced: the lock is still held by " \
                         f"pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids)) or '?'}"
                if target is not None:
                    reason += f" after its process group {target.pgid} was {'killed' if killed else 'terminated'}"
                elif refused:
                    reason += f" and its process group was not signalled: {refused}"
                run_id = log.call("record", self.name, "skipped", self.trigger, 1, self.scheduled_for, time.time(),
                                  os.getpid(), self.host, reason, None, default=0)
                self._started(run_id)
                self.error(reason)
                return EX_SKIPPED
            signals.sleep(0.05)
        # Only a run that was still running when we signalled it was replaced; a
        # finished (timed-out, failed) run whose leftovers held the lock was not.
        self._replaced = target.run if target is not None and was_running else 0
        return None

    def _started(self, run_id: int) -> None:
        if run_id:
            self.run_ids.append(run_id)
        if self.on_started is not None:
            self.on_started(run_id)
            self.on_started = None

    def _run(self, signals: Signals, umask: int) -> int:
        log = RunLog(self.state, self.error)
        self._replaced = 0
        try:
            if self.jitter > 0:
                # before the lock: waiting out the jitter must not hold up anyone
                try:
                    signals.sleep(self.jitter)
                except _Interrupted as exc:
                    reason = f"killed: {_signame(exc.signum)} during the {_fmt_duration(self.jitter)} jitter delay"
                    log.call("record", self.name, "killed", self.trigger, 1, self.scheduled_for, time.time(),
                             os.getpid(), self.host, reason, 128 + exc.signum, default=0)
                    return 128 + exc.signum
            lock, code = self._lock(log, signals)
            if code is not None:
                return code
            try:
                code, previous_failures, streak = self._attempts(log, signals, lock, umask)
            finally:
                if lock is not None:
                    lock.close()
            # Only now, with the run recorded and the lock free: however long
            # notifications take, they delay neither this job nor its next run.
            if streak is not None:
                self._notify(log, signals, previous_failures, streak)
            return code
        finally:
            if self._start_ping is not None:  # interrupted before the end: its answer no longer matters
                self._start_ping.wait(signals, time.monotonic())
            if log.store is not None:
                log.store.close()

    def _attempts(self, log: RunLog, signals: Signals, lock: Lock | None,
                  umask: int) -> tuple[int, int, int | None]:
        """Every attempt, then retention: (exit code, failures before, failures now or None when interrupted)."""
        log.call("finalize_lost", self.name, self.host, self.boot_id, host.alive, host.group_alive, time.time())
        if self._replaced:
            log.call("append_reason", self._replaced, " (replaced by a new run)")
        code = EX_JOBCTL
        previous_failures = log.call("failure_streak", self.name, default=0) if self.notify_cfg else 0
        if self.notify_cfg.get("ping"):
            self._start_ping = self._notifier("ping start", start=True)
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                delay = self.retry_delay(attempt - 1)
                if self.progress:
                    self._say(f"attempt {attempt}/{self.attempts} after {_fmt_duration(delay)} "
                              f"(attempt {attempt - 1}: {self.final[6] if self.final else '?'})")
                try:
                    signals.sleep(delay)
                except _Interrupted as exc:
                    return 128 + exc.signum, previous_failures, None
            status, code = self._attempt(log, signals, lock, attempt, umask)
            if status not in ("failed", "timeout") or signals.pending:
                break
        _, streak = log.call("after_run", self.name, self.keep, self.max_age, time.time(), default=(0, 0))
        return code, previous_failures, streak

    def _notifier(self, what: str, start: bool = False, streak: int = 0,
                  previous_failures: int = 0) -> _Notifier | None:
        """Start the /start ping (``start``) or the after-run notifications in a child; None when not needed."""
        from jobctl.runner import notify

        cfg = self.notify_cfg
        if start:
            def work() -> list[str]:
                return [notify.ping(cfg["ping"], "start", {"job": self.name})]
        else:
            if not self._last:
                return None
            run, output = self._last
            ev = notify.event(run["status"], previous_failures)
            if ev is None or not (cfg.get("ping") or notify.wanted(cfg, ev, streak)):
                return None
            shell = self.defn.get("shell") or "/bin/sh"

            def work() -> list[str]:
                return notify.after_run(cfg, run, output, self._last_env, shell, streak, previous_failures)
        try:
            who = self._who or run_as(self.defn)
        except LookupError as exc:
            self._notes.append(f"{what} not sent: {exc}")
            return None
        user, home, uid, gid = who
        ids = (user, uid, gid) if uid != os.geteuid() else None
        try:
            return _Notifier(work, ids, self.defn.get("working_dir") or home, notify.budget(cfg, start), what)
        except OSError as exc:
            self._notes.append(f"{what} failed: cannot start it: {exc}")
            return None

    def _notify(self, log: RunLog, signals: Signals, previous_failures: int, streak: int) -> None:
        """Notifications of the finished run, their outcome recorded on it: never its result."""
        # A wrapper told to stop during the run still reports how it ended, but
        # within kill_grace of that signal; one told to stop while notifying stops.
        before = len(signals.pending)
        stop_at = signals.first_at + self.grace if before else None
        if self._start_ping is not None:
            self._notes += self._start_ping.wait(signals, stop_at)  # first: /start precedes the outcome
            self._start_ping = None
        if self.notify_cfg and len(signals.pending) == before:
            notifier = self._notifier("notify", streak=streak, previous_failures=previous_failures)
            if notifier is not None:
                self._notes += notifier.wait(signals, stop_at)
        run_id = self._last[0].get("id") if self._last else (self.run_ids[-1] if self.run_ids else 0)
        if self._notes and run_id:
            log.call("set_notify", run_id, "; ".join(self._notes))

    def _attempt(self, log: RunLog, signals: Signals, lock: Lock | None, attempt: int,
                 umask: int) -> tuple[str, int]:
        trigger = self.trigger if attempt == 1 else "retry"
        started = time.time()
        if attempt == 1:
            self.first_started = started
        run_id = log.call("start_run", self.name, trigger, attempt, self.scheduled_for, started,
                          os.getpid(), self.host, self.boot_id, self.jitter if attempt == 1 and self.jitter else None,
                          self.final[0] if attempt > 1 and self.final else 0, default=0)
        self._started(run_id)
        try:
            who = self._who = run_as(self.defn)  # one user lookup per attempt
        except LookupError as exc:
            reason = f"cannot start: {exc}"
            self.error(reason, echo=self.stream)
            log.call("finish_run", run_id, "failed", EX_JOBCTL, None, time.time(), reason, b"", b"", 0, 0)
            self.final = (run_id, "failed", EX_JOBCTL, started, time.time(), attempt, reason, b"")
            return "failed", EX_JOBCTL
        env = clean_environment(self.defn, who)
        env["JOBCTL_JOB"] = self.name
        env["JOBCTL_RUN_ID"] = str(run_id or "")
        env["JOBCTL_ATTEMPT"] = str(attempt)
        proc = Attempt(self.defn, env, who, lock, signals, self.stream, umask, self.sink)

        def record(pid: int, start: int) -> None:
            if lock is not None:
                lock.set_holder(run_id, pid, start)
            log.call("set_pid", run_id, pid)

        failure = proc.spawn(record)
        if failure is not None:
            stage, num = failure
            what = os.strerror(num) if num else "unexpected error"
            if stage == "chdir":
                status, code = "failed", EX_JOBCTL
                reason = f"cannot start: working directory {self.defn.get('working_dir') or env['HOME']}: {what}"
            else:
                status = "failed"
                code = EX_NOT_FOUND if num == errno.ENOENT else EX_CANNOT_EXEC
                reason = f"cannot start {proc._argv()[0]}: {what}"
            # in jobctl-errors.log always; on stderr when someone watches (under cron, the summary says it)
            self.error(reason, echo=self.stream)
            log.call("finish_run", run_id, status, code, None, time.time(), reason, b"", b"", 0, 0)
            self.final = (run_id, status, code, started, time.time(), attempt, reason, b"")
            return status, code
        wstatus, ended_by, forwarded = proc.wait(self.timeout, self.grace)
        sig: int | None = None
        if ended_by == "timeout":
            status, code = "timeout", EX_TIMEOUT
            reason = f"timed out after {_fmt_duration(self.timeout or 0)}"
        elif ended_by == "signal" and forwarded is not None:
            status, code, sig = "killed", 128 + forwarded, forwarded
            reason = f"killed: {_signame(forwarded)} sent to the wrapper"
        elif os.WIFSIGNALED(wstatus):
            sig = os.WTERMSIG(wstatus)
            status, code = "killed", 128 + sig
            reason = f"killed by {_signame(sig)}"
        else:
            code = os.waitstatus_to_exitcode(wstatus)
            status = "succeeded" if code == 0 else "failed"
            reason = "exit status 0" if code == 0 else f"exit status {code}"
        if self.jitter and attempt == 1:
            reason += f" (started after {_fmt_duration(self.jitter)} of jitter)"
        head, tail, dropped = proc.output.finish()
        finished = time.time()
        log.call("finish_run", run_id, status, code, sig, finished, reason, head, tail, dropped,
                 proc.output.total)
        self.final = (run_id, status, code, started, finished, attempt, reason, head + tail)
        if self.notify_cfg:
            self._last = ({"id": run_id, "job": self.name, "status": status, "exit_code": code, "signal": sig,
                           "trigger": trigger, "attempt": attempt, "started_at": _iso(started),
                           "finished_at": _iso(finished), "duration_s": round(finished - started, 3),
                           "host": self.host, "reason": reason}, head + tail)
            self._last_env = env
        return status, code


def execute(defn: dict[str, Any], state: str, trigger: str = "manual", stream: bool = False,
            scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
            sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0, mail: str | None = None) -> int:
    """Run a job definition once (with its retries); returns the exit code.

    ``stream`` copies the output live to fd 1, or to ``sink`` when given.
    ``mail`` (under cron: the job's cron_mail) prints a summary and the
    output's tail on a failure ("failure") or always ("always").
    """
    return Wrapper(defn, state, trigger, stream, scheduled_for, on_started, sink, jitter, mail).run()


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


class _JsonContext:
    """The settings of a default json.JSONDecoder, as its C scanner reads them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__


def load_json(data: bytes) -> Any:
    """json.loads(data), without importing json for an applied definition.

    json.decoder compiles regular expressions at import, and re with its enum
    costs the wrapper ~3 ms at every start (docs/benchmarks.md).  An applied
    definition is a JSON object; it is parsed by the C scanner json.loads
    itself uses, and anything else (other encodings, errors, trailing data)
    goes to json.loads, so the result and the errors are json's.
    """
    if data[:1] == b"{":
        try:
            from _json import make_scanner

            text = data.decode("utf-8", "surrogatepass")
            obj, end = make_scanner(_JsonContext)(text, 0)
            if not text[end:].strip(" \t\n\r"):
                return obj
        except Exception:  # noqa: BLE001 - the C scanner raises SystemError on some truncations: json.loads says why
            pass
    import json

    return json.loads(data)


USAGE = ("usage: python -m jobctl.runner [--state-dir DIR] [--scheduled | --timer | --catch-up-run TIME] "
         "[--quiet] [--definition-stdin] [--report-fd N] NAME\n"
         "       python -m jobctl.runner [--state-dir DIR] --catch-up")


def _gate(defn: dict[str, Any], state: str, mode: str, now: float) -> tuple[int, float]:
    """How many runs a scheduled wake-up makes, and their jitter.  Cheap when none.

    A job with a time zone wakes on a superset of its minutes; the minutes
    that do not match in its zone end here, with no run row and no lock.  A
    wake-up right after a spring-forward jump runs a fixed-time job once for
    each of its times the jump skipped, as cron(8) does (clock.due).
    """
    runs = 1
    if mode == "schedule" and defn.get("timezone") and defn.get("fields"):
        from jobctl.runner.wallclock import due_at

        due = due_at(defn["fields"], defn.get("tz_offsets") or [], now)
        if due is None:  # outside the precomputed offsets (not re-applied for years)
            from datetime import datetime, timezone

            from jobctl import clock

            due = len(clock.due(defn["fields"], defn["timezone"], datetime.fromtimestamp(now, timezone.utc)))
        if not due:
            return 0, 0.0
        runs = due
    jitter = _number(defn.get("jitter"), 0.0) if mode == "schedule" else 0.0
    if jitter:
        jitter *= int.from_bytes(os.urandom(4), "little") / 2**32  # uniform in [0, jitter)
    return runs, jitter


def _record_paused(defn: dict[str, Any], state: str, trigger: str, scheduled_for: float | None) -> None:
    error = ErrorLog(state, defn["name"])
    log = RunLog(state, error)
    log.call("record", defn["name"], "skipped", trigger, 1, scheduled_for, time.time(), os.getpid(),
             os.uname().nodename, "skipped: paused (jobctl resume to run again)", None)
    history = defn.get("history") if isinstance(defn.get("history"), dict) else {}
    log.call("prune", defn["name"], _integer(history.get("keep"), 200), _number(history.get("max_age"), 90 * 86400.0),
             time.time())
    if log.store is not None:
        log.store.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the crontab lines: ``… -m jobctl.runner --scheduled --state-dir DIR NAME``."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = os.environ.get("JOBCTL_STATE_DIR") or ""
    trigger, stream, from_stdin, report_fd = "manual", True, False, -1
    mode = "manual"  # or schedule (cron), timer (systemd), catchup, catch-up-pass
    scheduled_for: float | None = None
    name = None
    while args:
        arg = args.pop(0)
        if arg == "--state-dir" and args:
            state = args.pop(0)
        elif arg in ("--scheduled", "--timer"):
            trigger, stream, mode = "schedule", False, arg[2:].replace("scheduled", "schedule")
        elif arg == "--catch-up":
            mode = "catch-up-pass"
        elif arg == "--catch-up-run" and args and args[0].isdigit():
            trigger, stream, mode, scheduled_for = "catchup", False, "catchup", float(args.pop(0))
        elif arg == "--quiet":
            stream = False
        elif arg == "--definition-stdin":
            from_stdin = True
        elif arg == "--report-fd" and args:
            report_fd = int(args.pop(0))
        elif not arg.startswith("-") and name is None:
            name = arg
        else:
            print(USAGE, file=sys.stderr)
            return EX_JOBCTL
    from jobctl.paths import UnsafePath, check_state_dir, state_dir

    try:
        # a control character in the path would have been written into crontab lines
        state = check_state_dir(state, "--state-dir") if state else state_dir()
    except UnsafePath as exc:
        print(f"jobctl: {exc}", file=sys.stderr)
        return EX_JOBCTL
    if mode == "catch-up-pass":
        from jobctl.runner import catchup

        try:
            catchup.run_pass(state)
        except Exception as exc:  # noqa: BLE001 - one line for cron to mail, then the next pass
            ErrorLog(state, "(catch-up)")(f"catch-up pass failed: {type(exc).__name__}: {exc}")
            return EX_JOBCTL
        return 0
    if not name:
        print(USAGE, file=sys.stderr)
        return EX_JOBCTL
    error = ErrorLog(state, name)
    try:
        os.makedirs(state, mode=0o700, exist_ok=True)
    except OSError as exc:
        error(f"state directory {state} unusable: {exc.strerror}")
        return EX_JOBCTL
    try:
        if from_stdin:
            defn = load_json(sys.stdin.buffer.read())
        else:
            with open(os.path.join(state, "applied", name + ".json"), "rb") as fh:
                defn = load_json(fh.read())
    except FileNotFoundError:
        error(f"not applied: no {os.path.join(state, 'applied', name + '.json')}; run jobctl apply")
        return EX_JOBCTL
    except (OSError, ValueError) as exc:
        error(f"cannot read the applied definition: {exc}; jobctl apply rewrites it")
        return EX_JOBCTL
    if not isinstance(defn, dict) or defn.get("name") != name:
        error("cannot read the applied definition: not a JSON object naming this job; jobctl apply rewrites it")
        return EX_JOBCTL
    if from_stdin:
        # A detached run: our stdin was the definition; nothing else is read.
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    jitter, runs = 0.0, 1
    if mode in ("schedule", "timer", "catchup"):
        now = time.time()
        if scheduled_for is None:
            scheduled_for = now - now % 60  # the minute cron meant
        runs, jitter = _gate(defn, state, mode, now)
        if not runs:
            return 0
        if os.path.exists(os.path.join(state, "paused", name)):
            _record_paused(defn, state, trigger, scheduled_for)
            return 0

    def report(run_id: int) -> None:
        if report_fd >= 0:
            try:
                os.write(report_fd, f"{run_id}\n".encode())
                os.close(report_fd)
            except OSError:
                pass

    # cron mails what a line prints; a systemd timer's output goes to the journal as the run log has it
    mail = (defn.get("cron_mail") or "failure") if mode == "schedule" and not stream else None
    try:
        code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=jitter, mail=mail)
        for _ in range(runs - 1):  # the other times a spring-forward jump skipped, one after another
            code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=0.0, mail=mail)
    except Exception as exc:  # noqa: BLE001 - a definition edited into a shape nothing expects: one line, not a trace
        error(f"internal error on the applied definition ({type(exc).__name__}: {exc}); jobctl apply rewrites it")
        return EX_JOBCTL
    return code


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown, which costs a scheduled run ~3 ms.

    By now the run log and the lock are closed and nothing is registered with
    atexit; the standard streams are flushed here, as teardown would.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

