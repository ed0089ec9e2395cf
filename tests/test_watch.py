"""overdue and missed through the every-minute pass: real applied jobs, real wrappers, the real run log.

Jobs are written as job files and applied by ``jobctl apply`` into the
isolated directories; the pass runs as cron runs it (``python -I -m
jobctl.runner --catch-up``) or as catchup.run_pass with a chosen time.  Each
notification is a real notify command appending to a file; expected minutes
are worked out here with arithmetic on UTC seconds, not with jobctl's clock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobctl import store
from jobctl.runner import catchup, cmdline, notify

from runhelp import crontab_command, rows, wait_for

CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": "/root", "LOGNAME": "root"}
#: a notify command that writes one line per missed minute it is told about
PER_SLOT = 'for s in $JOBCTL_SLOTS; do echo "$JOBCTL_EVENT $JOBCTL_JOB $s" >> {out}; done'


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def jobctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def write_job(name: str, text: str) -> None:
    d = Path(os.environ["JOBCTL_JOBS_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text)


def apply(*flags: str) -> None:
    done = jobctl("apply", *flags)
    assert done.returncode == 0, done.stdout + done.stderr


def applied_at(name: str, t: float) -> None:
    """Say the job was applied at ``t`` (the pass never judges a minute before that)."""
    path = os.path.join(state(), "applied", f"{name}.json")
    os.utime(path, (t, t))



def the_minute() -> float:
    """The current minute, with at least 10 s of it left (a wrapper started now records this minute)."""
    now = time.time()
    if now % 60 > 50:
        time.sleep(61 - now % 60)
        now = time.time()
    return now - now % 60


def alerts(kind: str | None = None) -> list[tuple[str, str, float, str]]:
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    try:
        sql = "SELECT job, kind, key, detail FROM alerts WHERE kind != 'checked'" + (" AND kind = ?" if kind else "")
        return db.execute(sql + " ORDER BY job, key", (kind,) if kind else ()).fetchall()
    finally:
        db.close()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def missed_job(name: str, out: Path, schedule: str = "* * * * *", extra: str = "") -> None:
    write_job(name, f"schedule: '{schedule}'\ncommand: 'true'\n{extra}"
                    f"notify:\n  when: [missed]\n  command: '{PER_SLOT.format(out=out)}'\n")


# --- installation ---------------------------------------------------------------------------

def pass_lines() -> list[str]:
    text = Path(os.environ["JOBCTL_CRONTAB"]).read_text()
    return [line for line in text.splitlines() if "# jobctl:_catch-up" in line]


@pytest.mark.parametrize(("when", "installed"), [
    ("[missed]", True), ("[overdue]", True), ("[failure, missed]", True), ("[failure, slow, short]", False),
])
def test_the_pass_is_installed_when_a_job_notifies_on_missed_or_overdue(when, installed):
    write_job("a", f"schedule: '@hourly'\ncommand: 'true'\nnotify:\n  when: {when}\n  command: 'true'\n")
    apply()
    found = pass_lines()
    assert len(found) == (2 if installed else 0), found
    if installed:
        assert {line.split()[0] for line in found} == {"@reboot", "*"}
        assert all("--catch-up --state-dir" in line for line in found)


def test_the_pass_goes_when_no_job_needs_it_any_more():
    write_job("a", "schedule: '@hourly'\ncommand: 'true'\nnotify:\n  when: [missed]\n  command: 'true'\n")
    apply()
    assert len(pass_lines()) == 2
    write_job("a", "schedule: '@hourly'\ncommand: 'true'\nnotify:\n  when: [failure]\n  command: 'true'\n")
    apply()
    assert pass_lines() == []


# --- missed ---------------------------------------------------------------------------------

def test_each_missed_minute_alerts_exactly_once_across_passes(tmp_path):
    out = tmp_path / "alerts"
    missed_job("m", out)
    apply()
    minute = the_minute()
    applied_at("m", minute - 3600)
    now = minute + 5
    catchup.run_pass(state(), now)  # first look: the minute 2-3 minutes back only
    assert lines(out) == [f"missed m {iso(minute - 120)}"]
    catchup.run_pass(state(), now)  # the same time again: nothing new
    catchup.run_pass(state(), now + 180)  # three minutes on: three more, once each
    catchup.run_pass(state(), now + 180)
    catchup.run_pass(state(), now + 200)
    want = [f"missed m {iso(minute + k * 60)}" for k in (-2, -1, 0, 1)]
    assert lines(out) == want
    recorded = alerts("missed")
    assert [(job, key) for job, _, key, _ in recorded] == [("m", minute + k * 60) for k in (-2, -1, 0, 1)]
    # each alert says what the minute and the schedule were, and what the notification did
    assert all("schedule '* * * * *'" in detail and detail.endswith("; notify: command ok")
               for _, _, _, detail in recorded)


def test_a_minute_with_a_run_or_a_skip_is_not_missed(tmp_path):
    out = tmp_path / "alerts"
    for name in ("ran", "skipped", "none"):
        missed_job(name, out)
    apply()
    minute = the_minute()
    for name in ("ran", "skipped", "none"):
        applied_at(name, minute - 3600)
    # cron starts the wrappers of this minute: one runs, one is paused (recorded as skipped)
    done = subprocess.run(crontab_command("ran"), env=CRON_ENV, cwd="/", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert jobctl("pause", "skipped").returncode == 0
    done = subprocess.run(crontab_command("skipped"), env=CRON_ENV, cwd="/", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert jobctl("resume", "skipped").returncode == 0
    assert {(r["job"], r["status"], r["scheduled_for"]) for r in rows(state())} == {
        ("ran", "succeeded", minute), ("skipped", "skipped", minute)}
    catchup.run_pass(state(), minute + 125)
    assert lines(out) == [f"missed none {iso(minute)}"]


def test_a_backfill_run_for_the_minute_counts_as_its_run(tmp_path):
    out = tmp_path / "alerts"
    missed_job("b", out)
    apply()
    minute = the_minute() - 600
    applied_at("b", minute - 3600)
    done = subprocess.run(cmdline.backfill_run_argv(state(), "b", minute), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    catchup.run_pass(state(), minute + 65)  # first look: the minute before
    catchup.run_pass(state(), minute + 125)  # then the minute backfill ran for
    assert lines(out) == [f"missed b {iso(minute - 60)}"]


@pytest.mark.parametrize("jitter", [0, 60])
def test_a_minute_is_judged_only_after_the_grace_and_the_jitter(tmp_path, jitter):
    out = tmp_path / "alerts"
    missed_job("g", out, extra=f"jitter: {jitter}s\n" if jitter else "")
    apply()
    minute = the_minute() + 600
    applied_at("g", minute - 30)
    grace = 120 + jitter
    catchup.run_pass(state(), minute + grace - 1)
    assert lines(out) == []
    assert alerts() == []
    catchup.run_pass(state(), minute + grace + 1)
    assert lines(out) == [f"missed g {iso(minute)}"]


def test_the_first_look_alerts_no_history_from_before_the_job_was_watched(tmp_path):
    out = tmp_path / "alerts"
    missed_job("old", out)
    apply()
    now = time.time()
    applied_at("old", now - 86400)  # a day of minutes without a single run
    catchup.run_pass(state(), now)
    assert len(lines(out)) == 1 and len(alerts("missed")) == 1


def test_a_minute_before_the_job_was_applied_is_not_missed(tmp_path):
    out = tmp_path / "alerts"
    missed_job("new", out)
    apply()  # applied now: the minutes of the last three are before it
    catchup.run_pass(state(), time.time() + 119)
    assert lines(out) == [] and alerts() == []


def test_a_paused_job_misses_nothing(tmp_path):
    out = tmp_path / "alerts"
    missed_job("p", out)
    apply()
    minute = the_minute()
    applied_at("p", minute - 3600)
    assert jobctl("pause", "p").returncode == 0
    catchup.run_pass(state(), minute + 300)
    assert jobctl("resume", "p").returncode == 0
    catchup.run_pass(state(), minute + 360)  # looks on from where it stopped: only the minute after the pause
    assert lines(out) == [f"missed p {iso(minute + 240)}"]


def test_a_job_that_waits_for_its_lock_is_judged_once_the_run_ahead_of_it_ends(tmp_path):
    out = tmp_path / "alerts"
    write_job("q", "schedule: '* * * * *'\ncommand: 'sleep 120'\nconcurrency: wait\nnotify:\n  when: [missed]\n"
                   f"  command: '{PER_SLOT.format(out=out)}'\n")
    apply()
    minute = the_minute()
    applied_at("q", minute - 3600)
    proc = subprocess.Popen(crontab_command("q"), env=CRON_ENV, cwd="/", stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run = wait_for(lambda: [r for r in rows(state(), "q") if r["status"] == "running" and r["pid"]])[0]
        assert run["scheduled_for"] == minute
        # the next minute's wrapper would be queued on the lock, with no row yet: not missed while the run goes on
        catchup.run_pass(state(), minute + 60 + 125)
        assert lines(out) == [] and alerts() == []
    finally:
        stop(proc)
    catchup.run_pass(state(), minute + 60 + 125)
    assert lines(out) == [f"missed q {iso(minute + 60)}"]


def test_a_minute_the_pass_makes_up_is_not_missed_and_the_ones_it_coalesces_are(tmp_path):
    out = tmp_path / "alerts"
    missed_job("cu", out, schedule="*/10 * * * *", extra="catch_up: 1h\n")
    apply()
    # times to come, so that the catch-up runs' real start (now) is before every minute looked at
    slot = the_minute() + 3600
    slot -= slot % 600
    applied_at("cu", slot - 3000)
    assert catchup.run_pass(state(), slot + 125) == [("cu", slot)]  # made up at once: not missed
    wait_for(lambda: [r for r in rows(state(), "cu") if r["status"] == "succeeded"])
    # down for half an hour: catch-up runs the latest minute once; the two before it never ran
    assert catchup.run_pass(state(), slot + 1800 + 125) == [("cu", slot + 1800)]
    wait_for(lambda: len([r for r in rows(state(), "cu") if r["status"] == "succeeded"]) == 2)
    assert lines(out) == [f"missed cu {iso(slot + 600)}", f"missed cu {iso(slot + 1200)}"]
    assert [(r["trigger"], r["scheduled_for"]) for r in rows(state(), "cu")] == [
        ("catchup", slot), ("catchup", slot + 1800)]


def test_a_reboot_job_is_never_missed(tmp_path):
    out = tmp_path / "alerts"
    missed_job("r", out, schedule="@reboot")
    apply()
    applied_at("r", time.time() - 3600)
    catchup.run_pass(state(), time.time() + 600)
    assert lines(out) == [] and alerts() == []


def test_many_missed_minutes_of_one_pass_are_one_notification(tmp_path):
    out = tmp_path / "alerts"
    count = tmp_path / "count"
    write_job("down", "schedule: '*/5 * * * *'\ncommand: 'true'\nnotify:\n  when: [missed]\n"
                      f"  command: 'echo \"$JOBCTL_MISSED $JOBCTL_SLOT\" >> {count}; {PER_SLOT.format(out=out)}'\n")
    apply()
    start = the_minute() - 7200
    start -= start % 300
    applied_at("down", start - 1)
    catchup.run_pass(state(), start + 125)  # the first look: start itself
    # then the machine was off for an hour: one alert naming the twelve minutes
    catchup.run_pass(state(), start + 3600 + 121)
    want = [start + 300 * k for k in range(13)]  # start, then every 5 minutes to start + 1h
    assert [line.split()[2] for line in lines(out)] == [iso(t) for t in want]
    assert lines(count) == [f"1 {iso(want[0])}", f"12 {iso(want[1])}"]
    [(_, _, _, detail)] = [a for a in alerts() if a[2] == want[-1]]
    assert detail.startswith(f"no run started for {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(want[-1]))} ")


# --- overdue --------------------------------------------------------------------------------

def record_successes(job: str, seconds: list[float]) -> None:
    """Finished successful runs in the run log, through the wrapper's own calls (start_run, finish_last)."""
    log = store.connect(os.path.join(state(), "runs.db"))
    try:
        t = time.time() - 86400
        for s in seconds:
            run_id = log.start_run(job, "schedule", 1, t - t % 60, t, 1, os.uname().nodename, "old-boot")
            log.finish_last(run_id, "succeeded", 0, None, t + s, "exit status 0", b"", b"", 0, 0, job, 200,
                            90 * 86400, time.time())
            t += 3600
    finally:
        log.close()


