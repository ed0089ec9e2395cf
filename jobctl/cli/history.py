"""The run log: `jobctl history` (past and running runs) and `logs` (a run's output)."""

from __future__ import annotations

import os
import re
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jobctl.cli import common
from jobctl.cli.options import Json
from jobctl.errors import JobctlError, UnknownJob

if TYPE_CHECKING:
    import sqlite3

    from jobctl.runner.process import SpoolReader
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
             "  jobctl history etl --tree   # etl's runs, each with the runs it started\n\n"
             "  jobctl history --status failed --since 1d --json | jq -r '.[].job'\n\n"
             "  jobctl history backup --json | jq '.[] | select(.judged == \"slow\") | .id'")
def history(
    name: Annotated[str | None, typer.Argument(help="Only this job's runs.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", callback=_limit,
                                       help=f"How many runs, newest first (1..{HISTORY_LIMIT_MAX:,}).")] = 20,
    status: Annotated[str | None, typer.Option("--status", "-s", metavar="STATUS",
                                               help="Only runs with this status.")] = None,
    since: Annotated[str | None, typer.Option(help="Only runs started since: 2h, 1d, 2026-11-01.")] = None,
    tree: Annotated[bool, typer.Option(
        "--tree", help="With NAME: each run (--limit, --status and --since choose them) with the runs its then and "
                       "on_failure started beneath it, and theirs beneath those (trigger chain); PARENT is the "
                       "status of the run that started it. --json nests them in each record's children.")] = False,
    json_out: Json = False,
) -> None:
    """Past and running runs, newest first.

    A run much slower or shorter than its job's usual duration (the median
    of its successful runs before it; the job's baseline key) is marked
    slow or short after its duration, as the wrapper judged it when the run
    ended; --json has judged and usual_s.  Reasons and names are shown as
    text: control characters appear escaped (ESC as \\x1b); --json has them
    as they are.
    """
    from jobctl import store
    from jobctl.read import render

    if name is not None:
        _job_name(name, "a job name")
    elif tree:
        raise typer.BadParameter("a chain is shown from a job's runs: jobctl history NAME --tree", param_hint="--tree")
    if status is not None and status not in store.STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(store.STATUSES)}", param_hint="--status")
    since_ts = _since(since) if since else None
    state = common.state()
    log = common.open_log(state)
    rows = log.history(name, limit, status, since_ts) if log else []
    roots = _chains(log, rows) if tree and log is not None else []
    shown = [node.row for node in _walk(roots)] if tree else rows
    usual = _Usual(log, state).of(shown) if log is not None else {}
    if json_out:
        if tree:
            render.print_json(_tree_records(roots, usual))
        else:
            render.print_json([_record(r, usual) for r in rows])
    elif rows:
        judged = {run_id: verdict for run_id, (verdict, _) in usual.items()}
        if tree:
            render.history_tree(roots, judged=judged)
        else:
            render.history_table(rows, judged=judged)
    else:
        print("no runs" + (f" of {name}" if name else ""), file=sys.stderr)


