"""The read side of baselines: `history` marks runs judged slow or short, `status` shows the usual duration and
the missed runs, `metrics` exports both.

Runs go into a real run log through the store's own writes (start_run, finish_last: what the wrapper calls) with
exact start and end times, so every duration is known.  The usual duration each check expects is computed here
from the log as plain SQLite reads it (statistics.median); the judgement is checked against the wrapper's own
call (store.durations before the run, jobctl.baseline.judge) for every run shown.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from jobctl import baseline, store
from jobctl.cli.app import app
from jobctl.read import render

cli = CliRunner()
HOUR = 3600.0


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


@pytest.fixture(autouse=True)
def utf8_locale(monkeypatch):
    monkeypatch.setattr(render, "_utf8", None)  # read once a process: each test sets its own
    for name in ("LC_ALL", "LC_CTYPE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


@pytest.fixture
def log():
    os.makedirs(state(), mode=0o700, exist_ok=True)
    opened = store.connect(os.path.join(state(), "runs.db"))
    yield opened
    opened.close()


class Clock:
    """Start times an hour apart, ending about now (retention keeps 90 days)."""

    def __init__(self, runs: int = 200) -> None:
        self.t = time.time() - runs * HOUR

    def next(self) -> float:
        self.t += HOUR
        return self.t


def add(log: store.Store, clock: Clock, job: str, took: float | None, status: str = "succeeded",
        parent: int | None = None) -> int:
    """One run as the wrapper records it: started, then finished ``took`` seconds later (None: still running)."""
    started = clock.next()
    run_id = log.start_run(job, "chain" if parent else "schedule", 1, None, started, os.getpid(), "elsewhere",
                           "boot", parent_run_id=parent)
    if took is not None:
        code = {"succeeded": 0, "failed": 1}.get(status)
        log.finish_last(run_id, status, code, None, started + took, f"{status} after {took}s", b"", b"", 0, 0,
                        job, 10_000, 365 * 86400.0, started + took)
    return run_id


def history_json(*args: str) -> list[dict]:
    result = cli.invoke(app, ["history", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def successes_before(job: str, run_id: int, count: int = 20) -> list[float]:
    """The durations of the job's latest ``count`` successes before ``run_id``, as plain SQLite reads the log."""
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    try:
        return [r[0] for r in db.execute("SELECT duration_s FROM runs WHERE job = ? AND id < ? AND status ="
                                         " 'succeeded' ORDER BY id DESC LIMIT ?", (job, run_id, count))]
    finally:
        db.close()


def wrapper_verdict(log: store.Store, row: dict, cfg: dict | None = None) -> str | None:
    """What the wrapper judged when the run ended: the same two calls, for this one run."""
    s = baseline.settings(cfg)
    u = baseline.usual(log.durations(row["job"], s["runs"], before=row["id"]), cfg)
    return baseline.judge(row["status"], row["duration_s"], u, cfg)


# --- history: the marks ----------------------------------------------------------------------------------

def test_a_run_ten_times_the_median_is_slow_and_a_hundredth_is_short(log):
    clock = Clock()
    usual = [60.0, 62.0, 58.0, 61.0, 59.0, 63.0]
    for took in usual:
        add(log, clock, "etl", took)
    slow = add(log, clock, "etl", 10 * statistics.median(usual))
    short = add(log, clock, "etl", 0.01 * statistics.median(usual))
    normal = add(log, clock, "etl", 61.5)
    failed_fast = add(log, clock, "etl", 0.1, "failed")  # only a success is short: a failure is just a failure
    failed_slow = add(log, clock, "etl", 700.0, "failed")  # a failure can be slow
    running = add(log, clock, "etl", None)
    records = {r["id"]: r for r in history_json("etl")}
    for run_id, judged in ((slow, "slow"), (short, "short"), (normal, None), (failed_fast, None),
                           (failed_slow, "slow"), (running, None)):
        assert records[run_id]["judged"] == judged, (run_id, records[run_id])
        before = successes_before("etl", run_id)
        assert records[run_id]["usual_s"] == round(statistics.median(before), 3), run_id
        assert records[run_id]["judged"] == wrapper_verdict(log, records[run_id])
    assert records[slow]["usual_s"] == statistics.median(usual) == 60.5
    assert records[short]["usual_s"] == statistics.median(usual + [605.0]) == 61.0
    # the first five successes had fewer than five before them: nothing judged, no usual
    first = sorted(records)[:5]
    assert all(records[i]["judged"] is None and records[i]["usual_s"] is None for i in first)
    assert records[sorted(records)[5]]["usual_s"] == statistics.median(usual[:5])


