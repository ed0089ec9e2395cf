"""The command line: parse arguments, call the core, render, map errors.

Each command is thin.  Domain failures arrive as JobctlError and become one
line on stderr plus the exit code from errors.ExitCode, in ``_fail`` only.
Heavy modules (yaml, rich) are imported inside the commands that
need them so that ``jobctl --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated, NoReturn

import typer

from jobctl import __version__
from jobctl.cli.options import JobsDir, Json, SystemOpt
from jobctl.errors import EnvironmentProblem, ExitCode, JobctlError, UnknownJob

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



def render_printable(text: str) -> str:
    """A path or message for a summary line: control characters escaped (render.printable)."""
    from jobctl.read.render import printable

    return printable(text)


def _fail(exc: JobctlError) -> NoReturn:
    # messages quote paths and names an operator's files control: never raw escapes
    print(f"jobctl: {render_printable(exc.message)}", file=sys.stderr)
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


Strict = Annotated[bool, typer.Option(
    "--strict", help="Treat warnings (likely mistakes such as a \\% left from a crontab) as errors: exit 1.")]


def _warnings(result) -> list:
    """The loader's warnings: likely mistakes that do not stop a job file from loading."""
    return sorted(getattr(result, "warnings", None) or [], key=lambda p: (p.path, p.line, p.column, p.message))


def _warning_line(p) -> str:
    """``PATH:LINE:COL: warning: [job NAME: ]message``, as compilers print theirs."""
    job = f"job {p.job}: " if getattr(p, "job", None) else ""
    return f"{p.path}:{p.line}:{p.column}: warning: {job}{p.message}"


def _print_warnings(warnings: list, strict: bool, directory: str) -> None:
    """Warnings to stderr; with --strict they are errors: exit 1."""
    for w in warnings:
        print(_warning_line(w), file=sys.stderr)
    if warnings and strict:
        n = len(warnings)
        _fail(JobctlError(f"{n} warning{'s' if n != 1 else ''} in {directory}, errors under --strict; "
                          "nothing was changed"))


@app.command(epilog="Examples:\n\n  jobctl validate\n\n"
             "  jobctl validate -d /etc/jobctl/jobs.d --json | jq .problems\n\n"
             "  jobctl validate --strict   # warnings fail too (CI)")
def validate(jobs_dir: JobsDir = None, json_out: Json = False, strict: Strict = False) -> None:
    """Check every job file; report every problem with file, line and column.

    Warnings (likely mistakes that still load, such as a \\% kept from a
    crontab) are printed as PATH:LINE:COL: warning: ... and do not fail
    unless --strict.  Exit 0 when every job is valid, 1 when not.
    """
    from jobctl import paths
    from jobctl.jobs import loader

    directory = paths.jobs_dir(jobs_dir)
    try:
        result = loader.load_dir(directory)
    except JobctlError as exc:
        _fail(exc)
    problems = sorted(result.problems, key=lambda p: (p.path, p.line, p.column, p.message))
    warnings = _warnings(result)
    if json_out:
        import json

        def entry(p) -> dict:
            return {"path": p.path, "line": p.line, "column": p.column, "job": p.job, "message": p.message}

        failed = bool(problems or strict and warnings)
        print(json.dumps({
            "ok": not failed,
            "jobs_dir": directory,
            "jobs": [j.name for j in result.jobs] if not problems else [],
            "files": len(result.files),
            "problems": [entry(p) for p in problems],
            "warnings": [entry(w) for w in warnings],
        }, indent=2))
        raise typer.Exit(int(ExitCode.NOT_OK if failed else ExitCode.OK))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        for w in warnings:
            print(_warning_line(w), file=sys.stderr)
        n = len(problems)
        print(f"jobctl: {n} problem{'s' if n != 1 else ''} in {render_printable(directory)}; nothing was changed",
              file=sys.stderr)
        raise typer.Exit(int(ExitCode.NOT_OK))
    _print_warnings(warnings, strict, directory)
    n = len(result.jobs)
    print(f"ok: {n} job{'s' if n != 1 else ''} in {len(result.files)} file{'s' if len(result.files) != 1 else ''}"
          f" ({render_printable(directory)})")


