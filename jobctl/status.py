"""Where every job stands: files vs applied vs crontab, last run, next run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import applied, crontab
from .spec import JobSpec
from .store import Store

FAILURES = ("failed", "timeout", "killed", "lost")


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


def consecutive_failures(log: Store | None, name: str) -> int:
    if log is None:
        return 0
    count = 0
    # Skipped runs neither break nor extend a failure streak.
    for (status,) in log.db.execute(
        "SELECT status FROM runs WHERE job = ? AND status NOT IN ('skipped', 'running') ORDER BY id DESC LIMIT 1000",
        (name,),
    ):
        if status not in FAILURES:
            break
        count += 1
    return count


def collect(jobs: list[JobSpec], state: str, entries: dict[str, crontab.Entry], log: Store | None,
            now: datetime) -> list[JobStatus]:
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
        nxt = job.schedule.next_runs(now)[0] if job.enabled and entry and not job.schedule.is_reboot else None
        out.append(JobStatus(job.name, job.description, job.schedule.text, descriptions[cron], nxt, state_,
                             log.latest(job.name) if log else None, consecutive_failures(log, job.name), fields))
    known = {j.name for j in jobs}
    for name in sorted(set(entries) - known):
        out.append(JobStatus(name, None, None, None, None, "orphaned", log.latest(name) if log else None,
                             consecutive_failures(log, name), []))
    return out
