"""Issue 10, root-safe and hang-proof: each attack on the wrapper, reproduced with real users, processes and files.

Tests that need another Unix user create one with useradd (root only; they
skip otherwise, and CI runs as root).  Every wait is bounded, and the only
network is a trickling HTTP server on 127.0.0.1 that stops by itself.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobctl import store
from jobctl.runner import host, notify
from jobctl.runner import wrapper as runner

from runhelp import job, output, pids_with, rows, run, start, wait_for

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="creating a Unix user for the job (useradd) needs root")


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "state")


@pytest.fixture
def marker() -> str:
    """A sleep argument no other process on the machine has, to find and end leftovers."""
    return f"1000.{os.getpid()}{random.randrange(10**6):06d}"


@pytest.fixture
def started(marker: str) -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; afterwards, even when it failed or hung, they and every `sleep MARKER…` end."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    _kill_pids(pids_with(f"sleep {marker}"))


def _launch(procs: list[subprocess.Popen], state: str, defn: dict, **popen) -> subprocess.Popen:
    proc = start(state, defn, **popen)
    procs.append(proc)
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 30) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path


def _kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture
def job_user() -> Iterator[User]:
    """A real, fresh Unix user with a home directory it owns; removed afterwards with its processes."""
    if not ROOT:
        pytest.skip("creating a Unix user for the job (useradd) needs root")
    if not shutil.which("useradd"):
        pytest.skip("no useradd on this machine")
    base = Path(tempfile.mkdtemp(prefix="jobctl-user-", dir="/tmp"))
    base.chmod(0o755)  # the user must reach its home; pytest's tmp_path is root-only
    name = f"jobctl-t{random.randrange(10**6):06d}"
    home = base / "home"
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                    "--user-group", name], check=True, capture_output=True)
    try:
        pw = pwd.getpwnam(name)
        home.mkdir(mode=0o755)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        yield User(name, pw.pw_uid, pw.pw_gid, home)
    finally:
        for _ in range(20):  # the user's processes are ours to end (started by these tests)
            pids = _processes_of(pwd.getpwnam(name).pw_uid)
            if not pids:
                break
            _kill_pids(pids)
            time.sleep(0.05)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()


def _state_of(pid: int) -> bytes:
    try:
        return _stat_fields(pid)[0]
    except OSError:
        return b"X"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` itself (fields 14 and 15: not its children)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _holders_named(reason: str) -> list[int]:
    """The pids a skipped replace names as still holding the lock."""
    import re

    found = re.search(r"the lock is still held by pids? ([0-9, ]+)", reason)
    assert found, reason
    return [int(p) for p in found.group(1).replace(" ", "").split(",") if p]


# --- 1. a job user aims `replace` (run as root) at another process group -------------------------------------

ATTACK = """
import os, sys
victim, report, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(f"/proc/{victim}/stat", "rb") as fh:
    start = fh.read().rsplit(b")", 1)[1].split()[19].decode()  # /proc is world-readable: the strongest forgery
forged = f"0 {victim} 0 {start}\\n".encode()
outcome = []
for fd in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if not target.endswith("/locks/t.lock"):
        continue
    try:
        os.pwrite(int(fd), forged, 0)
        os.ftruncate(int(fd), len(forged))
        outcome.append("wrote through the inherited descriptor")
    except OSError as exc:
        outcome.append(f"inherited descriptor: {exc.strerror}")
    try:
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        os.pwrite(w, forged, 0)
        outcome.append("wrote through a reopened descriptor")
    except OSError as exc:
        outcome.append(f"reopened: {exc.strerror}")
with open(report, "w") as fh:
    fh.write("; ".join(outcome) or "no lock descriptor")