class _Usual:
    """Each run's judgement against its job's usual duration, as the wrapper made it when the run ended.

    The wrapper judges a run by the durations of the job's latest
    ``baseline.runs`` successful runs before it (store.durations with
    ``before``, jobctl.baseline.judge); so does this, for the runs shown,
    with the job's applied baseline settings.  Not one query a run: each
    job's successes are read once, newest first, as far back as the oldest
    run shown needs, and each run takes the slice before its id.  Retention
    may since have pruned runs the wrapper saw, and the settings may have
    changed: then the two can differ.
    """

    def __init__(self, log: Store, state: str) -> None:
        self.log = log
        self.state = state

    def settings(self, job: str) -> dict[str, Any]:
        """The job's baseline settings from its applied definition, as status's baseline_settings reads them."""
        from jobctl import applied, baseline

        defn, _ = applied.load(self.state, job)  # a broken file: the defaults, as for a job not applied
        cfg = defn.get("baseline") if defn is not None else None
        return baseline.settings(cfg if isinstance(cfg, dict) else None)

    def successes(self, job: str, lowest: int, count: int, runs: int) -> list[tuple[int, float]]:
        """(id, duration) of the job's successful runs, newest first, down to ``runs`` of them older than ``lowest``.

        store.history's newest successes: ``count`` at first (enough when the
        runs shown are the job's newest), twice as many until the list goes
        back far enough or holds every success of the job.
        """
        while True:
            found = self.log.history(job, count, "succeeded")
            older = sum(1 for r in found if r["id"] < lowest and r["duration_s"] is not None)
            if len(found) < count or older >= runs:
                break
            count *= 2
        return [(r["id"], r["duration_s"]) for r in found if r["duration_s"] is not None]

    def of(self, rows: list[sqlite3.Row]) -> dict[int, tuple[str | None, Any]]:
        """{run id: (its judgement, "slow", "short" or None; the usual duration it was judged by, or None)}."""
        from bisect import bisect_right

        from jobctl import baseline

        by_job: dict[str, list[sqlite3.Row]] = {}
        for r in rows:
            by_job.setdefault(r["job"], []).append(r)
        out: dict[int, tuple[str | None, Any]] = {}
        for job, runs in by_job.items():
            cfg = self.settings(job)
            lowest = min(r["id"] for r in runs)
            found = self.successes(job, lowest, cfg["runs"] + len(runs), cfg["runs"])
            below = [-run_id for run_id, _ in found]  # ascending: bisect finds the first success older than a run
            for r in runs:
                first = bisect_right(below, -r["id"])
                u = baseline.usual([d for _, d in found[first:first + cfg["runs"]]], cfg)
                out[r["id"]] = (baseline.judge(r["status"], r["duration_s"], u, cfg), u)
        return out


def _record(row: sqlite3.Row, usual: dict[int, tuple[str | None, Any]]) -> dict[str, Any]:
    """A run as `history --json` shows it: the run record, then judged and usual_s."""
    from jobctl import store

    verdict, u = usual.get(row["id"], (None, None))
    return {**store.run_record(row), "judged": verdict, "usual_s": None if u is None else round(u.median, 3)}


class _Node:
    """A run in a chain: its row, the nodes of the runs it started, and the PARENT cell's text."""

    __slots__ = ("children", "parent", "row")

    def __init__(self, row: sqlite3.Row, parent: str) -> None:
        self.row = row
        self.children: list[_Node] = []
        self.parent = parent


def _chains(log: Store, rows: list[sqlite3.Row]) -> list[_Node]:
    """A node per run of ``rows``, with the runs its then/on_failure started beneath it, recursively.

    One indexed query a run shown (store.children).  A run is shown once:
    a run log edited into a loop of parents ends where it comes back.
    """
    roots = []
    for r in rows:
        parent = ""
        if r["parent_run_id"]:  # started by a run of another job's chain: which one
            up = log.get(r["parent_run_id"])
            parent = f"#{r['parent_run_id']}" + (f" {up['job']} {up['status']}" if up is not None else " (pruned)")
        roots.append(_Node(r, parent))
    seen = {r["id"] for r in rows}
    stack = list(roots)
    while stack:
        node = stack.pop()
        for child in log.children(node.row["id"]):
            if child["id"] in seen:
                continue
            seen.add(child["id"])
            kid = _Node(child, node.row["status"])
            node.children.append(kid)
            stack.append(kid)
    return roots


def _tree_records(roots: list[_Node], usual: dict[int, tuple[str | None, Any]]) -> list[dict[str, Any]]:
    """`history NAME --tree --json`: each root's record with ``children``, the records of the runs it started."""
    nodes = _walk(roots)
    records = {id(node): {**_record(node.row, usual), "children": []} for node in nodes}
    for node in nodes:
        records[id(node)]["children"] = [records[id(kid)] for kid in node.children]
    return [records[id(node)] for node in roots]


def _walk(roots: list[_Node]) -> list[_Node]:
    """Every node under ``roots``, roots too; without recursion, as a chain is as deep as it is long."""
    out, stack = [], list(roots)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.children)
    return out


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
             "  jobctl logs 1842 --raw   # on a terminal too: the job's colours, as it printed them\n\n"
             "  jobctl logs backup --follow   # its running run, live, then its result; exits with its exit code")