@app.command(epilog="Examples:\n\n  jobctl schema > jobctl.schema.json")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of job files, for editors."""
    import json

    from jobctl.jobs.schema import job_schema

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
    from jobctl import paths

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


def _state_path(code: ExitCode = ExitCode.ENVIRONMENT) -> str:
    """Where the state directory is (not created); an unsafe path is an environment error (exit 3)."""
    from jobctl import paths

    try:
        return paths.state_dir()
    except paths.UnsafePath as exc:
        _fail(JobctlError(str(exc), code))


def _state(code: ExitCode = ExitCode.ENVIRONMENT) -> str:
    """The state directory, created; exit ``code`` (3, or 125 for `run`) when it is not usable."""
    from jobctl import paths

    path = _state_path(code)
    try:
        return paths.ensure_state_dir(path)
    except OSError as exc:
        _fail(JobctlError(f"state directory {path} is not usable: {exc.strerror}; "
                          "set JOBCTL_STATE_DIR or fix its permissions", code))


def _load(jobs_dir: str | None, code: ExitCode = ExitCode.NOT_OK, warn: bool = False,
          strict: bool = False) -> tuple[str, list]:
    """Every job of the directory, or print every problem and exit with ``code``.

    With ``warn`` (validate, plan) the loader's warnings are printed too, and
    are errors under ``strict``.
    """
    from jobctl import paths
    from jobctl.jobs import loader

    directory = paths.jobs_dir(jobs_dir)
    try:
        result = loader.load_dir(directory)
    except JobctlError as exc:
        _fail(JobctlError(exc.message, code))
    if result.problems:
        for p in sorted(result.problems):
            print(p, file=sys.stderr)
        n = len(result.problems)
        _fail(JobctlError(f"{n} problem{'s' if n != 1 else ''} in {directory}; nothing was run or changed", code))
    if warn:
        _print_warnings(_warnings(result), strict, directory)
    return directory, result.jobs


def _origin(jobs_dir: str | None) -> str:
    """Why this jobs directory: what paths.jobs_dir found first."""
    if jobs_dir:
        return "--jobs-dir"
    if os.environ.get("JOBCTL_JOBS_DIR"):
        return "$JOBCTL_JOBS_DIR"
    if os.path.isdir("jobs.d"):
        return "./jobs.d of the current directory"
    return "the default; --jobs-dir chooses another"


def _did_you_mean(name: str, names: list[str]) -> str:
    import difflib

    names = sorted(set(names))
    close = difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else (f"; jobs: {', '.join(names)}" if names else "")


def _find(jobs: list, name: str, directory: str, code: ExitCode = ExitCode.NOT_OK, also: tuple[str, ...] = ()):
    for job in jobs:
        if job.name == name:
            return job
    where = f"{directory} or the applied jobs" if also else directory
    _fail(UnknownJob(f"no job named {name!r} in {where}{_did_you_mean(name, [j.name for j in jobs] + list(also))}",
                     code))


def _open_log(state: str, create: bool = False):
    """The run log for a read command, with lost runs finalised; None when there is none yet."""
    import sqlite3

    from jobctl import paths, store
    from jobctl.runner import host

    path = paths.runs_db(state)
    if not create and not os.path.exists(path):
        return None
    try:
        log = store.connect(path)
        log.finalize_lost(None, os.uname().nodename, host.boot_id(), host.alive, host.group_alive, time.time())
    except (sqlite3.Error, OSError) as exc:
        _fail(EnvironmentProblem(f"run log {path} is unreadable: {exc}; "
                                 "move it aside to start a new one (jobctl doctor checks it)"))
    return log


def _applied_definition(state: str, name: str, directory: str, result):
    """`run` from any directory: NAME's applied definition when the jobs directory read has no usable file for it.

    Used when the directory cannot be read, has no job NAME, or has problems
    while NAME was last applied from another directory; None otherwise (the
    job files decide, as before).
    """
    from jobctl import applied

    current = applied.read(state, name) if os.path.isdir(state) else None
    if current is None:
        return None
    if result is None:
        why = f"{directory} cannot be read"
    elif result.problems:
        came_from = applied.jobs_dir_of(current)
        if not came_from or applied.same_dir(came_from, directory):
            return None
        why = f"{directory} has problems (jobctl validate)"
    elif any(j.name == name for j in result.jobs):
        return None
    else:
        why = f"{directory} has no job {name}"
    where = applied.jobs_dir_of(current)
    print(f"jobctl: note: {why}; running the applied definition of {name}"
          + (f" (applied from {where})" if where else ""), file=sys.stderr)
    return current


@app.command(epilog="Examples:\n\n  jobctl run backup\n\n  jobctl run backup --quiet; echo \"exit $?\"\n\n"
             "  jobctl run backup --detach   # prints the run id, returns at once")
def run(
    name: Annotated[str, typer.Argument(help="The job to run now.")],
    jobs_dir: JobsDir = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the run in the background; print its id.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print nothing: neither the job's output nor the progress lines (attempt 2/3 after "
                              "2s) and the final summary line; the exit code and the run log still say what "
                              "happened.")] = False,
) -> None:
    """Run a job now through the same wrapper cron uses, and record it.

    Uses the definition in the job files (and says so when it differs from the
    applied one); when the jobs directory has no file for the job (run from
    another directory), the applied definition, as cron runs it.  Exits with
    the job's exit code: 124 timed out, 75 skipped (concurrency: forbid),
    128+N killed by signal N, 125 jobctl itself failed.
    """
    from jobctl import applied, paths
    from jobctl.jobs import loader
    from jobctl.runner import wrapper as runner

    directory = paths.jobs_dir(jobs_dir)
    try:
        result = loader.load_dir(directory)
    except JobctlError:
        result = None
    state = _state_path(ExitCode.RUN_FAILED)
    defn = _applied_definition(state, name, directory, result)
    if defn is None:
        _, jobs = _load(jobs_dir, ExitCode.RUN_FAILED)
        job = _find(jobs, name, directory, ExitCode.RUN_FAILED, tuple(applied.names(state)))
        state = _state(ExitCode.RUN_FAILED)  # as documented: 125, jobctl failed before the job could run
        defn = job.to_applied()
        current = applied.read(state, name)
        if current is None:
            unusable = applied.load(state, name)[1] is not None  # warned about by read
            print(f"jobctl: note: {name} {'has no usable applied definition' if unusable else 'is not applied'}; "
                  f"running the definition in {job.source}", file=sys.stderr)
        elif applied.differs(current, defn):
            changed = ", ".join(applied.differs(current, defn))
            print(f"jobctl: note: running the definition in {job.source}, which differs from the applied one "
                  f"({changed}); run jobctl apply to install it", file=sys.stderr)
    else:
        state = _state(ExitCode.RUN_FAILED)
    if detach:
        run_id = _detach(defn, state)
        print(run_id)
        return
    out = sys.stdout.buffer

    def sink(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    # not streamed, the wrapper prints neither the output nor its progress and summary lines
    code = runner.execute(defn, state, trigger="manual", stream=not quiet, sink=sink)
    raise typer.Exit(code)


def _detach(defn: dict, state: str) -> str:
    import json
    import subprocess

    r, w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobctl.runner", "--state-dir", state, "--definition-stdin", "--quiet",
         "--report-fd", str(w), defn["name"]],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(w,), start_new_session=True, cwd="/",
    )
    os.close(w)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(defn).encode())
    proc.stdin.close()
    with os.fdopen(r, "rb") as fh:
        line = fh.readline().strip()
    if not line:
        _fail(JobctlError("the detached run did not start; see jobctl-errors.log in the state directory",
                          ExitCode.RUN_FAILED))
    if line == b"0":
        return "0 (not recorded: the run log is unusable)"
    return line.decode()


def _since(text: str) -> float:
    """--since: a duration ago (2h, 1d) or a local date/time (2026-11-01, 2026-11-01T08:00)."""
    from datetime import datetime

    from jobctl.jobs.spec import parse_duration

    try:
        return time.time() - parse_duration(text)
    except ValueError:
        pass
    except OverflowError:  # more seconds than a float holds
        raise typer.BadParameter(f"{text!r} is too long ago", param_hint="--since") from None
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):  # not a date, or one the platform cannot place in time
        raise typer.BadParameter(f"{text!r} is neither a duration (2h, 1d) nor a date (2026-11-01)") from None


StatusOpt = Annotated[str | None, typer.Option("--status", "-s", metavar="STATUS",
                                               help="Only runs with this status.")]

#: what `history --limit` accepts: a bound that keeps the query and the table finite
HISTORY_LIMIT_MAX = 1_000_000
#: run ids are SQLite rowids: positive 64-bit integers
RUN_ID_MAX = 2**63 - 1


def _limit(value: int) -> int:
    if not 1 <= value <= HISTORY_LIMIT_MAX:
        raise typer.BadParameter(f"{value} is out of range; use 1..{HISTORY_LIMIT_MAX:,}")
    return value


def _job_name(value: str, what: str) -> str:
    """A job name as the run log can hold it (spec.NAME_RE), or a usage error naming ``what`` was expected."""
    from jobctl.jobs.spec import NAME_RE

    if not NAME_RE.match(value):
        raise typer.BadParameter(f"{value!r} is not {what}")
    return value


@app.command(epilog="Examples:\n\n  jobctl history\n\n  jobctl history backup --limit 5\n\n"
             "  jobctl history --status failed --since 1d --json | jq -r '.[].job'")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", callback=_limit,
                                       help=f"How many runs, newest first (1..{HISTORY_LIMIT_MAX:,}).")] = 20,
    status: StatusOpt = None,
    since: Annotated[str | None, typer.Option(help="Only runs started since: 2h, 1d, 2026-11-01.")] = None,
    json_out: Json = False,
) -> None:
    """Past and running runs, newest first.

    Reasons and names are shown as text: control characters appear escaped
    (ESC as \\x1b); --json has them as they are.
    """
    from jobctl import store
    from jobctl.read import render

    if name is not None:
        _job_name(name, "a job name")
    if status is not None and status not in store.STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(store.STATUSES)}", param_hint="--status")
    since_ts = _since(since) if since else None
    log = _open_log(_state())
    rows = log.history(name, limit, status, since_ts) if log else []
    if json_out:
        render.print_json([render.run_json(r) for r in rows])
    elif rows:
        render.history_table(rows)
    else:
        print("no runs" + (f" of {name}" if name else ""), file=sys.stderr)


def _run_id(target: str) -> int | None:
    """RUN_ID|NAME: the run id it names, None for a job name; a usage error when it is neither."""
    if target.isascii() and target.isdigit():
        run_id = int(target)
        if not 1 <= run_id <= RUN_ID_MAX:
            raise typer.BadParameter(f"run id {target} is out of range; run ids are 1..{RUN_ID_MAX:,} "
                                     "(SQLite's 64-bit integer)")
        return run_id
    # "²" and "١" are digits to str.isdigit() and int(), not run ids
    _job_name(target, f"a run id (1..{RUN_ID_MAX:,}) or a job name")
    return None


#: what `logs NAME --run` picks
LOGS_RUNS = ("output", "latest")
#: the line `logs` ends with when the run did not end by itself (timeout, killed, lost)
_ENDED_BY = ("timeout", "killed", "lost")


def _latest_with_output(log, name: str):
    """NAME's latest run that printed something; else its latest run that started (not a skip); else None."""
    row = log.db.execute("SELECT * FROM runs WHERE job = ? AND output_bytes > 0 ORDER BY id DESC LIMIT 1",
                         (name,)).fetchone()
    if row is None:
        row = log.db.execute("SELECT * FROM runs WHERE job = ? AND status != 'skipped' ORDER BY id DESC LIMIT 1",
                             (name,)).fetchone()
    return row