os.execvp("sleep", ["sleep", marker])
"""


@needs_root
def test_a_user_job_cannot_make_replace_signal_another_process_group(state, job_user, marker, started):
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("the attacking job needs /usr/bin/python3")
    victim = subprocess.Popen(["sleep", marker + "1"], start_new_session=True)  # root's, in its own group
    started.append(victim)
    report = job_user.home / "report"
    first = _launch(started, state, job(command=["/usr/bin/python3", "-c", ATTACK, str(victim.pid), str(report),
                                                 marker], user=job_user.name, concurrency="replace", kill_grace=1))
    wait_for(report.exists)
    assert report.read_text() == "inherited descriptor: Bad file descriptor; reopened: Permission denied"
    second = _finish(_launch(started, state, job(command="echo new", user=job_user.name, concurrency="replace",
                                                 kill_grace=1)))
    assert victim.poll() is None, "replace signalled the process group the job wrote into the lock file"
    assert second.returncode == 0, second.stderr
    first.wait(30)
    old, new = rows(state)
    # the real holder, the job's own group, was the one replaced
    assert old["status"] == "killed" and old["reason"].endswith("(replaced by a new run)")
    assert new["status"] == "succeeded" and output(state, new["id"])[0] == b"new\n"


@pytest.mark.parametrize("forged", ["negative", "zero", "older-format", "reused-pid"])
def test_replace_never_signals_a_group_the_lock_record_does_not_prove(state, marker, started, forged):
    """A holder record that is forged or stale names a group that is not the run's: refused, never signalled."""
    victim = subprocess.Popen(["sleep", marker + "1"], start_new_session=True)
    started.append(victim)
    first = _launch(started, state, job(command=f"exec sleep {marker}", concurrency="replace", kill_grace=1))
    wait_for(lambda: pids_with(f"sleep {marker}") and rows(state) and rows(state)[0]["pid"])
    [holder] = rows(state)
    record = {
        "negative": f"{holder['id']} -{victim.pid} {first.pid} 1",
        "zero": f"{holder['id']} 0 {first.pid} 1",
        "older-format": f"{holder['id']} {victim.pid} {first.pid}",  # no start time: cannot be verified
        "reused-pid": f"{holder['id']} {victim.pid} {first.pid} 1",  # started long before the victim
    }[forged]
    with open(os.path.join(state, "locks", "t.lock"), "w") as fh:
        fh.write(record + "\n")
    second = _finish(_launch(started, state, job(command="echo new", concurrency="replace", kill_grace=1)))
    assert second.returncode == 75
    assert victim.poll() is None and first.poll() is None  # neither the victim nor the real holder signalled
    skipped = rows(state)[1]
    assert skipped["status"] == "skipped" and skipped["exit_code"] is None
    assert holder["pid"] in _holders_named(skipped["reason"])
    assert rows(state)[0]["status"] == "running" and "replaced" not in (rows(state)[0]["reason"] or "")
    if forged != "zero":  # zeros are what a holder shows before it has written its record: no error
        assert "not signalling the holder of the lock" in second.stderr.decode()


@pytest.mark.parametrize("pgid", [-1, 0, 1])
def test_ids_that_are_no_jobs_group_are_refused(pgid):
    # Checked without sending anything: signalling group 1 as root would end the machine's init group.
    assert host.not_the_runs_group(pgid, 12345, (0, 0)) is not None
    assert host.not_the_runs_group(os.getpgrp(), 12345, (0, 0)) is not None


# --- 2. notify commands of `user:` jobs ran as root ----------------------------------------------------------


@needs_root
def test_notify_command_runs_as_the_jobs_user_and_follows_no_planted_symlink(state, job_user, tmp_path):
    secret_dir = tmp_path / "root-only"
    secret_dir.mkdir(mode=0o700)
    victim = secret_dir / "victim"
    victim.write_text("root's file\n")
    plant = f'ln -sf {victim} "$HOME/planted"; exit 1'  # the job, as its user, plants the link
    alert = 'id -un > "$HOME/notified-as"; echo pwned >> "$HOME/planted"'
    result = run(state, job(command=plant, user=job_user.name,
                            notify={"when": ["failure"], "command": alert}))
    assert result.returncode == 1
    assert victim.read_text() == "root's file\n"
    notified = job_user.home / "notified-as"
    assert notified.read_text() == f"{job_user.name}\n"
    assert os.stat(notified).st_uid == job_user.uid
    [r] = rows(state)
    assert r["notify"].startswith("command failed (exit ") and r["notify"].endswith("Permission denied")


