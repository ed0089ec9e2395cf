"""The `jobctl` command: the typer app, its root options, and the last resort for a crash.

Commands live in modules grouped by stage, each a thin layer that parses
arguments, calls the core, renders and fails through ``common.fail`` (one
line on stderr, the exit code of errors.ExitCode): jobs (validate, schema,
init), runs (run), history (history, logs), install (plan, apply,
uninstall), ops (status, pause, resume, prune, metrics, doctor) and export.
They import common and options, never this module.  Heavy modules (yaml,
rich) are imported inside the commands that need them so that ``jobctl
--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from jobctl import __version__
from jobctl.cli import export, history, install, jobs, ops, runs
from jobctl.errors import ExitCode

app = typer.Typer(
    name="jobctl",
    help=(
        "Declarative scheduled jobs for Linux servers.\n\n"
        "Job files (YAML, under version control) are validated, installed into the real "
        "crontab, run through a lock-guarded wrapper and recorded in a SQLite run log."
    ),
    epilog=(
        "Examples:\n\n"
        "  jobctl validate                 # check every job file\n\n"
        "  jobctl validate --jobs-dir ./jobs.d --json\n\n"
        "See jobctl(1) for job-file keys, files and exit codes."
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# in this order in `jobctl --help`: a job's way from its file to its runs, then operating it
for module in (jobs, runs, history, install, ops):
    app.add_typer(module.app)
app.add_typer(export.app, name="export")


def _version(value: bool) -> None:
    if value:
        print(f"jobctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


def _crash_report(exc: BaseException) -> str:
    """Write the full traceback somewhere an operator can find it.

    Never raises: this runs when something already went wrong, perhaps a full
    disk or an unusable state directory, and a second traceback would bury
    the one line the operator needs.
    """
    import tempfile
    import traceback

    from jobctl import paths

    text = f"jobctl {__version__}\nargv: {sys.argv!r}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    name = paths.crash_report_name(os.getpid())
    directories = []
    try:
        directories.append(paths.ensure_state_dir(paths.state_dir()))
    except (OSError, paths.UnsafePath):
        pass
    directories.append(tempfile.gettempdir())
    for directory in directories:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        except OSError:  # a full disk: no half report left behind, try the next place
            try:
                os.unlink(path)
            except OSError:
                pass
            continue
        return path
    return "(could not be written)"


def main() -> None:
    try:
        app(prog_name="jobctl")
    except KeyboardInterrupt:
        print("jobctl: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        report = _crash_report(exc)
        print(f"jobctl: internal error: {type(exc).__name__}: {exc} (full report: {report})", file=sys.stderr)
        sys.exit(int(ExitCode.INTERNAL))