def _known_jobs(log) -> list[str]:
    """Job names `logs` can suggest: those with runs, and the applied ones."""
    from jobctl import applied

    names = [r[0] for r in log.db.execute("SELECT DISTINCT job FROM runs")] if log is not None else []
    try:
        names += applied.names(_state_path())
    except OSError:
        pass
    return names


@app.command(epilog="Examples:\n\n  jobctl logs backup        # the latest run of backup that printed something\n\n"
             "  jobctl logs backup --run latest   # its latest run, even a skip\n\n  jobctl logs 1842\n\n"
             "  jobctl logs 1842 --raw   # on a terminal too: the job's colours, as it printed them")
def logs(
    target: Annotated[str, typer.Argument(
        metavar="RUN_ID|NAME", help="A run id, or a job name for its latest run with output (see --run).")],
    raw: Annotated[bool, typer.Option(
        "--raw", help="Write the output byte for byte even on a terminal, escape sequences included "
                      "(piped output is always raw).")] = False,
    which: Annotated[str, typer.Option(
        "--run", metavar="WHICH",
        help="With NAME: 'output' (default), its latest run that printed something (else its latest run that "
             "started); 'latest', its latest run whatever it was, a skip too.")] = "output",
) -> None:
    """Print the captured output of a run, with a marker where output was dropped.

    A run that did not end by itself ends with a marker line saying so
    ([... timed out after 5m ...]).  On a terminal, control characters and
    escape sequences in the output (and in notification errors) are shown
    escaped, ESC as \\x1b, so a job cannot drive your terminal; piped, or
    with --raw, the output is written byte for byte.
    """
    from jobctl.read import render

    if which not in LOGS_RUNS:
        raise typer.BadParameter(f"use one of {', '.join(LOGS_RUNS)}", param_hint="--run")
    run_id = _run_id(target)
    log = _open_log(_state())
    row = None
    if log is not None:
        if run_id is not None:
            row = log.get(run_id)
        elif which == "latest":
            row = log.latest(target)
        else:
            row = _latest_with_output(log, target)
    if row is None:
        if run_id is not None:
            _fail(JobctlError(f"no run {run_id}"))
        if log is not None and log.latest(target) is not None:  # only skips: they have no output
            row = log.latest(target)
        else:
            known = _known_jobs(log)
            # a job it knows (applied, or with runs of other kinds) has simply not run yet: suggest nothing
            _fail(UnknownJob(f"no runs of {target!r} yet" if target in known
                             else f"no runs of {target!r}{_did_you_mean(target, known)}"))
    if run_id is None and which == "output":
        newest = log.latest(target)
        if newest is not None and newest["id"] != row["id"]:
            later = log.db.execute("SELECT count(*) FROM runs WHERE job = ? AND id > ?",
                                   (target, row["id"])).fetchone()[0]
            print(f"jobctl: run {row['id']} ({row['status']}, started {render.local(row['started_at'])}); "
                  f"{later} later run{'s have' if later != 1 else ' has'} no output "
                  f"(jobctl logs {target} --run latest shows the latest)",
                  file=sys.stderr)
    if row["status"] == "skipped":
        why = (row["reason"] or "").removeprefix("skipped: ") or "no reason recorded"
        print(f"jobctl: run {row['id']} was skipped ({render.printable(why)}); a skip starts no process and has "
              "no output", file=sys.stderr)
    out = log.output(row["id"]) if log else None
    head, tail, dropped = out or (b"", b"", 0)
    stdout = sys.stdout.buffer
    show = (lambda data: data) if raw or not sys.stdout.isatty() else render.printable_output
    if not dropped:
        head, tail = head + tail, b""  # one text: a character may be split between the two
    stdout.write(show(head))
    if dropped:
        if head and not head.endswith(b"\n"):
            stdout.write(b"\n")
        stdout.write(f"[... {dropped} bytes of output dropped (output_limit) ...]\n".encode())
    stdout.write(show(tail))
    if row["status"] in _ENDED_BY:
        # the output stops where the job was stopped: say so, or it reads as a job that ended by itself
        if (tail or head) and not (tail or head).endswith(b"\n"):
            stdout.write(b"\n")
        reason = render.printable(row["reason"] or row["status"])
        stdout.write(f"[... {reason} ...]\n".encode())
    stdout.flush()
    if row["notify"]:
        # on stderr, so that stdout stays the job's output byte for byte; a
        # server's error text is escaped like the output when it reaches a terminal
        escape = not raw and sys.stderr.isatty()
        for note in row["notify"].split("; "):
            print(f"notify: {render.printable(note) if escape else note}", file=sys.stderr)


