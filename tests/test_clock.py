"""Time zones on plain cron: walk the clock across the 2026 DST transitions.

Each case lists exactly which UTC minutes of a window the wrapper runs the job
at (clock.due, the decision the wrapper makes at every wake-up), and checks
that the crontab superset wakes the wrapper at every one of them.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from jobctl import clock
from jobctl.jobs import schedule
from jobctl.runner import wallclock


@pytest.fixture(autouse=True)
def system_zone_utc(monkeypatch):
    # cron reads the crontab in the system's zone; pin it for the superset checks.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def fields(expr: str) -> dict:
    f = schedule.compile_fields(expr)
    assert f is not None
    return f


def fired(expr: str, zone: str, start: str, hours: int) -> list[str]:
    f = fields(expr)
    t = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    out = []
    for _ in range(hours * 60):
        out += [t.strftime("%m-%d %H:%MZ")] * len(clock.due(f, zone, t))
        t += timedelta(minutes=1)
    return out


CASES = [
    # fixed time in the skipped hour: right after the jump, once
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T22:00", 24, ["03-29 01:00Z"]),
    ("0 2 * * *", "Australia/Sydney", "2026-10-03T13:00", 24, ["10-03 16:00Z"]),
    ("30 2 * * *", "America/New_York", "2026-03-08T05:00", 24, ["03-08 07:00Z"]),
    # several fixed times in the skipped hour: each one runs right after the jump, as cron(8)'s main loop
    ("0,30 2 * * *", "Europe/Berlin", "2026-03-28T22:00", 24, ["03-29 01:00Z"] * 2),
    ("0-59/20 2 * * *", "America/New_York", "2026-03-08T05:00", 24, ["03-08 07:00Z"] * 3),
    ("0 2,3 * * *", "Europe/Berlin", "2026-03-28T22:00", 24, ["03-29 01:00Z"] * 2),
    # Lord Howe jumps 30 minutes (02:00 -> 02:30): only 02:00-02:29 are skipped
    ("0,15,45 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00", 6, ["10-03 15:30Z"] * 2 + ["10-03 15:45Z"]),
    # fixed time in the repeated hour: once, at the first pass
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T22:00", 25, ["10-25 00:30Z"]),
    ("30 1 * * *", "America/New_York", "2026-11-01T04:00", 25, ["11-01 05:30Z"]),
    ("30 2 * * *", "Australia/Sydney", "2026-04-04T13:00", 25, ["04-04 15:30Z"]),
    # fixed times outside the changed hour keep their wall time across the change
    ("0 3 * * *", "Europe/Berlin", "2026-03-28T22:00", 48, ["03-29 01:00Z", "03-30 01:00Z"]),
    ("0 3 * * *", "Europe/Berlin", "2026-10-24T22:00", 48, ["10-25 02:00Z", "10-26 02:00Z"]),
    ("30 1 * * *", "Europe/Berlin", "2026-03-28T22:00", 48, ["03-29 00:30Z", "03-29 23:30Z"]),
    # *-hour jobs follow wall time: the repeated 02:15 runs twice, a skipped one not at all
    ("15 */2 * * *", "Australia/Sydney", "2026-04-04T14:00", 4, ["04-04 15:15Z", "04-04 16:15Z"]),
    ("15 */2 * * *", "Australia/Sydney", "2026-10-03T14:00", 4, ["10-03 14:15Z", "10-03 17:15Z"]),
    # day fields in the job's zone: Sunday 29 March is still Saturday evening in UTC
    ("30 0 * * sun", "Europe/Berlin", "2026-03-28T20:00", 6, ["03-28 23:30Z"]),
    ("0 0 1 * *", "America/New_York", "2026-10-31T00:00", 24 * 3, ["11-01 04:00Z"]),
    # an ordinary day: one run at the zone's midnight
    ("0 0 * * *", "Europe/Berlin", "2026-01-14T12:00", 24, ["01-14 23:00Z"]),
]


@pytest.mark.parametrize(("expr", "zone", "start", "hours", "expected"), CASES)
def test_exact_minutes_fired_across_dst(expr, zone, start, hours, expected):
    assert fired(expr, zone, start, hours) == expected


@pytest.mark.parametrize(("expr", "zone", "start", "hours", "expected"), CASES)
def test_the_crontab_superset_wakes_the_wrapper_for_every_fired_minute(expr, zone, start, hours, expected):
    base = datetime.fromisoformat(start).replace(tzinfo=timezone.utc) - timedelta(days=30)
    wake = clock.superset_minutes(fields(expr), zone, base, days=60)
    for stamp in expected:
        assert int(stamp[9:11]) in wake, (stamp, wake)


@pytest.mark.parametrize(("zone", "start", "hours", "runs"), [
    ("Europe/Berlin", "2026-10-24T22:00", 25, 50),    # a 25-hour local day
    ("America/New_York", "2026-03-08T05:00", 23, 46),  # a 23-hour local day
])
def test_every_30_minutes_follows_wall_time(zone, start, hours, runs):
    got = fired("*/30 * * * *", zone, start, hours)
    assert len(got) == runs and all(s[9:11] in ("00", "30") for s in got)


def test_superset_for_half_hour_zones_shifts_the_minute():
    f = fields("30 2 * * *")
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert clock.superset_minutes(f, "Asia/Kolkata", base) == [0]  # 02:30 IST is hh:00 UTC
    assert clock.superset_minutes(f, "Europe/Berlin", base) == [0, 30]  # 30, plus the jump minute
    assert clock.superset_minutes(fields("*/20 * * * *"), "UTC", base) == [0, 20, 40]  # not fixed: no jump minute


def test_superset_minutes_follow_the_system_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    f = fields("0 9 * * *")
    # 09:00 in UTC is 14:30 in the system's (Kolkata) time: cron must wake at minute 30
    assert clock.superset_minutes(f, "UTC", datetime(2026, 6, 1, tzinfo=timezone.utc)) == [30]
    assert os.environ["TZ"] == "Asia/Kolkata"


@pytest.mark.parametrize(("expr", "zone", "start", "hours", "expected"), CASES)
def test_the_wrappers_arithmetic_agrees_with_zoneinfo_minute_by_minute(expr, zone, start, hours, expected):
    f = fields(expr)
    table = clock.offsets(zone, 2026)
    t = datetime.fromisoformat(start).replace(tzinfo=timezone.utc) - timedelta(hours=6)
    for _ in range((hours + 12) * 60):
        assert wallclock.due_at(f, table, t.timestamp()) == len(clock.due(f, zone, t)), t
        t += timedelta(minutes=1)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                                  "Australia/Lord_Howe", "UTC"])
def test_offsets_table_matches_zoneinfo(zone):
    from zoneinfo import ZoneInfo

    table = clock.offsets(zone, 2026, years=1)
    assert table[0][0] == datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    assert table[-1][0] == datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()
    for (start, offset), (nxt, _) in zip(table, table[1:], strict=False):
        for ts in (start, nxt - 1):
            got = datetime.fromtimestamp(ts, timezone.utc).astimezone(ZoneInfo(zone)).utcoffset().total_seconds()
            assert got == offset
    assert len(table) == {"UTC": 2, "Asia/Kolkata": 2}.get(zone, 4)


def test_outside_the_table_the_wrapper_is_told_to_ask_zoneinfo():
    f = fields("0 3 * * *")
    table = clock.offsets("Europe/Berlin", 2026, years=1)
    assert wallclock.due_at(f, table, datetime(2027, 6, 1, 1, tzinfo=timezone.utc).timestamp()) is None
    assert wallclock.due_at(f, [], time.time()) is None
