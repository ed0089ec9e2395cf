"""What the every-minute pass watches besides catch-up: scheduled runs that never started, runs far past their usual.

apply installs the pass (``@reboot`` and every minute) when a job has
``catch_up`` or notifies on ``missed`` or ``overdue``; catchup.run_pass
starts the catch-up runs first, then calls ``look`` here, lets its guard go,
and sends what ``look`` found with ``send``.

**missed.**  A scheduled minute of the job (its schedule in its time zone,
as cron(8) runs it: clock.next_runs) with no run row for it, whatever its
status (a ``paused``, ``forbid`` or ``requires`` skip is a record that the
wrapper ran for it, not a missed run), once ``GRACE`` seconds and the job's
jitter have passed.  Each such minute is recorded once in the run log's
alerts table (kind ``missed``, key the minute), and the job's
``checked`` row says how far the pass has looked, so a minute is judged
once.  The first look goes back one minute before the grace (the history
before the job was watched never alerts), and never before the definition
was applied.  A paused job's minutes are passed over; a job that waits for a
lock (concurrency ``wait`` or ``replace``) is not judged while a run of its
own or of its lock group goes on, since its wrapper may be queued behind it
without a row yet; a minute the pass is making up by catch-up right now is
not missed.  At most MAX_SLOTS minutes per job per pass: the next pass goes
on from where this one stopped.

**overdue.**  A run still ``running`` (on this host, its wrapper or its
process alive) for longer than baseline.slow_after of the job's usual
duration: one alert per run (key the run id), never a kill.  Below
``baseline.min_runs`` successful runs nothing is judged.

**Sending.**  One alert per overdue run and one per job and pass for the
minutes it found missed (a machine that was off for a day does not send a
thousand commands: the alert lists them, JOBCTL_MISSED counts them), through
notify.alert in a notifier.Notifier: as the job's user, bounded by the
sinks' budget, after the catch-up runs have started and with the pass's
guard released, so no catch-up waits for a slow webhook.  What the sinks did
is appended to each alert's row.

**Retention.**  Alerts older than the job's ``history.max_age`` are deleted.
"""

from __future__ import annotations

import os
import time

from jobctl import applied, baseline, pause

TYPE_CHECKING = False  # typing costs milliseconds at run time
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from jobctl.applied import Definition
    from jobctl.store import Store

#: what the pass watches for, of notify.when's events (applied owns the list: install reads it too)
WATCHED = applied.PASS_EVENTS
#: seconds after a scheduled minute (plus the job's jitter) before a run that has not started is missed:
#: the catch-up pass's own settling time (catchup.SETTLE), which a loaded machine's cron may need
GRACE = 120
#: the first look at a job goes back this much further than the grace (none of its older history alerts)
FIRST_LOOK = 60
#: scheduled minutes looked at per job and pass; the next pass goes on from there
MAX_SLOTS = 10_000
#: notifications of one pass that run at the same time
MAX_PARALLEL = 8
#: the policies under which a wrapper may wait for a lock before it records anything
_QUEUEING = ("wait", "replace")


def events(defn: Mapping[str, Any]) -> list[str]:
    """The events of WATCHED the job's notify.when names ([] for a job without notify)."""
    cfg = defn.get("notify")
    when = cfg.get("when") if isinstance(cfg, dict) else None
    return [e for e in WATCHED if isinstance(when, list) and e in when]


def grace(defn: Mapping[str, Any]) -> float:
    """Seconds after a scheduled minute before a run that has not started for it is missed."""
    return GRACE + applied.number(defn.get("jitter"), 0.0)


