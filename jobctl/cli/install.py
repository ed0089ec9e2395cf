"""The crontab: `jobctl plan`, `apply` and `uninstall`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir, Strict, SystemOpt
from jobctl.errors import ExitCode, JobctlError

if TYPE_CHECKING:
    from jobctl.install.crontab import Plan

app = common.commands()


def _print_plan(plan: Plan) -> None:
    from jobctl.read import render

    render.plan_summary(plan)
    diff = plan.diff()
    if diff:
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

    directory, jobs = common.load(jobs_dir, warn=True, strict=strict)
    state = common.state()
    render.jobs_dir_line(os.path.abspath(directory), common.origin(jobs_dir), len(jobs))
    try:
        result = crontab.make_plan(jobs, state, common.target(system), directory)
    except JobctlError as exc:
        common.fail_problems(exc)
    _print_plan(result)
    if check and result.pending:
        raise typer.Exit(int(ExitCode.NOT_OK))


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

    directory, jobs = common.load(jobs_dir)
    state = common.state()
    tgt = common.target(system)
    render.jobs_dir_line(os.path.abspath(directory), common.origin(jobs_dir), len(jobs))
    try:
        if dry_run:
            _print_plan(crontab.make_plan(jobs, state, tgt, directory))
            return
        outcome = crontab.apply(jobs, state, tgt, directory, prune_others=prune_others)
    except JobctlError as exc:
        common.fail_problems(exc)
    render.apply_summary(outcome)


@app.command(epilog="Examples:\n\n  jobctl uninstall\n\n  sudo jobctl uninstall --system")
def uninstall(system: SystemOpt = False) -> None:
    """Remove jobctl's block from the crontab; the run log is kept."""
    from jobctl.install import crontab
    from jobctl.read import render

    try:
        outcome = crontab.uninstall(common.state(), common.target(system))
    except JobctlError as exc:
        common.fail(exc)
    render.uninstall_summary(outcome)
