"""`jobctl show` and `jobctl why`: one job's effective definition, and why it ran or did not at a time.

``show`` puts together what the other read commands know of one job: the
definition with every default filled in and where each key came from (the
job file, ``_defaults.yaml`` or jobctl's default), the line in the crontab,
how the job file differs from what was applied (status's states) and the next
runs in the job's zone and the server's.

``why`` answers for one minute, the way cron and the wrapper decided it: a
run recorded for it (ran, or skipped: paused, or the lock held by another
run), else whether the schedule was due then (read in the job's zone with
cron(8)'s DST rules, clock.py), whether the line was installed then (the
applied definition's time and the crontab backups apply keeps), whether the
job was paused, whether cron ran at all (other jobctl jobs due in that minute
and what they recorded; the daemon now, from /proc), whether the catch-up
window covered it and whether the crontab line drifted from the applied
definition.  The verdict comes first, then the evidence that led to it.

Nothing here prints: the CLI renders a ``Shown`` or a ``Why``
(read/explain_render.py), as text or the documented JSON.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from jobctl import applied, baseline, clock, paths, units
from jobctl.errors import ExitCode, JobctlError, UnknownJob
from jobctl.install import compile, crontab
from jobctl.jobs import schedule as schedule_mod
from jobctl.jobs import spec
from jobctl.jobs.spec import JobSpec
from jobctl.store import Store, iso

MINUTE = timedelta(minutes=1)
#: the years --at accepts: the run log's times start at the epoch, and a day either side of a year
#: datetime can hold must stay computable in any zone
FIRST_YEAR, LAST_YEAR = 1970, 9998
#: how many next runs `show` lists
NEXT_RUNS = 5
#: the keys whose values are durations in seconds (shown as job files write them)
DURATION_KEYS = ("timeout", "kill_grace", "jitter", "catch_up")
#: lines of jobctl-errors.log `why` reads back, at most (the file is only appended to)
ERRORS_TAIL_BYTES = 256 * 1024
#: a crontab backup larger than this is not read (apply writes what crontab -l gave it)
BACKUP_MAX_BYTES = 4 * 1024 * 1024

#: the reason codes of `why` (the ``reason`` field of --json), in the order the checks run
REASONS = (
    "ran",               # a run was recorded for the minute (running, succeeded, failed, ...)
    "paused",            # recorded as skipped because the job was paused, or paused then with nothing recorded
    "skipped-lock",      # recorded as skipped: another run of the job held its lock (concurrency forbid/replace)
    "skipped",           # recorded as skipped for another reason
    "dst-skipped",       # the wall time asked did not exist (spring-forward): cron's rule for it
    "dst-doubled",       # the wall time happened twice (fall-back): cron's rule for it
    "not-due",           # the schedule, read in the job's zone, was not due at that minute
    "future",            # the minute has not come yet
    "not-installed",     # no line for the job in the crontab at that time
    "pending",           # under a minute (plus jitter) ago: cron may still be starting it
    "outside-catch-up",  # missed while cron did not run, and the catch_up window closed before it ran again
    "cron-not-running",  # no jobctl job was started by cron in that minute while others were due
    "drifted",           # the installed line is not the one apply wrote for the applied definition
    "not-recorded",      # due and installed, cron ran, yet nothing was recorded (see jobctl-errors.log)
    "reboot",            # an @reboot job has no times to ask about
)


class BadTime(JobctlError):
    """A --at that is not a time: a usage error (exit 2), one line."""

    code = ExitCode.USAGE


# --- times ----------------------------------------------------------------------------------------

@dataclass
class Moment:
    """What ``--at`` asked: an instant (aware, UTC, on the minute) or a wall time in the job's zone."""

    text: str | None
    instant: datetime | None = None
    #: a time written without an offset: read in the job's zone, like its schedule (naive, on the minute)
    wall: datetime | None = None


def parse_at(text: str, now: datetime) -> Moment:
    """``--at``: a duration ago (``90m``, ``2h``, ``1d``, as history --since), or an ISO 8601 date or time.

    With an offset (``Z``, ``+02:00``) the time is that instant; without
    one it is a wall time in the job's zone (the zone its schedule is read
    in, the system's when it has none), kept as written so that a time a DST
    change skipped or repeated can be explained as such.
    """
    raw = text.strip()
    if not raw:
        raise BadTime("--at: give a time: a duration ago (2h, 1d) or an ISO 8601 date/time (2026-11-01T08:00)")
    try:
        ago = units.parse_duration(raw)
    except ValueError:
        pass
    else:
        try:
            at = _minute(now.astimezone(timezone.utc) - timedelta(seconds=ago))
        except (OverflowError, ValueError):
            at = None
        if at is None or at.year < FIRST_YEAR:
            raise BadTime(f"--at: {raw!r} is too long ago; give a time from {FIRST_YEAR} on") from None
        return Moment(text, at)
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise BadTime(f"--at: {units.show(raw)} is neither a duration ago (90m, 2h, 1d) nor an ISO 8601 date/time "
                      "(2026-11-01, 2026-11-01T08:00, 2026-11-01T08:00Z)") from None
    if not FIRST_YEAR <= at.year <= LAST_YEAR:
        raise BadTime(f"--at: {raw!r} is out of range; give a time from {FIRST_YEAR} to {LAST_YEAR}")
    if at.tzinfo is None:
        return Moment(text, wall=at.replace(second=0, microsecond=0))
    return Moment(text, _minute(at.astimezone(timezone.utc)))


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


@dataclass
class Transition:
    """A change of a zone's UTC offset: when, and the offsets and names on either side."""

    at: datetime  # aware UTC, the first second of the new offset
    before: timedelta
    after: timedelta
    name_before: str
    name_after: str

    @property
    def forward(self) -> bool:
        return self.after > self.before

    def describe(self, zone_label: str) -> str:
        wall_old = (self.at + self.before).strftime("%H:%M")
        wall_new = (self.at + self.after).strftime("%H:%M")
        verb = "jumped forward" if self.forward else "went back"
        return (f"in {zone_label} on {(self.at + self.before).strftime('%Y-%m-%d')} clocks {verb} at "
                f"{self.at.strftime('%H:%M')} UTC from {wall_old} {self.name_before} ({_utc_offset(self.before)}) "
                f"to {wall_new} {self.name_after} ({_utc_offset(self.after)})")


