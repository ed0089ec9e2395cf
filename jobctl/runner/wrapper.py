"""The wrapper cron starts for every run: lock, run, time out, retry, record, notify.

This is the hot path.  Cron may start hundreds of these in the same second, so
it imports only cheap standard-library modules (no typer, rich, yaml,
croniter, python-crontab, filelock) and the foundations.  ``__main__`` reads
the applied definition and decides whether a wake-up runs at all; this module
runs it, with the job's process (process), its lock (host.Lock), the run log
and jobctl-errors.log (runlog), and notifications in a child (notifier, notify).
"""

from __future__ import annotations

import gc
import os
import time

# These lines stand again in notify, on purpose: why they are not shared is said there.
try:
    import _signal  # signal without its enums (~2 ms the wrapper need not pay)
except ImportError:  # not CPython
    import signal as _signal

from jobctl import applied, paths
from jobctl.applied import DEFAULTS, MAX_AFTER_FAILURES, MAX_RETRIES, RETRIES_DEFAULT, integer, number
from jobctl.runner import host
from jobctl.runner.cmdline import EX_CANNOT_EXEC, EX_JOBCTL, EX_NOT_FOUND, EX_SKIPPED, EX_TIMEOUT
from jobctl.runner.host import Holder, Lock
from jobctl.runner.process import Attempt, Interrupted, Signals, clean_environment, run_as, signame
from jobctl.runner.runlog import ErrorLog, RunLog, fmt_duration, summary

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from jobctl.applied import Definition
    from jobctl.runner.notifier import Notifier

