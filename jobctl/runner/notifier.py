"""The child process notifications run in (the sinks themselves are jobctl.runner.notify).

Imported by the wrapper only for a job with ``notify``.
"""

from __future__ import annotations

import os
import select
import time

try:
    import _signal  # signal without its enums (~2 ms the wrapper need not pay)
except ImportError:  # not CPython
    import signal as _signal

from jobctl.runner import host
from jobctl.runner.process import FORWARDED_SIGNALS, become, close_descriptors, poll_ms, signame
from jobctl.runner.runlog import fmt_duration

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable

    from jobctl.runner.process import Signals


class Notifier:
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
                close_descriptors(w)  # the job's lock, the run log
                if ids is not None:
                    become(ids)
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
                    note = f"{self.what} stopped: {signame(signals.pending[-1])} sent to the wrapper"
                    break
                now = time.monotonic()
                if stop_at is not None and now >= stop_at:
                    note = f"{self.what} stopped: {signame(signals.pending[0])} sent to the wrapper" \
                        if signals.pending else f"{self.what} stopped"
                    break
                if now >= self.deadline:
                    note = f"{self.what} stopped: no answer within {fmt_duration(self.budget)}"
                    break
                end = self.deadline if stop_at is None else min(self.deadline, stop_at)
                events = dict(poller.poll(poll_ms(end - now)))
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
