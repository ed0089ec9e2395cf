"""run, history, logs and status through the CLI (CliRunner) and one real subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from jobctl.cli import app

from runhelp import wait_for

cli = CliRunner()

RUN_FIELDS = ["id", "job", "status", "exit_code", "signal", "trigger", "attempt", "scheduled_for", "started_at",
              "finished_at", "duration_s", "pid", "host", "output_bytes", "output_truncated", "reason"]


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def test_run_streams_output_and_returns_the_jobs_exit_code(write_job):
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: echo out; echo err >&2; exit 3\n')
    result = cli.invoke(app, ["run", "hello"])
    assert result.exit_code == 3
    assert result.stdout == "out\nerr\n"
    assert "hello is not applied; running the definition in" in result.stderr


def test_run_quiet_prints_nothing_of_the_job(write_job):
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: echo out\n')
    result = cli.invoke(app, ["run", "hello", "--quiet"])
    assert result.exit_code == 0 and result.stdout == ""


def test_run_says_when_the_files_differ_from_the_applied_definition(write_job):
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: echo one\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert "note" not in cli.invoke(app, ["run", "hello", "-q"]).stderr
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: echo two\ntimeout: 1m\n')
    result = cli.invoke(app, ["run", "hello"])
    assert result.stdout == "two\n"
    assert result.stderr.strip().endswith("differs from the applied one (command, timeout); "
                                          "run jobctl apply to install it")


def test_run_unknown_job_or_invalid_files_is_125(write_job):
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    result = cli.invoke(app, ["run", "helo"])
    assert result.exit_code == 125
    assert result.stderr.strip().endswith("no job named 'helo' in " + os.environ["JOBCTL_JOBS_DIR"]
                                          + "; did you mean 'hello'?")
    write_job("bad.yaml", 'schedule: "61 * * * *"\ncommand: "true"\n')
    result = cli.invoke(app, ["run", "hello"])
    assert result.exit_code == 125
    assert "bad.yaml:1:11: job bad: schedule '61 * * * *': minute field: 61 is out of range" in result.stderr
    assert not os.path.exists(os.path.join(state(), "runs.db"))


def test_history_json_shape_filters_and_order(write_job):
    write_job("ok.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    write_job("bad.yaml", 'schedule: "@hourly"\ncommand: "exit 2"\n')
    for name in ("ok", "bad", "ok"):
        cli.invoke(app, ["run", name, "-q"])
    rows = json.loads(cli.invoke(app, ["history", "--json"]).stdout)
    assert [list(r) for r in rows] == [RUN_FIELDS] * 3
    assert [(r["job"], r["status"]) for r in rows] == [("ok", "succeeded"), ("bad", "failed"), ("ok", "succeeded")]
    assert rows[0]["id"] > rows[1]["id"] > rows[2]["id"]
    first = rows[2]
    assert first["started_at"].endswith("Z") and first["trigger"] == "manual" and first["exit_code"] == 0
    assert isinstance(first["duration_s"], float) and first["output_truncated"] is False
    only_bad = json.loads(cli.invoke(app, ["history", "--status", "failed", "--json"]).stdout)
    assert [r["job"] for r in only_bad] == ["bad"] and only_bad[0]["reason"] == "exit status 2"
    assert len(json.loads(cli.invoke(app, ["history", "ok", "--json", "-n", "1"]).stdout)) == 1
    assert json.loads(cli.invoke(app, ["history", "--since", "1h", "--json"]).stdout) == rows
    assert json.loads(cli.invoke(app, ["history", "--since", "2999-01-01", "--json"]).stdout) == []


def test_history_table_and_bad_arguments(write_job):
    write_job("ok.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    cli.invoke(app, ["run", "ok", "-q"])
    table = cli.invoke(app, ["history"])
    assert table.exit_code == 0
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "REASON"]
    assert row.split()[:4] == ["1", "ok", "succeeded", "manual"] and row.rstrip().endswith("exit status 0")
    bad = cli.invoke(app, ["history", "--status", "done"])
    assert bad.exit_code == 2 and "use one of running, succeeded" in bad.output
    bad = cli.invoke(app, ["history", "--since", "yesterday"])
    assert bad.exit_code == 2 and "neither a duration" in bad.output


def test_history_with_no_log_yet_is_empty(jobs_dir):
    result = cli.invoke(app, ["history", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_unreadable_run_log_is_an_environment_error(jobs_dir):
    os.makedirs(state(), exist_ok=True)
    Path(state(), "runs.db").write_bytes(b"garbage" * 1000)
    result = cli.invoke(app, ["history"])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"jobctl: run log {state()}/runs.db is unreadable:")
    assert len(result.stderr.splitlines()) == 1


def test_logs_by_id_and_by_name_with_the_drop_marker(write_job):
    write_job("big.yaml", 'schedule: "@hourly"\noutput_limit: 20\n'
              "command: \"printf 'aaaaaaaaaa'; printf 'bbbbbbbbbb'; printf 'cccccccccc'\"\n")
    cli.invoke(app, ["run", "big", "-q"])
    by_name = cli.invoke(app, ["logs", "big"])
    assert by_name.exit_code == 0
    assert by_name.stdout == "aaaaaaaaaa\n[... 10 bytes of output dropped (output_limit) ...]\ncccccccccc"
    assert cli.invoke(app, ["logs", "1"]).stdout == by_name.stdout
    missing = cli.invoke(app, ["logs", "99"])
    assert missing.exit_code == 1 and missing.stderr == "jobctl: no run 99\n"


def test_detach_prints_the_run_id_and_the_run_is_recorded(write_job, tmp_path):
    flag = tmp_path / "done"
    write_job("slow.yaml", f'schedule: "@hourly"\ncommand: sleep 1; touch {flag}\n')
    started = time.monotonic()
    result = cli.invoke(app, ["run", "slow", "--detach"])
    assert result.exit_code == 0
    assert time.monotonic() - started < 1.0 or not flag.exists()  # returned before the job finished
    run_id = int(result.stdout.strip())
    db = os.path.join(state(), "runs.db")
    wait_for(lambda: sqlite3.connect(db).execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
             == ("succeeded",), timeout=30)
    assert flag.exists()


def test_status_json_and_states(write_job):
    write_job("a.yaml", 'description: the a job\nschedule: "*/5 * * * *"\ncommand: "true"\n')
    write_job("b.yaml", 'schedule: "@daily"\ncommand: "exit 1"\n')
    write_job("c.yaml", 'schedule: "@daily"\ncommand: "true"\nenabled: false\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    write_job("d.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    write_job("b.yaml", 'schedule: "@daily"\ncommand: "exit 1"\ntimeout: 1m\n')
    cli.invoke(app, ["run", "b", "-q"])
    cli.invoke(app, ["run", "b", "-q"])
    os.unlink(Path(os.environ["JOBCTL_JOBS_DIR"]) / "a.yaml")
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {n: r["state"] for n, r in rows.items()} == {
        "a": "orphaned", "b": "changed", "c": "disabled", "d": "not applied"}
    assert list(rows["b"]) == ["name", "description", "schedule", "schedule_description", "next_run", "state",
                               "last_run", "consecutive_failures", "paused", "late", "missed"]
    assert rows["b"]["schedule"] == "@daily" and rows["b"]["schedule_description"] == "At 00:00"
    assert rows["b"]["consecutive_failures"] == 2
    assert rows["b"]["last_run"]["status"] == "failed" and list(rows["b"]["last_run"]) == RUN_FIELDS
    assert rows["b"]["next_run"].endswith("T00:00:00.000Z") or rows["b"]["next_run"].endswith(":00.000Z")
    assert rows["d"]["last_run"] is None and rows["d"]["next_run"] is None
    one = cli.invoke(app, ["status", "b", "--json"])
    assert [r["name"] for r in json.loads(one.stdout)] == ["b"]
    assert cli.invoke(app, ["status", "zzz"]).exit_code == 1


def test_status_keeps_working_with_a_broken_job_file(write_job):
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    write_job("broken.yaml", "schedule: [\n")
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.stdout)] == ["a"]
    assert "1 problem in" in result.stderr and "jobctl validate" in result.stderr


def test_installed_entry_point_in_a_real_subprocess(write_job):
    write_job("hello.yaml", 'schedule: "@hourly"\ncommand: echo hi\n')
    exe = os.path.join(os.path.dirname(sys.executable), "jobctl")
    result = subprocess.run([exe, "run", "hello"], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "hi\n")
    result = subprocess.run([exe, "history", "--json"], capture_output=True, text=True, timeout=60)
    assert json.loads(result.stdout)[0]["job"] == "hello"