def _target(system: bool):
    from jobctl.install import crontab

    try:
        return crontab.target(system)
    except JobctlError as exc:
        _fail(exc)


def _print_plan(plan, verbose_diff: bool = True) -> None:
    from jobctl.read import render

    render.plan_summary(plan)
    diff = plan.diff()
    if diff and verbose_diff:
        render.diff(diff)


@app.command(epilog="Examples:\n\n  jobctl plan\n\n  jobctl plan --check || echo 'crontab out of date'\n\n"
             "  jobctl plan --strict   # warnings in the job files fail too")
def plan(
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when apply would change anything, 0 in sync.")] = False,
    strict: Strict = False,
) -> None:
    """Show what apply would change: job by job, then a diff of the crontab.

    The first line names the jobs directory read.  Then each job (add, change,
    remove, unchanged, with where it was last applied from when that was
    another directory), what apply would refuse without --prune-others,
    systemd timers whose recorded definition is out of date, and what each
    setting above jobctl's block (MAILTO, SHELL, CRON_TZ, ...) means for its
    lines.  Warnings of the job files go to stderr (errors under --strict).
    """
    from jobctl.install import crontab
    from jobctl.read import render

    directory, jobs = _load(jobs_dir, warn=True, strict=strict)
    state = _state()
    render.jobs_dir_line(os.path.abspath(directory), _origin(jobs_dir), len(jobs))
    try:
        result = crontab.make_plan(jobs, state, _target(system), directory)
    except JobctlError as exc:
        _fail_problems(exc)
    _print_plan(result)
    if check and result.pending:
        raise typer.Exit(int(ExitCode.NOT_OK))


