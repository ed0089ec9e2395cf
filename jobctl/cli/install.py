"""The crontab: `jobctl plan`, `apply` and `uninstall`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir, Json, Strict, SystemOpt
from jobctl.errors import ExitCode, JobctlError

if TYPE_CHECKING:
    from datetime import datetime

    from jobctl.install.crontab import Plan
    from jobctl.install.fire import Firing, JobFires, Skipped

app = common.commands()


def _print_plan(plan: Plan, fires: list[JobFires] | None = None, server: str = "") -> None:
    from jobctl.read import render

    render.plan_summary(plan)
    if fires:
        _print_fires(fires, server)
    diff = plan.diff()
    if diff:
        render.diff(diff)


#: the short tag of a run's DST flag, on its line; the sentence follows on the next
_DST_TAG = {"shifted": "[DST: shifted]", "repeated-once": "[DST: repeated hour, runs once]",
            "repeated-twice": "[DST: repeated hour, runs twice]"}


def _when(f: Firing) -> str:
    """``30 2 * * * in Europe/Berlin``: a schedule and the zone it is read in."""
    if f.reboot:
        return f.schedule
    return f"{f.schedule} in {f.timezone}" if f.timezone else f"{f.schedule} in the server's zone"


def _firing_lines(f: Firing | None, server: str, indent: str) -> list[tuple[str, str]]:
    """The lines of one schedule's fire times: (text, rich style), ASCII only."""
    from jobctl.install import fire

    if f is None:
        return [(f"{indent}not applied before: no runs", "dim")]
    if f.problem is not None:
        return [(f"{indent}{f.problem}", "yellow")]
    if f.reboot:
        return [(f"{indent}at boot (@reboot): no times to list", "")]
    if not f.fires:
        return [(f"{indent}no run within 30 years", "yellow")]
    both = f.timezone is not None and f.timezone != server
    rows = []
    for r in f.fires:
        cells = [fire.wall_text(r.at, f.timezone)] + ([fire.wall_text(r.at, None)] if both else [])
        rows.append((cells, r))
    width = max(len(cells[0]) for cells, _ in rows)
    out: list[tuple[str, str]] = []
    skipped = fire.skipped_by_day(f.skipped)
    for cells, r in rows:
        while skipped and skipped[0][1][0].jump_at <= r.at:  # where they would have run, in order
            out += _skipped_lines(*skipped.pop(0), indent)
        text = indent + (f"{cells[0]:<{width}}   {cells[1]}" if both else cells[0])
        many = f" ({len(r.walls)} runs)" if len(r.walls) > 1 else ""
        if r.dst:
            out.append((f"{text}{many}  {_DST_TAG[r.dst]}", "yellow"))
            out.append((f"{indent}  {r.note}", "yellow"))
        else:
            out.append((text + many, ""))
    for day, group in skipped:
        out += _skipped_lines(day, group, indent)
    return out


def _skipped_lines(day: str, group: list[Skipped], indent: str) -> list[tuple[str, str]]:
    """Wall times of a day that a spring-forward jump skips and cron does not make up."""
    from jobctl.install import fire

    times = fire.hm(group[0].wall) + (f" to {fire.hm(group[-1].wall)}, {len(group)} runs" if len(group) > 1 else "")
    return [(f"{indent}not run: {day} {times}  [DST: skipped]", "yellow"),
            (f"{indent}  skipped by DST: {group[0].why}", "yellow")]


def _print_fires(fires: list[JobFires], server: str) -> None:
    """When each added or changed job fires: the next runs before and after, in its zone and the server's."""
    from jobctl.install import fire
    from jobctl.read import render

    lines: list[tuple[str, str]] = [
        (f"when the added and changed jobs fire, next {fire.COUNT} runs (in the job's zone; the server's zone is "
         f"{server}):", "bold")]
    for j in fires:
        after, before = j.after, j.before
        if after is None:
            continue
        if j.same and before is not None:
            lines.append((f"  {j.name}: {_when(after)}, as before (this change "
                          "moves no run)", ""))
            lines += _firing_lines(after, server, "      ")
            continue
        if before is None:
            lines.append((f"  {j.name}: {_when(after)} (not applied before)", ""))
            lines += _firing_lines(after, server, "      ")
            continue
        shown = _when(before) if before.problem is None else "?"
        lines.append((f"  {j.name}: {shown} -> {_when(after)}", ""))
        lines.append(("    before:", "dim"))
        lines += _firing_lines(before, server, "      ")
        lines.append(("    after:", "dim"))
        lines += _firing_lines(after, server, "      ")
    out = render.console()
    if not out.is_terminal:  # plain text, written at once: a plan of a thousand jobs has ten thousand lines
        sys.stdout.write("".join(render.printable(text) + "\n" for text, _ in lines))
        sys.stdout.flush()
        return
    for text, style in lines:
        out.print(render.cell(text, style))


def _start(text: str | None) -> datetime:
    """--from: an ISO 8601 date or time (the server's zone unless it has Z or an offset); now without it."""
    from datetime import datetime, timezone

    if text is None:
        return datetime.now().astimezone()
    value = text.strip()
    try:
        if value[-1:] in ("Z", "z"):
            value = value[:-1] + "+00:00"
        start = datetime.fromisoformat(value)
        start = start.astimezone() if start.tzinfo is None else start
        if not 1970 <= start.astimezone(timezone.utc).year <= 9998:  # fire times run a year past it
            raise ValueError("out of range")
        return start
    except (ValueError, OverflowError, OSError):
        raise typer.BadParameter(
            f"{common.printable(text)!r} is not a time: use ISO 8601, 2027-03-27 or 2027-03-27T12:00 (the server's "
            "time), or with Z or +01:00 (that instant); years 1970 to 9998", param_hint="--from") from None


