"""When cron(8) runs a job: its main loop's rules, in any zone.

Debian's cron ignores CRON_TZ and TZ when scheduling, so a job with a
``timezone`` is installed on a superset of its minutes and the wrapper asks
``due()`` at each wake-up (by arithmetic, wallclock.due_at, on its fast
path).  ``next_runs`` and ``prev_run`` answer from the same rules for
``status``, ``metrics`` and the catch-up pass, in the job's zone or the
system's (None), so what they list is what runs.  All work on the field
sets apply compiled into the definition (``schedule.compile_fields``).

DST follows cron(8)'s main loop: every time of a fixed-time job (minute and
hour fields not starting with ``*``) that a spring-forward jump skips runs
right after the jump, one run each; in a repeated hour a fixed-time job
runs once, at the first pass; jobs with ``*`` in the minute or hour field
follow wall time (none in the skipped hour, both passes of a repeated one).
tests/test_cron_fidelity.py checks all of it against a port of Debian's
cron.c.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone, tzinfo

MINUTE = timedelta(minutes=1)
#: cron(8) treats clock changes of more than three hours as a time reset, not DST
MAX_JUMP_MINUTES = 180
MAX_JUMP = timedelta(minutes=MAX_JUMP_MINUTES)


def matches(f: dict, wall: datetime) -> bool:
    """Whether a naive wall-clock minute matches the compiled fields (cron's day rule)."""
    if wall.minute not in f["minute"] or wall.hour not in f["hour"] or wall.month not in f["month"]:
        return False
    dom = wall.day in f["dom"]
    dow = (wall.isoweekday() % 7) in f["dow"]
    if f["dom_star"] or f["dow_star"]:
        return dom and dow
    return dom or dow


#: computed per zone (and start) once per process: a thousand jobs in one zone
#: would otherwise each walk three years (offsets) or 400 days (superset_minutes)
#: hour by hour, ~30 ms a job
_OFFSETS: dict[tuple[str, int, int], list[list[int]]] = {}
_SHIFTS: dict[tuple, tuple[frozenset[int], frozenset[int]]] = {}
_CACHE_MAX = 256


def offsets(zone_name: str, year: int, years: int = 3) -> list[list[int]]:
    """[[utc_start, offset_seconds], ...] of a zone from 1 January ``year`` for ``years`` years.

    The first entry holds the offset in force at the start; each later one a
    change.  The last entry's start marks where the table ends (offset 0 there
    is a sentinel, never used): past it the wrapper asks zoneinfo again.
    """
    key = (zone_name, year, years)
    table = _OFFSETS.get(key)
    if table is None:
        table = _offsets(zone_name, year, years)
        if len(_OFFSETS) < _CACHE_MAX:
            _OFFSETS[key] = table
    return [list(entry) for entry in table]  # the caller's own copy: it goes into a definition


def _offsets(zone_name: str, year: int, years: int) -> list[list[int]]:
    zone = _zone(zone_name)
    t = datetime(year, 1, 1, tzinfo=timezone.utc)
    end = datetime(year + years, 1, 1, tzinfo=timezone.utc)

    def off(at: datetime) -> int:
        return int((at.astimezone(zone).utcoffset() or timedelta(0)).total_seconds())

    table = [[int(t.timestamp()), off(t)]]
    step = timedelta(hours=1)
    while t < end:
        nxt = t + step
        if off(nxt) != table[-1][1]:
            lo, hi = t, nxt  # the change is in (lo, hi]: find its second
            while (hi - lo).total_seconds() > 1:
                mid = lo + (hi - lo) / 2
                if off(mid) == table[-1][1]:
                    lo = mid
                else:
                    hi = mid
            table.append([int(hi.timestamp()), off(hi)])
        t = nxt
    table.append([int(end.timestamp()), 0])
    return table


def _zone(name: str | None):
    """A zone by name; None is the system's local time, the zone cron itself runs in."""
    if name is None:
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def attach(wall: datetime, zone_name: str | None) -> datetime:
    """A naive wall time made aware in the zone (the system's for None); the first pass if repeated."""
    return _instant(wall, _zone(zone_name), 0).astimezone(_zone(zone_name))


def _wall(t: datetime, zone) -> datetime:
    """The naive wall-clock time of the aware instant ``t`` in ``zone``."""
    if zone is None:
        return datetime.fromtimestamp(t.timestamp())
    return t.astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime, zone, fold: int) -> datetime:
    """The UTC instant of a naive wall time (PEP 495 folds, also for the system zone)."""
    if zone is None:
        return datetime.fromtimestamp(wall.replace(fold=fold).timestamp(), timezone.utc)
    return wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc)


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _between(before: datetime, wall: datetime):
    m = before + MINUTE
    while m <= wall:
        yield m
        m += MINUTE


