"""Notifications: real HTTP on loopback, a real command, a stand-in sendmail program."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.runner import notify

cli = CliRunner()


class Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, bytes]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.calls.append((self.path, body))
        self.send_response(Recorder.status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    Recorder.calls = []
    Recorder.status = 200
    httpd = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


RUN = {"id": 7, "job": "backup", "status": "failed", "exit_code": 3, "signal": None, "trigger": "schedule",
       "attempt": 1, "started_at": "2026-11-29T03:00:00.000Z", "finished_at": "2026-11-29T03:00:05.000Z",
       "duration_s": 5.0, "host": "web1", "reason": "exit status 3"}


@pytest.mark.parametrize(("status", "previous", "expected"), [
    ("failed", 0, "failure"), ("timeout", 2, "failure"), ("killed", 0, "failure"), ("lost", 0, "failure"),
    ("succeeded", 0, "success"), ("succeeded", 3, "recovery"), ("skipped", 0, None), ("running", 0, None),
])
def test_events(status, previous, expected):
    assert notify.event(status, previous) == expected


def test_when_and_after_failures():
    cfg = {"when": ["failure"], "after_failures": 3}
    assert [notify.wanted(cfg, "failure", n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert not notify.wanted(cfg, "success", 0) and not notify.wanted(cfg, "recovery", 0)
    assert notify.wanted({"when": ["recovery"]}, "recovery", 0)
    assert not notify.wanted({"when": ["recovery"]}, "success", 0)
    assert notify.wanted({"when": ["success"]}, "recovery", 0)  # a recovery is a success too


def test_webhook_posts_slack_compatible_json(server):
    result = notify.after_run({"when": ["failure"], "webhook": server + "/hook"}, dict(RUN), b"line1\nboom\n",
                              {"PATH": "/usr/bin:/bin"}, "/bin/sh", 1, 0)
    assert result == ["webhook ok (200)"]
    [(path, body)] = Recorder.calls
    doc = json.loads(body)
    assert path == "/hook"
    assert doc["text"] == "jobctl on web1: job backup FAILURE (exit status 3, exit 3, run 7, 5.0s)"
    assert doc["event"] == "failure" and doc["run"] == RUN and doc["output_tail"] == "line1\nboom\n"


def test_webhook_is_retried_and_its_failure_is_reported_not_raised(server):
    Recorder.status = 503
    result = notify.webhook(server + "/hook", dict(RUN), "failure", b"")
    assert result.startswith("webhook failed after 3 attempts: HTTPError: HTTP Error 503")
    assert len(Recorder.calls) == 3
    assert notify.webhook("http://127.0.0.1:9/nothing", dict(RUN), "failure", b"").startswith("webhook failed")


def test_pings_follow_healthchecks_conventions(server):
    assert notify.ping(server + "/uuid", "start", RUN) == "ping start ok"
    ok = dict(RUN, status="succeeded", exit_code=0)
    notify.after_run({"when": ["failure"], "ping": server + "/uuid"}, ok, b"fine\n", {}, "/bin/sh", 0, 0)
    notify.after_run({"when": ["failure"], "ping": server + "/uuid"}, dict(RUN), b"x" * 20000, {}, "/bin/sh", 1, 0)
    timeout = dict(RUN, status="timeout", exit_code=None)
    notify.after_run({"when": ["failure"], "ping": server + "/uuid"}, timeout, b"", {}, "/bin/sh", 1, 0)
    paths = [p for p, _ in Recorder.calls]
    assert paths == ["/uuid/start", "/uuid", "/uuid/3", "/uuid/fail"]
    assert Recorder.calls[1][1] == b"fine\n" and len(Recorder.calls[2][1]) == 10 * 1024


def test_command_sink_gets_variables_and_the_output(tmp_path):
    out = tmp_path / "got"
    cmd = f'{{ echo "$JOBCTL_JOB $JOBCTL_EVENT $JOBCTL_STATUS $JOBCTL_EXIT_CODE $JOBCTL_RUN_ID"; cat; }} > {out}'
    result = notify.after_run({"when": ["failure"], "command": cmd}, dict(RUN), b"the output\n",
                              {"PATH": "/usr/bin:/bin"}, "/bin/sh", 1, 0)
    assert result == ["command ok"]
    assert out.read_text() == "backup failure failed 3 7\nthe output\n"
    failing = notify.command("echo nope >&2; exit 4", "/bin/sh", {"PATH": "/usr/bin:/bin"}, dict(RUN), "failure", b"")
    assert failing == "command failed (exit 4): nope"


def test_email_through_sendmail_or_a_clear_error(tmp_path):
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    spool = tmp_path / "mail"
    sendmail = fakebin / "sendmail"
    sendmail.write_text(f'#!/bin/sh\necho "$@" > {spool}.args\ncat > {spool}\n')
    sendmail.chmod(0o755)
    result = notify.email(["ops@example.com"], f"{fakebin}:/usr/bin:/bin", dict(RUN), "failure", b"tail\n")
    assert result == "email ok (1 recipient)"
    message = spool.read_text()
    assert message.startswith("To: ops@example.com\nSubject: jobctl on web1: job backup FAILURE")
    assert message.endswith("Last output:\ntail\n")
    assert (tmp_path / "mail.args").read_text().strip() == "-t -oi"
    empty = tmp_path / "empty"
    empty.mkdir()
    if os.path.exists("/usr/sbin/sendmail") or os.path.exists("/usr/lib/sendmail"):
        pytest.skip("this machine has a real sendmail")
    missing = notify.email(["ops@example.com"], str(empty), dict(RUN), "failure", b"")
    assert missing.startswith("email failed: no sendmail on this host")


def test_a_run_with_notify_records_the_outcome_and_logs_shows_it(write_job, server):
    write_job("flaky.yaml", f'schedule: "@hourly"\ncommand: "echo oops; exit 2"\n'
                            f'notify: {{when: [failure, recovery], webhook: "{server}/h"}}\n')
    result = cli.invoke(app, ["run", "flaky", "-q"])
    assert result.exit_code == 2  # a notification never changes the run's result
    assert [p for p, _ in Recorder.calls] == ["/h"]
    logs = cli.invoke(app, ["logs", "flaky"])
    assert logs.stdout == "oops\n"
    assert "notify: webhook ok (200)" in logs.stderr


def test_a_failing_sink_does_not_change_the_run(write_job):
    write_job("x.yaml", 'schedule: "@hourly"\ncommand: "true"\n'
                        'notify: {when: [success], webhook: "http://127.0.0.1:9/down"}\n')
    result = cli.invoke(app, ["run", "x", "-q"])
    assert result.exit_code == 0
    history = json.loads(cli.invoke(app, ["history", "--json"]).stdout)
    assert history[0]["status"] == "succeeded"
    assert "webhook failed" in cli.invoke(app, ["logs", "x"]).stderr
