"""Sanity checks of the cron oracle (tests/cron_oracle.py) against facts read off Debian cron 3.0pl1-162's C source.

Each assertion would fail if the port were wrong; the comment names the C code it pins down.  The oracle was also
differentially fuzzed against the C itself (entry.c/env.c/misc.c, and cron.c's main loop pasted verbatim with a fake
clock) while it was written; the last test here compares it with bookworm's real ``crontab -n`` when available.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import cron_grammar
import cron_oracle as o
import pytest
from hypothesis import HealthCheck, given, settings

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def entry(schedule: str) -> o.Entry:
    return o.parse_line(schedule + " true")


def reason(schedule: str) -> str:
    with pytest.raises(o.Reject) as info:
        entry(schedule)
    return info.value.reason


# --- entry.c: load_entry / get_list / get_range / get_number ----------------------------------------------------


def test_sunday_fold_7_7() -> None:
    # get_range sets bit 7 only; load_entry's "make sundays equivilent" then sets 0 and 7
    e = entry("0 0 * * 7-7")
    assert e.dow == {0, 7}
    assert e.flags == {"DOM_STAR"}


def test_dow_ranges_with_names_and_7() -> None:
    assert entry("0 9 * * mon-7").dow == set(range(8))  # 1..7, fold adds 0
    assert entry("0 0 * * 1-7/3").dow == {0, 1, 4, 7}
    assert entry("0 0 * * sun-sat").dow == set(range(8))  # "sun" is DowNames[0]; 0..6, fold adds 7
    assert entry("0 0 1 feb-6 *").month == {2, 3, 4, 5, 6}
    assert entry("0 9 * * mOn,WeD,fRi").dow == {1, 3, 5}  # strcasecmp
    assert reason("0 9 * * Monday") == "bad day-of-week"  # whole token must equal a 3-letter name
    assert reason("0 0 1 sept *") == "bad month"


def test_backwards_ranges_are_accepted_and_empty() -> None:
    # Entry-time-range-check only checks that both ends are in range; for (i = num1; i <= num2; ...) sets nothing
    assert entry("10-5/2 * * * *").minute == set()
    assert entry("0 0 * * sat-sun").dow == set()
    assert entry("0 0 1 dec-jan *").month == set()


def test_steps() -> None:
    assert entry("5-5/2 * * * *").minute == {5}
    assert reason("5/2 * * * *") == "bad minute"  # crontab-entry-parsing-fixes: step without range
    assert reason("0 9 * * sun/2") == "bad day-of-week"
    assert reason("*/0 * * * *") == "bad minute"  # num3 <= 0
    assert entry("*/100 * * * *").minute == {0}
    assert entry("0-59/59 * * * *").minute == {0, 59}
    assert entry("*/015 * * * *").minute == {0, 15, 30, 45}
    assert entry("0 0 * * */2").dow == {0, 2, 4, 6, 7}


def test_atoi_and_int_overflow() -> None:
    assert entry("4294967296 * * * *").minute == {0}  # (int)strtol truncates to 32 bits
    assert reason("*/4294967296 * * * *") == "bad minute"  # step 0
    assert entry("*/4294967297 * * * *").minute == set(range(60))  # step 1
    assert reason("99999999999999999999 * * * *") == "bad minute"  # strtol saturates -> (int) -1
    assert reason("1-59/2147483647 * * * *") == "bad minute"  # i += num3 wraps negative -> set_element fails
    assert entry("0-59/2147483647 * * * *").minute == {0}
    assert entry("000 0009 001 001 000").hour == {9}


def test_out_of_range() -> None:
    assert reason("60 * * * *") == "bad minute"
    assert reason("0 24 * * *") == "bad hour"
    assert reason("0 0 0 * *") == "bad day-of-month"
    assert reason("0 0 1 13 *") == "bad month"
    assert reason("0 0 * * 8") == "bad day-of-week"
    assert reason("1-60 * * * *") == "bad minute"


def test_junk_after_an_element() -> None:
    # get_list: Skip_Nonblanks discards whatever get_range did not consume; alnum junk is part of the token
    e = entry("*5 * * * *")
    assert e.minute == set(range(60))
    assert "MIN_STAR" in e.flags
    assert entry("5; * * * *").minute == {5}
    assert entry("1#2 * * * *").minute == {1}
    assert entry("1-2-3 * * * *").minute == {1, 2}
    assert entry("*/2/3 * * * *").minute == set(range(0, 60, 2))
    assert reason("5x * * * *") == "bad minute"
    assert reason("1,,2 * * * *") == "bad minute"
    # static char get_range(): a 0xFF byte after a number is (char)-1 == EOF
    with pytest.raises(o.Reject, match="bad minute"):
        o.parse_line(b"5\xff * * * * true")
    with pytest.raises(o.Reject, match="bad minute"):
        o.parse_line(b"5 \xff * * * true")  # hour field starts with 0xFF: get_list(minute) returns EOF


def test_star_flags_only_from_first_character() -> None:
    assert "MIN_STAR" not in entry("1,* * * * *").flags  # all minutes, but not a wildcard job
    assert entry("1,* * * * *").minute == set(range(60))
    assert "MIN_STAR" in entry("*,1 * * * *").flags
    e = entry("0 0 */2 * 1")
    assert "DOM_STAR" in e.flags
    assert e.dom == set(range(1, 32, 2))
    assert "DOM_STAR" not in entry("0 0 1-31/2 * 1").flags
    assert o.is_wild(entry("* 3 * * *"))
    assert o.is_wild(entry("0 */2 * * *"))
    assert not o.is_wild(entry("0-59 3 * * *"))


def test_specials() -> None:
    h = entry("@hourly")
    assert (h.minute, h.hour, h.flags) == ({0}, set(range(24)), {"HR_STAR"})
    assert o.is_wild(h)
    d = entry("@daily")
    assert (d.minute, d.hour, d.dom, d.dow, d.flags) == ({0}, {0}, set(range(1, 32)), set(range(8)), set())
    assert entry("@midnight") == d
    w = entry("@weekly")
    assert (w.dow, w.dom, w.flags) == ({0, 7}, set(range(1, 32)), {"DOM_STAR"})
    m = entry("@monthly")
    assert (m.dom, m.month, m.flags) == ({1}, set(range(1, 13)), {"DOW_STAR"})
    y = entry("@yearly")
    assert (y.dom, y.month, y.dow, y.flags) == ({1}, {1}, set(range(8)), {"DOW_STAR"})
    assert entry("@annually") == y
    r = entry("@reboot")
    assert (r.minute, r.hour, r.dom, r.month, r.dow, r.flags) == (set(), set(), set(), set(), set(), {"WHEN_REBOOT"})
    assert reason("@HOURLY") == "bad time specifier"  # strcmp, case-sensitive
    assert reason("@every") == "bad time specifier"


def test_command_and_user_column() -> None:
    assert reason("0 0 * * * *") == "bad command"  # user crontab: command may not start with '*'
    assert o.parse_line("* * * * *").command == ""  # an empty command is accepted
    assert o.parse_line("0 0 * * *\tx  ").command == "x  "
    s = o.parse_line("0 0 * * * root   echo hi", system=True)
    assert (s.user, s.command) == ("root", "  echo hi")  # only the first blank after the user is eaten
    assert o.parse_line("0 0 * * * * echo", system=True).user == "*"
    with pytest.raises(o.Reject, match="bad username"):
        o.parse_line("0 0 * * * nosuch echo", system=True, user_exists=lambda u: u == "root")
    with pytest.raises(o.Reject, match="bad command"):
        o.parse_line("0 0 * * * root", system=True)  # no blank after the user: get_string hits EOF
    assert o.parse_line("0 0 * * * " + "x" * 998).command == "x" * 998
    with pytest.raises(o.Reject, match="command too long"):
        o.parse_line("0 0 * * * " + "x" * 999)


def test_parse_crontab_whole_file() -> None:
    text = "# comment\n\nSHELL=/bin/sh\nA = 'b c'\n0 1 * * * first\n  @daily second\n"
    es = o.parse_crontab(text)
    assert [e.command for e in es] == ["first", "second"]
    # load_user: one bad line and the whole file is ignored (Abort-processing-of-crontabs-with-errors)
    with pytest.raises(o.Reject) as info:
        o.parse_crontab("0 1 * * * ok\n61 * * * * bad\n0 2 * * * ok\n")
    assert (info.value.reason, info.value.line) == ("bad minute", 2)
    with pytest.raises(o.Reject, match="missing newline before EOF"):
        o.parse_crontab("0 1 * * * ok")
    with pytest.raises(o.Reject, match="bad minute"):
        o.parse_crontab("A=\n")  # env.c: an empty unquoted value is not an env setting -> parsed as an entry
    assert o.parse_crontab("A=''\n") == []
    assert len(o.parse_crontab("A=1\n" * 9999 + "* * * * * x\n")) == 1
    with pytest.raises(o.Reject, match="longer than 10000"):
        o.parse_crontab("A=1\n" * 10000 + "* * * * * x\n")
    assert [e.user for e in o.parse_crontab("0 1 * * * root a\n", system=True)] == ["root"]


# --- cron.c find_jobs ----------------------------------------------------------------------------------------------


def test_dom_dow_rule() -> None:
    # 2024-01-08 is a Monday, day 8 (even); 2024-01-09 a Tuesday, day 9 (odd)
    star = entry("0 0 */2 * 1")  # DOM_STAR -> AND
    plain = entry("0 0 1-31/2 * 1")  # neither starts with '*' -> OR
    assert not o.matches(star, 0, 0, 8, 1, 1)
    assert not o.matches(star, 0, 0, 9, 1, 2)
    assert o.matches(star, 0, 0, 1, 1, 1)  # 2024-01-01: Monday the 1st
    assert o.matches(plain, 0, 0, 8, 1, 1)
    assert o.matches(plain, 0, 0, 9, 1, 2)
    assert not o.matches(plain, 0, 0, 10, 1, 3)
    assert o.matches(entry("0 0 1 * 0-6"), 0, 0, 17, 5, 5)  # OR: every day
    assert not o.matches(entry("0 0 29 2 */7"), 0, 0, 29, 2, 4)  # AND: Feb 29 that is a Sunday
    assert o.matches(entry("* * * * 7"), 0, 0, 7, 1, 0)  # tm_wday 0 tests bit 0, set by the fold


# --- cron.c main loop --------------------------------------------------------------------------------------------


def starts(schedules: list[str], zone: str, start: datetime, end: datetime, **kw: int) -> list[tuple[int, str, str]]:
    es = o.parse_crontab("".join(f"{s} job{i}\n" for i, s in enumerate(schedules)))
    return [(i, r.strftime("%H:%M"), v.strftime("%H:%M")) for i, r, v in o.simulate(es, zone, start, end, **kw)]


def test_spring_forward_fixed_jobs_run_for_each_skipped_minute() -> None:
    # Europe/Berlin 2024-03-31: 01:59 CET -> 03:00 CEST (01:00 UTC); timeDiff = 61 -> wakeupKind 2
    got = starts(["0,30 2 * * *", "*/15 * * * *"], "Europe/Berlin", utc(2024, 3, 31, 0, 50), utc(2024, 3, 31, 1, 20))
    assert got == [
        (1, "01:00", "03:00"),  # wildcard jobs once, for the current minute only (not for 02:00..02:45)
        (0, "01:00", "02:00"),  # then fixed-time jobs for every skipped virtual minute, in the same real minute
        (0, "01:00", "02:30"),
        (1, "01:15", "03:15"),
    ]
    # a wildcard-hour job for 2 o'clock never runs that day
    assert starts(["* 2 * * *"], "Europe/Berlin", utc(2024, 3, 31, 0, 0), utc(2024, 3, 31, 2, 0)) == []


def test_fall_back_fixed_once_wildcard_twice() -> None:
    # Europe/Berlin 2024-10-27: 02:59 CEST -> 02:00 CET (01:00 UTC); timeDiff = -59 -> wakeupKind 0 (wild only)
    got = starts(["30 2 * * *", "*/30 * * * *"], "Europe/Berlin", utc(2024, 10, 26, 23, 50), utc(2024, 10, 27, 2, 10))
    assert got == [
        (1, "00:00", "02:00"),
        (1, "00:30", "02:30"),  # same pass: later line first (load_user prepends entries)
        (0, "00:30", "02:30"),
        (1, "01:00", "02:00"),  # second pass: wildcard jobs only
        (1, "01:30", "02:30"),
        (1, "02:00", "03:00"),
    ]


def test_half_hour_dst_and_big_jumps() -> None:
    # Australia/Lord_Howe 2024-10-06: 02:00 -> 02:30 (+30 min): timeDiff 31 -> wakeupKind 2
    got = starts(
        ["15 2 * * *", "*/10 * * * *"], "Australia/Lord_Howe", utc(2024, 10, 5, 15, 25), utc(2024, 10, 5, 15, 35)
    )
    assert got == [(1, "15:30", "02:30"), (0, "15:30", "02:15")]
    # Pacific/Apia skipped 2011-12-30 (UTC-10 -> UTC+14): timeDiff 1441 > 180 -> virtual time reset, no catch-up
    es = [entry("0 12 * * *")]
    runs = o.simulate(es, "Pacific/Apia", utc(2011, 12, 28, 0, 0), utc(2012, 1, 2, 0, 0))
    assert [v.day for _, _, v in runs] == [28, 29, 31, 1, 2]  # 12:00 on 2 Jan (UTC+14) is 1 Jan 22:00 UTC


def test_runqueue_sleep_overrun_keeps_every_fixed_minute() -> None:
    # with sleep(10) after each job-running catch-up step the 60-minute catch-up spills over ~10 real minutes;
    # the loop re-checks the clock, wildcard jobs interleave, and every skipped fixed minute still runs exactly once
    kw = {"runqueue_sleep": 10}
    got = starts(["0-59 2 * * *", "* * * * *"], "Europe/Berlin", utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 15), **kw)
    fixed = [v for i, _, v in got if i == 0]
    assert fixed == [f"02:{m:02d}" for m in range(60)]
    assert got[:3] == [(1, "01:00", "03:00"), (0, "01:00", "02:00"), (0, "01:00", "02:01")]
    assert (1, "01:01", "03:01") in got
    assert max(r for i, r, _ in got if i == 0) == "01:10"
    assert all(v.startswith("03:") for i, _, v in got if i == 1)
    # with the default (sleep cut short) the whole catch-up happens in the wakeup minute
    got0 = starts(["0-59 2 * * *"], "Europe/Berlin", utc(2024, 3, 31, 1, 0), utc(2024, 3, 31, 1, 1))
    assert len(got0) == 60 and {r for _, r, _ in got0} == {"01:00"}


def test_next_runs_and_bounds() -> None:
    e = entry("0 0 29 2 *")
    runs = o.next_runs(e, "UTC", utc(2025, 1, 1), 2)
    assert [v for _, v in runs] == [datetime(2028, 2, 29), datetime(2032, 2, 29)]
    assert o.next_runs(entry("0 0 30 2 *"), "UTC", utc(2025, 1, 1), 1) == []
    # [start, end): a job at exactly start runs, one at end does not
    assert len(o.simulate([entry("0 * * * *")], "UTC", utc(2025, 1, 1, 0), utc(2025, 1, 1, 2))) == 2


# --- grammar module -----------------------------------------------------------------------------------------------


def test_traps_are_all_decided() -> None:
    assert len(cron_grammar.TRAPS) >= 80
    verdicts = {t: cron_grammar.accepts(t) for t in cron_grammar.TRAPS}
    assert verdicts["0 0 * * 7-7"] and verdicts["5-5/2 * * * *"] and not verdicts["5/2 * * * *"]
    assert not all(verdicts.values()) and any(verdicts.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(cron_grammar.valid_schedules(junk=True))
def test_valid_schedules_parse(schedule: str) -> None:
    e = entry(schedule)
    assert e.dow.isdisjoint({0, 7}) or {0, 7} <= e.dow


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cron_grammar.schedules())
def test_schedules_parse_or_reject(schedule: str) -> None:
    try:
        entry(schedule)
    except o.Reject as exc:
        assert exc.reason in o.ECODES.values()


# --- the real thing -----------------------------------------------------------------------------------------------


def _crontab_dry_run_works(crontab: str, tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.write_text("0 0 * * * true\n")
    r = subprocess.run([crontab, "-n", str(probe)], capture_output=True, text=True)
    return r.returncode == 0 and "successfully checked" in r.stderr


@pytest.mark.cron
def test_traps_against_real_crontab_dry_run(tmp_path: Path) -> None:
    """Debian's crontab(1) has ``-n`` (debian/patches/features/dry-run.patch): syntax check, install nothing."""
    crontab = shutil.which("crontab")
    if crontab is None or not _crontab_dry_run_works(crontab, tmp_path):
        pytest.skip("no Debian crontab(1) with -n here")
    mismatches = []
    for i, trap in enumerate(cron_grammar.TRAPS):
        f = tmp_path / f"t{i}"
        f.write_text(trap + " true\n")
        r = subprocess.run([crontab, "-n", str(f)], capture_output=True, text=True)
        if (r.returncode == 0) != cron_grammar.accepts(trap):
            mismatches.append((trap, r.stderr.strip()))
    assert mismatches == []
