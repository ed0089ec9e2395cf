"""The wrapper's time-zone decision by arithmetic: clock.due without datetime or zoneinfo.

apply stores each time-zone job's UTC offsets for three calendar years in its
applied definition (``tz_offsets``, from clock.offsets); with them a wake-up
that is not the job's minute costs a few microseconds and no imports beyond
``time`` (datetime and zoneinfo together cost ~6 ms at every start; even
bisect, two modules, is left out: the table has a few dozen rows).  Outside
the table, ``due_at`` answers None and the wrapper asks clock.due.
tests/test_clock.py checks both agree minute by minute across the DST
transitions.
"""

from __future__ import annotations

import time

MAX_JUMP_S = 3 * 3600  # cron(8): a larger change is a time reset, not DST


def _row(table: list[list[int]], t: int) -> int:
    """The index of the last row starting at or before ``t`` (bisect_right on the starts, minus one)."""
    lo, hi = 0, len(table)
    while lo < hi:
        mid = (lo + hi) // 2
        if t < table[mid][0]:
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


def due_at(f: dict, table: list[list[int]], ts: float) -> int | None:
    """How many runs a wake-up at ``ts`` makes (``len(clock.due(...))``) by arithmetic; None outside the table.

    The wrapper's path for time-zone jobs: no datetime, no zoneinfo (together
    ~6 ms of imports at every start).  The rules are clock.due's: cron(8)'s
    main loop, with ``diff`` its timeDiff in seconds.
    """
    t = int(ts) - int(ts) % 60
    if not table or t < table[0][0] + 180 * 60 or t >= table[-1][0]:
        return None
    i = _row(table, t)
    offset = table[i][1]

    def fields_match(wall_ts: int) -> bool:
        g = time.gmtime(wall_ts)
        if g.tm_min not in f["minute"] or g.tm_hour not in f["hour"] or g.tm_mon not in f["month"]:
            return False
        dom = g.tm_mday in f["dom"]
        dow = (g.tm_wday + 1) % 7 in f["dow"]
        return (dom and dow) if (f["dom_star"] or f["dow_star"]) else (dom or dow)

    def between(previous: int, wall: int) -> int:
        return sum(1 for m in range(previous + 60, wall + 1, 60) if fields_match(m))

    fixed = f["fixed"]
    wall = t + offset
    j = _row(table, t - 60)
    previous = t - 60 + table[j][1]
    diff = wall - previous
    if diff == 60:
        if not fields_match(wall):
            return 0
        if fixed and i > 0:
            back = table[i - 1][1] - offset  # a backward jump at table[i][0]
            if 0 < back <= MAX_JUMP_S and t < table[i][0] + back:
                return 0  # the second pass through a repeated hour
        return 1
    if 60 < diff <= 300 or (fixed and 300 < diff <= MAX_JUMP_S):
        return between(previous, wall)
    if 300 < diff <= MAX_JUMP_S or -MAX_JUMP_S < diff <= 0:
        return 1 if not fixed and fields_match(wall) else 0
    return 1 if fields_match(wall) else 0


#: how far back a previous slot is looked for (clock._walls' horizon: a 29 February that is a Monday)
_HORIZON_S = 30 * 366 * 86400


def _prev_wall(f: dict, wall: int) -> int | None:
    """The latest wall minute before ``wall`` (wall time written as UTC seconds) that the fields match.

    Skips a whole month, day or hour at a time where that part does not
    match, so a yearly schedule costs a few dozen steps, not half a million.
    """
    m = wall - wall % 60 - 60
    floor = wall - _HORIZON_S
    while m >= floor:
        g = time.gmtime(m)
        if g.tm_mon not in f["month"]:
            m -= (g.tm_mday - 1) * 86400 + g.tm_hour * 3600 + g.tm_min * 60 + 60
            continue
        dom = g.tm_mday in f["dom"]
        dow = (g.tm_wday + 1) % 7 in f["dow"]
        if not ((dom and dow) if (f["dom_star"] or f["dow_star"]) else (dom or dow)):
            m -= g.tm_hour * 3600 + g.tm_min * 60 + 60
            continue
        if g.tm_hour not in f["hour"]:
            m -= g.tm_min * 60 + 60
            continue
        if g.tm_min not in f["minute"]:
            m -= 60
            continue
        return m
    return None


def previous_slot(f: dict, table: list[list[int]] | None, zone: str | None, scheduled_for: float) -> float | None:
    """The job's scheduled time before ``scheduled_for`` (Unix seconds): where its slot starts; None if none.

    By arithmetic (no datetime, no zoneinfo: ~6 ms of imports a run would
    pay) when no UTC offset change lies within three hours of the slot: the
    offsets come from the definition's ``tz_offsets`` for a job with a time
    zone, from localtime(3) for one in the system's time (cron's own).  Near
    a change cron's DST rules decide (a skipped fixed time runs after the
    jump, a repeated hour runs fixed times once): clock.prev_run answers.
    """
    t = int(scheduled_for) - int(scheduled_for) % 60
    if zone:
        def offset(u: int) -> int | None:
            if not table or u < table[0][0] or u >= table[-1][0]:
                return None  # outside the precomputed offsets
            return table[_row(table, u)][1]
    else:
        def offset(u: int) -> int | None:
            return time.localtime(u).tm_gmtoff

    end_offset = offset(t)
    if end_offset is not None:
        wall = _prev_wall(f, t + end_offset)
        if wall is None:
            return None
        u = wall - end_offset
        if offset(u) == end_offset and offset(u - MAX_JUMP_S) == end_offset \
                and offset((u + t) // 2) == end_offset:
            return float(u)
    from datetime import datetime, timezone

    from jobctl import clock

    found = clock.prev_run(f, zone, datetime.fromtimestamp(t - 60, timezone.utc))
    return found.timestamp() if found is not None else None
