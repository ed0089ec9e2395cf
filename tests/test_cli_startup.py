"""Issue 13: `jobctl --version` and `jobctl --help` answer without importing typer (~50 ms of ~65).

What they print must be what typer prints, byte for byte, with the same exit
status; anything else (other arguments, a narrow terminal, another typer, a
shell asking for completions) goes to typer as before.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobctl import __version__
from jobctl.cli import app as cli

PROBE = """
import sys
SLOW = sys.argv[1] == "slow"
sys.argv = ["jobctl", *sys.argv[2:]]
from jobctl.cli import app
if SLOW:
    app._answer_without_typer = lambda args: None
try:
    app.main()
except SystemExit as exc:
    code = exc.code
else:
    code = None
sys.stdout.flush()
print(f"\\n--- exit {code!r} typer {'typer' in sys.modules}", file=sys.stderr)
"""


def run(*args: str, slow: bool = False, **env: str) -> tuple[str, str]:
    """`jobctl ARGS` in a fresh interpreter: (stdout, the probe's line: exit status and whether typer loaded).

    ``slow``: through typer whatever the arguments (what jobctl printed before issue 13).
    """
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "_JOBCTL_COMPLETE")}
    done = subprocess.run([sys.executable, "-c", PROBE, "slow" if slow else "fast", *args], capture_output=True,
                          text=True, timeout=60, env={**environ, **env})
    return done.stdout, done.stderr.strip().splitlines()[-1]


def typer_says(*args: str, columns: str = "80") -> tuple[str, str]:
    return run(*args, slow=True, COLUMNS=columns)


def test_version_is_typers_without_typer() -> None:
    assert run("--version") == (f"jobctl {__version__}\n", "--- exit 0 typer False")
    assert typer_says("--version") == (f"jobctl {__version__}\n", "--- exit 0 typer True")


@pytest.mark.parametrize("columns", ["80", "81", "120", "200"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_root_help_is_typers(flag: str, columns: str) -> None:
    expected, probe = typer_says(flag, columns=columns)
    assert probe == "--- exit 0 typer True"
    out, probe = run(flag, COLUMNS=columns)
    assert out == expected
    if cli._typer_version() != cli.ROOT_HELP_TYPER:  # another typer is asked: right, but not fast
        assert probe == "--- exit 0 typer True"
        pytest.skip(f"typer {cli._typer_version()}: re-render ROOT_HELP with it and set ROOT_HELP_TYPER")
    assert expected == cli.ROOT_HELP, ("the root help changed: update ROOT_HELP in jobctl/cli/app.py to:\n"
                                       + expected)
    assert probe == "--- exit 0 typer False"


@pytest.mark.parametrize("columns", ["79", "60", "0", "x"])
def test_a_narrow_or_unknown_terminal_asks_typer(columns: str) -> None:
    out, probe = run("--help", COLUMNS=columns)
    assert out == typer_says("--help", columns=columns)[0]
    if columns in ("0", "x"):  # not a width: shutil falls back to the terminal, here none: 80 columns
        assert probe == f"--- exit 0 typer {cli._typer_version() != cli.ROOT_HELP_TYPER}"
    else:
        assert out != cli.ROOT_HELP and probe == "--- exit 0 typer True"


@pytest.mark.parametrize("args", [["--version", "validate"], ["validate", "--help"], ["--help", "--version"], []])
def test_anything_else_goes_to_typer(args: list[str]) -> None:
    out, probe = run(*args, COLUMNS="80")
    assert probe.endswith("typer True")
    assert (out, probe) == typer_says(*args)


def test_a_completion_request_goes_to_typer() -> None:
    _, probe = run("--version", _JOBCTL_COMPLETE="bash_complete")
    assert probe.endswith("typer True")


def test_another_typer_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "ROOT_HELP_TYPER", "0.0.0")
    monkeypatch.setenv("COLUMNS", "100")
    assert cli._answer_without_typer(["--help"]) is None
    assert cli._answer_without_typer(["--version"]) == f"jobctl {__version__}\n"


# --- a command builds only its own module's commands ------------------------------------------

def _commands() -> list[str]:
    from typer.main import get_command

    group = get_command(cli.app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_found_in_its_module() -> None:
    from typer.main import get_command

    names = _commands()
    assert names == ["apply", "backfill", "cancel", "completion", "doctor", "export", "history", "import", "init",
                     "logs", "metrics", "pause", "plan", "prune", "queue", "resume", "run", "schema", "show", "status",
                     "submit", "uninstall", "validate", "wait", "why"]
    for name in names:
        only = get_command(cli._build(name))
        assert list(only.commands) != names and name in only.commands  # type: ignore[attr-defined]
    assert sorted(get_command(cli._build("no-such-command")).commands) == names  # type: ignore[attr-defined]
    assert sorted(get_command(cli._build(None)).commands) == names  # type: ignore[attr-defined]


@pytest.mark.parametrize("args", [["plan", "--help"], ["export", "--help"], ["export", "systemd", "--help"],
                                  ["status", "--bogus"], ["validate", "--jobs-dir"], ["history"], ["plna"],
                                  ["apply", "--dry-run", "extra"]])
def test_a_command_behaves_the_same_with_its_module_alone(args: list[str]) -> None:
    from typer.testing import CliRunner

    full = CliRunner().invoke(cli.app, args)
    alone = CliRunner().invoke(cli._build(args[0]), args)
    assert (alone.exit_code, alone.stdout, alone.stderr) == (full.exit_code, full.stdout, full.stderr)


@pytest.mark.parametrize("flag", ["--help", "--version"])
@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"])
def test_help_and_version_fail_as_typer_does_when_stdout_cannot_take_them(flag: str, redirect: str, tmp_path) -> None:
    """stdout full or closed: the answer without typer fails the way typer's does, never with a traceback."""
    entry = ("import sys; from jobctl.cli import app; sys.argv = ['jobctl', sys.argv[2]]\n"
             "if sys.argv[1:] and SLOW: app._answer_without_typer = lambda args: None\n"
             "app.main()")
    codes = []
    for slow in (False, True):
        code = entry.replace("SLOW", str(slow))
        done = subprocess.run(["/bin/sh", "-c", f'"$0" -c "$1" x {flag} {redirect}', sys.executable, code],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "JOBCTL_STATE_DIR": str(tmp_path)})
        assert "Traceback" not in done.stderr, done.stderr
        codes.append(done.returncode)
    assert codes[0] == codes[1]


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["plan"], ["history"], ["show", "a"],
                                     ["why", "a"], ["completion", "bash"], ["validate"], ["schema"]])
@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"])
def test_a_command_whose_stdout_is_full_or_closed_says_so_and_writes_no_crash_report(command, redirect, write_job):
    """A reader that went away is not a bug in jobctl: one line, no exit 70, no crash report in the state dir."""
    write_job("a.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    line = " ".join([sys.executable, "-m", "jobctl", *command, redirect])
    done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    state = os.environ["JOBCTL_STATE_DIR"]
    assert not [f for f in os.listdir(state) if f.startswith("jobctl-crash")] if os.path.isdir(state) else True
