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

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

EX_SKIPPED = 75
EX_TIMEOUT = 124
EX_JOBCTL = 125
EX_CANNOT_EXEC = 126
EX_NOT_FOUND = 127

CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORWARDED_SIGNALS = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
READ_CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _fmt_duration(seconds: float) -> str:
    total = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or f"{seconds:.1f}s"


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

    def __call__(self, message: str) -> None:
        line = f"jobctl: job {self.job}: {message}"
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
            from . import store

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
        self.raise_now = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous = {}
        _signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in FORWARDED_SIGNALS:
            self.previous[sig] = _signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
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
            poller.poll(left * 1000)
            if self.pending:
                raise _Interrupted(self.pending[0])


def _alive(pid: int) -> bool:
    """Whether a process (pid > 0) or process group (pid < 0) exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any process of a group still lives (zombies do not count).

    Orphaned zombies linger where PID 1 is slow to reap (containers, some
    VMs), and kill(-pgid, 0) still finds them.
    """
    if not _alive(-pgid):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields after the command: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
            return fh.read().strip().decode()
    except OSError:
        return ""


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Lock:
    """The per-job lock file; its content names the run holding it."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def acquire(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def holder(self) -> tuple[int, int, int]:
        """(run id, job process group, wrapper pid) of the holder, zeros when unknown."""
        try:
            fields = os.pread(self.fd, 100, 0).split()
            return int(fields[0]), int(fields[1]), int(fields[2])
        except (OSError, ValueError, IndexError):
            return 0, 0, 0

    def set_holder(self, run_id: int, pgid: int) -> None:
        data = f"{run_id} {pgid} {os.getpid()}\n".encode()
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        except OSError:
            pass  # informational only: the flock is the lock

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
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
    }
    env.update(defn.get("env") or {})
    return env


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
        self.output = Output(int(defn.get("output_limit", 1 << 20)))
        self.pid = 0
        user, _, uid, gid = who
        self.ids = (user, uid, gid) if uid != os.geteuid() else None

    def _argv(self) -> list[str]:
        command = self.defn["command"]
        if isinstance(command, list):
            return [_resolve(str(command[0]), self.env.get("PATH", CLEAN_PATH))] + [str(a) for a in command[1:]]
        return [self.defn.get("shell") or "/bin/sh", "-c", command]

    def spawn(self) -> tuple[str, int] | None:
        """Start the job in its own session.  Returns (stage, errno) when it could not start."""
        argv = self._argv()
        cwd = self.defn.get("working_dir") or self.env["HOME"]
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(out_r, _F_SETPIPE_SZ, READ_CHUNK)
        except OSError:
            pass
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if self.lock is not None:
            os.set_inheritable(self.lock.fd, True)
        pid = os.fork()
        if pid == 0:  # child: only async-signal-safe-ish work, then exec
            stage = "setsid"
            try:
                for sig in (*FORWARDED_SIGNALS, _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD):
                    _signal.signal(sig, _signal.SIG_DFL)
                _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
                os.setsid()
                os.umask(self.umask)
                if self.ids is not None:
                    # apply --system: the wrapper runs as root, the job as its user
                    stage = "setuid"
                    name, uid, gid = self.ids
                    os.initgroups(name, gid)
                    os.setgid(gid)
                    os.setuid(uid)
                stage = "chdir"
                os.chdir(cwd)
                stage = "exec"
                os.dup2(devnull, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                os.execve(argv[0], argv, self.env)
            except OSError as exc:
                os.write(err_w, f"{stage}:{exc.errno}".encode())
            except BaseException:  # noqa: BLE001 - never return into the parent's code
                os.write(err_w, f"{stage}:0".encode())
            os._exit(EX_CANNOT_EXEC)
        self.pid = pid
        for fd in (out_w, err_w, devnull):
            os.close(fd)
        self.out_r = out_r
        failure = os.read(err_r, 64)  # EOF once exec succeeded (close-on-exec)
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

    def _read(self) -> bool:
        try:
            chunk = os.read(self.out_r, READ_CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self.output.feed(chunk)
        if self.stream:
            self._write_out(chunk)
        return True

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
                ms = max(0.0, (min(waits) - now) * 1000) if waits else -1
                if pidfd < 0 and (ms < 0 or ms > 100):
                    ms = 100  # no pidfd: look at the child ten times a second
                for fd, _ in poller.poll(ms):
                    if fd == self.out_r:
                        if not self._read():
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
                    _killpg(pid, forwarded)
                    ended_by = ended_by or "signal"
                    kill_at = now + kill_grace
                if deadline is not None and ended_by is None and now >= deadline:
                    _killpg(pid, _signal.SIGTERM)
                    ended_by = "timeout"
                    kill_at = now + kill_grace
                if kill_at is not None and now >= kill_at:
                    _killpg(pid, _signal.SIGKILL)
                    kill_at = None
                if status is None:
                    # The pidfd can report the exit a moment before waitpid
                    # sees it: once it has spoken, wait for real.
                    done, wstatus = os.waitpid(pid, 0 if exited else os.WNOHANG)
                    if done:
                        status = wstatus
                if status is None:
                    continue
                if not ended_by or not _group_alive(pid):
                    break
                # We are ending the job: its grandchildren must go too (a job
                # that ended by itself may leave background processes, as under cron).
                if kill_at is None:
                    _killpg(pid, _signal.SIGKILL)
                    # Killed processes vanish once init reaps them; do not wait
                    # forever where nothing reaps.
                    if give_up is None:
                        give_up = now + 2.0
                    elif now >= give_up:
                        break
                    time.sleep(0.01)
            # Drain what is already in the pipe without waiting for EOF: a
            # background process may hold the write end for hours.
            if pipe_open:
                os.set_blocking(self.out_r, False)
                while self._read():
                    pass
        finally:
            os.close(self.out_r)
            if pidfd >= 0:
                os.close(pidfd)
        return status, ended_by, forwarded


class Wrapper:
    """One invocation: all attempts of one run of one job."""

    def __init__(self, defn: dict[str, Any], state: str, trigger: str, stream: bool,
                 scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
                 sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0) -> None:
        self.defn = defn
        self.sink = sink
        self.jitter = jitter
        self.name = defn["name"]
        self.state = state
        self.trigger = trigger
        self.stream = stream
        self.scheduled_for = scheduled_for
        self.on_started = on_started
        self.error = ErrorLog(state, self.name)
        self.host = os.uname().nodename
        self.boot_id = _boot_id()
        self.run_ids: list[int] = []
        self._notes: list[str] = []
        #: the last attempt's run fields and output, for notifications
        self._last: tuple[dict[str, Any], bytes] | None = None
        self._last_env: dict[str, str] = {}

    def run(self) -> int:
        umask = os.umask(0o077)
        signals = Signals()
        try:
            return self._run(signals, umask)
        finally:
            signals.restore()
            os.umask(umask)

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
        holder_run, holder_pgid, _ = lock.holder()
        now = time.time()
        if policy == "forbid":
            reason = f"skipped: previous run {holder_run or '?'} still running"
            run_id = log.call("record", self.name, "skipped", self.trigger, 1, self.scheduled_for, now,
                              os.getpid(), self.host, reason, EX_SKIPPED, default=0)
            self._started(run_id)
            if self.stream:
                self.error(reason)
            lock.close()
            return None, EX_SKIPPED
        grace = float(self.defn.get("kill_grace", 10))
        try:
            signals.raise_now = True
            if policy == "replace":
                # Terminate the holder's whole process group, then take the lock
                # once its wrapper has recorded the run and let go.
                if holder_pgid:
                    _killpg(holder_pgid, _signal.SIGTERM)
                end = time.monotonic() + grace
                while not lock.try_acquire():
                    if time.monotonic() >= end:
                        if holder_pgid:
                            _killpg(holder_pgid, _signal.SIGKILL)
                        lock.acquire()
                        break
                    signals.sleep(0.05)
                self._replaced = holder_run
            else:  # wait
                lock.acquire()
        except _Interrupted as exc:
            reason = f"killed: {_signame(exc.signum)} while waiting for run {holder_run or '?'} to finish"
            run_id = log.call("record", self.name, "killed", self.trigger, 1, self.scheduled_for, time.time(),
                              os.getpid(), self.host, reason, 128 + exc.signum, default=0)
            self._started(run_id)
            lock.close()
            return None, 128 + exc.signum
        finally:
            signals.raise_now = False
        return lock, None

    def _started(self, run_id: int) -> None:
        if run_id:
            self.run_ids.append(run_id)
        if self.on_started is not None:
            self.on_started(run_id)
            self.on_started = None

    def _run(self, signals: Signals, umask: int) -> int:
        log = RunLog(self.state, self.error)
        self._replaced = 0
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
            log.call("finalize_lost", self.name, self.host, self.boot_id, _alive, _group_alive, time.time())
            if self._replaced:
                log.call("append_reason", self._replaced, " (replaced by a new run)")
            retries = self.defn.get("retries") or {}
            attempts = 1 + int(retries.get("attempts", 0))
            code = EX_JOBCTL
            notify_cfg = self.defn.get("notify") or {}
            previous_failures = log.call("failure_streak", self.name, default=0) if notify_cfg else 0
            if notify_cfg.get("ping"):
                from . import notify

                self._notes.append(notify.ping(notify_cfg["ping"], "start", {"job": self.name}))
            for attempt in range(1, attempts + 1):
                if attempt > 1:
                    delay = min(float(retries.get("delay", 10)) * float(retries.get("backoff", 2)) ** (attempt - 2),
                                float(retries.get("max_delay", 600)))
                    try:
                        signals.sleep(delay)
                    except _Interrupted as exc:
                        return 128 + exc.signum
                status, code = self._attempt(log, signals, lock, attempt, umask)
                if status not in ("failed", "timeout") or signals.pending:
                    break
            self._after(log, notify_cfg, previous_failures)
            return code
        finally:
            if lock is not None:
                lock.close()
            if log.store is not None:
                log.store.close()

    def _after(self, log: RunLog, notify_cfg: dict[str, Any], previous_failures: int) -> None:
        """Retention, then notifications: neither may change the run's result."""
        history = self.defn.get("history") or {}
        _, streak = log.call("after_run", self.name, int(history.get("keep", 200)),
                             float(history.get("max_age", 90 * 86400)), time.time(), default=(0, 0))
        if not notify_cfg or not self._last:
            return
        from . import notify

        run, output = self._last
        try:
            self._notes += notify.after_run(notify_cfg, run, output, self._last_env,
                                            self.defn.get("shell") or "/bin/sh", streak, previous_failures)
        except Exception as exc:  # noqa: BLE001 - a notification never changes the run
            self._notes.append(f"notify failed: {type(exc).__name__}: {exc}")
        if self._notes and run.get("id"):
            log.call("set_notify", run["id"], "; ".join(self._notes))

    def _attempt(self, log: RunLog, signals: Signals, lock: Lock | None, attempt: int,
                 umask: int) -> tuple[str, int]:
        trigger = self.trigger if attempt == 1 else "retry"
        started = time.time()
        run_id = log.call("start_run", self.name, trigger, attempt, self.scheduled_for, started,
                          os.getpid(), self.host, self.boot_id, self.jitter if attempt == 1 and self.jitter else None,
                          default=0)
        self._started(run_id)
        try:
            who = run_as(self.defn)  # one user lookup per attempt
        except LookupError as exc:
            reason = f"cannot start: {exc}"
            self.error(reason)
            log.call("finish_run", run_id, "failed", EX_JOBCTL, None, time.time(), reason, b"", b"", 0, 0)
            return "failed", EX_JOBCTL
        env = clean_environment(self.defn, who)
        env["JOBCTL_JOB"] = self.name
        env["JOBCTL_RUN_ID"] = str(run_id or "")
        env["JOBCTL_ATTEMPT"] = str(attempt)
        proc = Attempt(self.defn, env, who, lock, signals, self.stream, umask, self.sink)
        failure = proc.spawn()
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
            self.error(reason) if self.stream else None
            log.call("finish_run", run_id, status, code, None, time.time(), reason, b"", b"", 0, 0)
            return status, code
        if lock is not None:
            lock.set_holder(run_id, proc.pid)
        log.call("set_pid", run_id, proc.pid)
        timeout = self.defn.get("timeout")
        grace = float(self.defn.get("kill_grace", 10))
        wstatus, ended_by, forwarded = proc.wait(float(timeout) if timeout else None, grace)
        sig: int | None = None
        if ended_by == "timeout":
            status, code = "timeout", EX_TIMEOUT
            reason = f"timed out after {_fmt_duration(float(timeout))}"
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
        if self.defn.get("notify"):
            self._last = ({"id": run_id, "job": self.name, "status": status, "exit_code": code, "signal": sig,
                           "trigger": trigger, "attempt": attempt, "started_at": _iso(started),
                           "finished_at": _iso(finished), "duration_s": round(finished - started, 3),
                           "host": self.host, "reason": reason}, head + tail)
            self._last_env = env
        return status, code


