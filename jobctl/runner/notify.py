"""Notifications after a run: command, webhook, e-mail, and healthchecks-style pings; and alerts.

Imported by the wrapper only for jobs that have ``notify`` set, and only once
a run has finished (or started, for pings).  A notification never changes the
run's result: every sink's outcome comes back as one short line, recorded on
the run and shown by ``jobctl logs``.

The run a notification carries is ``store.run_record``'s, the record
``history --json`` prints: the webhook payload's ``run`` is that record, and
the command's JOBCTL_* variables are its fields (environment()).  README
("Notifications") and jobctl(1) document both as interfaces.

A sink is one function ``(its setting, Notice) -> line`` and one row of
SINKS; its key in job files is one row of ``jobctl.jobs.spec.NOTIFY_SINK_KEYS``.

An alert (``alert``) is not the end of a run but something noticed: a run
slow or short against the job's usual duration (the wrapper, after the run),
a run still going well past it or a scheduled run that never started (the
every-minute pass, jobctl.runner.watch).  It goes through the command,
webhook and e-mail sinks, never the ping, and only when ``when`` names it.

Every sink is bounded in wall-clock time, not only per read: an HTTP attempt
ends after WEBHOOK_TIMEOUT however slowly the server trickles its answer, a
command or sendmail after COMMAND_TIMEOUT with its whole process group.  The
wrapper runs these functions in a child process with the job's identity,
after the run is recorded and its lock released, and kills that child when
``budget`` runs out.  What the sinks need (json, subprocess, urllib) is
imported by ``budget``, in the wrapper just before that child starts: a run
that sends nothing does not pay for it, and the child, which may have
dropped to a user who cannot read the interpreter's files (a Python under
/root), imports nothing itself.
"""

from __future__ import annotations

import os
import sys
import time

try:
    # the numbers and calls without signal.py's enums, as the wrapper imports it (enum costs ~2 ms).
    # Its own copy of the wrapper's lines, not a shared module's: a wrapper of the previous release
    # loads this file by itself (jobctl.inflight), where jobctl.runner is no package to import from,
    # and a shared module would be one more import on every run's hot path.
    import _signal as signal
except ImportError:  # not CPython
    import signal

from jobctl.store import FAILED_STATUSES as FAILURES
from jobctl.store import RUN_FIELDS

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

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
    """Whether ``when`` and ``after_failures`` ask for an alert about ``ev``."""
    if ev is None:
        return False
    when = cfg.get("when") or ["failure"]
    if ev == "failure":
        return "failure" in when and consecutive_failures >= int(cfg.get("after_failures") or 1)
    if ev == "recovery":
        return "recovery" in when or "success" in when
    return "success" in when


def needed(cfg: dict, ev: str | None, consecutive_failures: int) -> bool:
    """Whether any sink of ``cfg`` sends something about a run that ended in ``ev``."""
    if ev is None:
        return False
    alert = wanted(cfg, ev, consecutive_failures)
    return any(cfg.get(name) and (alert or sink.every_run) for name, sink in SINKS.items())


def environment(run: dict, ev: str) -> dict[str, str]:
    """The variables a notify command gets: JOBCTL_EVENT, and JOBCTL_<FIELD> for each run-record field.

    ``id`` is JOBCTL_RUN_ID, the name the job itself has for it.  No value
    (null in JSON) is the empty string, true and false are ``true`` and
    ``false``; a run the run log could not record has no id.
    """
    env = {"JOBCTL_EVENT": ev}
    for field in RUN_FIELDS:
        value = run.get(field)
        if field == "id":
            value = value or None  # the wrapper's id when the run log failed is 0
        name = "JOBCTL_RUN_ID" if field == "id" else "JOBCTL_" + field.upper()
        if isinstance(value, dict):  # params: the object as JSON, as the webhook has it
            import json

            value = json.dumps(value, sort_keys=True, ensure_ascii=False)
        env[name] = "" if value is None else "true" if value is True else "false" if value is False else str(value)
    return env


def _summary(run: dict, ev: str) -> str:
    code = "" if run.get("exit_code") is None else f", exit {run['exit_code']}"
    return f"jobctl on {run.get('host')}: job {run['job']} {ev.upper()} ({run.get('reason')}{code}, " \
           f"run {run.get('id')}, {run.get('duration_s') or 0:.1f}s)"


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


