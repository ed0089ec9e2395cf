"""One run record: history --json, status --json, the webhook payload and the notify command's variables.

A real job runs (through `jobctl run`, and through the wrapper cron starts),
posts to a real HTTP receiver on loopback and runs a real notify command that
dumps its environment; what each received must be what `history --json`
prints for the same run, field for field.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import store
from jobctl.cli.app import app
from jobctl.runner import notify

cli = CliRunner()

#: the fields as README and jobctl(1) document them, in order; the JSON interface
DOCUMENTED = ["id", "job", "status", "exit_code", "signal", "trigger", "attempt", "scheduled_for", "started_at",
              "finished_at", "duration_s", "pid", "host", "output_bytes", "output_truncated", "reason",
              "parent_run_id", "params"]
#: what `history --json` adds to each run record: its judgement against the job's usual duration
HISTORY_EXTRA = ["judged", "usual_s"]
PAYLOAD = ["text", "event", "run", "output_tail"]
ROOT = Path(__file__).resolve().parent.parent


class Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        Receiver.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.bodies = []
    httpd = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


def history() -> list[dict]:
    """`history --json`'s run records (the fields it adds after them are checked here, then left out)."""
    result = cli.invoke(app, ["history", "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert all(list(r) == DOCUMENTED + HISTORY_EXTRA for r in records)
    return [{f: r[f] for f in DOCUMENTED} for r in records]


def variable(field: str) -> str:
    return "JOBCTL_RUN_ID" if field == "id" else "JOBCTL_" + field.upper()


def as_variable(value: object) -> str:
    return "" if value is None else "true" if value is True else "false" if value is False else str(value)


def dumped_env(path: Path) -> dict[str, str]:
    return dict(item.split("=", 1) for item in path.read_bytes().decode().split("\0") if item)


def test_the_field_list_is_the_documented_one():
    assert list(store.RUN_FIELDS) == DOCUMENTED


def test_a_row_and_the_wrappers_mapping_make_the_same_record(tmp_path):
    log = store.connect(str(tmp_path / "runs.db"))
    run_id = log.start_run("j", "schedule", 2, 1_800_000_000.0, 1_800_000_000.25, 4242, "web1", "boot")
    log.set_pid(run_id, 777)
    log.finish_run(run_id, "failed", 3, None, 1_800_000_005.5, "exit status 3", b"a", b"b", 10, 2010)
    row = log.get(run_id)
    log.close()
    assert row is not None
    record = store.run_record(row)
    assert list(record) == DOCUMENTED
    columns = dict(zip(row.keys(), tuple(row), strict=True))  # what the wrapper holds after an attempt
    assert store.run_record(columns) == record
    assert record["started_at"] == "2027-01-15T08:00:00.250Z" and record["duration_s"] == 5.25
    assert record["output_truncated"] is True and record["exit_code"] == 3 and record["pid"] == 777


def test_every_field_has_a_variable_and_the_docs_name_both():
    readme = (ROOT / "README.md").read_text()
    man = (ROOT / "man" / "jobctl.1").read_text()
    env = notify.environment(dict.fromkeys(store.RUN_FIELDS), "failure")
    assert set(env) == {"JOBCTL_EVENT", *(variable(f) for f in store.RUN_FIELDS)}
    for field in store.RUN_FIELDS:
        assert f"| `{field}` |" in readme and f"`{variable(field)}` |" in readme, field
        assert f"\n.BR {field} \"" in man, field
    for field in PAYLOAD:
        assert f"| `{field}` |" in readme and f"\n.BR {field} \"" in man, field


def _check_against_history(body: bytes, env_file: Path) -> dict:
    record = history()[0]  # the run's last attempt
    payload = json.loads(body)
    assert list(payload) == PAYLOAD
    assert payload["run"] == record  # the webhook's run is history --json's, field for field
    assert payload["event"] == "failure"
    env = dumped_env(env_file)
    assert env["JOBCTL_EVENT"] == "failure"
    assert {f: env[variable(f)] for f in DOCUMENTED} == {f: as_variable(record[f]) for f in DOCUMENTED}
    return record


def test_the_webhook_and_the_command_get_the_history_record_of_a_run(write_job, receiver, tmp_path):
    dump = tmp_path / "env"
    write_job("flaky.yaml", f'schedule: "@hourly"\ncommand: "head -c 3000 /dev/zero | tr \\\\0 x; exit 3"\n'
                            f"output_limit: 1KiB\nretries: {{attempts: 1, delay: 0s}}\n"
                            f'notify: {{webhook: "{receiver}", command: "env -0 > {dump}"}}\n')
    result = cli.invoke(app, ["run", "flaky", "-q"])
    assert result.exit_code == 3
    [body] = Receiver.bodies
    record = _check_against_history(body, dump)
    # the fields a first attempt of a manual run leaves empty are set here
    assert (record["trigger"], record["attempt"], record["output_truncated"]) == ("retry", 2, True)
    assert record["output_bytes"] == 3000 and record["pid"] and record["exit_code"] == 3


def test_a_run_cron_starts_notifies_the_same_record(write_job, receiver, tmp_path):
    dump = tmp_path / "env"
    write_job("nightly.yaml", f'schedule: "@hourly"\ncommand: "echo out; kill -TERM $$"\n'
                              f'notify: {{webhook: "{receiver}", command: "env -0 > {dump}"}}\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    state = os.environ["JOBCTL_STATE_DIR"]
    done = subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state,
                           "nightly"], capture_output=True, timeout=120, cwd="/")
    assert done.returncode == 128 + 15, done
    [body] = Receiver.bodies
    record = _check_against_history(body, dump)
    assert (record["trigger"], record["status"], record["signal"]) == ("schedule", "killed", 15)
    assert record["scheduled_for"] is not None and record["scheduled_for"].endswith(":00.000Z")


def test_status_json_shows_runs_as_the_same_record(write_job):
    write_job("ok.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    cli.invoke(app, ["run", "ok", "-q"])
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["last_run"] == row["last_started_run"] == history()[0]
    assert list(row["last_run"]) == DOCUMENTED


def test_a_skip_has_no_exit_code_in_every_shape():
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT 1 AS id, 'j' AS job, 'skipped' AS status, 75 AS exit_code, NULL AS signal,"
                     " 'schedule' AS trigger, 1 AS attempt, NULL AS scheduled_for, 0.0 AS started_at,"
                     " 0.0 AS finished_at, 0.0 AS duration_s, NULL AS pid, 'h' AS host, 0 AS output_bytes,"
                     " 0 AS output_truncated, 'forbid' AS reason, NULL AS parent_run_id,"
                     " NULL AS params").fetchone()
    record = store.run_record(row)
    assert record["exit_code"] is None
    assert notify.environment(record, "failure")["JOBCTL_EXIT_CODE"] == ""