def _plan_json(plan: Plan, directory: str, origin: str, fires: list[JobFires] | None, server: str,
               start: datetime | None) -> dict:
    """`plan --json` (README and jobctl(1) document the fields)."""
    from jobctl.install import crontab, fire
    from jobctl.store import iso

    by_name = {j.name: j for j in fires or []}
    jobs = []
    for c in plan.changes:
        j = by_name.get(c.name)
        jobs.append({"name": c.name, "action": c.action, "fields": list(c.fields), "note": c.note or None,
                     "fires": fire.job_json(j) if j is not None else None})
    settings = []
    for name, value, number in plan.inherited:
        text, problem = crontab.meaning(name, value)
        settings.append({"line": number, "name": name, "value": value, "meaning": text, "problem": problem})
    return {
        "jobs_dir": directory,
        "jobs_dir_from": origin,
        "target": plan.target.label,
        "pending": plan.pending,
        "refusal": plan.refusal(),
        "server_zone": server,
        "fires_after": iso(start.timestamp()) if start is not None and fires is not None else None,
        "jobs": jobs,
        "timers": [{"name": c.name, "fields": list(c.fields)} for c in plan.timers],
        "settings": settings,
        "diff": plan.diff(),
    }


@app.command(epilog="Examples:\n\n  jobctl plan\n\n  jobctl plan --check || echo 'crontab out of date'\n\n"
             "  jobctl plan --strict   # warnings in the job files fail too\n\n"
             "  jobctl plan --from 2027-03-27   # fire times around a DST change\n\n"
             "  jobctl plan --json | jq '.jobs[].fires.after.runs[0].utc'")
def plan(
    jobs_dir: JobsDir = None,
    system: SystemOpt = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 1 when apply would change anything, 0 in sync. Lists no fire times.")] = False,
    strict: Strict = False,
    start: Annotated[str | None, typer.Option(
        "--from", metavar="TIME",
        help="List fire times after TIME instead of now: ISO 8601 (2027-03-27, 2027-03-27T12:00 in the server's "
             "zone; with Z or +HH:MM that instant).")] = None,
    json_out: Json = False,
) -> None:
    """Show what apply would change: job by job, then a diff of the crontab.

    The first line names the jobs directory read.  Then each job (add, change,
    remove, unchanged, with where it was last applied from when that was
    another directory), what apply would refuse without --prune-others,
    systemd timers whose recorded definition is out of date, and what each
    setting above jobctl's block (MAILTO, SHELL, CRON_TZ, ...) means for its
    lines.  For each added or changed job, the next 5 fire times before and
    after the change, in the job's zone and the server's, with the runs a
    DST change shifts, skips or repeats flagged as cron(8) makes them.
    Warnings of the job files go to stderr (errors under --strict).
    """
    from jobctl.install import crontab
    from jobctl.read import render

    if check and start is not None:
        raise typer.BadParameter("--check lists no fire times; leave out --from", param_hint="--from")
    when = None if check else _start(start)
    directory, jobs = common.load(jobs_dir, warn=True, strict=strict)
    state = common.state()
    if not json_out:
        render.jobs_dir_line(os.path.abspath(directory), common.origin(jobs_dir), len(jobs))
    try:
        result = crontab.make_plan(jobs, state, common.target(system), directory)
    except JobctlError as exc:
        common.fail_problems(exc)
    fires, server = None, ""
    if when is not None or json_out:  # no fire times under --check, which must stay fast over a thousand jobs
        from jobctl.install import fire

        server = fire.server_zone()
        fires = fire.plan_fires(result, when) if when is not None else None
    if json_out:
        render.print_json(_plan_json(result, os.path.abspath(directory), common.origin(jobs_dir), fires, server,
                                     when))
    else:
        _print_plan(result, fires, server)
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
    common.update_log(state)


@app.command(epilog="Examples:\n\n  jobctl uninstall\n\n  sudo jobctl uninstall --system\n\n"
             "  jobctl uninstall --restore   # and put back what import --adopt took out")
def uninstall(
    system: SystemOpt = False,
    restore: Annotated[bool, typer.Option(
        "--restore", help="Also put back the crontab entries jobctl import --adopt took out, byte for byte "
                          "(lines added since stay; refused if lines around them were changed or removed).")] = False,
) -> None:
    """Remove jobctl's block from the crontab; the run log is kept."""
    from jobctl.install import crontab
    from jobctl.read import render

    try:
        if restore:
            from jobctl.install import importer

            restored = importer.restore(common.state(), common.target(system))
        else:
            outcome = crontab.uninstall(common.state(), common.target(system))
    except JobctlError as exc:
        common.fail(exc)
    if not restore:
        render.uninstall_summary(outcome)
        return
    if restored.outcome.plan.changes:
        render.uninstall_summary(restored.outcome)
    if restored.already:
        print(f"the entries jobctl import --adopt took out stand in {', '.join(restored.already)} already (put back "
              "by hand, or an adopt interrupted before it wrote): left as they are, not put back twice")
    if restored.places:
        print(f"put back the {restored.lines} {render.plural(restored.lines, 'line')} jobctl import --adopt took "
              f"out (entries and the comments above them), byte for byte, in {', '.join(restored.places)}")
    # the entries run again from the crontab: the job files import wrote would make apply run them a second time
    print("the job files import wrote stay in the jobs directory: remove them before the next jobctl apply, "
          "or cron runs those commands twice (once from the restored entries, once from jobctl's block)")
