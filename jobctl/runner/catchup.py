"""Catch-up after downtime: a job whose last scheduled run was missed runs once.

apply installs ``@reboot`` and every-minute entries running this pass when any
job has ``catch_up`` or notifies on ``missed`` or ``overdue``, which the same
pass watches for (jobctl.runner.watch).  With ``catch_up_mode: latest`` (the
default) any number of missed schedules coalesces into exactly one run (trigger
``catchup``), unlike Kubernetes' startingDeadlineSeconds, which gives up after
100 missed schedules.  With ``each``, every missed schedule in the window is
made up, oldest first, by one wrapper that runs them one after another (each
through the job's lock, each with its own scheduled_for), at most
``catch_up_max`` of them: the oldest beyond that are dropped, with a line in
jobctl-errors.log.  One wrapper rather than one run per pass: the pass runs
every minute, and a run it starts counts as activity of the job, so the pass
never starts a second one while the first is making up the backlog.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

from jobctl import clock

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: older missed runs beyond catch_up_max are counted up to this many, for the log line only
#: (a year of a job every minute is half a million of them, some seconds of counting)
COUNT_DROPPED = 10_000
#: a scheduled minute this recent may still be starting under cron: not missed yet
SETTLE = 120


def last_due(defn: Mapping[str, Any], since: float, until: float) -> float | None:
    """The latest minute in [since, until] at which the job was due (Unix time)."""
    f = defn["fields"]
    if not f:
        return None
    zone = defn["timezone"]
    t = datetime.fromtimestamp(until - until % 60, timezone.utc)
    floor = datetime.fromtimestamp(since, timezone.utc)
    while t >= floor:
        if clock.due(f, zone, t):  # zone None: cron's own (system) time, with the same DST rules
            return t.timestamp()
        t -= timedelta(minutes=1)
    return None


def missed(defn: Mapping[str, Any], applied_at: float, last_activity: float | None, now: float) -> float | None:
    """The scheduled time to catch up on, or None.

    ``last_activity`` is the latest scheduled_for or start of any run of the
    job; a run at or after a scheduled time means it was not missed.
    """
    window = defn["catch_up"]
    # A hand-edited or older definition may hold anything: NaN, a string or a
    # 400-digit number must not stop the pass for every other job.
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0 \
            or defn["cron"] == "@reboot":
        return None
    since = max(now - min(window, now), applied_at)  # min: beyond the epoch means "since it was applied"
    if last_activity is not None:
        since = max(since, last_activity + 1)
    # a scheduled run sleeps its jitter before it records its row: not missed until that is over too
    from jobctl.applied import number

    return last_due(defn, since, now - SETTLE - number(defn.get("jitter"), 0.0, 86400.0))


def missed_each(defn: Mapping[str, Any], applied_at: float, last_activity: float | None,
                now: float) -> tuple[list[float], int]:
    """catch_up_mode each: (the missed minutes to make up, oldest first; how many older ones were dropped)."""
    from jobctl.applied import integer
    from jobctl.runner.wallclock import previous_slot

    latest = missed(defn, applied_at, last_activity, now)
    if latest is None:
        return [], 0
    window = defn["catch_up"]
    since = max(now - min(window, now), applied_at)
    if last_activity is not None:
        since = max(since, last_activity + 1)
    bound = max(1, integer(defn["catch_up_max"], 100, 10_000))
    slots = [latest]
    dropped = 0
    t = latest
    while True:
        before = previous_slot(defn["fields"], defn["tz_offsets"], defn["timezone"], t)
        if before is None or before < since:
            break
        t = before
        if len(slots) < bound:
            slots.append(t)
        else:
            dropped += 1
            if dropped >= COUNT_DROPPED:
                break
    slots.reverse()
    return slots, dropped


def _catching_up(state: str, name: str) -> bool:
    """Whether a catch-up wrapper of the job holds its catch-up lock (paths.catch_up_job_lock)."""
    import fcntl

    from jobctl import paths

    try:
        fd = os.open(paths.catch_up_job_lock(state, name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def run_pass(state: str, now: float | None = None) -> list[tuple[str, float]]:
    """Start a catch-up run for every job that missed its last schedule; returns them.

    Then, for the jobs that notify on ``missed`` or ``overdue``, the pass's
    watch (jobctl.runner.watch): alerts are decided and recorded under the
    pass's guard, after every catch-up run has started, and sent once the
    guard is let go, so a slow webhook never holds up the next pass.
    """
    import fcntl
    import subprocess

    from jobctl import applied, paths, pause, store
    from jobctl.runner import watch
    from jobctl.runner.cmdline import catch_up_run_argv
    from jobctl.runner.runlog import ErrorLog

    def error(job: str, message: str) -> None:
        ErrorLog(state, job)(message)

    now = time.time() if now is None else now
    os.makedirs(paths.locks_dir(state), mode=0o700, exist_ok=True)
    guard = os.open(paths.catch_up_lock(state), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(guard)
        return []  # another pass is at work
    started: list[tuple[str, float]] = []
    log = None
    pending: list[watch.Pending] = []
    defs: dict[str, applied.Definition] = {}
    try:
        #: the minutes each job's catch-up run (started by this pass) stands for: made up, not missed
        made_up: dict[str, list[float]] = {}
        for name in applied.names(state):
            # One definition that cannot be read or used (hand-edited, damaged, of an older
            # release) is one line in jobctl-errors.log; the pass goes on with every other job.
            where = applied.printable(paths.applied_file(state, name))
            raw = None
            try:
                raw = applied.read_raw(state, name)
                defn = applied.checked(raw, name)
            except FileNotFoundError:  # removed by an apply since the listing
                continue
            except applied.Malformed as exc:
                if exc.key not in (None, "catch_up") and isinstance(raw, dict) and not raw.get("catch_up"):
                    continue  # a job the pass never runs: its own crontab line says what is wrong, not every pass
                what = f"{where}: {exc}" if exc.key else f"cannot read the applied definition {where}: {exc}"
                ErrorLog(state, name)(f"catch-up skipped: {what}; re-run jobctl apply")
                continue
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                ErrorLog(state, name)(f"catch-up skipped: cannot read the applied definition {where}: {why}; "
                                      "re-run jobctl apply")
                continue
            defs[name] = defn
            if not defn["catch_up"] or pause.is_paused(state, name):
                continue
            if applied.CRON not in applied.recorded_for(defn):
                # a systemd timer's job (export systemd --record): Persistent= catches it up, not cron
                continue
            applied_at = applied.mtime(state, name)
            if applied_at is None:
                continue
            if _catching_up(state, name):
                continue  # its catch-up wrapper is still at work: its slots count once it has recorded them
            if log is None:
                log = store.connect(paths.runs_db(state), build_indexes=False)
            last = log.last_activity(name)
            try:
                if defn["catch_up_mode"] == "each":
                    slots, dropped = missed_each(defn, applied_at / 1e9, last, now)
                else:
                    when = missed(defn, applied_at / 1e9, last, now)
                    slots, dropped = ([] if when is None else [when]), 0
            except Exception as exc:  # noqa: BLE001 - one job's definition must not stop the pass for the others
                if isinstance(exc, (LookupError, ValueError, OSError)) and defn["timezone"]:
                    # a zone zoneinfo does not know (ZoneInfoNotFoundError is a KeyError) or refuses ("../x")
                    why = str(applied.expected("timezone", "a time zone of the tz database", defn["timezone"]))
                else:
                    why = f"internal error on the definition ({type(exc).__name__}: {exc})"
                ErrorLog(state, name)(f"catch-up skipped: {where}: {why}; re-run jobctl apply")
                continue
            if not slots:
                continue
            if dropped:
                first = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(slots[0]))
                many = f"{dropped} or more" if dropped >= COUNT_DROPPED else str(dropped)
                ErrorLog(state, name)(f"catch-up: {many} missed run(s) before {first} dropped: catch_up_max is "
                                      f"{len(slots)}; jobctl backfill {name} --since TIME makes them up")
            when = slots[0]
            subprocess.Popen(
                catch_up_run_argv(state, name, *slots),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, cwd="/",
            )
            started.append((name, when))
            made_up[name] = slots
        # Requests (jobctl submit): settle those whose wrapper died, then start a wrapper for each job
        # with a due one (submitted for later, or never started: a crash, a reboot, a cron outage).
        if log is None and os.path.exists(paths.runs_db(state)):
            log = store.connect(paths.runs_db(state), build_indexes=False)
        if log is not None and log.pending_requests():
            from jobctl.runner import host, requests

            # zombies are no wrappers: one SIGKILLed after its parent exited lingers where PID 1 reaps slowly
            log.finalize_lost(None, os.uname().nodename, host.boot_id(), requests.running, host.group_alive, now)
            requests.settle(log, now)
            for name, defn in defs.items():  # requests that are over go with the job's history
                log.prune_requests(name, now - applied.retention(defn)[1])
            requests.start_due(state, log, time.time(),
                               {n: d for n, d in defs.items() if not pause.is_paused(state, n)})
        # A chained run's JOBCTL_PARENT_OUTPUT whose wrapper was killed before it could remove it
        from jobctl.runner import host as host_mod

        if log is not None and os.path.isdir(host_mod.PARENT_OUTPUT_ROOT):
            from jobctl.runner.requests import running as live

            db = log
            if any(n.startswith(host_mod.parent_output_prefix(state))
                   for n in os.listdir(host_mod.PARENT_OUTPUT_ROOT)):
                # its run is marked lost first (wrapper and job gone), then its directory goes
                db.finalize_lost(None, os.uname().nodename, host_mod.boot_id(), live, host_mod.group_alive, now)
                host_mod.sweep_parent_outputs(state, lambda rid: (row := db.get(rid)) is not None
                                              and row["status"] == "running")
        # Only now, every catch-up run started: what the pass watches for cannot delay any of them.
        if any(watch.events(d) for d in defs.values()):
            if log is None:
                log = store.connect(paths.runs_db(state), build_indexes=False)
            pending = watch.look(state, log, defs, made_up, now, error)
    except BaseException:
        if log is not None:
            log.close()
        raise
    finally:
        os.close(guard)
    if log is not None:
        try:
            if pending:
                watch.send(log, defs, pending, error)
        finally:
            log.close()
    return started
