"""A run by hand: `jobctl run`, through the wrapper cron uses."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir
from jobctl.errors import ExitCode, JobctlError

if TYPE_CHECKING:
    from jobctl.jobs.loader import Loaded

app = common.commands()


def applied_definition(state: str, name: str, loaded: Loaded) -> dict[str, Any] | None:
    """`run` from any directory: NAME's applied definition when the jobs directory read has no usable file for it.

    Used when the directory cannot be read, has no job NAME, or has problems
    while NAME was last applied from another directory; None otherwise (the
    job files decide).
    """
    from jobctl import applied

    current = applied.read(state, name) if os.path.isdir(state) else None
    if current is None:
        return None
    directory, result = loaded.directory, loaded.result
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
    from jobctl import applied
    from jobctl.install import compile
    from jobctl.jobs import loader
    from jobctl.runner import wrapper

    loaded = loader.read(jobs_dir)
    state = common.state_path(ExitCode.RUN_FAILED)
    defn = applied_definition(state, name, loaded)
    if defn is None:
        jobs = common.valid_jobs(loaded, ExitCode.RUN_FAILED)
        job = common.find(jobs, name, loaded.directory, ExitCode.RUN_FAILED, tuple(applied.names(state)))
        state = common.state(ExitCode.RUN_FAILED)  # as documented: 125, jobctl failed before the job could run
        defn = compile.definition(job)
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
        state = common.state(ExitCode.RUN_FAILED)
    if detach:
        print(_detach(defn, state))
        return
    out = sys.stdout.buffer

    def sink(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    # not streamed, the wrapper prints neither the output nor its progress and summary lines
    code = wrapper.execute(defn, state, trigger="manual", stream=not quiet, sink=sink)
    raise typer.Exit(code)


def _detach(defn: dict[str, Any], state: str) -> str:
    """Start the run in a new session; its run id, once the wrapper has recorded the start."""
    import json
    import subprocess

    from jobctl import paths
    from jobctl.runner import cmdline

    r, w = os.pipe()
    proc = subprocess.Popen(
        cmdline.detached_argv(state, defn["name"], w),
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
        common.fail(JobctlError(f"the detached run did not start; see {os.path.basename(paths.errors_log(state))} "
                         "in the state directory", ExitCode.RUN_FAILED))
    if line == b"0":
        return "0 (not recorded: the run log is unusable)"
    return line.decode()
