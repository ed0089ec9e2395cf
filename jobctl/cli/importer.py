"""`jobctl import`: a hand-edited crontab's entries -> job files; with --adopt, installed in their place.

The conversion is install/importer.py's; this module reads the input,
shows the plan (a rich table on a terminal, plain lines otherwise, JSON with
--json), writes the files and, for --adopt, applies.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobctl.cli import common
from jobctl.cli.options import Json
from jobctl.errors import EnvironmentProblem, ExitCode, JobctlError

if TYPE_CHECKING:
    from jobctl.install.importer import Adopted, Conversion

app = common.commands()


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except IsADirectoryError:
        common.fail(EnvironmentProblem(f"cannot read {path}: it is a directory; give a crontab file"))
    except OSError as exc:
        common.fail(EnvironmentProblem(f"cannot read {path}: {exc.strerror}; nothing was written"))


def _source(source: str | None, system_file: str | None) -> tuple[str, str, bool]:
    """(text, label, found): the crontab to import."""
    if system_file is not None:
        return _read_bytes(system_file).decode("utf-8", "surrogateescape"), system_file, True
    if source == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape"), "standard input", True
    if source is not None:
        return _read_bytes(source).decode("utf-8", "surrogateescape"), source, True
    tgt = common.target(False)
    try:
        text = tgt.read()
    except JobctlError as exc:
        common.fail(exc)
    return text, tgt.label, not tgt.absent


def _check_directory(directory: str) -> None:
    """The jobs directory as the loader would refuse it (another user's, open to others): said before any write."""
    from jobctl.jobs import loader

    if not os.path.isdir(directory):
        return
    loaded = loader.read(directory)
    if loaded.error is not None:
        common.fail(JobctlError(f"{loaded.error.message}; nothing was written", loaded.error.code))
    own = [p for p in loaded.problems if os.path.abspath(p.path) == directory]
    if own:  # the directory itself (its owner, its mode): every job file in it would be refused
        common.fail(JobctlError(f"{own[0].message}; nothing was written", ExitCode.NOT_OK))


def _finish_pending(system: bool) -> None:
    """An earlier import --adopt killed half way: finish it first, so that nothing is imported or installed twice."""
    from jobctl.install import importer
    from jobctl.jobs import loader

    state = common.state()
    tgt = common.target(system)
    try:
        for record in importer.pending(state):
            if record.get("target") != tgt.label:
                continue
            jobs = common.valid_jobs(loader.read(record["jobs_dir"]))
            said = importer.finish(record, jobs, state, tgt)
            print(f"jobctl import --adopt: {said}", file=sys.stderr)
    except JobctlError as exc:
        common.fail_problems(exc)


def _check_written(conversion: Conversion, written: list[str]) -> Any:
    """The directory as the loader reads it, after checking each file written loads to what was meant."""
    from jobctl.install import importer
    from jobctl.jobs import loader

    loaded = loader.read(conversion.directory)
    ours = set(written)
    problems = [p for p in loaded.problems if p.path in ours]
    if loaded.error is not None or problems:
        importer.remove(written)
        for p in problems:
            print(p, file=sys.stderr)
        reason = loaded.error.message if loaded.error is not None else f"{len(problems)} problems"
        common.fail(JobctlError(f"the job files import wrote do not load ({reason}); they were removed again, "
                                "nothing was written"))
    by_name = {job.name: job for job in loaded.jobs}
    for job in conversion.jobs:
        got = by_name.get(job.name)
        env = {**conversion.defaults.get("env", {}), **job.keys.get("env", {})}
        # an existing _defaults.yaml may add variables; every one the import wrote must read back as written
        if got is None or got.command != job.keys["command"] or any(got.env.get(k) != v for k, v in env.items()):
            importer.remove(written)
            common.fail(JobctlError(f"{job.file} does not read back as written (a bug in jobctl import); it was "
                                    "removed again, nothing was written", ExitCode.INTERNAL))
    return loaded


@app.command(name="import", epilog=(
    "Examples:\n\n  jobctl import --dry-run          # your crontab: what would be written\n\n"
    "  jobctl import ~/old.crontab --out ./jobs.d\n\n"
    "  crontab -l -u deploy | jobctl import - --user deploy --out /srv/deploy/jobs.d\n\n"
    "  sudo jobctl import --system-file /etc/cron.d/backup --adopt\n\n"
    "  jobctl import --adopt            # undone by: jobctl uninstall --restore"))
def import_(
    source: Annotated[str | None, typer.Argument(
        metavar="[FILE | -]", show_default=False,
        help="A crontab in the user format, or - for standard input (default: your crontab, the one apply "
             "manages).")] = None,
    system_file: Annotated[str | None, typer.Option(
        "--system-file", metavar="PATH",
        help="An /etc/crontab or /etc/cron.d-style file (a user column after the time fields): its jobs get "
             "user: and are for apply --system.")] = None,
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR",
        help="Write the job files into DIR (default: the jobs directory apply reads).")] = None,
    adopt: Annotated[bool, typer.Option(
        "--adopt", help="After the plan: take the imported entries out of the crontab and install jobctl's block "
                        "in one step, keeping the original; jobctl uninstall --restore puts it back.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show the plan; write nothing.")] = False,
    user: Annotated[str | None, typer.Option(
        "--user", "-u", metavar="NAME",
        help="Set user: NAME on every imported job (the crontab was NAME's: crontab -l -u NAME); without it "
             "root's apply runs them as root.")] = None,
    json_out: Json = False,
) -> None:
    """Turn a crontab's entries into job files that run the same way.

    Each entry becomes one job file (never overwriting one): the comment
    lines right above it its description; the settings above it (SHELL,
    PATH, MAILTO, ...) its shell, env and mail; its command exactly as cron
    ran it, with the input a % gave it.  Lines jobctl cannot express stay in
    the crontab, with the reason.  A crontab cron would refuse is an error
    (exit 1, line number given), nothing written.
    """
    from jobctl import paths
    from jobctl.install import importer

    if source is not None and system_file is not None:
        common.fail(JobctlError("give a FILE or --system-file PATH, not both", ExitCode.USAGE))
    if adopt and source is not None:
        common.fail(JobctlError("--adopt takes the entries out of the crontab jobctl manages (or a --system-file); "
                                "a FILE is not run by cron: import it, then edit it yourself", ExitCode.USAGE))
    if adopt and system_file is not None and "JOBCTL_CRONTAB" not in os.environ:
        # a file cron does not read (a backup, a copy) would start running from jobctl's block
        real = os.path.realpath(system_file)
        if real != "/etc/crontab" and os.path.dirname(real) != "/etc/cron.d":
            common.fail(JobctlError(f"--adopt takes entries out of a file cron runs, /etc/crontab or one in "
                                    f"/etc/cron.d; cron does not read {common.printable(system_file)}: import it "
                                    "without --adopt", ExitCode.USAGE))
    if adopt and dry_run:
        common.fail(JobctlError("--adopt and --dry-run contradict each other; --dry-run shows the plan",
                                ExitCode.USAGE))
    if user is not None:
        import pwd

        if system_file is not None:
            common.fail(JobctlError("--user is for a crontab in the user format; a --system-file names the user of "
                                    "each line in its user column", ExitCode.USAGE))
        try:
            pwd.getpwnam(user)
        except KeyError:
            common.fail(JobctlError(f"--user {common.printable(user)}: no such user on this host", ExitCode.USAGE))
    directory = os.path.abspath(out or paths.jobs_dir(None))
    if adopt:
        _finish_pending(system_file is not None)
    text, label, found = _source(source, system_file)
    _check_directory(directory)
    try:
        conversion = importer.convert(text, label, directory, system=system_file is not None, user=user)
    except JobctlError as exc:
        common.fail(exc)
    if (os.geteuid() == 0 and user is None and system_file is None and source is not None
            and conversion.jobs):
        conversion.notes.insert(0, "THESE JOBS WILL RUN AS ROOT when root applies them (no user: key): pass "
                                   "--user NAME if this was another user's crontab (crontab -l -u NAME)")
    if adopt:
        why = importer.adoptable(conversion)
        if why:
            common.fail(JobctlError(f"--adopt: {why}; nothing was written"))
    report = _report(conversion, found, out is not None)
    if not conversion.jobs:
        report["written"] = False
        _print(report, conversion, json_out, "nothing to import" if found else f"no crontab: {label}")
        return
    if dry_run:
        report["written"] = False
        _print(report, conversion, json_out, "--dry-run: nothing written")
        return
    try:
        written = importer.write(conversion)
    except JobctlError as exc:
        common.fail(exc)
    report["written"] = True
    report["files"] = written
    loaded = _check_written(conversion, written)
    if not adopt:
        _print(report, conversion, json_out, None)
        return
    jobs = common.valid_jobs(loaded) if not loaded.problems else None
    if jobs is None:
        importer.remove(written)
        for p in sorted(loaded.problems):
            print(p, file=sys.stderr)
        common.fail(JobctlError(f"--adopt applies {directory}, which has problems besides the imported files; the "
                                "imported files were removed again, nothing was changed"))
    state = common.state()
    tgt = common.target(system_file is not None)
    try:
        done = importer.adopt(conversion, jobs, state, tgt,
                              os.path.realpath(system_file) if system_file is not None else None)
    except JobctlError as exc:
        importer.remove(written)
        common.fail_problems(JobctlError(f"{exc.message} (the imported job files were removed again)", exc.code))
    except OSError as exc:  # a full disk while keeping the backup or the record: nothing was adopted
        importer.remove(written)
        common.fail(EnvironmentProblem(f"cannot adopt: {exc}; the imported job files were removed again and the "
                                       "crontab was not changed"))
    report["adopted"] = _adopted(done)
    _print(report, conversion, json_out, None, done)


