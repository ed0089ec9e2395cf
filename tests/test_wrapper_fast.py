"""Issue 13, the wrapper's start: the line form, what it skips, and that nothing is lost on the way.

Crontab lines now run ``python3 -I -S …/jobctl/runner/start.py`` (no site, no
runpy), jobctl's own modules load from their .pyc past the import system's
search (runner.fast_imports), _sqlite3 loads without functools, the run log
is left open at exit instead of checkpointed (runlog.leave_open), a run
prunes its job only past the bounds by a margin (store.margin), and the
job's start time comes from the clock around the fork (host.forked_ticks).
Lines an older jobctl wrote (``-I -m jobctl.runner``) keep working.  The
benchmark is bench/wrapper_overhead.py; nothing here is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import applied, retention, store
from jobctl.cli.app import app
from jobctl.install import crontab
from jobctl.runner import cmdline, host

from runhelp import job

REPO = Path(__file__).resolve().parent.parent
CRON_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LOGNAME": "root", "SHELL": "/bin/sh"}
cli = CliRunner()

#: lines name start.py only where no one else could replace it (cmdline.untrusted_part): a checkout under a
#: directory others can write gets the module form, and the tests of the new form do not apply
needs_start_py = pytest.mark.skipif(cmdline.untrusted_part(cmdline.start_script()) is not None,
                                    reason="start.py lies where others could replace it: lines use the module form")


def run_line(command: list[str]) -> subprocess.CompletedProcess:
    """A wrapper command as cron runs a line: /bin/sh -c, cron's environment, stdin from /dev/null."""
    return subprocess.run(["/bin/sh", "-c", " ".join(command)], env=CRON_ENV, capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def runs(state: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM runs ORDER BY id").fetchall()
    finally:
        db.close()


# --- the line ----------------------------------------------------------------------------------

@needs_start_py
def test_a_line_names_start_py_without_site_and_the_wrapper_runs_from_it(tmp_path: Path) -> None:
    argv = cmdline.wrapper_argv(str(tmp_path), "t")
    assert argv[1:4] == ["-I", "-S", cmdline.start_script()] and not cmdline.is_module_form(argv)
    assert cmdline.start_script() == str(REPO / "jobctl" / "runner" / "start.py")
    line = crontab.render_line({**job("t"), "cron": "* * * * *"}, str(tmp_path), system=False)
    assert f" -I -S {cmdline.start_script()} --scheduled --state-dir {tmp_path} t # jobctl:t " in line
    assert crontab.job_run_by(line) == "t"
    applied.write(str(tmp_path), job("t", command="echo from-start"))
    done = run_line(argv)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert [(r["status"], r["trigger"]) for r in runs(str(tmp_path))] == [("succeeded", "schedule")]


def test_a_line_an_older_jobctl_wrote_still_runs(tmp_path: Path) -> None:
    old = [cmdline.interpreter_argv()[0], "-I", "-m", "jobctl.runner", "--scheduled", "--state-dir", str(tmp_path), "t"]
    assert cmdline.is_module_form(old) and crontab.job_run_by(" ".join(old) + " # jobctl:t 0123") == "t"
    applied.write(str(tmp_path), job("t", command="echo hi; exit 3"))
    done = run_line(old)
    assert done.returncode == 3 and b"exit code 3" in done.stdout  # cron_mail: failure, as before
    assert [r["status"] for r in runs(str(tmp_path))] == ["failed"]


@needs_start_py
def test_plan_and_status_show_a_line_of_the_older_form_as_changed_not_edited(write_job) -> None:
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    path = Path(os.environ["JOBCTL_CRONTAB"])
    new = path.read_text()
    prefix = " ".join(cmdline.interpreter_argv())
    assert prefix in new
    path.write_text(new.replace(prefix, f"{cmdline.interpreter_argv()[0]} -I -m jobctl.runner"))
    plan = cli.invoke(app, ["plan"])
    assert "  change    a (crontab line)" in plan.stdout.splitlines() and "edited" not in plan.stdout
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "changed"
    assert "change a" in cli.invoke(app, ["doctor"]).stdout
    assert cli.invoke(app, ["plan", "--check"]).exit_code != 0
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert path.read_text() == new
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "ok"


def test_a_hand_edited_line_of_the_current_form_is_still_edited(write_job) -> None:
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    path = Path(os.environ["JOBCTL_CRONTAB"])
    path.write_text(path.read_text().replace("*/5 * * * *", "*/7 * * * *"))
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "edited"


def test_a_start_py_others_could_replace_is_not_written_into_lines(tmp_path: Path) -> None:
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    (safe / "start.py").write_text("")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    (shared / "start.py").write_text("")
    os.symlink(safe / "start.py", shared / "link.py")
    if any(os.stat(p).st_mode & 0o022 and not os.stat(p).st_mode & stat.S_ISVTX for p in tmp_path.parents):
        pytest.skip(f"{tmp_path} lies under a directory others can write")
    assert cmdline.untrusted_part(str(safe / "start.py")) is None
    assert cmdline.untrusted_part(str(shared / "start.py")) == str(shared)
    assert cmdline.untrusted_part(str(shared / "link.py")) == str(shared)  # the link itself can be replaced
    os.symlink(shared / "start.py", safe / "points-out.py")
    assert cmdline.untrusted_part(str(safe / "points-out.py")) == str(shared)  # and so can what it points to
    os.chmod(shared, 0o1777)  # sticky, as /tmp: others cannot replace what root or we put there
    assert cmdline.untrusted_part(str(shared / "start.py")) is None
    # ... but a link another user put there is theirs to repoint, whatever it points to now
    os.symlink(safe, shared / "venv")
    os.lchown(shared / "venv", 4242, 4242)
    assert cmdline.untrusted_part(str(shared / "venv" / "start.py")) == str(shared / "venv")
    os.chmod(shared, 0o755)


@pytest.mark.skipif(os.geteuid() != 0, reason="chowning a link to another user needs root (CI is root)")
def test_apply_refuses_an_interpreter_reached_through_another_users_link(write_job, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: root's venv reached through a link in /tmp that another user owns and may repoint."""
    os.chmod(tmp_path, 0o755)
    shared = tmp_path / "pub"
    shared.mkdir(mode=0o1777)
    os.chmod(shared, 0o1777)
    os.symlink(Path(sys.executable).parent.parent, shared / "venv")
    os.lchown(shared / "venv", 4242, 4242)
    if any(os.stat(p).st_mode & 0o022 and not os.stat(p).st_mode & stat.S_ISVTX for p in tmp_path.parents):
        pytest.skip(f"{tmp_path} lies under a directory others can write")
    monkeypatch.setattr(cmdline, "_interpreter_argv", [str(shared / "venv" / "bin" / "python3"), *cmdline.MODULE_FORM])
    write_job("a.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    done = cli.invoke(app, ["apply"])
    assert done.exit_code == 3, done.output
    assert f"{shared / 'venv'} on its way can be changed by a user other than root" in done.output
    assert "nothing was changed" in done.output
    assert not Path(os.environ["JOBCTL_CRONTAB"]).exists()


def test_apply_from_a_checkout_names_the_package_the_module_form_would_run(tmp_path: Path) -> None:
    """python -m jobctl run in a checkout imports the checkout; cron must run what -I -m jobctl.runner runs."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    os.chmod(tmp_path, 0o755)
    shutil.copytree(REPO / "jobctl", checkout / "jobctl", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "JOBCTL_JOBS_DIR": str(tmp_path / "jobs"), "JOBCTL_STATE_DIR": str(tmp_path / "state"),
           "JOBCTL_CRONTAB": str(tmp_path / "crontab")}
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "a.yaml").write_text('schedule: "@daily"\ncommand: "true"\n')
    done = subprocess.run([sys.executable, "-m", "jobctl", "apply"], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = (tmp_path / "crontab").read_text()
    assert str(checkout) not in line
    installed = subprocess.run([sys.executable, "-I", "-c", "import jobctl; print(jobctl.__file__)"], cwd="/",
                               capture_output=True, text=True, check=True).stdout.strip()
    assert f"{os.path.dirname(installed)}/runner/start.py" in line or " -I -m jobctl.runner " in line
    # and the installed jobctl sees its own line: no false alarm of an edited line
    again = subprocess.run([sys.executable, "-m", "jobctl", "status", "--json"], cwd="/", env=env,
                           capture_output=True, text=True, timeout=120)
    assert [row["state"] for row in json.loads(again.stdout)] == ["ok"]


def test_a_line_naming_another_start_py_is_changed_and_doctor_says_it_is_gone(write_job) -> None:
    """A venv re-created for another Python leaves lines naming a start.py that no longer exists."""
    write_job("a.yaml", 'schedule: "*/5 * * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    path = Path(os.environ["JOBCTL_CRONTAB"])
    new = path.read_text()
    python = cmdline.interpreter_argv()[0]
    gone = "/nonexistent/venv/lib/python3.10/site-packages/jobctl/runner/start.py"
    path.write_text(new.replace(" ".join(cmdline.interpreter_argv()), f"{python} -I -S {gone}"))
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert row["state"] == "changed"
    doctor = cli.invoke(app, ["doctor"]).stdout
    assert f"{gone} (run by a) does not exist" in doctor
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert path.read_text() == new
    assert "ok    wrapper lines" in cli.invoke(app, ["doctor"]).stdout


def test_a_wrapper_without_site_names_its_own_interpreter_for_catch_up_runs(tmp_path: Path) -> None:
    """Under -S sys.prefix is the base interpreter's, not the venv's: a catch-up run must use the line's python."""
    code = (f"import sys; sys.path.append({str(REPO)!r}); from jobctl.runner import cmdline; "
            "print(cmdline.catch_up_run_argv('/s', 'j', 60)[0])")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == sys.executable


# --- what start.py skips -------------------------------------------------------------------------

def _site_free(code: str) -> str:
    """Run ``code`` as start.py does (-I -S, the checkout appended to sys.path); its stdout."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.append({str(REPO)!r})\n{code}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sqlite_loads_without_functools_and_its_statement_cache_works() -> None:
    out = _site_free(
        "import jobctl.store as s\n"
        "print('functools' in sys.modules, 'collections' in sys.modules)\n"
        "db = s.sqlite3.connect(':memory:')\n"
        "got = [db.execute(f'SELECT {i % 300}').fetchone()[0] for i in range(900)]\n"  # past the cache's 128
        "print(got == [i % 300 for i in range(900)])\n"
        "import functools\n"
        "print(functools.reduce(lambda a, b: a + b, [1, 2, 3]), hasattr(functools, 'partial'))\n")
    assert out.split() == ["False", "False", "True", "6", "True"]


def test_fast_imports_load_the_same_modules_and_leave_stale_ones_to_importlib(tmp_path: Path) -> None:
    out = _site_free(
        f"from jobctl.runner import fast_imports\n"
        f"fast_imports({str(REPO / 'jobctl')!r})\n"
        "import jobctl.store, jobctl.runner.wrapper, jobctl.runner.notify\n"
        "for m in (jobctl.store, jobctl.runner.wrapper, jobctl.runner.notify):\n"
        "    print(type(m.__loader__).__name__, m.__file__ == m.__spec__.origin, m.__cached__ == m.__spec__.cached)\n"
        "import inspect; print(inspect.getsource(jobctl.store.margin).split('(')[0])\n")
    assert out.splitlines() == ["Loader True True"] * 3 + ["def margin"]
    # a copy of the package whose paths.py changed after its .pyc was written: the new source runs
    copy = tmp_path / "site"
    shutil.copytree(REPO / "jobctl", copy / "jobctl", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy / "jobctl")], check=True)
    source = copy / "jobctl" / "paths.py"
    source.write_text(source.read_text() + "\nPROBE = 'new source'\n")
    os.utime(source, (time.time() + 10, time.time() + 10))
    code = (f"import sys; sys.path.append({str(copy)!r}); from jobctl.runner import fast_imports; "
            f"fast_imports({str(copy / 'jobctl')!r}); import jobctl.paths as p, jobctl.applied as a; "
            "print(p.PROBE, type(p.__loader__).__name__, type(a.__loader__).__name__)")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["new", "source", "SourceFileLoader", "Loader"]


def test_the_start_time_from_the_clock_is_the_one_proc_shows() -> None:
    for _ in range(100):
        before = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        after = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        try:
            assert host.forked_ticks(pid, before, after) == host.start_ticks(pid) > 0
            # readings a tick apart: /proc decides
            assert host.forked_ticks(pid, before - 10**9, after) == host.start_ticks(pid)
        finally:
            os.waitpid(pid, 0)


# --- the run log left open -----------------------------------------------------------------------

def test_a_thousand_wrappers_that_never_close_the_log_lose_no_run(tmp_path: Path) -> None:
    """Every run recorded, the log intact, the WAL bounded; a reader that closes folds it back."""
    state = str(tmp_path)
    names = [f"j{i}" for i in range(8)]
    for name in names:
        applied.write(state, job(name, command="true", history={"keep": 1000, "max_age": 10**8}))

    def worker(name: str) -> list[int]:
        return [run_line(cmdline.wrapper_argv(state, name)).returncode for _ in range(125)]

    with ThreadPoolExecutor(len(names)) as pool:
        codes = [c for result in pool.map(worker, names) for c in result]
    assert codes == [0] * 1000
    wal = os.path.join(state, "runs.db-wal")
    assert os.path.exists(wal)  # nobody closed it
    assert os.path.getsize(wal) < 8 << 20  # checkpointed along the way (wal_autocheckpoint)
    assert not os.path.exists(os.path.join(state, "jobctl-errors.log"))
    db = sqlite3.connect(os.path.join(state, "runs.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(db.execute("SELECT job, count(*) FROM runs WHERE status = 'succeeded' GROUP BY job"))
        assert counts == {name: 125 for name in names}
        assert db.execute("SELECT count(*) FROM runs WHERE pid IS NULL OR finished_at IS NULL").fetchone()[0] == 0
    finally:
        db.close()
    assert not os.path.exists(wal)  # the last connection to close checkpointed and removed it


def test_a_wrapper_connection_checkpoints_when_one_of_its_rows_comes_to_its_turn(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")

    def in_the_database_file() -> int:
        """Rows the database file itself holds, the WAL ignored: what checkpoints have folded back."""
        db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            db.close()

    log = store.connect(path, checkpoint=False)
    try:
        assert log.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for i in range(1, store.CHECKPOINT_EVERY):  # ids 1..7: not their turn
            log.inserted = []
            assert log.record("a", "skipped", "schedule", 1, None, float(i), 1, "h", "paused") == i
            log.checkpoint_due()
        assert in_the_database_file() == 0
        log.inserted = []
        log.record("a", "skipped", "schedule", 1, None, 8.0, 1, "h", "paused")  # id 8
        log.checkpoint_due()
        assert in_the_database_file() == store.CHECKPOINT_EVERY
    finally:
        log.close()
    reader = store.connect(path)
    assert reader.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # the read commands: SQLite's own
    reader.close()


def test_the_wal_of_wrappers_run_one_after_another_stays_small(tmp_path: Path) -> None:
    """Each opener recovers the WAL and forgets what was checkpointed: emptied every CHECKPOINT_EVERY runs."""
    state = str(tmp_path)
    applied.write(state, job("t"))
    for _ in range(3 * store.CHECKPOINT_EVERY + 2):
        assert run_line(cmdline.wrapper_argv(state, "t")).returncode == 0
    assert os.path.getsize(os.path.join(state, "runs.db-wal")) < 100_000  # ~4 KiB a page, ~8 pages a run


# --- retention past the bounds by a margin -------------------------------------------------------

def _finished(log: store.Store, name: str, n: int, started: float = 1000.0) -> None:
    for i in range(n):
        rid = log.start_run(name, "schedule", 1, None, started + i, 1, "h", "b")
        log.finish_run(rid, "succeeded", 0, None, started + i + 0.5, "exit status 0", b"", b"", 0, 0)


def test_a_run_prunes_its_job_only_past_keep_by_the_margin_then_down_to_keep(tmp_path: Path) -> None:
    log = store.connect(str(tmp_path / "runs.db"))
    try:
        assert store.margin(10, 86400) == (1, 8640.0) and store.margin(200, 0)[0] == 20 and store.margin(1, 0)[0] == 1
        _finished(log, "a", 11)
        assert log.after_run("a", 10, 10**8, 2000.0) == (0, 0)  # keep + margin: not yet
        _finished(log, "a", 1, started=1100.0)
        assert log.after_run("a", 10, 10**8, 2000.0) == (2, 0)  # past it: back to keep
        assert len(log.history("a", limit=100)) == 10
        # jobctl prune trims to keep exactly whatever the margin
        applied.write(str(tmp_path), job("a", history={"keep": 10, "max_age": 10**8}))
        _finished(log, "a", 1, started=1200.0)
        assert log.after_run("a", 10, 10**8, 2000.0) == (0, 0)
        assert retention.prune_all(log, str(tmp_path), 2000.0) == [("a", 1)]
        assert len(log.history("a", limit=100)) == 10
    finally:
        log.close()


def test_a_run_prunes_runs_older_than_max_age_once_past_it_by_the_margin(tmp_path: Path) -> None:
    log = store.connect(str(tmp_path / "runs.db"))
    try:
        _finished(log, "a", 3, started=1000.0)
        now = 1000.0 + 100 + 5  # max_age 100: the oldest is 105 s old, within the margin of 10
        assert log.after_run("a", 1000, 100, now) == (0, 0)
        assert log.after_run("a", 1000, 100, now + 10) == (2, 0)  # 115 s: past it; the newest real run stays
    finally:
        log.close()


def test_finish_last_is_finish_run_and_after_run_in_one_transaction(tmp_path: Path) -> None:
    log = store.connect(str(tmp_path / "runs.db"))
    try:
        rid = log.start_run("a", "schedule", 1, None, 1.0, 1, "h", "b")
        log.finish_run(rid, "failed", 1, None, 2.0, "exit status 1", b"", b"", 0, 0)
        log.after_run("a", 10, 10**8, 3.0)
        rid = log.start_run("a", "schedule", 1, None, 4.0, 1, "h", "b")
        assert log.finish_last(rid, "failed", 1, None, 5.0, "exit status 1", b"out", b"", 0, 3,
                               "a", 10, 10**8, 6.0) == (0, 2)
        row = log.get(rid)
        assert (row["status"], row["failures"], row["output_bytes"]) == ("failed", 2, 3)
        assert log.output(rid) == (b"out", b"", 0)
    finally:
        log.close()


def test_a_finished_run_is_synced_to_disk_after_its_commit_and_outside_the_write_lock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Durable across a power cut, without holding a herd's writers behind the sync."""
    path = str(tmp_path / "runs.db")
    log = store.connect(path, checkpoint=False)
    rid = log.start_run("a", "schedule", 1, None, 1.0, 1, "h", "b")
    seen: list[tuple[str, str, bool]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        other = sqlite3.connect(path, timeout=0)
        try:
            status = other.execute("SELECT status FROM runs WHERE id = ?", (rid,)).fetchone()[0]
            try:  # the write lock is free while the sync runs
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                free = True
            except sqlite3.OperationalError:
                free = False
        finally:
            other.close()
        seen.append((os.readlink(f"/proc/self/fd/{fd}"), status, free))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    log.finish_last(rid, "succeeded", 0, None, 2.0, "exit status 0", b"", b"", 0, 0, "a", 10, 10**8, 3.0)
    assert seen == [(path + "-wal", "succeeded", True)]


def test_the_state_directory_modes_are_unchanged_by_the_wal_left_behind(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    applied.write(state, job("t"))
    assert run_line(cmdline.wrapper_argv(state, "t")).returncode == 0
    for name in ("runs.db", "runs.db-wal", "runs.db-shm"):
        assert stat.S_IMODE(os.stat(os.path.join(state, name)).st_mode) == 0o600
