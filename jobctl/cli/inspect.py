"""One job up close: `jobctl show` (its effective definition, crontab line and next runs) and `jobctl why`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir, Json, SystemOpt
from jobctl.errors import JobctlError

if TYPE_CHECKING:
    from jobctl.read.explain import Context

app = common.commands()

Name = Annotated[str, typer.Argument(metavar="NAME", help="The job.")]


def _context(jobs_dir: str | None, system: bool) -> Context:
    """The job files (what is valid of them), the state, the crontab's entries and the run log."""
    from datetime import datetime

    from jobctl.install import crontab
    from jobctl.jobs import loader
    from jobctl.read.explain import Context

    loaded = loader.read(jobs_dir)
    if loaded.error is not None:
        print(f"jobctl: note: {common.printable(loaded.error.message)}; using the applied definitions",
              file=sys.stderr)
    elif loaded.problems:
        n = len(loaded.problems)
        print(f"jobctl: warning: {n} problem{'s' if n != 1 else ''} in {common.printable(loaded.directory)} "
              "(see jobctl validate); using the valid jobs", file=sys.stderr)
    state = common.state()
    tgt = common.target(system)
    try:
        entries = crontab.installed(state, tgt)
    except JobctlError as exc:
        common.fail(exc)
    defaults = None
    if loaded.result is not None:
        defaults = next((p for p in loaded.result.files
                         if os.path.splitext(os.path.basename(p))[0] in loader.DEFAULTS_STEMS), None)
    return Context(state, loaded.jobs, loaded.directory, loaded.error is None, entries, common.open_log(state),
                   datetime.now().astimezone(), system, tgt.label, defaults)


def _locate(path: str, line: int | None) -> dict[str, tuple[int, int]]:
    """{key: (line, column)} of the job mapping starting on ``line`` of ``path`` (the first mapping for None).

    Keys of ``env`` as ``env.NAME``.  The file was just loaded and validated
    (jobs/loader, within its limits); this reads it again for the places of
    its keys only, composing nodes (never constructing values).  {} when it
    changed meanwhile into something that does not compose.
    """
    import yaml
    from yaml.nodes import MappingNode, ScalarNode

    from jobctl.jobs import loader

    try:
        with open(path, "rb") as fh:
            data = fh.read(loader.MAX_FILE_BYTES + 1)
    except OSError:
        return {}
    if len(data) > loader.MAX_FILE_BYTES:
        return {}
    composer = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = list(yaml.compose_all(data.decode("utf-8-sig", "replace"), Loader=composer))
    except yaml.YAMLError:
        return {}
    for doc in docs:
        if not isinstance(doc, MappingNode) or (line is not None and doc.start_mark.line + 1 != line):
            continue
        out: dict[str, tuple[int, int]] = {}
        for key, value in doc.value:
            if not isinstance(key, ScalarNode):
                continue
            out[str(key.value)] = (key.start_mark.line + 1, key.start_mark.column + 1)
            if key.value == "env" and isinstance(value, MappingNode):
                for var, _ in value.value:
                    if isinstance(var, ScalarNode):
                        out[f"env.{var.value}"] = (var.start_mark.line + 1, var.start_mark.column + 1)
        return out
    return {}


@app.command(epilog="Examples:\n\n  jobctl show backup\n\n  jobctl show backup --json | jq .next_runs\n\n"
             "  jobctl show backup --json | jq -r '.origins | to_entries[] | \"\\(.key) \\(.value.from)\"'")
def show(name: Name, jobs_dir: JobsDir = None, system: SystemOpt = False, json_out: Json = False) -> None:
    """A job's effective definition, where each value comes from, its crontab line and next runs.

    Every key with its value, defaults filled in, and where it comes from:
    the job file (file:line), _defaults.yaml (file:line) or jobctl's
    default.  Then the line installed in the crontab, how the job file
    differs from the applied definition (status's changed and edited
    states), and the next 5 runs in the job's time zone and the server's.
    A job with no file in the jobs directory is shown from its applied
    definition.
    """
    from jobctl.read import explain, explain_render

    ctx = _context(jobs_dir, system)
    try:
        shown = explain.show(ctx, name, _locate)
    except JobctlError as exc:
        common.fail(exc)
    if json_out:
        from jobctl.read import render

        render.print_json(explain_render.show_json(shown))
    else:
        explain_render.show_text(shown)


@app.command(epilog="Examples:\n\n  jobctl why backup                      # its latest scheduled time\n\n"
             "  jobctl why backup --at 2026-03-29T02:30   # read in the job's time zone\n\n"
             "  jobctl why backup --at 2026-11-30T06:00Z\n\n  jobctl why backup --at 3h\n\n"
             "  jobctl why backup --json | jq -r .reason")
def why(
    name: Name,
    at: Annotated[str | None, typer.Option(
        "--at", metavar="TIME",
        help="The time to explain: ISO 8601 (2026-11-01T08:00, read in the job's time zone; with Z or +HH:MM "
             "that instant) or a duration ago (90m, 2h, 1d). Default: the latest scheduled time.")] = None,
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    json_out: Json = False,
) -> None:
    """Explain why a job ran or did not run at a time: one verdict line, then the evidence.

    The run recorded for that minute (ran, paused, skipped while another run
    held the lock), else: was the schedule due then (read in the job's time
    zone, with cron's DST rules), was its line installed, was the job paused,
    did cron run at all (other jobs due in that minute, the daemon now),
    did catch-up cover it, has the crontab line drifted from the applied
    definition.  Exit 0 when an explanation was given; 1 for an unknown
    job, 2 for a time that cannot be read.
    """
    from datetime import datetime

    from jobctl.read import explain, explain_render

    asked = None
    if at is not None:
        try:
            asked = explain.parse_at(at, datetime.now().astimezone())
        except JobctlError as exc:
            common.fail(exc)
    ctx = _context(jobs_dir, system)
    try:
        answer = explain.why(ctx, name, asked)
    except JobctlError as exc:
        common.fail(exc)
    if json_out:
        from jobctl.read import render

        render.print_json(explain_render.why_json(answer))
    else:
        explain_render.why_text(answer)
