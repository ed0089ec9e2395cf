"""Cron expressions: strict validation, `@every`, next runs, descriptions.

The parser follows Debian's cron (Vixie cron 3.0 with Debian's patches), so an
expression jobctl accepts is one cron accepts and means the same thing; its
messages name the field, what is wrong and how to fix it.  What goes into the
crontab is ``canonical``'s text of the parsed fields, never a library's
rendering; next runs come from clock (cron(8)'s own DST rules) and the human
text from describe, both working on the same parsed sets.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from jobctl.units import format_duration, parse_duration

SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@reboot": "@reboot",
}

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # leap years count


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, tuple(MONTHS), 1),
    _Field("day of week", 0, 7, tuple(DAYS), 0),
)


class ScheduleError(ValueError):
    """A schedule that cron would reject or that cannot mean what it says."""


@dataclass(frozen=True)
class Schedule:
    #: the schedule as written in the job file
    text: str
    #: what goes into the crontab: five fields, or "@reboot"
    cron: str

    @property
    def is_reboot(self) -> bool:
        return self.cron == "@reboot"

    def next_runs(self, start: datetime, count: int = 1, zone: str | None = None) -> list[datetime]:
        """The next ``count`` runs after ``start``, as cron(8) makes them in ``zone``.

        ``zone`` defaults to the ZoneInfo of an aware ``start``, else the
        system's.  An aware ``start`` gives aware times in the zone; a naive
        one is read as a wall time there and gives naive wall times.  DST as
        clock.due.
        """
        if self.is_reboot:
            return []
        from jobctl import clock

        fields = compile_fields(self.cron)
        assert fields is not None
        zone = zone or getattr(start.tzinfo, "key", None)  # a ZoneInfo start names its zone
        if start.tzinfo is None:
            aware = clock.attach(start, zone)
            return [t.replace(tzinfo=None) for t in clock.next_runs(fields, zone, aware, count)]
        return clock.next_runs(fields, zone, start, count)

    def prev_run(self, before: datetime, zone: str | None = None) -> datetime | None:
        """The latest run at or before ``before`` (same zone handling as next_runs)."""
        if self.is_reboot:
            return None
        from jobctl import clock

        fields = compile_fields(self.cron)
        assert fields is not None
        zone = zone or getattr(before.tzinfo, "key", None)
        if before.tzinfo is None:
            found = clock.prev_run(fields, zone, clock.attach(before, zone))
            return found.replace(tzinfo=None) if found else None
        return clock.prev_run(fields, zone, before)

    def describe(self) -> str:
        return describe(self.cron)


def compile_fields(cron: str) -> dict | None:
    """The field sets the wrapper matches against (clock.matches), JSON-ready."""
    if cron == "@reboot":
        return None
    compiled = _COMPILED.get(cron)
    if compiled is None:
        (minute, min_star), (hour, hr_star), (dom, dom_star), (month, _), (dow, dow_star) = parse_cron(cron)
        compiled = {
            "minute": sorted(minute), "hour": sorted(hour), "dom": sorted(dom), "month": sorted(month),
            "dow": sorted(dow), "dom_star": dom_star, "dow_star": dow_star,
            # cron(8): only jobs without * in minute and hour get the DST treatment
            "fixed": not (min_star or hr_star),
        }
        if len(_COMPILED) < _CACHE_MAX:
            _COMPILED[cron] = compiled
    # a copy, lists too: the result goes into definitions callers may change
    return {k: list(v) if isinstance(v, list) else v for k, v in compiled.items()}


def describe(cron: str) -> str:
    """Human text for a cron expression ("At 03:15, only on Sunday"), from the parsed sets.

    Written by jobctl.describe from cron's own semantics (the day rule as
    Vixie cron decides it, 7 as Sunday, uneven steps listed), not by
    cron-descriptor, which described some schedules otherwise than cron runs them.
    """
    from jobctl.jobs import describe as text

    if cron == "@reboot":
        return text.describe_reboot()
    fields = compile_fields(cron)
    assert fields is not None
    return text.describe(fields)


def _is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" and "٣", which int() or cron refuse."""
    return text.isascii() and text.isdigit()


def _number(text: str, field: _Field, what: str = "") -> int:
    if _is_digits(text):
        value = int(text)
    elif field.names and text.lower() in field.names:
        value = field.names.index(text.lower()) + field.name_base
    else:
        raise _junk(text, field, what or text)
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} field: {value} is out of range; use {field.low}-{field.high}"
        )
    return value