def _fail_problems(exc: JobctlError) -> NoReturn:
    from jobctl.errors import InvalidJobs

    if isinstance(exc, InvalidJobs):
        for line in exc.lines():
            print(line, file=sys.stderr)
        _fail(JobctlError(f"{exc.message}; nothing was changed", exc.code))
    _fail(exc)


@app.command(epilog="Examples:\n\n  jobctl apply\n\n  jobctl apply --dry-run\n\n"
             "  jobctl apply --jobs-dir ~/ops/jobs.d --prune-others   # this directory's jobs replace all others\n\n"
             "  sudo jobctl apply --system    # /etc/cron.d/jobctl, jobs may set user:")
def apply(
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would change; change nothing.")] = False,
    prune_others: Annotated[bool, typer.Option(
        "--prune-others", help="Remove installed jobs even when they were last applied from another jobs directory, "
                               "or when they are more than half of the installed ones (refused without it).")] = False,
) -> None:
    """Validate every job file, then install the enabled jobs into the crontab.

    The first line names the jobs directory read.  One invalid file changes
    nothing anywhere.  Only jobctl's own block is touched; the previous
    crontab is kept as a backup in the state directory.  Removing jobs last
    applied from another jobs directory, or more than half of the installed
    jobs, needs --prune-others: a stray ./jobs.d must not replace the block.
    """
    from jobctl.install import crontab
    from jobctl.read import render

    directory, jobs = _load(jobs_dir)
    state = _state()
    tgt = _target(system)
    render.jobs_dir_line(os.path.abspath(directory), _origin(jobs_dir), len(jobs))
    try:
        if dry_run:
            _print_plan(crontab.make_plan(jobs, state, tgt, directory))
            return
        outcome = crontab.apply(jobs, state, tgt, directory, prune_others=prune_others)
    except JobctlError as exc:
        _fail_problems(exc)
    render.apply_summary(outcome)