def payload(run: dict, ev: str, tail: bytes) -> dict[str, Any]:
    """The webhook's JSON document: a Slack-compatible ``text``, the event, the run record, the output's tail."""
    return {"text": _summary(run, ev), "event": ev, "run": run,
            "output_tail": tail[-PING_BODY_LIMIT:].decode("utf-8", "replace")}


def webhook(url: str, run: dict, ev: str, tail: bytes) -> str:
    return _post_json(url, payload(run, ev, tail))


def _post_json(url: str, doc: dict[str, Any]) -> str:
    """POST ``doc`` as JSON, retried on 5xx, 429 and network errors; the outcome as one line."""
    import json

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
    full.update(environment(run, ev))
    return _run_command(cmd, shell, full, output)


def _run_command(cmd: str, shell: str, full: dict[str, str], output: bytes) -> str:
    """``shell -c cmd`` with exactly the environment ``full`` and ``output`` on stdin; the outcome as one line."""
    import subprocess

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
    import subprocess

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
    subject = _summary(run, ev)
    body = output[-PING_BODY_LIMIT:].decode("utf-8", "replace")
    return _sendmail(to, path_env, subject, f"{subject}\n\nLast output:\n{body}", run["job"], env)


def _sendmail(to: list[str], path_env: str, subject: str, text: str, job: str,
              env: dict[str, str] | None) -> str:
    """One message through the local sendmail (found on ``path_env`` or in /usr/sbin, /usr/lib); one line."""
    import shutil
    import subprocess

    path = path_env + ":/usr/sbin:/usr/lib"
    sendmail = shutil.which("sendmail", path=path)
    if not sendmail:
        return ("email failed: no sendmail on this host; install a mail transfer agent "
                "(e.g. apt-get install msmtp-mta or postfix)")
    # one line: a subject with a line break in it would add headers of its own
    subject = subject.replace("\r", " ").replace("\n", " ")
    msg = (f"To: {', '.join(to)}\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n"
           f"X-Jobctl-Job: {job}\n\n{text}")
    if not msg.endswith("\n"):
        msg += "\n"
    try:
        returncode, _, stderr = _bounded([sendmail, "-t", "-oi"], msg.encode(), env, EMAIL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"email failed: {exc}"
    if returncode:
        return f"email failed: sendmail exit {returncode}: {stderr.decode(errors='replace').strip()}"
    return f"email ok ({len(to)} recipient{'s' if len(to) != 1 else ''})"


# --- the sinks ------------------------------------------------------------------------


class Notice:
    """What a sink is given: the run record, its event, the output's tail, the job's environment and shell."""

    __slots__ = ("env", "event", "output", "run", "shell")

    def __init__(self, run: dict, event: str, output: bytes, env: dict[str, str], shell: str) -> None:
        self.run = run
        self.event = event
        self.output = output
        self.env = env
        self.shell = shell


class Sink:
    """One row of SINKS.

    ``send(setting, notice)`` sends one notification and returns its outcome
    as one line; it never raises.  ``seconds`` bounds it (the wrapper's
    budget); ``needs`` names the modules it imports.  A sink with
    ``every_run`` reports every finished run, whatever ``when`` says; one
    with ``start`` (``start(setting, job)``) also reports that a run began.
    """

    __slots__ = ("every_run", "needs", "seconds", "send", "start")

    def __init__(self, send: Callable[[Any, Notice], str], seconds: float, needs: tuple[str, ...] = (),
                 every_run: bool = False, start: Callable[[Any, str], str] | None = None) -> None:
        self.send = send
        self.seconds = seconds
        self.needs = needs
        self.every_run = every_run
        self.start = start


def _send_ping(base: str, n: Notice) -> str:
    return ping(base, "failure" if n.event == "failure" else "success", n.run, n.output)


def _start_ping(base: str, job: str) -> str:
    return ping(base, "start", {"job": job})


def _send_command(cmd: str, n: Notice) -> str:
    return command(cmd, n.shell, n.env, n.run, n.event, n.output)


def _send_webhook(url: str, n: Notice) -> str:
    return webhook(url, n.run, n.event, n.output)


def _send_email(to: list[str], n: Notice) -> str:
    return email(list(to), n.env.get("PATH", ""), n.run, n.event, n.output, n.env or None)


#: what an HTTP request imports (encodings.idna: the host name's encoding, at connect time)
_HTTP = ("urllib.request", "encodings.idna")

#: Every sink, in the order they are sent (a job's settings name them by these keys).
SINKS: dict[str, Sink] = {
    # a healthchecks-style check expects every run, successes included, to
    # know the job is alive; it goes first, as close to the run's end as can be
    "ping": Sink(_send_ping, WEBHOOK_TIMEOUT, _HTTP, every_run=True, start=_start_ping),
    "command": Sink(_send_command, COMMAND_TIMEOUT, ("subprocess",)),
    "webhook": Sink(_send_webhook,
                    WEBHOOK_ATTEMPTS * WEBHOOK_TIMEOUT + sum(2 ** n for n in range(WEBHOOK_ATTEMPTS - 1)),
                    ("json", *_HTTP)),
    "email": Sink(_send_email, EMAIL_TIMEOUT, ("shutil", "subprocess")),
}


def budget(cfg: dict, start: bool = False) -> float:
    """The longest the sinks of ``cfg`` can take, in seconds (``start``: its start reports alone).

    The wrapper asks just before it starts the child that sends them, so the
    modules those sinks need are imported here, as the wrapper's user.
    """
    used = [sink for name, sink in SINKS.items() if cfg.get(name) and (sink.start or not start)]
    for sink in used:
        for module in sink.needs:
            __import__(module)
    return BUDGET_SLACK + sum(sink.seconds for sink in used)


def starts(cfg: dict) -> bool:
    """Whether a sink of ``cfg`` reports the start of a run."""
    return any(sink.start and cfg.get(name) for name, sink in SINKS.items())


def at_start(cfg: dict, job: str) -> list[str]:
    """Report that a run of ``job`` began (the /start ping); one line per sink."""
    return [sink.start(cfg[name], job) for name, sink in SINKS.items() if sink.start and cfg.get(name)]


def after_run(cfg: dict, run: dict, output: bytes, env: dict[str, str], shell: str,
              consecutive_failures: int, previous_failures: int) -> list[str]:
    """Send what the job's notify settings ask for about ``run`` (a run record); one line per sink used."""
    ev = event(run["status"], previous_failures)
    if ev is None:
        return []
    alert = wanted(cfg, ev, consecutive_failures)
    notice = Notice(run, ev, output, env, shell)
    return [sink.send(cfg[name], notice) for name, sink in SINKS.items() if cfg.get(name) and (alert or sink.every_run)]


# --- alerts: a run against its usual duration, a scheduled run that never started --------------

#: The events of an alert, which is not how a run ended but something noticed about it or about
#: its schedule: slow and short (the wrapper, once a run is recorded), overdue (the every-minute
#: pass, while the run goes on) and missed (the pass: a scheduled run that never started).  Each
#: is sent only when the job's ``when`` names it, whatever after_failures says.
ALERTS = ("slow", "short", "overdue", "missed")
#: the sinks an alert goes through, in this order (SINKS'): a ping reports a run's start and end, not alerts
ALERT_SINKS = ("command", "webhook", "email")
#: the missed times one alert lists (JOBCTL_SLOTS, the webhook's ``slots``); JOBCTL_MISSED counts them all
SLOTS_LISTED = 100


def alert_wanted(cfg: dict, kind: str) -> bool:
    """Whether the job's notify settings send an alert of ``kind`` through any sink."""
    return kind in (cfg.get("when") or ()) and any(cfg.get(name) for name in ALERT_SINKS)


def alert_budget(cfg: dict) -> float:
    """The longest an alert's sinks can take, in seconds; imports what they need (as budget does)."""
    used = [SINKS[name] for name in ALERT_SINKS if cfg.get(name)]
    for sink in used:
        for module in sink.needs:
            __import__(module)
    return BUDGET_SLACK + sum(sink.seconds for sink in used)


def alert_text(kind: str, job: str, detail: str, run: dict | None, host: str) -> str:
    """The alert's one line: ``jobctl on web1: job backup OVERDUE (run 42): running for 1h00m; usually …``."""
    which = f" (run {run['id']})" if run and run.get("id") else ""
    return f"jobctl on {host}: job {job} {kind.upper()}{which}: {detail}"


def _usual_fields(usual: Any) -> dict[str, Any] | None:
    if usual is None:
        return None
    return {"median_s": round(float(usual.median), 3), "mad_s": round(float(usual.mad), 3), "runs": int(usual.n)}


def alert_payload(kind: str, job: str, detail: str, run: dict | None, output: bytes, host: str,
                  slots: tuple[float, ...] | list[float] = (), usual: Any = None,
                  elapsed: float | None = None) -> dict[str, Any]:
    """The webhook's JSON document for an alert: the fields of ``payload`` and what the alert adds."""
    from jobctl.store import iso

    return {"text": alert_text(kind, job, detail, run, host), "event": kind, "run": run,
            "output_tail": output[-PING_BODY_LIMIT:].decode("utf-8", "replace"),
            "job": job, "detail": detail,
            "slot": iso(slots[0]) if slots else None,
            "slots": [iso(t) for t in slots[:SLOTS_LISTED]],
            "missed": len(slots),
            "usual": _usual_fields(usual),
            "elapsed_s": None if elapsed is None else round(elapsed, 3)}


def alert_environment(kind: str, job: str, detail: str, run: dict | None, host: str,
                      slots: tuple[float, ...] | list[float] = (), usual: Any = None,
                      elapsed: float | None = None) -> dict[str, str]:
    """The variables an alert's command gets: those of a run's notification (empty without a run), and more.

    JOBCTL_EVENT is the kind; JOBCTL_JOB and JOBCTL_HOST are set even
    without a run (missed); JOBCTL_DETAIL is the alert's line; JOBCTL_SLOT
    the first missed time, JOBCTL_SLOTS the missed times (at most
    SLOTS_LISTED, space-separated, oldest first), JOBCTL_MISSED how many;
    JOBCTL_USUAL_S the usual duration (median, seconds) and JOBCTL_ELAPSED_S
    this run's seconds, so far for an overdue one.  Empty where they do not apply.
    """
    from jobctl.store import iso

    env = environment(run or {}, kind)
    env["JOBCTL_JOB"] = job
    env["JOBCTL_HOST"] = env["JOBCTL_HOST"] or host
    env["JOBCTL_DETAIL"] = detail
    env["JOBCTL_SLOT"] = (iso(slots[0]) or "") if slots else ""
    env["JOBCTL_SLOTS"] = " ".join(iso(t) or "" for t in slots[:SLOTS_LISTED])
    env["JOBCTL_MISSED"] = str(len(slots)) if slots else ""
    env["JOBCTL_USUAL_S"] = "" if usual is None else f"{float(usual.median):.3f}"
    env["JOBCTL_ELAPSED_S"] = "" if elapsed is None else f"{elapsed:.3f}"
    return env


def alert(cfg: dict, kind: str, job: str, detail: str, run: dict | None, output: bytes, env: dict[str, str],
          shell: str, slots: tuple[float, ...] | list[float] = (), usual: Any = None,
          elapsed: float | None = None) -> list[str]:
    """Send an alert of ``kind`` (one of ALERTS) about ``job`` through its command, webhook and email; one line each.

    Nothing (``[]``) unless the job's ``when`` names ``kind``.  ``detail``
    is the alert's own line (for slow, short and overdue baseline.explain's:
    this run's figure, the usual one and the threshold); ``run`` the run
    record (store.run_record) it is about, None for missed; ``output`` what
    the command gets on stdin and the webhook and e-mail as the output's
    tail; ``env`` the job's environment (the command runs with it, plus the
    alert's variables: alert_environment) and ``shell`` its shell.  ``slots``:
    the scheduled times (Unix seconds) a missed alert reports, oldest first;
    ``usual`` the baseline.Usual the run was judged against and ``elapsed``
    its seconds.  Run it as the job's user, bounded by alert_budget (the
    wrapper and the pass run it in a notifier.Notifier).  Never raises.
    """
    if kind not in (cfg.get("when") or ()):
        return []
    host = (run or {}).get("host") or os.uname().nodename
    lines = []
    if cfg.get("command"):
        full = dict(env)
        full.update(alert_environment(kind, job, detail, run, host, slots, usual, elapsed))
        lines.append(_run_command(cfg["command"], shell, full, output))
    if cfg.get("webhook"):
        lines.append(_post_json(cfg["webhook"], alert_payload(kind, job, detail, run, output, host, slots, usual,
                                                              elapsed)))
    if cfg.get("email"):
        from jobctl.store import iso

        subject = alert_text(kind, job, detail, run, host)
        text = subject + "\n"
        if len(slots) > 1:
            listed = [iso(t) or "" for t in slots[:SLOTS_LISTED]]
            more = f" and {len(slots) - len(listed)} more" if len(slots) > len(listed) else ""
            text += f"\nMissed: {', '.join(listed)}{more}\n"
        if output:
            text += "\nLast output:\n" + output[-PING_BODY_LIMIT:].decode("utf-8", "replace")
        lines.append(_sendmail(list(cfg["email"]), env.get("PATH", ""), subject, text, job, env or None))
    return lines