def _junk(text: str, field: _Field, what: str) -> ScheduleError:
    """A located error for text that is not a value, saying what cron would make of it.

    Debian's cron reads a number or name and skips whatever non-alphanumeric
    text follows it up to the next blank (``1#2`` runs at 1, ``*-5`` is ``*``):
    say so, and suggest what it would run, or the range that was likely meant.
    """
    m = re.match(r"\*|[A-Za-z0-9]+", text)
    head, rest = (m.group(0), text[m.end():]) if m else ("", text)
    if head and rest and not rest[0].isalnum():
        dash = next((c for c in rest if unicodedata.category(c) == "Pd" and c != "-"), None)
        if dash is not None and rest.startswith(dash):
            return ScheduleError(f"{field.name} field {what!r}: {dash!r} (U+{ord(dash):04X}) is not a hyphen; "
                                 f"write the range with '-', e.g. {head}-{rest[1:]}")
        if head == "*":
            return ScheduleError(f"{field.name} field {what!r}: '*' stands alone or with a step (*/N); cron reads "
                                 f"{text!r} as '*' and ignores {rest!r}; write * or a range such as "
                                 f"{field.low}-{field.high}")
        return ScheduleError(f"{field.name} field {what!r}: cron reads only {head!r} and silently ignores {rest!r}; "
                             f"write {head} (or the value you meant)")
    if field.names:
        hint = f"a number {field.low}-{field.high} or a name ({', '.join(field.names[:3])}, ...)"
    else:
        hint = f"a number {field.low}-{field.high}"
    for c in text:
        if c.isspace() and c not in " \t":
            return ScheduleError(f"{field.name} field {what!r}: {unicodedata.name(c, hex(ord(c)))} is not a blank "
                                 "cron knows; separate fields with spaces or tabs")
    return ScheduleError(f"{field.name} field: {text!r} is not {hint}")


def _parse_field(text: str, field: _Field) -> tuple[set[int], bool, list[tuple[str, int]]]:
    """The values a field matches, whether it starts with ``*``, and its ``*/N`` items whose step leaves one value.

    The last are decided by parse_cron: whether refusing one can offer a fix
    that means the same depends on the other fields.
    """
    if not text:
        raise ScheduleError(f"{field.name} field is empty")
    values: set[int] = set()
    oversteps: list[tuple[str, int]] = []
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"{field.name} field {text!r}: empty list element; remove the extra comma")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not _is_digits(step_text):
                if re.match(r"[0-9]+/", step_text):
                    first = step_text.split("/")[0]
                    raise ScheduleError(f"{field.name} field {item!r}: one step only; cron reads {base}/{first} "
                                        f"and ignores the rest; write {base}/{first}")
                raise ScheduleError(f"{field.name} field {item!r}: step {step_text!r} is not a whole number")
            step = int(step_text)
            if step == 0:
                raise ScheduleError(f"{field.name} field {item!r}: a step of 0 never advances; use 1 or more")
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base and not base.startswith("*"):
            a, _, b = base.partition("-")
            if "-" in b:
                raise ScheduleError(f"{field.name} field {item!r}: a range has two ends; cron reads it as "
                                    f"{a}-{b.split('-')[0]} and ignores the rest; write {a}-{b.split('-')[0]} "
                                    f"or {a}-{b.split('-')[-1]}")
            low, high = _number(a, field, item), _number(b, field, item)
            if low > high:
                raise ScheduleError(f"{field.name} field {item!r}: range runs backwards (cron does not wrap "
                                    f"around, so it never matches); write {_unwrap(a, b, low, high, step, field)}")
        else:
            low = high = _number(base, field, item)
            if slash:
                # Debian's cron rejects "5/10"; elsewhere it means from 5 on, every 10
                top = 6 if field.name == "day of week" else field.high  # 7 would be Sunday again
                fix = f"{base}-{top}/{step}" if step <= top - low else base
                raise ScheduleError(f"{field.name} field {item!r}: a step needs a range; write {fix}")
        if slash and high > low and step > high - low:
            if base == "*":
                oversteps.append((item, low))
            else:
                # cron takes it, but only the first value runs: rarely what was meant
                raise ScheduleError(
                    f"{field.name} field {item!r}: step {step} goes past the end of the range ({low}-{high}), "
                    f"so it matches only {low}; write {low} instead"
                )
        values.update(range(low, high + 1, step))
    if field.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return values, text.startswith("*"), oversteps


def _unwrap(a: str, b: str, low: int, high: int, step: int, field: _Field) -> str:
    """What a backwards range meant, as ranges cron reads forwards (fri-mon -> fri-sat,sun-mon).

    The values are those of counting from ``low`` by ``step`` round the end of
    the field and on to ``high``; each piece keeps the step and is spelled the
    way the operator spelled its end (names or numbers).
    """
    def spell(value: int, like: str) -> str:
        if field.names and not _is_digits(like):
            return field.names[value - field.name_base]
        return str(value)

    def piece(first: int, last: int, like_first: str, like_last: str) -> str:
        last = first + (last - first) // step * step  # the last value the step reaches
        if first == last:
            return spell(first, like_first)
        text = f"{spell(first, like_first)}-{spell(last, like_last)}"
        return text + (f"/{step}" if step > 1 else "")

    top = 6 if field.name == "day of week" else field.high  # Sunday is 0 again after 6
    if field.name == "day of week" and low == 7:
        return piece(0, high, a, b)  # 7-1: Sunday (7 or 0) through Monday
    last = low + (top - low) // step * step
    restart = last + step - (top - field.low + 1)
    parts = [piece(low, top, a, a)]
    if restart <= high:
        parts.append(piece(restart, high, b, b))
    return ",".join(parts)