def scheduled_minutes(defn: Mapping[str, Any], after: float, until: float,
                      most: int = MAX_SLOTS) -> tuple[list[float], bool]:
    """The minutes in (after, until] at which cron(8) runs the job (Unix time), oldest first, at most ``most``.

    True with them when it stopped at ``most`` (more may follow).  By
    clock.next_runs, in the job's zone (the system's without one), a few
    dozen at a time where the schedule is dense: one at a time it is ~40 us
    a minute, all at once its list grows quadratically.
    """
    from datetime import datetime, timezone

    from jobctl import clock

    f = defn.get("fields")
    if not f or defn.get("cron") == "@reboot" or until <= after:
        return [], False
    zone = defn.get("timezone")
    found: list[float] = []
    t, count = after, 1
    while True:
        batch = clock.next_runs(f, zone, datetime.fromtimestamp(t, timezone.utc), count)
        for u in batch:
            ts = u.timestamp()
            if ts > until:
                return found, False
            found.append(ts)
            if len(found) >= most:
                return found, True
        if len(batch) < count:
            return found, False  # no run for decades: the schedule ends
        t = found[-1]
        # as many at once as fit before ``until`` at the pace seen so far (1 for a daily job looked at each minute)
        pace = (found[-1] - found[0]) / (len(found) - 1) if len(found) > 1 else until - after
        count = max(1, min(64, most - len(found), int((until - t) / max(pace, 60.0)) + 1))


def _hm(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(t))


def _schedule_text(defn: Mapping[str, Any]) -> str:
    text = defn.get("schedule") or defn.get("cron") or "?"
    zone = defn.get("timezone")
    return f"schedule {applied.printable(str(text))!r}" + (f" in {zone}" if zone else "")


def missed_detail(defn: Mapping[str, Any], slots: list[float]) -> str:
    """The line a missed alert says: the scheduled time(s), the schedule, the grace."""
    from jobctl.runner.runlog import fmt_duration

    within = fmt_duration(grace(defn))
    if len(slots) == 1:
        return f"no run started for {_hm(slots[0])} within {within} ({_schedule_text(defn)})"
    return (f"no run started for {len(slots)} scheduled times from {_hm(slots[0])} to {_hm(slots[-1])}, "
            f"each within {within} ({_schedule_text(defn)})")


class Pending:
    """One alert decided by ``look``, to send: the job, its kind, the alerts' keys and what the sinks get."""

    __slots__ = ("detail", "elapsed", "job", "keys", "kind", "run", "slots", "usual")

    def __init__(self, job: str, kind: str, keys: list[float], detail: str, run: dict[str, Any] | None = None,
                 slots: list[float] | None = None, usual: baseline.Usual | None = None,
                 elapsed: float | None = None) -> None:
        self.job = job
        self.kind = kind
        self.keys = keys
        self.detail = detail
        self.run = run
        self.slots = slots or []
        self.usual = usual
        self.elapsed = elapsed


class _Liveness:
    """finalize_lost for a job at most once per pass: a run whose wrapper and process are gone is lost, not late."""

    def __init__(self, log: Store) -> None:
        from jobctl.runner import host

        self.log = log
        self.host = os.uname().nodename
        self.boot_id = host.boot_id()
        self.done: set[str] = set()

    def running(self, job: str) -> list[Any]:
        from jobctl.runner import host

        rows = self.log.running(job)
        if rows and job not in self.done:
            self.done.add(job)
            # the time it is, not the pass's ``now``: a lost run's end is recorded as when it was found
            if self.log.finalize_lost(job, self.host, self.boot_id, host.alive, host.group_alive, time.time()):
                rows = self.log.running(job)
        return rows


def look(state: str, log: Store, defs: Mapping[str, Definition], made_up: Mapping[str, Iterable[float]],
         now: float, error: Any) -> list[Pending]:
    """Decide the pass's alerts for every job of ``defs`` that watches for them, recording each once.

    ``made_up``: the minutes each job's catch-up run started by this pass
    stands for.  ``error(job, message)`` reports a job that could not be
    looked at; the others go on.
    """
    pending: list[Pending] = []
    live = _Liveness(log)
    groups: dict[str, list[str]] = {}
    for name, defn in defs.items():
        group = defn.get("lock_group")
        if isinstance(group, str):
            groups.setdefault(group, []).append(name)
    for name, defn in defs.items():
        watched = events(defn)
        if not watched or not defn["enabled"] or applied.CRON not in applied.recorded_for(defn):
            continue  # a systemd timer's job: its timer runs it, and the pass does not catch it up either
        try:
            if "overdue" in watched:
                pending += _overdue(log, live, name, defn, now)
            if "missed" in watched:
                lock_group = defn.get("lock_group")
                members = groups.get(lock_group, [name]) if isinstance(lock_group, str) else [name]
                found = _missed(state, log, live, name, defn, now, set(made_up.get(name, ())), members)
                if found is not None:
                    pending.append(found)
        except Exception as exc:  # noqa: BLE001 - one job's definition or row must not stop the pass for the others
            if isinstance(exc, (LookupError, ValueError, OSError)) and defn.get("timezone"):
                why = str(applied.expected("timezone", "a time zone of the tz database", defn["timezone"]))
            else:
                why = f"{type(exc).__name__}: {exc}"
            error(name, f"overdue and missed runs not checked: {why}")
    try:
        prune(log, defs, now)
    except Exception as exc:  # noqa: BLE001 - retention waits for the next pass
        error("(catch-up)", f"old alerts not pruned: {type(exc).__name__}: {exc}")
    return pending


