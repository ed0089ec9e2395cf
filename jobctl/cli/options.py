"""Options several command modules share, declared once."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

JobsDir = Annotated[
    str | None,
    typer.Option("--jobs-dir", "-d", metavar="DIR",
                 help="Jobs directory (default: $JOBCTL_JOBS_DIR, ./jobs.d, then the per-user default)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]
SystemOpt = Annotated[bool, typer.Option(
    "--system", help="Manage /etc/cron.d/jobctl (system format, root) instead of your crontab.")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="Treat warnings (likely mistakes such as a \\% left from a crontab) as errors: exit 1.")]


# --- shell completion: what a NAME (or RUN_ID|NAME) argument offers ---------------------------------
# cli/completion.py attaches these to the arguments when a shell asks (jobctl completion SHELL prints
# the script).  They only read: the jobs directory, the applied definitions' names and, read-only, the
# run log; whatever goes wrong offers nothing rather than an error in the middle of the command line.

#: how many of the latest runs `jobctl logs <TAB>` offers by id
RECENT_RUNS = 20


def job_names(jobs_dir: str | None) -> list[str]:
    """Job names of the jobs directory (its valid jobs) and of the applied definitions, sorted; never raises."""
    names: set[str] = set()
    try:
        from jobctl.jobs import loader

        names.update(job.name for job in loader.read(jobs_dir).jobs)
    except Exception:  # noqa: BLE001 - a completion offers what it can
        pass
    try:
        from jobctl import applied, paths

        names.update(applied.names(paths.state_dir()))
    except Exception:  # noqa: BLE001
        pass
    return sorted(names)


def recent_runs(limit: int = RECENT_RUNS) -> list[tuple[str, str]]:
    """(run id, "job status started") of the latest runs, newest first, from the run log opened read-only."""
    import sqlite3
    from pathlib import Path

    from jobctl import paths, store

    try:
        path = paths.runs_db(paths.state_dir())
        if not os.path.exists(path):
            return []
        # Read-only: no log created, no migration, no lost run finalised.  Without a WAL file (no
        # connection open, all checkpointed) the file is the whole log: immutable then, so SQLite does not
        # create the -wal and -shm files a read-only connection needs otherwise.
        wal = os.path.exists(path + "-wal")
        db = sqlite3.connect(Path(path).as_uri() + ("?mode=ro" if wal else "?mode=ro&immutable=1"), uri=True,
                             timeout=1)
    except Exception:  # noqa: BLE001
        return []
    try:
        db.row_factory = sqlite3.Row
        rows = store.Store(path, db).history(None, limit)
        return [(str(r["id"]), f"{r['job']} {r['status']}, started {_ago(r['started_at'])}") for r in rows]
    except Exception:  # noqa: BLE001
        return []
    finally:
        db.close()


def _ago(ts: float | None) -> str:
    """``12 min ago``: no colon, which zsh would read as the end of a completion's description."""
    import time

    if not isinstance(ts, (int, float)):
        return "at an unknown time"
    span = max(0.0, time.time() - ts)
    return (f"{int(span)} s ago" if span < 60 else f"{int(span // 60)} min ago" if span < 3600
            else f"{int(span // 3600)} h ago" if span < 172800 else f"{int(span // 86400)} days ago")


def _jobs_dir_of(ctx: Any) -> str | None:
    """--jobs-dir as given earlier on the command line being completed, if the command has it."""
    value = getattr(ctx, "params", {}).get("jobs_dir")
    return value if isinstance(value, str) and value else None


def complete_job_names(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """A NAME argument: the job names starting with what is typed."""
    return [n for n in job_names(_jobs_dir_of(ctx)) if n.startswith(incomplete)]


def complete_run_targets(ctx: Any, param: Any, incomplete: str) -> list[Any]:
    """A RUN_ID|NAME argument (logs): job names, then the latest run ids (with their job, status and start)."""
    try:
        from typer._click.shell_completion import CompletionItem
    except ImportError:  # a typer that uses click itself
        from click.shell_completion import CompletionItem  # type: ignore[import-not-found,no-redef]
    # items, not strings: click takes a list as strings only when its first element is one
    items = [CompletionItem(n) for n in complete_job_names(ctx, param, incomplete)]
    if incomplete and not incomplete.isdigit():
        return items
    return items + [CompletionItem(run_id, help=about) for run_id, about in recent_runs()
                    if run_id.startswith(incomplete)]
