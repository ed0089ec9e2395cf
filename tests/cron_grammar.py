"""Hypothesis strategies for 5-field cron schedules as Debian cron 3.0pl1-162's entry.c accepts (and rejects) them.

The grammar is the one the C code implements (see ``cron_oracle``), not the one in crontab(5)::

    schedule := "@" word | field SEP field SEP field SEP field SEP field        SEP := (" " | "\\t")+
    field    := range ("," range)* [junk]       -- junk: anything non-blank after the last range is skipped,
                                                   unless it starts alphanumeric (then it is part of a token)
    range    := "*" ["/" number] | value ["-" value ["/" number]] | value "/" number   (the last is rejected)
    value    := number | name                   -- names only for month (jan..dec) and dow (sun..sat), any case,
                                                   whole 3-letter token; dow 0 and 7 are both Sunday
    number   := digit+                          -- leading zeros allowed, atoi() semantics

Generated on purpose: leading zeros, names in any case, mixed name/number ranges (``mon-7``, ``feb-6``), ``*``,
``*/N``, ``a-b``, ``a-b/N``, lists, steps on single values (rejected), 0/7 Sunday, backwards ranges (accepted, set
nothing), steps larger than the field, out-of-range values, tabs as separators, @specials in any case, unknown
@words, and junk suffixes.

``schedules()`` yields valid and invalid strings; ``valid_schedules()`` only those the oracle accepts.  A schedule
is "accepted" when ``cron_oracle.parse_line(schedule + " true")`` does not raise.
"""

from __future__ import annotations

from cron_oracle import NotAnEntry, Reject, parse_line
from hypothesis import strategies as st

__all__ = ["TRAPS", "accepts", "schedules", "valid_schedules", "field"]

