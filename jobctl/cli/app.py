"""The `jobctl` command: the typer app, its root options, and the last resort for a crash.

Commands live in modules grouped by stage, each a thin layer that parses
arguments, calls the core, renders and fails through ``common.fail`` (one
line on stderr, the exit code of errors.ExitCode): jobs (validate, schema,
init), runs (run, backfill), history (history, logs), install (plan, apply,
uninstall), ops (status, pause, resume, prune, metrics, doctor), completion
(completion) and export.  A shell asking for completions (_JOBCTL_COMPLETE
set) is answered by completion.respond.
They import common and options, never this module.  Heavy modules (yaml,
rich) are imported inside the commands that need them.

Start-up is most of a small command's time, and importing typer most of
that (~50 ms): ``jobctl --version`` and ``jobctl --help`` are answered
before typer is imported, with typer's own words (tests/test_cli_startup.py
compares them); the typer app is built when a command needs it, and then
only from the module of the command asked for.
"""

# No ``from __future__ import annotations`` here: the root callback is defined
# inside _build, and typer reads its annotations, which a string would make it
# look up among this module's globals, where typer is not.

import os
import sys

from jobctl import __version__

#: `jobctl --version` as typer prints it, answered before typer is imported (~50 ms of ~65)
VERSION_LINE = f"jobctl {__version__}"

#: `jobctl --help` exactly as typer prints it on a terminal of 80 columns or more (click lays help out
#: 78 wide there), answered before typer is imported.  tests/test_cli_startup.py renders it through
#: typer and compares; after changing the root help or a command's first docstring line, print it with
#: COLUMNS=80 python -c "from typer.testing import CliRunner; from jobctl.cli.app import app;
#: print(CliRunner().invoke(app, ['--help']).output, end='')"
ROOT_HELP = """\
Usage: jobctl [OPTIONS] COMMAND [ARGS]...

  Declarative scheduled jobs for Linux servers.

  Job files (YAML, under version control) are validated, installed into the
  real crontab, run through a lock-guarded wrapper and recorded in a SQLite
  run log.

Options:
  --version   Print the version and exit.
  -h, --help  Show this message and exit.

Commands:
  validate    Check every job file; report every problem with file, line...
  schema      Print the JSON Schema (draft 2020-12) of job files, for...
  init        Write a commented example job file; never overwrites.
  import      Turn a crontab's entries into job files that run the same way.
  run         Run a job now through the same wrapper cron uses, and...
  backfill    Run a job once for each of its scheduled times in a range,...
  submit      Queue a run of a job, with parameters, now or later; print...
  queue       Pending requests, oldest first: queued and running (id,...
  cancel      Cancel a queued request (recorded cancelled); a request...
  wait        Block until a request's run ends; exit with its exit code,...
  history     Past and running runs, newest first.
  logs        Print the captured output of a run, with a marker where...
  plan        Show what apply would change: job by job, then a diff of...
  apply       Validate every job file, then install the enabled jobs into...
  uninstall   Remove jobctl's block from the crontab; the run log is kept.
  status      Every job: schedule, next run, state, last run, recent...
  pause       Pause jobs: their scheduled runs are recorded as skipped...
  resume      Resume paused jobs.
  prune       Apply each job's history retention (keep / max_age) to the...
  metrics     Prometheus metrics of every applied job (label job_name).
  doctor      Check the cron daemon, crontab, state directory, run log,...
  show        A job's effective definition, where each value comes from,...
  why         Explain why a job ran or did not run at a time: one verdict...
  completion  Print the shell completion script for bash, zsh or fish.
  export      Turn the job files into Kubernetes CronJobs or systemd timers.

  Examples:

    jobctl validate                 # check every job file

    jobctl validate --jobs-dir ./jobs.d --json

  See jobctl(1) for job-file keys, files and exit codes.
"""
#: the typer that laid ROOT_HELP out: any other asks typer (another click may lay it out otherwise)
ROOT_HELP_TYPER = "0.28.0"
#: set by a shell asking for completions: typer answers those, whatever the arguments
_COMPLETE_VAR = "_JOBCTL_COMPLETE"


