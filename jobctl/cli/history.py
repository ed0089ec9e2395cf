"""The run log: `jobctl history` (past and running runs) and `logs` (a run's output)."""

from __future__ import annotations

import re
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import Json
from jobctl.errors import JobctlError, UnknownJob

if TYPE_CHECKING:
    import sqlite3

    from jobctl.store import Store

app = common.commands()

#: what `history --limit` accepts: a bound that keeps the query and the table finite
HISTORY_LIMIT_MAX = 1_000_000
#: run ids are SQLite rowids: positive 64-bit integers
RUN_ID_MAX = 2**63 - 1
#: what `logs NAME --run` picks
LOGS_RUNS = ("output", "latest")
#: the line `logs` ends with when the run did not end by itself (timeout, killed, lost)
_ENDED_BY = ("timeout", "killed", "lost")


def _since(text: str) -> float:
    """--since: a duration ago (2h, 1d) or a local date/time (2026-11-01, 2026-11-01T08:00)."""
    from datetime import datetime

    from jobctl.units import parse_duration

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


def _limit(value: int) -> int:
    if not 1 <= value <= HISTORY_LIMIT_MAX:
        raise typer.BadParameter(f"{value} is out of range; use 1..{HISTORY_LIMIT_MAX:,}")
    return value


#: spec.NAME_RE (tests/test_read_fast.py keeps them equal): importing jobctl.jobs.spec, with the
#: schedule parser and the key table, cost `history` and `logs` ~13 ms of their ~100
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}\Z")


def _job_name(value: str, what: str) -> str:
    """A job name as the run log can hold it (spec.NAME_RE), or a usage error naming ``what`` was expected."""
    if not _NAME_RE.match(value):
        raise typer.BadParameter(f"{value!r} is not {what}")
    return value


@app.command(epilog="Examples:\n\n  jobctl history\n\n  jobctl history backup --limit 5\n\n"
             "  jobctl history --status failed --since 1d --json | jq -r '.[].job'")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", callback=_limit,
                                       help=f"How many runs, newest first (1..{HISTORY_LIMIT_MAX:,}).")] = 20,
    status: Annotated[str | None, typer.Option("--status", "-s", metavar="STATUS",
                                               help="Only runs with this status.")] = None,
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
    log = common.open_log(common.state())
    rows = log.history(name, limit, status, since_ts) if log else []
    if json_out:
        render.print_json([store.run_record(r) for r in rows])
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


def _known_jobs(log: Store | None) -> list[str]:
    """Job names `logs` can suggest: those with runs, and the applied ones."""
    from jobctl import applied

    names = log.jobs() if log is not None else []
    try:
        names += applied.names(common.state_path())
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
    log = common.open_log(common.state())
    row = None
    if log is not None:
        if run_id is not None:
            row = log.get(run_id)
        elif which == "latest":
            row = log.latest(target)
        else:  # the latest run that printed something, else the latest that started (not a skip)
            row = log.latest_with_output(target)
            if row is None:
                row = log.last_started(target)
    if row is None:
        if run_id is not None:
            common.fail(JobctlError(f"no run {run_id}"))
        row = log.latest(target) if log is not None else None  # only skips, which have no output
        if row is None:
            known = _known_jobs(log)
            # a job it knows (applied, or with runs of other kinds) has simply not run yet: suggest nothing
            common.fail(UnknownJob(f"no runs of {target!r} yet" if target in known
                                   else f"no runs of {target!r}{common.did_you_mean(target, known)}"))
    assert log is not None  # the row was found in it
    if run_id is None and which == "output":
        newest = log.latest(target)
        if newest is not None and newest["id"] != row["id"]:
            later = log.runs_after(target, row["id"])
            print(f"jobctl: run {row['id']} ({row['status']}, started {render.local(row['started_at'])}); "
                  f"{later} later run{'s have' if later != 1 else ' has'} no output "
                  f"(jobctl logs {target} --run latest shows the latest)",
                  file=sys.stderr)
    if row["status"] == "skipped":
        why = (row["reason"] or "").removeprefix("skipped: ") or "no reason recorded"
        print(f"jobctl: run {row['id']} was skipped ({render.printable(why)}); a skip starts no process and has "
              "no output", file=sys.stderr)
    _write_output(row, log.output(row["id"]), raw)


def _write_output(row: sqlite3.Row, out: tuple[bytes, bytes, int] | None, raw: bool) -> None:
    """The run's output on stdout (escaped on a terminal unless ``raw``), its notifications on stderr."""
    from jobctl.read import render

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
