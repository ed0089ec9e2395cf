"""Options several command modules share, declared once."""

from __future__ import annotations

from typing import Annotated

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