def due(f: dict, zone_name: str | None, now: datetime) -> list[datetime]:
    """The wall times (in the job's zone) a wake-up at the UTC minute ``now`` runs the job for.

    cron(8)'s main loop, as Debian's cron.c has it, in the job's zone: it
    compares the wall minute now with the one a minute ago (``timeDiff``):
    1 is the normal tick; 2-5 minutes ahead runs every job for each minute in
    between; 6-180 ahead (a DST jump) runs fixed-time jobs for each skipped
    minute and wildcard jobs for now only; up to 180 behind (DST ending)
    runs wildcard jobs only, and fixed-time jobs stay quiet until the wall
    clock passes where it was; anything larger is a reset.  Usually [] or
    one time; after a spring-forward jump, every fixed time it skipped.
    ``now`` is aware; seconds are ignored.
    """
    zone = _zone(zone_name)
    t = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    wall = _wall(t, zone)
    before = _wall(t - MINUTE, zone)
    diff = _minutes(wall - before)
    fixed = f["fixed"]
    if diff == 1:
        if not matches(f, wall) or (fixed and _second_pass(t, wall, zone)):
            return []
        return [wall]
    if 1 < diff <= 5 or (fixed and 5 < diff <= MAX_JUMP_MINUTES):
        return [m for m in _between(before, wall) if matches(f, m)]
    if 5 < diff <= MAX_JUMP_MINUTES or -MAX_JUMP_MINUTES < diff <= 0:
        return [wall] if not fixed and matches(f, wall) else []
    return [wall] if matches(f, wall) else []  # the clock was reset


def _second_pass(t: datetime, wall: datetime, zone) -> bool:
    """Whether the wall time at ``t`` already passed before a backward jump cron treats as DST."""
    first = _instant(wall, zone, 0)
    return timedelta(0) < t - first <= MAX_JUMP


def runs_for(f: dict, wall: datetime, zone) -> list[datetime]:
    """The UTC minutes at which cron(8)'s rules run a job for the matching wall time ``wall``.

    Most wall times happen once; one in a repeated hour happens twice (a
    wildcard job runs at both, a fixed-time job at the first); one skipped
    by a spring-forward jump runs, for a fixed-time job, at the jump.
    """
    first, second = _instant(wall, zone, 0), _instant(wall, zone, 1)
    real = [u for u in sorted({first, second}) if _wall(u, zone) == wall]
    if len(real) == 2:
        if f["fixed"] and real[1] - real[0] <= MAX_JUMP:
            return real[:1]
        return real
    if real:
        return real
    # skipped: the jump is the first minute whose wall time is past it
    jump = min(first, second)
    while _wall(jump, zone) <= wall:
        jump += MINUTE
    diff = _minutes(_wall(jump, zone) - _wall(jump - MINUTE, zone))
    if 1 < diff <= 5 or (f["fixed"] and diff <= MAX_JUMP_MINUTES):
        return [jump]
    return []


def _walls(f: dict, start: datetime, forward: bool, years: int = 30):
    """Matching naive wall minutes after (or before) ``start``, in order.

    Day by day, then the hour and minute sets.  It stops after ``years``
    without a match (a schedule that fires on 29 February only when it is a
    Sunday waits 28 years between runs; one that never fires is refused by
    schedule.parse_cron) or at the end of the calendar.
    """
    hours = sorted(f["hour"], reverse=not forward)
    minutes = sorted(f["minute"], reverse=not forward)
    months = set(f["month"])
    day = datetime(start.year, start.month, start.day)
    one = timedelta(days=1 if forward else -1)
    quiet = 0
    while quiet < 366 * years and datetime(2, 1, 1) < day < datetime(9998, 12, 31):
        if day.month not in months:  # on to the next (or back to the previous) month
            if forward:
                day = datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
            else:
                day = day.replace(day=1) - timedelta(days=1)
            quiet += 28
            continue
        quiet += 1
        dom = day.day in f["dom"]
        dow = (day.isoweekday() % 7) in f["dow"]
        if (dom and dow) if (f["dom_star"] or f["dow_star"]) else (dom or dow):
            first = day.date() == start.date()
            for h in hours:
                if first and ((h < start.hour) if forward else (h > start.hour)):
                    continue
                for m in minutes:
                    w = day.replace(hour=h, minute=m)
                    if (w > start) if forward else (w < start):
                        quiet = 0
                        yield w
        day += one


def _steady(zone, t: datetime) -> bool:
    """Whether the zone's offset is the same from ``t`` - 3 h to ``t`` + 3 h.

    Then wall-time order is instant order near ``t`` and no jump can move a
    run across it, so the scans below need not look three hours further.
    Assumes no zone changes its offset twice within six hours.
    """
    def offset(at: datetime) -> timedelta:
        if zone is None:
            return timedelta(seconds=time.localtime(at.timestamp()).tm_gmtoff)
        return at.astimezone(zone).utcoffset() or timedelta(0)

    return offset(t - MAX_JUMP - MINUTE) == offset(t + MAX_JUMP + MINUTE)


