"""Job-to-job rules with real processes and the real run log: then/on_failure chains, requires, lock_group.

Every run here is a real wrapper running a real shell; what happened is read
back from the run log's rows (sqlite3, not jobctl's store) and from files the
jobs write themselves.  Overlap is judged from timestamps the jobs' own
processes write, not from anything jobctl says.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from jobctl import applied, paths

from runhelp import job, live_pids_with, output, pids_with, rows, wait_for


def jobctl(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, **kw)


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def write_job(name: str, text: str) -> Path:
    d = Path(os.environ["JOBCTL_JOBS_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.yaml"
    path.write_text(text)
    return path


def finished(n: int, job_name: str | None = None) -> list[dict]:
    """Wait until ``n`` rows (of ``job_name``) have ended, then return them all."""
    def done() -> list[dict] | None:
        found = rows(state(), job_name)
        return found if len(found) >= n and all(r["status"] != "running" for r in found) else None
    return wait_for(done, timeout=60)


def chain_three(tmp: Path) -> None:
    write_job("extract", f"schedule: '0 2 * * *'\ncommand: 'echo rows=42; echo from-extract >> {tmp}/order'\n"
                         "then: [transform]\n")
    write_job("transform", "schedule: '@yearly'\n"
                           f"command: 'echo order >> {tmp}/order; echo \"T[$(head -1 \"$JOBCTL_PARENT_OUTPUT\")]"
                           " job=$JOBCTL_PARENT_JOB run=$JOBCTL_PARENT_RUN_ID status=$JOBCTL_PARENT_STATUS\"'\n"
                           "then: [load]\n")
    write_job("load", "schedule: '@yearly'\n"
                      "command: 'echo \"L[$(cat \"$JOBCTL_PARENT_OUTPUT\")]\"; "
                      f"echo \"$JOBCTL_PARENT_OUTPUT\" > {tmp}/load-path; exit 3'\n"
                      "on_failure: [page]\nthen: [never]\n")
    write_job("page", "schedule: '@yearly'\ncommand: 'echo page $JOBCTL_PARENT_JOB $JOBCTL_PARENT_STATUS'\n")
    write_job("never", f"schedule: '@yearly'\ncommand: 'touch {tmp}/never-ran'\n")


def test_a_chain_of_three_passes_output_along_and_history_shows_it(tmp_path: Path):
    chain_three(tmp_path)
    assert jobctl("apply").returncode == 0
    done = jobctl("run", "extract")
    assert done.returncode == 0, done.stderr
    runs = finished(4)
    by_job = {r["job"]: r for r in runs}
    assert set(by_job) == {"extract", "transform", "load", "page"}
    ext, tr, ld, pg = (by_job[n] for n in ("extract", "transform", "load", "page"))
    # each child names its parent, with trigger chain; the failure took the on_failure branch only
    assert (tr["parent_run_id"], tr["trigger"]) == (ext["id"], "chain")
    assert (ld["parent_run_id"], ld["status"], ld["exit_code"]) == (tr["id"], "failed", 3)
    assert pg["parent_run_id"] == ld["id"]
    assert not (tmp_path / "never-ran").exists()
    # the parent's output reached the child through JOBCTL_PARENT_OUTPUT, step by step
    t_out = output(state(), tr["id"])[0].decode().strip()
    assert t_out == f"T[rows=42] job=extract run={ext['id']} status=succeeded"
    l_out = output(state(), ld["id"])[0].decode().strip()
    assert l_out == f"L[{t_out}]"
    assert output(state(), pg["id"])[0].decode().strip() == "page load failed"
    # the file was the child's for its run only
    assert not Path((tmp_path / "load-path").read_text().strip()).exists()
    # history --json carries the links
    hist = json.loads(jobctl("history", "--json", "--limit", "10").stdout)
    records = hist if isinstance(hist, list) else hist["runs"]
    links = {r["job"]: r["parent_run_id"] for r in records}
    assert links == {"extract": None, "transform": ext["id"], "load": tr["id"], "page": ld["id"]}


def test_a_chained_run_stands_for_its_parents_slot(tmp_path: Path):
    write_job("a", "schedule: '*/5 * * * *'\ncommand: 'true'\nthen: [b]\n")
    write_job("b", "schedule: '@yearly'\ncommand: 'echo SF=$JOBCTL_SCHEDULED_FOR SS=$JOBCTL_SLOT_START "
                   "SE=$JOBCTL_SLOT_END'\n")
    assert jobctl("apply").returncode == 0
    slot = 1_700_000_100  # a minute of the schedule, in the past
    done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--backfill-run",
                           str(slot), "--quiet", "a"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    runs = finished(2)
    b = next(r for r in runs if r["job"] == "b")
    assert b["scheduled_for"] == slot
    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    # the parent's slot (its previous */5 time to this one), not one of b's own @yearly schedule
    assert output(state(), b["id"])[0].decode().strip() == f"SF={iso(slot)} SS={iso(slot - 300)} SE={iso(slot)}"


def test_a_skipped_or_paused_run_starts_no_chain_and_a_paused_child_is_recorded(tmp_path: Path):
    write_job("a", "schedule: '@daily'\ncommand: 'true'\nthen: [b]\n")
    write_job("b", f"schedule: '@yearly'\ncommand: 'touch {tmp_path}/b-ran'\n")
    assert jobctl("apply").returncode == 0
    assert jobctl("pause", "b").returncode == 0
    assert jobctl("run", "a").returncode == 0
    runs = finished(2)
    b = next(r for r in runs if r["job"] == "b")
    assert (b["status"], b["trigger"]) == ("skipped", "chain")
    assert "paused" in b["reason"] and b["parent_run_id"] == runs[0]["id"]
    assert not (tmp_path / "b-ran").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a job as another user")
def test_the_parents_output_file_belongs_to_the_childs_user_only(tmp_path: Path):
    if not shutil.which("useradd"):
        pytest.skip("no useradd")
    name = f"jobctl-c{os.getpid()}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    try:
        user = pwd.getpwnam(name)
        st = state()
        os.makedirs(st, mode=0o700, exist_ok=True)
        spy = Path(tempfile.mkdtemp(dir="/tmp"))
        spy.chmod(0o777)
        try:
            applied.write(st, job("secret", "echo token=s3cr3t", then=["child"]))
            applied.write(st, job("child", f"stat -c '%U %a' \"$JOBCTL_PARENT_OUTPUT\" "
                                           f"\"$(dirname \"$JOBCTL_PARENT_OUTPUT\")\" > {spy}/seen; "
                                           f"cat \"$JOBCTL_PARENT_OUTPUT\" >> {spy}/seen", user=name, working_dir="/"))
            done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", st, "secret"],
                                  capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr
            finished(2)
            seen = (spy / "seen").read_text().split("\n")
            assert seen[:3] == [f"{name} 600", f"{name} 700", "token=s3cr3t"]
            child = rows(st, "child")[0]
            assert child["status"] == "succeeded"
        finally:
            shutil.rmtree(spy)
        assert user.pw_uid != 0
    finally:
        subprocess.run(["userdel", name], capture_output=True)


# --- requires -------------------------------------------------------------------------------------

def test_requires_met_runs_and_not_met_is_a_skip_naming_the_requirement(tmp_path: Path):
    write_job("extract", "schedule: '@daily'\ncommand: 'exit ${FAIL:-0}'\nenv: {FAIL: '0'}\n")
    write_job("report", f"schedule: '@daily'\ncommand: 'touch {tmp_path}/report-ran'\n"
                        "requires: [{job: extract, status: succeeded, within: 2h}]\nretries: 3\n")
    assert jobctl("apply").returncode == 0
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled", "report"]
    # never ran: not met
    done = subprocess.run(cron, capture_output=True, timeout=60)
    assert done.returncode == 75
    [skip] = rows(state(), "report")
    assert skip["status"] == "skipped"
    assert skip["reason"] == "skipped: requires job extract succeeded within 2h; extract has no finished run"
    assert not (tmp_path / "report-ran").exists()
    # succeeded: met
    assert jobctl("run", "extract").returncode == 0
    assert subprocess.run(cron, capture_output=True, timeout=60).returncode == 0
    assert (tmp_path / "report-ran").exists()
    # failed since: not met, one skip and no retries
    write_job("extract", "schedule: '@daily'\ncommand: 'exit 4'\n")
    assert jobctl("apply").returncode == 0
    jobctl("run", "extract")
    (tmp_path / "report-ran").unlink()
    assert subprocess.run(cron, capture_output=True, timeout=60).returncode == 75
    last = rows(state(), "report")[-1]
    assert last["status"] == "skipped" and last["attempt"] == 1
    assert last["reason"].startswith("skipped: requires job extract succeeded within 2h; its latest run ")
    assert " failed " in last["reason"]
    assert len(rows(state(), "report")) == 3
    # a manual run is the operator's decision: requires is not checked
    assert jobctl("run", "report").returncode == 0
    assert (tmp_path / "report-ran").exists()


def test_requires_within_is_honoured(tmp_path: Path):
    import sqlite3

    write_job("extract", "schedule: '@daily'\ncommand: 'true'\n")
    write_job("report", "schedule: '@daily'\ncommand: 'true'\nrequires: [{job: extract, within: 1h}]\n")
    assert jobctl("apply").returncode == 0
    assert jobctl("run", "extract").returncode == 0
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    with db:  # the success was 2 hours ago
        db.execute("UPDATE runs SET started_at = started_at - 7200, finished_at = finished_at - 7200")
    db.close()
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled", "report"]
    assert subprocess.run(cron, capture_output=True, timeout=60).returncode == 75
    reason = rows(state(), "report")[-1]["reason"]
    assert reason.startswith("skipped: requires job extract succeeded within 1h; its latest run 1 succeeded 2h")


# --- lock_group -----------------------------------------------------------------------------------

SPAN = ('echo "$JOBCTL_JOB start $(date +%s.%N)" >> {log}; sleep {secs}; '
        'echo "$JOBCTL_JOB end $(date +%s.%N)" >> {log}')


def spans(log: Path) -> list[tuple[str, float, float]]:
    starts: dict[str, list[float]] = {}
    out = []
    for line in log.read_text().splitlines():
        job_name, what, t = line.split()
        if what == "start":
            starts.setdefault(job_name, []).append(float(t))
        else:
            out.append((job_name, starts[job_name].pop(0), float(t)))
    return out


def test_two_jobs_of_one_group_never_overlap_even_when_a_wrapper_is_sigkilled(tmp_path: Path):
    log = tmp_path / "spans"
    head = "schedule: '@daily'\nlock_group: db\nconcurrency: wait\n"
    write_job("a", f"{head}command: '{SPAN.format(log=log, secs=2)}'\n")
    write_job("b", f"{head}command: '{SPAN.format(log=log, secs=1)}'\n")
    assert jobctl("apply").returncode == 0
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled"]
    a = subprocess.Popen([*cron, "a"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: log.exists() and "a start" in log.read_text())
    b = subprocess.Popen([*cron, "b"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    a.kill()  # the wrapper dies; its job's process group still holds the group's lock
    a.wait()
    assert b.wait(timeout=60) == 0
    got = spans(log)
    assert {s[0] for s in got} == {"a", "b"}
    (_, a0, a1), (_, b0, b1) = sorted(got, key=lambda s: s[1])
    assert b0 >= a1, f"b started at {b0} while a ran until {a1}"


def test_forbid_in_a_group_skips_naming_the_other_jobs_run(tmp_path: Path):
    log = tmp_path / "spans"
    write_job("a", f"schedule: '@daily'\nlock_group: db\ncommand: '{SPAN.format(log=log, secs=3)}'\n")
    write_job("b", f"schedule: '@daily'\nlock_group: db\ncommand: '{SPAN.format(log=log, secs=0)}'\n")
    assert jobctl("apply").returncode == 0
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled"]
    a = subprocess.Popen([*cron, "a"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: log.exists() and "a start" in log.read_text())
    assert subprocess.run([*cron, "b"], capture_output=True, timeout=60).returncode == 75
    [skip] = rows(state(), "b")
    a_id = rows(state(), "a")[0]["id"]
    assert skip["reason"] == f"skipped: run {a_id} of job a still running (lock group db)"
    a.wait(timeout=60)
    assert "b start" not in log.read_text()


def test_replace_in_a_group_ends_the_other_jobs_run(tmp_path: Path):
    write_job("a", "schedule: '@daily'\nlock_group: db\ncommand: 'sleep 37'\n")
    write_job("b", "schedule: '@daily'\nlock_group: db\nconcurrency: replace\nkill_grace: 2s\ncommand: 'true'\n")
    assert jobctl("apply").returncode == 0
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled"]
    a = subprocess.Popen([*cron, "a"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: any(r["pid"] for r in rows(state(), "a")))
    assert subprocess.run([*cron, "b"], capture_output=True, timeout=60).returncode == 0
    a.wait(timeout=30)
    [ra] = rows(state(), "a")
    assert ra["status"] == "killed" and ra["reason"].endswith("(replaced by a new run of job b)")
    wait_for(lambda: not live_pids_with("sleep 37"), timeout=10)  # zombies left out


# --- validation -----------------------------------------------------------------------------------

def test_cycles_unknown_names_and_allow_in_a_group_are_located_errors(tmp_path: Path):
    write_job("a", "schedule: '@daily'\ncommand: 'true'\nthen: [b]\n")
    write_job("b", "schedule: '@daily'\ncommand: 'true'\non_failure:\n  - a\n")
    write_job("c", "schedule: '@daily'\ncommand: 'true'\nrequires:\n  - {job: extrct, within: 2h}\n")
    write_job("d", "schedule: '@daily'\ncommand: 'true'\nlock_group: db\nconcurrency: allow\n")
    done = jobctl("validate")
    assert done.returncode == 1
    jobs = os.environ["JOBCTL_JOBS_DIR"]
    lines = [ln for ln in done.stderr.splitlines() + done.stdout.splitlines() if ln.startswith(jobs)]
    assert f"{jobs}/a.yaml:3:8: job a: then: a -> b -> a is a cycle: a run would start itself again without " \
           "end; remove one of these links" in lines
    assert any(ln.startswith(f"{jobs}/c.yaml:4:5: job c: requires: no job named 'extrct'") for ln in lines)
    assert any(ln.startswith(f"{jobs}/d.yaml:3:13: job d: lock_group 'db' with concurrency allow") for ln in lines)
    # nothing was installed
    assert not os.path.exists(os.environ["JOBCTL_CRONTAB"]) or "jobctl:a" not in Path(
        os.environ["JOBCTL_CRONTAB"]).read_text()
    assert jobctl("apply").returncode != 0
    assert not os.path.exists(paths.applied_file(state(), "a"))


def test_a_chain_is_not_started_by_a_wrapper_told_not_to(tmp_path: Path):
    write_job("a", "schedule: '@daily'\ncommand: 'true'\nthen: [b]\n")
    write_job("b", f"schedule: '@yearly'\ncommand: 'touch {tmp_path}/b-ran'\n")
    assert jobctl("apply").returncode == 0
    done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--timer", "--no-chain",
                           "a"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    time.sleep(1.5)
    assert [r["job"] for r in rows(state())] == ["a"]
    assert not (tmp_path / "b-ran").exists()


def test_the_readme_example_is_valid_and_means_what_the_readme_says():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Job-to-job rules, without a daemon", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    write_job("etl", block)
    done = jobctl("validate", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    from jobctl.jobs import loader

    jobs = {j.name: j for j in loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])}
    assert jobs["extract"].then == ("transform",) and jobs["extract"].on_failure == ("page-oncall",)
    assert [(r.job, r.status, r.within) for r in jobs["transform"].requires] == [("extract", "succeeded", 7200)]
    assert jobs["extract"].lock_group == jobs["transform"].lock_group == "warehouse"


@pytest.mark.parametrize("change", ["lock_group: other\n", ""])
def test_a_job_never_overlaps_itself_when_its_lock_group_changes_mid_run(tmp_path: Path, change: str):
    log = tmp_path / "spans"
    span = SPAN.format(log=log, secs=2)
    write_job("x", f"schedule: '@daily'\nlock_group: grp\ncommand: '{span}'\n")
    assert jobctl("apply").returncode == 0
    cron = [sys.executable, "-m", "jobctl.runner", "--state-dir", state(), "--scheduled", "x"]
    first = subprocess.Popen(cron, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: log.exists() and "x start" in log.read_text())
    write_job("x", f"schedule: '@daily'\n{change}command: '{span}'\n")  # another group, or none
    assert jobctl("apply").returncode == 0
    assert subprocess.run(cron, capture_output=True, timeout=60).returncode == 75
    assert first.wait(timeout=60) == 0
    assert [s[0] for s in spans(log)] == ["x"]
    assert rows(state(), "x")[-1]["status"] == "skipped"


def test_a_killed_childs_parent_output_is_swept_by_the_pass(tmp_path: Path):
    write_job("p", "schedule: '@daily'\ncommand: 'echo secret'\nthen: [c]\n")
    write_job("c", f"schedule: '@yearly'\ncommand: 'dirname \"$JOBCTL_PARENT_OUTPUT\" > {tmp_path}/dir; sleep 30'\n")
    assert jobctl("apply").returncode == 0
    assert jobctl("run", "p", "-q").returncode == 0
    wait_for(lambda: (tmp_path / "dir").exists() and (tmp_path / "dir").read_text().strip())
    directory = Path((tmp_path / "dir").read_text().strip())
    assert directory.is_dir()
    child = rows(state(), "c")[0]
    for pid in pids_with("--chain-run"):
        os.kill(pid, 9)  # the child's wrapper dies before it can remove the file
    os.killpg(child["pid"], 9)
    time.sleep(0.5)
    assert directory.is_dir()
    done = subprocess.run([sys.executable, "-m", "jobctl.runner", "--catch-up", "--state-dir", state()],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not directory.exists()
    assert rows(state(), "c")[0]["status"] == "lost"