def overdue_job(out: Path) -> None:
    write_job("slow", "schedule: '@yearly'\ncommand: 'sleep 120'\nnotify:\n  when: [overdue]\n"
                      f"  command: 'echo \"$JOBCTL_EVENT $JOBCTL_RUN_ID $JOBCTL_USUAL_S $JOBCTL_DETAIL\" >> {out}'\n")


def start_wrapper() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(crontab_command("slow"), env=CRON_ENV, cwd="/", stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    run = wait_for(lambda: [r for r in rows(state(), "slow") if r["status"] == "running" and r["pid"]])[0]
    return proc, run


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def run_the_pass() -> None:
    done = subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--catch-up", "--state-dir", state()],
                          env=CRON_ENV, cwd="/", capture_output=True, timeout=300)
    assert done.returncode == 0 and done.stderr == b"", done.stderr


def test_a_run_past_its_usual_duration_alerts_once_and_goes_on(tmp_path):
    out = tmp_path / "alerts"
    overdue_job(out)
    apply()
    record_successes("slow", [0.3] * 5)
    proc, run = start_wrapper()
    try:
        # usual: 0.3 s with no spread, so overdue past max(3 x 0.3, 0.3 + 1) = 1.3 s
        wait_for(lambda: time.time() - run["started_at"] > 2.0, timeout=10)
        run_the_pass()
        run_the_pass()
        [line] = lines(out)
        assert line.startswith(f"overdue {run['id']} 0.300 running for ")
        assert "usually 0.3s (median of 5 successful runs, MAD 0.0s); slow beyond 1.3s" in line
        [(job, kind, key, detail)] = alerts()
        assert (job, kind, key) == ("slow", "overdue", run["id"]) and detail.endswith("; notify: command ok")
        # never killed: the run and its process go on
        assert proc.poll() is None
        [r] = [r for r in rows(state(), "slow") if r["id"] == run["id"]]
        assert r["status"] == "running"
        os.kill(r["pid"], 0)
    finally:
        stop(proc)