@app.command(epilog="Examples:\n\n  jobctl uninstall\n\n  sudo jobctl uninstall --system")
def uninstall(system: SystemOpt = False) -> None:
    """Remove jobctl's block from the crontab; the run log is kept."""
    from jobctl.install import crontab
    from jobctl.read import render

    try:
        outcome = crontab.uninstall(_state(), _target(system))
    except JobctlError as exc:
        _fail(exc)
    render.uninstall_summary(outcome)


@app.command(epilog="Examples:\n\n  jobctl status\n\n  jobctl status backup\n\n  jobctl status --wide\n\n"
             "  jobctl status --json | jq -r '.[] | select(.consecutive_failures > 0) | .name'")
def status(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    json_out: Json = False,
    wide: Annotated[bool, typer.Option(
        "--wide", "-w", help="Every column in full, however wide the terminal (lines may wrap).")] = False,
) -> None:
    """Every job: schedule, next run, state, last run, consecutive failures, description.

    States: ok, changed (files differ from what is applied), edited (the line
    in jobctl's crontab block is not the one apply wrote), not applied, timer
    (run by a systemd timer: export systemd --record), orphaned (in the
    crontab without a job file), disabled.  LAST RUN and RESULT are the
    latest run that started the job: a skip is not a result.  Jobs applied
    from another jobs directory are shown from their applied definitions, so
    status works from any directory.  On a narrow terminal less important
    columns are shortened or left out, never the job name; --wide shows all.
    """
    from datetime import datetime

    from jobctl import paths
    from jobctl.install import crontab
    from jobctl.jobs import loader
    from jobctl.read import render
    from jobctl.read import status as status_mod

    directory = paths.jobs_dir(jobs_dir)
    jobs: list = []
    readable = True
    try:
        result = loader.load_dir(directory)
        jobs = result.jobs
        if result.problems:
            n = len(result.problems)
            print(f"jobctl: warning: {n} problem{'s' if n != 1 else ''} in {directory} (see jobctl validate); "
                  "showing the valid jobs", file=sys.stderr)
    except JobctlError as exc:
        # from any directory: what is installed is still worth showing
        readable = False
        print(f"jobctl: note: {exc.message}; showing the applied jobs", file=sys.stderr)
    state = _state()
    try:
        entries = crontab.installed(state, _target(system))
    except JobctlError as exc:
        _fail(exc)
    if crontab.FOREIGN in entries:  # cron runs these too, and no job file says so
        n = entries[crontab.FOREIGN].lines
        print(f"jobctl: warning: jobctl's block holds {n} line{'s' if n != 1 else ''} jobctl did not write; "
              "jobctl plan shows them, jobctl apply removes them", file=sys.stderr)
    log = _open_log(state)
    rows = status_mod.collect(jobs, state, entries, log, datetime.now().astimezone(), system, directory, readable)
    if name is not None:
        rows = [r for r in rows if r.name == name]
        if not rows:
            names = [j.name for j in jobs] + [n for n in entries if not n.startswith("_")]
            _fail(UnknownJob(f"no job named {name!r} in {directory} or the crontab{_did_you_mean(name, names)}"))
    elsewhere = sorted({r.jobs_dir or "?" for r in rows if r.from_applied})
    if elsewhere and readable:
        n = sum(1 for r in rows if r.from_applied)
        print(f"jobctl: note: {n} job{'s' if n != 1 else ''} shown from {'their' if n != 1 else 'its'} applied "
              f"definition{'s' if n != 1 else ''} (applied from {', '.join(elsewhere)}; no job file in {directory})",
              file=sys.stderr)
    if json_out:
        render.print_json([render.status_json(r) for r in rows])
    else:
        render.status_table(rows, wide=wide)