def execute(defn: dict[str, Any], state: str, trigger: str = "manual", stream: bool = False,
            scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
            sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0) -> int:
    """Run a job definition once (with its retries); returns the exit code.

    ``stream`` copies the output live to fd 1, or to ``sink`` when given.
    """
    return Wrapper(defn, state, trigger, stream, scheduled_for, on_started, sink, jitter).run()


def interpreter_argv() -> list[str]:
    """``PYTHON -I -m jobctl.runner`` with the interpreter named by a stable absolute path.

    Cron's PATH is /usr/bin:/bin, so the path is absolute; it is the
    environment's ``bin/python3`` rather than sys.executable, which depends on
    how jobctl was started (python, python3, python3.11) and would make apply
    rewrite every line.  -I keeps the operator's PYTHON* variables and user
    site-packages out of scheduled runs.
    """
    python = os.path.join(sys.prefix, "bin", "python3")
    if not os.access(python, os.X_OK):
        python = sys.executable
    return [python, "-I", "-m", "jobctl.runner"]


def wrapper_argv(state: str, name: str, timer: bool = False) -> list[str]:
    """The command a crontab line (or, with ``timer``, a systemd unit) runs for a job."""
    return [*interpreter_argv(), "--timer" if timer else "--scheduled", "--state-dir", state, name]


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
        except (ImportError, ValueError, StopIteration):
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
        from .wallclock import due_at

        due = due_at(defn["fields"], defn.get("tz_offsets") or [], now)
        if due is None:  # outside the precomputed offsets (not re-applied for years)
            from datetime import datetime, timezone

            from . import clock

            due = len(clock.due(defn["fields"], defn["timezone"], datetime.fromtimestamp(now, timezone.utc)))
        if not due:
            return 0, 0.0
        runs = due
    jitter = float(defn.get("jitter") or 0) if mode == "schedule" else 0.0
    if jitter:
        jitter *= int.from_bytes(os.urandom(4), "little") / 2**32  # uniform in [0, jitter)
    return runs, jitter


def _record_paused(defn: dict[str, Any], state: str, trigger: str, scheduled_for: float | None) -> None:
    error = ErrorLog(state, defn["name"])
    log = RunLog(state, error)
    log.call("record", defn["name"], "skipped", trigger, 1, scheduled_for, time.time(), os.getpid(),
             os.uname().nodename, "skipped: paused (jobctl resume to run again)", 0)
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
    if not state:
        from .paths import state_dir

        state = state_dir()
    if mode == "catch-up-pass":
        from . import catchup

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
        error(f"cannot read the applied definition: {exc}")
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

    code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=jitter)
    for _ in range(runs - 1):  # the other times a spring-forward jump skipped, one after another
        code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=0.0)
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


if __name__ == "__main__":
    _exit_now(main())
