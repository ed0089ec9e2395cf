"""Run requests: `jobctl submit`, `queue`, `cancel` and `wait` (the queue is jobctl.runner.requests)."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from jobctl.cli import common
from jobctl.errors import ExitCode, JobctlError

app = common.commands()

#: 9999-01-01T00:00Z: --at takes times up to 9998, and so does --in
LAST_DUE = 253370764800.0

Params = Annotated[list[str] | None, typer.Option(
    "--param", "-p", metavar="KEY=VALUE",
    help="A parameter the job declares (params:); repeat for more. The job gets it as JOBCTL_PARAM_KEY.")]


def _applied(state: str, name: str) -> dict[str, Any]:
    """NAME's applied definition: requests run what cron runs, not the job files as they are now."""
    from jobctl import applied

    defn = applied.read(state, name)
    if defn is None:
        known = applied.names(state)
        hint = f"; applied jobs: {', '.join(known[:10])}" if known else "; run jobctl apply first"
        common.fail(JobctlError(f"no applied job named {name!r}{hint}", ExitCode.NOT_OK))
    return defn


def _ensure_pass(state: str) -> None:
    """The every-minute pass starts what is due later and what a crash kept from starting: install it if missing.

    The request is recorded whatever happens here; a crontab that cannot be
    changed is one line on stderr (the request then waits for jobctl apply).
    """
    import os

    from jobctl.install import crontab

    targets = []
    for system in ((True, False) if os.geteuid() == 0 else (False,)):
        try:
            targets.append(crontab.target(system))
        except JobctlError:
            continue
    try:
        outcome = crontab.ensure_pass(state, targets)
    except (JobctlError, OSError) as exc:
        print(f"jobctl: note: the every-minute pass could not be installed ({exc}); a request that does not "
              "start now waits for the next jobctl apply", file=sys.stderr)
        return
    if outcome == "no block":
        print("jobctl: note: no crontab holds jobctl's block for this state directory (jobctl apply), so the "
              "every-minute pass is not installed: a request that does not start now, or that a crash keeps "
              "from starting, waits until it is (jobctl apply)", file=sys.stderr)


def _when(at: str | None, within: str | None, now: float, zone: str | None) -> float | None:
    from jobctl import units
    from jobctl.read.backfill import parse_time

    if at is not None and within is not None:
        common.fail(JobctlError("give --at or --in, not both", ExitCode.USAGE))
    if within is not None:
        try:
            due = now + units.parse_duration(within)
        except (ValueError, OverflowError) as exc:
            common.fail(JobctlError(f"--in {within!r}: {exc}", ExitCode.USAGE))
        if due >= LAST_DUE:
            common.fail(JobctlError(f"--in {within!r}: past the year 9998; give a time up to then", ExitCode.USAGE))
        return due
    if at is None:
        return None
    try:
        units.parse_duration(at.strip())
    except (ValueError, OverflowError):
        pass
    else:
        common.fail(JobctlError(f"--at {at!r} is a duration; --at takes a time (2026-12-24T06:00), --in a "
                                f"duration from now (--in {at.strip()})", ExitCode.USAGE))
    try:
        return parse_time(at, "--at", zone, now)
    except JobctlError as exc:
        common.fail(exc)


@app.command(epilog="Examples:\n\n  jobctl submit newsletter -p list=customers\n\n"
             "  jobctl submit report -p customer=42 --key report-42 --json\n\n"
             "  jobctl submit reindex --at 2026-12-24T06:00 -p index=orders\n\n"
             "  id=$(jobctl submit export -p day=2026-12-01) && jobctl wait \"$id\" --timeout 1h")