Names = Annotated[list[str], typer.Argument(metavar="NAME...", help="Jobs to act on.")]


def _known_names(state: str, names: list[str], jobs_dir: str | None) -> None:
    """Pausing a typo would silently do nothing: insist on a known job."""
    from jobctl import applied, paths
    from jobctl.jobs import loader

    directory = paths.jobs_dir(jobs_dir)
    known = set(applied.names(state))
    try:
        known |= {j.name for j in loader.load_dir(directory).jobs}
    except JobctlError:
        pass
    unknown = [n for n in names if n not in known]
    if unknown:
        _fail(UnknownJob(f"no job named {', '.join(map(repr, unknown))} (applied or in {directory}); nothing changed"))


@app.command(epilog="Examples:\n\n  jobctl pause backup\n\n  jobctl pause backup tmp-cleanup")
def pause(names: Names, jobs_dir: JobsDir = None) -> None:
    """Pause jobs: their scheduled runs are recorded as skipped (reason: paused).

    The crontab is not touched; `jobctl run` still runs a paused job by hand.
    """
    from jobctl import pause as pause_mod

    state = _state()
    _known_names(state, names, jobs_dir)
    for name in names:
        print(f"paused {name}" if pause_mod.pause(state, name) else f"{name} was already paused")


@app.command(epilog="Examples:\n\n  jobctl resume backup")
def resume(names: Names, jobs_dir: JobsDir = None) -> None:
    """Resume paused jobs."""
    from jobctl import pause as pause_mod

    state = _state()
    _known_names(state, names, jobs_dir)
    for name in names:
        print(f"resumed {name}" if pause_mod.resume(state, name) else f"{name} was not paused")


@app.command(epilog="Examples:\n\n  jobctl prune --dry-run\n\n  jobctl prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Count what would go; delete nothing.")] = False,
) -> None:
    """Apply each job's history retention (keep / max_age) to the run log now.

    Jobs no longer applied keep the defaults (200 runs, 90 days).  Runs are
    also pruned after each run; this prunes everything and compacts the file.
    """
    from jobctl import applied, retention

    state = _state()
    log = _open_log(state)
    if log is None:
        print("no run log yet; nothing to prune")
        return
    now = time.time()
    total = 0
    jobs = [r[0] for r in log.db.execute("SELECT DISTINCT job FROM runs")]
    size_before = os.path.getsize(log.path)
    with log.write() as db:
        for job in sorted(jobs):
            hist = (applied.read(state, job) or {}).get("history") or {}
            keep = hist.get("keep", retention.DEFAULT_KEEP)
            max_age = hist.get("max_age", retention.DEFAULT_MAX_AGE)
            n = (len(retention.doomed(db, job, keep, max_age, now)) if dry_run
                 else retention.prune_job(db, job, keep, max_age, now))
            if n:
                print(f"{job}: {'would delete' if dry_run else 'deleted'} {n} run{'s' if n != 1 else ''}")
            total += n
    if dry_run:
        print(f"{total} runs would be deleted (dry run; nothing changed)")
        return
    retention.vacuum(log.db)
    size_after = os.path.getsize(log.path)
    print(f"deleted {total} runs; {log.path}: {size_before // 1024} KiB -> {size_after // 1024} KiB")


