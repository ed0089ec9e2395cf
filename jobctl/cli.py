"""The command line: parse arguments, call the core, render, map errors.

Each command is thin.  Domain failures arrive as JobctlError and become one
line on stderr plus the exit code from errors.ExitCode, in ``_fail`` only.
Heavy modules (yaml, croniter, rich) are imported inside the commands that
need them so that ``jobctl --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from . import __version__
from .errors import ExitCode, JobctlError

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

JobsDir = Annotated[
    str | None,
    typer.Option("--jobs-dir", "-d", metavar="DIR",
                 help="Jobs directory (default: $JOBCTL_JOBS_DIR, ./jobs.d, then the per-user default)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]


def _fail(exc: JobctlError) -> NoReturn:
    print(f"jobctl: {exc.message}", file=sys.stderr)
    raise typer.Exit(int(exc.code))


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


@app.command(epilog="Examples:\n\n  jobctl validate\n\n  jobctl validate -d /etc/jobctl/jobs.d --json | jq .problems")
def validate(jobs_dir: JobsDir = None, json_out: Json = False) -> None:
    """Check every job file; report every problem with file, line and column.

    Exit 0 when every job is valid, 1 when not.
    """
    from . import loader, paths

    directory = paths.jobs_dir(jobs_dir)
    try:
        result = loader.load_dir(directory)
    except JobctlError as exc:
        _fail(exc)
    problems = sorted(result.problems, key=lambda p: (p.path, p.line, p.column, p.message))
    if json_out:
        import json

        print(json.dumps({
            "ok": not problems,
            "jobs_dir": directory,
            "jobs": [j.name for j in result.jobs] if not problems else [],
            "files": len(result.files),
            "problems": [
                {"path": p.path, "line": p.line, "column": p.column, "job": p.job, "message": p.message}
                for p in problems
            ],
        }, indent=2))
        raise typer.Exit(int(ExitCode.NOT_OK if problems else ExitCode.OK))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        n = len(problems)
        print(f"jobctl: {n} problem{'s' if n != 1 else ''} in {directory}; nothing was changed",
              file=sys.stderr)
        raise typer.Exit(int(ExitCode.NOT_OK))
    n = len(result.jobs)
    print(f"ok: {n} job{'s' if n != 1 else ''} in {len(result.files)} file{'s' if len(result.files) != 1 else ''}"
          f" ({directory})")


@app.command(epilog="Examples:\n\n  jobctl schema > jobctl.schema.json")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of job files, for editors."""
    import json

    from .schema import job_schema

    print(json.dumps(job_schema(), indent=2))


EXAMPLE_JOB = """\
# A jobctl job file. One YAML document per job; see jobctl(1), JOB FILES.
# yaml-language-server: $schema=./jobctl.schema.json
name: example
description: Print the disk usage of every local file system
# minute hour day-of-month month day-of-week; quote it, YAML reads * as an alias
schedule: "*/15 * * * *"
# a string runs under `shell -c`; a list runs as argv without a shell
command: df -h -x tmpfs -x devtmpfs
timeout: 5m          # SIGTERM to the whole process group, SIGKILL after kill_grace
concurrency: forbid  # forbid | allow | replace | wait
retries: 0           # or {attempts: 3, delay: 30s, backoff: 2, max_delay: 10m}
output_limit: 1MiB   # output kept per run (head and tail)
env:
  LC_ALL: C.UTF-8
tags: [example]
"""


@app.command(epilog="Examples:\n\n  jobctl init\n\n  jobctl init ./jobs.d")
def init(
    directory: Annotated[str | None, typer.Argument(
        metavar="[DIR]", help="Where to write example.yaml (default: the jobs directory).")] = None,
) -> None:
    """Write a commented example job file; never overwrites."""
    from . import paths

    target_dir = directory or paths.jobs_dir()
    target = os.path.join(target_dir, "example.yaml")
    try:
        os.makedirs(target_dir, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        _fail(JobctlError(f"{target} exists; not overwriting it"))
    except OSError as exc:
        _fail(JobctlError(f"cannot write {target}: {exc.strerror}", ExitCode.ENVIRONMENT))
    with os.fdopen(fd, "w") as fh:
        fh.write(EXAMPLE_JOB)
    print(f"wrote {target}; check it with: jobctl validate --jobs-dir {target_dir}")


def _crash_report(exc: BaseException) -> str:
    """Write the full traceback somewhere an operator can find it."""
    import tempfile
    import time
    import traceback

    from . import paths

    text = f"jobctl {__version__}\nargv: {sys.argv!r}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    name = time.strftime("jobctl-crash-%Y%m%dT%H%M%S") + f"-{os.getpid()}.txt"
    for directory in (paths.state_dir(), tempfile.gettempdir()):
        try:
            paths.ensure_state_dir(directory) if directory == paths.state_dir() else None
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return os.path.join(directory, name)
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