def test_the_table_marks_the_duration_and_follows_the_locale(log):
    clock = Clock()
    for took in (10.0, 11.0, 9.0, 10.0, 10.5):
        add(log, clock, "etl", took)
    slow = add(log, clock, "etl", 100.0)
    short = add(log, clock, "etl", 0.1)
    for env, marks in (({"LANG": "C.UTF-8"}, ("\u25b2slow", "\u25bcshort")), ({"LANG": "C"}, ("slow", "short"))):
        clean = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONUTF8")}
        done = subprocess.run([sys.executable, "-m", "jobctl", "history", "etl"], capture_output=True, text=True,
                              timeout=60, env={**clean, **env})
        assert done.returncode == 0, done.stderr
        lines = {int(line.split()[0]): line for line in done.stdout.splitlines()[1:]}
        # the mark is next to the duration, in a column of its own: durations stay aligned
        assert lines[slow].split()[6:8] == [render.duration(100.0), marks[0]], lines[slow]
        assert lines[short].split()[6:8] == [render.duration(0.1), marks[1]], lines[short]
        others = [line for run_id, line in lines.items() if run_id not in (slow, short)]
        assert not any(m in line for m in marks for line in others)
        at = done.stdout.splitlines()[0].index("DURATION") + len("DURATION")
        assert {line[at - 1] for line in lines.values()} == {"s"}  # every duration ends under the header


def test_no_mark_and_no_column_below_min_runs(log):
    clock = Clock()
    for took in (10.0, 10.0, 10.0, 10.0):  # four successes: one short of the default min_runs
        add(log, clock, "few", took)
    huge = add(log, clock, "few", 1000.0)
    tiny = add(log, clock, "few", 0.001)
    records = {r["id"]: r for r in history_json("few")}
    assert (records[huge]["judged"], records[huge]["usual_s"]) == (None, None)
    assert records[tiny]["usual_s"] == 10.0 and records[tiny]["judged"] == "short"  # five now: 10, 10, 10, 10, 1000
    assert wrapper_verdict(log, records[huge]) is None
    table = cli.invoke(app, ["history", "few", "-n", "2"]).stdout
    assert table.splitlines()[0].split() == ["ID", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT",
                                             "REASON"]
    assert "slow" not in table
    only_huge = cli.invoke(app, ["history", "few", "--status", "succeeded", "-n", "2"]).stdout
    assert "short" in only_huge and "slow" not in only_huge