def _overdue(log: Store, live: _Liveness, name: str, defn: Definition, now: float) -> list[Pending]:
    """Runs of the job going on past their usual duration's slow threshold, each alerted once."""
    from jobctl.store import run_record

    rows = [r for r in live.running(name) if r["host"] == live.host]  # another host's run is not ours to judge
    if not rows:
        return []
    settings = baseline.settings(defn["baseline"])
    found = []
    for row in rows:
        elapsed = now - float(row["started_at"])
        usual = baseline.usual(log.durations(name, settings["runs"], before=row["id"]), settings)
        if usual is None or elapsed <= baseline.slow_after(usual, settings):
            continue
        detail = baseline.explain("overdue", elapsed, usual, settings)
        if log.alert_once(name, "overdue", row["id"], now, detail):
            found.append(Pending(name, "overdue", [row["id"]], detail, run_record(row), usual=usual, elapsed=elapsed))
    return found


def _missed(state: str, log: Store, live: _Liveness, name: str, defn: Definition, now: float,
            made_up: set[float], group: list[str]) -> Pending | None:
    """The job's scheduled minutes, since the pass last looked, that no run was recorded for; recorded once."""
    if not defn["fields"] or defn["cron"] == "@reboot":
        return None
    applied_ns = applied.mtime(state, name)
    if applied_ns is None:
        return None
    end = now - grace(defn)
    checked = log.checked_until(name)
    start = max(end - FIRST_LOOK if checked is None else checked, applied_ns / 1e9)
    if end <= start:
        return None
    upto = end
    missed: list[float] = []
    if not pause.is_paused(state, name):  # the wrapper records a paused job's minutes as skipped: none is missed
        slots, more = scheduled_minutes(defn, start, end)
        if more:
            upto = slots[-1]
        have: set[float] = set()
        if slots:
            have = {t - t % 60 for (t,) in log.db.execute(
                "SELECT DISTINCT scheduled_for FROM runs WHERE job = ? AND scheduled_for >= ? AND scheduled_for < ?",
                (name, slots[0], slots[-1] + 60))}
        queueing: bool | None = None if defn["concurrency"] in _QUEUEING else False
        for slot in slots:
            if slot in have or slot in made_up:
                continue
            if queueing is None:
                queueing = any(live.running(job) for job in group)
            if queueing:
                # its wrapper may be waiting for the lock, with no row yet: judged once nothing holds it
                upto = max(start, slot - 1)
                break
            missed.append(slot)
    return _record_missed(log, name, defn, missed, upto, now)


def _record_missed(log: Store, name: str, defn: Definition, missed: list[float], upto: float,
                   now: float) -> Pending | None:
    """One transaction: each missed minute's alert (unless recorded already) and how far the pass has looked."""
    new: list[float] = []
    with log.write() as db:
        for slot in missed:
            cur = db.execute("INSERT OR IGNORE INTO alerts (job, kind, key, at, detail) VALUES (?, 'missed', ?, ?, ?)",
                             (name, slot, now, missed_detail(defn, [slot])))
            if cur.rowcount > 0:
                new.append(slot)
        db.execute("INSERT OR REPLACE INTO alerts (job, kind, key, at) VALUES (?, 'checked', 0, ?)", (name, upto))
    if not new:
        return None
    return Pending(name, "missed", list(new), missed_detail(defn, new), slots=new)


