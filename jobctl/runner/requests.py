"""Run requests: a job queue for one host, kept in the run log.

``submit`` records a request (status ``queued``) and commits it, synced,
before it returns its id; a request due now starts at once in the
background through the wrapper (``--request ID``).  The wrapper claims
requests under the job's lock, oldest first (wrapper.serve_requests), so a
job's requests run in submit order and each at most once.  The catch-up pass
(``start_due``) starts a wrapper for every job with a due request: one
submitted for later (``--at``/``--in``), or one whose wrapper never started
(a crash between submit and start, a reboot, a cron outage); and it settles
requests whose wrapper died (``settle``).  ``wait`` follows one to its end.

Not on the scheduled runs' hot path: the command line and the pass import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from jobctl import params, paths, store
from jobctl.runner import cmdline, host

#: request statuses that are over
DONE = ("done", "skipped", "cancelled", "failed", "lost")
#: `jobctl wait`'s exit codes besides the run's own: timed out waiting (as timeout(1)), and a request
#: that ended without a run of its own exit code (cancelled, lost before it started)
WAIT_TIMEOUT = 124
NOT_RUN = 1
#: how often `jobctl wait` looks at the run log (a read of one row)
WAIT_POLL = 0.2


class Refused(Exception):
    """A submit that records nothing: bad parameters, a full queue."""


def submit(state: str, defn: dict[str, Any], given: dict[str, str], due: float | None, key: str | None,
           now: float | None = None) -> tuple[int, bool, bool]:
    """Record a request for the applied definition ``defn``: (id, already there (--key), started now)."""
    now = time.time() if now is None else now
    name = defn["name"]
    try:
        values = params.resolve(name, defn.get("params") or {}, given)
    except params.BadParams as exc:
        raise Refused(f"job {name}: {exc}") from None
    if key is not None and (not key or len(key) > 200 or params.value_problem(key)):
        raise Refused("--key: give 1-200 characters of text (no NUL)")
    when = now if due is None else due
    log = store.connect(paths.runs_db(state), build_indexes=False)
    try:
        try:
            request_id, existing = log.submit(name, json.dumps(values, sort_keys=True, ensure_ascii=False), key,
                                              when, now, int(defn.get("max_queued") or 100))
        except store.QueueFull as exc:
            raise Refused(f"job {name} has {exc.args[0]} requests queued, its max_queued; wait for some to run, "
                          f"cancel some (jobctl queue {name}; jobctl cancel ID) or raise max_queued") from None
    finally:
        log.close()
    started = False
    if not existing and when <= now and not os.path.exists(paths.paused_file(state, name)):
        start(state, name, request_id)
        started = True
    return request_id, existing, started


def start(state: str, name: str, request_id: int = 0) -> None:
    """A wrapper for the job's requests, detached: this one first (0: whatever is due)."""
    subprocess.Popen(cmdline.request_run_argv(state, name, request_id), stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")


def start_due(state: str, log: store.Store, now: float, runnable: dict[str, Any]) -> list[str]:
    """The pass: a wrapper for each job of ``runnable`` (name: applied definition, not paused) with a due request.

    One wrapper runs a job's due requests one after another (its lock and
    policy); a job with ``concurrency: allow`` gets one wrapper per due
    request, so they run side by side as submits due now do.
    """
    started = []
    for name in log.due_jobs(now):
        defn = runnable.get(name)
        if defn is None:
            continue
        many = 1
        if defn.get("concurrency") == "allow":
            many = sum(1 for r in log.requests(name, ("queued",)) if r["due"] <= now)
        for _ in range(max(1, min(many, 100))):
            start(state, name)
        started.append(name)
    return started


def settle(log: store.Store, now: float) -> list[int]:
    """Requests left running by a wrapper that died: queued again, or done with their run's result; their ids.

    A wrapper that died before its job's process was recorded (no run row,
    or a run without a pid: the job waits for the wrapper's go-ahead after
    its pid is recorded, so it never started) leaves a request that never
    ran: it is queued again, and runs once.  One that died later leaves a
    run that did start: the request is done with that run's result, never run
    again.  Either way the wrapper is gone (on this host, this boot) before
    anything is decided, so a live wrapper's request is never touched.
    """
    me, boot = os.uname().nodename, host.boot_id()
    settled = []
    for row in log.requests(statuses=("running",)):
        if row["host"] != me:
            continue
        if row["boot_id"] == boot and row["claimed_pid"] and running(int(row["claimed_pid"])):
            continue
        run = log.get(row["run_id"]) if row["run_id"] else None
        if run is not None and run["status"] == "running":
            continue  # finalize_lost ends it first (the pass runs it before this)
        started = log.db.execute("SELECT 1 FROM runs WHERE request_id = ? AND pid IS NOT NULL LIMIT 1",
                                 (row["id"],)).fetchone() is not None
        if not started:
            log.requeue(row["id"])
        else:
            last = log.db.execute("SELECT * FROM runs WHERE request_id = ? ORDER BY id DESC LIMIT 1",
                                  (row["id"],)).fetchone()
            if last is None or last["status"] == "running":
                continue
            log.finish_request(row["id"], "done", last["id"], store.exit_code(last), now,
                               f"{last['reason'] or last['status']} (settled after its wrapper ended)")
        settled.append(int(row["id"]))
    return settled


def running(pid: int) -> bool:
    """Whether process ``pid`` lives (a zombie, left where PID 1 is slow to reap, does not)."""
    fields = host.proc_stat(pid)
    return fields is not None and fields[0] not in (b"Z", b"X")


def wait(state: str, request_id: int, timeout: float | None) -> tuple[int, Any, bool]:
    """Block until the request is over; (exit code, the request row, timed out). Polls, bounded by ``timeout``.

    The exit code is the run's own; WAIT_TIMEOUT when ``timeout`` passed first;
    75 for a skipped request (as a skipped run); NOT_RUN for one cancelled or
    lost before it ran.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    log = store.connect(paths.runs_db(state), create=False, build_indexes=False)
    try:
        while True:
            row = log.request(request_id)
            if row is None:
                raise LookupError(request_id)
            if row["status"] in DONE:
                if row["status"] == "done" or (row["status"] == "failed" and row["exit_code"] is not None):
                    return int(row["exit_code"] if row["exit_code"] is not None else NOT_RUN), row, False
                if row["status"] == "skipped":
                    return 75, row, False
                return NOT_RUN, row, False
            if deadline is not None and time.monotonic() >= deadline:
                return WAIT_TIMEOUT, row, True
            pause = WAIT_POLL if deadline is None else max(0.0, min(WAIT_POLL, deadline - time.monotonic()))
            time.sleep(pause)
    finally:
        log.close()


def record(row: Any, now: float | None = None) -> dict[str, Any]:
    """A request as ``queue --json`` and ``submit --json`` print it (README, jobctl(1): the fields)."""
    now = time.time() if now is None else now
    try:
        values = json.loads(row["params"] or "{}")
    except ValueError:
        values = None
    return {"id": row["id"], "job": row["job"], "status": row["status"], "params": values, "key": row["key"],
            "due": store.iso(row["due"]), "submitted": store.iso(row["submitted"]),
            "age_s": round(max(0.0, now - row["submitted"]), 3), "run_id": row["run_id"],
            "exit_code": row["exit_code"], "finished": store.iso(row["finished"]), "reason": row["reason"]}
