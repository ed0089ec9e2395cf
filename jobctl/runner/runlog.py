"""What the wrapper writes down: the run log (best effort) and STATE/jobctl-errors.log.

The run log is best effort: when it is missing, corrupt, busy or the disk is
full, the job still runs under its lock and timeout; the problem is printed
on stderr and appended to STATE/jobctl-errors.log.
"""

from __future__ import annotations

import os
import time

from jobctl import paths

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from typing import Any


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def fmt_duration(seconds: float) -> str:
    """``1h30m``, ``45s``; below a second ``0.4s`` (``0s`` for none)."""
    total = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out or ("0s" if seconds <= 0 else f"{seconds:.1f}s")


def summary(status: str, code: int | None, seconds: float, run_id: int, attempt: int, attempts: int,
            reason: str) -> str:
    """A run's result in one line, as `jobctl run` ends and `jobctl logs --follow` ends:
    ``failed, exit code 3, 12s, run 1842, attempt 2 of 2 (exit status 3)``."""
    of = f", attempt {attempt} of {attempts}" if attempts > 1 else (f", attempt {attempt}" if attempt > 1 else "")
    exit_code = "no exit code" if code is None else f"exit code {code}"
    return f"{status}, {exit_code}, {fmt_duration(seconds)}, run {run_id or '?'}{of} ({reason})"


class ErrorLog:
    """One line to stderr and to STATE/jobctl-errors.log; never raises."""

    def __init__(self, state: str, job: str) -> None:
        self.path = paths.errors_log(state)
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
                os.write(fd, f"{iso(time.time())} {line}\n".encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass


#: The run logs left open until the process ends (leave_open), or None: close them.
_left_open: list[Any] | None = None


def leave_open() -> None:
    """From now on close() leaves the run log open: the process ends right after (os._exit).

    Closing the last connection to the log checkpoints the WAL into the
    database and syncs both (four fsyncs with creating the WAL again: the
    largest cost of a scheduled run on a busy disk).  A connection left open
    dies with the process: its locks go with it, every committed transaction
    is in the WAL, and the next connection rebuilds the WAL's index from it
    (SQLite's recovery, a read of the WAL, which Store.checkpoint_due keeps
    short).  The read commands close theirs and fold the WAL back.  The list
    holds each store until the process ends, so that garbage collection does
    not close it either.
    """
    global _left_open
    if _left_open is None:
        _left_open = []


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

            # a log left open checkpoints when its turn comes (close), not after every commit;
            # an index a new release adds is built by the CLI, never under cron's herd
            self.store = store.connect(paths.runs_db(state), checkpoint=_left_open is None, build_indexes=False)
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

    def close(self) -> None:
        if self.store is not None:
            if _left_open is not None:
                try:
                    self.store.checkpoint_due()
                except Exception:  # noqa: BLE001 - the run is recorded; the WAL keeps it for the next checkpoint
                    pass
                _left_open.append(self.store)
            else:
                self.store.close()
            self.store = None
