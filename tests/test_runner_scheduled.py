"""Scheduled wake-ups of the wrapper: time-zone gate, pause, jitter, catch-up, users (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from jobctl import applied
from jobctl.jobs import schedule

from runhelp import job, output, rows, wait_for


def scheduled(state: str, name: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", *flags, "--state-dir", state, name],
                          capture_output=True, timeout=60, cwd="/")


def apply_defn(state: str, name: str, expr: str, **keys) -> dict:
    defn = job(name=name, cron=expr, fields=schedule.compile_fields(expr), **keys)
    applied.write(state, defn)
    return defn


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state")


def _wall_in(zone: str, minutes_from_now: int) -> datetime:
    from zoneinfo import ZoneInfo

    return (datetime.now(timezone.utc) + timedelta(minutes=minutes_from_now)).astimezone(ZoneInfo(zone))


def test_a_non_matching_minute_of_a_time_zone_job_leaves_no_trace(state):
    later = _wall_in("Asia/Kolkata", 30)  # surely not this minute
    apply_defn(state, "tz", f"{later.minute} {later.hour} * * *", timezone="Asia/Kolkata", command="echo ran")
    result = scheduled(state, "tz", "--scheduled")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert not os.path.exists(os.path.join(state, "runs.db"))  # no run row, no log opened
    assert not os.path.exists(os.path.join(state, "locks", "tz.lock"))  # no lock taken


def test_a_matching_minute_in_the_jobs_zone_runs(state):
    now = _wall_in("Asia/Kolkata", 0)
    if now.second > 50:
        time.sleep(11)  # do not straddle the minute
        now = _wall_in("Asia/Kolkata", 0)
    apply_defn(state, "tz", f"{now.minute} {now.hour} * * *", timezone="Asia/Kolkata", command="echo ran")
    assert scheduled(state, "tz", "--scheduled").returncode == 0
    [r] = rows(state)
    assert (r["status"], r["trigger"]) == ("succeeded", "schedule")
    assert output(state, r["id"])[0] == b"ran\n"


def test_timer_runs_are_not_gated_by_the_zone(state):
    later = _wall_in("Asia/Kolkata", 30)
    apply_defn(state, "tz", f"{later.minute} {later.hour} * * *", timezone="Asia/Kolkata", command="true",
               jitter=3600)
    assert scheduled(state, "tz", "--timer").returncode == 0  # systemd already decided, and jittered
    [r] = rows(state)
    assert r["status"] == "succeeded" and r["jitter_s"] is None


def test_a_paused_job_is_recorded_as_skipped_and_not_run(state, tmp_path):
    flag = tmp_path / "ran"
    apply_defn(state, "p", "* * * * *", command=f"touch {flag}")
    os.makedirs(os.path.join(state, "paused"))
    open(os.path.join(state, "paused", "p"), "w").close()
    assert scheduled(state, "p", "--scheduled").returncode == 0
    [r] = rows(state)
    assert (r["status"], r["trigger"], r["reason"]) == ("skipped", "schedule", "skipped: paused (jobctl resume to "
                                                                                "run again)")
    assert r["scheduled_for"] is not None and not flag.exists()


def test_jitter_delays_the_start_and_is_recorded(state):
    apply_defn(state, "j", "* * * * *", command="true", jitter=2)
    started = time.time()
    assert scheduled(state, "j", "--scheduled").returncode == 0
    [r] = rows(state)
    assert 0 <= r["jitter_s"] < 2
    assert r["started_at"] - started >= r["jitter_s"] - 0.05
    assert "of jitter" in r["reason"] or r["jitter_s"] < 1


def test_catch_up_pass_runs_a_missed_job_once(state):
    now = datetime.now(timezone.utc)
    missed_at = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    apply_defn(state, "cu", f"{missed_at.minute} {missed_at.hour} * * *", timezone="UTC", catch_up=3600,
               command="echo caught up")
    path = applied.write(state, applied.read(state, "cu"))
    old = time.time() - 7200  # applied two hours ago: before the missed minute
    os.utime(path, (old, old))
    for _ in range(3):  # repeated passes start it only once
        assert scheduled(state, "", "--catch-up").returncode == 0
        wait_for(lambda: [r for r in rows(state) if r["status"] != "running"], timeout=30)
    time.sleep(0.5)
    [r] = rows(state)
    assert (r["status"], r["trigger"]) == ("succeeded", "catchup")
    assert r["scheduled_for"] == missed_at.timestamp()
    assert output(state, r["id"])[0] == b"caught up\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a job as another user needs root")
def test_a_job_with_a_user_runs_as_that_user(state):
    apply_defn(state, "u", "* * * * *", command="id -un; echo $HOME $USER", user="nobody", working_dir="/")
    assert scheduled(state, "u", "--scheduled").returncode == 0
    [r] = rows(state)
    import pwd

    home = pwd.getpwnam("nobody").pw_dir
    assert output(state, r["id"])[0] == f"nobody\n{home} nobody\n".encode()
    assert r["status"] == "succeeded"
    assert os.stat(os.path.join(state, "runs.db")).st_uid == 0  # the run log stays root's


def test_a_user_that_vanished_fails_the_run_clearly(state):
    apply_defn(state, "u", "* * * * *", command="true", user="no-such-user-jobctl")
    result = scheduled(state, "u", "--scheduled")
    assert result.returncode == 125
    [r] = rows(state)
    assert r["status"] == "failed" and r["reason"] == "cannot start: user 'no-such-user-jobctl' does not exist " \
                                                      "on this host"


def test_a_catch_up_pass_survives_definitions_it_cannot_use(state):
    """NaN, a 400-digit number or a broken file in one definition: the other jobs are still caught up."""
    now = datetime.now(timezone.utc)
    missed_at = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    expr = f"{missed_at.minute} {missed_at.hour} * * *"
    apply_defn(state, "cu", expr, timezone="UTC", catch_up=3600, command="echo caught up")
    old = time.time() - 7200  # applied before the missed minute
    os.utime(os.path.join(state, "applied", "cu.json"), (old, old))
    for name, value in (("nan", "NaN"), ("huge", "1" + "0" * 400), ("text", '"6h"')):
        text = applied.read(state, "cu") | {"name": name, "catch_up": 0}
        raw = json.dumps(text).replace('"catch_up": 0', f'"catch_up": {value}')
        with open(os.path.join(state, "applied", name + ".json"), "w") as fh:
            fh.write(raw)
    with open(os.path.join(state, "applied", "broken.json"), "w") as fh:
        fh.write("{not json")
    result = scheduled(state, "", "--catch-up")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: [r for r in rows(state) if r["status"] != "running"], timeout=30)
    [r] = rows(state)
    assert (r["job"], r["status"], r["trigger"]) == ("cu", "succeeded", "catchup")
    assert b"broken" in result.stderr and b"cannot read the applied definition" in result.stderr