def _utc_offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def transition_near(u: datetime, zone: Any) -> Transition | None:
    """The offset change of ``zone`` within a day of ``u``, to the second; None when there is none."""
    lo, hi = u - timedelta(days=1), u + timedelta(days=1)
    before, after = clock.offset(lo, zone), clock.offset(hi, zone)
    if before == after:
        return None
    while (hi - lo).total_seconds() > 1:
        mid = lo + (hi - lo) / 2
        if clock.offset(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    hi = hi.replace(microsecond=0)
    return Transition(hi, before, after, clock.aware(lo, zone).tzname() or "", clock.aware(hi, zone).tzname() or "")


def in_zone(u: datetime, zone: Any) -> str:
    """``2026-03-29 03:00 CEST`` (the zone's abbreviation, or its offset where it has none)."""
    a = clock.aware(u, zone)
    name = a.tzname() or ""
    if not name or name[0] in "+-":
        name = _utc_offset(a.utcoffset() or timedelta(0))
    return f"{a.strftime('%Y-%m-%d %H:%M')} {name}"


def utc(u: datetime | float | None) -> str:
    """``2026-03-29 01:00:05 UTC``: times of runs, exact to the second."""
    if u is None:
        return "-"
    ts = u.timestamp() if isinstance(u, datetime) else u
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def zone_label(name: str | None) -> str:
    if name:
        return name
    return f"the server's zone ({time.tzname[0]})" if time.tzname[0] else "the server's zone"


def ago(seconds: float) -> str:
    """``12 min ago`` / ``in 4 min`` style, for an offset from now in seconds (negative: in the past)."""
    span = abs(seconds)
    text = (f"{int(span)} s" if span < 60 else f"{int(span // 60)} min" if span < 3600
            else f"{span / 3600:.1f} h" if span < 86400 else f"{span / 86400:.1f} days")
    return f"{text} ago" if seconds < 0 else f"in {text}"


# --- the job as it stands -------------------------------------------------------------------------

@dataclass
class Context:
    """What the read commands gathered: the job files, the state, the crontab and the run log."""

    state: str
    jobs: list[JobSpec]
    directory: str
    readable: bool
    entries: dict[str, crontab.Entry]
    log: Store | None
    now: datetime
    system: bool = False
    target_label: str = ""
    #: the jobs directory's _defaults.yaml, when it has one
    defaults_path: str | None = None


@dataclass
class Subject:
    name: str
    #: the job as cron runs it: from the applied definition when there is one, else from its file
    job: JobSpec
    #: the job as its file says, or None (no file in the jobs directory read)
    file_job: JobSpec | None
    #: the applied definition, or None (never applied, or removed)
    applied: dict[str, Any] | None
    entry: crontab.Entry | None


def subject(ctx: Context, name: str) -> Subject:
    """NAME from the job files and the applied definitions; UnknownJob (exit 1) naming the closest otherwise."""
    if not spec.NAME_RE.match(name):
        raise UnknownJob(f"{name!r} is not a job name (lowercase letters, digits, '_', '.', '-')")
    file_job = next((j for j in ctx.jobs if j.name == name), None)
    defn = applied.read(ctx.state, name)
    from_applied = compile.to_spec(defn) if defn is not None else None
    job = from_applied or file_job
    if job is None and name in ctx.entries:
        raise UnknownJob(f"{name} has a line in {ctx.target_label} but neither a job file in {ctx.directory} nor a "
                         "usable applied definition (orphaned: jobctl status shows it, jobctl apply removes the line)")
    if job is None:
        known = [j.name for j in ctx.jobs] + applied.names(ctx.state) + \
            [n for n in ctx.entries if not n.startswith("_")]
        where = ctx.directory if ctx.readable else "the applied jobs"
        from difflib import get_close_matches

        names = sorted(set(known))
        close = get_close_matches(name, names, n=1)
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more (jobctl status)" if len(names) > 10 else "")
        hint = f"; did you mean {close[0]!r}?" if close else (f"; jobs: {listed}" if names else "")
        raise UnknownJob(f"no job named {name!r} in {where} or the crontab{hint}")
    return Subject(name, job, file_job, defn, ctx.entries.get(name))


def applied_at(state: str, name: str) -> float | None:
    """When the applied definition was written (what status and the catch-up pass read as "applied at")."""
    ns = applied.mtime(state, name)
    return ns / 1e9 if ns is not None else None


def paused_since(state: str, name: str) -> tuple[float, str] | None:
    """(since when, the flag's own line) for a paused job; None when it is not paused."""
    path = paths.paused_file(state, name)
    try:
        st = os.stat(path)
    except OSError:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            note = fh.read(200).strip().splitlines()[0] if st.st_size else ""
    except (OSError, IndexError):
        note = ""
    return st.st_mtime, note


def drift(sub: Subject, state: str, system: bool) -> str | None:
    """How the installed line differs from the one apply wrote for the applied definition; None when it does not."""
    entry, defn = sub.entry, sub.applied
    if entry is None or defn is None:
        return None
    if entry.lines != 1:
        return f"the crontab holds {entry.lines} lines marked for {sub.name} (copied by hand): cron runs each"
    if entry.runs != 1:
        return (f"{entry.runs} lines in jobctl's block run {sub.name}: a line was edited to run another job, "
                "or another job's line to run this one")
    want = compile.definition_hash(defn)
    if entry.hash != want:
        if entry.hash.endswith(crontab.OLDER_FORM):
            return None  # an older release's line: runs the same definition (status shows it as changed)
        return f"the installed line carries hash {entry.hash}, the applied definition has {want}"
    try:
        line = crontab.render_line(defn, state, system)
    except (JobctlError, KeyError, TypeError, ValueError):
        return None
    if entry.line != line:
        return "the installed line was edited by hand: it is not the line apply wrote for the applied definition"
    return None


# --- show -----------------------------------------------------------------------------------------

@dataclass
class Origin:
    """Where a key's value comes from."""

    #: "job file", "defaults" (_defaults.yaml), "file name" (name), "default" (jobctl's), "applied definition"
    source: str
    path: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.source == "file name":
            return f"the name of {self.path}" if self.path else "the file name"
        if self.source == "applied definition":
            return "applied definition"
        if self.path and self.line:
            return f"{self.path}:{self.line}"
        return "default" if self.source == "default" else self.path or self.source


#: (path, the line a job's mapping starts on, or None for _defaults.yaml) -> {key: (line, column)}; keys of env
#: as "env.NAME".  The CLI gives one reading YAML (yaml stays in jobs/ and cli/); {} when it cannot tell.
Locate = Callable[[str, "int | None"], dict[str, tuple[int, int]]]


@dataclass
class Shown:
    name: str
    #: "job file" or "applied definition" (no job file for it in the jobs directory read)
    shown_from: str
    source: str
    #: every job-file key with its effective value, as the applied definition holds it (seconds, bytes)
    definition: dict[str, Any]
    origins: dict[str, Origin]
    schedule_text: str
    cron: str
    description: str
    timezone: str | None
    state: str
    changed: list[str]
    #: (key, applied value, job file value) for each key that differs
    differences: list[tuple[str, Any, Any]]
    target: str
    line: str | None
    installed_hash: str | None
    applied_hash: str | None
    applied_at: float | None
    drift: str | None
    paused: tuple[float, str] | None
    next_runs: list[datetime] = field(default_factory=list)


def _values(job: JobSpec) -> dict[str, Any]:
    """The job-file keys of a job with its effective values (compile.definition's shape)."""
    defn = compile.definition(job)
    return {key: defn.get(key) for key in spec.KEYS}


def _origins(job: JobSpec, ctx: Context, locate: Locate | None, shown_from: str) -> dict[str, Origin]:
    path, _, line = job.source.rpartition(":")
    if shown_from != "job file" or not path or not line.isdigit():
        return {key: Origin("applied definition", job.source or None) for key in spec.KEYS}
    mine = locate(path, int(line)) if locate else {}
    defaults = locate(ctx.defaults_path, None) if locate and ctx.defaults_path else {}
    out: dict[str, Origin] = {}
    for key in spec.KEYS:
        if key in mine:
            out[key] = Origin("job file", path, *mine[key])
        elif key in defaults and ctx.defaults_path:
            out[key] = Origin("defaults", ctx.defaults_path, *defaults[key])
        elif key == "name":
            out[key] = Origin("file name", path, int(line), 1)
        else:
            out[key] = Origin("default")
    for var in job.env:
        k = f"env.{var}"
        if k in mine:
            out[k] = Origin("job file", path, *mine[k])
        elif k in defaults and ctx.defaults_path:
            out[k] = Origin("defaults", ctx.defaults_path, *defaults[k])
    return out


def show(ctx: Context, name: str, locate: Locate | None = None) -> Shown:
    """Everything `jobctl show NAME` prints."""
    from jobctl.read import status as status_mod

    sub = subject(ctx, name)
    job = sub.file_job or sub.job
    shown_from = "job file" if sub.file_job is not None else "applied definition"
    # status's states for this job alone: its file (if any) and its crontab entry (if any)
    rows = status_mod.collect([j for j in ctx.jobs if j.name == name], ctx.state,
                              {name: sub.entry} if sub.entry is not None else {}, ctx.log, ctx.now, ctx.system,
                              ctx.directory, ctx.readable)
    row = next((r for r in rows if r.name == name), None)
    state = row.state if row is not None else ("not applied" if sub.entry is None else "ok")
    differences: list[tuple[str, Any, Any]] = []
    if sub.file_job is not None and sub.applied is not None:
        mine = compile.definition(sub.file_job)
        keys = applied.differs(sub.applied, mine)
        if "cron" in keys or "schedule" in keys:
            keys = [k for k in keys if k != "fields"]
        differences = [(k, sub.applied.get(k), mine.get(k)) for k in keys]
    nxt: list[datetime] = []
    if not job.schedule.is_reboot and job.enabled:
        nxt = [t.astimezone(timezone.utc) for t in job.schedule.next_runs(ctx.now, NEXT_RUNS, job.timezone)]
    return Shown(
        name=name, shown_from=shown_from, source=job.source, definition=_values(job),
        origins=_origins(job, ctx, locate, shown_from), schedule_text=job.schedule.text, cron=job.schedule.cron,
        description=job.schedule.describe(), timezone=job.timezone, state=state,
        changed=list(row.changed_fields) if row is not None else [], differences=differences,
        target=ctx.target_label, line=sub.entry.line if sub.entry else None,
        installed_hash=sub.entry.hash if sub.entry else None,
        applied_hash=compile.definition_hash(sub.applied) if sub.applied is not None else None,
        applied_at=applied_at(ctx.state, name), drift=drift(sub, ctx.state, ctx.system),
        paused=paused_since(ctx.state, name), next_runs=nxt,
    )


#: what a key left unset means, where its value is none
UNSET = {"working_dir": "the job user's home", "timeout": "none", "user": "the invoking user; root with --system",
         "timezone": "the server's", "catch_up": "none: missed runs are not made up", "notify": "none",
         "description": "none", "lock_group": "none: only the job's own lock",
         "baseline": ", ".join(f"{k} {v:g}" for k, v in baseline.DEFAULT.items())}


def format_value(key: str, value: Any) -> str:
    """A definition value as a job file would write it: 1800 -> 30m, 1048576 -> 1MiB."""
    import json

    if value is None:
        return f"- ({UNSET[key]})" if key in UNSET else "-"
    if key in DURATION_KEYS and isinstance(value, (int, float)):
        return units.format_duration(value)
    if key == "output_limit" and isinstance(value, int):
        return units.format_size(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "retries" and isinstance(value, dict):
        return (f"attempts {value.get('attempts')}, delay {units.format_duration(value.get('delay') or 0)}, "
                f"backoff {value.get('backoff')}, max_delay {units.format_duration(value.get('max_delay') or 0)}")
    if key == "history" and isinstance(value, dict):
        return f"keep {value.get('keep')}, max_age {units.format_duration(value.get('max_age') or 0)}"
    if key == "notify" and isinstance(value, dict):
        parts = [f"when {', '.join(value.get('when') or [])}", f"after_failures {value.get('after_failures')}"]
        for sink in spec.NOTIFY_SINKS:
            v = value.get(sink)
            if v:
                parts.append(f"{sink} {', '.join(v) if isinstance(v, list) else v}")
        return "; ".join(parts)
    if key == "baseline" and isinstance(value, dict):
        return ", ".join(f"{k} {value.get(k)}" for k in ("min_runs", "runs", "slow", "short"))
    if key == "requires" and isinstance(value, list) and all(isinstance(r, dict) for r in value):
        return "; ".join(f"{r.get('job')} {r.get('status') or 'succeeded'}"
                         + (f" within {units.format_duration(r['within'])}" if r.get("within") else "")
                         for r in value) or "- (none)"
    if key in ("then", "on_failure") and isinstance(value, list):
        return ", ".join(map(str, value)) or "- (none)"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- why ------------------------------------------------------------------------------------------

@dataclass
class Why:
    job: str
    zone: str | None
    #: the minute examined (aware UTC); None for an @reboot job or a wall time that never happened
    at: datetime | None
    #: the wall time asked (--at without an offset), in the job's zone
    wall: datetime | None
    verdict: str
    reason: str
    due: bool
    ran: bool
    #: the rows recorded for the minute (attempts and skips), oldest first
    runs: list[Any] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


@dataclass
class _Finding:
    verdict: str
    reason: str
    due: bool
    ran: bool = False
    runs: list[Any] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    #: the verdict without "NAME was due at WHEN": what a DST verdict that wraps it says after its own words
    short: str = ""

    def __post_init__(self) -> None:
        self.short = self.short or self.verdict


def _due(name: str, when: str, tail: str, reason: str, due: bool = True, ran: bool = False,
         runs: list[Any] | None = None, evidence: list[str] | None = None) -> _Finding:
    """A finding about a minute the job was due at: "NAME was due at WHEN" and ``tail`` ("and ran ...", "but ...")."""
    return _Finding(f"{name} was due at {when} {tail}", reason, due, ran, runs or [], evidence or [],
                    re.sub(r"^(?:and|but) ", "", tail))


_HOLDER = re.compile(r"(?:previous run|run) (\d+|\?) (?:still running|could not be replaced)")


def default_moment(sub: Subject, log: Store | None, now: datetime) -> datetime | None:
    """The latest scheduled minute, or the one before it while the latest is under a minute (plus jitter) old
    and has nothing recorded yet: cron may still be starting it."""
    f = schedule_mod.compile_fields(sub.job.schedule.cron)
    if f is None:
        return None
    zone = sub.job.timezone
    latest = clock.prev_run(f, zone, now)
    if latest is None:
        return None
    latest = latest.astimezone(timezone.utc)
    recent = (now - latest).total_seconds() < 60 + sub.job.jitter
    if recent and not (log and log.scheduled_runs(sub.name, latest.timestamp(), latest.timestamp() + 60)):
        before = clock.prev_run(f, zone, latest - MINUTE)
        if before is not None:
            return before.astimezone(timezone.utc)
    return latest


def why(ctx: Context, name: str, asked: Moment | None) -> Why:
    """Everything `jobctl why NAME [--at TIME]` prints: the verdict, its reason code and the evidence."""
    sub = subject(ctx, name)
    job = sub.job
    zone_name = job.timezone
    zone = clock.zone_of(zone_name)
    label = zone_label(zone_name)
    f = schedule_mod.compile_fields(job.schedule.cron)
    head: list[str] = []
    if sub.applied is None:
        head.append(f"{name} is not applied: the job file's schedule is read (jobctl apply installs it)")
    elif sub.file_job is not None and (sub.file_job.schedule.cron, sub.file_job.timezone) != \
            (job.schedule.cron, job.timezone):
        head.append(f"the job file now says {sub.file_job.schedule.text!r}"
                    f"{' in ' + sub.file_job.timezone if sub.file_job.timezone else ''}; cron runs the applied "
                    f"{job.schedule.text!r} until jobctl apply")
    if f is None:
        last = None
        if ctx.log is not None:
            last = next((r for r in ctx.log.history(name, 50) if r["trigger"] == "schedule"), None)
        ev = head + [f"schedule {job.schedule.text}: runs once each time cron starts (at boot), never at a minute"]
        if last is not None:
            ev.append(f"its latest run started by cron: run {last['id']} at {utc(last['started_at'])}, "
                      f"{last['status']}")
        return Why(name, zone_name, None, None, f"{name} runs only when cron starts (@reboot): there is no "
                   "scheduled time to explain", "reboot", False, False, [last] if last is not None else [], ev)

    sched = f"schedule {job.schedule.text!r} ({job.schedule.describe()}), read in {label}"
    if asked is None:
        at = default_moment(sub, ctx.log, ctx.now)
        if at is None:
            raise JobctlError(f"{name} has no scheduled time before now; give one with --at", ExitCode.USAGE)
        head.append(f"no --at: the latest scheduled time, {when_of(at, zone_name)}")
        return _why_at(ctx, sub, at, None, head + [sched])
    if asked.instant is not None:
        return _why_at(ctx, sub, asked.instant, None, head + [sched])

    # a wall time: where a DST change skipped or repeated it, that is the first thing to say
    wall = asked.wall
    assert wall is not None
    real = clock.instants(wall, zone)
    shown = wall.strftime("%Y-%m-%d %H:%M")
    if not real:
        return _why_gap(ctx, sub, wall, head + [sched])
    if len(real) == 2:
        return _why_fold(ctx, sub, wall, real, head + [sched])
    out = _why_at(ctx, sub, real[0], wall, head + [sched])
    out.evidence.insert(len(head), f"--at {shown} read in {label}: {when_of(real[0], zone_name)}")
    return out


def _why_gap(ctx: Context, sub: Subject, wall: datetime, evidence: list[str]) -> Why:
    """A wall time a spring-forward jump skipped: cron's rule for it, then what happened at the jump."""
    job, zone_name = sub.job, sub.job.timezone
    zone = clock.zone_of(zone_name)
    f = schedule_mod.compile_fields(job.schedule.cron)
    assert f is not None
    shown = wall.strftime("%Y-%m-%d %H:%M")
    label = zone_label(zone_name)
    probe = wall.replace(tzinfo=timezone.utc) - clock.offset(wall.replace(tzinfo=timezone.utc), zone)
    tr = transition_near(probe, zone)
    evidence = evidence + [f"{shown} did not exist: " + (tr.describe(label) if tr else f"a gap in {label}")]
    if not clock.matches(f, wall):
        nearest = _nearest(f, zone_name, probe)
        return Why(sub.name, zone_name, None, wall, f"{sub.name} was not due at {shown} ({label}), a time that did "
                   f"not exist there", "not-due", False, False, [], evidence + nearest)
    runs_at = clock.runs_for(f, wall, zone)
    if not runs_at:
        evidence.append("cron's rule: a job with * in its minute or hour field follows the wall clock, so a time "
                        "the jump skipped gets no run")
        return Why(sub.name, zone_name, None, wall, f"{sub.name} did not run for {shown} ({label}): that time did "
                   "not exist (DST), and cron makes no run for a skipped time of a job with * in its minute or "
                   "hour field", "dst-skipped", False, False, [], evidence)
    at = runs_at[0]
    evidence.append(f"cron's rule: each time of a fixed-time job that the jump skipped runs right after the jump, "
                    f"once: at {in_zone(at, zone)} ({utc(at)})")
    inner = _find(ctx, sub, at)
    verdict = (f"{sub.name} had no {shown} ({label}): DST skipped it; cron runs it right after the jump, at "
               f"{in_zone(at, zone)}: {inner.short}")
    return Why(sub.name, zone_name, at, wall, verdict, "dst-skipped", True, inner.ran, inner.runs,
               evidence + _beyond_dst(inner.evidence))


def _why_fold(ctx: Context, sub: Subject, wall: datetime, real: list[datetime], evidence: list[str]) -> Why:
    """A wall time a fall-back change repeated: which pass cron ran it at, and what happened then."""
    job, zone_name = sub.job, sub.job.timezone
    zone = clock.zone_of(zone_name)
    f = schedule_mod.compile_fields(job.schedule.cron)
    assert f is not None
    shown = wall.strftime("%Y-%m-%d %H:%M")
    label = zone_label(zone_name)
    tr = transition_near(real[0], zone)
    evidence = evidence + [f"{shown} happened twice, at {in_zone(real[0], zone)} ({utc(real[0])}) and at "
                           f"{in_zone(real[1], zone)} ({utc(real[1])}): " + (tr.describe(label) if tr else "")]
    if not clock.matches(f, wall):
        return Why(sub.name, zone_name, real[0], wall, f"{sub.name} was not due at {shown} ({label}) at either "
                   "pass", "not-due", False, False, [], evidence + _nearest(f, zone_name, real[0]))
    passes = clock.runs_for(f, wall, zone)
    if f["fixed"]:
        evidence.append("cron's rule: in a repeated hour a fixed-time job runs once, at the first pass; at the "
                        "second cron waits until the clock passes where it was")
    else:
        evidence.append("cron's rule: a job with * in its minute or hour field follows the wall clock, so it "
                        "runs at both passes")
    findings = [(u, _find(ctx, sub, u)) for u in passes]
    runs = [r for _, found in findings for r in found.runs]
    for u, found in findings:
        evidence.append(f"at {in_zone(u, zone)}: {found.short}")
        evidence.extend(_beyond_dst(found.evidence))
    which = "once, at the first pass" if len(passes) == 1 else "at both passes"
    verdict = (f"{sub.name} at {shown} ({label}), a time DST repeated: cron runs it {which}: "
               + "; ".join(f"at {in_zone(u, zone)}: {found.short}" for u, found in findings))
    return Why(sub.name, zone_name, passes[0] if passes else real[0], wall, verdict, "dst-doubled", True,
               any(found.ran for _, found in findings), runs, evidence)


def _beyond_dst(evidence: list[str]) -> list[str]:
    """The evidence of a minute a DST verdict already explained, without its DST lines (said once, above)."""
    return [e for e in evidence if not e.startswith("due at ") and " happened twice that day (DST)" not in e]


def _why_at(ctx: Context, sub: Subject, at: datetime, wall: datetime | None, evidence: list[str]) -> Why:
    found = _find(ctx, sub, at)
    return Why(sub.name, sub.job.timezone, at, wall, found.verdict, found.reason, found.due, found.ran, found.runs,
               evidence + found.evidence)


def _nearest(f: dict, zone_name: str | None, at: datetime) -> list[str]:
    prev = clock.prev_run(f, zone_name, at - MINUTE)
    nxt = clock.next_runs(f, zone_name, at, 1)
    out = []
    if prev is not None:
        out.append(f"it was last due before that at {when_of(prev, zone_name)}")
    if nxt:
        out.append(f"it was next due after that at {when_of(nxt[0], zone_name)}")
    return out


def _find(ctx: Context, sub: Subject, at: datetime) -> _Finding:
    """The verdict for one minute (aware): the run log first, then the schedule, the crontab, pause and cron."""
    job, name = sub.job, sub.name
    zone_name = job.timezone
    zone = clock.zone_of(zone_name)
    f = schedule_mod.compile_fields(job.schedule.cron)
    assert f is not None
    at = _minute(at.astimezone(timezone.utc))
    ts = at.timestamp()
    wall = clock.wall(at, zone)
    when = f"{in_zone(at, zone)} ({utc(at)})" if zone_name else utc(at)
    walls = clock.due(f, zone_name, at)
    due = bool(walls)
    evidence: list[str] = []
    if due:
        if walls != [wall]:
            times = ", ".join(w.strftime("%H:%M") for w in walls)
            tr = transition_near(at, zone)
            evidence.append(f"due at {when} for {times}, which the spring-forward jump skipped: cron runs each "
                            "skipped time of a fixed-time job right after the jump"
                            + (f" ({tr.describe(zone_label(zone_name))})" if tr else ""))
        else:
            evidence.append(f"due at {when}: {wall.strftime('%H:%M')} matches the schedule")
            if len(clock.instants(wall, zone)) == 2:
                evidence.append(f"{wall.strftime('%H:%M')} happened twice that day (DST): "
                                + ("cron runs a fixed-time job at the first pass only" if f["fixed"] else
                                   "cron runs a job with * in its minute or hour field at both passes"))
    rows = ctx.log.scheduled_runs(name, ts, ts + 60) if ctx.log is not None else []
    if rows:
        return _recorded(ctx, sub, at, rows, due, evidence)
    if not due:
        passes = clock.instants(wall, zone)
        if clock.matches(f, wall) and f["fixed"] and len(passes) == 2 and passes[0] < at:
            tr = transition_near(at, zone)
            evidence.append(f"{wall.strftime('%H:%M')} matches the schedule, but this is its second pass: "
                            + (tr.describe(zone_label(zone_name)) + "; " if tr else "")
                            + "cron runs a fixed-time job once in a repeated hour, at the first pass")
            first = passes[0]
            found = _find(ctx, sub, first)
            evidence.append(f"at the first pass, {in_zone(first, zone)}: {found.short}")
            return _Finding(f"{name} was not due at {when}: the second pass of {wall.strftime('%H:%M')}, an hour "
                            "DST repeated; cron ran it at the first pass", "dst-doubled", False, found.ran,
                            found.runs, evidence)
        evidence.append(f"not due at {when}: {wall.strftime('%Y-%m-%d %H:%M')} does not match the schedule")
        evidence.extend(_nearest(f, zone_name, at))
        return _Finding(f"{name} was not due at {when}", "not-due", False, evidence=evidence)

    now = ctx.now.astimezone(timezone.utc)
    if at > now:
        return _Finding(f"{name} is due at {when}, {ago((at - now).total_seconds())}: not yet", "future", True,
                        evidence=evidence, short=f"not yet ({ago((at - now).total_seconds())})")
    installed, notes = _installed_at(ctx, sub, ts)
    evidence.extend(notes)
    if not installed:
        return _due(name, when, f"but its line was not installed then: {notes[-1] if notes else 'not in the crontab'}",
                    "not-installed", evidence=evidence)

    grace = 60 + job.jitter
    if (now - at).total_seconds() < grace:
        evidence.append(f"a run starts within {grace}s of its minute (60s{' plus jitter' if job.jitter else ''})")
        return _due(name, when, f"({ago((at - now).total_seconds())}) and cron may still be starting it (nothing "
                    "recorded yet)", "pending", evidence=evidence)

    flag = paused_since(ctx.state, name)
    if flag is not None and flag[0] <= ts + 60:
        evidence.append(f"paused since {utc(flag[0])} ({paths.paused_file(ctx.state, name)}"
                        f"{': ' + flag[1] if flag[1] else ''}); jobctl resume {name} ends it")
        evidence.append("no skip was recorded for the minute either: cron did not start the wrapper then")
        return _due(name, when, f"but paused (since {utc(flag[0])})", "paused", evidence=evidence)

    return _not_recorded(ctx, sub, at, when, evidence)


def _recorded(ctx: Context, sub: Subject, at: datetime, rows: list[Any], due: bool,
              evidence: list[str]) -> _Finding:
    """What the rows recorded for the minute say: a run, a pause, a lock held by another run."""
    name, log = sub.name, ctx.log
    assert log is not None
    zone = clock.zone_of(sub.job.timezone)
    when = f"{in_zone(at, zone)} ({utc(at)})" if sub.job.timezone else utc(at)
    real = [r for r in rows if r["status"] != "skipped"]
    for r in rows:
        evidence.append(_row_line(r, at))
    if not due:
        evidence.append("the schedule read now is not due then: it may have changed since the run")
    if real:
        # a run is its first attempt and the retries after it; two runs for one minute (the line twice in the
        # crontab, a catch-up run beside cron's) are told apart, each with its own result
        runs: list[list[Any]] = []
        for r in real:  # a retry belongs to the run its own wrapper made, whatever rows came between
            mine = [run for run in runs if (run[0]["host"], run[0]["wrapper_pid"]) == (r["host"], r["wrapper_pid"])]
            if mine and not (r["attempt"] == 1 and r["trigger"] != "retry"):
                mine[-1].append(r)
            else:
                runs.append([r])
        if len(runs) > 1:
            evidence.append(f"{len(runs)} runs started for this minute (runs "
                            f"{', '.join(str(run[0]['id']) for run in runs)}): it ran more than once")
        first, last = runs[-1][0], runs[-1][-1]
        how = {"catchup": "made up by the catch-up pass", "retry": "ran (retried)"}.get(first["trigger"], "ran")
        if len(runs) > 1:
            how = f"ran {len(runs)} times, the last"
        ended = ("is still running" if last["status"] == "running" else
                 f"{last['status']}" + (f" (exit {last['exit_code']})" if last["exit_code"] is not None else ""))
        attempts = f" after {last['attempt']} attempts" if last["attempt"] > 1 else ""
        late = first["started_at"] - at.timestamp()
        if first["trigger"] == "schedule" and late > 60 + sub.job.jitter:
            evidence.append(f"it started {int(late)}s after its minute (cron or the machine was busy)")
        return _due(name, when, f"and {how}: run {first['id']} started {utc(first['started_at'])}, {ended}{attempts}",
                    "ran", due, True, rows, evidence)
    skip = rows[-1]
    why_text = (skip["reason"] or "").removeprefix("skipped: ")
    if why_text.startswith("paused"):
        flag = paused_since(ctx.state, name)
        if flag is not None:
            evidence.append(f"paused since {utc(flag[0])} ({paths.paused_file(ctx.state, name)}"
                            f"{': ' + flag[1] if flag[1] else ''}); jobctl resume {name} ends it")
        else:
            evidence.append(f"not paused now: {name} was resumed since")
        since = f" (since {utc(flag[0])})" if flag is not None and flag[0] <= at.timestamp() + 60 else ""
        return _due(name, when, f"but paused{since}: recorded as skipped, run {skip['id']}", "paused", due, False,
                    rows, evidence)
    m = _HOLDER.search(skip["reason"] or "")
    if m:
        holder = log.get(int(m.group(1))) if m.group(1).isdigit() else None
        if holder is not None:
            state = ("still running" if holder["status"] == "running" else
                     f"it ended {utc(holder['finished_at'])}, {holder['status']}")
            evidence.append(f"run {holder['id']} ({holder['trigger']}, started {utc(holder['started_at'])}) held "
                            f"the lock of {name}; {state}")
        policy = (sub.applied or {}).get("concurrency") or sub.job.concurrency
        evidence.append(f"concurrency: {policy}: " + (
            "a run that finds the previous one still running is skipped" if policy == "forbid" else
            "the previous run's process group is stopped; when the lock stays held the new run is skipped"))
        held_by = f"run {m.group(1)}" if holder is None else \
            f"run {holder['id']} (started {utc(holder['started_at'])})"
        return _due(name, when, f"but skipped: {held_by} still held its lock (run {skip['id']})", "skipped-lock",
                    due, False, rows, evidence)
    return _due(name, when, f"but skipped: {why_text or 'no reason recorded'} (run {skip['id']})", "skipped", due,
                False, rows, evidence)


def _row_line(r: Any, at: datetime) -> str:
    parts = [f"run {r['id']}: {r['status']}", f"trigger {r['trigger']}", f"attempt {r['attempt']}",
             f"started {utc(r['started_at'])}"]
    if r["finished_at"] is not None and r["status"] != "skipped":
        parts.append(f"finished {utc(r['finished_at'])}")
    if r["reason"]:
        parts.append(f"reason: {r['reason']}")
    return ", ".join(parts)


def _backups(state: str) -> list[tuple[float, str]]:
    """(when apply or uninstall wrote over the crontab, the backup of what it held until then), oldest first."""
    directory = paths.backups_dir(state)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for n in names:
        m = re.fullmatch(r"crontab-(\d{8}T\d{6})\.(\d{6})(?:-\d+)?\.txt", n)
        if not m:
            continue
        try:
            stamp = time.mktime(time.strptime(m.group(1), "%Y%m%dT%H%M%S")) + int(m.group(2)) / 1e6
        except (ValueError, OverflowError):
            continue
        out.append((stamp, os.path.join(directory, n)))
    return sorted(out)


def _entries_in(path: str, ctx: Context) -> dict[str, crontab.Entry] | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(BACKUP_MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > BACKUP_MAX_BYTES:
        return None
    try:
        return crontab.split(data.decode("utf-8", "surrogateescape"), crontab.instance_id(ctx.state),
                             path).entries
    except JobctlError:
        return None


def _installed_at(ctx: Context, sub: Subject, ts: float) -> tuple[bool, list[str]]:
    """Whether the job's line was in the crontab at ``ts``, with the evidence; the last note says why not.

    The applied definition's time says when the current definition was
    installed (status reads it the same way); for a time before it, or for
    a job no longer in the crontab, the backups apply and uninstall keep of
    the crontab they replaced say what it held then.
    """
    name = sub.name
    since = applied_at(ctx.state, name)
    notes: list[str] = []
    if sub.entry is not None and since is not None and since <= ts:
        notes.append(f"installed then: the applied definition dates from {utc(since)} and its line is in "
                     f"{ctx.target_label}")
        return True, notes
    later = [(stamp, path) for stamp, path in _backups(ctx.state) if stamp > ts]
    if later:
        stamp, path = later[0]
        then = _entries_in(path, ctx)
        if then is not None:
            entry = then.get(name)
            if entry is not None:
                changed = "" if sub.entry is not None and entry.hash == sub.entry.hash else \
                    (f"; its line was replaced at {utc(stamp)}" if sub.entry is not None
                     else f"; it was removed from the crontab at {utc(stamp)}")
                notes.append(f"installed then: the crontab as it was until {utc(stamp)} ({path}) has its line "
                             f"(hash {entry.hash}){changed}")
                return True, notes
            notes.append(f"the crontab as it was until {utc(stamp)} ({path}) has no line for {name}")
            if since is not None and since > ts and sub.entry is not None:
                notes.append(f"applied at {utc(since)}, after that time")
            elif sub.entry is None:
                disabled = sub.file_job is not None and not sub.file_job.enabled
                notes.append(f"{name} is not in {ctx.target_label} now either"
                             + (" (enabled: false: a disabled job is not installed)" if disabled
                                else "; jobctl apply installs it"))
            else:
                notes.append(f"installed at {utc(stamp)}, after that time")
            return False, notes
    if sub.entry is None:
        disabled = sub.file_job is not None and not sub.file_job.enabled
        notes.append(f"{name} is not in {ctx.target_label} now"
                     + (" (enabled: false: a disabled job is not installed)" if disabled else
                        "; jobctl apply installs it"))
        return False, notes
    if since is not None and since > ts:
        notes.append(f"applied at {utc(since)}, after that time")
        return False, notes
    notes.append(f"its line is in {ctx.target_label} now (no record of when it was installed)")
    return True, notes


def _others(ctx: Context, sub: Subject, at: datetime) -> list[str]:
    """The other jobs of the crontab that were installed then and due in that minute (cron starts them all)."""
    out = []
    ts = at.timestamp()
    for other in sorted(ctx.entries):
        if other.startswith("_") or other == sub.name:
            continue
        defn = applied.read(ctx.state, other)
        if defn is None or not defn.get("fields") or defn.get("cron") == "@reboot":
            continue
        since = applied_at(ctx.state, other)
        if since is None or since > ts:
            continue
        try:
            if clock.due(defn["fields"], defn.get("timezone"), at):
                out.append(other)
        except (LookupError, ValueError, TypeError, KeyError, OSError):
            continue
    return out


def _error_lines(state: str, name: str, at: datetime) -> list[str]:
    """Lines of jobctl-errors.log about the job (or the catch-up pass) from a minute before to three after."""
    path = paths.errors_log(state)
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - ERRORS_TAIL_BYTES))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lo, hi = iso(at.timestamp() - 60) or "", iso(at.timestamp() + 180) or ""
    found = []
    for line in data.splitlines():
        stamp = line.split(" ", 1)[0]
        if lo <= stamp <= hi and (f" job {name}: " in line or " job (catch-up): " in line):
            found.append(line)
    return found[-3:]


def _not_recorded(ctx: Context, sub: Subject, at: datetime, when: str, evidence: list[str]) -> _Finding:
    """Due, installed, not paused, and no row: did cron run then, did the line drift, could catch-up help?"""
    from jobctl.read import doctor

    name, job = sub.name, sub.job
    ts = at.timestamp()
    log = ctx.log
    started = log.cron_started(ts, ts + 60, ts + 3600 + job.jitter) if log is not None else []
    ran = [(j, i) for j, i in started if j != name]
    others = _others(ctx, sub, at)
    daemon = doctor.cron_daemon()
    drifted = drift(sub, ctx.state, ctx.system)
    if ran:
        evidence.append(f"cron was running then: {len(ran)} other job{'s' if len(ran) != 1 else ''} recorded a run "
                        "for that minute (" + ", ".join(f"{j}: run {i}" for j, i in ran[:5]) + ")")
    else:
        due_text = (f"while {len(others)} other job{'s were' if len(others) != 1 else ' was'} due ("
                    + ", ".join(others[:5]) + (", ..." if len(others) > 5 else "") + ")") if others else \
            "(no other job was due then to tell whether cron ran)"
        evidence.append(f"no jobctl job recorded a run started by cron for that minute {due_text}"
                        + ("; there is no run log yet: no jobctl job has recorded a run here" if log is None else ""))
    evidence.append(f"cron daemon now: {daemon.detail}" if daemon.ok else
                    "cron daemon now: not running (no cron or crond process in /proc)")
    if paths.crontab_file() and not ctx.system:
        evidence.append(f"jobctl manages {ctx.target_label} ($JOBCTL_CRONTAB): cron reads it only if it is one of "
                        "cron's own crontabs")
    if drifted:
        evidence.append(f"the crontab drifted: {drifted} (jobctl status shows it; jobctl apply rewrites it)")
    errors = _error_lines(ctx.state, name, at)
    for line in errors:
        evidence.append(f"jobctl-errors.log: {line}")

    if ran:
        if drifted:
            return _due(name, when, f"and cron ran other jobs then, but not this one: its crontab line drifted "
                        f"({drifted})", "drifted", evidence=evidence)
        return _due(name, when, f"and cron ran other jobs then, but no run of {name} was recorded"
                    + (": see jobctl-errors.log" if errors else ""), "not-recorded", evidence=evidence)
    if not daemon.ok or (others and not drifted):
        finding = _due(name, when, "but cron did not run then: no jobctl job recorded a run for that minute"
                       + (f" while {len(others)} other{'s were' if len(others) != 1 else ' was'} due" if others else "")
                       + ("; the cron daemon is not running now" if not daemon.ok else ""),
                       "cron-not-running", evidence=evidence)
    elif drifted:
        finding = _due(name, when, f"but not run: its crontab line drifted ({drifted})", "drifted", evidence=evidence)
    else:
        finding = _due(name, when, "but no run was recorded" + (": see jobctl-errors.log" if errors else ""),
                       "not-recorded", evidence=evidence)
    return _catch_up(ctx, sub, at, finding)


def _catch_up(ctx: Context, sub: Subject, at: datetime, finding: _Finding) -> _Finding:
    """Whether catch-up made up the missed minute, could still, or could not: outside its window."""
    job, log, name = sub.job, ctx.log, sub.name
    window = (sub.applied or {}).get("catch_up", job.catch_up)
    if not window:
        finding.evidence.append("no catch_up: a missed run is not made up later")
        return finding
    ts = at.timestamp()
    deadline = ts + window
    now = ctx.now.timestamp()
    later = log.catch_up_since(name, ts + 60) if log is not None else None
    back = log.first_cron_start(ts + 60) if log is not None else None
    if "_catch-up" not in ctx.entries:
        finding.evidence.append("the catch-up lines are not in the crontab (jobctl apply adds them)")
    if later is not None:
        finding.evidence.append("the catch-up pass made up a later missed minute instead, "
                                f"{utc(later['scheduled_for'])} (run {later['id']}): it makes up only the latest one")
        return finding
    if now < deadline:
        finding.evidence.append(f"within catch_up ({units.format_duration(window)}) until {utc(deadline)}: the "
                                "catch-up pass runs it once cron runs again")
        return finding
    if back is None or back["started_at"] > deadline:
        again = (f"cron started no jobctl job again until {utc(back['started_at'])} (run {back['id']} of "
                 f"{back['job']})") if back is not None else "cron has started no jobctl job since"
        finding.evidence.append(f"catch_up {units.format_duration(window)}: the window for that minute closed at "
                                f"{utc(deadline)}; {again}")
        if finding.reason in ("cron-not-running", "not-recorded"):
            return _due(name, when_of(at, job.timezone), "but was missed and not made up: outside the catch-up "
                        f"window (catch_up {units.format_duration(window)}, closed {utc(deadline)})",
                        "outside-catch-up", evidence=finding.evidence)
        return finding
    finding.evidence.append(f"cron ran again at {utc(back['started_at'])}, within catch_up "
                            f"({units.format_duration(window)}), but the catch-up pass started no run for it (a "
                            "later run of the job counts as caught up; see jobctl-errors.log)")
    return finding


def when_of(at: datetime, zone_name: str | None) -> str:
    return f"{in_zone(at, clock.zone_of(zone_name))} ({utc(at)})" if zone_name else utc(at)