def test_the_applied_baseline_settings_are_the_ones_judged_by(write_job, log):
    write_job("strict.yaml", 'schedule: "@hourly"\ncommand: "true"\nbaseline: {min_runs: 8, slow: 20}\n')
    write_job("plain.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    clock = Clock()
    for _ in range(7):
        add(log, clock, "strict", 10.0)
        add(log, clock, "plain", 10.0)
    seven = {job: add(log, clock, job, 150.0) for job in ("strict", "plain")}
    # before apply no definition says min_runs 8: the defaults judge the run, as the wrapper would have
    assert history_json("strict", "-n", "1")[0]["judged"] == "slow"
    assert cli.invoke(app, ["apply"]).exit_code == 0
    records = {r["id"]: r for r in history_json()}
    assert records[seven["plain"]]["judged"] == "slow"  # 15x the median, 7 runs: judged by the defaults
    assert (records[seven["strict"]]["judged"], records[seven["strict"]]["usual_s"]) == (None, None)  # 7 < 8
    eighth = add(log, clock, "strict", 150.0)  # 8 before it now (the 150 s one among them), but slow is 20x
    ninth = add(log, clock, "strict", 250.0)  # 25x its median of 10: slow by its own factor
    records = {r["id"]: r for r in history_json("strict")}
    cfg = {"min_runs": 8, "slow": 20}
    assert records[eighth]["usual_s"] == 10.0 and records[eighth]["judged"] is None
    assert records[ninth]["judged"] == "slow"
    for record in records.values():
        assert record["judged"] == wrapper_verdict(log, record, cfg), record


@pytest.mark.parametrize("seed", range(3))
def test_every_runs_judgement_is_the_wrappers_whatever_is_shown(log, seed):
    """Each job's successes are read once and sliced by run id: the same verdict and usual as one query a run."""
    rng = random.Random(seed)
    clock = Clock(310)
    for _ in range(300):
        job = rng.choice(["a", "b", "c"])
        status = rng.choice(["succeeded"] * 6 + ["failed", "timeout", "killed"])
        took = rng.choice([rng.uniform(5, 7), rng.uniform(5, 7), rng.uniform(50, 80), rng.uniform(0, 0.2)])
        add(log, clock, job, took, status)
    for args in ([], ["-n", "200"], ["a", "-n", "50"], ["--status", "failed", "-n", "30"], ["b", "--status", "killed"],
                 ["--since", "2d"]):
        records = history_json(*args)
        assert records, args
        for record in records:
            u = baseline.usual(log.durations(record["job"], 20, before=record["id"]))
            assert record["usual_s"] == (None if u is None else round(u.median, 3)), (args, record)
            assert record["judged"] == wrapper_verdict(log, record), (args, record)
        assert any(r["judged"] for r in records) or args[:1] == ["b"], args


def test_history_reads_each_jobs_successes_once(log, monkeypatch):
    clock = Clock()
    for i in range(60):
        add(log, clock, "ab"[i % 2], 10.0 + i % 3, "failed" if i % 7 == 0 else "succeeded")
    seen: list[str] = []
    connect = store.connect

    def traced(path: str, create: bool = True, **settings: bool) -> store.Store:
        opened = connect(path, create, **settings)
        opened.db.set_trace_callback(seen.append)
        return opened

    monkeypatch.setattr(store, "connect", traced)
    for args in (["-n", "40"], ["-n", "40", "--json"]):
        seen.clear()
        assert cli.invoke(app, ["history", *args]).exit_code == 0
        reads = [s for s in seen if "status = 'succeeded'" in s]
        assert sorted(s.split("job = '")[1][0] for s in reads) == ["a", "b"], reads  # one statement a job


# --- status: USUAL and MISSED --------------------------------------------------------------------------

def test_status_usual_is_the_baseline_the_next_run_is_judged_by(write_job, log):
    write_job("etl.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    clock = Clock()
    rng = random.Random(5)
    for _ in range(40):
        add(log, clock, "etl", rng.uniform(30, 90), rng.choice(["succeeded", "succeeded", "failed"]))
    [row] = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    latest = successes_before("etl", 10**9)
    assert row["usual_duration_s"] == round(statistics.median(latest), 3)
    assert row["usual_mad_s"] == round(statistics.median(abs(d - statistics.median(latest)) for d in latest), 3)
    assert row["usual_runs"] == len(latest) == 20
    nxt = add(log, clock, "etl", 1.0)  # the next run's usual is what status showed before it
    assert history_json("etl", "-n", "1")[0]["usual_s"] == row["usual_duration_s"]
    assert history_json("etl", "-n", "1")[0]["id"] == nxt


def test_status_and_metrics_count_missed_runs(write_job, log):
    from prometheus_client.parser import text_string_to_metric_families

    write_job("watched.yaml", 'schedule: "* * * * *"\ncommand: "true"\nnotify: {when: [missed], command: "true"}\n')
    write_job("quiet.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    clock = Clock()
    for took in (4.0, 5.0, 6.0, 5.0, 5.5, 4.5):
        add(log, clock, "quiet", took)
    minute = time.time() // 60 * 60
    for k in (5, 4, 2):  # what the every-minute pass records: a row per scheduled minute that never started
        assert log.alert_once("watched", "missed", minute - k * 60, minute)
    assert not log.alert_once("watched", "missed", minute - 4 * 60, minute)
    rows = {r["name"]: r for r in json.loads(cli.invoke(app, ["status", "--json"]).stdout)}
    assert (rows["watched"]["missed_runs"], rows["quiet"]["missed_runs"]) == (3, 0)
    header, *lines = cli.invoke(app, ["status"]).stdout.splitlines()
    assert "MISSED" in header.split()
    at = header.index("MISSED") + len("MISSED")
    assert {line.split()[0]: line[:at].split()[-1] for line in lines} == {"quiet": "0", "watched": "3"}
    text = cli.invoke(app, ["metrics"]).stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    missed = families["jobctl_missed_runs"]
    assert missed.type == "counter"
    assert {s.labels["job_name"]: s.value for s in missed.samples if s.name == "jobctl_missed_runs_total"} == {
        "quiet": 0, "watched": 3}
    usual = families["jobctl_job_usual_duration_seconds"]
    assert usual.type == "gauge"
    # watched has no run: no usual; quiet's is the median of its six successes
    assert {s.labels["job_name"]: s.value for s in usual.samples} == {"quiet": statistics.median(
        successes_before("quiet", 10**9))}