@app.command(epilog="Examples:\n\n  jobctl metrics\n\n"
             "  jobctl metrics --textfile /var/lib/prometheus/node-exporter/jobctl.prom")
def metrics(
    textfile: Annotated[str | None, typer.Option(metavar="PATH",
                                                 help="Write atomically to PATH (node_exporter textfile).")] = None,
) -> None:
    """Prometheus metrics of every applied job (label job_name)."""
    from jobctl.read import metrics as metrics_mod

    state = _state()
    text = metrics_mod.exposition(state, _open_log(state))
    if textfile:
        try:
            metrics_mod.write_textfile(textfile, text)
        except OSError as exc:
            _fail(EnvironmentProblem(f"cannot write {textfile}: {exc.strerror}"))
    else:
        sys.stdout.write(text)


@app.command(epilog="Examples:\n\n  jobctl doctor\n\n  sudo jobctl doctor --system")
def doctor(jobs_dir: JobsDir = None, system: SystemOpt = False) -> None:
    """Check the cron daemon, crontab, state directory, run log, job files, commands and working directories.

    Each check prints ok, note (worth knowing, not a failure) or FAIL with a
    fix; exit 1 when anything fails.  Programs and working directories are
    checked as the job's user.  Settings above jobctl's crontab block
    (MAILTO, SHELL, CRON_TZ, ...) are explained once each.
    """
    from jobctl import paths
    from jobctl.jobs import loader
    from jobctl.read import doctor as doc

    state = _state_path()
    directory = paths.jobs_dir(jobs_dir)
    checks = [doc.cron_daemon(), doc.crontab_command(), doc.state_permissions(state), doc.run_log(state)]
    try:
        result = loader.load_dir(directory)
    except JobctlError as exc:
        checks.append(doc.Check("job files", False, exc.message, f"jobctl init {directory}"))
        result = None
    checks.append(doc.applied_readable(state, result.jobs if result is not None and not result.problems else None))
    if result is not None:
        if result.problems:
            n = len(result.problems)
            checks.append(doc.Check("job files", False, f"{n} problem{'s' if n != 1 else ''} in {directory}",
                                    "jobctl validate"))
        else:
            n = len(result.jobs)
            checks.append(doc.Check("job files", True, f"{n} valid job{'s' if n != 1 else ''} in {directory}"))
            checks.append(doc.crontab_in_sync(result.jobs, state, system, directory))
        if os.path.isdir(directory):
            checks.append(doc.job_files_safe(directory))
        checks.extend(doc.commands_found(result.jobs))
        checks.extend(doc.working_dirs(result.jobs))
    checks.extend(doc.inherited_settings(state, system))
    failed = notes = 0
    for c in checks:
        print(f"{'note' if c.note and c.ok else 'ok  ' if c.ok else 'FAIL'}  {c.name}: {render_printable(c.detail)}")
        if not c.ok:
            failed += 1
            if c.fix:
                print(f"      fix: {render_printable(c.fix)}")
        elif c.note:
            notes += 1
    print(f"{len(checks) - failed - notes} ok, " + (f"{notes} note{'s' if notes != 1 else ''}, " if notes else "")
          + f"{failed} failed")
    if failed:
        raise typer.Exit(int(ExitCode.NOT_OK))


def _register_export() -> None:
    # `jobctl export ...` lives in its own module (issue 6); registering it
    # costs one small import.
    from jobctl.cli.export import register

    register(app)


_register_export()


def _crash_report(exc: BaseException) -> str:
    """Write the full traceback somewhere an operator can find it.

    Never raises: this runs when something already went wrong, perhaps a full
    disk or an unusable state directory, and a second traceback would bury
    the one line the operator needs.
    """
    import tempfile
    import time
    import traceback

    from jobctl import paths

    text = f"jobctl {__version__}\nargv: {sys.argv!r}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    name = time.strftime("jobctl-crash-%Y%m%dT%H%M%S") + f"-{os.getpid()}.txt"
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