@pytest.mark.parametrize("runs", [0, 4])
def test_below_min_runs_nothing_is_overdue(tmp_path, runs):
    out = tmp_path / "alerts"
    overdue_job(out)
    apply()
    record_successes("slow", [0.3] * runs)
    proc, run = start_wrapper()
    try:
        catchup.run_pass(state(), run["started_at"] + 3600)
        assert lines(out) == [] and alerts() == []
    finally:
        stop(proc)


def test_a_run_whose_wrapper_died_is_lost_not_overdue(tmp_path):
    out = tmp_path / "alerts"
    overdue_job(out)
    apply()
    record_successes("slow", [0.3] * 5)
    proc, run = start_wrapper()
    for group in (proc.pid, run["pid"]):  # wrapper and job gone, the row still says running
        os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=30)
    wait_for(lambda: not os.path.exists(f"/proc/{run['pid']}") or b") Z" in Path(f"/proc/{run['pid']}/stat")
             .read_bytes())
    catchup.run_pass(state(), run["started_at"] + 3600)
    assert lines(out) == [] and alerts() == []
    [r] = [r for r in rows(state(), "slow") if r["id"] == run["id"]]
    assert r["status"] == "lost"


# --- what an alert carries --------------------------------------------------------------------

def test_the_webhook_gets_the_event_the_slot_and_no_run(tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        write_job("w", "schedule: '* * * * *'\ncommand: 'true'\nnotify:\n  when: [missed]\n"
                       f"  webhook: 'http://127.0.0.1:{httpd.server_address[1]}/hook'\n")
        apply()
        minute = the_minute()
        applied_at("w", minute - 3600)
        catchup.run_pass(state(), minute + 125)
    finally:
        httpd.shutdown()
        httpd.server_close()
    [doc] = got
    assert (doc["event"], doc["run"], doc["job"], doc["slot"], doc["slots"], doc["missed"]) == (
        "missed", None, "w", iso(minute), [iso(minute), ], 1)
    host = os.uname().nodename
    assert doc["text"] == (f"jobctl on {host}: job w MISSED: no run started for "
                           f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime(minute))} within 2m (schedule '* * * * *')")
    [(_, _, _, detail)] = alerts()
    assert detail.endswith("; notify: webhook ok (204)")