# --- 3. busy loop while a background process holds the output pipe ---------------------------------------


def test_a_background_process_holding_the_pipe_costs_no_cpu_and_the_run_ends_with_its_main_process(
        state, tmp_path, marker, started):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    proc = _launch(started, state, job(command=f"S={marker}; (sleep $S; echo late) & read x < {fifo}; "
                                                "echo main-exits"))
    with open(fifo, "w") as fh:  # opens once the job is waiting to read: the wrapper is in its wait loop
        before = _cpu_seconds(proc.pid)
        fh.write("go\n")
    # The wrapper (our child, not reaped yet) ends while the background sleep lives on.
    wait_for(lambda: _state_of(proc.pid) == b"Z")
    spent = _cpu_seconds(proc.pid) - before
    assert proc.wait() == 0
    assert spent < 0.1, f"the wrapper used {spent:.2f}s of CPU after the job's main process exited"
    [r] = rows(state)
    assert r["status"] == "succeeded" and r["reason"] == "exit status 0"
    assert output(state, r["id"])[0] == b"main-exits\n"
    assert pids_with(f"sleep {marker}")  # not waited for: it holds the pipe for 1000 s


# --- 4. a slow notification server holds the lock --------------------------------------------------------


class Trickle:
    """HTTP on 127.0.0.1 that answers one byte every ``gap`` seconds; every loop is bounded and it stops itself."""

    LIFETIME = 120.0

    def __init__(self, gap: float = 5.0) -> None:
        self.gap = gap
        self.paths: list[str] = []
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        end = time.monotonic() + self.LIFETIME
        with self.sock:
            while not self.stop.is_set() and time.monotonic() < end:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request and len(request) < 1 << 16:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
            except OSError:
                return
            self.paths.append(request.split(b" ", 2)[1].decode())
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            for i in range(len(answer)):  # 38 bytes: 190 s at 5 s a byte, far beyond any deadline
                if self.stop.wait(self.gap):
                    return
                try:
                    conn.sendall(answer[i:i + 1])
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


def test_a_trickling_notification_server_neither_delays_the_job_nor_holds_its_lock(state, tmp_path, trickle,
                                                                                  started):
    flag = tmp_path / "ran"
    proc = _launch(started, state, job(command=f"touch {flag}", notify={"ping": trickle.url + "/uuid"},
                                       kill_grace=2))
    wait_for(flag.exists)  # /start has not been answered, and the job ran anyway
    wait_for(lambda: rows(state) and rows(state)[0]["status"] == "succeeded")
    assert proc.poll() is None  # still waiting on the server (a 10 s deadline per attempt)
    second = _finish(_launch(started, state, job(command="echo second")))
    assert second.returncode == 0, "the next run was skipped: the lock was held while notifying"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0  # the run's code: a notification never changes it
    first = rows(state)[0]
    assert first["status"] == "succeeded"
    assert first["notify"] == "ping start stopped: SIGTERM sent to the wrapper"
    assert trickle.paths[0] == "/uuid/start"


def test_every_http_attempt_has_a_wall_clock_deadline(trickle):
    # 5 s between bytes never trips a 10 s socket timeout; the deadline ends the attempt anyway.
    result = notify.ping(trickle.url + "/uuid", "start", {"job": "t"})
    assert result.startswith("ping start failed:") and "no complete answer within 10s" in result


# --- 5. `replace` against a process that escaped its group with the lock ----------------------------------


