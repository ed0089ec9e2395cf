"""`jobctl export` of the job-to-job rules: lock_group, requires, then, on_failure (and baselines).

systemd: the units are read back through systemd-analyze (its debug dump of
the units loaded together, with OnSuccess=/OnFailure= and the reverse
OnSuccessOf=/OnFailureOf= systemd derives), then run as systemd runs them:
each ExecStart= as systemd parsed it, a real wrapper on the definitions
--record wrote, the real run log, and the next unit started by systemd's
rules (systemd.unit(5): OnSuccess= when the unit ends inactive, OnFailure=
when it ends failed, SuccessExitStatus= deciding which; systemd.exec(5):
MONITOR_* only when exactly one unit lists the started one).  There is no
systemd manager here, so that last step is the one thing this file does in
systemd's place.

Kubernetes: every CronJob is validated as test_export_kubernetes validates
them, and is the very CronJob the job exports without the rules: nothing is
carried, and each rule is named in one warning.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from test_export_kubernetes import check_cronjob
from test_export_systemd import ANALYZE, needs_analyze, unquote_command_line
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.export import systemd as sd
from jobctl.runner import cmdline

cli = CliRunner()
_UNIT = re.compile(r"^\t-> Unit (\S+):$", re.M)
_PROPERTY = re.compile(r"^\t+([A-Za-z ]+): (.*)$", re.M)
#: what the dump names dependencies with; everything else of a line is its origin
_DEPENDENCIES = ("OnSuccess", "OnFailure", "OnSuccessOf", "OnFailureOf", "Requires", "Wants", "After", "Before")


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def export(*args: str):
    return cli.invoke(app, ["export", *args])


def history(name: str) -> list[dict]:
    """The job's runs in the run log, oldest first."""
    result = cli.invoke(app, ["history", name, "--json"])
    assert result.exit_code == 0, result.output
    return list(reversed(json.loads(result.stdout)))


@pytest.fixture
def pipeline(write_job, tmp_path):
    """fetch → (then) extract → (then) load; fetch → (on_failure) page.  fetch fails while FAIL exists."""
    fail = tmp_path / "fetch.fails"
    write_job("fetch.yaml", f"schedule: '0 2 * * *'\ncommand: test ! -e {fail}\nthen: [extract]\n"
                            "on_failure: page\nlock_group: etl\n")
    write_job("extract.yaml", "schedule: '0 3 * * *'\ncommand: echo extracted\n"
                              "requires: [{job: fetch, status: succeeded, within: 2h}]\nthen: load\n"
                              "lock_group: etl\n")
    write_job("load.yaml", "schedule: '@daily'\ncommand: echo loaded\n")
    write_job("page.yaml", "schedule: '@yearly'\ncommand: echo paged\n")
    return fail


# --- systemd: read back and run as systemd would -------------------------------------------------------

def loaded(directory: Path) -> dict[str, dict[str, list[str]]]:
    """Every service in ``directory`` as systemd loads them together: {unit: {property: [values]}}."""
    files = sorted(str(p) for p in directory.glob("*.service"))
    proc = subprocess.run([ANALYZE, "verify", "--man=no", *files], capture_output=True, text=True,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "debug"})
    assert proc.returncode == 0, proc.stderr
    units: dict[str, dict[str, list[str]]] = {}
    starts = list(_UNIT.finditer(proc.stdout))
    for m, end in zip(starts, [*starts[1:], None], strict=True):
        body = proc.stdout[m.end():end.start() if end else None]
        props: dict[str, list[str]] = {}
        for key, value in _PROPERTY.findall(body):
            if key in _DEPENDENCIES:
                value = value.split(" (")[0]  # "jobctl-b.service (origin-file)"
            props.setdefault(key, []).append(value)
        units[m.group(1)] = props
    assert sorted(units) == sorted(os.path.basename(f) for f in files)
    return units


