"""Notifications after a run: command, webhook, e-mail, and healthchecks-style pings.

Imported by the wrapper only for jobs that have ``notify`` set, and only once
a run has finished (or started, for pings).  A notification never changes the
run's result: every sink's outcome comes back as one short line, recorded on
the run and shown by ``jobctl logs``.

Every sink is bounded in wall-clock time, not only per read: an HTTP attempt
ends after WEBHOOK_TIMEOUT however slowly the server trickles its answer, a
command or sendmail after COMMAND_TIMEOUT with its whole process group.  The
wrapper runs these functions in a child process with the job's identity,
after the run is recorded and its lock released, and kills that child when
``budget`` runs out (runner._Notifier).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from jobctl.store import FAILED_STATUSES as FAILURES

#: wall-clock limit of one HTTP attempt (connect, send, the whole answer)
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 3
PING_BODY_LIMIT = 10 * 1024
COMMAND_TIMEOUT = 60.0
EMAIL_TIMEOUT = 60.0
#: process start-up and name resolution, which no alarm interrupts
BUDGET_SLACK = 5.0


def event(status: str, previous_failures: int) -> str | None:
    """failure, success or recovery (the first success after failures)."""
    if status in FAILURES:
        return "failure"
    if status == "succeeded":
        return "recovery" if previous_failures > 0 else "success"
    return None  # skipped and running runs are not news


def wanted(cfg: dict, ev: str | None, consecutive_failures: int) -> bool:
    if ev is None:
        return False
    when = cfg.get("when") or ["failure"]
    if ev == "failure":
        return "failure" in when and consecutive_failures >= int(cfg.get("after_failures") or 1)
    if ev == "recovery":
        return "recovery" in when or "success" in when
    return "success" in when


def _summary(run: dict, ev: str) -> str:
    code = "" if run.get("exit_code") is None else f", exit {run['exit_code']}"
    return f"jobctl on {run.get('host')}: job {run['job']} {ev.upper()} ({run.get('reason')}{code}, " \
           f"run {run.get('id')}, {run.get('duration_s') or 0:.1f}s)"


def budget(cfg: dict, start: bool = False) -> float:
    """The longest the sinks of ``cfg`` can take, in seconds (``start``: the /start ping alone)."""
    if start:
        return WEBHOOK_TIMEOUT + BUDGET_SLACK
    total = BUDGET_SLACK
    if cfg.get("ping"):
        total += WEBHOOK_TIMEOUT
    if cfg.get("webhook"):
        total += WEBHOOK_ATTEMPTS * WEBHOOK_TIMEOUT + sum(2 ** n for n in range(WEBHOOK_ATTEMPTS - 1))
    if cfg.get("command"):
        total += COMMAND_TIMEOUT
    if cfg.get("email"):
        total += EMAIL_TIMEOUT
    return total


class _Deadline:
    """``with _Deadline(s):`` raises TimeoutError in the block after ``s`` seconds of wall-clock time.

    A socket timeout bounds each read, so a server that sends one byte every
    few seconds would hold an attempt forever; SIGALRM bounds the whole of it.
    Signals are only for the main thread: elsewhere the socket timeout is all
    there is (the wrapper always notifies from a main thread).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.previous: Any = None
        self.armed = False

    def _expired(self, signum: int, frame: Any) -> None:
        raise TimeoutError(f"no complete answer within {self.seconds:g}s")

    def __enter__(self) -> _Deadline:
        try:
            self.previous = signal.signal(signal.SIGALRM, self._expired)
        except ValueError:  # not the main thread
            return self
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _post(url: str, body: bytes, content_type: str, timeout: float) -> int:
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": content_type, "User-Agent": "jobctl"})
    with _Deadline(timeout), urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - operator's URL
        return int(resp.status)


def webhook(url: str, run: dict, ev: str, tail: bytes) -> str:
    doc = {"text": _summary(run, ev), "event": ev, "run": run,
           "output_tail": tail[-PING_BODY_LIMIT:].decode("utf-8", "replace")}
    body = json.dumps(doc).encode()
    error = ""
    for attempt in range(WEBHOOK_ATTEMPTS):
        if attempt:
            time.sleep(2 ** (attempt - 1))
        try:
            status = _post(url, body, "application/json", WEBHOOK_TIMEOUT)
            return f"webhook ok ({status})"
        except Exception as exc:  # noqa: BLE001 - reported on the run, never raised into it
            error = f"{type(exc).__name__}: {exc}"
            if getattr(exc, "code", 500) < 500 and getattr(exc, "code", None) not in (None, 429):
                break  # a 4xx will not get better by retrying
    return f"webhook failed after {attempt + 1} attempt{'s' if attempt else ''}: {error}"


