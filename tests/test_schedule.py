"""The schedule parser, `@every`, next runs, and the duration/size parsers it shares with spec."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from crontab import CronSlices
from hypothesis import given, settings
from hypothesis import strategies as st

from jobctl import units
from jobctl.jobs import schedule
from jobctl.jobs.schedule import ScheduleError

# --- specials and @every -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@reboot", "@reboot"),
    ],
)
def test_specials(text: str, cron: str) -> None:
    parsed = schedule.parse(text)
    assert parsed.cron == cron
    assert parsed.text == text


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("@every 1m", "* * * * *"),
        ("@every 60s", "* * * * *"),
        ("@every 2m", "*/2 * * * *"),
        ("@every 15m", "*/15 * * * *"),
        ("@every 30m", "*/30 * * * *"),
        ("@every 60m", "0 * * * *"),
        ("@every 1h", "0 * * * *"),
        ("@every 2h", "0 */2 * * *"),
        ("@every 12h", "0 */12 * * *"),
        ("@every 24h", "0 0 * * *"),
        ("@every 1d", "0 0 * * *"),
        ("@every 7d", "0 0 * * 0"),
        ("@every   15m  ", "*/15 * * * *"),
    ],
)
def test_every_exact(text: str, cron: str) -> None:
    parsed = schedule.parse(text)
    assert parsed.cron == cron
    assert parsed.text == " ".join(text.split())


EVERY_EXAMPLES = ("write e.g. @every 15m, @every 2h or @every 1d (whole minutes that divide an hour, "
                  "hours that divide a day, or 7d)")


def test_every_examples_are_valid() -> None:
    for example in ("@every 15m", "@every 2h", "@every 1d", "@every 7d"):
        assert schedule.parse(example).cron


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@every 7m", "@every 7m: cron cannot run exactly every 7m (its steps restart every hour, day and month); "
                      "use @every 6m or @every 10m, or write a cron expression for the times you want"),
        ("@every 45m", "@every 45m: cron cannot run exactly every 45m (its steps restart every hour, day and month); "
                       "use @every 30m or @every 1h, or write a cron expression for the times you want"),
        ("@every 5h", "@every 5h: cron cannot run exactly every 5h (its steps restart every hour, day and month); "
                      "use @every 4h or @every 6h, or write a cron expression for the times you want"),
        ("@every 1h30m", "@every 1h30m: cron cannot run exactly every 1h30m (its steps restart every hour, day and "
                         "month); use @every 1h or @every 2h, or write a cron expression for the times you want"),
        ("@every 2d", "@every 2d: cron cannot run exactly every 2d (its steps restart every hour, day and month); "
                      "use @every 1d or @every 7d, or write a cron expression for the times you want"),
        ("@every 14d", "@every 14d: cron cannot run exactly every 14d (its steps restart every hour, day and month); "
                       "use @every 7d, or write a cron expression for the times you want"),
        ("@every 90s", "@every 90s: cron runs at most once a minute, on the minute; "
                       "use a whole number of minutes, e.g. @every 1m"),
        ("@every 30s", "@every 30s: cron runs at most once a minute, on the minute; "
                       "use a whole number of minutes, e.g. @every 1m"),
        ("@every 0m", "@every needs a positive duration, e.g. @every 15m"),
        # the examples are themselves schedules @every takes (no "1h30m")
        ("@every soon", f"@every soon: not a duration; {EVERY_EXAMPLES}"),
        ("@every 15", f"@every 15: not a duration; {EVERY_EXAMPLES}"),
        ("@every", "@every needs one duration, e.g. '@every 15m'"),
        ("@every 15m 2h", "@every needs one duration, e.g. '@every 15m'"),
        ("@EVERY 7m", "@every 7m: cron cannot run exactly every 7m (its steps restart every hour, day and month); "
                      "use @every 6m or @every 10m, or write a cron expression for the times you want"),
    ],
)
def test_every_inexact_says_why_and_suggests(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        schedule.parse(text)
    assert str(err.value) == message


ALL_SPECIALS = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @reboot"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("@dayly", f"unknown schedule '@dayly'; did you mean @daily? use a 5-field cron expression, "
                   f"@every <duration>, or one of {ALL_SPECIALS}"),
        ("@daily 5", f"unknown schedule '@daily 5'; did you mean @daily? use a 5-field cron expression, "
                     f"@every <duration>, or one of {ALL_SPECIALS}"),
        ("@sometime", f"unknown schedule '@sometime'; use a 5-field cron expression, "
                      f"@every <duration>, or one of {ALL_SPECIALS}"),
        ("", "schedule is empty; write a cron expression such as '*/15 * * * *'"),
        ("   ", "schedule is empty; write a cron expression such as '*/15 * * * *'"),
    ],
)
def test_unknown_specials(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        schedule.parse(text)
    assert str(err.value) == message


# --- five-field expressions ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        # the crontab gets jobctl's own canonical text: numbers and forward
        # ranges, the same sets and the same leading "*" (tests/test_cron_oracle_fidelity.py
        # checks every form against Debian cron's parser)
        ("* * * * *", "* * * * *"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 9-17 * * mon-fri", "0 9-17 * * 1-5"),
        ("0 9-17 * * MON-FRI", "0 9-17 * * 1-5"),
        ("30 4 1,15 * *", "30 4 1,15 * *"),
        ("0 0 * jan-mar,dec *", "0 0 * 1-3,12 *"),
        ("0 0 * * 0", "0 0 * * 0"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 * * 0,5,6"),
        ("0-59/59 * * * *", "0,59 * * * *"),
        ("0 0 29 2 *", "0 0 29 2 *"),  # leap years
        ("0 0 31 2 1", "0 0 31 2 1"),  # day of month OR day of week: Mondays in February
        ("0 0 30 */2 *", "0 0 30 */2 *"),
        ("5-5 3 * * *", "5 3 * * *"),
        ("5-5/2 3 * * *", "5 3 * * *"),  # python-crontab wrote "5/2", which cron rejects
        ("0 0 * * 7-7", "0 0 * * 0"),  # python-crontab wrote "0,*": every day
        ("0 0 1-31/2 * 1", "0 0 1-31/2 * 1"),  # odd days OR Mondays: no leading "*" may appear
        ("0 9 * * mon-7", "0 9 * * 0-6"),
        ("*/15,7 * * * *", "*/15,7 * * * *"),
        ("0 0 * * 1-7/3", "0 0 * * 0,1,4"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@every 2h", "0 */2 * * *"),
    ],
)
def test_valid_cron(text: str, cron: str) -> None:
    assert schedule.parse(text).cron == cron


def test_whitespace_is_normalised() -> None:
    parsed = schedule.parse("  */5\t*  * * *  ")
    assert parsed.cron == parsed.text == "*/5 * * * *"


def test_field_values() -> None:
    minutes, hours, doms, months, dows = schedule.parse_cron("*/20 1-3,22 */10 jan-mar/2 fri-7")
    assert minutes == ({0, 20, 40}, True)
    assert hours == ({1, 2, 3, 22}, False)
    assert doms == ({1, 11, 21, 31}, True)
    assert months == ({1, 3}, False)
    assert dows == ({5, 6, 0}, False)  # 7 is Sunday, as 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "minute field: 61 is out of range; use 0-59"),
        ("* 24 * * *", "hour field: 24 is out of range; use 0-23"),
        ("* * 0 * *", "day of month field: 0 is out of range; use 1-31"),
        ("* * 32 * *", "day of month field: 32 is out of range; use 1-31"),
        ("* * * 13 *", "month field: 13 is out of range; use 1-12"),
        ("* * * 0 *", "month field: 0 is out of range; use 1-12"),
        ("* * * * 8", "day of week field: 8 is out of range; use 0-7"),
        ("x * * * *", "minute field: 'x' is not a number 0-59"),
        ("* * * foo *", "month field: 'foo' is not a number 1-12 or a name (jan, feb, mar, ...)"),
        ("* * * * monday", "day of week field: 'monday' is not a number 0-7 or a name (sun, mon, tue, ...)"),
        ("* * * * fri-mon", "day of week field 'fri-mon': range runs backwards (cron does not wrap around, "
                            "so it never matches); write fri-sat,sun-mon"),
        ("30-10 * * * *", "minute field '30-10': range runs backwards (cron does not wrap around, "
                          "so it never matches); write 30-59,0-10"),
        ("* 22-2 * * *", "hour field '22-2': range runs backwards (cron does not wrap around, "
                        "so it never matches); write 22-23,0-2"),
        # the fix keeps the step and Sunday as 7 (a backwards hint for 7-1 was 7-6,0-1)
        ("* * * * 7-1", "day of week field '7-1': range runs backwards (cron does not wrap around, "
                        "so it never matches); write 0-1"),
        ("5-1/2 * * * *", "minute field '5-1/2': range runs backwards (cron does not wrap around, "
                          "so it never matches); write 5-59/2,1"),
        ("50-10/5 * * * *", "minute field '50-10/5': range runs backwards (cron does not wrap around, "
                            "so it never matches); write 50-55/5,0-10/5"),
        ("* * * nov-feb *", "month field 'nov-feb': range runs backwards (cron does not wrap around, "
                            "so it never matches); write nov-dec,jan-feb"),
        ("*/0 * * * *", "minute field '*/0': a step of 0 never advances; use 1 or more"),
        ("*/x * * * *", "minute field '*/x': step 'x' is not a whole number"),
        ("*/ * * * *", "minute field '*/': step '' is not a whole number"),
        ("5/10 * * * *", "minute field '5/10': a step needs a range; write 5-59/10"),
        ("*/60 * * * *", "minute field '*/60': step 60 goes past the end of the field (0-59), "
                         "so it matches only 0; write 0 instead"),
        ("* */24 * * *", "hour field '*/24': step 24 goes past the end of the field (0-23), "
                         "so it matches only 0; write 0 instead"),
        # the fix keeps the leading * where it decides the day rule: */7 is Sunday, as */12 was
        ("0 0 1 * */12", "day of week field '*/12': step 12 goes past the end of the field (0-7), "
                         "so it matches only Sunday; write */7 instead"),
        ("10-20/15 * * * *", "minute field '10-20/15': step 15 goes past the end of the range (10-20), "
                             "so it matches only 10; write 10 instead"),
        ("0 0 * * 5/10", "day of week field '5/10': a step needs a range; write 5"),
        ("0 0 * * mon/2", "day of week field 'mon/2': a step needs a range; write mon-6/2"),
        ("0 0 * * 1#2", "day of week field '1#2': cron reads only '1' and silently ignores '#2'; "
                        "write 1 (or the value you meant)"),
        ("*-5 * * * *", "minute field '*-5': '*' stands alone or with a step (*/N); cron reads '*-5' as '*' "
                        "and ignores '-5'; write * or a range such as 0-59"),
        ("1-5-7 * * * *", "minute field '1-5-7': a range has two ends; cron reads it as 1-5 and ignores the rest; "
                          "write 1-5 or 1-7"),
        ("0 0 * * 1\u20135", "day of week field '1\u20135': '\u2013' (U+2013) is not a hyphen; write the range "
                             "with '-', e.g. 1-5"),
        ("0\u00a00 * * *", "NO-BREAK SPACE in the schedule: cron separates fields with spaces and tabs only; "
                          "use a plain space"),
        ("0 0 * * 1\x00", "control character U+0000 in the schedule; remove it"),
        ("² * * * *", "minute field: '²' is not a number 0-59"),

        ("1,,2 * * * *", "minute field '1,,2': empty list element; remove the extra comma"),
        ("1, * * * *", "minute field '1,': empty list element; remove the extra comma"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("*", "expected 5 fields (minute hour day-of-month month day-of-week), got 1"),
        ("0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6; "
                        "jobctl does not take a seconds or year field"),
        ("0 0 * * * * 2030", "expected 5 fields (minute hour day-of-month month day-of-week), got 7; "
                             "jobctl does not take a seconds or year field"),
        ("0 0 * * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 8"),
        ("0 0 31 2 *", "never fires: no month in this expression has those days (31 of feb)"),
        ("0 0 30,31 feb *", "never fires: no month in this expression has those days (30,31 of feb)"),
        ("0 0 31 4,6,9,11 *", "never fires: no month in this expression has those days (31 of apr,jun,sep,nov)"),
        ("0 0 31 2 */2", "never fires: no month in this expression has those days (31 of feb)"),
    ],
)
def test_invalid_cron(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        schedule.parse(text)
    assert str(err.value) == message


# --- next runs and descriptions ---------------------------------------------------

START = datetime(2024, 1, 1, 0, 7)  # a Monday


def _days(text: str, count: int = 5) -> list[str]:
    return [d.strftime("%a %d %b") for d in schedule.parse(text).next_runs(START, count)]


def test_next_runs() -> None:
    assert schedule.parse("*/15 * * * *").next_runs(START, 3) == [
        datetime(2024, 1, 1, 0, 15), datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 1, 0, 45)]
    assert schedule.parse("@every 2h").next_runs(START, 2) == [datetime(2024, 1, 1, 2), datetime(2024, 1, 1, 4)]
    assert schedule.parse("@reboot").next_runs(START, 3) == []


def test_next_runs_day_of_month_or_day_of_week() -> None:
    # Both restricted: cron runs on either.
    assert _days("0 0 1 * 1") == ["Mon 08 Jan", "Mon 15 Jan", "Mon 22 Jan", "Mon 29 Jan", "Thu 01 Feb"]


def test_next_runs_star_step_means_and() -> None:
    # Cron ANDs the two when either starts with "*", even "*/2" (croniter alone would OR them).
    assert _days("0 0 */2 * 1") == ["Mon 15 Jan", "Mon 29 Jan", "Mon 05 Feb", "Mon 19 Feb", "Mon 11 Mar"]
    assert _days("0 0 1 * */3", 3) == ["Wed 01 May", "Sat 01 Jun", "Sun 01 Sep"]


def test_next_runs_one_value_ranges() -> None:
    # croniter alone reads "5-5" and "7-7" as "*".
    assert schedule.parse("5-5 3 * * *").next_runs(START, 2) == [datetime(2024, 1, 1, 3, 5), datetime(2024, 1, 2, 3, 5)]
    assert _days("0 0 * * 7-7", 2) == ["Sun 07 Jan", "Sun 14 Jan"]


def test_describe() -> None:
    assert schedule.describe("@reboot") == "At system start-up"
    assert "03:15" in schedule.parse("15 3 * * *").describe()


# --- property tests: our grammar against python-crontab, croniter and a reference -

FULL = {f.name: set(range(f.low, f.high + 1)) for f in schedule.FIELDS}


def _fold(field: schedule._Field, values: set[int]) -> set[int]:
    if field.name == "day of week" and 7 in values:
        return (values - {7}) | {0}
    return values


@st.composite
def _element(draw: st.DrawFn, field: schedule._Field) -> tuple[str, set[int]]:
    """One list element of a cron field, and the values it stands for."""
    span = field.high - field.low + 1
    kind = draw(st.sampled_from(["*", "*/n", "a", "a-b", "a-b/n"]))
    if kind == "*":
        return "*", FULL[field.name]
    if kind == "*/n":
        step = draw(st.integers(1, span - 1))
        return f"*/{step}", set(range(field.low, field.high + 1, step))
    low = draw(st.integers(field.low, field.high))
    high = draw(st.integers(low, field.high)) if kind != "a" else low
    names = field.names
    named = bool(names) and all(field.name_base <= v < field.name_base + len(names) for v in (low, high))
    if named and draw(st.booleans()):
        case = draw(st.sampled_from([str.lower, str.upper, str.capitalize]))
        ends = [case(names[v - field.name_base]) for v in (low, high)]
    else:
        ends = [str(low), str(high)]
    if kind == "a":
        return ends[0], {low}
    if kind == "a-b":
        return f"{ends[0]}-{ends[1]}", set(range(low, high + 1))
    # a step larger than its range (one value from several) is refused on purpose
    step = draw(st.integers(1, max(1, high - low)))
    return f"{ends[0]}-{ends[1]}/{step}", set(range(low, high + 1, step))


@st.composite
def cron_expressions(draw: st.DrawFn) -> tuple[str, list[tuple[set[int], bool]]]:
    """A 5-field expression from cron's grammar, and the fields it should parse to."""
    texts, fields = [], []
    for field in schedule.FIELDS:
        elements = draw(st.lists(_element(field), min_size=1, max_size=3))
        text = ",".join(e for e, _ in elements)
        values = _fold(field, set().union(*(v for _, v in elements)))
        texts.append(text)
        fields.append((values, text.startswith("*")))
    return " ".join(texts), fields