def canonical(fields: tuple[tuple[set[int], bool], ...]) -> str:
    """The crontab text of parsed fields, in the form Debian's cron reads back to the same meaning.

    Same value sets, and the same ``*`` at the start of each field that
    starts with one: in Vixie cron that decides the day-of-month/day-of-week
    rule (AND when either starts with ``*``) and the DST class (minute or hour
    starting with ``*``), whatever the rest of the field says.  Values are
    plain numbers and forward ranges, so nothing depends on names, case,
    steps on single values or 7 for Sunday.
    """
    out = []
    for (values, star), field in zip(fields, FIELDS, strict=True):
        high = 6 if field.name == "day of week" else field.high  # 7 was folded into 0
        rest = set(values)
        head: list[str] = []
        if star:
            # the longest progression from the field's start that is all in the
            # set: "*" or "*/N" then carries the star; the rest is listed
            for step in range(1, high - field.low + 2):
                run = set(range(field.low, high + 1, step))
                if run <= values:
                    head = ["*" if step == 1 else f"*/{step}"]
                    rest -= run
                    break
            else:  # cannot happen for a parsed field: it holds its own "*" item
                raise ScheduleError(f"{field.name} field: no '*' form for {sorted(values)}")
        out.append(",".join(head + _ranges(sorted(rest))))
    return " ".join(out)


def _ranges(values: list[int]) -> list[str]:
    """[1, 2, 3, 5, 7, 9, 11, 20] -> ["1-3", "5-11/2", "20"]: runs of three or more as ranges.

    Greedy: from each value, the evenly spaced run of the values that follow
    it; cron reads ``a-b/s`` with ``b`` the run's last value as exactly that run.
    """
    out: list[str] = []
    i = 0
    while i < len(values):
        n, step = 1, (values[i + 1] - values[i] if i + 1 < len(values) else 1)
        while i + n < len(values) and values[i + n] - values[i + n - 1] == step:
            n += 1
        if n >= 3:
            out.append(f"{values[i]}-{values[i + n - 1]}" + (f"/{step}" if step > 1 else ""))
            i += n
        else:
            out.append(str(values[i]))
            i += 1
    return out


#: parsed expressions by their text: a thousand jobs share a handful of
#: schedules, and loading, applying and status parse each job's one or more
#: times (4,000 parses of 7 schedules for one `status` of 1,000 jobs)
_PARSED: dict[str, tuple[tuple[frozenset[int], bool], ...]] = {}
_COMPILED: dict[str, dict] = {}
_CACHE_MAX = 4096  # distinct expressions kept; past that, parsed afresh


def parse_cron(expr: str) -> tuple[tuple[set[int], bool], ...]:
    """The value sets of a five-field expression, each with whether the field starts with ``*``.

    Cached by the text; every call gets sets of its own.
    """
    parsed = _PARSED.get(expr)
    if parsed is None:
        parsed = tuple((frozenset(values), star) for values, star in _parse_cron(expr))
        if len(_PARSED) < _CACHE_MAX:
            _PARSED[expr] = parsed
    return tuple((set(values), star) for values, star in parsed)


def _parse_cron(expr: str) -> tuple[tuple[set[int], bool], ...]:
    parts = [part for part in re.split(r"[ \t]+", expr) if part]
    if len(parts) != 5:
        raise ScheduleError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
            + ("; jobctl does not take a seconds or year field" if len(parts) in (6, 7) else "")
        )
    parsed = [_parse_field(p, f) for p, f in zip(parts, FIELDS, strict=True)]
    _check_oversteps(parsed)
    fields = tuple((values, star) for values, star, _ in parsed)
    (_, _), (_, _), (doms, dom_star), (months, _), (_, dow_star) = fields
    # cron ORs day-of-month and day-of-week when both are restricted; with the
    # weekday unrestricted only the calendar days count, and those may not exist.
    if dow_star and not dom_star and not any(d <= _DAYS_IN_MONTH[m - 1] for m in months for d in doms):
        raise ScheduleError(
            "never fires: no month in this expression has those days "
            f"({','.join(map(str, sorted(doms)))} of {','.join(MONTHS[m - 1] for m in sorted(months))})"
        )
    return fields


