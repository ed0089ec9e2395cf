"""What the command modules share: failing with a JobctlError, the state directory, the job files, the run log.

A domain failure becomes one line on stderr plus its exit code here, in
``fail`` only.  Heavy modules (yaml, rich, sqlite3) are imported inside the
functions so that registering the commands, and ``jobctl --help``, stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from jobctl.errors import EnvironmentProblem, ExitCode, JobctlError, Problem, UnknownJob

if TYPE_CHECKING:
    from collections.abc import Callable

    from jobctl.install.crontab import Target
    from jobctl.jobs.loader import Loaded, LoadResult
    from jobctl.jobs.spec import JobSpec
    from jobctl.store import Store


def commands() -> typer.Typer:
    """A command module's group of commands, merged into the one `jobctl` app (cli.app)."""
    return typer.Typer(rich_markup_mode=None, add_completion=False)


def printable(text: str) -> str:
    """A path or message for a summary line: control characters escaped (render.printable)."""
    from jobctl.read.render import printable

    return printable(text)


def fail(exc: JobctlError) -> NoReturn:
    # messages quote paths and names an operator's files control: never raw escapes
    print(f"jobctl: {printable(exc.message)}", file=sys.stderr)
    raise typer.Exit(int(exc.code))


def fail_problems(exc: JobctlError) -> NoReturn:
    """``fail``, after every problem of an InvalidJobs on its own line."""
    from jobctl.errors import InvalidJobs

    if isinstance(exc, InvalidJobs):
        for line in exc.lines():
            print(line, file=sys.stderr)
        fail(JobctlError(f"{exc.message}; nothing was changed", exc.code))
    fail(exc)


def state_path(code: ExitCode = ExitCode.ENVIRONMENT) -> str:
    """Where the state directory is (not created); an unsafe path is an environment error (exit 3)."""
    from jobctl import paths

    try:
        return paths.state_dir()
    except paths.UnsafePath as exc:
        fail(JobctlError(str(exc), code))


def state(code: ExitCode = ExitCode.ENVIRONMENT) -> str:
    """The state directory, created; exit ``code`` (3, or 125 for `run`) when it is not usable."""
    from jobctl import paths

    path = state_path(code)
    try:
        return paths.ensure_state_dir(path)
    except OSError as exc:
        fail(JobctlError(f"state directory {path} is not usable: {exc.strerror}; "
                         "set JOBCTL_STATE_DIR or fix its permissions", code))


def warning_line(p: Problem) -> str:
    """``PATH:LINE:COL: warning: [job NAME: ]message``, as compilers print theirs."""
    job = f"job {p.job}: " if p.job else ""
    return f"{p.path}:{p.line}:{p.column}: warning: {job}{p.message}"


def warnings_of(result: LoadResult | None) -> list[Problem]:
    """The loader's warnings, in file order: likely mistakes that do not stop a job file from loading."""
    return sorted(result.warnings if result is not None else [], key=lambda p: (p.path, p.line, p.column, p.message))


def print_warnings(warnings: list[Problem], strict: bool, directory: str) -> None:
    """The loader's warnings to stderr; with --strict they are errors: exit 1."""
    for w in warnings:
        print(warning_line(w), file=sys.stderr)
    if warnings and strict:
        n = len(warnings)
        fail(JobctlError(f"{n} warning{'s' if n != 1 else ''} in {directory}, errors under --strict; "
                         "nothing was changed"))


def valid_jobs(loaded: Loaded, code: ExitCode = ExitCode.NOT_OK, warn: bool = False,
               strict: bool = False) -> list[JobSpec]:
    """Every job of a directory read, or print every problem and exit with ``code``.

    With ``warn`` (plan) the loader's warnings are printed too, and are
    errors under ``strict``.
    """
    if loaded.error is not None:
        fail(JobctlError(loaded.error.message, code))
    if loaded.problems:
        for p in sorted(loaded.problems):
            print(p, file=sys.stderr)
        n = len(loaded.problems)
        fail(JobctlError(f"{n} problem{'s' if n != 1 else ''} in {loaded.directory}; nothing was run or changed",
                         code))
    if warn:
        print_warnings(warnings_of(loaded.result), strict, loaded.directory)
    return loaded.jobs


def load(jobs_dir: str | None, code: ExitCode = ExitCode.NOT_OK, warn: bool = False,
         strict: bool = False) -> tuple[str, list[JobSpec]]:
    """(the jobs directory, its jobs) for a command that needs every job file valid (see valid_jobs)."""
    from jobctl.jobs import loader

    loaded = loader.read(jobs_dir)
    return loaded.directory, valid_jobs(loaded, code, warn, strict)


def origin(jobs_dir: str | None) -> str:
    """Why this jobs directory: what paths.jobs_dir found first."""
    if jobs_dir:
        return "--jobs-dir"
    if os.environ.get("JOBCTL_JOBS_DIR"):
        return "$JOBCTL_JOBS_DIR"
    if os.path.isdir("jobs.d"):
        return "./jobs.d of the current directory"
    return "the default; --jobs-dir chooses another"


