"""Operating the installed jobs: `jobctl status`, `pause`, `resume`, `prune`, `metrics` and `doctor`."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir, Json, SystemOpt
from jobctl.errors import EnvironmentProblem, ExitCode, UnknownJob

app = common.commands()


@app.command(epilog="Examples:\n\n  jobctl status\n\n  jobctl status backup\n\n  jobctl status --wide --no-pager\n\n"
             "  jobctl status --json | jq -r '.[] | select(.consecutive_failures > 0) | .name'\n\n"
             "  jobctl status --json | jq -r '.[] | select(.recent[-1] == \"failed\") | .name'")
def status(
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    json_out: Json = False,
    wide: Annotated[bool, typer.Option(
        "--wide", "-w", help="Every column in full, however wide the terminal (lines may wrap).")] = False,
    no_pager: Annotated[bool, typer.Option(
        "--no-pager", help="Never page: on a terminal a table longer than the screen goes through $JOBCTL_PAGER, "
        "$PAGER or less.")] = False,
) -> None:
    """Every job: schedule, next run, state, last run, recent results, durations, failures, description.

    States: ok, changed (files differ from what is applied), edited (the line
    in jobctl's crontab block is not the one apply wrote), not applied, timer
    (run by a systemd timer: export systemd --record), orphaned (in the
    crontab without a job file), disabled.  LAST RUN and RESULT are the
    latest run that started the job: a skip is not a result.  Jobs applied
    from another jobs directory are shown from their applied definitions, so
    status works from any directory.  On a narrow terminal less important
    columns are shortened or left out, never the job name; --wide shows all.

    RECENT shows the last 10 runs, oldest first, a coloured mark each
    (check mark, ballot x, stopwatch, circled slash, zigzag, ?, triangle for
    succeeded, failed, timeout, skipped, killed, lost, running; + x T - K ? >
    where the locale is not UTF-8).  DURATION is the latest run's (yellow
    when it took over twice the usual), USUAL the job's usual duration, what
    slow and short are judged by: the median of its latest successful runs
    (baseline.runs, default 20; none below baseline.min_runs, default 5).
    MISSED, there when a job has any, counts its scheduled runs that never
    started, as the every-minute pass recorded them (notify.when missed).
    Times are local with the relative time next to them; the last line names
    the zone.  On a terminal a table longer than the screen goes through a
    pager (--no-pager).
    """
    from datetime import datetime

    from jobctl.errors import JobctlError
    from jobctl.install import crontab
    from jobctl.jobs import loader
    from jobctl.read import render
    from jobctl.read import status as status_mod

    loaded = loader.read(jobs_dir)
    directory, jobs, readable = loaded.directory, loaded.jobs, loaded.error is None
    if loaded.error is not None:
        # from any directory: what is installed is still worth showing
        print(f"jobctl: note: {loaded.error.message}; showing the applied jobs", file=sys.stderr)
    elif loaded.problems:
        n = len(loaded.problems)
        print(f"jobctl: warning: {n} problem{'s' if n != 1 else ''} in {directory} (see jobctl validate); "
              "showing the valid jobs", file=sys.stderr)
    state = common.state()
    try:
        entries = crontab.installed(state, common.target(system))
    except JobctlError as exc:
        common.fail(exc)
    if crontab.FOREIGN in entries:  # cron runs these too, and no job file says so
        n = entries[crontab.FOREIGN].lines
        print(f"jobctl: warning: jobctl's block holds {n} line{'s' if n != 1 else ''} jobctl did not write; "
              "jobctl plan shows them, jobctl apply removes them", file=sys.stderr)
    log = common.open_log(state)
    now = datetime.now().astimezone()
    rows = status_mod.collect(jobs, state, entries, log, now, system, directory, readable)
    if name is not None:
        rows = [r for r in rows if r.name == name]
        if not rows:
            names = [j.name for j in jobs] + [n for n in entries if not n.startswith("_")]
            common.fail(UnknownJob(f"no job named {name!r} in {directory} or the crontab"
                                   f"{common.did_you_mean(name, names)}"))
    elsewhere = sorted({r.jobs_dir or "?" for r in rows if r.from_applied})
    if elsewhere and readable:
        n = sum(1 for r in rows if r.from_applied)
        print(f"jobctl: note: {n} job{'s' if n != 1 else ''} shown from {'their' if n != 1 else 'its'} applied "
              f"definition{'s' if n != 1 else ''} (applied from {', '.join(elsewhere)}; no job file in {directory})",
              file=sys.stderr)
    if json_out:
        render.print_json([render.status_json(r) for r in rows])
    else:
        common.paged(lambda out: render.status_screen(rows, wide=wide, out=out, now=now.timestamp()), not no_pager)


Names = Annotated[list[str], typer.Argument(metavar="NAME...", help="Jobs to act on.")]


def _known_names(state: str, names: list[str], jobs_dir: str | None) -> None:
    """Pausing a typo would silently do nothing: insist on a known job."""
    from jobctl import applied
    from jobctl.jobs import loader

    loaded = loader.read(jobs_dir)
    known = set(applied.names(state)) | {j.name for j in loaded.jobs}
    unknown = [n for n in names if n not in known]
    if unknown:
        common.fail(UnknownJob(f"no job named {', '.join(map(repr, unknown))} (applied or in {loaded.directory}); "
                               "nothing changed"))


@app.command(epilog="Examples:\n\n  jobctl pause backup\n\n  jobctl pause backup tmp-cleanup")
def pause(names: Names, jobs_dir: JobsDir = None) -> None:
    """Pause jobs: their scheduled runs are recorded as skipped (reason: paused).

    The crontab is not touched; `jobctl run` still runs a paused job by hand.
    """
    from jobctl import pause as pause_mod

    state = common.state()
    _known_names(state, names, jobs_dir)
    for name in names:
        print(f"paused {name}" if pause_mod.pause(state, name) else f"{name} was already paused")


@app.command(epilog="Examples:\n\n  jobctl resume backup")
def resume(names: Names, jobs_dir: JobsDir = None) -> None:
    """Resume paused jobs."""
    from jobctl import pause as pause_mod

    state = common.state()
    _known_names(state, names, jobs_dir)
    for name in names:
        print(f"resumed {name}" if pause_mod.resume(state, name) else f"{name} was not paused")


@app.command(epilog="Examples:\n\n  jobctl prune --dry-run\n\n  jobctl prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Count what would go; delete nothing.")] = False,
) -> None:
    """Apply each job's history retention (keep / max_age) to the run log now.

    Jobs no longer applied keep the defaults (200 runs, 90 days).  A run also
    prunes its own job, once the job is past keep or max_age by a tenth; this
    prunes every job down to exactly its bounds and compacts the file.
    """
    import time

    from jobctl import retention

    state = common.state()
    log = common.open_log(state, build_indexes=True)
    if log is None:
        print("no run log yet; nothing to prune")
        return
    size_before = os.path.getsize(log.path)
    counts = retention.prune_all(log, state, time.time(), dry_run)
    for job, n in counts:
        if n:
            print(f"{job}: {'would delete' if dry_run else 'deleted'} {n} run{'s' if n != 1 else ''}")
    total = sum(n for _, n in counts)
    if dry_run:
        print(f"{total} runs would be deleted (dry run; nothing changed)")
        return
    size_after = os.path.getsize(log.path)
    print(f"deleted {total} runs; {log.path}: {size_before // 1024} KiB -> {size_after // 1024} KiB")


@app.command(epilog="Examples:\n\n  jobctl metrics\n\n"
             "  jobctl metrics --textfile /var/lib/prometheus/node-exporter/jobctl.prom")
def metrics(
    textfile: Annotated[str | None, typer.Option(metavar="PATH",
                                                 help="Write atomically to PATH (node_exporter textfile).")] = None,
) -> None:
    """Prometheus metrics of every applied job (label job_name).

    Gauges jobctl_job_* (last start, success, duration and exit code, runs
    by status, running, paused, consecutive failures, next run, usual
    duration) and the counter jobctl_missed_runs_total.
    """
    from jobctl.read import metrics as metrics_mod

    state = common.state()
    text = metrics_mod.exposition(state, common.open_log(state))
    if textfile:
        try:
            metrics_mod.write_textfile(textfile, text)
        except OSError as exc:
            common.fail(EnvironmentProblem(f"cannot write {textfile}: {exc.strerror}"))
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
    from jobctl.read import doctor as doc

    checks = doc.checks(common.state_path(), jobs_dir, system)
    failed = notes = 0
    for c in checks:
        print(f"{'note' if c.note and c.ok else 'ok  ' if c.ok else 'FAIL'}  {c.name}: {common.printable(c.detail)}")
        if not c.ok:
            failed += 1
            if c.fix:
                print(f"      fix: {common.printable(c.fix)}")
        elif c.note:
            notes += 1
    print(f"{len(checks) - failed - notes} ok, " + (f"{notes} note{'s' if notes != 1 else ''}, " if notes else "")
          + f"{failed} failed")
    if failed:
        raise typer.Exit(int(ExitCode.NOT_OK))
