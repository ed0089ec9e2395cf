"""Review fixes: corrupt applied definitions, history on 80 columns, logs of a job with no runs, plurals."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import applied, store
from jobctl.cli.app import app

cli = CliRunner()


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


# --- 1. a corrupt applied definition ------------------------------------------------

CORRUPT = {"not json": b"{not json", "truncated": b'{"name": "x"', "array": b"[]", "empty object": b"{}",
           "other name": b'{"name": "other", "command": "true"}', "not utf-8": b'{"name": "\xff"}'}


def _corrupt(write_job, content: bytes) -> Path:
    write_job("flaky.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    path = Path(state()) / "applied" / "flaky.json"
    path.write_bytes(content)
    return path


def _warning(path: Path) -> str:
    return f"jobctl: warning: {path} is not a usable definition ("


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_applied_definition_does_not_crash_the_read_commands(write_job, content):
    path = _corrupt(write_job, content)
    for args in (["status"], ["status", "--json"], ["plan"], ["doctor"], ["run", "flaky", "-q"], ["metrics"]):
        applied._warned.clear()  # each command is a process of its own
        result = cli.invoke(app, args)
        assert result.exit_code in (0, 1), (args, result.exit_code, result.stderr)
        assert "internal error" not in result.stderr
        # one warning line, however often the command reads the file
        warnings = [line for line in result.stderr.splitlines() if line.startswith(_warning(path))]
        assert len(warnings) == 1 and warnings[0].endswith("); jobctl apply rewrites it"), (args, result.stderr)
    (row,) = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "changed"
    plan = cli.invoke(app, ["plan"]).stdout
    assert "  change    flaky (not applied)\n" in plan and "1 to change" in plan


def test_read_warns_once_per_file_and_returns_none(write_job, capsys):
    path = _corrupt(write_job, b"[]")
    assert applied.read(state(), "flaky") is None
    assert applied.read(state(), "flaky") is None
    err = capsys.readouterr().err
    assert err == f"jobctl: warning: {path} is not a usable definition (an array, not an object); " \
                  "jobctl apply rewrites it\n"
    path.write_bytes(b'{"name": "flaky", "command": "true"}')
    assert applied.read(state(), "flaky") == {"name": "flaky", "command": "true"}


def test_doctor_names_each_unusable_definition_with_its_fix(write_job):
    path = _corrupt(write_job, b'{"name": "x"')
    gone = Path(state()) / "applied" / "gone.json"
    gone.write_bytes(b"{}")
    out = cli.invoke(app, ["doctor"]).stdout.splitlines()
    i = next(i for i, line in enumerate(out) if line.startswith("FAIL  applied definitions readable: "))
    assert f"{gone}: no name" in out[i] and f"{path}: not JSON: " in out[i]
    assert out[i + 1] == f"      fix: jobctl apply (and remove what no job file defines: rm {gone})"
    gone.unlink()
    assert cli.invoke(app, ["apply"]).exit_code == 0
    out = cli.invoke(app, ["doctor"]).stdout
    assert f"ok    applied definitions readable: 1 definition in {Path(state()) / 'applied'}" in out


def test_apply_rewrites_an_empty_definition_and_says_so(write_job):
    path = _corrupt(write_job, b"{}")
    result = cli.invoke(app, ["apply"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "  change    flaky (not applied)"
    assert lines[2] == (f"{os.environ['JOBCTL_CRONTAB']} already had these lines, not written; rewrote the applied "
                        "definition of flaky (0 jobs unchanged)")
    assert json.loads(path.read_bytes())["name"] == "flaky"
    result = cli.invoke(app, ["apply"])
    assert result.stdout.splitlines()[-1] == f"{os.environ['JOBCTL_CRONTAB']} already in sync: 1 job unchanged, " \
                                             "nothing written"
    assert result.stderr == ""
    (row,) = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "ok"


# --- 2. history on 80 columns ----------------------------------------------------------

LONG = "alternc-sql-backup-nightly-full-with-a-name-of-63-characters-xx"


def _history(width: int) -> list[str]:
    from rich.console import Console

    from jobctl.read import render

    log = store.connect(os.path.join(state(), "runs.db"))
    buffer = StringIO()
    render.history_table(log.history(), out=Console(width=width, file=buffer, highlight=False, markup=False))
    log.close()
    return buffer.getvalue().splitlines()


def test_history_on_80_columns_never_cuts_the_run_id_or_the_job_name(write_job):
    assert len(LONG) == 63
    write_job("long.yaml", f'name: {LONG}\nschedule: "@hourly"\ncommand: "echo hi; exit 3"\n')
    write_job("x.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    for name in (LONG, "x", LONG):
        cli.invoke(app, ["run", name, "-q"])
    ids = [r["id"] for r in json.loads(cli.invoke(app, ["history", "--json"]).stdout)]
    for width in (80, 100, 60):
        lines = _history(width)
        assert "…" not in "".join(" ".join(line.split()[:2]) for line in lines), (width, lines)
        expected = [[str(i), n] for i, n in zip(ids, (LONG, "x", LONG), strict=True)]
        assert [line.split()[:2] for line in lines[1:]] == expected
        if width >= 80:
            assert all(len(line.rstrip()) <= width for line in lines), (width, lines)
        assert lines[0].split()[:2] == ["ID", "JOB"]
    assert _history(80)[0].split() == ["ID", "JOB", "STATUS"]
    assert _history(80)[1].split()[2] == "failed"
    wide = _history(200)
    assert wide[0].split() == ["ID", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "REASON"]
    # piped output (a console 1000 wide) keeps every column
    table = cli.invoke(app, ["history"]).stdout
    assert "REASON" in table and LONG in table


# --- 4. logs of a job with no runs, plurals ------------------------------------------------

def test_logs_of_a_known_job_without_runs_suggests_nothing(write_job):
    write_job("example.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    write_job("other.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    cli.invoke(app, ["run", "other", "-q"])
    result = cli.invoke(app, ["logs", "example"])
    assert result.exit_code != 0
    assert result.stderr == "jobctl: no runs of 'example' yet\n"
    assert "did you mean 'example'" in cli.invoke(app, ["logs", "exampl"]).stderr


def test_one_job_is_not_jobs(write_job):
    write_job("a.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert cli.invoke(app, ["apply"]).stdout.splitlines()[-1].endswith("already in sync: 1 job unchanged, "
                                                                         "nothing written")
    doctor = cli.invoke(app, ["doctor"]).stdout
    assert "1 valid job in " in doctor and ": 1 job as applied" in doctor
    out = cli.invoke(app, ["uninstall"]).stdout
    assert out.startswith("removed jobctl's block (1 job) from ")


def test_a_jobs_directory_path_with_an_escape_is_shown_escaped(tmp_path) -> None:
    """From the attack review: validate's summary and doctor printed a raw ESC from the directory's name."""
    from typer.testing import CliRunner

    from jobctl.cli.app import app

    directory = tmp_path / "je\x1b[31m[b]sc"
    directory.mkdir()
    (directory / "a.yaml").write_text('schedule: "@daily"\ncommand: "true"\n')
    cli = CliRunner()
    for argv in (["validate", "--jobs-dir", str(directory)], ["doctor", "--jobs-dir", str(directory)]):
        result = cli.invoke(app, argv)
        assert "\x1b" not in result.stdout + result.stderr, argv
        assert "\\x1b[31m[b]sc" in result.stdout + result.stderr, argv
    (directory / "b.yaml").write_text('schedule: "nope"\ncommand: "true"\n')
    result = cli.invoke(app, ["validate", "--jobs-dir", str(directory)])
    assert result.exit_code == 1 and "\x1b" not in result.stdout + result.stderr