def next_runs(f: dict, zone_name: str | None, after: datetime, count: int = 1) -> list[datetime]:
    """The next ``count`` minutes after the aware ``after`` at which the job runs, as cron(8) runs it.

    Aware, in the job's zone (the system's when ``zone_name`` is None).  The
    same rules as ``due``: what this lists is what the wrapper will run.
    """
    zone = _zone(zone_name)
    after = after.astimezone(timezone.utc)
    # near a clock change, a wall time up to three hours back may still run after ``after``
    start = _wall(after, zone) - (timedelta(0) if _steady(zone, after) else MAX_JUMP)
    found: list[datetime] = []
    for wall in _walls(f, start, True):
        if len(found) >= count:
            last = found[count - 1]
            if _steady(zone, last) or wall > _wall(last, zone) + MAX_JUMP:
                break
        new = [u for u in runs_for(f, wall, zone) if u > after and u not in found]
        if new:
            found = sorted(found + new)
    return [u.astimezone(zone) for u in found[:count]]


def prev_run(f: dict, zone_name: str | None, before: datetime) -> datetime | None:
    """The latest minute at or before the aware ``before`` at which the job ran (or will have run)."""
    zone = _zone(zone_name)
    before = before.astimezone(timezone.utc)
    ahead = MINUTE if _steady(zone, before) else MAX_JUMP + MINUTE
    best: datetime | None = None
    for wall in _walls(f, _wall(before, zone) + ahead, False):
        if best is not None and (_steady(zone, best) or wall < _wall(best, zone) - MAX_JUMP):
            break
        for u in runs_for(f, wall, zone):
            if u <= before and (best is None or u > best):
                best = u
    return best.astimezone(zone) if best is not None else None


def superset_minutes(f: dict, zone_name: str, start: datetime, days: int = 400) -> list[int]:
    """Minutes of the hour (in the system's local time, as cron reads them) to wake up at.

    Covers the job's minutes shifted by every offset difference between its
    zone and the system zone over ``days``, plus the minutes at which the job's
    zone jumps forward (a fixed-time job skipped by the jump runs then).
    """
    t = start.astimezone(timezone.utc).replace(second=0, microsecond=0)
    # the system's zone takes part: TZ (read by localtime at each call) and what tzset() last set
    key = (zone_name, t, days, os.environ.get("TZ"), time.tzname, time.timezone)
    found = _SHIFTS.get(key)
    if found is None:
        found = _shifts(zone_name, t, days)
        if len(_SHIFTS) < _CACHE_MAX:
            _SHIFTS[key] = found
    shifts, jumps = found
    minutes = {(m + s) % 60 for m in f["minute"] for s in shifts}
    if f["fixed"]:
        minutes |= jumps
    return sorted(minutes)


def _shifts(zone_name: str, t: datetime, days: int) -> tuple[frozenset[int], frozenset[int]]:
    """superset_minutes's part that depends only on the zone: (offset differences, minutes of forward jumps)."""
    zone = _zone(zone_name)
    shifts: set[int] = set()
    jumps: set[int] = set()
    end = t + timedelta(days=days)
    step = timedelta(hours=1)
    prev_off = None
    while t < end:
        job_off = t.astimezone(zone).utcoffset() or timedelta(0)
        sys_off = timedelta(seconds=time.localtime(t.timestamp()).tm_gmtoff)
        shifts.add(int((sys_off - job_off).total_seconds() // 60) % 60)
        if prev_off is not None and job_off > prev_off:
            # find the exact minute of the jump within the last hour
            m = t - step
            while (m.astimezone(zone).utcoffset() or timedelta(0)) == prev_off:
                m += MINUTE
            at_sys = time.localtime(m.timestamp()).tm_gmtoff // 60
            jumps.add(int(m.timestamp() // 60 + at_sys) % 60)
        prev_off = job_off
        t += step
    return frozenset(shifts), frozenset(jumps)


# --- wall times and instants in a zone (``zone`` None: the server's local time), for the read commands


def aware(u: datetime, zone: tzinfo | None) -> datetime:
    """The aware instant ``u`` in ``zone``."""
    return u.astimezone(zone) if zone is not None else u.astimezone()


def offset(u: datetime, zone: tzinfo | None) -> timedelta:
    """``zone``'s UTC offset at the instant ``u``."""
    return aware(u, zone).utcoffset() or timedelta(0)


def instants(at: datetime, zone: tzinfo | None) -> list[datetime]:
    """The UTC instants whose wall time in ``zone`` is ``at``: none (a DST gap), one, or two (a repeated hour)."""
    return sorted({u for u in (_instant(at, zone, fold) for fold in (0, 1)) if _wall(u, zone) == at})


#: a zone by name (None: the server's), and the naive wall time of an instant in a zone, as cron's loop uses them
zone_of = _zone
wall = _wall
