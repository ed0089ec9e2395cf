"""Human text for a compiled cron schedule, written from Debian cron's semantics.

``describe(fields)`` takes the dict ``schedule.compile_fields`` returns and
says in English what cron (Debian's cron 3.0pl1) will run.  It works on the
parsed value sets, never on the text, so it cannot describe something cron
does not do.  ``@reboot`` has no fields; the caller says so with
``describe_reboot()``.  Pure and stdlib only (it imports nothing from jobctl).

Cron's day rule, which the text makes explicit: when the day-of-month or the
day-of-week field starts with ``*`` (even ``*/2``) a day must match both
fields; when both are restricted a day matching either runs.

Style
-----
* Sentence case, 24-hour clock (``09:05``), English, no trailing full stop.
* Clauses joined by ", ": time, then days, then months, e.g.
  "At 13:31, on days 21 through 25 of the month, or on Monday through Friday, in April".
* Time of day:

  - all minutes of all hours: "Every minute"
  - minutes 0, n, 2n, ... where n divides 60: "Every n minutes"; never for
    any other set (``*/7`` ends at :56 and restarts at :00, 4 minutes later)
  - minute 0 of every hour: "Every hour, on the hour"
  - other minutes of every hour: "At minute 30 past every hour",
    "At minutes 0 and 59 past every hour"
  - at most 6 runs a day: the times themselves, "At 09:00 and 17:00"
  - one minute, hours h, h+n, ... all the way round the clock (n divides
    24): "Every 2 hours from 00:30 through 22:30"; never "every 5 hours"
    for ``*/5`` (20:00 to 00:00 is 4 hours)
  - up to three blocks of consecutive hours: "Every 10 minutes from 09:00
    through 17:50", "Every hour from 06:30 through 22:30" (first and last
    run of each block, so the bounds are runs, not round numbers)
  - otherwise the hours as numbers: "Every 15 minutes during hours 0, 2,
    4, ..., 22", "At minute 0 past hours 1, 3 and 8 through 11"
* Days (omitted when they do not restrict, e.g. ``*`` under the AND rule,
  or either side matching every day under the OR rule):

  - day of month only: "on day 1 of the month", "on days 1 and 15 of the month"
  - weekday only: "only on Sunday", "only on Monday through Friday"
  - both, AND rule: "on days 1 through 7 of the month, if it is Monday"
    (weekday alternatives joined by "or")
  - both, OR rule: "on days 1 and 15 of the month, or on Friday"
* Months: "in April", "in January and July", "in January through March";
  nothing when all twelve.
* Number lists: runs of 3 or more consecutive values become "X through Y";
  the last item is joined with "and"; no value appears twice; an evenly
  spaced list of 10 or more values is shortened to its first three and last
  ("1, 3, 5, ..., 31"), any other list is given in full.  Weekdays run from
  Monday and months from January, wrapping round where a run crosses the end
  ("Saturday through Monday", "November through February").
"""

from __future__ import annotations

WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

_ALL_MINUTES = frozenset(range(60))
_ALL_HOURS = frozenset(range(24))
_ALL_DOMS = frozenset(range(1, 32))
_ALL_MONTHS = frozenset(range(1, 13))
_ALL_DOWS = frozenset(range(7))
#: a time-of-day list longer than this is described by pattern instead
_MAX_TIMES = 6
#: an evenly spaced list of at least this many values is shortened to "a, b, c, ..., z"
_ELLIPSIS_FROM = 10
#: at most this many blocks of consecutive hours are given as "from HH:MM through HH:MM"
_MAX_WINDOWS = 3


def describe_reboot() -> str:
    """The text for ``@reboot``, which has no fields to describe."""
    return "At system start-up"


def describe(fields: dict) -> str:
    """Human text for a compiled schedule (``schedule.compile_fields``), e.g. "At 03:15, only on Sunday"."""
    minutes = sorted(set(fields["minute"]))
    hours = sorted(set(fields["hour"]))
    doms = sorted(set(fields["dom"]))
    months = sorted(set(fields["month"]))
    dows = sorted({d % 7 for d in fields["dow"]})  # 7 is Sunday too
    if not (minutes and hours and doms and months and dows):
        return "Never"
    parts = [_time(minutes, hours)]
    parts.extend(_days(doms, dows, bool(fields["dom_star"]), bool(fields["dow_star"])))
    if set(months) != _ALL_MONTHS:
        parts.append("in " + _join(_cyclic_items(months, 1, 12, lambda m: MONTHS[m - 1])))
    return ", ".join(parts)


# --- time of day ----------------------------------------------------------------