def success_statuses(path: Path) -> set[int]:
    """Exit statuses systemd counts as success for the unit: 0 and its SuccessExitStatus= (systemd.service(5))."""
    extra = re.findall(r"^SuccessExitStatus=(.*)$", path.read_text(), re.M)
    return {0, *(int(v) for line in extra for v in line.split())}


def start_unit(directory: Path, unit: str, stop: str | None = None) -> list[tuple[str, int]]:
    """Start ``unit`` and what its OnSuccess=/OnFailure= start in turn, as systemd would; (unit, exit status) each.

    ``stop``: the job whose run is stopped as ``systemctl stop`` does it with
    KillMode=mixed (SIGTERM to the main process) once the run log has it running.
    """
    units = loaded(directory)
    done: list[tuple[str, int]] = []
    queue: list[tuple[str, dict[str, str]]] = [(unit, {})]
    while queue:
        name, monitor = queue.pop(0)
        [command] = units[name]["Command Line"]
        proc = subprocess.Popen(unquote_command_line(command), env={"PATH": "/usr/bin:/bin", **monitor}, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if stop is not None and name == f"jobctl-{stop}.service":
            deadline = time.monotonic() + 30
            while not [r for r in history(stop) if r["status"] == "running"] and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.terminate()
        code = proc.wait(timeout=120)
        done.append((name, code))
        ok = code in success_statuses(directory / name)
        for following in units[name].get("OnSuccess" if ok else "OnFailure", []):
            listed_by = set(units[following].get("OnSuccessOf", []) + units[following].get("OnFailureOf", []))
            env = {"MONITOR_SERVICE_RESULT": "success" if ok else "exit-code", "MONITOR_EXIT_CODE": "exited",
                   "MONITOR_EXIT_STATUS": str(code), "MONITOR_UNIT": name} if len(listed_by) == 1 else {}
            queue.append((following, env))
    return done


def settled(names: tuple[str, ...], seconds: float = 1.5) -> dict[str, list[dict]]:
    """Every run of ``names`` once nothing has been added for ``seconds`` (a detached chain run would show)."""
    before = None
    while True:
        now = {n: history(n) for n in names}
        if now == before:
            return now
        before = now
        time.sleep(seconds)


@pytest.fixture
def units(pipeline, tmp_path):
    result = export("systemd", "--out", str(tmp_path / "units"), "--record")
    assert result.exit_code == 0, result.output
    return tmp_path / "units"


@needs_analyze
def test_then_and_on_failure_are_on_success_and_on_failure_as_systemd_reads_them(units):
    got = loaded(units)
    assert got["jobctl-fetch.service"]["OnSuccess"] == ["jobctl-extract.service"]
    assert got["jobctl-fetch.service"]["OnFailure"] == ["jobctl-page.service"]
    assert got["jobctl-extract.service"]["OnSuccess"] == ["jobctl-load.service"]
    assert "OnFailure" not in got["jobctl-extract.service"]
    assert got["jobctl-load.service"]["OnSuccessOf"] == ["jobctl-extract.service"]
    assert got["jobctl-page.service"]["OnFailureOf"] == ["jobctl-fetch.service"]
    for props in got.values():
        # requires and lock_group are the wrapper's: no unit requires or orders another job's unit
        assert not [u for key in ("Requires", "Wants", "After", "Before") for u in props.get(key, [])
                    if u.startswith("jobctl-")]
        [command] = props["Command Line"]
        assert "--no-chain" in unquote_command_line(command)


@needs_analyze
@pytest.mark.parametrize("user_mode", [False, True], ids=["system", "user"])
def test_systemd_analyze_verify_accepts_the_rules(pipeline, tmp_path, user_mode):
    out = tmp_path / "units"
    result = export("systemd", "--out", str(out), *(["--user"] if user_mode else []))
    assert result.exit_code == 0, result.output
    files = sorted(str(p) for p in out.iterdir())
    proc = subprocess.run([ANALYZE, "verify", "--man=no", *(["--user"] if user_mode else []), *files],
                          capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert (proc.returncode, proc.stderr) == (0, "")


@needs_analyze
def test_a_chain_of_three_runs_each_job_once(units):
    assert start_unit(units, "jobctl-fetch.service") == [
        ("jobctl-fetch.service", 0), ("jobctl-extract.service", 0), ("jobctl-load.service", 0)]
    runs = settled(("fetch", "extract", "load", "page"))
    # once each: systemd started the next unit, and --no-chain kept every wrapper from starting it too
    assert [[r["status"] for r in runs[n]] for n in ("fetch", "extract", "load", "page")] == [
        ["succeeded"], ["succeeded"], ["succeeded"], []]
    assert {r["trigger"] for n in runs for r in runs[n]} == {"schedule"}  # as their timers start them


@needs_analyze
def test_without_no_chain_the_wrapper_would_start_the_next_job_itself(units):
    """The control for the test above: the crontab line's wrapper (no --no-chain) chains on its own."""
    proc = subprocess.run(cmdline.wrapper_argv(state(), "fetch"), env={"PATH": "/usr/bin:/bin"}, cwd="/",
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while not (runs := settled(("fetch", "extract", "load")))["load"] and time.monotonic() < deadline:
        time.sleep(0.2)
    [fetch], [extract], [load] = runs["fetch"], runs["extract"], runs["load"]
    assert (extract["trigger"], extract["parent_run_id"]) == ("chain", fetch["id"])
    assert (load["trigger"], load["parent_run_id"]) == ("chain", extract["id"])


@needs_analyze
def test_a_failed_run_starts_on_failure_only(units, pipeline):
    pipeline.touch()
    assert start_unit(units, "jobctl-fetch.service") == [("jobctl-fetch.service", 1), ("jobctl-page.service", 0)]
    runs = settled(("fetch", "extract", "load", "page"))
    assert [[r["status"] for r in runs[n]] for n in ("fetch", "extract", "load", "page")] == [
        ["failed"], [], [], ["succeeded"]]


@needs_analyze
def test_a_run_stopped_by_systemctl_stop_starts_on_failure_as_the_warning_says(pipeline, write_job, tmp_path):
    write_job("fetch.yaml", "schedule: '0 2 * * *'\ncommand: sleep 60\non_failure: page\n")
    write_job("extract.yaml", "schedule: '0 3 * * *'\ncommand: echo extracted\n")
    out = tmp_path / "units"
    result = export("systemd", "--out", str(out), "--record")
    assert result.exit_code == 0, result.output
    assert ("a run ended by systemctl stop starts them too (the stopped wrapper exits 143, a failure to systemd)"
            in result.stderr)
    assert start_unit(out, "jobctl-fetch.service", stop="fetch") == [("jobctl-fetch.service", 143),
                                                                      ("jobctl-page.service", 0)]
    runs = settled(("fetch", "page"))
    assert [r["status"] for r in runs["fetch"]] == ["killed"]
    assert [r["status"] for r in runs["page"]] == ["succeeded"]


@needs_analyze
def test_a_skipped_run_starts_nothing_down_the_chain(units):
    """extract's requirement is not met (fetch never ran): its run is skipped (exit 75, a success to systemd)."""
    assert start_unit(units, "jobctl-extract.service") == [("jobctl-extract.service", sd.EX_SKIPPED),
                                                           ("jobctl-load.service", sd.EX_SKIPPED)]
    runs = settled(("extract", "load"))
    [extract] = runs["extract"]
    assert extract["status"] == "skipped" and extract["reason"].startswith("skipped: requires job fetch succeeded")
    assert runs["load"] == []  # as under cron: a skipped run starts no then job


@needs_analyze
def test_a_paused_job_starts_nothing_down_the_chain(units):
    assert cli.invoke(app, ["pause", "extract"]).exit_code == 0
    start_unit(units, "jobctl-fetch.service")
    runs = settled(("extract", "load"))
    assert [r["status"] for r in runs["extract"]] == ["skipped"]
    assert runs["load"] == []  # as under cron: a skipped run starts no then job


@needs_analyze
def test_a_job_two_units_start_is_warned_about_and_runs_after_a_skip(pipeline, write_job, tmp_path):
    write_job("other.yaml", "schedule: '@daily'\ncommand: echo other\nthen: load\n")
    out = tmp_path / "units"
    result = export("systemd", "--out", str(out), "--record")
    assert result.exit_code == 0, result.output
    assert ("jobctl: warning: load: started by then/on_failure of extract, other: systemd tells a unit which unit "
            "started it only when one unit lists it, so it also runs after a run of theirs that was skipped (a skip "
            "is a success to systemd)") in result.stderr.splitlines()
    # what the warning says: systemd passes no MONITOR_* to load, so extract's skip does not reach it
    assert start_unit(out, "jobctl-extract.service") == [("jobctl-extract.service", sd.EX_SKIPPED),
                                                         ("jobctl-load.service", 0)]
    assert [r["status"] for r in settled(("load",))["load"]] == ["succeeded"]


def test_systemd_warnings_name_what_is_not_carried(pipeline, write_job):
    write_job("queue.yaml", "schedule: '@hourly'\ncommand: x\nlock_group: etl\nconcurrency: wait\n")
    write_job("watch.yaml", "schedule: '*/5 * * * *'\ncommand: x\nbaseline: {min_runs: 10, slow: 4}\n"
                            "notify: {when: [failure, slow, short, overdue, missed], command: logger x}\n")
    result = export("systemd")
    assert result.exit_code == 0, result.output
    lost = ("which starts their units as their timers do: JOBCTL_PARENT_RUN_ID, _JOB, _STATUS and _OUTPUT stay "
            "empty and history shows no chain")
    assert result.stderr.splitlines() == [
        f"jobctl: warning: extract: then: load: carried as OnSuccess= (systemd 249 or later; older versions ignore "
        f"it), {lost}",
        f"jobctl: warning: fetch: then: extract: carried as OnSuccess= (systemd 249 or later; older versions ignore "
        f"it), {lost}",
        f"jobctl: warning: fetch: on_failure: page: carried as OnFailure=, {lost}; a run ended by systemctl stop "
        "starts them too (the stopped wrapper exits 143, a failure to systemd)",
        "jobctl: warning: queue: concurrency: wait is not carried: systemd does not start a service that is still "
        "running, so a run due meanwhile is skipped (as forbid); the wrapper still applies it to the runs of the "
        "other jobs of lock group etl",
        # slow and short are judged by the wrapper at the end of a run, in the unit; lock_group, requires
        # and baseline are the wrapper's too: none of them is named
        "jobctl: warning: watch: notify when overdue, missed: jobctl's every-minute pass notices them, and only "
        "jobctl apply installs it (in a crontab); the timers do not run it",
    ]


def test_the_units_say_who_checks_requires_and_lock_group(pipeline):
    result = export("systemd")
    assert result.exit_code == 0, result.output
    units = dict(re.findall(r"^# (jobctl-\S+)\n(.*?)(?=^# jobctl-|\Z)", result.stdout, re.M | re.S))
    assert ("# lock_group: the wrapper takes the lock of group etl, as under cron\n"
            "# requires: the wrapper checks the run log, as under cron (systemd's Requires= and After= order units "
            "that run together; they say nothing of a run's result)\n") in units["jobctl-extract.service"]
    assert "# lock_group: the wrapper takes the lock of group etl" in units["jobctl-fetch.service"]
    assert "# requires" not in units["jobctl-fetch.service"]
    assert "# then: started when a run succeeds (systemd 249 or later" in units["jobctl-fetch.service"]
    assert "lock_group" not in units["jobctl-load.service"]


# --- Kubernetes: named, nothing carried -------------------------------------------------------------

def documents(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.output
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(result.stdout)}


def test_kubernetes_names_every_rule_once_per_job_and_carries_none(pipeline, write_job, jobs_dir):
    write_job("watch.yaml", "schedule: '*/5 * * * *'\ncommand: x\nbaseline: {min_runs: 10, slow: 4}\n"
                            "notify: {when: [failure, slow, missed], command: logger x}\n")
    result = export("kubernetes", "--image", "tools:1")
    docs = documents(result)
    for doc in docs.values():
        check_cronjob(doc)
    assert result.stderr.splitlines() == [
        "jobctl: warning: extract: then: load is not carried: a CronJob starts no other job when it succeeds; run "
        "the steps one after another in one CronJob's command, or use a workflow engine (e.g. an Argo CronWorkflow "
        "with steps)",
        "jobctl: warning: extract: requires: fetch succeeded within 2h is not carried: a CronJob cannot check "
        "another job's latest run; run the jobs as steps of one CronJob, or use a workflow engine's dependencies "
        "(e.g. an Argo DAG)",
        "jobctl: warning: extract: lock_group: etl is not carried: concurrencyPolicy keeps only one CronJob from "
        "overlapping itself; run the group's jobs from one CronJob, or take a lock in the command (e.g. a "
        "coordination.k8s.io Lease)",
        "jobctl: warning: fetch: then: extract is not carried: a CronJob starts no other job when it succeeds; run "
        "the steps one after another in one CronJob's command, or use a workflow engine (e.g. an Argo CronWorkflow "
        "with steps)",
        "jobctl: warning: fetch: on_failure: page is not carried: a CronJob starts no other job when it fails; run "
        "it from the command (job || handler), or use a workflow engine's exit handler (e.g. Argo's onExit)",
        "jobctl: warning: fetch: lock_group: etl is not carried: concurrencyPolicy keeps only one CronJob from "
        "overlapping itself; run the group's jobs from one CronJob, or take a lock in the command (e.g. a "
        "coordination.k8s.io Lease)",
        "jobctl: warning: watch: notify (command) is not carried: Kubernetes sends no notifications; alert on "
        "failed Jobs instead (e.g. kube-state-metrics kube_job_status_failed); slow and missed are judged from "
        "jobctl's run log, which a CronJob does not write (alert on Job durations and "
        "kube_cronjob_status_last_schedule_time instead)",
        "jobctl: warning: watch: baseline is not carried: the usual duration is learned from jobctl's run log, "
        "which a CronJob does not write",
    ]
    # the same job files without the rules export the very same CronJobs, without those warnings
    for path in jobs_dir.iterdir():
        kept = [line for line in path.read_text().splitlines(keepends=True)
                if not line.startswith(("then:", "on_failure:", "requires:", "lock_group:", "baseline:"))]
        path.write_text("".join(kept))
    plain = export("kubernetes", "--image", "tools:1")
    assert documents(plain) == docs
    assert not re.search(r"then|on_failure|requires|lock_group|baseline", plain.stderr)


def test_kubernetes_default_baseline_and_run_events_are_not_named(write_job):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\nbaseline: {min_runs: 5, runs: 20, slow: 3, short: 0.1}\n")
    result = export("kubernetes", "--image", "tools:1")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_disabled_target_is_not_started_under_systemd_as_under_cron(write_job, tmp_path):
    write_job("par.yaml", 'schedule: "@daily"\ncommand: "true"\nthen: [dis, okay]\non_failure: dis\n')
    write_job("dis.yaml", 'schedule: "@daily"\ncommand: "true"\nenabled: false\n')
    write_job("okay.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    result = export("systemd", "--out", str(tmp_path / "units"))
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "units" / "jobctl-par.service").read_text().split("[Service]")[0]
    assert "OnSuccess=jobctl-okay.service\n" in unit and "OnFailure=" not in unit and "jobctl-dis" not in unit
    assert "par: then/on_failure: dis disabled (enabled: false): not started from here" in result.stderr
