"""When jobs fire: the next runs of an added or changed job, before and after the change, for `jobctl plan`.

Every time comes from clock (cron(8)'s main loop in the job's zone, the
rules the wrapper decides by): ``next_runs`` gives the minutes, ``due`` at
each of them the wall times of the schedule it runs for.  A minute that runs
for a wall time other than its own ran for one a spring-forward jump skipped
(``shifted``); a wall time that happens twice (clocks going back) runs once
for a fixed-time job (``repeated-once``) and at both passes for one with
``*`` in its minute or hour field (``repeated-twice``); and the wall times a
jump skips that cron does not make up (``*`` jobs) are listed apart
(``skipped``).  Each time is given in the job's zone and in the server's,
the zone cron itself runs in.

Plain data for the CLI: no typer, no rich.  `plan --check` never asks for
any of it (it must stay fast over a thousand jobs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from jobctl import clock

#: how many fire times plan lists per schedule
COUNT = 5

SHIFTED = "shifted"
REPEATED_ONCE = "repeated-once"
REPEATED_TWICE = "repeated-twice"
#: the values of Fire.dst (JSON ``dst``), besides None
DST_FLAGS = (SHIFTED, REPEATED_ONCE, REPEATED_TWICE)

_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Fire:
    """One minute at which cron runs the job."""

    #: the instant, aware UTC
    at: datetime
    #: the wall times (naive, the job's zone) of the schedule this minute runs for: usually the minute's own
    #: wall time; after a spring-forward jump, the skipped time(s) a fixed-time job runs for here
    walls: tuple[datetime, ...]
    #: None, SHIFTED, REPEATED_ONCE or REPEATED_TWICE
    dst: str | None = None
    #: what the flag means here, one sentence (ASCII); "" without a flag
    note: str = ""


@dataclass(frozen=True)
class Skipped:
    """A wall time the schedule names that a spring-forward jump skips and cron does not make up."""

    wall: datetime  # naive, the job's zone
    #: the wall times the clocks jump from and to that day
    jump_from: datetime
    jump_to: datetime
    #: the jump's instant (aware UTC): the first minute with the new offset
    jump_at: datetime

    @property
    def why(self) -> str:
        return (f"clocks jump from {hm(self.jump_from)} to {hm(self.jump_to)} that day, and cron does not make up "
                "a job with * in its minute or hour field")

    @property
    def note(self) -> str:
        return f"{hm(self.wall)} skipped by DST: {self.why}"


@dataclass
class Firing:
    """When one schedule fires in one zone: the next runs after a moment."""

    schedule: str
    cron: str
    #: the job's zone, None for the server's
    timezone: str | None
    fires: list[Fire] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: why no times could be computed (an applied definition that cannot be read), else None
    problem: str | None = None

    @property
    def reboot(self) -> bool:
        return self.cron == "@reboot"

    def same_times(self, other: Firing | None) -> bool:
        """Whether ``other`` fires when this one does: the same cron fields in the same zone."""
        return (other is not None and self.problem is None and other.problem is None
                and self.cron == other.cron and self.timezone == other.timezone)


@dataclass
class JobFires:
    """An added or changed job of a plan: its fire times before (the applied definition) and after."""

    name: str
    action: str
    before: Firing | None
    after: Firing | None

    @property
    def same(self) -> bool:
        """The change does not move any run (only the command, say, changed)."""
        return self.after is not None and self.after.same_times(self.before)


# --- zones ------------------------------------------------------------------------------------------

def server_zone() -> str:
    """The server's zone by name where it can tell (TZ, /etc/timezone, /etc/localtime), else its abbreviation."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz.split("zoneinfo/", 1)[-1]
    target = os.path.realpath("/etc/localtime")  # what the C library reads
    if "zoneinfo/" in target:
        return target.split("zoneinfo/", 1)[1]
    try:
        with open("/etc/timezone", encoding="utf-8", errors="replace") as fh:
            name = fh.read(256).strip()
        if name:
            return name
    except OSError:
        pass
    return time.tzname[0] or "UTC"