@pytest.mark.parametrize("first_ends", ["timed-out", "still-running"])
def test_replace_does_not_wait_forever_for_a_process_that_escaped_with_the_lock(state, marker, started,
                                                                                first_ends):
    escape = f"S={marker}; setsid sleep $S </dev/null >/dev/null 2>&1 &"  # $S: only the sleep's argv has it
    first_defn = job(command=f"{escape} sleep 30", concurrency="replace", kill_grace=1,
                     **({"timeout": 1} if first_ends == "timed-out" else {}))
    first = _launch(started, state, first_defn)
    wait_for(lambda: pids_with(f"sleep {marker}") and rows(state) and rows(state)[0]["pid"])
    [escapee] = pids_with(f"sleep {marker}")
    if first_ends == "timed-out":
        assert first.wait(30) == 124
    second = _finish(_launch(started, state, job(command="echo new", concurrency="replace", kill_grace=1)))
    assert second.returncode == 75, second.stderr
    old, skipped = rows(state)
    assert skipped["status"] == "skipped" and skipped["exit_code"] is None
    assert _holders_named(skipped["reason"]) == [escapee]
    assert f"run {old['id']} could not be replaced" in skipped["reason"]
    first.wait(30)
    old = rows(state)[0]
    if first_ends == "timed-out":
        assert old["reason"] == "timed out after 1s"  # not "(replaced by a new run)": it was not
    else:
        assert old["status"] == "killed" and "replaced" not in old["reason"]


# --- 6. values validation accepts (or a hand-edited definition holds) crash the wrapper -------------------


def _apply_raw(state: str, name: str, text: str) -> None:
    """An applied definition written as raw JSON text: NaN, 1e400 and 400-digit integers as they are."""
    os.makedirs(os.path.join(state, "applied"), mode=0o700, exist_ok=True)
    with open(os.path.join(state, "applied", name + ".json"), "w") as fh:
        fh.write(text)


def _defn_text(name: str, command: str, extra: str) -> str:
    base = json.dumps(job(name=name, command=command))
    return base[:-1] + ", " + extra + "}"


