"""The docs are part of the interface: every command and key is documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.jobs import spec

ROOT = Path(__file__).resolve().parent.parent
MAN = (ROOT / "man" / "jobctl.1").read_text()
README = (ROOT / "README.md").read_text()
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_there_are_commands_to_check():
    assert {"validate", "plan", "apply", "uninstall", "status", "run", "history", "logs"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_man_page_and_readme(command):
    assert re.search(rf"^\.B {command}$", MAN, re.M), f"man page has no COMMANDS entry for {command}"
    assert f"jobctl {command}" in README


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"jobctl {command}" in result.output


@pytest.mark.parametrize("key", spec.KEYS)
def test_every_job_key_is_in_the_man_page_and_readme(key):
    assert re.search(rf"^\.B {key}$", MAN, re.M), f"man page JOB FILES lacks {key}"
    assert f"| `{key}` |" in README


def test_man_page_sections():
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "JOB FILES", "FILES", "ENVIRONMENT",
                    "EXIT STATUS", "EXAMPLES"):
        assert f"\n.SH {section}\n" in MAN


def test_exit_codes_are_documented():
    from jobctl.errors import ExitCode

    status = MAN.split(".SH EXIT STATUS", 1)[1].split(".SH EXAMPLES", 1)[0]
    for code in ExitCode:
        assert f".B {int(code)}" in status, f"exit code {code!r} missing from EXIT STATUS"


@pytest.mark.skipif(not shutil.which("man"), reason="man-db not installed (apt-get install man-db)")
def test_man_page_renders_without_warnings():
    result = subprocess.run(["man", "--warnings", "-l", str(ROOT / "man" / "jobctl.1")],
                            capture_output=True, text=True, env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    assert result.stderr == ""
    assert "EXIT STATUS" in result.stdout


def test_readme_opens_with_the_quick_start_commands():
    blocks = [b.strip() for b in re.findall(r"```sh\n(.*?)```", README, re.S)]
    # two commands: install and run the main job on the shipped examples -- plan (which changes
    # nothing) shown before apply changes a real crontab --, then the whole test suite
    first = blocks[0]
    assert first.startswith("./install.sh && ") and first.endswith("jobctl apply && jobctl status")
    assert first.index("jobctl plan") < first.index("jobctl apply")
    assert blocks[1] == "./install.sh --dev && .venv/bin/python -m pytest"
    assert README.index("## Quick start") < README.index("## What jobctl is")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./install.sh --dev" in ci and ".venv/bin/python -m pytest" in ci


@pytest.mark.parametrize("text", [
    # issue 11: new states, --json fields, flags and files are interfaces, so documented
    ".B edited", ".B timer", ".B last_started_run", ".B jobs_dir", ".BR recorded_for", "\\-\\-prune\\-others",
    "\\-\\-record", "\\-\\-strict", "\\-\\-wide", "\\-\\-run latest", "crontab \\-r", ".B warnings",
    "Settings above the block", "ttlSecondsAfterFinished", "exit_code\nis null",
])
def test_issue_11_interfaces_are_in_the_man_page(text):
    assert text in MAN, text


@pytest.mark.parametrize(("command", "flag"), [("validate", "--strict"), ("plan", "--strict"),
                                              ("apply", "--prune-others"), ("status", "--wide"), ("logs", "--run"),
                                              ("run", "--quiet")])
def test_issue_11_flags_have_help(command, flag):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and flag in result.output


def test_export_systemd_help_says_printing_changes_nothing():
    result = CliRunner().invoke(app, ["export", "systemd", "--help"])
    text = " ".join(result.output.split())
    assert "--record" in text and "printing or writing units changes no state" in text
