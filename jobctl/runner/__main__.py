"""The wrapper's process: ``start.py`` (every line jobctl writes) and ``python -I -m jobctl.runner`` (older lines).

One start of the wrapper, from a crontab line, a systemd timer, the catch-up
pass or ``jobctl run --detach``: the arguments are parsed (cmdline), the
applied definition read and brought to the current format (applied), and a
scheduled wake-up decided before anything else is loaded: a time-zone job's
minute that is not due ends here, having imported neither the wrapper nor the
run log.  The code lives here rather than in a module this one imports
because every module the wrapper loads costs each scheduled run its import.
"""

from __future__ import annotations

import os
import sys
import time

from jobctl import applied, paths
from jobctl.runner import cmdline
from jobctl.runner.cmdline import EX_JOBCTL, EX_SKIPPED, USAGE

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from jobctl.applied import Definition


def _gate(defn: Definition, state: str, mode: str, now: float) -> tuple[int, float]:
    """How many runs a scheduled wake-up makes, and their jitter.  Cheap when none.

    A job with a time zone wakes on a superset of its minutes; the minutes
    that do not match in its zone end here, with no run row and no lock.  A
    wake-up right after a spring-forward jump runs a fixed-time job once for
    each of its times the jump skipped, as cron(8) does (clock.due).
    """
    runs = 1
    if mode == "schedule" and defn["timezone"] and defn["fields"]:
        from jobctl.runner.wallclock import due_at

        due = due_at(defn["fields"], defn["tz_offsets"] or [], now)
        if due is None:  # outside the precomputed offsets (not re-applied for years)
            from datetime import datetime, timezone

            from jobctl import clock

            try:
                due = len(clock.due(defn["fields"], defn["timezone"], datetime.fromtimestamp(now, timezone.utc)))
            except (LookupError, ValueError, OSError):
                # ZoneInfoNotFoundError is a KeyError; a name zoneinfo refuses (absolute, "..") a ValueError
                raise applied.expected("timezone", "a time zone of the tz database", defn["timezone"]) from None
        if not due:
            return 0, 0.0
        runs = due
    jitter = applied.number(defn["jitter"], 0.0) if mode == "schedule" else 0.0
    if jitter:
        jitter *= int.from_bytes(os.urandom(4), "little") / 2**32  # uniform in [0, jitter)
    return runs, jitter