def _transition(zone: Any, lo: datetime, hi: datetime) -> datetime:
    """The first minute in (lo, hi] with hi's offset, lo and hi being minutes with different offsets."""
    before = clock.offset(lo, zone)
    while hi - lo > _MINUTE:
        mid = lo + ((hi - lo) // 2 // _MINUTE) * _MINUTE
        if clock.offset(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return hi


def _jumps(zone: Any, start: datetime, end: datetime) -> list[datetime]:
    """The minutes in (start, end] at which ``zone``'s offset grows (a spring-forward jump).

    Sampled a day apart, then bisected: a zone changes its offset at most
    a few times a year and never twice within a day.
    """
    found = []
    t = start
    off = clock.offset(t, zone)
    while t < end:
        nxt = min(t + _DAY, end)
        nxt_off = clock.offset(nxt, zone)
        if nxt_off != off:
            at = _transition(zone, t, nxt)
            if nxt_off > off:
                found.append(at)
        t, off = nxt, nxt_off
    return found


def hm(wall: datetime) -> str:
    """``03:00``."""
    return wall.strftime("%H:%M")


# --- fire times -------------------------------------------------------------------------------------

def firing(defn: dict[str, Any], after: datetime, count: int = COUNT) -> Firing:
    """The next ``count`` runs after the aware ``after`` of an applied definition (or one apply would write)."""
    from jobctl.jobs.schedule import ScheduleError, compile_fields

    cron = defn.get("cron")
    zone_name = defn.get("timezone")
    out = Firing(str(defn.get("schedule") or cron), str(cron), zone_name if isinstance(zone_name, str) else None)
    if not isinstance(cron, str) or not (zone_name is None or isinstance(zone_name, str)):
        out.problem = "its applied definition has no readable schedule"
        return out
    if cron == "@reboot":
        return out
    try:
        fields = compile_fields(cron)
        zone = clock.zone_of(zone_name)
    except (ScheduleError, ValueError, KeyError, OSError) as exc:  # a hand-edited definition
        out.problem = f"its applied definition cannot be read: {exc}"
        return out
    assert fields is not None
    after = after.astimezone(timezone.utc).replace(second=0, microsecond=0)
    for u in clock.next_runs(fields, zone_name, after, count):
        out.fires.append(_fire(fields, zone_name, zone, u.astimezone(timezone.utc)))
    if not fields["fixed"] and out.fires:
        out.skipped = _skipped(fields, zone, after, out.fires[-1].at)
    return out


def _fire(f: dict, zone_name: str | None, zone: Any, u: datetime) -> Fire:
    own = clock.wall(u, zone)
    walls = tuple(clock.due(f, zone_name, u)) or (own,)
    gone = [w for w in walls if w != own]
    if gone:
        # a fixed-time job run right after a spring-forward jump, for the time(s) the jump skipped
        old, new = hm(clock.wall(u - _MINUTE, zone) + _MINUTE), hm(own)
        times = " and ".join(hm(w) for w in gone)
        many = "they do" if len(gone) > 1 else "it does"
        also = f"; {new} itself runs too" if own in walls else ""
        return Fire(u, walls, SHIFTED,
                    f"{times} shifted by DST: clocks jump from {old} to {new} that day, so {many} not exist; "
                    f"cron runs {'each' if len(gone) > 1 else 'it'} right after the jump, at {new}{also}")
    real = clock.instants(own, zone)
    if len(real) == 2:
        t = _transition(zone, real[0], real[1])
        back = f"clocks go back from {hm(clock.wall(t - _MINUTE, zone) + _MINUTE)} to {hm(clock.wall(t, zone))}"
        if f["fixed"]:
            return Fire(u, walls, REPEATED_ONCE,
                        f"{hm(own)} happens twice ({back}); cron runs this fixed-time job once, at the first")
        which = "first" if u == real[0] else "second"
        return Fire(u, walls, REPEATED_TWICE,
                    f"{hm(own)} happens twice ({back}); a job with * in its minute or hour field runs at both: "
                    f"this is the {which}")
    return Fire(u, walls)


def _skipped(f: dict, zone: Any, start: datetime, end: datetime) -> list[Skipped]:
    """Wall times of a ``*`` job that spring-forward jumps in (start, end] skip: cron runs none of them."""
    out = []
    for t in _jumps(zone, start, end):
        old, new = clock.wall(t - _MINUTE, zone) + _MINUTE, clock.wall(t, zone)
        w = old
        while w < new:
            if clock.matches(f, w) and not clock.runs_for(f, w, zone):
                out.append(Skipped(w, old, new, t))
            w += _MINUTE
    return out


def plan_fires(plan: Any, now: datetime, count: int = COUNT) -> list[JobFires]:
    """For each job ``plan`` (a crontab.Plan) adds or changes: when it fires before and after, from ``now``."""
    out = []
    for c in plan.changes:
        if c.action not in ("add", "change"):
            continue
        new = plan.definitions.get(c.name)
        after = firing(new, now, count) if new is not None else None
        before = None
        if c.name in plan.current:
            old = plan.current[c.name]
            if old is None:
                before = Firing("", "", None, problem="its applied definition cannot be read (see jobctl doctor)")
            elif after is not None and after.same_times(Firing("", str(old.get("cron")), old.get("timezone"))):
                # the same fields in the same zone: the same times, computed once
                before = Firing(str(old.get("schedule") or after.cron), after.cron, after.timezone,
                                after.fires, after.skipped)
            else:
                before = firing(old, now, count)
        out.append(JobFires(c.name, c.action, before, after))
    return out


# --- text -------------------------------------------------------------------------------------------

def wall_text(u: datetime, zone_name: str | None) -> str:
    """``Sun 2026-03-29 03:00 CEST``: the instant ``u`` in the zone (the server's for None), with its abbreviation."""
    a = clock.aware(u, clock.zone_of(zone_name))
    name = a.tzname() or ""
    if not name:
        name = a.strftime("%z")
    return f"{a.strftime('%a %Y-%m-%d %H:%M')} {name}"


def skipped_by_day(skipped: list[Skipped]) -> list[tuple[str, list[Skipped]]]:
    """The skipped wall times by day and jump, in order: [("Sun 2026-03-29", [...]), ...]."""
    out: list[tuple[str, list[Skipped]]] = []
    for s in skipped:
        day = s.wall.strftime("%a %Y-%m-%d")
        if out and out[-1][0] == day and out[-1][1][-1].jump_to == s.jump_to:
            out[-1][1].append(s)
        else:
            out.append((day, [s]))
    return out


# --- JSON -------------------------------------------------------------------------------------------

def _iso_in(u: datetime, zone: Any) -> str:
    return clock.aware(u, zone).replace(microsecond=0).isoformat()


def _wall_iso(w: datetime) -> str:
    return w.strftime("%Y-%m-%dT%H:%M")


def firing_json(f: Firing | None) -> dict[str, Any] | None:
    """A Firing as `plan --json` has it (README and jobctl(1) document the fields)."""
    from jobctl.store import iso

    if f is None:
        return None
    zone = clock.zone_of(f.timezone) if f.problem is None else None
    return {
        "schedule": f.schedule,
        "cron": f.cron,
        "timezone": f.timezone,
        "runs": [{
            "utc": iso(r.at.timestamp()),
            "job_zone": _iso_in(r.at, zone),
            "server_zone": _iso_in(r.at, None),
            "for": [_wall_iso(w) for w in r.walls],
            "dst": r.dst,
            "note": r.note or None,
        } for r in f.fires],
        "dst_skipped": [{"wall": _wall_iso(s.wall), "note": s.note} for s in f.skipped],
        "problem": f.problem,
    }


def job_json(j: JobFires) -> dict[str, Any]:
    return {"same": j.same, "before": firing_json(j.before), "after": firing_json(j.after)}
