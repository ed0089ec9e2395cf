"""Is a job due at this minute, in its own time zone?  (cron(8) DST semantics)

Debian's cron ignores CRON_TZ and TZ when scheduling, so a job with a
``timezone`` is installed on a superset of its minutes and the wrapper asks
``due()`` at each wake-up.  This module is on the wrapper's hot path: it
uses only datetime and zoneinfo, and works on the field sets that apply
compiled into the definition (``schedule.compile_fields``).

DST follows cron(8): a fixed-time job (minute and hour fields not starting
with ``*``) whose time falls into a skipped hour runs right after the jump,
once; in a repeated hour it runs once, at the first pass; jobs with ``*`` in
the minute or hour field simply follow wall time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

MINUTE = timedelta(minutes=1)
#: cron(8) treats clock changes of three hours or more as a time reset, not DST
MAX_JUMP = timedelta(hours=3)


def matches(f: dict, wall: datetime) -> bool:
    """Whether a naive wall-clock minute matches the compiled fields (cron's day rule)."""
    if wall.minute not in f["minute"] or wall.hour not in f["hour"] or wall.month not in f["month"]:
        return False
    dom = wall.day in f["dom"]
    dow = (wall.isoweekday() % 7) in f["dow"]
    if f["dom_star"] or f["dow_star"]:
        return dom and dow
    return dom or dow


def offsets(zone_name: str, year: int, years: int = 3) -> list[list[int]]:
    """[[utc_start, offset_seconds], ...] of a zone from 1 January ``year`` for ``years`` years.

    The first entry holds the offset in force at the start; each later one a
    change.  The last entry's start marks where the table ends (offset 0 there
    is a sentinel, never used): past it the wrapper asks zoneinfo again.
    """
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


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def due(f: dict, zone_name: str, now: datetime) -> datetime | None:
    """The wall time (in the job's zone) a run at UTC minute ``now`` is for, or None.

    ``now`` is aware; seconds are ignored.  The result is the scheduled wall
    time, which differs from the current one only for a run made up after a
    spring-forward jump.
    """
    zone = _zone(zone_name)
    t = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
    local = t.astimezone(zone)
    wall = local.replace(tzinfo=None)
    if matches(f, wall):
        if f["fixed"] and local.fold == 1 and _repeated(t, zone):
            return None  # the second pass through a repeated hour: it ran at the first
        return wall
    if f["fixed"]:
        before = (t - MINUTE).astimezone(zone).replace(tzinfo=None)
        jump = wall - before
        if MINUTE < jump <= MAX_JUMP:
            m = before + MINUTE
            while m < wall:
                if matches(f, m):
                    return m
                m += MINUTE
    return None


def _repeated(t: datetime, zone) -> bool:
    """Whether the wall time at UTC ``t`` also occurred earlier (fold=1 is the second pass)."""
    local = t.astimezone(zone)
    first = local.replace(fold=0).astimezone(timezone.utc)
    return first != t


def superset_minutes(f: dict, zone_name: str, start: datetime, days: int = 400) -> list[int]:
    """Minutes of the hour (in the system's local time, as cron reads them) to wake up at.

    Covers the job's minutes shifted by every offset difference between its
    zone and the system zone over ``days``, plus the minutes at which the job's
    zone jumps forward (a fixed-time job skipped by the jump runs then).
    """
    import time

    zone = _zone(zone_name)
    shifts: set[int] = set()
    jumps: set[int] = set()
    t = start.astimezone(timezone.utc).replace(second=0, microsecond=0)
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
    minutes = {(m + s) % 60 for m in f["minute"] for s in shifts}
    if f["fixed"]:
        minutes |= jumps
    return sorted(minutes)