def _check_oversteps(parsed: list[tuple[set[int], bool, list[tuple[str, int]]]]) -> None:
    """Refuse a ``*/N`` whose step leaves one value, when a fix with the same meaning exists.

    ``*/60`` in the minute field runs only at :00, rarely what was meant, so
    it is refused with the fix -- but the fix must keep what the leading
    ``*`` decides in cron: the DST class (minute or hour starting with ``*``)
    and the day rule (day of month or day of week starting with ``*``).  A
    weekday field has ``*/7`` (Sunday, with its star); elsewhere, where
    dropping the star would change the class or the day rule and no starred
    form is accepted, the schedule is taken as cron reads it.
    """
    stars = [star for _, star, _ in parsed]
    for index, (_, _, oversteps) in enumerate(parsed):
        field = FIELDS[index]
        for item, low in oversteps:
            if index == 4:
                fix = "*/7"  # Sunday (0 and 7), still starting with *
            elif index < 2 and not stars[1 - index]:
                continue  # the '*' makes it a wildcard job for DST; a plain value would be a fixed time
            elif index == 2 and not stars[4]:
                continue  # the '*' makes the days AND with the weekdays; a plain value would OR them
            else:
                fix = str(low)
            only = "Sunday" if index == 4 else str(low)
            raise ScheduleError(f"{field.name} field {item!r}: step {item.split('/')[1]} goes past the end of the "
                                f"field ({field.low}-{field.high}), so it matches only {only}; write {fix} instead")


_EVERY = re.compile(r"@every\s+(\S+)\s*$", re.IGNORECASE)


def every_to_cron(duration_text: str) -> str:
    """Turn an `@every` duration into the cron expression that runs it exactly."""
    try:
        seconds = parse_duration(duration_text)
    except ValueError:
        raise ScheduleError(f"@every {duration_text}: not a duration; write e.g. @every 15m, @every 2h or "
                            "@every 1d (whole minutes that divide an hour, hours that divide a day, or 7d)") from None
    if seconds <= 0:
        raise ScheduleError("@every needs a positive duration, e.g. @every 15m")
    if seconds % 60:
        raise ScheduleError(
            f"@every {duration_text}: cron runs at most once a minute, on the minute; "
            f"use a whole number of minutes, e.g. @every {format_duration(max(60, seconds - seconds % 60))}"
        )
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0:
        hours = minutes // 60
        if hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
        if hours == 24:
            return "0 0 * * *"
        if hours == 24 * 7:
            return "0 0 * * 0"
    # Suggest the exact intervals on either side.
    exact = [m for m in range(1, 60) if 60 % m == 0] + [h * 60 for h in range(1, 25) if 24 % h == 0] + [7 * 24 * 60]
    below = max((m for m in exact if m < minutes), default=None)
    above = min((m for m in exact if m > minutes), default=None)
    options = " or ".join(f"@every {format_duration(m * 60)}" for m in (below, above) if m)
    raise ScheduleError(
        f"@every {duration_text}: cron cannot run exactly every {format_duration(seconds)} "
        "(its steps restart every hour, day and month); "
        f"use {options}, or write a cron expression for the times you want"
    )


def parse(text: str) -> Schedule:
    """Validate a schedule as written in a job file."""
    for c in text:
        if c in " \t":
            continue
        if c.isspace():
            raise ScheduleError(f"{unicodedata.name(c, f'U+{ord(c):04X}')} in the schedule: cron separates fields "
                                "with spaces and tabs only; use a plain space")
        if not c.isprintable():
            raise ScheduleError(f"control character U+{ord(c):04X} in the schedule; remove it")
    # blanks as cron knows them: a no-break space is not one (checked above)
    stripped = " ".join(part for part in re.split(r"[ \t]+", text) if part)
    if not stripped:
        raise ScheduleError("schedule is empty; write a cron expression such as '*/15 * * * *'")
    if stripped.startswith("@"):
        word = stripped.split()[0].lower()
        if word == "@every":
            m = _EVERY.match(stripped)
            if not m:
                raise ScheduleError("@every needs one duration, e.g. '@every 15m'")
            return Schedule(text=stripped, cron=canonical(parse_cron(every_to_cron(m.group(1)))))
        if word in SPECIALS and len(stripped.split()) == 1:
            # written out in five fields: Debian's cron matches its @names
            # case-sensitively, and jobctl reads them as these fields
            cron = SPECIALS[word]
            return Schedule(text=stripped, cron=cron if cron == "@reboot" else canonical(parse_cron(cron)))
        import difflib

        close = difflib.get_close_matches(word, list(SPECIALS) + ["@every"], n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ScheduleError(
            f"unknown schedule {stripped!r}; {hint}use a 5-field cron expression, "
            "@every <duration>, or one of " + ", ".join(SPECIALS)
        )
    return Schedule(text=stripped, cron=canonical(parse_cron(stripped)))