def did_you_mean(name: str, names: list[str]) -> str:
    import difflib

    names = sorted(set(names))
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else (f"; jobs: {', '.join(names)}" if names else "")


def find(jobs: list[JobSpec], name: str, directory: str, code: ExitCode = ExitCode.NOT_OK,
         also: tuple[str, ...] = ()) -> JobSpec:
    """The job ``name``, or UnknownJob (exit ``code``) suggesting the closest of ``jobs`` and ``also``."""
    for job in jobs:
        if job.name == name:
            return job
    where = f"{directory} or the applied jobs" if also else directory
    fail(UnknownJob(f"no job named {name!r} in {where}{did_you_mean(name, [j.name for j in jobs] + list(also))}",
                    code))


def open_log(state: str, build_indexes: bool = False) -> Store | None:
    """The run log for a read command, with lost runs finalised; None when there is none yet.

    An index a new release adds is built by apply and prune (``build_indexes``),
    never by a read command: over ten million runs it holds the write lock for
    seconds, and a `status` at a minute's turn would hold up cron's wrappers.
    """
    import sqlite3
    import time

    from jobctl import paths, store
    from jobctl.runner import host

    path = paths.runs_db(state)
    if not os.path.exists(path):
        return None
    try:
        log = store.connect(path, build_indexes=build_indexes)
        log.finalize_lost(None, os.uname().nodename, host.boot_id(), host.alive, host.group_alive, time.time())
    except (sqlite3.Error, OSError) as exc:
        fail(EnvironmentProblem(f"run log {path} is unreadable: {exc}; "
                                "move it aside to start a new one (jobctl doctor checks it)"))
    return log


def update_log(state: str) -> None:
    """After apply: bring an existing run log's schema up to date, indexes included (store.INDEX_ONLY)."""
    import sqlite3

    from jobctl import paths, store

    path = paths.runs_db(state)
    if not os.path.exists(path):
        return
    try:
        store.connect(path).close()
    except (sqlite3.Error, OSError) as exc:
        print(f"jobctl: run log {path} not brought up to date: {exc} (jobctl doctor checks it)", file=sys.stderr)


def pager_command() -> str | None:
    """The pager to use: $JOBCTL_PAGER, else $PAGER, else less (more without it); None: none ("" or cat)."""
    import shutil

    for name in ("JOBCTL_PAGER", "PAGER"):
        if name in os.environ:
            value = os.environ[name].strip()
            return None if value in ("", "cat") else value
    for program in ("less", "more"):
        if shutil.which(program):
            return program
    return None


def _screen_lines() -> int | None:
    """The terminal's height in lines; None when it cannot say (a new pseudo-terminal reports 0)."""
    try:
        lines = os.get_terminal_size(sys.stdout.fileno()).lines
    except (AttributeError, ValueError, OSError):
        lines = 0
    if lines <= 0:
        try:
            lines = int(os.environ.get("LINES", ""))
        except ValueError:
            return None
    return lines if lines > 0 else None


def paged(draw: Callable[[Any], None], pager: bool = True) -> None:
    """What ``draw(console)`` prints, on stdout; through a pager when stdout is a terminal and it is longer than it.

    Like git and systemctl: $JOBCTL_PAGER, $PAGER or less, started through
    the shell with LESS=FRX unless LESS is set (keep colours, leave the text
    on the screen, quit at once when it fits); "" or cat means none.  Never
    when stdout is not a terminal, nor with ``pager`` False (--no-pager).
    The text is made first, for the terminal's width and colours, and
    written directly when it fits on the screen (less would, with -F; any
    other pager would not).  ``draw(None)``: the command prints as usual.
    """
    import io
    import re
    import subprocess

    from jobctl.read import render

    command = pager_command() if pager and sys.stdout.isatty() else None
    height = _screen_lines() if command else None
    if command is None or height is None:
        draw(None)
        return
    screen = render.console()
    if not screen.is_terminal:
        draw(screen)
        return
    buffer = io.StringIO()
    draw(render.captured(screen, buffer))
    text = buffer.getvalue()
    from rich.cells import cell_len

    width = max(screen.width, 1)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = sum(max(1, -(-cell_len(line) // width)) for line in plain.split("\n")[:-1])
    if lines < height:  # fits, with a line left for the prompt
        render.write_out(text)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    sys.stdout.flush()
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        render.write_out(text)
        return
    import signal

    # ^C belongs to the pager (less clears its prompt); jobctl only waits for it to end
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert proc.stdin is not None
        try:
            proc.stdin.write(text.encode(sys.stdout.encoding or "utf-8", "replace"))
            proc.stdin.close()
        except BrokenPipeError:  # the pager quit before reading it all (q in less)
            pass
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if code in (126, 127):  # the shell found no such pager (or could not run it): the table, not nothing
        print(f"jobctl: the pager {command!r} could not be run; printing without it", file=sys.stderr)
        render.write_out(text)


def target(system: bool) -> Target:
    """The crontab to manage: the user's, $JOBCTL_CRONTAB's file, or /etc/cron.d/jobctl with --system."""
    from jobctl.install import crontab

    try:
        return crontab.target(system)
    except JobctlError as exc:
        fail(exc)