def _adopted(done: Adopted) -> dict[str, Any]:
    return {"source": done.source, "removed_lines": done.lines, "target": done.outcome.plan.target.label,
            "backup": done.backup, "crontab_backup": done.outcome.backup}


def _report(conversion: Conversion, found: bool, explicit_out: bool) -> dict[str, Any]:
    """The --json document (documented in the man page, IMPORT)."""
    return {
        "source": conversion.label,
        "format": "system" if conversion.system else "user",
        "directory": conversion.directory,
        "written": False,
        "files": [],
        "defaults": conversion.defaults or None,
        "jobs": [{"name": j.name, "file": os.path.join(conversion.directory, j.file), "line": j.entry.line,
                  "entry": j.entry.text, "schedule": j.keys["schedule"], "command": j.keys["command"],
                  "notes": j.notes} for j in conversion.jobs],
        "kept_out": [{"line": k.entry.line, "entry": k.entry.text, "reason": k.reason} for k in conversion.kept_out],
        "notes": conversion.notes,
        "adopted": None,
    }


def _print(report: dict[str, Any], conversion: Conversion, json_out: bool, verdict: str | None,
           done: Adopted | None = None) -> None:
    from jobctl.read import render

    if json_out:
        render.print_json(report)
        return
    out = render.console()
    unicode = (out.encoding or "").lower().startswith("utf")
    arrow = "\u2192" if unicode else "->"
    n = len(conversion.jobs)
    out.print(render.cell(f"{conversion.label}: {n} {'entry' if n == 1 else 'entries'} to job files in "
                          f"{conversion.directory}"
                          + (f", {len(conversion.kept_out)} kept in the crontab" if conversion.kept_out else "")))
    rows = [(j.entry.line, j.entry.text, j.file, j.notes, "") for j in conversion.jobs]
    rows += [(k.entry.line, k.entry.text, "(kept in the crontab)", [k.reason], "yellow") for k in conversion.kept_out]
    rows.sort(key=lambda r: r[0])
    if out.is_terminal:
        from rich.table import Table

        table = Table(show_lines=True, expand=False)
        table.add_column("line", justify="right", no_wrap=True)
        table.add_column("crontab entry", overflow="fold", ratio=3)
        table.add_column(f"{arrow} job file", no_wrap=True)
        table.add_column("notes", overflow="fold", ratio=4)
        for line, entry, target, notes, style in rows:
            table.add_row(render.cell(str(line)), render.cell(entry), render.cell(target, style or "green"),
                          render.cell("\n".join(f"- {n}" for n in notes)) if notes else render.cell(""))
        out.print(table)
    else:
        for line, entry, target, notes, _ in rows:
            out.print(render.cell(f"line {line}: {entry}"))
            out.print(render.cell(f"  {arrow} {target}"))
            for note in notes:
                out.print(render.cell(f"    - {note}"))
    if conversion.notes:
        out.print(render.cell("notes:"))
        for note in conversion.notes:
            out.print(render.cell(f"  - {note}"))
    if verdict:
        out.print(render.cell(verdict))
        return
    files = report["files"]
    out.print(render.cell(f"wrote {len(files)} {render.plural(len(files), 'file')} in {conversion.directory}: "
                          + ", ".join(os.path.basename(f) for f in files)))
    lines = ", ".join(str(j.entry.line) for j in conversion.jobs)
    if done is None:
        where = "the crontab (crontab -e)" if not conversion.system else conversion.label
        out.print(render.cell(f"next: jobctl validate and jobctl plan{' --system' if conversion.system else ''}; "
                              f"then take line{'s' if len(conversion.jobs) != 1 else ''} {lines} out of {where} "
                              "before jobctl apply, or they run twice (jobctl import --adopt does both in one step)"))
        return
    render.apply_summary(done.outcome)
    out.print(render.cell(f"took line{'s' if len(done.lines) != 1 else ''} {', '.join(map(str, done.lines))} out of "
                          f"{done.source}; the text before is kept in {done.backup}; jobctl uninstall"
                          f"{' --system' if conversion.system else ''} --restore puts it back"))