def _step(values: list[int]) -> int | None:
    """The common difference of an evenly spaced list of 2+ values (None if not evenly spaced)."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if all(b - a == step for a, b in zip(values, values[1:], strict=False)):
        return step
    return None


def _every_n(values: list[int], size: int) -> int | None:
    """n if values are exactly 0, n, 2n, ... with n dividing size (evenly spaced all the way round)."""
    step = _step(values)
    if step and step > 1 and values[0] == 0 and size % step == 0 and len(values) == size // step:
        return step
    return None


def _runs(values: list[int]) -> list[list[int]]:
    """Consecutive runs of a sorted list: [1, 2, 3, 7] -> [[1, 2, 3], [7]]."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


def _time(minutes: list[int], hours: list[int]) -> str:
    all_minutes = set(minutes) == _ALL_MINUTES
    step = _every_n(minutes, 60)
    if set(hours) == _ALL_HOURS:
        if all_minutes:
            return "Every minute"
        if step:
            return f"Every {step} minutes"
        if minutes == [0]:
            return "Every hour, on the hour"
        return f"At {_minutes_phrase(minutes)} past every hour"

    windows = _runs(hours)
    one_window_progression = step is not None and len(minutes) >= 3 and len(windows) == 1
    if not all_minutes and len(minutes) * len(hours) <= _MAX_TIMES and not one_window_progression:
        return "At " + _join([_hhmm(h, m) for h in hours for m in minutes])

    if len(minutes) == 1:
        hour_step = _step(hours)
        if hour_step and hour_step > 1 and 24 % hour_step == 0 and len(hours) == 24 // hour_step:
            m = minutes[0]
            return f"Every {hour_step} hours from {_hhmm(hours[0], m)} through {_hhmm(hours[-1], m)}"

    if all_minutes:
        lead = "Every minute"
    elif step:
        lead = f"Every {step} minutes"
    elif len(minutes) == 1:
        lead = "Every hour"
    else:
        lead = f"At {_minutes_phrase(minutes)} past every hour"
    listed = all_minutes or step is not None
    if len(windows) <= _MAX_WINDOWS and (listed or all(len(w) >= 2 for w in windows)):
        first, last = minutes[0], minutes[-1]
        spans = [f"from {_hhmm(w[0], first)} through {_hhmm(w[-1], last)}" for w in windows]
        return f"{lead} {_join(spans)}"
    hour_list = _join(_items(hours, str))
    if listed:
        return f"{lead} during {'hour' if len(hours) == 1 else 'hours'} {hour_list}"
    return f"At {_minutes_phrase(minutes)} past {'hour' if len(hours) == 1 else 'hours'} {hour_list}"


def _minutes_phrase(minutes: list[int]) -> str:
    return ("minute " if len(minutes) == 1 else "minutes ") + _join(_items(minutes, str))


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


# --- days and months ------------------------------------------------------------


def _days(doms: list[int], dows: list[int], dom_star: bool, dow_star: bool) -> list[str]:
    dom_restricts = set(doms) != _ALL_DOMS
    dow_restricts = set(dows) != _ALL_DOWS
    if not (dom_star or dow_star):
        # OR rule: a day matching either field runs, so a side matching every day makes every day run.
        if not (dom_restricts and dow_restricts):
            return []
        return [_dom_phrase(doms), "or on " + _join(_weekday_items(dows))]
    if dom_restricts and dow_restricts:
        return [_dom_phrase(doms), "if it is " + _join(_weekday_items(dows), "or")]
    if dom_restricts:
        return [_dom_phrase(doms)]
    if dow_restricts:
        return ["only on " + _join(_weekday_items(dows))]
    return []


def _dom_phrase(doms: list[int]) -> str:
    return ("on day " if len(doms) == 1 else "on days ") + _join(_items(doms, str)) + " of the month"


def _weekday_items(dows: list[int]) -> list[str]:
    # Monday first (cron's 1..6, then 0), so a weekend reads "Saturday and Sunday".
    monday_first = sorted((d - 1) % 7 for d in dows)
    return _cyclic_items(monday_first, 0, 6, lambda i: WEEKDAYS[(i + 1) % 7])


def _cyclic_items(values: list[int], low: int, high: int, name) -> list[str]:
    """Named items of a cyclic field, a run crossing from high back to low kept as one run."""
    runs = _runs(values)
    if len(runs) > 1 and runs[0][0] == low and runs[-1][-1] == high:
        runs = [runs[-1] + runs[0]] + runs[1:-1]
    return _run_items(runs, name)


# --- lists ----------------------------------------------------------------------


def _items(values: list[int], name) -> list[str]:
    """List items for sorted numbers: runs compressed, a long even progression shortened."""
    step = _step(values)
    if step and step > 1 and len(values) >= _ELLIPSIS_FROM:
        return [", ".join(name(v) for v in values[:3]) + ", ..., " + name(values[-1])]
    return _run_items(_runs(values), name)


def _run_items(runs: list[list[int]], name) -> list[str]:
    items: list[str] = []
    for run in runs:
        if len(run) >= 3:
            items.append(f"{name(run[0])} through {name(run[-1])}")
        else:
            items.extend(name(v) for v in run)
    return items


def _join(items: list[str], word: str = "and") -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
