"""jobctl.describe: the human text of a schedule, checked against Debian cron's semantics.

The table's expected texts are written by hand from cron's rules and the style in
the module docstring.  The property test reads the text back with a small
interpreter of that style and checks it names exactly the minutes, days and
months cron runs.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobctl.jobs.describe import describe, describe_reboot

WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _expand(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            a, b = low, high
        elif "-" in base:
            a, b = (int(x) for x in base.split("-"))
        else:
            a = b = int(base)
        values.update(range(a, b + 1, int(step) if step else 1))
    return values


def fields_of(expr: str) -> dict:
    """What schedule.compile_fields makes of a numeric cron expression (written independently here)."""
    minute, hour, dom, month, dow = expr.split()
    dows = {d % 7 for d in _expand(dow, 0, 7)}
    return {
        "minute": sorted(_expand(minute, 0, 59)), "hour": sorted(_expand(hour, 0, 23)),
        "dom": sorted(_expand(dom, 1, 31)), "month": sorted(_expand(month, 1, 12)), "dow": sorted(dows),
        "dom_star": dom.startswith("*"), "dow_star": dow.startswith("*"),
        "fixed": not (minute.startswith("*") or hour.startswith("*")),
    }


TABLE = [
    # minutes of every hour
    ("* * * * *", "Every minute"),
    ("*/2 * * * *", "Every 2 minutes"),
    ("*/15 * * * *", "Every 15 minutes"),
    ("*/30 * * * *", "Every 30 minutes"),
    ("*/7 * * * *", "At minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56 past every hour"),  # :56 -> :00 is 4 min
    ("*/45 * * * *", "At minutes 0 and 45 past every hour"),
    ("0-59/59 * * * *", "At minutes 0 and 59 past every hour"),
    ("5-59/15 * * * *", "At minutes 5, 20, 35 and 50 past every hour"),
    ("1-59/2 * * * *", "At minutes 1, 3, 5, ..., 59 past every hour"),
    ("0 * * * *", "Every hour, on the hour"),
    ("30 * * * *", "At minute 30 past every hour"),
    ("0-4,30-34 * * * *", "At minutes 0 through 4 and 30 through 34 past every hour"),
    ("0,1,30 * * * *", "At minutes 0, 1 and 30 past every hour"),
    # hours
    ("0 0 * * *", "At 00:00"),
    ("15 3 * * *", "At 03:15"),
    ("0 9,17 * * *", "At 09:00 and 17:00"),
    ("30 */2 * * *", "Every 2 hours from 00:30 through 22:30"),
    ("0 */3 * * *", "Every 3 hours from 00:00 through 21:00"),
    ("0 1-23/2 * * *", "Every 2 hours from 01:00 through 23:00"),
    ("0 */4 * * *", "At 00:00, 04:00, 08:00, 12:00, 16:00 and 20:00"),
    ("0 */5 * * *", "At 00:00, 05:00, 10:00, 15:00 and 20:00"),  # 20:00 -> 00:00 is 4 hours
    ("0 */7 * * *", "At 00:00, 07:00, 14:00 and 21:00"),
    ("0 0-14/2 * * *", "At minute 0 past hours 0, 2, 4, 6, 8, 10, 12 and 14"),
    ("0 6-22 * * *", "Every hour from 06:00 through 22:00"),
    ("30 0-5,8,10,12-23 * * *", "At minute 30 past hours 0 through 5, 8, 10 and 12 through 23"),
    ("* 9 * * *", "Every minute from 09:00 through 09:59"),
    ("* 8-11,13-17 * * *", "Every minute from 08:00 through 11:59 and from 13:00 through 17:59"),
    ("*/10 9-17 * * *", "Every 10 minutes from 09:00 through 17:50"),
    ("*/15 9 * * *", "Every 15 minutes from 09:00 through 09:45"),
    ("*/30 9 * * *", "At 09:00 and 09:30"),
    ("*/20 9,17 * * *", "At 09:00, 09:20, 09:40, 17:00, 17:20 and 17:40"),
    ("15,45 9-17 * * *", "At minutes 15 and 45 past every hour from 09:15 through 17:45"),
    ("*/15 */2 * * *", "Every 15 minutes during hours 0, 2, 4, ..., 22"),
    ("*/5 1,3,5,7 * * *", "Every 5 minutes during hours 1, 3, 5 and 7"),
    # weekdays only (AND rule, day of month *)
    ("0 0 * * 1-5", "At 00:00, only on Monday through Friday"),
    ("0 12 * * 1-5", "At 12:00, only on Monday through Friday"),
    ("0 0 * * 0", "At 00:00, only on Sunday"),
    ("0 0 * * 0,7", "At 00:00, only on Sunday"),
    ("0 0 * * 7", "At 00:00, only on Sunday"),
    ("0 0 * * 6,0", "At 00:00, only on Saturday and Sunday"),
    ("0 0 * * 5-7", "At 00:00, only on Friday through Sunday"),
    ("0 0 * * 0-2", "At 00:00, only on Sunday through Tuesday"),
    ("0 0 * * 6-7,1", "At 00:00, only on Saturday through Monday"),
    ("0 0 * * 1,3,5", "At 00:00, only on Monday, Wednesday and Friday"),
    ("0 0 * * */2", "At 00:00, only on Tuesday, Thursday, Saturday and Sunday"),
    ("0 0 * * 0-7", "At 00:00"),  # every weekday restricts nothing
    ("*/15 9-17 * * 1-5", "Every 15 minutes from 09:00 through 17:45, only on Monday through Friday"),
    # days of the month only
    ("0 0 1 * *", "At 00:00, on day 1 of the month"),
    ("0 0 1,15 * *", "At 00:00, on days 1 and 15 of the month"),
    ("0 0 */2 * *", "At 00:00, on days 1, 3, 5, ..., 31 of the month"),
    ("0 0 1-31 * *", "At 00:00"),
    # both restricted, neither starting with *: OR
    ("0 0 1,15 * 5", "At 00:00, on days 1 and 15 of the month, or on Friday"),
    ("0 9 1 * 1-5", "At 09:00, on day 1 of the month, or on Monday through Friday"),
    ("0 0 8-14 * 6", "At 00:00, on days 8 through 14 of the month, or on Saturday"),
    ("31 13 21-25 4 1-5", "At 13:31, on days 21 through 25 of the month, or on Monday through Friday, in April"),
    ("0 0 1-31 * 1", "At 00:00"),  # every day of the month, or Monday: every day
    ("0 0 1-5 * 0-6", "At 00:00"),  # or every weekday: every day
    ("0 0 1-5 * 0-7", "At 00:00"),
    # both restricted, one starting with *: AND
    ("0 0 */2 * 1", "At 00:00, on days 1, 3, 5, ..., 31 of the month, if it is Monday"),
    ("0 0 1-7 * */2", "At 00:00, on days 1 through 7 of the month, if it is Tuesday, Thursday, Saturday or Sunday"),
    ("0 0 8-14 * */7", "At 00:00, on days 8 through 14 of the month, if it is Sunday"),
    # months
    ("0 0 * 4 *", "At 00:00, in April"),
    ("0 0 1 1 *", "At 00:00, on day 1 of the month, in January"),
    ("0 0 1 1,7 *", "At 00:00, on day 1 of the month, in January and July"),
    ("0 0 1 1-3 *", "At 00:00, on day 1 of the month, in January through March"),
    ("0 0 1 11-12,1-2 *", "At 00:00, on day 1 of the month, in November through February"),
    ("0 0 29 2 *", "At 00:00, on day 29 of the month, in February"),
    ("0 4 * 12,1,2 0", "At 04:00, only on Sunday, in December through February"),
    ("0 0 * 1-12 *", "At 00:00"),
]


@pytest.mark.parametrize(("expr", "text"), TABLE, ids=[e for e, _ in TABLE])
def test_table(expr: str, text: str) -> None:
    assert describe(fields_of(expr)) == text


def test_table_is_large_and_distinct() -> None:
    assert len(TABLE) >= 40
    assert len({e for e, _ in TABLE}) == len(TABLE)


def test_reboot() -> None:
    assert describe_reboot() == "At system start-up"


def test_fixed_does_not_change_the_text() -> None:
    f = fields_of("15 3 * * *")
    assert describe({**f, "fixed": False}) == describe({**f, "fixed": True})


def test_agrees_with_the_parser() -> None:
    from jobctl.jobs.schedule import compile_fields

    for expr, text in TABLE:
        assert describe(compile_fields(expr)) == text, expr


# --- reading the text back --------------------------------------------------------------------------------------


def _split(text: str, word: str = "and") -> list[str]:
    head, sep, last = text.rpartition(f" {word} ")
    return (head.split(", ") + [last]) if sep else [text]


def _numbers(text: str) -> list[int]:
    """"1, 3, 5, ..., 31" or "0 through 4, 8 and 10" -> the values, in order (duplicates kept)."""
    if ", ..., " in text:
        head, last = text.split(", ..., ")
        first = [int(x) for x in head.split(", ")]
        assert len(first) == 3 and first[1] - first[0] == first[2] - first[1] > 1, text
        values = list(range(first[0], int(last) + 1, first[1] - first[0]))
        assert values[-1] == int(last) and len(values) >= 5, text  # the ellipsis hides at least one value
        return values
    out: list[int] = []
    for item in _split(text):
        a, _, b = item.partition(" through ")
        assert not b or int(b) - int(a) >= 2, text  # "X through Y" only for 3 or more
        out.extend(range(int(a), int(b or a) + 1))
    return out


def _names(text: str, names: list[str], word: str = "and") -> list[int]:
    """Named items, "X through Y" walking forward round the cycle; indexes in names."""
    out: list[int] = []
    for item in _split(text, word):
        a, _, b = item.partition(" through ")
        i, j = names.index(a), names.index(b or a)
        assert not b or (j - i) % len(names) >= 2, text  # "X through Y" only for 3 or more
        out.append(i)
        while i != j:
            i = (i + 1) % len(names)
            out.append(i)
    return out


def _distinct(values: list[int]) -> set[int]:
    assert len(values) == len(set(values)), values
    return set(values)


HHMM = r"(\d\d):(\d\d)"


def _times(text: str) -> set[tuple[int, int]]:
    """(hour, minute) pairs the time part names."""
    every_hour = range(24)
    if text == "Every minute":
        return {(h, m) for h in every_hour for m in range(60)}
    if m := re.fullmatch(r"Every (\d+) minutes", text):
        return {(h, x) for h in every_hour for x in range(0, 60, int(m[1]))}
    if text == "Every hour, on the hour":
        return {(h, 0) for h in every_hour}
    if m := re.fullmatch(r"At minutes? (.+) past every hour", text):
        return {(h, x) for h in every_hour for x in _distinct(_numbers(m[1]))}
    if m := re.fullmatch(rf"At ({HHMM}(?:(?:, | and ){HHMM})*)", text):
        pairs = [(int(a), int(b)) for a, b in re.findall(HHMM, m[1])]
        assert pairs == sorted(pairs) and len(pairs) == len(set(pairs)) <= 6, text
        assert len(pairs) == 1 or _split(m[1]) == [f"{a:02d}:{b:02d}" for a, b in pairs], text
        return set(pairs)
    if m := re.fullmatch(rf"Every (\d+) hours from {HHMM} through {HHMM}", text):
        step, h1, m1, h2, m2 = map(int, m.groups())
        assert m1 == m2 and 24 % step == 0 and (h2 - h1) // step + 1 == 24 // step, text
        return {(h, m1) for h in range(h1, h2 + 1, step)}
    lead = r"(Every minute|Every (\d+) minutes|Every hour|At minutes? (.+) past every hour)"
    if m := re.fullmatch(lead + r" (from .+)", text):
        if m[1] == "Every minute":
            minutes = set(range(60))
        elif m[2]:
            minutes = set(range(0, 60, int(m[2])))
        elif m[1] == "Every hour":
            minutes = None
        else:
            minutes = _distinct(_numbers(m[3]))
        out: set[tuple[int, int]] = set()
        windows = _split(m[4])
        assert 1 <= len(windows) <= 3, text
        for window in windows:
            w = re.fullmatch(rf"from {HHMM} through {HHMM}", window)
            assert w, text
            h1, m1, h2, m2 = map(int, w.groups())
            if minutes is None:
                assert m1 == m2, text
                mins = {m1}
            else:
                assert (m1, m2) == (min(minutes), max(minutes)), text  # the bounds are runs
                mins = minutes
            assert h1 <= h2, text
            out |= {(h, x) for h in range(h1, h2 + 1) for x in mins}
        return out
    if m := re.fullmatch(r"(Every minute|Every (\d+) minutes) during hours? (.+)", text):
        minutes = set(range(60)) if m[1] == "Every minute" else set(range(0, 60, int(m[2])))
        return {(h, x) for h in _distinct(_numbers(m[3])) for x in minutes}
    if m := re.fullmatch(r"At minutes? (.+) past hours? (.+)", text):
        return {(h, x) for h in _distinct(_numbers(m[2])) for x in _distinct(_numbers(m[1]))}
    raise AssertionError(f"unreadable time: {text!r}")


def _read(text: str):
    """(times, day predicate over (dom, dow), months) that a description names."""
    months = set(range(1, 13))
    if ", in " in text:
        text, _, month_text = text.rpartition(", in ")
        months = {i + 1 for i in _distinct(_names(month_text, MONTHS))}
        assert months != set(range(1, 13)), "all months mentioned"

    def every_day(d, w):
        return True

    day = every_day
    if ", only on " in text:
        text, _, w_text = text.partition(", only on ")
        ws = _distinct(_names(w_text, WEEKDAYS))

        def day(d, w):
            return w in ws
    elif m := re.search(r", on days? (.+?) of the month(?:, (or on|if it is) (.+))?$", text):
        text = text[:m.start()]
        ds = _distinct(_numbers(m[1]))
        if m[2] is None:
            def day(d, w):
                return d in ds
        elif m[2] == "or on":
            ws = _distinct(_names(m[3], WEEKDAYS))

            def day(d, w):
                return d in ds or w in ws
        else:
            ws = _distinct(_names(m[3], WEEKDAYS, "or"))

            def day(d, w):
                return d in ds and w in ws
    return _times(text), day, months


# --- property test -----------------------------------------------------------------------------------------------


def _field(low: int, high: int) -> st.SearchStrategy[list[int]]:
    """All values, a step progression, a few runs, or any set: the shapes cron expressions take."""
    values = list(range(low, high + 1))
    steps = st.one_of(st.integers(1, 4), st.integers(1, high - low))
    progression = st.builds(lambda a, n, b: list(range(a, b + 1, n)), st.integers(low, high), steps,
                            st.integers(low, high)).filter(bool)
    runs = st.lists(st.tuples(st.integers(low, high), st.integers(0, 8)), min_size=1, max_size=4).map(
        lambda rs: sorted({v for a, n in rs for v in range(a, min(a + n, high) + 1)}))
    # evenly spaced all the way round (*/n, a-high/n), n a divisor of the field's size or not
    round_ = st.integers(1, high - low).flatmap(
        lambda n: st.integers(low, low + n - 1).map(lambda a: list(range(a, high + 1, n))))
    return st.one_of(st.just(values), progression, round_, runs,
                     st.sets(st.sampled_from(values), min_size=1).map(sorted))


FIELDS = st.fixed_dictionaries({
    "minute": _field(0, 59), "hour": _field(0, 23), "dom": _field(1, 31), "month": _field(1, 12),
    "dow": _field(0, 6), "dom_star": st.booleans(), "dow_star": st.booleans(), "fixed": st.booleans(),
})


@settings(max_examples=600, deadline=None)
@given(FIELDS)
def test_text_says_exactly_what_cron_does(f: dict) -> None:
    text = describe(f)
    assert isinstance(text, str) and text and text[0].isupper()
    assert not text.endswith((".", ",", " ")) and "  " not in text

    # "every N minutes" / "every N hours" only for evenly spaced sets all the way round
    for n in re.findall(r"[Ee]very (\d+) minutes", text):
        assert 60 % int(n) == 0 and f["minute"] == list(range(0, 60, int(n))), text
    for n in re.findall(r"[Ee]very (\d+) hours", text):
        step = int(n)
        hours = f["hour"]
        assert 24 % step == 0 and hours == list(range(hours[0], 24, step)) and hours[0] < step, text

    # OR is said exactly when cron ORs and both sides restrict; AND likewise
    all_dom, all_dow = f["dom"] == list(range(1, 32)), f["dow"] == list(range(7))
    or_rule = not (f["dom_star"] or f["dow_star"])
    assert (", or on " in text) == (or_rule and not all_dom and not all_dow), text
    assert (", if it is " in text) == (not or_rule and not all_dom and not all_dow), text

    # no value named twice
    for name in WEEKDAYS + MONTHS:
        assert text.count(name) <= 1, text

    # and read back, the text names exactly cron's minutes, days and months
    times, day, months = _read(text)
    assert times == {(h, m) for h in f["hour"] for m in f["minute"]}, text
    assert months == set(f["month"]), text
    for d in range(1, 32):
        for w in range(7):
            dom_ok, dow_ok = d in f["dom"], w in f["dow"]
            cron = (dom_ok or dow_ok) if or_rule else (dom_ok and dow_ok)
            assert day(d, w) == cron, (text, d, w)


@given(FIELDS)
def test_dow_seven_is_sunday(f: dict) -> None:
    assert describe({**f, "dow": sorted({7 if d == 0 else d for d in f["dow"]})}) == describe(f)
