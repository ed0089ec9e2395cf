"""The wrapper's time-zone decision by arithmetic: clock.due without datetime or zoneinfo.

apply stores each time-zone job's UTC offsets for three calendar years in its
applied definition (``tz_offsets``, from clock.offsets); with them a wake-up
that is not the job's minute costs a few microseconds and no imports beyond
``time`` and ``bisect`` (datetime and zoneinfo together cost ~6 ms at every
start).  Outside the table, ``due_at`` answers None and the wrapper asks
clock.due.  tests/test_clock.py checks both agree minute by minute across
the DST transitions.
"""

from __future__ import annotations

import bisect
import time

MAX_JUMP_S = 3 * 3600  # cron(8): a larger change is a time reset, not DST


def due_at(f: dict, table: list[list[int]], ts: float) -> bool | None:
    """``due()`` by arithmetic on a precomputed offsets table; None when ``ts`` is outside it.

    The wrapper's path for time-zone jobs: no datetime, no zoneinfo (together
    ~6 ms of imports at every wake-up).
    """
    t = int(ts) - int(ts) % 60
    if not table or t < table[0][0] + 180 * 60 or t >= table[-1][0]:
        return None
    starts = [row[0] for row in table]
    i = bisect.bisect_right(starts, t) - 1
    offset = table[i][1]

    def fields_match(wall_ts: int) -> bool:
        g = time.gmtime(wall_ts)
        if g.tm_min not in f["minute"] or g.tm_hour not in f["hour"] or g.tm_mon not in f["month"]:
            return False
        dom = g.tm_mday in f["dom"]
        dow = (g.tm_wday + 1) % 7 in f["dow"]
        return (dom and dow) if (f["dom_star"] or f["dow_star"]) else (dom or dow)

    wall = t + offset
    if fields_match(wall):
        if f["fixed"] and i > 0:
            before = table[i - 1][1]
            if before > offset and t < table[i][0] + (before - offset):
                return False  # the second pass through a repeated hour
        return True
    if f["fixed"]:
        j = bisect.bisect_right(starts, t - 60) - 1
        previous = t - 60 + table[j][1]
        if 60 < wall - previous <= MAX_JUMP_S:
            m = previous + 60
            while m < wall:
                if fields_match(m):
                    return True
                m += 60
    return False