def logs(
    target: Annotated[str, typer.Argument(
        metavar="RUN_ID|NAME", help="A run id, or a job name for its latest run with output (see --run).")],
    raw: Annotated[bool, typer.Option(
        "--raw", help="Write the output byte for byte even on a terminal, escape sequences included "
                      "(piped output is always raw).")] = False,
    which: Annotated[str | None, typer.Option(
        "--run", metavar="WHICH", show_default=False,
        help="With NAME: 'output' (default), its latest run that printed something (else its latest run that "
             "started); 'latest', its latest run whatever it was, a skip too (the default with --follow).")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f",
        help="Show the output live while the run goes on (NAME: its running run, else its latest run), then "
             "its result line (as `jobctl run` ends) on stderr; exit with the run's exit code as `jobctl run` "
             "would (0, the job's code, 75 skipped, 124 timed out, 125 lost, 128+N killed). Ctrl-C stops "
             "following, not the run.")] = False,
) -> None:
    """Print the captured output of a run, with a marker where output was dropped.

    A run that did not end by itself ends with a marker line saying so
    ([... timed out after 5m ...]).  On a terminal, control characters and
    escape sequences in the output (and in notification errors) are shown
    escaped, ESC as \\x1b, so a job cannot drive your terminal; piped, or
    with --raw, the output is written byte for byte.

    With --follow, a run still going is shown as it prints (retries too),
    until it ends; a run that has ended is printed as without it.  Either
    way its result line comes last.
    """
    from jobctl.read import render

    if which is not None and which not in LOGS_RUNS:
        raise typer.BadParameter(f"use one of {', '.join(LOGS_RUNS)}", param_hint="--run")
    run_id = _run_id(target)
    state = common.state()
    log = common.open_log(state)
    row = _pick(log, target, run_id, which or ("latest" if follow else "output"), follow)
    assert log is not None  # the row was found in it
    if follow:
        raise typer.Exit(_follow(log, state, row, raw))
    if run_id is None and which in (None, "output"):
        newest = log.latest(target)
        if newest is not None and newest["id"] != row["id"]:
            later = log.runs_after(target, row["id"])
            print(f"jobctl: run {row['id']} ({row['status']}, started {render.local(row['started_at'])}); "
                  f"{later} later run{'s have' if later != 1 else ' has'} no output "
                  f"(jobctl logs {target} --run latest shows the latest)",
                  file=sys.stderr)
    if row["params"] or row["request_id"]:
        # the run's header, on stderr (stdout stays the job's output byte for byte)
        import shlex

        from jobctl import store

        values = store.run_record(row)["params"] or {}
        words = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(values.items()))
        print(f"jobctl: run {row['id']}" + (f" (request {row['request_id']})" if row["request_id"] else "")
              + (f": params {render.printable(words)}" if words else ""), file=sys.stderr)
    if row["status"] == "skipped":
        why = (row["reason"] or "").removeprefix("skipped: ") or "no reason recorded"
        print(f"jobctl: run {row['id']} was skipped ({render.printable(why)}); a skip starts no process and has "
              "no output", file=sys.stderr)
    _write_output(row, log.output(row["id"]), raw)


def _pick(log: Store | None, target: str, run_id: int | None, which: str, live_first: bool) -> sqlite3.Row:
    """The run `logs` shows: RUN_ID's, or NAME's per ``which`` (``live_first``: its newest running run first)."""
    row = None
    if log is not None:
        if run_id is not None:
            row = log.get(run_id)
        else:
            if live_first:
                running = log.running(target)
                row = running[-1] if running else None
            if row is None and which == "latest":
                row = log.latest(target)
            elif row is None:  # the latest run that printed something, else the latest that started (not a skip)
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
    return row


#: how often `logs --follow` looks at the spool, the run's row and its wrapper: no busy loop
FOLLOW_POLL_S = 0.2
#: at most this much output is copied between two looks at the run's row
_FOLLOW_BURST = 16 << 20
#: `logs --follow`'s exit code for a run jobctl lost track of (lost, or its wrapper died): as `run`'s 125
_EX_LOST = 125
_EX_SKIPPED = 75
_EX_INTERRUPTED = 130


