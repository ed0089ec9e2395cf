"""A run by hand: `jobctl run`, and `jobctl backfill` (a run per past slot), through the wrapper cron uses."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir
from jobctl.errors import ExitCode, JobctlError

if TYPE_CHECKING:
    from jobctl.jobs.loader import Loaded

app = common.commands()


def applied_definition(state: str, name: str, loaded: Loaded) -> dict[str, Any] | None:
    """`run` from any directory: NAME's applied definition when the jobs directory read has no usable file for it.

    Used when the directory cannot be read, has no job NAME, or has problems
    while NAME was last applied from another directory; None otherwise (the
    job files decide).
    """
    from jobctl import applied

    current = applied.read(state, name) if os.path.isdir(state) else None
    if current is None:
        return None
    directory, result = loaded.directory, loaded.result
    if result is None:
        why = f"{directory} cannot be read"
    elif result.problems:
        came_from = applied.jobs_dir_of(current)
        if not came_from or applied.same_dir(came_from, directory):
            return None
        why = f"{directory} has problems (jobctl validate)"
    elif any(j.name == name for j in result.jobs):
        return None
    else:
        why = f"{directory} has no job {name}"
    where = applied.jobs_dir_of(current)
    print(f"jobctl: note: {why}; running the applied definition of {name}"
          + (f" (applied from {where})" if where else ""), file=sys.stderr)
    return current


@app.command(epilog="Examples:\n\n  jobctl run backup\n\n  jobctl run backup --quiet; echo \"exit $?\"\n\n"
             "  jobctl run backup --detach   # prints the run id, returns at once\n\n"
             "  jobctl run report -p customer=42")
def run(
    name: Annotated[str, typer.Argument(help="The job to run now.")],
    jobs_dir: JobsDir = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the run in the background; print its id.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print nothing: neither the job's output nor the progress lines (attempt 2/3 after "
                              "2s) and the final summary line; the exit code and the run log still say what "
                              "happened.")] = False,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="KEY=VALUE",
        help="A parameter the job declares (params:); repeat for more. The job gets it as JOBCTL_PARAM_KEY, "
             "never inside a shell string.")] = None,
) -> None:
    """Run a job now through the same wrapper cron uses, and record it.

    Uses the definition in the job files (and says so when it differs from the
    applied one); when the jobs directory has no file for the job (run from
    another directory), the applied definition, as cron runs it.  Exits with
    the job's exit code: 124 timed out, 75 skipped (concurrency: forbid),
    128+N killed by signal N, 125 jobctl itself failed.
    """
    from jobctl import applied
    from jobctl.install import compile
    from jobctl.jobs import loader
    from jobctl.runner import wrapper

    loaded = loader.read(jobs_dir)
    state = common.state_path(ExitCode.RUN_FAILED)
    defn = applied_definition(state, name, loaded)
    if defn is None:
        jobs = common.valid_jobs(loaded, ExitCode.RUN_FAILED)
        job = common.find(jobs, name, loaded.directory, ExitCode.RUN_FAILED, tuple(applied.names(state)))
        state = common.state(ExitCode.RUN_FAILED)  # as documented: 125, jobctl failed before the job could run
        defn = compile.definition(job)
        current = applied.read(state, name)
        if current is None:
            unusable = applied.load(state, name)[1] is not None  # warned about by read
            print(f"jobctl: note: {name} {'has no usable applied definition' if unusable else 'is not applied'}; "
                  f"running the definition in {job.source}", file=sys.stderr)
        elif applied.differs(current, defn):
            changed = ", ".join(applied.differs(current, defn))
            print(f"jobctl: note: running the definition in {job.source}, which differs from the applied one "
                  f"({changed}); run jobctl apply to install it", file=sys.stderr)
    else:
        state = common.state(ExitCode.RUN_FAILED)
    from jobctl import params

    try:
        given = params.parse_pairs(param or [])
        params.resolve(name, defn.get("params") or {}, given)  # refused here, before anything runs
    except params.BadParams as exc:
        common.fail(JobctlError(str(exc), ExitCode.USAGE))
    if detach:
        print(_detach(defn, state, given))
        return
    out = sys.stdout.buffer

    def sink(chunk: bytes) -> None:
        out.write(chunk)
        out.flush()

    # not streamed, the wrapper prints neither the output nor its progress and summary lines
    code = wrapper.execute(defn, state, trigger="manual", stream=not quiet, sink=sink, params=given)
    raise typer.Exit(code)


def _detach(defn: dict[str, Any], state: str, given: dict[str, str]) -> str:
    """Start the run in a new session; its run id, once the wrapper has recorded the start."""
    import json
    import subprocess

    from jobctl import paths
    from jobctl.runner import cmdline

    r, w = os.pipe()
    argv = cmdline.detached_argv(state, defn["name"], w)
    if given:
        argv[-1:-1] = ["--params", json.dumps(given)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(w,), start_new_session=True, cwd="/",
    )
    os.close(w)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(defn).encode())
    proc.stdin.close()
    with os.fdopen(r, "rb") as fh:
        line = fh.readline().strip()
    if not line:
        common.fail(JobctlError(f"the detached run did not start; see {os.path.basename(paths.errors_log(state))} "
                         "in the state directory", ExitCode.RUN_FAILED))
    if line == b"0":
        return "0 (not recorded: the run log is unusable)"
    return line.decode()


@app.command(epilog="Examples:\n\n  jobctl backfill report --since 2026-11-01 --until 2026-12-01\n\n"
             "  jobctl backfill report --since 2d --dry-run\n\n"
             "  jobctl backfill report --since 2026-11-30T00:00Z --force --json")
def backfill(
    name: Annotated[str, typer.Argument(help="The applied job to backfill.")],
    since: Annotated[str, typer.Option("--since", help="First time of the range (included): ISO 8601 (a time "
                                       "without Z or offset is in the job's time zone), now, or a duration ago "
                                       "(2d).")],
    until: Annotated[str, typer.Option("--until", help="End of the range (excluded); default now.")] = "now",
    force: Annotated[bool, typer.Option("--force", help="Run slots that already have a succeeded run too.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the slots and what would run; run nothing.")]
    = False,
    limit: Annotated[int, typer.Option("--max", min=1, help="Refuse a range of more slots than this.")] = 10_000,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON (fields in jobctl(1)).")] = False,
) -> None:
    """Run a job once for each of its scheduled times in a range, oldest first.

    Each slot runs through the wrapper (trigger backfill, scheduled_for the
    slot, JOBCTL_SCHEDULED_FOR/JOBCTL_SLOT_START/JOBCTL_SLOT_END set), one after
    another; a slot with a succeeded run is skipped unless --force, so running
    the same command again after Ctrl-C goes on where it stopped.  Ctrl-C stops
    after the current slot; a second Ctrl-C stops that slot's run (SIGTERM).
    Exits 0 when every slot in the range has succeeded, 1 otherwise, 2 on a
    usage error.
    """
    from jobctl import applied, paths
    from jobctl.read import backfill as core

    state = common.state_path(ExitCode.ENVIRONMENT)
    defn = applied.read(state, name) if os.path.isdir(state) else None
    if defn is None:
        common.fail(JobctlError(f"{name} is not applied: backfill runs applied jobs; run jobctl apply",
                                ExitCode.NOT_OK))
    now = time.time()
    try:
        start = core.parse_time(since, "--since", defn["timezone"], now)
        end = core.parse_time(until, "--until", defn["timezone"], now)
        if end > now + 1:
            raise JobctlError(f"--until {until!r} is in the future ({core.iso(end)}); a backfill runs past slots "
                              "only", ExitCode.USAGE)
        log = common.open_log(state) if os.path.exists(paths.runs_db(state)) else None
        the_plan = core.plan(dict(defn), log, start, end, force, limit)
    except JobctlError as exc:
        common.fail(exc)
    except (OverflowError, ValueError, OSError) as exc:  # a time past what the calendar functions take
        common.fail(JobctlError(f"--since/--until: a time out of range ({exc}); give times from 1970 on",
                                ExitCode.USAGE))
    if dry_run:
        _backfill_report(the_plan, {}, json_, dry_run=True, interrupted=False)
        raise typer.Exit(0 if not the_plan.to_run else 1)
    import fcntl

    # one backfill of a job at a time: two would plan the same slots and run each twice
    os.makedirs(os.path.dirname(paths.backfill_lock(state, name)), mode=0o700, exist_ok=True)
    guard = os.open(paths.backfill_lock(state, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        common.fail(JobctlError(f"another jobctl backfill of {name} is running; wait for it to end (or stop it), "
                                "then run this one: it goes on where that one stopped", ExitCode.NOT_OK))
    results = _backfill_run(state, the_plan, log, json_, force)
    raise typer.Exit(0 if all(r.get("status") == "succeeded" for r in results.values())
                     and len(results) == len(the_plan.to_run) else 1)


def _backfill_run(state: str, the_plan: Any, log: Any, json_: bool, force: bool) -> dict[float, dict[str, Any]]:
    """Each slot still to run through the wrapper, one at a time; Ctrl-C stops after the current one."""
    import signal
    import subprocess

    from jobctl import paths
    from jobctl.read import backfill as core
    from jobctl.read import render
    from jobctl.runner import cmdline

    todo = the_plan.to_run
    results: dict[float, dict[str, Any]] = {}
    stop = {"asked": 0}
    child: dict[str, Any] = {"proc": None}
    console = render.console()
    fancy = console.is_terminal and not json_
    progress = None
    task: Any = None
    if fancy and todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[eta]}"), console=console, transient=False)
        task = progress.add_task(f"backfill {the_plan.job}", total=len(todo), eta="")

    def say(line: str) -> None:
        if json_:
            return
        if progress is not None:
            progress.console.print(line)
        else:
            print(line, flush=True)

    def interrupt(signum: int, frame: Any) -> None:
        stop["asked"] += 1
        proc = child["proc"]
        if stop["asked"] == 1:
            say("jobctl: stopping after the current slot (Ctrl-C again to stop it now)")
        elif proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)  # the wrapper stops its job as a timeout would and records it
            except OSError:
                pass

    def eta(left: int, elapsed: list[float]) -> str:
        # the job's usual duration (median of its recent successful runs); without one, this backfill's own
        usual = the_plan.usual if the_plan.usual is not None else (_median(elapsed) if elapsed else None)
        return f"ETA {render.duration(usual * left)}" if usual is not None and left else ""

    previous = signal.signal(signal.SIGINT, interrupt)
    elapsed: list[float] = []
    try:
        if progress is not None:
            progress.start()
            progress.update(task, eta=eta(len(todo), elapsed))
        if the_plan.done:
            say(f"{len(the_plan.done)} of {len(the_plan.slots)} slots already succeeded: skipped (--force runs them)")
        for i, slot in enumerate(todo):
            if stop["asked"]:
                break
            if log is not None and not force and _slot_taken(log, the_plan.job, slot, stop):
                # cron, catch-up or a run by hand made it meanwhile: once is enough
                results[slot] = {"scheduled_for": core.iso(slot), "status": "succeeded", "exit_code": 0,
                                 "run_id": None, "duration_s": 0.0, "already": True}
                if progress is not None:
                    progress.update(task, advance=1, eta=eta(len(todo) - i - 1, elapsed))
                else:
                    say(f"{core.iso(slot)} succeeded meanwhile (another run): skipped [{i + 1}/{len(todo)}]")
                continue
            began = time.monotonic()
            proc = subprocess.Popen(cmdline.backfill_run_argv(state, the_plan.job, slot), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                                    cwd="/")
            child["proc"] = proc
            _, err = proc.communicate()
            child["proc"] = None
            elapsed.append(time.monotonic() - began)
            row = None
            if log is None and os.path.exists(paths.runs_db(state)):
                log = common.open_log(state)
            if log is not None:
                rows = log.scheduled_runs(the_plan.job, slot, slot + 1)
                rows = [r for r in rows if r["trigger"] in ("backfill", "retry")]
                row = rows[-1] if rows else None
            status = row["status"] if row is not None else ("succeeded" if proc.returncode == 0 else "failed")
            results[slot] = {"scheduled_for": core.iso(slot), "status": status, "exit_code": proc.returncode,
                             "run_id": row["id"] if row is not None else None,
                             "duration_s": round(elapsed[-1], 3)}
            for text in err.decode("utf-8", "replace").splitlines():
                say(render.printable(text))
            if progress is not None:
                progress.update(task, advance=1, eta=eta(len(todo) - i - 1, elapsed))
            else:
                say(f"{core.iso(slot)} {status} (exit {proc.returncode}, {render.duration(elapsed[-1])}) "
                    f"[{i + 1}/{len(todo)}]")
    finally:
        signal.signal(signal.SIGINT, previous)
        if progress is not None:
            progress.stop()
    _backfill_report(the_plan, results, json_, dry_run=False, interrupted=bool(stop["asked"]))
    return results


def _median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values))


def _slot_taken(log: Any, job: str, slot: float, stop: dict[str, int]) -> bool:
    """Whether a run of ``slot`` succeeded since the plan, waiting while one is still running (bounded by its end)."""
    from jobctl.runner import host

    here = os.uname().nodename
    while True:
        rows = log.scheduled_runs(job, slot, slot + 1)
        if any(r["status"] == "succeeded" for r in rows):
            return True
        # a run of this slot under way on this host (cron's, a catch-up's) decides; one whose wrapper is gone
        # will never end (it becomes lost), and one of another host cannot be watched from here
        live = [r for r in rows if r["status"] == "running" and r["host"] == here
                and r["wrapper_pid"] and host.alive(r["wrapper_pid"])]
        if stop["asked"] or not live:
            return False
        time.sleep(1.0)


def _backfill_report(the_plan: Any, results: dict[float, dict[str, Any]], json_: bool, dry_run: bool,
                     interrupted: bool) -> None:
    """The closing lines (or the JSON object) of a backfill."""
    from jobctl.read import backfill as core
    from jobctl.read import render

    rows = []
    for slot in the_plan.slots:
        if slot in results:
            rows.append(results[slot])
        elif slot in the_plan.done:
            rows.append({"scheduled_for": core.iso(slot), "status": "done", "exit_code": None, "run_id": None,
                         "duration_s": None})
        else:
            rows.append({"scheduled_for": core.iso(slot), "status": "pending", "exit_code": None, "run_id": None,
                         "duration_s": None})
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if json_:
        render.print_json({"job": the_plan.job, "since": core.iso(the_plan.since), "until": core.iso(the_plan.until),
                           "dry_run": dry_run, "interrupted": interrupted, "slots": rows, "counts": counts})
        return
    if dry_run:
        for r in rows:
            print(f"{r['scheduled_for']}  {'skip (succeeded)' if r['status'] == 'done' else 'run'}")
        usual = the_plan.usual
        took = f", about {render.duration(usual * len(the_plan.to_run))}" if usual is not None else ""
        print(f"{the_plan.job}: {len(the_plan.slots)} slots, {len(the_plan.to_run)} to run{took} (dry run: "
              "nothing ran)")
        return
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    ran = len(results)
    head = "interrupted" if interrupted else "done"
    print(f"backfill {the_plan.job} {head}: {len(the_plan.slots)} slots from {core.iso(the_plan.since)} to "
          f"{core.iso(the_plan.until)}: {parts}; {ran} run now")
    if interrupted and any(r["status"] == "pending" for r in rows):
        print("run the same command again to go on where it stopped")