def ping(base: str, phase: str, run: dict, tail: bytes = b"") -> str:
    """healthchecks.io style: /start, the base URL on success, /<exit code> or /fail on failure."""
    base = base.rstrip("/")
    if phase == "start":
        url = base + "/start"
    elif phase == "success":
        url = base
    else:
        url = f"{base}/{run['exit_code']}" if run.get("exit_code") is not None else base + "/fail"
    try:
        _post(url, tail[-PING_BODY_LIMIT:], "text/plain; charset=utf-8", WEBHOOK_TIMEOUT)
        return f"ping {phase} ok"
    except Exception as exc:  # noqa: BLE001 - reported on the run
        return f"ping {phase} failed: {type(exc).__name__}: {exc}"


def command(cmd: str, shell: str, env: dict[str, str], run: dict, ev: str, output: bytes) -> str:
    full = dict(env)
    full.update({
        "JOBCTL_JOB": run["job"], "JOBCTL_RUN_ID": str(run.get("id") or ""), "JOBCTL_EVENT": ev,
        "JOBCTL_STATUS": run["status"], "JOBCTL_EXIT_CODE": "" if run.get("exit_code") is None else
        str(run["exit_code"]), "JOBCTL_REASON": run.get("reason") or "", "JOBCTL_HOST": run.get("host") or "",
    })
    try:
        returncode, _, stderr = _bounded([shell, "-c", cmd], output, full, COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"command timed out after {COMMAND_TIMEOUT:.0f}s"
    except OSError as exc:
        return f"command failed to start: {exc}"
    if returncode:
        err = stderr.decode(errors="replace").strip().splitlines()
        return f"command failed (exit {returncode}){': ' + err[-1] if err else ''}"
    return "command ok"


def _bounded(argv: list[str], data: bytes, env: dict[str, str] | None, timeout: float) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with ``data`` on stdin; (exit code, stdout, stderr), TimeoutExpired after ``timeout``.

    The program gets its own process group in the caller's session, and on
    timeout the whole group is killed: subprocess.run kills only the shell,
    and a background process holding the pipes would then outlive it.  The
    wrapper's notifier kills its session, which this group is part of.
    """
    # process_group is Python 3.11's; before, setpgrp (async-signal-safe) in the child does the same
    group: dict[str, Any] = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, **group)
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, out, err


def email(to: list[str], path_env: str, run: dict, ev: str, output: bytes, env: dict[str, str] | None = None) -> str:
    path = path_env + ":/usr/sbin:/usr/lib"
    sendmail = shutil.which("sendmail", path=path)
    if not sendmail:
        return ("email failed: no sendmail on this host; install a mail transfer agent "
                "(e.g. apt-get install msmtp-mta or postfix)")
    subject = _summary(run, ev)
    body = output[-PING_BODY_LIMIT:].decode("utf-8", "replace")
    msg = (f"To: {', '.join(to)}\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n"
           f"X-Jobctl-Job: {run['job']}\n\n{subject}\n\nLast output:\n{body}")
    if not msg.endswith("\n"):
        msg += "\n"
    try:
        returncode, _, stderr = _bounded([sendmail, "-t", "-oi"], msg.encode(), env, EMAIL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"email failed: {exc}"
    if returncode:
        return f"email failed: sendmail exit {returncode}: {stderr.decode(errors='replace').strip()}"
    return f"email ok ({len(to)} recipient{'s' if len(to) != 1 else ''})"


def after_run(cfg: dict, run: dict, output: bytes, env: dict[str, str], shell: str,
              consecutive_failures: int, previous_failures: int) -> list[str]:
    """Send what the job's notify settings ask for; returns one line per sink used."""
    results: list[str] = []
    ev = event(run["status"], previous_failures)
    if cfg.get("ping") and ev is not None:
        results.append(ping(cfg["ping"], "failure" if ev == "failure" else "success", run, output))
    if not wanted(cfg, ev, consecutive_failures):
        return results
    assert ev is not None
    if cfg.get("command"):
        results.append(command(cfg["command"], shell, env, run, ev, output))
    if cfg.get("webhook"):
        results.append(webhook(cfg["webhook"], run, ev, output))
    if cfg.get("email"):
        results.append(email(list(cfg["email"]), env.get("PATH", ""), run, ev, output, env or None))
    return results