# (low, high, names) per field, as get_list is called in load_entry
_FIELDS = (
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    (0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)

_SPECIALS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_BAD_SPECIALS = ("@HOURLY", "@Daily", "@every", "@", "@5m", "@hourly,", "@week", "@yearly5")
_BAD_NAMES = ("monday", "sept", "thur", "tues", "ja", "m", "su", "january", "mo0", "x")
_JUNK = (";", ".5", ";rm", "x", "-", "/", ",", "#c", "!", "=", "*", "-3", "/2", ".", "_", "5x", "\xff")


def accepts(schedule: str) -> bool:
    """True if Debian cron accepts ``schedule`` followed by a command (user crontab format)."""
    try:
        parse_line(schedule + " true")
    except (Reject, NotAnEntry):
        return False
    return True


@st.composite
def _mixed_case(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


def _number(low: int, high: int, *, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        values = st.integers(low, high)
    else:
        values = st.one_of(
            st.integers(low, high),
            st.integers(max(0, low - 2), high + 3),
            st.sampled_from([60, 99, 100, 4294967296, 4294967297, 2147483647, 99999999999999999999]),
        )
    zeros = st.sampled_from(["", "", "", "0", "00"])
    return st.tuples(zeros, values).map(lambda t: t[0] + str(t[1]))


def _value(low: int, high: int, names: tuple[str, ...] | None, *, valid: bool) -> st.SearchStrategy[str]:
    options = [_number(low, high, valid=valid)]
    if names:
        options.append(st.sampled_from(names).flatmap(_mixed_case))
    if not valid:
        options.append(st.sampled_from(_BAD_NAMES))
    return st.one_of(*options)


def _step(high: int, *, valid: bool) -> st.SearchStrategy[str]:
    if valid:
        values = st.one_of(st.integers(1, high + 1), st.integers(high + 1, 100))
    else:
        values = st.one_of(st.integers(0, 100), st.sampled_from([-1, 4294967296, 4294967297, 2147483647]))
    zeros = st.sampled_from(["", "", "0"])
    return st.tuples(zeros, values).map(lambda t: "/" + t[0] + str(t[1]))


def _range(low: int, high: int, names: tuple[str, ...] | None, *, valid: bool) -> st.SearchStrategy[str]:
    value = _value(low, high, names, valid=valid)
    step = _step(high, valid=valid)
    options = [
        st.just("*"),
        step.map(lambda s: "*" + s),
        value,
        st.tuples(value, value).map("-".join),
        st.tuples(value, value, step).map(lambda t: f"{t[0]}-{t[1]}{t[2]}"),
    ]
    if not valid:
        options.append(st.tuples(value, step).map("".join))  # step on a single number: rejected
        options.append(st.just(""))  # empty element ("1,,2", trailing comma)
    return st.one_of(*options)


def field(index: int, *, valid: bool = False, junk: bool = True) -> st.SearchStrategy[str]:
    """One of the five fields (0 = minute .. 4 = day of week)."""
    low, high, names = _FIELDS[index]
    ranges = st.lists(_range(low, high, names, valid=valid), min_size=1, max_size=4).map(",".join)
    if not junk:
        return ranges.filter(bool)
    suffix = st.one_of(st.just(""), st.just(""), st.just(""), st.sampled_from(_JUNK))
    return st.tuples(ranges, suffix).map("".join).filter(bool)


def _sep() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from([" ", " ", "\t"]), min_size=1, max_size=3).map("".join)


def _five(*, valid: bool, junk: bool) -> st.SearchStrategy[str]:
    return st.tuples(
        field(0, valid=valid, junk=junk),
        _sep(),
        field(1, valid=valid, junk=junk),
        _sep(),
        field(2, valid=valid, junk=junk),
        _sep(),
        field(3, valid=valid, junk=junk),
        _sep(),
        field(4, valid=valid, junk=junk),
    ).map("".join)


def schedules(*, junk: bool = True) -> st.SearchStrategy[str]:
    """Schedules from cron's grammar, valid and invalid (about half are accepted).  ``junk=False`` leaves out the
    trailing-junk suffixes (``5;x``, ``*5``, ...) that cron silently skips or that reject the line."""
    specials = st.one_of(st.sampled_from(_SPECIALS), st.sampled_from(_BAD_SPECIALS))
    return st.one_of(
        specials,
        _five(valid=True, junk=False),
        _five(valid=True, junk=junk),
        _five(valid=False, junk=junk),
    )


def valid_schedules(*, junk: bool = False) -> st.SearchStrategy[str]:
    """Schedules the oracle accepts (including backwards ranges that set nothing, oversized steps, 7 = Sunday,
    mixed-case names...).  With ``junk=True`` also the accepted junk forms (``*5``, ``5;x``, ``1-2-3``)."""
    return st.one_of(st.sampled_from(_SPECIALS), _five(valid=True, junk=junk)).filter(accepts)


# Hand-picked tricky schedules (valid and invalid).  The comment says what Debian cron does with each.
TRAPS: list[str] = [
    # --- Sunday as 0 and 7, dow ranges
    "0 0 * * 7-7",  # dow {0,7}: 7 alone sets 7, the fold adds 0
    "0 0 * * 7",  # Sunday
    "0 0 * * 0",  # Sunday
    "* * * * 0,7",  # Sunday
    "0 0 * * 0-7",  # every day, dow bits 0..7
    "0 0 * * 1-7",  # every day (mon..sun)
    "0 0 * * 1-7/3",  # mon, thu, sun(7) -> {1,4,0,7}
    "0 0 * * 0-6/2",  # sun, tue, thu, sat
    "0 0 * * */2",  # 0,2,4,6 -- DOW_STAR set
    "0 0 * * */7",  # {0,7}
    "0 0 * * 6-0",  # backwards range: accepted, sets nothing; DOM_STAR -> never runs
    "0 0 * * sun-sat",  # 0..6
    "0 0 * * sat-sun",  # backwards (6-0): accepted, empty
    "0 9 * * mon-7",  # mixed name/number: 1..7
    "0 9 * * MON-fri",  # names any case
    "0 9 * * mOn,WeD,fRi",
    "0 9 * * Monday",  # whole token must be a 3-letter name: rejected
    "0 9 * * 8",  # out of range: rejected
    "0 9 * * sun/2",  # step on a single value: rejected
    # --- dom / dow OR vs AND (DOM_STAR/DOW_STAR only when the field *starts* with '*')
    "0 0 1-31 * 1",  # OR: every day (1-31 is not '*')
    "0 0 1 * 0-6",  # OR: every day
    "0 0 1-31/2 * 1",  # OR: odd days or Mondays
    "0 0 */2 * 1",  # AND: odd days that are Mondays
    "0 0 1 * */1",  # AND (DOW_STAR): the 1st of every month
    "0 0 13 * 5",  # OR: 13th or any Friday
    "0 0 */1 * 5",  # AND: Fridays
    "0 0 *,13 * 5",  # starts with '*': AND
    "0 0 13,* * 5",  # does not start with '*': OR (every day)
    "0 0 29 2 */7",  # AND: Feb 29 that is a Sunday
    "0 0 29 2 *",  # Feb 29 only
    "0 0 30 2 *",  # never (accepted)
    "0 0 31 4 *",  # never (accepted)
    "0 0 31 * *",  # 7 months a year
    # --- months
    "0 0 1 feb-6 *",  # mixed name/number month range: 2..6
    "0 0 1 JAN,jul *",
    "0 0 1 dec-jan *",  # backwards: accepted, empty month -> never
    "0 0 1 */3 *",  # jan, apr, jul, oct
    "0 0 1 2-12/5 *",  # 2, 7, 12
    "0 0 1 13 *",  # rejected
    "0 0 1 0 *",  # rejected
    "0 0 1 sept *",  # rejected
    # --- steps
    "5-5/2 * * * *",  # accepted: just 5
    "5/2 * * * *",  # rejected: step on a single number
    "*/0 * * * *",  # rejected: step 0
    "*/60 * * * *",  # minute 0 only
    "*/100 * * * *",  # minute 0 only
    "0-59/59 * * * *",  # 0 and 59
    "1-59/2147483647 * * * *",  # rejected: i += step overflows int
    "0-59/2147483647 * * * *",  # accepted: minute 0
    "*/4294967296 * * * *",  # atoi -> 0: rejected
    "*/4294967297 * * * *",  # atoi -> 1: every minute
    "*/015 * * * *",  # leading zero in step: 15
    "10-5/2 * * * *",  # backwards: accepted, empty -> never
    "*/2/3 * * * *",  # second "/3" is skipped junk: */2
    # --- numbers
    "00 09 * * MON",  # leading zeros
    "000 0009 001 001 000",
    "4294967296 * * * *",  # atoi truncation -> minute 0
    "60 * * * *",  # rejected
    "0 24 * * *",  # rejected
    "0 0 0 * *",  # rejected (dom starts at 1)
    "0 0 32 * *",  # rejected
    "-1 * * * *",  # rejected
    "1-60 * * * *",  # rejected (range end checked)
    "0,30 2 * * *",  # DST: both run at 03:00 on spring-forward day
    "30 2 * * *",
    "*/30 * * * *",
    "0 2 * * *",
    "59 1 * * *",
    # --- lists and junk
    "1,2,3 * * * *",
    "1,,2 * * * *",  # rejected: empty element
    "1, * * * *",  # rejected (then the minute field is "1,")
    ",1 * * * *",  # rejected
    "1#2 * * * *",  # accepted: "#2" is skipped junk -> minute 1
    "*5 * * * *",  # accepted as '*' (MIN_STAR)
    "5; * * * *",  # accepted: minute 5
    "5x * * * *",  # rejected: "5x" is one token
    "1-2-3 * * * *",  # accepted as 1-2
    "5.5 * * * *",  # accepted as 5
    "1,* * * * *",  # all minutes but NO MIN_STAR (not a wildcard job)
    "*,1 * * * *",  # MIN_STAR
    "0 0 * * * *",  # rejected in a user crontab: command starts with '*'
    "0 0 * *",  # rejected: "true" is not a day of week
    "0\t0\t*\t*\t*",  # tabs as separators
    " 0 0 * * *",  # leading blank is fine
    # --- @specials
    "@hourly",  # minute 0, HR_STAR -> wildcard job
    "@daily",  # no *_STAR flags
    "@midnight",
    "@weekly",  # dow Sunday, DOM_STAR
    "@monthly",  # dom 1, DOW_STAR
    "@yearly",  # Jan 1, DOW_STAR
    "@annually",
    "@reboot",  # no time bits
    "@HOURLY",  # rejected (strcmp)
    "@Daily",  # rejected
    "@every",  # rejected
    "@",  # rejected
    "@hourly,",  # rejected
    "@daily\t",  # fine
]
