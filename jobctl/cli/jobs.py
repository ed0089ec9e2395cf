"""The job files: `jobctl validate`, `schema` and `init`."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir, Json, Strict
from jobctl.errors import ExitCode, JobctlError

app = common.commands()


@app.command(epilog="Examples:\n\n  jobctl validate\n\n"
             "  jobctl validate -d /etc/jobctl/jobs.d --json | jq .problems\n\n"
             "  jobctl validate --strict   # warnings fail too (CI)")
def validate(jobs_dir: JobsDir = None, json_out: Json = False, strict: Strict = False) -> None:
    """Check every job file; report every problem with file, line and column.

    Warnings (likely mistakes that still load, such as a \\% kept from a
    crontab) are printed as PATH:LINE:COL: warning: ... and do not fail
    unless --strict.  Exit 0 when every job is valid, 1 when not.
    """
    from jobctl.jobs import loader

    loaded = loader.read(jobs_dir)
    if loaded.error is not None:
        common.fail(loaded.error)
    directory, result = loaded.directory, loaded.result
    assert result is not None  # read either loaded the directory or says why not
    problems = sorted(result.problems, key=lambda p: (p.path, p.line, p.column, p.message))
    warnings = common.warnings_of(result)
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
            print(common.warning_line(w), file=sys.stderr)
        n = len(problems)
        print(f"jobctl: {n} problem{'s' if n != 1 else ''} in {common.printable(directory)}; nothing was changed",
              file=sys.stderr)
        raise typer.Exit(int(ExitCode.NOT_OK))
    common.print_warnings(warnings, strict, directory)
    n = len(result.jobs)
    print(f"ok: {n} job{'s' if n != 1 else ''} in {len(result.files)} file{'s' if len(result.files) != 1 else ''}"
          f" ({common.printable(directory)})")


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
        common.fail(JobctlError(f"{target} exists; not overwriting it"))
    except OSError as exc:
        common.fail(JobctlError(f"cannot write {target}: {exc.strerror}", ExitCode.ENVIRONMENT))
    with os.fdopen(fd, "w") as fh:
        fh.write(EXAMPLE_JOB)
    print(f"wrote {target}; check it with: jobctl validate --jobs-dir {target_dir}")
