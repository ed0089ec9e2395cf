"""End to end with Debian's real cron daemon (slow: waits for the next minute).

Skipped when no cron daemon runs, unless JOBCTL_E2E_CRON=1 (set by .ci/run,
which starts the daemon): then a missing daemon is a failure, not a skip.
Deselect locally with ``-m 'not cron'``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.cron

SYSTEM_FILE = Path("/etc/cron.d/jobctl")


def cron_daemon_running() -> bool:
    """What `jobctl doctor` checks: a cron daemon serving this file system (not one outside a chroot)."""
    from jobctl.read.doctor import cron_daemon

    return cron_daemon().ok


@pytest.fixture(autouse=True)
def need_daemon():
    if cron_daemon_running():
        return
    if os.environ.get("JOBCTL_E2E_CRON") == "1":
        pytest.fail("JOBCTL_E2E_CRON=1 but no cron daemon is running")
    pytest.skip("no cron daemon running (start /usr/sbin/cron, or let .ci/run do it)")


def jobctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "jobctl")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120)


def history(env: dict[str, str]) -> list[dict]:
    result = jobctl("history", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cron_runs_applied_jobs_in_user_and_system_crontabs(tmp_path, real_crontab, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root (root's crontab and /etc/cron.d)")
    if SYSTEM_FILE.exists():
        pytest.skip(f"{SYSTEM_FILE} exists already; not touching a real installation")
    jobs = tmp_path / "e2e-jobs"
    jobs.mkdir()
    (jobs / "every-minute.yaml").write_text(
        'schedule: "* * * * *"\ncommand: echo "ran by cron as $USER"\n')
    # a time-zone job due two minutes from now in Kolkata (+05:30), which cron cannot
    # express in the system's zone: jobctl installs a superset and the wrapper decides
    from zoneinfo import ZoneInfo

    kolkata = (datetime.now(timezone.utc) + timedelta(minutes=2)).astimezone(ZoneInfo("Asia/Kolkata"))
    (jobs / "in-kolkata.yaml").write_text(
        f'schedule: "{kolkata.minute} {kolkata.hour} * * *"\ntimezone: Asia/Kolkata\ncommand: "true"\n')
    # a catch-up job whose last schedule (ten minutes ago) was "missed while the machine was off"
    missed = (datetime.now(timezone.utc) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    (jobs / "caught-up.yaml").write_text(
        f'schedule: "{missed.minute} {missed.hour} * * *"\ntimezone: UTC\ncatch_up: 1h\ncommand: "true"\n')
    user_env = {k: v for k, v in os.environ.items() if k != "JOBCTL_CRONTAB"}
    user_env |= {"JOBCTL_JOBS_DIR": str(jobs), "JOBCTL_STATE_DIR": str(tmp_path / "user-state")}
    system_env = dict(user_env, JOBCTL_STATE_DIR=str(tmp_path / "system-state"))
    try:
        assert jobctl("apply", env=user_env).returncode == 0
        applied_file = tmp_path / "user-state" / "applied" / "caught-up.json"
        two_hours_ago = time.time() - 7200  # applied before the downtime began
        os.utime(applied_file, (two_hours_ago, two_hours_ago))
        (jobs / "every-minute.yaml").write_text(
            'schedule: "* * * * *"\ncommand: echo "ran by cron as $USER"\nuser: nobody\nworking_dir: /tmp\n')
        result = jobctl("apply", "--system", env=system_env)
        assert result.returncode == 0, result.stderr
        assert SYSTEM_FILE.stat().st_mode & 0o7777 == 0o644

        deadline = time.monotonic() + 200  # three minutes away at most, plus cron's reload of changed tables
        wanted = {("every-minute", "schedule"), ("in-kolkata", "schedule"), ("caught-up", "catchup")}
        user_runs: list[dict] = []
        system_runs: list[dict] = []
        while time.monotonic() < deadline:
            user_runs = [r for r in history(user_env) if r["status"] != "running"]
            system_runs = [r for r in history(system_env) if r["status"] != "running"]
            if wanted <= {(r["job"], r["trigger"]) for r in user_runs} and system_runs:
                break
            time.sleep(2)
        seen = {(r["job"], r["trigger"]): r for r in user_runs}
        assert wanted <= set(seen), f"cron ran only {sorted(seen)}"
        assert all(r["status"] == "succeeded" for r in user_runs), user_runs
        kolkata_run = seen[("in-kolkata", "schedule")]
        assert kolkata_run["scheduled_for"] == kolkata.replace(second=0, microsecond=0).astimezone(
            timezone.utc).strftime("%Y-%m-%dT%H:%M:00.000Z")
        assert len([r for r in user_runs if r["job"] == "in-kolkata"]) == 1  # the other wake-ups left no row
        assert seen[("caught-up", "catchup")]["scheduled_for"] == missed.strftime("%Y-%m-%dT%H:%M:00.000Z")
        assert len([r for r in user_runs if r["job"] == "caught-up"]) == 1  # caught up once, not every minute
        assert system_runs, "cron did not run the /etc/cron.d job"
        run = system_runs[-1]
        assert (run["job"], run["status"], run["trigger"]) == ("every-minute", "succeeded", "schedule")
        assert run["scheduled_for"].endswith(":00.000Z")
        assert jobctl("logs", "every-minute", env=user_env).stdout == "ran by cron as root\n"
        assert jobctl("logs", "every-minute", env=system_env).stdout == "ran by cron as nobody\n"
    finally:
        jobctl("uninstall", env=user_env)
        jobctl("uninstall", "--system", env=system_env)
    assert not SYSTEM_FILE.exists()  # uninstall removes jobctl's own cron.d file