#: under cron, how much of a failed run's output goes into the mail: its last lines, bounded in bytes
MAIL_TAIL_LINES = 20
MAIL_TAIL_BYTES = 4096


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Wrapper:
    """One invocation: all attempts of one run of one job."""

    _slot: dict[str, str] | None
    _slot_start: float | None

    def _slot_env(self) -> dict[str, str]:
        """JOBCTL_SCHEDULED_FOR, JOBCTL_SLOT_START and JOBCTL_SLOT_END: the time this run stands for.

        Empty for a manual run; the slot (from the previous scheduled time to
        this one) only for a periodic schedule.  Worked out once, by
        arithmetic (wallclock.previous_slot): ~50 us for a daily job.
        """
        slot = self._slot
        if slot is None:
            slot = self._slot = {"JOBCTL_SCHEDULED_FOR": "", "JOBCTL_SLOT_START": "", "JOBCTL_SLOT_END": ""}
            when = self.scheduled_for
            if when is not None:
                slot["JOBCTL_SCHEDULED_FOR"] = _iso(when)
                fields = self.defn["fields"]
                if self.parent is not None:
                    # a chained run stands for its parent's slot: the window the parent processed
                    start = self.parent[3]
                    if start is not None:
                        self._slot_start = start
                        slot["JOBCTL_SLOT_START"] = _iso(start)
                        slot["JOBCTL_SLOT_END"] = _iso(when - when % 60)
                elif fields:
                    from jobctl.runner.wallclock import previous_slot

                    try:
                        start = previous_slot(fields, self.defn["tz_offsets"], self.defn["timezone"], when)
                    except (LookupError, ValueError, OSError, OverflowError):
                        start = None  # a zone the tz database lost since apply: the run goes on without its slot
                    if start is not None:
                        self._slot_start = start
                        slot["JOBCTL_SLOT_START"] = _iso(start)
                        slot["JOBCTL_SLOT_END"] = _iso(when - when % 60)
        return slot

    def __init__(self, defn: Definition, state: str, trigger: str, stream: bool,
                 scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
                 sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0, mail: str | None = None,
                 parent: tuple[int, str, str, float | None] | None = None, chain: bool = True,
                 params: dict[str, str] | None = None, request: int | None = None) -> None:
        self.defn = defn
        self.sink = sink
        self.jitter = number(jitter, 0.0)
        self.name = defn["name"]
        self.state = state
        self.trigger = trigger
        self.stream = stream
        self.scheduled_for = scheduled_for
        #: (run id, job, status, slot start) of the run whose then/on_failure started this one (trigger chain)
        self.parent = parent
        self.parent_id = parent[0] if parent else None
        #: start the jobs of then/on_failure once the run has ended (not when a systemd unit's OnSuccess= does)
        self.chain = chain
        #: started by a systemd timer's unit (--timer): its exit code tells systemd skipped from failed
        self.timer = False
        #: parameter values given to this run (jobctl run -p), checked against the job's params when it starts
        self.given = params or {}
        #: a run for a request (jobctl submit): the request's id, 0 for the job's oldest due one (the pass)
        self.request_mode = request
        self.request_id: int | None = None
        #: the values the run got, as JSON in the run log (None: the job declares no params)
        self._params_json: str | None = None
        #: the values the run got, as the job's JOBCTL_PARAM_* variables
        self._param_env: dict[str, str] = {}
        #: in request mode: no due request was left to claim (another wrapper ran them), so no run was made
        self.claimed_nothing = False
        #: the directory holding JOBCTL_PARENT_OUTPUT while an attempt runs
        self._parent_dir: str | None = None
        self._log: RunLog | None = None
        #: (slow or short, the alert's line, the baseline.Usual) when the finished run is judged so and the job
        #: notifies on it
        self._verdict: tuple[str, str, Any] | None = None
        self.on_started = on_started
        self.error = ErrorLog(state, self.name)
        self.host = os.uname().nodename
        self.boot_id = host.boot_id()
        self.run_ids: list[int] = []
        self._notes: list[str] = []
        #: the last attempt's row (the run log's columns) and output, for notifications
        self._last: tuple[dict[str, Any], bytes] | None = None
        self._last_env: dict[str, str] = {}
        self._slot = None
        self._slot_start = None
        self._who: tuple[str, str, int, int] | None = None
        self._start_ping: Notifier | None = None
        # Every number the wrapper acts on, bounded once (number, integer): an
        # applied definition may be hand-edited or older than validation's ranges.
        self.timeout = number(defn["timeout"], 0.0) or None  # 0, NaN, null: no timeout
        self.grace = number(defn["kill_grace"], DEFAULTS["kill_grace"])
        retries = defn["retries"]
        self.attempts = 1 + integer(retries["attempts"], RETRIES_DEFAULT["attempts"], MAX_RETRIES)
        self.delay = number(retries["delay"], RETRIES_DEFAULT["delay"])
        self.backoff = number(retries["backoff"], RETRIES_DEFAULT["backoff"])
        self.max_delay = number(retries["max_delay"], RETRIES_DEFAULT["max_delay"])
        self.keep, self.max_age = applied.retention(defn)
        #: the job's notify mapping (upgrade filled its keys), {} without notifications
        self.notify_cfg: dict[str, Any] = dict(defn["notify"]) if defn["notify"] else {}
        if self.notify_cfg:
            self.notify_cfg["after_failures"] = max(1, integer(self.notify_cfg["after_failures"], 1,
                                                               MAX_AFTER_FAILURES))
        #: (run id, status, exit code, started, finished, attempt, reason, output) of the last attempt
        self.final: tuple[int, str, int | None, float, float, int, str, bytes] | None = None
        self.first_started = 0.0
        #: (runs pruned, failures in a row) once the run's last attempt is recorded (finish_last, after_run)
        self._after: tuple[int, int] | None = None
        #: `jobctl run` on a terminal: a line between attempts and a summary at the end
        self.progress = stream and _isatty(2)
        #: under cron (scheduled, not streamed): cron_mail decides what reaches cron's mail
        self.mail = mail if mail in ("failure", "always") else None

    def retry_delay(self, retry: int) -> float:
        """delay × backoff^(retry-1), at most max_delay, for the n-th retry: never overflows, never NaN."""
        if self.delay <= 0:
            return 0.0
        try:
            factor = self.backoff ** (retry - 1)
        except OverflowError:  # 10 ** 311 and beyond: far past any max_delay
            return self.max_delay
        return min(self.delay * factor, self.max_delay)  # a product past 1e308 is inf, and min() takes max_delay

    def run(self) -> int:
        umask = os.umask(0o077)
        signals = Signals()
        try:
            code = self._run(signals, umask)
        finally:
            signals.restore()
            os.umask(umask)
        if self.timer and code == EX_SKIPPED and self.final is not None and self.final[1] != "skipped":
            # a job that exited 75 itself failed: under a systemd unit (SuccessExitStatus=75 for skips)
            # it must read as a failure, so that OnFailure= starts and OnSuccess= does not
            code = 1
        if self.final is not None:
            from jobctl.store import FAILED_STATUSES  # loaded already by the run log

            if self.progress:
                self._say(self._summary())
            elif self.mail == "always" or (self.mail == "failure" and self.final[1] in FAILED_STATUSES):
                self._mail()
        return code

    def _summary(self) -> str:
        """One line: job, status, exit code, duration, run id (and attempt of how many)."""
        run_id, status, code, started, finished, attempt, _, _ = self.final or (0, "?", None, 0, 0, 1, "", b"")
        started = self.first_started or started  # the whole run, retries and their delays included
        return summary(status, code, finished - started, run_id, attempt, self.attempts,
                       self.final[6] if self.final else "")

    def _say(self, line: str) -> None:
        try:
            os.write(2, f"jobctl: job {self.name}: {line}\n".encode("utf-8", "replace"))
        except OSError:
            pass

    def _mail(self) -> None:
        """cron's contract, as cronic made popular: output only when something is wrong, so cron mails it.

        One summary line and the tail of the captured output on stdout; cron
        mails it where MAILTO and an MTA are set (cron_mail: always also on
        success, never not at all).
        """
        run_id, output = (self.final[0], self.final[7]) if self.final else (0, b"")
        lines = output.splitlines()[-MAIL_TAIL_LINES:]
        text = b"\n".join(lines)[-MAIL_TAIL_BYTES:]
        body = f"jobctl: job {self.name}: {self._summary()}\n".encode("utf-8", "replace")
        if text:
            n = len(text.splitlines())
            body += f"--- last {n} line{'s' if n != 1 else ''} of output (jobctl logs {run_id}) ---\n".encode()
            body += text + b"\n"
        try:
            os.write(1, body)
        except OSError:
            pass

    def _lock(self, log: RunLog, signals: Signals) -> tuple[Lock | None, int | None]:
        """Take the job's lock per its concurrency policy; (lock, exit code if not to run)."""
        policy = self.defn["concurrency"]
        group = self.defn["lock_group"]
        if policy == "allow" and not group:  # validation refuses allow with a group; a hand-edited one is forbid
            return None, None
        if group and policy == "allow":
            policy = "forbid"
        try:
            # a job of a lock group takes the group's lock, the one all its jobs take: the policy applies to the group
            lock = Lock(paths.group_lock_file(self.state, group) if group else paths.lock_file(self.state, self.name))
        except OSError as exc:
            self.error(f"cannot open the lock file: {exc}; not running")
            return None, EX_JOBCTL
        if lock.try_acquire():
            if group:
                code = self._own_lock_free(log, lock)
                if code is not None:
                    lock.close()
                    return None, code
            return lock, None
        holder = lock.holder()
        if policy == "forbid":
            reason = f"skipped: previous run {holder.run or '?'} still running"
            if group:
                reason = f"skipped: {self._holder_text(log, holder.run)} still running (lock group {group})"
            if self.request_mode is not None and not self._skip_requests(log, reason):
                lock.close()
                return None, 0  # claimed meanwhile by the wrapper that holds the lock: it runs them
            # a skip has no exit code in the run log (the process still exits 75)
            run_id = self._record(log, "skipped", reason)
            log.call("prune", self.name, self.keep, self.max_age, time.time())  # skips are bounded too
            self._started(run_id)
            if self.stream:
                self.error(reason)
            lock.close()
            return None, EX_SKIPPED
        try:
            signals.raise_now = True
            if policy == "replace":
                code = self._replace(log, signals, lock)
                if code is not None:
                    lock.close()
                    return None, code
            else:  # wait
                lock.acquire()
        except Interrupted as exc:
            reason = f"killed: {signame(exc.signum)} while waiting for run {holder.run or '?'} to finish"
            run_id = self._record(log, "killed", reason, 128 + exc.signum)
            self._started(run_id)
            lock.close()
            return None, 128 + exc.signum
        finally:
            signals.raise_now = False
        if group:
            code = self._own_lock_free(log, lock)
            if code is not None:
                lock.close()
                return None, code
        return lock, None

    def _skip_requests(self, log: RunLog, reason: str) -> bool:
        """forbid met a run: the request this wrapper was started for is skipped (the pass's: every due one).

        False when none was still queued: the lock's holder claimed them.
        The skip row that follows carries the (last) request's id.
        """
        now = time.time()
        ids = [self.request_mode] if self.request_mode else \
            [r["id"] for r in log.call("requests", self.name, ("queued",), default=[]) if r["due"] <= now]
        skipped = [i for i in ids if log.call("skip_request", i, now, reason, default=False)]
        if skipped:
            self.request_id = skipped[-1]
        return bool(skipped)

    def _record(self, log: RunLog, status: str, reason: str, exit_code: int | None = None,
                at: float | None = None) -> int:
        """A run that started no process (a skip, a refusal) as one finished row; its id (0: not recorded)."""
        return int(log.call("record", self.name, status, self.trigger, 1, self.scheduled_for,
                            time.time() if at is None else at, os.getpid(), self.host, reason, exit_code,
                            self.parent_id, self._params_json, self.request_id, default=0))

    def _holder_text(self, log: RunLog, run_id: int) -> str:
        """``run 812 of job b``: the run holding a group's lock, by its job (any job of the group may hold it)."""
        row = log.call("get", run_id) if run_id else None
        job = row["job"] if row is not None else None
        return f"run {run_id or '?'}" + (f" of job {job}" if job and job != self.name else "")

    def _own_lock_free(self, log: RunLog, group: Lock) -> int | None:
        """With a group's lock taken, take the job's own too (held with it, to the end); None, or the exit code.

        Every run of a job holds its own lock, grouped or not, so a run that
        started under another lock group, or before the job joined one, still
        keeps the next run of the job out (a job never runs twice): it is
        skipped, whatever the policy, as it waits on no group.
        """
        try:
            own = Lock(paths.lock_file(self.state, self.name))
        except OSError:
            return None
        if own.try_acquire():
            group.companion = own
            return None
        reason = f"skipped: previous run {own.holder().run or '?'} still running (it started under another lock " \
                 f"group than {self.defn['lock_group']}, or none)"
        own.close()
        run_id = self._record(log, "skipped", reason)
        self._started(run_id)
        if self.stream:
            self.error(reason)
        return EX_SKIPPED

    def _replace(self, log: RunLog, signals: Signals, lock: Lock) -> int | None:
        """Terminate the lock holder's process group and take the lock; None once taken, else the exit code.

        Only a group proven to be the one the holder's run started is
        signalled (host.not_the_runs_group): the holder record may be forged,
        stale or from an older jobctl, and this may run as root.  SIGTERM,
        then SIGKILL after kill_grace, then at most kill_grace more for the
        holder's wrapper to record its run and let go.  A lock that is still
        held then (a process that left the group with setsid and kept the
        inherited lock, or a group that could not be verified) is not waited
        for: the run is recorded as skipped, naming the pids holding the lock,
        and the exit code is 75, as for forbid.
        """
        began = time.monotonic()
        term_at: float | None = None
        kill_at: float | None = None
        target: Holder | None = None  # the holder whose group got SIGTERM
        killed = False
        was_running = False
        refused = ""
        holder = Holder()
        checked: tuple[int, int, int] | None = None
        while not lock.try_acquire():
            now = time.monotonic()
            if target is None and checked != (holder := lock.holder()).key():
                checked = holder.key()  # the checks read /proc: once per record the holder writes
                why = host.not_the_runs_group(holder.pgid, holder.start, lock.file_id)
                if why is None:
                    row = log.call("get", holder.run) if holder.run else None
                    was_running = row is None or row["status"] == "running"
                    host.killpg(holder.pgid, _signal.SIGTERM)
                    target, term_at, kill_at = holder, now, now + self.grace
                elif why != refused and (holder.run or holder.pgid):  # zeros: the holder has not written it yet
                    refused = why
                    self.error(f"replace: not signalling the holder of the lock (run {holder.run or '?'}): {why}")
            elif kill_at is not None and target is not None and now >= kill_at:  # kill_at is target's
                kill_at = None
                if host.not_the_runs_group(target.pgid, target.start, lock.file_id) is None:  # still that group?
                    host.killpg(target.pgid, _signal.SIGKILL)
                    killed = True
            if now >= (began + self.grace if term_at is None else term_at + 2 * self.grace):
                pids = host.lock_holders(lock.file_id)
                reason = f"skipped: run {holder.run or '?'} could not be replaced: the lock is still held by " \
                         f"pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids)) or '?'}"
                if target is not None:
                    reason += f" after its process group {target.pgid} was {'killed' if killed else 'terminated'}"
                elif refused:
                    reason += f" and its process group was not signalled: {refused}"
                run_id = self._record(log, "skipped", reason)
                self._started(run_id)
                self.error(reason)
                return EX_SKIPPED
            signals.sleep(0.05)
        # Only a run that was still running when we signalled it was replaced; a
        # finished (timed-out, failed) run whose leftovers held the lock was not.
        self._replaced = target.run if target is not None and was_running else 0
        return None

    def _claim_and_resolve(self, log: RunLog) -> int | None:
        """With the lock held: claim a request (request mode) and work out the run's parameters; None to run.

        A request is claimed here, under the job's lock, oldest first: requests
        run in submit order whichever of their wrappers got the lock.  The
        values are checked against the job's params as applied now (it may
        have changed since the submit); values it no longer accepts end the
        request as failed, with the reason, and no process starts.
        """
        given: Any = self.given
        if self.request_mode is not None:
            row = log.call("claim", self.name, time.time(), os.getpid(), self.host, self.boot_id, default=None)
            if row is None:
                self.claimed_nothing = True
                return 0
            self.request_id = int(row["id"])
            try:
                given = applied.parse(row["params"].encode()) or {}
            except (ValueError, AttributeError):
                given = None
            if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
                given = {"": "(unreadable parameters)"}
        if not given and not self.defn["params"]:
            return None
        from jobctl import params

        try:
            values = params.resolve(self.name, self.defn["params"], given)
        except params.BadParams as exc:
            reason = f"cannot start: parameters: {exc}"
            self._params_json = _json(given)
            now = time.time()
            run_id = self._record(log, "failed", reason, EX_JOBCTL, at=now)
            self._started(run_id)
            self.error(reason, echo=self.stream)
            # a failed run like any other: cron's mail has its summary line (cron_mail: failure)
            self.final = (run_id, "failed", EX_JOBCTL, now, now, 1, reason, b"")
            if self.request_id:
                log.call("finish_request", self.request_id, "failed", run_id, EX_JOBCTL, now, reason)
            return EX_JOBCTL
        self._params_json = _json(values)
        self._param_env = params.environment(values)
        return None

    def _requirements(self, log: RunLog) -> int | None:
        """None when every ``requires`` item holds; else the run is recorded skipped, naming the first that does not.

        A skip, not a failure: no retries, no failure streak, no alert storm
        while the job it waits for is down.  A run log that cannot be read
        does not stop the job (it runs, and jobctl-errors.log says why).
        """
        from jobctl.store import FAILED_STATUSES  # loaded already by the run log

        now = time.time()
        for req in self.defn["requires"]:
            job, want, within = req["job"], req.get("status") or "succeeded", req.get("within")
            row = log.call("last_result", job, default=False)
            if row is False:
                self.error(f"requires {job}: not checked, the run log cannot be read; running anyway")
                return None
            ended = row["finished_at"] or row["started_at"] if row is not None else None
            ok = row is not None and (want == "finished" or (want == "succeeded" and row["status"] == "succeeded")
                                      or (want == "failed" and row["status"] in FAILED_STATUSES))
            window = number(within, 0.0) if within is not None else 0.0
            if ok and window and ended is not None and now - ended > window:
                ok = False
            if ok:
                continue
            asked = f"job {job} {want}" + (f" within {fmt_duration(window)}" if window else "")
            if row is None:
                found = f"{job} has no finished run"
            else:
                found = f"its latest run {row['id']} {row['status']} {fmt_duration(max(0.0, now - (ended or now)))} ago"
            reason = f"skipped: requires {asked}; {found}"
            if self.request_mode is not None and not self._skip_requests(log, reason):
                return 0  # claimed meanwhile by another wrapper of the job, which checks again
            run_id = self._record(log, "skipped", reason, at=now)
            log.call("prune", self.name, self.keep, self.max_age, now)
            self._started(run_id)
            if self.stream:
                self.error(reason)
            return EX_SKIPPED
        return None

    def _start_chain(self) -> None:
        """then (after success) or on_failure (after a failure, timeout or kill): each job's wrapper, detached.

        Each starts as its own wrapper (trigger chain), through its own lock,
        requires and pause, with this run as its parent: JOBCTL_PARENT_* and
        the parent's output (read back from the run log) reach it.  Detached
        from this process and from cron's pipes: the chain does not keep
        cron's job open, and this wrapper ends as it would without a chain.
        """
        from jobctl.store import FAILED_STATUSES  # loaded already by the run log

        if self.final is None:
            return
        run_id, status = self.final[0], self.final[1]
        names = self.defn["then"] if status == "succeeded" else \
            self.defn["on_failure"] if status in FAILED_STATUSES else []
        if not names:
            return
        import subprocess

        from jobctl.runner.cmdline import chain_run_argv

        for name in names:
            if not os.path.exists(paths.applied_file(self.state, name)):
                self.error(f"{'then' if status == 'succeeded' else 'on_failure'}: job {name} is not applied; "
                           f"not started (run {run_id} ended {status})")
                continue
            try:
                self._slot_env()  # the slot start, which the child stands for too
                subprocess.Popen(chain_run_argv(self.state, name, run_id, self.name, status, self.scheduled_for,
                                                self._slot_start),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, cwd="/", close_fds=True)
            except OSError as exc:
                self.error(f"cannot start job {name} after run {run_id} ({status}): {exc}")
                continue
            if self.progress:
                self._say(f"started job {name} ({'then' if status == 'succeeded' else 'on_failure'})")

    def _parent_env(self, who: tuple[str, str, int, int]) -> dict[str, str]:
        """JOBCTL_PARENT_RUN_ID, _JOB, _STATUS and _OUTPUT: empty but for a run a then/on_failure started.

        The parent's captured output (as the run log keeps it: head and tail
        within its output_limit) is written to a file of its own in a fresh
        directory only the job's user can enter, removed when the attempt
        ends: the state directory is 0700 and the job may run as another user.
        """
        env = {"JOBCTL_PARENT_RUN_ID": "", "JOBCTL_PARENT_JOB": "", "JOBCTL_PARENT_STATUS": "",
               "JOBCTL_PARENT_OUTPUT": ""}
        if self.parent is None:
            return env
        run_id, job, status, _ = self.parent
        env.update(JOBCTL_PARENT_RUN_ID=str(run_id), JOBCTL_PARENT_JOB=job, JOBCTL_PARENT_STATUS=status)
        self._drop_parent_output()
        try:
            output = self._parent_output(run_id)
            log = self._log
            if log is not None:  # the directories of chained runs whose wrapper was killed before removing them
                host.sweep_parent_outputs(self.state, lambda rid: (row := log.call("get", rid)) is not None
                                          and row["status"] == "running")
            own = self.run_ids[-1] if self.run_ids else 0
            self._parent_dir, path = _private_file(output, who[2], who[3],
                                                   f"{host.parent_output_prefix(self.state)}{own}-")
            env["JOBCTL_PARENT_OUTPUT"] = path
        except OSError as exc:
            self.error(f"the parent run's output is not passed on: {exc}")
        return env

    def _parent_output(self, run_id: int) -> bytes:
        log = self._log
        got = log.call("output", run_id) if log is not None else None
        if not got:
            return b""
        head, tail, _ = got
        return bytes(head) + bytes(tail)

    def _drop_parent_output(self) -> None:
        if self._parent_dir is not None:
            import shutil

            shutil.rmtree(self._parent_dir, ignore_errors=True)  # fd-based on Linux: no link is followed
            self._parent_dir = None

    def _started(self, run_id: int) -> None:
        if run_id:
            self.run_ids.append(run_id)
        if self.on_started is not None:
            self.on_started(run_id)
            self.on_started = None

    def _run(self, signals: Signals, umask: int) -> int:
        log = self._log = RunLog(self.state, self.error)
        self._replaced = 0
        try:
            if self.jitter > 0:
                # before the lock: waiting out the jitter must not hold up anyone
                try:
                    signals.sleep(self.jitter)
                except Interrupted as exc:
                    reason = f"killed: {signame(exc.signum)} during the {fmt_duration(self.jitter)} jitter delay"
                    self._record(log, "killed", reason, 128 + exc.signum)
                    return 128 + exc.signum
            if self.defn["requires"] and self.trigger != "manual":
                code = self._requirements(log)
                if code is not None:
                    return code
            lock, code = self._lock(log, signals)
            if code is not None:
                return code
            code = self._claim_and_resolve(log)
            if code is not None:
                if lock is not None:
                    lock.close()
                return code
            try:
                code, previous_failures, streak = self._attempts(log, signals, lock, umask)
            finally:
                if lock is not None:
                    lock.close()
            if self.request_id and self.final is not None:
                log.call("finish_request", self.request_id, "done", self.final[0], self.final[2], self.final[4],
                         self.final[6])
            # The next jobs first, with the run recorded and the lock free: notifications
            # (up to a minute) must not hold them up, nor a signal during them lose them.
            if self.chain and self.final is not None and not signals.pending:
                self._start_chain()
            # Only now: however long notifications take, they delay neither this job nor its next run.
            if streak is not None:
                self._notify(log, signals, previous_failures, streak)
            return code
        finally:
            if self._start_ping is not None:  # interrupted before the end: its answer no longer matters
                self._start_ping.wait(signals, time.monotonic())
            log.close()

    def _attempts(self, log: RunLog, signals: Signals, lock: Lock | None,
                  umask: int) -> tuple[int, int, int | None]:
        """Every attempt, then retention: (exit code, failures before, failures now or None when interrupted)."""
        log.call("finalize_lost", self.name, self.host, self.boot_id, host.alive, host.group_alive, time.time())
        if self._replaced:
            log.call("append_reason", self._replaced, f" (replaced by a new run of job {self.name})"
                     if self.defn["lock_group"] else " (replaced by a new run)")
        code = EX_JOBCTL
        previous_failures = log.call("failure_streak", self.name, default=0) if self.notify_cfg else 0
        if self.notify_cfg and self.notify_cfg["ping"]:
            self._start_ping = self._notifier("ping start", start=True)
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                delay = self.retry_delay(attempt - 1)
                if self.progress:
                    self._say(f"attempt {attempt}/{self.attempts} after {fmt_duration(delay)} "
                              f"(attempt {attempt - 1}: {self.final[6] if self.final else '?'})")
                try:
                    signals.sleep(delay)
                except Interrupted as exc:
                    return 128 + exc.signum, previous_failures, None
            status, code = self._attempt(log, signals, lock, attempt, umask)
            if status not in ("failed", "timeout") or signals.pending:
                break
        if self._after is None:  # a signal came after the attempt was recorded as one a retry would follow
            self._after = log.call("after_run", self.name, self.keep, self.max_age, time.time(), default=(0, 0))
        _, streak = self._after
        return code, previous_failures, streak

    def _finish(self, log: RunLog, signals: Signals, attempt: int, run_id: int, status: str, code: int | None,
                sig: int | None, finished: float, reason: str, head: bytes = b"", tail: bytes = b"",
                dropped: int = 0, total: int = 0) -> None:
        """Record how an attempt ended; the run's last attempt with after_run's work, in one transaction."""
        if status in ("failed", "timeout") and attempt < self.attempts and not signals.pending:
            log.call("finish_run", run_id, status, code, sig, finished, reason, head, tail, dropped, total)
        else:
            self._after = log.call("finish_last", run_id, status, code, sig, finished, reason, head, tail, dropped,
                                   total, self.name, self.keep, self.max_age, time.time(), default=(0, 0))

    def _notifier(self, what: str, start: bool = False, streak: int = 0,
                  previous_failures: int = 0) -> Notifier | None:
        """Start the /start ping (``start``) or the after-run notifications in a child; None when not needed."""
        from jobctl.runner import notify
        from jobctl.runner.notifier import Notifier
        from jobctl.store import run_record

        cfg = self.notify_cfg
        if start:
            def work() -> list[str]:
                return [notify.ping(cfg["ping"], "start", {"job": self.name})]
        else:
            if not self._last:
                return None
            run, output = run_record(self._last[0]), self._last[1]
            ev = notify.event(run["status"], previous_failures)
            verdict = self._verdict
            if (ev is None or not (cfg["ping"] or notify.wanted(cfg, ev, streak))) and verdict is None:
                return None
            shell = self.defn["shell"] or DEFAULTS["shell"]

            def work() -> list[str]:
                lines = notify.after_run(cfg, run, output, self._last_env, shell, streak, previous_failures)
                if verdict is not None:  # slow or short: an alert of its own, after the run's own notifications
                    lines += notify.alert(cfg, verdict[0], self.name, verdict[1], run, output, self._last_env, shell,
                                          usual=verdict[2], elapsed=run["duration_s"])
                return lines
        try:
            who = self._who or run_as(self.defn)
        except LookupError as exc:
            self._notes.append(f"{what} not sent: {exc}")
            return None
        user, home, uid, gid = who
        ids = (user, uid, gid) if uid != os.geteuid() else None
        seconds = notify.budget(cfg, start) + (notify.alert_budget(cfg) if not start and self._verdict else 0.0)
        try:
            return Notifier(work, ids, self.defn["working_dir"] or home, seconds, what)
        except OSError as exc:
            self._notes.append(f"{what} failed: cannot start it: {exc}")
            return None

    def _notify(self, log: RunLog, signals: Signals, previous_failures: int, streak: int) -> None:
        """Notifications of the finished run, their outcome recorded on it: never its result."""
        # A wrapper told to stop during the run still reports how it ended, but
        # within kill_grace of that signal; one told to stop while notifying stops.
        before = len(signals.pending)
        stop_at = signals.first_at + self.grace if before else None
        if self._start_ping is not None:
            self._notes += self._start_ping.wait(signals, stop_at)  # first: /start precedes the outcome
            self._start_ping = None
        if self.notify_cfg and len(signals.pending) == before:
            self._judge(log)
            notifier = self._notifier("notify", streak=streak, previous_failures=previous_failures)
            if notifier is not None:
                self._notes += notifier.wait(signals, stop_at)
        run_id = self._last[0]["id"] if self._last else (self.run_ids[-1] if self.run_ids else 0)
        if self._notes and run_id:
            log.call("set_notify", run_id, "; ".join(self._notes))

    def _judge(self, log: RunLog) -> None:
        """Judge the finished run against the job's usual duration, when its notify asks about slow or short runs.

        Only then: the other jobs' runs pay nothing for baselines (history
        judges its rows when it shows them, with the same call on the same
        runs: the successes before this one).
        """
        when = self.notify_cfg["when"] or ()
        if self._last is None or not ("slow" in when or "short" in when):
            return
        from jobctl import baseline

        row = self._last[0]
        cfg = self.defn["baseline"]
        durations = log.call("durations", self.name, baseline.settings(cfg)["runs"], row["id"], default=None)
        usual = baseline.usual(durations or [], cfg)
        verdict = baseline.judge(row["status"], row["duration_s"], usual, cfg)
        if verdict is not None and verdict in when and usual is not None:
            self._verdict = (verdict, baseline.explain(verdict, row["duration_s"], usual, cfg), usual)
            self._notes.append(f"{verdict}: {self._verdict[1]}")

    def _attempt(self, log: RunLog, signals: Signals, lock: Lock | None, attempt: int,
                 umask: int) -> tuple[str, int]:
        trigger = self.trigger if attempt == 1 else "retry"
        started = time.time()
        if attempt == 1:
            self.first_started = started
        run_id = log.call("start_run", self.name, trigger, attempt, self.scheduled_for, started,
                          os.getpid(), self.host, self.boot_id, self.jitter if attempt == 1 and self.jitter else None,
                          self.final[0] if attempt > 1 and self.final else 0, self.parent_id, self._params_json,
                          self.request_id, default=0)
        self._started(run_id)
        try:
            who = self._who = run_as(self.defn)  # one user lookup per attempt
        except LookupError as exc:
            reason = f"cannot start: {exc}"
            self.error(reason, echo=self.stream)
            self._finish(log, signals, attempt, run_id, "failed", EX_JOBCTL, None, time.time(), reason)
            self.final = (run_id, "failed", EX_JOBCTL, started, time.time(), attempt, reason, b"")
            return "failed", EX_JOBCTL
        env = clean_environment(self.defn, who)
        env["JOBCTL_JOB"] = self.name
        env["JOBCTL_RUN_ID"] = str(run_id or "")
        env["JOBCTL_ATTEMPT"] = str(attempt)
        env.update(self._slot_env())
        env.update(self._parent_env(who))
        env.update(self._param_env)
        proc = Attempt(self.defn, env, who, lock, signals, self.stream, umask, self.sink)

        def record(pid: int, start: int) -> None:
            if lock is not None:
                lock.set_holder(run_id, pid, start)
            log.call("set_pid", run_id, pid)

        failure = proc.spawn(record)
        if failure is not None:
            stage, num = failure
            what = os.strerror(num) if num else "unexpected error"
            if stage == "chdir":
                status, code = "failed", EX_JOBCTL
                reason = f"cannot start: working directory {self.defn['working_dir'] or env['HOME']}: {what}"
            else:
                import errno  # only when a job cannot start

                status = "failed"
                code = EX_NOT_FOUND if num == errno.ENOENT else EX_CANNOT_EXEC
                reason = f"cannot start {proc._argv()[0]}: {what}"
            # in jobctl-errors.log always; on stderr when someone watches (under cron, the summary says it)
            self.error(reason, echo=self.stream)
            self._finish(log, signals, attempt, run_id, status, code, None, time.time(), reason)
            self.final = (run_id, status, code, started, time.time(), attempt, reason, b"")
            return status, code
        if not gc.isenabled():
            # start.py held the collector off while the wrapper loaded: what
            # exists now lives as long as the process, so it is frozen out of
            # the collections of the hours a job may run
            gc.freeze()
            gc.enable()
        if run_id:
            # the live copy `jobctl logs --follow` reads, created at the first output, removed once recorded
            proc.output.spool_to(paths.output_spool(self.state, run_id))
        try:
            return self._wait(log, signals, proc, attempt, run_id, trigger, started, env)
        finally:
            proc.output.close_spool()
            self._drop_parent_output()

    def _wait(self, log: RunLog, signals: Signals, proc: Attempt, attempt: int, run_id: int, trigger: str,
              started: float, env: dict[str, str]) -> tuple[str, int]:
        """Wait for the attempt's process, then record how it ended."""
        wstatus, ended_by, forwarded = proc.wait(self.timeout, self.grace)
        sig: int | None = None
        if ended_by == "timeout":
            status, code = "timeout", EX_TIMEOUT
            reason = f"timed out after {fmt_duration(self.timeout or 0)}"
        elif ended_by == "signal" and forwarded is not None:
            status, code, sig = "killed", 128 + forwarded, forwarded
            reason = f"killed: {signame(forwarded)} sent to the wrapper"
        elif os.WIFSIGNALED(wstatus):
            sig = os.WTERMSIG(wstatus)
            status, code = "killed", 128 + sig
            reason = f"killed by {signame(sig)}"
        else:
            code = os.waitstatus_to_exitcode(wstatus)
            status = "succeeded" if code == 0 else "failed"
            reason = "exit status 0" if code == 0 else f"exit status {code}"
        if self.jitter and attempt == 1:
            reason += f" (started after {fmt_duration(self.jitter)} of jitter)"
        head, tail, dropped = proc.output.finish()
        finished = time.time()
        self._finish(log, signals, attempt, run_id, status, code, sig, finished, reason, head, tail, dropped,
                     proc.output.total)
        self.final = (run_id, status, code, started, finished, attempt, reason, head + tail)
        if self.notify_cfg:
            # the attempt's row as the run log now holds it: notifications carry store.run_record of it
            self._last = ({"id": run_id, "job": self.name, "status": status, "exit_code": code, "signal": sig,
                           "trigger": trigger, "attempt": attempt, "scheduled_for": self.scheduled_for,
                           "started_at": started, "finished_at": finished, "duration_s": finished - started,
                           "pid": proc.pid, "host": self.host, "output_bytes": proc.output.total,
                           "output_truncated": dropped > 0, "reason": reason,
                           "parent_run_id": self.parent_id, "params": self._params_json}, head + tail)
            self._last_env = env
        return status, code