def _scheduled(state: str, name: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state, name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/", **popen)


HUGE = "1" + "0" * 400  # no float holds it


@pytest.mark.parametrize(("case", "command", "extra", "code", "statuses"), [
    ("timeout 25 days", "echo ok", '"timeout": 2160000', 0, ["succeeded"]),
    ("timeout Infinity", "echo ok", '"timeout": Infinity', 0, ["succeeded"]),
    ("timeout NaN", "echo ok", '"timeout": NaN', 0, ["succeeded"]),
    ("backoff NaN", "exit 1", '"retries": {"attempts": 2, "delay": 0, "backoff": NaN, "max_delay": 60}', 1,
     ["failed"] * 3),
    ("backoff overflow", "exit 1", '"retries": {"attempts": 400, "delay": 0, "backoff": 10, "max_delay": 600}', 1,
     None),
    ("huge max_age", "echo ok", f'"history": {{"keep": 200, "max_age": {HUGE}}}', 0, ["succeeded"]),
    ("huge keep", "echo ok", f'"history": {{"keep": {HUGE}, "max_age": 86400}}', 0, ["succeeded"]),
    ("jitter NaN", "echo ok", '"jitter": NaN', 0, ["succeeded"]),
    ("output_limit Infinity", "echo ok", '"output_limit": Infinity', 0, ["succeeded"]),
])
def test_extreme_values_in_an_applied_definition_never_crash_the_wrapper(state, started, case, command, extra,
                                                                         code, statuses):
    _apply_raw(state, "x", _defn_text("x", command, extra))
    proc = _scheduled(state, "x")
    started.append(proc)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (code, b"")
    recorded = rows(state)
    if statuses is None:  # 400 retries are clamped to the documented 100: 101 attempts, one run, all kept
        assert [r["attempt"] for r in recorded] == list(range(1, 2 + runner.MAX_RETRIES))
        assert {r["status"] for r in recorded} == {"failed"}
    else:
        assert [r["status"] for r in recorded] == statuses
    if case == "huge keep":  # the run log keeps working: a second run is recorded next to the first
        again = _scheduled(state, "x")
        started.append(again)
        assert again.communicate(timeout=60)[1] == b""
        assert [r["status"] for r in rows(state)] == ["succeeded", "succeeded"]


def test_a_kill_grace_beyond_what_poll_takes_still_ends_the_run_on_sigterm(state, marker, started):
    _apply_raw(state, "g", _defn_text("g", f"exec sleep {marker}", '"kill_grace": 2160000'))
    proc = _scheduled(state, "g")
    started.append(proc)
    wait_for(lambda: pids_with(f"sleep {marker}") and rows(state) and rows(state)[0]["pid"])
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (128 + signal.SIGTERM, b"")
    [r] = rows(state)
    assert r["status"] == "killed" and r["reason"] == "killed: SIGTERM sent to the wrapper"


# --- 7. a run marked `lost` while its job runs -------------------------------------------------------------


def _read_finalising(state: str) -> list[dict]:
    """What a read command (jobctl status, history) sees: lost runs finalised first, as cli._open_log does."""
    log = store.connect(os.path.join(state, "runs.db"))
    try:
        log.finalize_lost(None, os.uname().nodename, host.boot_id(), host.alive, host.group_alive,
                          time.time())
    finally:
        log.close()
    return rows(state)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


@pytest.mark.parametrize("moment", ["spawned", "started"])
def test_a_wrapper_killed_at_any_moment_never_leaves_a_lost_run_whose_job_runs(state, tmp_path, marker, started,
                                                                              moment):
    """JOBCTL_TEST_STOP stops the wrapper at a named point; SIGKILL it there, then read the log.

    "spawned": the job's process exists, its group is not recorded yet (the
    window: a reader then saw a dead wrapper and no group, and marked the
    run lost while the job went on).  "started": the job runs, recorded.
    """
    flag = tmp_path / "started"
    proc = _launch(started, state, job(command=f"touch {flag}; exec sleep {marker}"),
                   env=dict(os.environ, JOBCTL_TEST_STOP=moment))
    wait_for(lambda: _state_of(proc.pid) == b"T")
    [child] = _children(proc.pid)
    proc.kill()
    proc.wait()
    if moment == "spawned":
        # Its wrapper died before recording it: the child ends without running the job.
        wait_for(lambda: _state_of(child) in (b"Z", b"X"))
        [r] = _read_finalising(state)
        assert r["status"] == "lost"
        assert not flag.exists() and pids_with(f"sleep {marker}") == []
    else:
        wait_for(lambda: pids_with(f"sleep {marker}"))
        [r] = _read_finalising(state)
        assert r["status"] == "running" and r["pid"] == child  # its job runs: not lost
        os.killpg(child, signal.SIGKILL)
        wait_for(lambda: not pids_with(f"sleep {marker}"))
        [r] = _read_finalising(state)
        assert r["status"] == "lost"


def test_the_lock_descriptor_the_job_inherits_is_read_only_and_still_holds_the_lock(state, marker, started):
    """The guarantee behind item 1's fix: read-only, the inherited descriptor still keeps the lock after SIGKILL."""
    proc = _launch(started, state, job(command=f"exec sleep {marker}"))
    wait_for(lambda: pids_with(f"sleep {marker}") and rows(state) and rows(state)[0]["pid"])
    [pid] = pids_with(f"sleep {marker}")
    lock_path = os.path.realpath(os.path.join(state, "locks", "t.lock"))
    modes = [os.open(f"/proc/{pid}/fdinfo/{fd}", os.O_RDONLY) for fd in os.listdir(f"/proc/{pid}/fd")
             if os.path.realpath(f"/proc/{pid}/fd/{fd}") == lock_path]
    infos = []
    for fd in modes:
        infos.append(os.read(fd, 4096).decode())
        os.close(fd)
    [info] = infos
    flags = int(next(line.split()[1] for line in info.splitlines() if line.startswith("flags:")), 8)
    assert flags & os.O_ACCMODE == os.O_RDONLY and "FLOCK" in info
    proc.kill()
    proc.wait()
    assert run(state, job(command="true")).returncode == 75  # its job still holds it


def test_sqlite_is_untouched_by_notifier_children(state, tmp_path):
    """A notification child closes the run log's descriptors: the log stays consistent and readable."""
    out = tmp_path / "notified"
    result = run(state, job(command="exit 2", notify={"when": ["failure"], "command": f"echo hi > {out}"}))
    assert result.returncode == 2 and out.read_text() == "hi\n"
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT notify FROM runs").fetchone()[0] == "command ok"
    finally:
        db.close()


# --- from the attack review of the fix ------------------------------------------------

def test_a_job_inherits_no_descriptor_but_its_lock_and_the_standard_three(state: str, tmp_path: Path) -> None:
    """A root shell's open file (or cron's pipe) must not reach the job: sudo closes them, so does the wrapper."""
    secret = tmp_path / "root-only"
    secret.write_text("root's\n")
    os.chmod(secret, 0o600)
    fd = os.open(secret, os.O_WRONLY | os.O_APPEND)  # inherited by the wrapper, as a root shell's 7>>FILE
    try:
        probe = ("import os, sys\n"
                 "try:\n    os.write(int(sys.argv[1]), b'leaked\\n'); print('open')\n"
                 "except OSError as e:\n    print('closed', e.errno)\n")
        defn = job("fds", command=[sys.executable, "-c", probe, str(fd)])
        proc = subprocess.Popen([*runner_argv(), "--state-dir", state, "--definition-stdin", "--quiet", "fds"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(fd,))
        proc.communicate(json.dumps(defn).encode(), timeout=60)
    finally:
        os.close(fd)
    assert output(state, rows(state)[-1]["id"])[0] == b"closed 9\n"  # EBADF
    assert secret.read_text() == "root's\n"


def runner_argv() -> list[str]:
    return [sys.executable, "-m", "jobctl.runner"]


def test_hand_edited_counts_and_ages_are_clamped_not_fatal(state: str) -> None:
    # after_failures NaN: the job's own exit code, no traceback
    code = run(state, job("nan", command="exit 3", notify={"after_failures": float("nan"), "command": "true"}))
    assert code.returncode == 3 and b"Traceback" not in code.stderr
    # attempts infinite: the documented maximum (100 retries), not forever
    inf = run(state, job("inf", command="exit 1",
                         retries={"attempts": float("inf"), "delay": 0, "backoff": 1, "max_delay": 0}), timeout=300)
    assert inf.returncode == 1
    assert len(rows(state, "inf")) == 1 + runner.MAX_RETRIES
    # max_age 0 or negative: the run just recorded stays
    for age in (0, -1, 1e-9):
        name = f"age{abs(hash(age)) % 1000}"
        run(state, job(name, command="echo kept", history={"keep": 5, "max_age": age}))
        [r] = rows(state, name)
        assert output(state, r["id"])[0] == b"kept\n"


def test_the_wrappers_bounds_are_the_validated_ranges() -> None:
    from jobctl.jobs import spec

    assert spec.RANGE["retries.attempts"].maximum == runner.MAX_RETRIES
    assert spec.RANGE["notify.after_failures"].maximum == runner.MAX_AFTER_FAILURES


@pytest.mark.parametrize("text", [b"{not json", b'{"name": "x"', b"[]", b"{}", b'{"name": "other"}'])
def test_a_corrupt_applied_definition_is_one_line_and_logged(state: str, text: bytes) -> None:
    os.makedirs(os.path.join(state, "applied"))
    with open(os.path.join(state, "applied", "x.json"), "wb") as fh:
        fh.write(text)
    done = subprocess.run([sys.executable, "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", state, "x"],
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == runner.EX_JOBCTL
    assert b"Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert b"cannot read the applied definition" in done.stderr
    with open(os.path.join(state, "jobctl-errors.log"), "rb") as fh:
        assert b"cannot read the applied definition" in fh.read()