def prune(log: Store, defs: Mapping[str, Definition], now: float) -> int:
    """Delete alerts older than their job's history.max_age (a missed one by its minute); how many went.

    Each question reads the (job, kind, key) key from one end; a job with
    nothing to delete costs no write.
    """
    gone = 0
    for name, defn in defs.items():
        _, max_age = applied.retention(defn)
        cutoff = now - min(max_age, now)
        old = log.db.execute(
            "SELECT EXISTS (SELECT 1 FROM alerts WHERE job = ? AND kind = 'missed' AND key < ?)"
            " OR EXISTS (SELECT 1 FROM alerts WHERE job = ? AND kind = 'overdue' AND at < ?)",
            (name, cutoff, name, cutoff)).fetchone()[0]
        if old:
            with log.write() as db:
                gone += db.execute("DELETE FROM alerts WHERE job = ? AND ((kind = 'missed' AND key < ?)"
                                   " OR (kind = 'overdue' AND at < ?))", (name, cutoff, cutoff)).rowcount
    return gone


class _NoSignals:
    """Signals' interface where handlers cannot be set (a caller off the main thread): nothing ever arrives."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.first_at = 0.0
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC)

    def drain(self) -> None:
        pass

    def restore(self) -> None:
        os.close(self.wake_r)
        os.close(self.wake_w)


def send(log: Store, defs: Mapping[str, Definition], pending: list[Pending], error: Any) -> None:
    """Send the alerts ``look`` decided, as each job's user, at most MAX_PARALLEL at once; record what was done.

    Each runs in a notifier.Notifier (the job's identity, a new session,
    killed with its processes when the sinks' budget runs out).  SIGTERM,
    SIGINT or SIGHUP to the pass stops what is still being sent.
    """
    from jobctl.runner.notifier import Notifier
    from jobctl.runner.process import Signals

    try:
        signals: Any = Signals()
    except ValueError:  # not the main thread: no handler can be set
        signals = _NoSignals()
    results: list[tuple[Pending, list[str]]] = []
    try:
        queue = list(pending)
        going: list[tuple[Pending, Notifier]] = []
        while queue or going:
            while queue and len(going) < MAX_PARALLEL and not signals.pending:
                item = queue.pop(0)
                started = _start(defs[item.job], item)
                if isinstance(started, str):
                    results.append((item, [started]))
                elif started is not None:
                    going.append((item, started))
            if not going:
                break
            item, notifier = going.pop(0)
            results.append((item, notifier.wait(signals, time.monotonic() if signals.pending else None)))
        for item in queue:  # a signal came before they started
            results.append((item, [f"{item.kind} alert not sent: the pass was stopped"]))
    finally:
        signals.restore()
    try:
        with log.write() as db:
            for item, lines in results:
                if lines:
                    db.executemany("UPDATE alerts SET detail = coalesce(detail, '') || ? WHERE job = ? AND kind = ?"
                                   " AND key = ?", [("; notify: " + "; ".join(lines), item.job, item.kind, key)
                                                    for key in item.keys])
    except Exception as exc:  # noqa: BLE001 - the alerts were sent; only the note of it is lost
        error("(catch-up)", f"what the alerts' notifications did is not recorded: {type(exc).__name__}: {exc}")


def _start(defn: Definition, item: Pending) -> Any:
    """The Notifier sending ``item``; None when the job's settings send nothing; a line saying why not."""
    from jobctl.runner import notify
    from jobctl.runner.notifier import Notifier
    from jobctl.runner.process import clean_environment, run_as

    cfg: dict[str, Any] = dict(defn["notify"] or {})
    if not notify.alert_wanted(cfg, item.kind):
        return None
    what = f"{item.kind} alert"
    try:
        who = run_as(defn)
    except LookupError as exc:
        return f"{what} not sent: {exc}"
    user, home, uid, gid = who
    env = clean_environment(defn, who)
    env["JOBCTL_JOB"] = defn["name"]
    shell = defn["shell"] or applied.DEFAULTS["shell"]

    def work() -> list[str]:
        return notify.alert(cfg, item.kind, item.job, item.detail, item.run, b"", env, shell, item.slots,
                            item.usual, item.elapsed)

    ids = (user, uid, gid) if uid != os.geteuid() else None
    try:
        return Notifier(work, ids, defn["working_dir"] or home, notify.alert_budget(cfg), what)
    except OSError as exc:
        return f"{what} failed: cannot start it: {exc}"