def _never_fires(fields: list[tuple[set[int], bool]]) -> bool:
    (_, _), (_, _), (doms, dom_star), (months, _), (_, dow_star) = fields
    days_in_month = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return dow_star and not dom_star and not any(d <= days_in_month[m - 1] for m in months for d in doms)


def _day_matches(fields: list[tuple[set[int], bool]], day: date) -> bool:
    (_, _), (_, _), (doms, dom_star), (months, _), (dows, dow_star) = fields
    weekday = day.isoweekday() % 7
    if dom_star or dow_star:  # Vixie cron: either field starting with * makes it an AND
        return day.month in months and day.day in doms and weekday in dows
    return day.month in months and (day.day in doms or weekday in dows)


def _reference_next(fields: list[tuple[set[int], bool]], after: datetime) -> datetime:
    """The first minute after ``after`` that cron fires, by walking the calendar."""
    minutes, hours = sorted(fields[0][0]), sorted(fields[1][0])
    earliest = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = earliest.date()
    for _ in range(366 * 40):
        if _day_matches(fields, day):
            for hour in hours:
                for minute in minutes:
                    candidate = datetime.combine(day, time(hour, minute))
                    if candidate >= earliest:
                        return candidate
        day += timedelta(days=1)
    raise AssertionError("no run within 40 years")