def execute(defn: Mapping[str, Any], state: str, trigger: str = "manual", stream: bool = False,
            scheduled_for: float | None = None, on_started: Callable[[int], None] | None = None,
            sink: Callable[[bytes], Any] | None = None, jitter: float = 0.0, mail: str | None = None,
            parent: tuple[int, str, str, float | None] | None = None, chain: bool = True,
            params: dict[str, str] | None = None, request: int | None = None, timer: bool = False) -> int:
    """Run a job definition once (with its retries); returns the exit code.

    ``stream`` copies the output live to fd 1, or to ``sink`` when given.
    ``mail`` (under cron: the job's cron_mail) prints a summary and the
    output's tail on a failure ("failure") or always ("always").  ``defn``
    may be of an older format (applied.upgrade).
    """
    w = Wrapper(applied.upgrade(defn), state, trigger, stream, scheduled_for, on_started, sink, jitter, mail,
                parent, chain, params, request)
    w.timer = timer
    return w.run()


def serve_requests(defn: Mapping[str, Any], state: str, first: int, report: Callable[[int], None] | None = None,
                   chain: bool = True) -> int:
    """Run the job's due requests, oldest first, one after another, until none is left; the last exit code.

    ``first``: the request this wrapper was started for (0: the pass's, for
    whatever is due).  Each run takes the job's lock under its concurrency
    policy and claims the oldest due request then, so the requests of a job
    run in submit order and each once, however many wrappers were started.
    """
    if not first and defn.get("concurrency") != "allow":
        # the pass's wrapper for whatever is due: one at a time per job, or every minute's pass would
        # add one more waiting on the job's lock behind a long run
        import fcntl

        try:
            fd = os.open(paths.requests_lock(state, defn["name"]), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until this process ends
        except BlockingIOError:
            return 0
        except OSError:
            pass
    code = 0
    request = first
    while True:
        w = Wrapper(applied.upgrade(defn), state, "request", False, None, report, chain=chain, request=request)
        result = w.run()
        if w.claimed_nothing or w.request_id is None:
            return code
        code = result
        report = None
        request = 0


def _json(values: Mapping[str, str]) -> str:
    import json  # only for a run with parameters

    return json.dumps(values, sort_keys=True, ensure_ascii=False)


def _private_file(data: bytes, uid: int, gid: int, prefix: str) -> tuple[str, str]:
    """A fresh directory (0700) under /tmp holding one file (0600) of ``data``, both ``uid``'s: (directory, file).

    Written before it is handed over: the user gets the directory only once
    the file is complete, so nothing of theirs can stand in its place while
    this process (root, for a system crontab) writes.  ``prefix`` names the
    state directory and the run, so that host.sweep_parent_outputs can find
    it if this wrapper dies before removing it.
    """
    for _ in range(100):
        directory = os.path.join(host.PARENT_OUTPUT_ROOT, prefix + os.urandom(8).hex())
        try:
            os.mkdir(directory, 0o700)
            break
        except FileExistsError:
            continue
    else:
        raise OSError("no free name for the parent's output under /tmp")
    path = os.path.join(directory, "output")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if uid != os.geteuid() or gid != os.getegid():
            os.fchown(fd, uid, gid)
            os.chown(directory, uid, gid)
    finally:
        os.close(fd)
    return directory, path


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