def submit(
    name: Annotated[str, typer.Argument(help="The (applied) job to run.")],
    param: Params = None,
    at: Annotated[str | None, typer.Option("--at", metavar="TIME", help=(
        "Run at this time (ISO 8601; without Z or an offset, in the job's time zone) instead of now; "
        "a time past runs at once."))] = None,
    within: Annotated[str | None, typer.Option("--in", metavar="DURATION", help=(
        "Run this long from now (90s, 15m, 2h)."))] = None,
    key: Annotated[str | None, typer.Option("--key", help=(
        "Idempotency key: while a request of the job with this key is queued or running, submitting again "
        "prints its id and records nothing."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the request as JSON.")] = False,
) -> None:
    """Queue a run of a job, with parameters, now or later; print the request's id at once.

    The request is recorded in the run log (synced) before the id is printed,
    so it survives a crash or a reboot: the catch-up pass starts any request
    that is due and has not run, once, in submit order.  A request due now
    starts at once in the background.  Exit 0 when recorded (or found by
    --key); 1 when the job is not applied or its queue holds max_queued
    requests; 2 for parameters the job does not accept or bad times.
    """
    from jobctl import params
    from jobctl.read import render
    from jobctl.runner import requests

    state = common.state()
    defn = _applied(state, name)
    try:
        given = params.parse_pairs(param or [])
    except params.BadParams as exc:
        common.fail(JobctlError(str(exc), ExitCode.USAGE))
    now = time.time()
    due = _when(at, within, now, defn.get("timezone"))
    try:
        request_id, existing, _ = requests.submit(state, defn, given, due, key, now)
    except requests.Refused as exc:
        code = ExitCode.NOT_OK if "max_queued" in str(exc) else ExitCode.USAGE
        common.fail(JobctlError(str(exc), code))
    if existing:
        print(f"jobctl: request {request_id} of job {name} with key {key!r} is already queued or running; "
              "nothing new was recorded", file=sys.stderr)
    else:
        _ensure_pass(state)
    if as_json:
        from jobctl import paths, store

        log = store.connect(paths.runs_db(state), build_indexes=False)
        try:
            row = log.request(request_id)
        finally:
            log.close()
        record = requests.record(row)
        record["existing"] = existing
        render.print_json(record)
    else:
        # one write: scripts submitting in parallel share a pipe, and print() writes the newline apart
        sys.stdout.write(f"{request_id}\n")
        sys.stdout.flush()


@app.command(epilog="Examples:\n\n  jobctl queue\n\n  jobctl queue newsletter --json")
def queue(
    name: Annotated[str | None, typer.Argument(help="Only this job's requests.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the requests as a JSON array.")] = False,
) -> None:
    """Pending requests, oldest first: queued and running (id, job, params, due, key, age)."""
    from jobctl import paths, store
    from jobctl.read import render
    from jobctl.runner import requests

    state = common.state_path()
    try:
        log = store.connect(paths.runs_db(state), create=False, build_indexes=False)
    except FileNotFoundError:
        rows = []
    except Exception as exc:  # noqa: BLE001 - sqlite3.Error, OSError: one line
        common.fail(JobctlError(f"run log unreadable: {exc}", ExitCode.ENVIRONMENT))
    else:
        try:
            rows = log.requests(name)
        finally:
            log.close()
    now = time.time()
    records = [requests.record(r, now) for r in rows]
    if as_json:
        render.print_json(records)
        return
    _print_requests(records)


def _age(seconds: float) -> str:
    from jobctl import units

    return units.format_duration(int(seconds)) if seconds >= 1 else "0s"


def _print_requests(records: list[dict[str, Any]]) -> None:
    """One line a request, in columns; the parameters as KEY=VALUE (shell-quoted where needed)."""
    import shlex

    if not records:
        print("no pending requests")
        return
    head = ("ID", "JOB", "STATUS", "DUE (UTC)", "AGE", "KEY", "PARAMS")
    rows = [(str(r["id"]), r["job"], r["status"], (r["due"] or "")[:-5].replace("T", " "), _age(r["age_s"]),
             r["key"] or "-",
             " ".join(f"{k}={shlex.quote(v)}" for k, v in (r["params"] or {}).items()) or "-") for r in records]
    widths = [max(len(h), *(len(common.printable(row[i])) for row in rows)) for i, h in enumerate(head)]
    for row in (head, *rows):
        print("  ".join(common.printable(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@app.command(epilog="Examples:\n\n  jobctl cancel 42")
def cancel(request_id: Annotated[int, typer.Argument(metavar="ID", help="The request to cancel.")]) -> None:
    """Cancel a queued request (recorded cancelled); a request already running or over is left as it is (exit 1)."""
    from jobctl import paths, store

    state = common.state_path()
    try:
        log = store.connect(paths.runs_db(state), create=False, build_indexes=False)
    except FileNotFoundError:
        common.fail(JobctlError(f"no request {request_id}: the run log is empty", ExitCode.NOT_OK))
    try:
        row, cancelled = log.cancel(request_id, time.time())
    except OverflowError:
        row, cancelled = None, False
    finally:
        log.close()
    if row is None:
        common.fail(JobctlError(f"no request {request_id}", ExitCode.NOT_OK))
    if not cancelled:
        common.fail(JobctlError(f"request {request_id} of job {row['job']} is {row['status']}, not queued; "
                                "only a queued request can be cancelled", ExitCode.NOT_OK))
    print(f"request {request_id} of job {row['job']} cancelled")


@app.command(epilog="Examples:\n\n  jobctl wait 42\n\n  jobctl wait 42 --timeout 30m; echo \"exit $?\"")
def wait(
    request_id: Annotated[int, typer.Argument(metavar="ID", help="The request (jobctl submit's id).")],
    timeout: Annotated[str | None, typer.Option("--timeout", metavar="DURATION", help=(
        "Give up after this long: exit 124, the request left as it is."))] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the request as JSON when it ends.")] = False,
) -> None:
    """Block until a request's run ends; exit with its exit code, as timeout(1) and kubectl wait do.

    Exit 124 when --timeout passes first, 75 when the request was skipped
    (concurrency: forbid), 1 when it was cancelled or lost before it ran or
    there is no such request.
    """
    from jobctl import units
    from jobctl.read import render
    from jobctl.runner import requests

    seconds = None
    if timeout is not None:
        try:
            seconds = float(units.parse_duration(timeout))
        except (ValueError, OverflowError) as exc:
            common.fail(JobctlError(f"--timeout {timeout!r}: {exc}", ExitCode.USAGE))
    state = common.state_path()
    try:
        code, row, timed_out = requests.wait(state, request_id, seconds)
    except (LookupError, FileNotFoundError, OverflowError):
        common.fail(JobctlError(f"no request {request_id}", ExitCode.NOT_OK))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if as_json:
        render.print_json(requests.record(row))
    elif timed_out:
        print(f"jobctl: request {request_id} is still {row['status']} after {timeout}", file=sys.stderr)
    elif row["status"] != "done" or code != 0:
        print(f"jobctl: request {request_id} {row['status']}: {common.printable(row['reason'] or '')}",
              file=sys.stderr)
    raise typer.Exit(code)