class _Live:
    """Output as `logs` writes it (escaped on a terminal unless --raw), piece by piece as a run prints it.

    Tracks the output position written up to, so that what the spool did
    not carry (a late start, a cut, a spool that failed) comes from the
    run log once the run is recorded (``catch_up``).
    """

    def __init__(self, raw: bool) -> None:
        from jobctl.read import render

        self.stdout = sys.stdout.buffer
        self.tty = sys.stdout.isatty()
        self.escape = render.printable_output if not raw and self.tty else None
        self.pending = b""  # an incomplete UTF-8 character held back for the next piece (escaping only)
        self.last = b"\n"  # the last byte written

    def data(self, data: bytes) -> None:
        if not data:
            return
        if self.escape is not None:
            data, self.pending = _complete_utf8(self.pending + data)
            if not data:
                return
            self.stdout.write(self.escape(data))
        else:
            self.stdout.write(data)
        self.last = data[-1:]
        self.stdout.flush()

    def _flush_pending(self) -> None:
        if self.pending and self.escape is not None:
            self.stdout.write(self.escape(self.pending))
            self.last, self.pending = self.pending[-1:], b""

    def marker(self, text: str) -> None:
        """A line of jobctl's own between output: on a line of its own."""
        self._flush_pending()
        if self.last != b"\n":
            self.stdout.write(b"\n")
        self.stdout.write(f"[... {text} ...]\n".encode())
        self.last = b"\n"
        self.stdout.flush()

    def dropped(self, n: int) -> None:
        if n > 0:
            self.marker(f"{n} bytes of output dropped (output_limit)")

    def catch_up(self, pos: int, out: tuple[bytes, bytes, int] | None) -> None:
        """What the run log holds of output positions pos.. (its head and tail, and the count dropped between)."""
        head, tail, dropped = out or (b"", b"", 0)
        tail_at = len(head) + dropped  # the output position of the tail's first byte
        if pos < len(head):
            self.data(head[pos:])
            pos = len(head)
        if pos < tail_at:
            self.dropped(tail_at - pos)
            pos = tail_at
        if pos < tail_at + len(tail):
            self.data(tail[pos - tail_at:])

    def end(self) -> None:
        """Before the result line: the output's last line ended (on a terminal, where stderr joins it)."""
        self._flush_pending()
        if self.tty and self.last != b"\n":
            self.stdout.write(b"\n")
        self.stdout.flush()


