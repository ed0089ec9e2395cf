"""`jobctl validate`, `schema`, `init` and `--version` through the CLI, and once through the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import __version__
from jobctl.cli.app import app
from jobctl.errors import ExitCode

SHIPPED = Path(__file__).resolve().parent.parent / "jobs.d"
WriteJob = Callable[[str, "str | bytes"], Path]
runner = CliRunner()

GOOD = "schedule: '@daily'\ncommand: x\n"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"jobctl {__version__}\n"


# --- validate -------------------------------------------------------------------------------


def test_validate_ok(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("_defaults.yaml", "timeout: 1h\n")
    write_job("a.yaml", GOOD)
    write_job("b.yaml", "name: b1\nschedule: '@daily'\ncommand: x\n---\nname: b2\nschedule: '@daily'\ncommand: y\n")
    result = runner.invoke(app, ["validate", "--jobs-dir", str(jobs_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 3 jobs in 3 files ({jobs_dir})\n"
    assert result.stderr == ""


def test_validate_singular_and_jobs_dir_from_environment(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", GOOD)
    result = runner.invoke(app, ["validate"])  # $JOBCTL_JOBS_DIR, set by conftest
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 1 job in 1 file ({jobs_dir})\n"


def test_validate_short_option(write_job: WriteJob, jobs_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.yaml").write_text(GOOD)
    result = runner.invoke(app, ["validate", "-d", str(other)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 1 job in 1 file ({other})\n"


def test_validate_empty_directory(jobs_dir: Path) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 0 jobs in 0 files ({jobs_dir})\n"


def test_validate_reports_every_problem_of_every_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '61 * * * *'\ncommand: x\ntimout: 5m\n")
    write_job("b.yaml", "schedule: */5 * * * *\ncommand: x\n")
    write_job("c.yaml", b"schedule: '@daily'\x00\n")
    write_job("d.yaml", GOOD)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{jobs_dir}/a.yaml:1:11: job a: schedule '61 * * * *': minute field: 61 is out of range; use 0-59",
        f"{jobs_dir}/a.yaml:3:1: job a: unknown key 'timout'; did you mean 'timeout'?",
        f"{jobs_dir}/b.yaml:1:12: YAML syntax error: expected alphabetic or numeric character, but found '/'; "
        "values starting with '*' must be quoted, e.g. schedule: \"*/5 * * * *\"",
        f"{jobs_dir}/c.yaml:1:19: binary file (NUL byte); job files are UTF-8 YAML text",
        f"jobctl: 4 problems in {jobs_dir}; nothing was changed",
    ]


def test_validate_one_problem(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '@daily'\n")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert result.stderr == (f"{jobs_dir}/a.yaml:1:1: job a: missing required key 'command'\n"
                             f"jobctl: 1 problem in {jobs_dir}; nothing was changed\n")


def test_validate_json_ok(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("_defaults.yaml", "timeout: 1h\n")
    write_job("b.yaml", GOOD)
    write_job("a.yaml", GOOD)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "ok": True, "jobs_dir": str(jobs_dir), "jobs": ["a", "b"], "files": 3, "problems": [], "warnings": [],
    }


def test_validate_json_problems(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", GOOD)
    write_job("b.yaml", "schedule: '@daily'\ncommand: x\nenv:\n  DEBUG: yes\n")
    write_job("c.yaml", "")
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout) == {
        "ok": False,
        "jobs_dir": str(jobs_dir),
        "jobs": [],
        "files": 3,
        "problems": [
            {"path": f"{jobs_dir}/b.yaml", "line": 4, "column": 10, "job": "b",
             "message": "env DEBUG: a boolean is not a string; quote it (YAML reads yes/no/on/off as booleans)"},
            {"path": f"{jobs_dir}/c.yaml", "line": 1, "column": 1, "job": None,
             "message": "no job in this file; add a job mapping or delete the file"},
        ],
        "warnings": [],
    }


def test_validate_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "jobs.d"  # $JOBCTL_JOBS_DIR, never created here
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"jobctl: jobs directory {missing} does not exist; create it (jobctl init {missing}) "
                             "or point --jobs-dir / JOBCTL_JOBS_DIR at yours\n")


def test_validate_hostile_directory_never_crashes(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("big.yaml", b"#" * (2 * 1024 * 1024))
    write_job("lol.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)))
    write_job("tags.yaml", "schedule: '@daily'\ncommand: x\ndescription: !!float abc\ntimeout: !!int zz\n")
    write_job("deep.yaml", "[" * 10000)
    write_job("latin.yaml", "command: caf\xe9\n".encode("latin-1"))
    write_job("ctl.yaml", "command: \x1b[31m\n")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert [line.split(":", 1)[0] for line in lines[:-1]] == [
        f"{jobs_dir}/{name}" for name in ("big.yaml", "ctl.yaml", "deep.yaml", "latin.yaml", "lol.yaml",
                                          "tags.yaml", "tags.yaml")]
    assert lines[-1] == f"jobctl: 7 problems in {jobs_dir}; nothing was changed"


@pytest.mark.parametrize(
    "args",
    [["validate", "--bogus"], ["validate", "extra-argument"], ["no-such-command"], ["validate", "--jobs-dir"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.USAGE == 2, result.output


# --- init ----------------------------------------------------------------------------------


def test_init_writes_an_example_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "new" / "jobs.d"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {target}/example.yaml; check it with: jobctl validate --jobs-dir {target}\n"
    text = (target / "example.yaml").read_text()
    assert text.startswith("# ")
    assert "schedule:" in text and "command:" in text
    validated = runner.invoke(app, ["validate", "--jobs-dir", str(target)])
    assert validated.exit_code == 0, validated.output
    assert validated.stdout == f"ok: 1 job in 1 file ({target})\n"


def test_init_never_overwrites(jobs_dir: Path) -> None:
    existing = jobs_dir / "example.yaml"
    existing.write_text("# mine\n")
    result = runner.invoke(app, ["init", str(jobs_dir)])
    assert result.exit_code == 1
    assert result.stderr == f"jobctl: {existing} exists; not overwriting it\n"
    assert existing.read_text() == "# mine\n"


def test_init_defaults_to_the_jobs_dir(isolated_env: Path) -> None:
    target = isolated_env / "jobs.d"  # $JOBCTL_JOBS_DIR, not yet created
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (target / "example.yaml").is_file()
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 1
    assert again.stderr == f"jobctl: {target}/example.yaml exists; not overwriting it\n"


# --- the installed entry point, for real ---------------------------------------------------


def test_entry_point_validates_the_shipped_examples(tmp_path: Path) -> None:
    exe = shutil.which("jobctl", path=os.path.dirname(sys.executable)) or shutil.which("jobctl")
    assert exe, "the jobctl entry point is not installed (pip install -e .)"
    env = {**os.environ, "JOBCTL_STATE_DIR": str(tmp_path / "state"), "JOBCTL_CRONTAB": str(tmp_path / "crontab")}
    proc = subprocess.run([exe, "validate", "--jobs-dir", str(SHIPPED)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"ok: 3 jobs in 4 files ({SHIPPED})\n"


def _entry_point(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("jobctl", path=os.path.dirname(sys.executable)) or shutil.which("jobctl")
    assert exe, "the jobctl entry point is not installed (pip install -e .)"
    env = {**os.environ, "JOBCTL_STATE_DIR": str(tmp_path / "state"), "JOBCTL_CRONTAB": str(tmp_path / "crontab")}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


def test_entry_point_locates_what_used_to_be_internal_errors(write_job: WriteJob, jobs_dir: Path,
                                                              tmp_path: Path) -> None:
    """Issue 10: these exited 70 (internal error) with no location; now one located line each, exit 1."""
    write_job("a.yaml", GOOD + "timeout: !!int ''\n")
    write_job("b.yaml", GOOD + "timezone: Europe\n")
    write_job("c.yaml", GOOD + "retries: {attempts: 1, backoff: " + "9" * 400 + "}\n")
    write_job("d.yaml", GOOD + "timezone: " + "x" * 300 + "\n")
    proc = _entry_point("validate", "--jobs-dir", str(jobs_dir), tmp_path=tmp_path)
    assert proc.returncode == ExitCode.NOT_OK, proc.stderr
    lines = [line.replace(f"{jobs_dir}/", "") for line in proc.stderr.splitlines()]
    assert [line.split(": job ")[0] for line in lines[:-1]] == ["a.yaml:3:10", "b.yaml:3:11", "c.yaml:3:33",
                                                                "d.yaml:3:11"]
    assert lines[-1] == f"jobctl: 4 problems in {jobs_dir}; nothing was changed"


@pytest.mark.skipif(os.geteuid() != 0, reason="jobctl checks who owns the job files only when it runs as root")
def test_entry_point_refuses_a_world_writable_jobs_directory(write_job: WriteJob, jobs_dir: Path,
                                                             tmp_path: Path) -> None:
    write_job("a.yaml", GOOD)
    jobs_dir.chmod(0o1777)
    proc = _entry_point("validate", "--jobs-dir", str(jobs_dir), tmp_path=tmp_path)
    assert proc.returncode == ExitCode.NOT_OK
    assert proc.stderr.splitlines() == [
        f"{jobs_dir}:1:1: jobs directory {jobs_dir} is writable by group root and others (mode 1777); being "
        "sticky, it still lets anyone add job files; jobctl runs as root and refuses it, since whoever can add or "
        f"replace files in it could run commands as root: chown root: {jobs_dir}; chmod go-w {jobs_dir}",
        f"jobctl: 1 problem in {jobs_dir}; nothing was changed",
    ]


# --- conversion traps end to end: the loader's warnings and hints as validate prints them --------------------

KEPT_ESCAPE = "schedule: '@daily'\ncommand: tar -czf /b/etc-$(date +\\%F).tgz /etc\n"


def test_validate_prints_a_warning_and_passes(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", KEPT_ESCAPE)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: 1 job in 1 file ({jobs_dir})\n"
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{jobs_dir}/a.yaml:2:34: warning: job a: command has \\%, a crontab escape")
    assert line.endswith("write % instead of \\%")


def test_validate_strict_fails_on_a_warning(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", KEPT_ESCAPE)
    result = runner.invoke(app, ["validate", "--strict"])
    assert result.exit_code == ExitCode.NOT_OK, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[0].startswith(f"{jobs_dir}/a.yaml:2:34: warning: job a: command has \\%")


def test_validate_json_lists_warnings(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", KEPT_ESCAPE)
    result = runner.invoke(app, ["validate", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["ok"], report["problems"], report["jobs"]) == (True, [], ["a"])
    (warning,) = report["warnings"]
    assert {k: warning[k] for k in ("path", "line", "column", "job")} == {
        "path": f"{jobs_dir}/a.yaml", "line": 2, "column": 34, "job": "a"}
    assert warning["message"].startswith("command has \\%")


def test_validate_names_the_fix_for_each_conversion_trap(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("colon.yaml", "schedule: '@daily'\ncommand: curl -H Accept: text/plain http://localhost/\n")
    write_job("list.yaml", "schedule: ['0 1 * * *', '0 13 * * *']\ncommand: x\n")
    write_job("tab.yaml", "schedule: '@daily'\ncommand: x\nenv:\n\tA: b\n")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == ExitCode.NOT_OK, result.output
    assert [line.replace(f"{jobs_dir}/", "") for line in result.stderr.splitlines()] == [
        "colon.yaml:2:24: YAML syntax error: mapping values are not allowed here; the value of command contains ': ' "
        "(a colon and a space), which YAML reads as a new key: quote the command, e.g. "
        "command: 'curl -H Accept: text/plain http://localhost/'",
        "list.yaml:1:11: job list: schedule is a list, but a job has one schedule: one job per schedule. Give each "
        "schedule its own job (a file each, or jobs separated by --- in one file, each with its own name:); these "
        "differ only in the hour, so one schedule runs when any of them does: schedule: '0 1,13 * * *'",
        "tab.yaml:4:1: YAML indentation uses spaces, not tabs: line 4 is indented with a tab; replace it with spaces",
        f"jobctl: 3 problems in {jobs_dir}; nothing was changed",
    ]


def test_plan_prints_the_warning_and_strict_refuses(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", KEPT_ESCAPE)
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 0, result.output
    assert "add a" in " ".join(result.stdout.split())  # the plan itself, unaffected
    assert f"{jobs_dir}/a.yaml:2:34: warning: job a: command has \\%" in result.stderr
    strict = runner.invoke(app, ["plan", "--strict"])
    assert strict.exit_code == ExitCode.NOT_OK, strict.output
    assert f"{jobs_dir}/a.yaml:2:34: warning: job a: command has \\%" in strict.stderr
