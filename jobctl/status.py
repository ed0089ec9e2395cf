"""Where every job stands: files vs applied vs crontab, last run, next run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import applied, crontab, paths
from .spec import JobSpec
from .store import Store


@dataclass
class JobStatus:
    name: str
    description: str | None
    schedule: str | None
    schedule_description: str | None
    next_run: datetime | None
    state: str  # ok | changed | not applied | orphaned | disabled
    last_run: Any  # a run row or None
    consecutive_failures: int
    changed_fields: list[str]
    paused: bool = False
    #: the latest scheduled run started more than a minute (plus jitter) late
    late: bool = False
    #: the latest scheduled minute has no run at all: the local dead-man's switch
    missed: bool = False
    timezone: str | None = None


def consecutive_failures(log: Store | None, name: str) -> int:
    # Skipped runs neither break nor extend a failure streak.
    return log.failure_streak(name) if log is not None else 0


def lateness(job: JobSpec, state: str, log: Store | None, now: datetime) -> tuple[bool, bool]:
    """(late, missed) for the latest scheduled time that should have started by now."""
    if log is None or job.schedule.is_reboot:
        return False, False
    grace = 60 + job.jitter
    # the run the wrapper made (or should have) most recently, by cron(8)'s DST rules
    scheduled = job.schedule.prev_run(now - timedelta(seconds=grace), job.timezone)
    if scheduled is None:
        return False, False
    ts = scheduled.timestamp()
    try:
        applied_at = os.stat(paths.applied_file(state, job.name)).st_mtime
    except FileNotFoundError:
        return False, False
    if ts < applied_at:
        return False, False  # not installed yet at that time
    row = log.db.execute("SELECT min(started_at) FROM runs WHERE job = ? AND scheduled_for >= ? AND scheduled_for < ?",
                         (job.name, ts - 1, ts + 60)).fetchone()
    if row is None or row[0] is None:
        return False, True
    return row[0] - ts > grace, False


def collect(jobs: list[JobSpec], state: str, entries: dict[str, crontab.Entry], log: Store | None,
            now: datetime) -> list[JobStatus]:
    from . import pause
    from .schedule import describe

    out: list[JobStatus] = []
    descriptions: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: j.name):
        defn = job.to_applied()
        entry = entries.get(job.name)
        fields: list[str] = []
        if not job.enabled:
            state_ = "changed" if entry else "disabled"
            fields = ["enabled"] if entry else []
        elif entry is None:
            state_ = "not applied"
        else:
            fields = applied.differs(applied.read(state, job.name), defn)
            if entry.hash != crontab.definition_hash(defn) and not fields:
                fields = ["(crontab line)"]
            state_ = "changed" if fields else "ok"
        cron = job.schedule.cron
        if cron not in descriptions:
            descriptions[cron] = describe(cron)
        installed = job.enabled and entry is not None and not job.schedule.is_reboot
        # the wrapper's own decision (clock.due's rules), in the job's zone or cron's
        nxt = job.schedule.next_runs(now, 1, job.timezone)[0] if installed else None
        paused = pause.is_paused(state, job.name)
        late, missed = lateness(job, state, log, now) if installed and not paused else (False, False)
        out.append(JobStatus(job.name, job.description, job.schedule.text, descriptions[cron], nxt, state_,
                             log.latest(job.name) if log else None, consecutive_failures(log, job.name), fields,
                             paused, late, missed, job.timezone))
    known = {j.name for j in jobs}
    for name in sorted(n for n in set(entries) - known if not n.startswith("_")):
        out.append(JobStatus(name, None, None, None, None, "orphaned", log.latest(name) if log else None,
                             consecutive_failures(log, name), [], pause.is_paused(state, name)))
    return out