def _columns() -> int:
    """shutil.get_terminal_size().columns (what click's help formatter asks), without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


def _typer_version() -> str | None:
    """The version of the typer ``import typer`` would load from sys.path, read from its source; None if unsure."""
    for entry in sys.path:
        try:
            with open(os.path.join(entry or ".", "typer", "__init__.py"), "rb") as fh:
                head = fh.read(8192)
        except OSError:
            continue
        start = head.find(b'\n__version__ = "')
        if start < 0:
            return None
        start += len(b'\n__version__ = "')
        end = head.find(b'"', start)
        return head[start:end].decode("ascii", "replace") if end > 0 else None
    return None


def _answer_without_typer(args: list[str]) -> str | None:
    """What `jobctl ARGS` prints when that needs no typer (--version, the root --help), else None."""
    if len(args) != 1 or os.environ.get(_COMPLETE_VAR):
        return None
    if args[0] == "--version":
        return VERSION_LINE + "\n"
    if args[0] in ("--help", "-h") and _columns() >= 80 and _typer_version() == ROOT_HELP_TYPER:
        return ROOT_HELP
    return None


def _build(command: str | None = None):  # -> typer.Typer (typer is imported here, not at module level)
    """The typer app: the root options and every command module's commands.

    With ``command`` (the first argument of a command line), only the module
    that has it, when one has: typer builds every command's options from its
    signature on each start (~10 ms for all of them), and `jobctl COMMAND ...`
    parses, helps and fails the same way whichever other commands exist.
    """
    from typing import Annotated

    import typer
    from typer.main import get_command_name

    from jobctl.cli import completion, export, history, importer, inspect, install, jobs, ops, queue, runs

    # in this order in `jobctl --help`: a job's way from its file to its runs, then operating it
    modules = [jobs, importer, runs, queue, history, install, ops, inspect, completion]
    groups = {"export": export.app}
    if command in groups:
        modules = []
        groups = {command: groups[command]}
    else:
        mine = [m for m in modules if command in {c.name or get_command_name(c.callback.__name__)
                                                  for c in m.app.registered_commands if c.callback}]
        if mine:
            modules, groups = mine, {}

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
    for module in modules:
        app.add_typer(module.app)
    for name, group in groups.items():
        app.add_typer(group, name=name)

    def _version(value: bool) -> None:
        if value:
            print(VERSION_LINE)
            raise typer.Exit()

    @app.callback()
    def _root(
        version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                              help="Print the version and exit.")] = False,
    ) -> None:
        pass

    return app


def _app():  # -> typer.Typer
    app = globals().get("app")
    if app is None:
        app = globals()["app"] = _build()
    return app


def __getattr__(name: str):
    """``app``, the typer app, built on first use (tests and main); `jobctl --version` never builds it."""
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _stdout_unusable(exc: BaseException) -> str | None:
    """Why standard output could not take what a command printed (closed, full, gone); None for anything else.

    A write that fails for lack of space is put down to stdout only when
    stdout is where space ran out: a device that refuses it (/dev/full) or a
    file on a file system with no room left.
    """
    import errno
    import stat

    if sys.stdout is None:
        return "it is closed"
    if not isinstance(exc, OSError) or exc.errno not in (errno.EPIPE, errno.ENOSPC, errno.EBADF, errno.EDQUOT):
        return None
    try:
        st = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return "it is closed"
    if exc.errno in (errno.EPIPE, errno.EBADF):
        return exc.strerror
    if not stat.S_ISREG(st.st_mode):
        return exc.strerror if stat.S_ISCHR(st.st_mode) else None
    try:
        full = os.fstatvfs(sys.stdout.fileno()).f_bavail == 0
    except OSError:
        return None
    return exc.strerror if full else None


def main() -> None:
    answer = _answer_without_typer(sys.argv[1:])
    if answer is not None:
        # what the eager --version and --help options print, and their exit status, without typer
        try:
            sys.stdout.write(answer)
            sys.stdout.flush()
        except (AttributeError, OSError, ValueError):
            pass  # stdout closed or full: typer's path below fails (or not) the way it always has
        else:
            sys.exit(0)
    if os.environ.get(_COMPLETE_VAR):
        from jobctl.cli.completion import respond

        respond(globals().get("app") or _build(), _COMPLETE_VAR)  # exits; never a traceback, never stderr
    try:
        app = globals().get("app") or _build(sys.argv[1] if len(sys.argv) > 1 else None)
        app(prog_name="jobctl")
    except KeyboardInterrupt:
        print("jobctl: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        from jobctl.errors import ExitCode

        why = _stdout_unusable(exc)
        if why is not None:
            # `> /dev/full`, `>&-`: the reader's side, not a bug; nothing to report, as for a closed pipe
            print(f"jobctl: cannot write to standard output: {why}", file=sys.stderr)
            sys.exit(int(ExitCode.NOT_OK))
        report = _crash_report(exc)
        print(f"jobctl: internal error: {type(exc).__name__}: {exc} (full report: {report})", file=sys.stderr)
        sys.exit(int(ExitCode.INTERNAL))