def test_alert_sends_only_what_when_names(tmp_path):
    out = tmp_path / "out"
    cfg = {"when": ["failure"], "command": f"echo $JOBCTL_EVENT >> {out}", "webhook": None, "email": [],
           "ping": "http://127.0.0.1:9/never"}
    assert notify.alert(cfg, "slow", "j", "took 9s", None, b"", {"PATH": "/usr/bin:/bin"}, "/bin/sh") == []
    cfg["when"] = ["slow"]
    # the ping is not an alert's sink: only the command is sent
    assert notify.alert(cfg, "slow", "j", "took 9s", None, b"", {"PATH": "/usr/bin:/bin"}, "/bin/sh") == \
        ["command ok"]
    assert lines(out) == ["slow"]


@pytest.fixture
def alert_user():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd")
    user = f"jobctl-w{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent-" + user,
                    "--shell", "/usr/sbin/nologin", user], check=True, capture_output=True)
    shared = Path(tempfile.mkdtemp(prefix="jobctl-watch-", dir="/tmp"))
    shared.chmod(0o777)
    try:
        yield user, shared
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(shared)


def test_the_pass_notifies_as_the_jobs_user(alert_user, tmp_path, monkeypatch):
    user, shared = alert_user
    monkeypatch.setenv("JOBCTL_CRONTAB", str(tmp_path / "cron.d" / "jobctl"))
    (tmp_path / "cron.d").mkdir()
    out = shared / "who"
    write_job("u", f"schedule: '* * * * *'\ncommand: 'true'\nuser: {user}\nnotify:\n  when: [missed]\n"
                   f"  command: 'echo \"$(id -un) $USER $HOME $JOBCTL_JOB\" >> {out}'\n")
    apply("--system")
    minute = the_minute()
    applied_at("u", minute - 3600)
    catchup.run_pass(state(), minute + 125)
    assert lines(out) == [f"{user} {user} /nonexistent-{user} u"]
    assert os.stat(out).st_uid == int(subprocess.run(["id", "-u", user], capture_output=True, text=True,
                                                     check=True).stdout)


# --- retention ------------------------------------------------------------------------------

def test_alerts_older_than_the_jobs_history_go(tmp_path):
    out = tmp_path / "alerts"
    missed_job("keep", out, extra="history: {max_age: 1h}\n")
    apply()
    minute = the_minute()
    applied_at("keep", minute - 7200)
    catchup.run_pass(state(), minute + 125)
    assert [key for _, _, key, _ in alerts()] == [minute]
    catchup.run_pass(state(), minute + 3600 + 60)  # an hour on: that alert is past max_age
    # the minute is more than an hour old; the 59 found since are not
    assert [key for _, _, key, _ in alerts()] == [minute + 60 * k for k in range(1, 60)]