def _hold_catch_up(state: str, name: str) -> bool:
    """Take the job's catch-up lock for the rest of this process (the pass skips the job meanwhile); False if held."""
    import fcntl

    try:
        fd = os.open(paths.catch_up_job_lock(state, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return True  # no lock to take: run as before it existed
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    except OSError:
        pass
    return True  # fd stays open, and locked, until the process ends


def _error(state: str, job: str, message: str) -> None:
    """One line on stderr and in jobctl-errors.log (runlog.ErrorLog, imported only when there is one)."""
    from jobctl.runner.runlog import ErrorLog

    ErrorLog(state, job)(message)


def _record_paused(defn: Definition, state: str, trigger: str, scheduled_for: float | None,
                   exiting: bool, parent: tuple[int, str, str, float | None] | None) -> None:
    from jobctl.runner import runlog
    from jobctl.runner.runlog import ErrorLog, RunLog

    if exiting:
        runlog.leave_open()
    log = RunLog(state, ErrorLog(state, defn["name"]))
    log.call("record", defn["name"], "skipped", trigger, 1, scheduled_for, time.time(), os.getpid(),
             os.uname().nodename, "skipped: paused (jobctl resume to run again)", None, parent[0] if parent else None)
    log.call("prune", defn["name"], *applied.retention(defn), time.time())
    log.close()


def main(argv: list[str] | None = None, exiting: bool = False) -> int:
    """One start of the wrapper: ``… --scheduled --state-dir DIR NAME`` and the other forms cmdline builds.

    ``exiting``: the process ends as soon as this returns (run()), so the run
    log is left open rather than closed (runlog.leave_open).
    """
    args = cmdline.parse(sys.argv[1:] if argv is None else argv)
    if args is None:
        print(USAGE, file=sys.stderr)
        return EX_JOBCTL
    try:
        # a control character in the path would have been written into crontab lines
        state = paths.check_state_dir(args["state"], "--state-dir") if args["state"] else paths.state_dir()
    except paths.UnsafePath as exc:
        print(f"jobctl: {exc}", file=sys.stderr)
        return EX_JOBCTL
    if args["mode"] == "catch-up-pass":
        from jobctl.runner import catchup

        try:
            catchup.run_pass(state)
        except Exception as exc:  # noqa: BLE001 - one line for cron to mail, then the next pass
            _error(state, "(catch-up)", f"catch-up pass failed: {type(exc).__name__}: {exc}")
            return EX_JOBCTL
        return 0
    name = args["name"]
    if not name:
        print(USAGE, file=sys.stderr)
        return EX_JOBCTL

    def error(message: str) -> None:
        _error(state, name, message)

    try:
        os.makedirs(state, mode=0o700, exist_ok=True)
    except OSError as exc:
        error(f"state directory {state} unusable: {exc.strerror}")
        return EX_JOBCTL

    def where() -> str:
        """What a message about the definition names: its file, or where a detached run's came from."""
        return "the definition on stdin" if args["from_stdin"] else applied.printable(paths.applied_file(state, name))

    def malformed(exc: applied.Malformed) -> int:
        """One line naming the definition and its bad key; the run does not start."""
        if exc.key is None:  # the file as a whole
            error(f"cannot read the applied definition {where()}: {exc}; re-run jobctl apply")
        else:
            error(f"{where()}: {exc}; re-run jobctl apply")
        return EX_JOBCTL

    try:
        raw = applied.parse(sys.stdin.buffer.read()) if args["from_stdin"] else applied.read_raw(state, name)
    except FileNotFoundError:
        error(f"not applied: no {where()}; run jobctl apply")
        return EX_JOBCTL
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        error(f"cannot read the applied definition {where()}: {why}; re-run jobctl apply")
        return EX_JOBCTL
    try:
        defn = applied.checked(raw, name)
    except applied.Malformed as exc:
        return malformed(exc)
    if args["from_stdin"]:
        # A detached run: our stdin was the definition; nothing else is read.
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    mode, trigger, stream, scheduled_for = args["mode"], args["trigger"], args["stream"], args["scheduled_for"]
    jitter, runs = 0.0, 1
    if mode in ("schedule", "timer", "catchup"):
        now = time.time()
        if scheduled_for is None:
            scheduled_for = now - now % 60  # the minute cron meant
        try:
            runs, jitter = _gate(defn, state, mode, now)
        except applied.Malformed as exc:
            return malformed(exc)
        except Exception as exc:  # noqa: BLE001 - a shape the checks above did not foresee: one line, not a trace
            error(f"internal error on the applied definition {where()} ({type(exc).__name__}: {exc}); "
                  "re-run jobctl apply")
            return EX_JOBCTL
        if not runs:
            return 0
    # pause.is_paused, without importing it
    if mode in ("schedule", "timer", "catchup", "chain") and os.path.exists(paths.paused_file(state, name)):
        _record_paused(defn, state, trigger, scheduled_for, exiting, args["parent"])
        # a skip, as a busy lock's: a unit's OnSuccess= must not start its then jobs (SuccessExitStatus=75)
        return EX_SKIPPED if mode == "timer" else 0
    report_fd = args["report_fd"]

    def report(run_id: int) -> None:
        if report_fd >= 0:
            try:
                os.write(report_fd, f"{run_id}\n".encode())
                os.close(report_fd)
            except OSError:
                pass

    from jobctl.runner.wrapper import execute

    if exiting:
        from jobctl.runner import runlog  # imported by wrapper already

        runlog.leave_open()

    # cron mails what a line prints; a systemd timer's output goes to the journal as the run log has it
    mail = defn["cron_mail"] if mode == "schedule" and not stream else None  # applied.checked: one of CRON_MAIL
    parent, chain = args["parent"], args["chain"]
    if mode == "catchup" and not _hold_catch_up(state, name):
        return 0  # another catch-up wrapper of this job is making up its runs
    if mode == "request":
        if os.path.exists(paths.paused_file(state, name)):
            return 0  # a paused job's requests wait in the queue; the pass starts them once it is resumed
        from jobctl.runner.wrapper import serve_requests

        try:
            return serve_requests(defn, state, args["request"] or 0, report, chain)
        except Exception as exc:  # noqa: BLE001 - as below
            error(f"internal error on the applied definition {where()} ({type(exc).__name__}: {exc}); "
                  "re-run jobctl apply")
            return EX_JOBCTL
    given = None
    if args["params"] is not None:
        try:
            given = applied.parse(args["params"].encode())
        except ValueError:
            given = None
        if not isinstance(given, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in given.items()):
            error("--params: expected a JSON object of strings")
            return EX_JOBCTL
    try:
        code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=jitter, mail=mail, parent=parent,
                       chain=chain, params=given, timer=mode == "timer")
        for _ in range(runs - 1):  # the other times a spring-forward jump skipped, one after another
            code = execute(defn, state, trigger, stream, scheduled_for, report, jitter=0.0, mail=mail, chain=chain,
                           timer=mode == "timer")
        rest = args["slots"][1:]
        for n, later in enumerate(rest):
            # catch_up_mode each: the next missed minute once the previous one's run has ended,
            # each through the job's lock and concurrency policy like any other run
            if os.path.exists(paths.paused_file(state, name)):
                # paused meanwhile: the rest is not made up, and says so where a dropped backlog is said
                left = rest[n:]
                error(f"catch-up: paused with {len(left)} missed run(s) not made up, from "
                      f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(left[0]))} to "
                      f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(left[-1]))}; jobctl backfill {name} "
                      f"--since {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(left[0]))} runs them")
                break
            code = execute(defn, state, trigger, stream, later, report, jitter=0.0, mail=mail, chain=chain)
    except Exception as exc:  # noqa: BLE001 - a definition edited into a shape nothing expects: one line, not a trace
        error(f"internal error on the applied definition {where()} ({type(exc).__name__}: {exc}); "
              "re-run jobctl apply")
        return EX_JOBCTL
    return code


def exit_now(code: int) -> None:
    """Exit without the interpreter's teardown, which costs a scheduled run ~3 ms.

    By now the lock is closed, the run log's transactions are committed (its
    connection ends with the process: runlog.leave_open) and nothing is
    registered with atexit; the standard streams are flushed here, as
    teardown would.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run() -> None:
    """The wrapper as a process, from either form of line: main(), then out without teardown."""
    exit_now(main(exiting=True))


if __name__ == "__main__":  # python -I -m jobctl.runner: the lines jobctl wrote before start.py
    run()
