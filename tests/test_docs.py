"""The docs are part of the interface: every command and key is documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from jobctl import spec
from jobctl.cli import app

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


def test_readme_opens_with_the_two_quick_start_commands():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    assert blocks[0].strip() == "./install.sh && jobctl apply && jobctl status"
    assert blocks[1].strip() == "./install.sh --dev && .venv/bin/python -m pytest"
    assert README.index("## Quick start") < README.index("## What jobctl is")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./install.sh --dev" in ci and ".venv/bin/python -m pytest" in ci