def _complete_utf8(data: bytes) -> tuple[bytes, bytes]:
    """(the data up to an incomplete UTF-8 character at its end, that character's bytes so far)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for the lead byte
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
        return (data[:-back], data[-back:]) if back < need else (data, b"")
    return data, b""


def _exit_code(row: sqlite3.Row) -> int:
    """The exit code `jobctl run` gave (or would have given) for the run ``row`` ended with."""
    if row["status"] == "skipped":
        return _EX_SKIPPED
    if row["status"] in ("lost", "running") or row["exit_code"] is None:
        return _EX_LOST
    return int(row["exit_code"])


def _follow(log: Store, state: str, row: sqlite3.Row, raw: bool) -> int:
    """`logs --follow`: the run's output live (its retries too), then its result line; the run's exit code."""
    from jobctl.read import render
    from jobctl.runner import host, runlog

    name = row["job"]
    here = (os.uname().nodename, host.boot_id())
    live = _Live(raw)
    try:
        while True:
            local = (row["host"], row["boot_id"]) == here
            if row["status"] == "running":
                row = _follow_attempt(log, state, row, live, local)
            else:  # ended already: what the run log holds, as `logs` prints it
                live.catch_up(0, log.output(row["id"]))
            if row["status"] in _ENDED_BY:
                live.marker(render.printable(row["reason"] or row["status"]))
            nxt = _next_attempt(log, row, local)
            if nxt is None:
                break
            live.end()
            wait = max((nxt["started_at"] or 0) - (row["finished_at"] or nxt["started_at"] or 0), 0)
            of = _attempts(state, name, nxt["attempt"])
            print(f"jobctl: job {name}: attempt {nxt['attempt']}{f'/{of}' if of > 1 else ''} after "
                  f"{runlog.fmt_duration(wait)} (attempt {row['attempt']}: "
                  f"{render.printable(row['reason'] or row['status'])})", file=sys.stderr, flush=True)
            row = nxt
        live.end()
    except KeyboardInterrupt:
        live.end()
        print(f"jobctl: stopped following run {row['id']}; the run goes on "
              f"(jobctl logs {row['id']} --follow follows it again)", file=sys.stderr)
        return _EX_INTERRUPTED
    if row["status"] == "running":  # its wrapper died: nothing will record how it ends
        print(f"jobctl: job {name}: run {row['id']} is not recorded as ended but its wrapper (pid "
              f"{row['wrapper_pid']}) is gone, so it never will be; its processes still run, and it becomes "
              f"lost once they end", file=sys.stderr)
        return _EX_LOST
    started = log.run_started_at(row)
    seconds = (row["finished_at"] or started) - started
    line = runlog.summary(row["status"], None if row["status"] == "skipped" else row["exit_code"], seconds,
                          row["id"], row["attempt"], _attempts(state, name, row["attempt"]),
                          render.printable(row["reason"] or ""))
    print(f"jobctl: job {name}: {line}", file=sys.stderr)
    return _exit_code(row)


def _attempts(state: str, name: str, attempt: int) -> int:
    """How many attempts a run of ``name`` has (retries.attempts + 1, as applied), at least ``attempt``; 1 unknown."""
    from jobctl import applied

    try:
        defn = applied.load(state, name)[0]
        total = 1 + int(defn["retries"]["attempts"]) if defn else 1
    except (OSError, KeyError, TypeError, ValueError):
        total = 1
    return total if total >= attempt else 1


def _follow_attempt(log: Store, state: str, row: sqlite3.Row, live: _Live, local: bool) -> sqlite3.Row:
    """One running attempt, live from its spool until the run log records its end (or its wrapper is gone).

    Returns its row as it then stands: ended, or still `running` when its
    wrapper died while processes of its group live on.  Polls every
    FOLLOW_POLL_S; whatever the spool did not carry comes from the run log.
    """
    from jobctl import paths
    from jobctl.runner import host
    from jobctl.runner.process import SpoolReader

    path = paths.output_spool(state, row["id"])
    reader: SpoolReader | None = None
    try:
        while True:
            if reader is None:
                reader = SpoolReader.open(path)  # none until the run prints something
            copied = _copy(reader, live) if reader is not None else 0
            fresh = log.get(row["id"])
            if fresh is None:  # deleted under us (a hand-made prune): nothing will say how it ended
                common.fail(JobctlError(f"run {row['id']} was removed from the run log while it was followed"))
            if fresh["status"] == "running" and local and not (fresh["wrapper_pid"] and fresh["wrapper_pid"] > 0
                                                                and host.alive(fresh["wrapper_pid"])):
                # killed before it could record the end: the run log's rule says whether it is lost
                log.finalize_lost(fresh["job"], fresh["host"], fresh["boot_id"], host.alive, host.group_alive,
                                  time.time())
                fresh = log.get(row["id"]) or fresh
                if fresh["status"] == "running":
                    if reader is not None:
                        _copy(reader, live, until_empty=True)
                    return fresh
            if fresh["status"] != "running":
                if reader is None:
                    reader = SpoolReader.open(path)  # recorded and removed, most likely: the run log has it all
                if reader is not None:
                    _copy(reader, live, until_empty=True)  # the wrapper wrote it all before recording the end
                live.catch_up(reader.pos if reader is not None else 0, log.output(fresh["id"]))
                return fresh
            if copied < _FOLLOW_BURST:
                time.sleep(FOLLOW_POLL_S)
    finally:
        if reader is not None:
            reader.close()


def _copy(reader: SpoolReader, live: _Live, until_empty: bool = False) -> int:
    """Copy what the spool has now (at most _FOLLOW_BURST, unless ``until_empty``); the bytes copied."""
    copied = 0
    while until_empty or copied < _FOLLOW_BURST:
        dropped, data = reader.read()
        if not dropped and not data:
            break
        live.dropped(dropped)
        live.data(data)
        copied += len(data) + 1
    return copied


def _next_attempt(log: Store, row: sqlite3.Row, local: bool) -> sqlite3.Row | None:
    """The attempt retrying the ended attempt ``row``, waited for while its wrapper lives; None: ``row`` ended the run.

    A retry follows a failed or timed-out attempt that is not its run's
    last: the wrapper records the failure streak (``failures``) on a last
    attempt only, in the transaction that ends it.
    """
    from jobctl.runner import host

    while True:
        if row["retried"]:
            return log.next_attempt(row)
        if row["status"] not in ("failed", "timeout") or row["failures"] is not None:
            return None
        pid = row["wrapper_pid"]
        if not local or not (pid and pid > 0 and host.alive(pid)):
            fresh = log.get(row["id"])  # it may have started the retry just before it went
            return log.next_attempt(fresh) if fresh is not None and fresh["retried"] else None
        time.sleep(FOLLOW_POLL_S)
        fresh = log.get(row["id"])
        if fresh is None:
            return None
        row = fresh


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
