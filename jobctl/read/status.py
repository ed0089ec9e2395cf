"""Where every job stands: files vs applied vs crontab, last run, next run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobctl import applied, baseline, paths
from jobctl.install import compile, crontab
from jobctl.jobs.spec import JobSpec
from jobctl.store import Store


@dataclass
class JobStatus:
    name: str
    description: str | None
    schedule: str | None
    schedule_description: str | None
    next_run: datetime | None
    #: ok | changed | edited | not applied | timer | orphaned | disabled (STATES)
    state: str
    last_run: Any  # the latest run row (a skip too) or None
    consecutive_failures: int
    changed_fields: list[str]
    paused: bool = False
    #: the latest scheduled run started more than a minute (plus jitter) late
    late: bool = False
    #: the latest scheduled minute has no run at all: the local dead-man's switch
    missed: bool = False
    timezone: str | None = None
    #: the latest run that started the job (not a skip), or None
    last_started_run: Any = None
    #: the jobs directory the job is defined in (its file's, or the one it was last applied from)
    jobs_dir: str | None = None
    #: shown from its applied definition: no job file for it in the jobs directory read
    from_applied: bool = False
    #: the statuses of the last RECENT runs, oldest first (a run once, by its last attempt; skips too)
    recent: list[str] = field(default_factory=list)
    #: the usual duration (jobctl.baseline): the median of the latest ``baseline.runs`` successful runs;
    #: None below ``baseline.min_runs`` of them
    usual_duration: float | None = None
    #: its spread: the median absolute deviation of the same runs (None with no usual duration)
    usual_mad: float | None = None
    #: how many successful runs the usual duration is taken over (so far, when fewer than min_runs)
    usual_runs: int = 0
    #: scheduled runs that never started, as the every-minute pass recorded them (one per slot)
    missed_runs: int = 0


STATES = ("ok", "changed", "edited", "not applied", "timer", "orphaned", "disabled")
#: how many runs the strip of `status` shows
RECENT = 10


def recent(log: Store | None, name: str) -> list[str]:
    """The statuses of the job's last RECENT runs, oldest first: one indexed statement a job.

    docs/benchmarks.md: status over 1,000 jobs stays flat in the size of the log.
    """
    if log is None:
        return []
    return [r[0] for r in reversed(log.recent(name, RECENT))]


def baseline_settings(defn: Any) -> dict[str, Any]:
    """The job's ``baseline`` settings as its applied definition has them, every key filled in.

    What the wrapper judges a run by: the applied definition (the
    defaults of jobctl.baseline without one, or when it has none).
    """
    cfg = defn.get("baseline") if isinstance(defn, dict) else None
    return baseline.settings(cfg if isinstance(cfg, dict) else None)


def usual(log: Store | None, name: str, cfg: dict[str, Any]) -> tuple[baseline.Usual | None, int]:
    """(the job's usual duration now, or None below min_runs; how many successful runs it is taken over).

    One indexed statement newest first: the latest ``runs`` successes, as
    the wrapper reads them (store.durations) to judge the run that ends next.
    """
    if log is None:
        return None, 0
    durations = log.durations(name, cfg["runs"])
    found = baseline.usual(durations, cfg)
    return found, found.n if found is not None else sum(1 for d in durations if d is not None and d >= 0)


def consecutive_failures(log: Store | None, name: str, latest: Any = None) -> int:
    # Skipped runs neither break nor extend a failure streak.
    return log.failure_streak(name, latest) if log is not None else 0


def last_started(log: Store | None, name: str, latest: Any = None) -> Any:
    """The latest run that started the job: skips (paused, forbid) are not results.

    ``latest``, the job's latest run when the caller has it: when that is
    not a skip it is the answer, without a second query.
    """
    if latest is not None and latest["status"] != "skipped":
        return latest
    return log.last_started(name) if log is not None else None


def lateness(job: JobSpec, state: str, log: Store | None, now: datetime,
             prev_runs: dict[tuple[str, str | None, int], datetime | None] | None = None) -> tuple[bool, bool]:
    """(late, missed) for the latest scheduled time that should have started by now.

    ``prev_runs`` caches the latest scheduled time by (schedule, zone, jitter)
    across the jobs of one call (the same ``now``): jobs share few schedules.
    """
    if log is None or job.schedule.is_reboot:
        return False, False
    grace = 60 + job.jitter
    key = (job.schedule.cron, job.timezone, job.jitter)
    if prev_runs is not None and key in prev_runs:
        scheduled = prev_runs[key]
    else:
        # the run the wrapper made (or should have) most recently, by cron(8)'s DST rules
        scheduled = job.schedule.prev_run(now - timedelta(seconds=grace), job.timezone)
        if prev_runs is not None:
            prev_runs[key] = scheduled
    if scheduled is None:
        return False, False
    ts = scheduled.timestamp()
    try:
        applied_at = os.stat(paths.applied_file(state, job.name)).st_mtime
    except FileNotFoundError:
        return False, False
    if ts < applied_at:
        return False, False  # not installed yet at that time
    started = log.first_start(job.name, ts - 1, ts + 60)
    if started is None:
        return False, True
    return started - ts > grace, False


def _installed_state(entry: crontab.Entry, current: dict | None, state: str, system: bool) -> str:
    """ok, or edited when the line in jobctl's block is not the one apply wrote for the applied definition."""
    if entry.tampered or (current is not None and entry.line != crontab.render_line(current, state, system)):
        return "edited"
    return "ok"


def collect(jobs: list[JobSpec], state: str, entries: dict[str, crontab.Entry], log: Store | None,
            now: datetime, system: bool = False, jobs_dir: str | None = None,
            dir_readable: bool = True) -> list[JobStatus]:
    """One row per job of the files, then per job only the crontab or a systemd timer has.

    A job installed from another jobs directory (or when ``jobs_dir`` could
    not be read) is shown from its applied definition, as cron runs it; one
    whose job file is gone from the directory it was applied from is
    ``orphaned``.
    """
    # the definitions here are read or compiled once and never changed: each is hashed once
    with compile.unchanged_definitions():
        return _collect(jobs, state, entries, log, now, system, jobs_dir, dir_readable)


def _collect(jobs: list[JobSpec], state: str, entries: dict[str, crontab.Entry], log: Store | None,
             now: datetime, system: bool, jobs_dir: str | None, dir_readable: bool) -> list[JobStatus]:
    from jobctl import pause
    from jobctl.jobs.schedule import describe

    read_cache: dict[str, dict | None] = {}

    def read(name: str) -> dict | None:
        """Each applied definition once per call: every row looks at it up to three times."""
        if name not in read_cache:
            read_cache[name] = applied.read(state, name)
        return read_cache[name]

    same: dict[str, bool] = {}

    def same_dir(came_from: str) -> bool:
        """Whether ``came_from`` is ``jobs_dir``: two realpath() per job otherwise, for one or two directories."""
        if came_from not in same:
            same[came_from] = applied.same_dir(came_from, jobs_dir)
        return same[came_from]

    descriptions: dict[str, str] = {}
    rows: list[tuple[JobSpec, str, list[str], bool]] = []
    applied_elsewhere: set[str] = set()
    for job in sorted(jobs, key=lambda j: j.name):
        defn = compile.definition(job)
        entry = entries.get(job.name)
        current = read(job.name)
        came_from = applied.jobs_dir_of(current)
        if entry is not None and came_from and jobs_dir and not same_dir(came_from):
            # cron runs what was applied from the other directory, not this copy: show that
            applied_elsewhere.add(job.name)
            continue
        fields: list[str] = []
        if not job.enabled:
            state_ = "changed" if entry else "disabled"
            fields = ["enabled"] if entry else []
        elif entry is None:
            state_ = "timer" if applied.SYSTEMD in applied.recorded_for(current) else "not applied"
        else:
            fields = applied.differs(current, defn)
            if not fields and entry.hash != compile.definition_hash(defn):
                fields = ["(crontab line)"]
            edited = entry.tampered or (current is not None and entry.hash == compile.definition_hash(current)
                                        and _installed_state(entry, current, state, system) == "edited")
            state_ = "edited" if edited else "changed" if fields else "ok"
        rows.append((job, state_, fields, False))

    known = {j.name for j in jobs} - applied_elsewhere
    others = {n for n in entries if not n.startswith("_")}
    others |= {n for n in applied.names(state) if applied.SYSTEMD in applied.recorded_for(read(n))}
    orphans: list[str] = []
    for name in sorted(others - known):
        current = read(name)
        came_from = applied.jobs_dir_of(current)
        elsewhere = not dir_readable or (came_from is not None and jobs_dir is not None
                                         and not same_dir(came_from))
        shown = compile.to_spec(current) if current is not None and elsewhere else None
        if current is None or shown is None:
            orphans.append(name)
            continue
        entry = entries.get(name)
        if entry is None:
            state_ = "timer"
        elif entry.hash != compile.definition_hash(current):
            state_ = "changed"
        else:
            state_ = _installed_state(entry, current, state, system)
        rows.append((shown, state_, [], True))

    out: list[JobStatus] = []
    # one statement for every job: the alerts table holds a row per missed slot
    missed_runs = log.alert_counts("missed") if log is not None else {}

    def baselined(s: JobStatus) -> JobStatus:
        found, n = usual(log, s.name, baseline_settings(read(s.name)))
        if found is not None:
            s.usual_duration, s.usual_mad = found.median, found.mad
        s.usual_runs, s.missed_runs = n, missed_runs.get(s.name, 0)
        return s

    # next and latest runs once per distinct schedule and zone: 1,000 jobs share a handful
    next_runs: dict[tuple[str, str | None], datetime] = {}
    prev_runs: dict[tuple[str, str | None, int], datetime | None] = {}
    here = os.path.abspath(jobs_dir) if jobs_dir else None
    for job, state_, fields, from_applied in rows:
        cron = job.schedule.cron
        if cron not in descriptions:
            descriptions[cron] = describe(cron)
        installed = job.enabled and state_ not in ("not applied", "disabled") and not job.schedule.is_reboot
        nxt = None
        if installed:
            key = (cron, job.timezone)
            if key not in next_runs:
                # the wrapper's own decision (clock.due's rules), in the job's zone or cron's
                next_runs[key] = job.schedule.next_runs(now, 1, job.timezone)[0]
            nxt = next_runs[key]
        paused = pause.is_paused(state, job.name)
        late, missed = lateness(job, state, log, now, prev_runs) if installed and not paused else (False, False)
        where = applied.jobs_dir_of(read(job.name)) if from_applied else here
        latest = log.latest(job.name) if log else None
        out.append(baselined(JobStatus(
            job.name, job.description, job.schedule.text, descriptions[cron], nxt, state_, latest,
            consecutive_failures(log, job.name, latest), fields, paused, late, missed, job.timezone,
            last_started(log, job.name, latest), where, from_applied, recent(log, job.name))))
    for name in orphans:
        latest = log.latest(name) if log else None
        out.append(baselined(JobStatus(name, None, None, None, None, "orphaned", latest,
                                       consecutive_failures(log, name, latest), [], pause.is_paused(state, name),
                                       last_started_run=last_started(log, name, latest),
                                       jobs_dir=applied.jobs_dir_of(read(name)), recent=recent(log, name))))
    out.sort(key=lambda s: (s.state == "orphaned", s.name))
    return out
