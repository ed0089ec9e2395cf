"""Cron expressions: strict validation, `@every`, next runs, descriptions.

The parser follows Debian's cron (Vixie cron 3.0 with Debian's patches), so an
expression jobctl accepts is one cron accepts and means the same thing; its
messages name the field, what is wrong and how to fix it.  Next-run times come
from croniter and human descriptions from cron-descriptor, both imported only
when asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

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

    def next_runs(self, start: datetime, count: int = 1) -> list[datetime]:
        """The next ``count`` times after ``start`` (aware or naive, kept as is)."""
        if self.is_reboot:
            return []
        from croniter import croniter

        expr, day_or = _for_croniter(self.cron)
        it = croniter(expr, start, day_or=day_or)
        return [it.get_next(datetime) for _ in range(count)]

    def prev_run(self, before: datetime) -> datetime | None:
        """The latest scheduled time at or before ``before`` (same zone handling as next_runs)."""
        if self.is_reboot:
            return None
        from croniter import croniter

        expr, day_or = _for_croniter(self.cron)
        return croniter(expr, before, day_or=day_or).get_prev(datetime)

    def describe(self) -> str:
        return describe(self.cron)


def compile_fields(cron: str) -> dict | None:
    """The field sets the wrapper matches against (clock.matches), JSON-ready."""
    if cron == "@reboot":
        return None
    fields = parse_cron(cron)
    (minute, min_star), (hour, hr_star), (dom, dom_star), (month, _), (dow, dow_star) = fields
    return {
        "minute": sorted(minute), "hour": sorted(hour), "dom": sorted(dom), "month": sorted(month),
        "dow": sorted(dow), "dom_star": dom_star, "dow_star": dow_star,
        # cron(8): only jobs without * in minute and hour get the DST treatment
        "fixed": not (min_star or hr_star),
    }


def describe(cron: str) -> str:
    """Human text for a cron expression ("At 03:15 AM, only on Sunday")."""
    # cron-descriptor describes @reboot as "every minute"; say what it means.
    if cron == "@reboot":
        return "At system start-up"
    from cron_descriptor import ExpressionDescriptor, Options

    opts = Options()
    opts.use_24hour_time_format = True
    opts.verbose = False
    return str(ExpressionDescriptor(cron, opts))


def _number(text: str, field: _Field) -> int:
    if text.isdigit():
        value = int(text)
    elif field.names and text.lower() in field.names:
        value = field.names.index(text.lower()) + field.name_base
    else:
        if field.names:
            hint = f"a number {field.low}-{field.high} or a name ({', '.join(field.names[:3])}, ...)"
        else:
            hint = f"a number {field.low}-{field.high}"
        raise ScheduleError(f"{field.name} field: {text!r} is not {hint}")
    if not field.low <= value <= field.high:
        raise ScheduleError(
            f"{field.name} field: {value} is out of range; use {field.low}-{field.high}"
        )
    return value


def _parse_field(text: str, field: _Field) -> tuple[set[int], bool]:
    """Return the values a field matches and whether it starts with ``*``."""
    if not text:
        raise ScheduleError(f"{field.name} field is empty")
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"{field.name} field {text!r}: empty list element; remove the extra comma")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit():
                raise ScheduleError(f"{field.name} field {item!r}: step {step_text!r} is not a whole number")
            step = int(step_text)
            if step == 0:
                raise ScheduleError(f"{field.name} field {item!r}: a step of 0 never advances; use 1 or more")
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            a, _, b = base.partition("-")
            low, high = _number(a, field), _number(b, field)
            if low > high:
                # cron does not wrap around: fri-mon must be written as two ranges,
                # spelled the way the operator spelled each end
                def spell(value: int, like: str) -> str:
                    return field.names[value - field.name_base] if field.names and not like.isdigit() else str(value)

                top = spell(field.low + len(field.names) - 1 if field.names else field.high, a)
                bottom = spell(field.low, b)
                raise ScheduleError(
                    f"{field.name} field {item!r}: range runs backwards (cron does not wrap around); "
                    f"write {a}-{top},{bottom}-{b}"
                )
        else:
            low = high = _number(base, field)
            if slash:
                # Debian's cron rejects "5/10"; croniter would read it as 5-max/10.
                raise ScheduleError(
                    f"{field.name} field {item!r}: a step needs a range; write {base}-{field.high}/{step}"
                )
        span = field.high - field.low + 1
        if slash and step >= span:
            raise ScheduleError(
                f"{field.name} field {item!r}: step {step} is not less than the field's range "
                f"({field.low}-{field.high}), so it matches only {low}; write {low} instead"
            )
        values.update(range(low, high + 1, step))
    if field.name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return values, text.startswith("*")


def parse_cron(expr: str) -> tuple[tuple[set[int], bool], ...]:
    parts = expr.split()
    if len(parts) != 5:
        raise ScheduleError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
            + ("; jobctl does not take a seconds or year field" if len(parts) in (6, 7) else "")
        )
    fields = tuple(_parse_field(p, f) for p, f in zip(parts, FIELDS, strict=True))
    (_, _), (_, _), (doms, dom_star), (months, _), (_, dow_star) = fields
    # cron ORs day-of-month and day-of-week when both are restricted; with the
    # weekday unrestricted only the calendar days count, and those may not exist.
    if dow_star and not dom_star and not any(d <= _DAYS_IN_MONTH[m - 1] for m in months for d in doms):
        raise ScheduleError(
            "never fires: no month in this expression has those days "
            f"({','.join(map(str, sorted(doms)))} of {','.join(MONTHS[m - 1] for m in sorted(months))})"
        )
    return fields


def _for_croniter(cron: str) -> tuple[str, bool]:
    """What cron will run, spelled so croniter reads it the same way.

    croniter misreads some forms cron takes (a one-value range such as 5-5
    becomes *), and ORs day-of-month with day-of-week where cron ANDs them
    (either field starting with *, even */2).  So it gets plain value lists
    and is told which of the two the days mean.
    """
    fields = parse_cron(cron)
    texts = []
    for (values, _), field in zip(fields, FIELDS, strict=True):
        high = 6 if field.name == "day of week" else field.high  # 7 was folded into 0
        full = set(range(field.low, high + 1))
        texts.append("*" if values == full else ",".join(map(str, sorted(values))))
    day_or = not (fields[2][1] or fields[4][1])
    if day_or and "*" in (texts[2], texts[4]):
        # Either side matches every day, so their OR does too.
        texts[2] = texts[4] = "*"
    return " ".join(texts), day_or


_EVERY = re.compile(r"@every\s+(\S+)\s*$")


def every_to_cron(duration_text: str) -> str:
    """Turn an `@every` duration into the cron expression that runs it exactly."""
    from .spec import format_duration, parse_duration

    try:
        seconds = parse_duration(duration_text)
    except ValueError as exc:
        raise ScheduleError(f"@every: {exc}") from None
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
    stripped = " ".join(text.split())
    if not stripped:
        raise ScheduleError("schedule is empty; write a cron expression such as '*/15 * * * *'")
    if stripped.startswith("@"):
        word = stripped.split()[0].lower()
        if word == "@every":
            m = _EVERY.match(stripped)
            if not m:
                raise ScheduleError("@every needs one duration, e.g. '@every 15m'")
            cron = every_to_cron(m.group(1))
            return Schedule(text=stripped, cron=cron)
        if word in SPECIALS and len(stripped.split()) == 1:
            return Schedule(text=stripped, cron=SPECIALS[word])
        import difflib

        close = difflib.get_close_matches(word, list(SPECIALS) + ["@every"], n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ScheduleError(
            f"unknown schedule {stripped!r}; {hint}use a 5-field cron expression, "
            "@every <duration>, or one of " + ", ".join(SPECIALS)
        )
    parse_cron(stripped)
    return Schedule(text=stripped, cron=stripped)


def expand(cron: str) -> str:
    """The 5-field form of a cron expression (@daily → 0 0 * * *)."""
    return SPECIALS.get(cron, cron)