@settings(max_examples=150, deadline=None)
@given(cron_expressions())
def test_parser_accepts_the_grammar(case: tuple[str, list[tuple[set[int], bool]]]) -> None:
    text, fields = case
    if _never_fires(fields):
        with pytest.raises(ScheduleError, match="never fires"):
            schedule.parse(text)
        return
    assert [list(f) for f in schedule.parse_cron(text)] == [list(f) for f in fields]
    # the canonical crontab text reads back to the same sets and stars
    assert [list(f) for f in schedule.parse_cron(schedule.parse(text).cron)] == [list(f) for f in fields]
    assert CronSlices.is_valid(text)


@settings(max_examples=100, deadline=None)
@given(cron_expressions(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)))
def test_next_runs_match_cron(case: tuple[str, list[tuple[set[int], bool]]], start: datetime) -> None:
    text, fields = case
    if _never_fires(fields):
        return
    runs = schedule.parse(text).next_runs(start, 3)
    expected, at = [], start
    for _ in range(3):
        at = _reference_next(fields, at)
        expected.append(at)
    assert runs == expected


_EXACT_MINUTES = [m for m in range(1, 60) if 60 % m == 0] + [h * 60 for h in (1, 2, 3, 4, 6, 8, 12, 24)] + [7 * 1440]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30 * 1440))
def test_every_is_exact_or_suggests_exact_neighbours(minutes: int) -> None:
    text = f"@every {units.format_duration(minutes * 60)}"
    try:
        parsed = schedule.parse(text)
    except ScheduleError as exc:
        assert minutes not in _EXACT_MINUTES
        suggestions = re.findall(r"@every (\w+)", str(exc).split("; use ", 1)[1])
        suggested = [units.parse_duration(s) // 60 for s in suggestions]
        assert all(m in _EXACT_MINUTES for m in suggested)
        assert suggested == sorted(suggested)
        assert min(suggested) < minutes or minutes > max(_EXACT_MINUTES)
        assert max(suggested) > minutes or minutes > max(_EXACT_MINUTES)
        return
    assert minutes in _EXACT_MINUTES
    runs = parsed.next_runs(datetime(2024, 1, 1), 4)
    assert {b - a for a, b in zip(runs, runs[1:], strict=False)} == {timedelta(minutes=minutes)}


# --- durations and sizes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("1d2h3m4s", 93784),
     ("0s", 0), (" 5m ", 300), (90, 90), (0, 0)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert units.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("90", "'90' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("1.5h", "'1.5h' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("15 m", "'15 m' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("30m1h", "'30m1h' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("15M", "'15M' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("", "'' is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        (1.5, "1.5 is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        (-5, "-5 is negative; durations are 0 or more"),
        (True, "True is not a duration; write e.g. 90s, 15m, 2h or 1h30m"),
    ],
)
def test_bad_duration(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        units.parse_duration(value)
    assert str(err.value) == message


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m"), (5400, "1h30m"),
                                               (86400, "1d"), (93784, "1d2h3m4s")])
def test_format_duration(seconds: int, text: str) -> None:
    assert units.format_duration(seconds) == text


@st.composite
def canonical_durations(draw: st.DrawFn) -> str:
    parts = [(draw(st.integers(0, 400)), "d"), (draw(st.integers(0, 23)), "h"),
             (draw(st.integers(0, 59)), "m"), (draw(st.integers(0, 59)), "s")]
    text = "".join(f"{n}{unit}" for n, unit in parts if n)
    return text or "0s"


@given(canonical_durations())
def test_duration_text_round_trips(text: str) -> None:
    assert units.format_duration(units.parse_duration(text)) == text


@given(st.integers(0, 10**9))
def test_duration_seconds_round_trip(seconds: int) -> None:
    assert units.parse_duration(units.format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [("512KiB", 512 * 1024), ("1MiB", 1024**2), ("1GiB", 1024**3), ("10MB", 10**7), ("1kB", 1000),
     ("1KB", 1000), ("2GB", 2 * 10**9), ("100B", 100), ("100", 100), ("1 MiB", 1024**2), (4096, 4096), (0, 0)],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5MiB", "'1.5MiB' is not a size; write e.g. 512KiB, 1MiB or 10MB (or whole bytes)"),
        ("1mb", "'1mb' is not a size; write e.g. 512KiB, 1MiB or 10MB (or whole bytes)"),
        ("MiB", "'MiB' is not a size; write e.g. 512KiB, 1MiB or 10MB (or whole bytes)"),
        (-1, "-1 is negative; sizes are 0 or more"),
        (False, "False is not a size; write e.g. 512KiB or 1MiB"),
    ],
)
def test_bad_size(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        units.parse_size(value)
    assert str(err.value) == message
