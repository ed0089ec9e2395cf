"""Prometheus text exposition of every applied job, for node_exporter's textfile collector.

The job's name is in a ``job_name`` label: ``job`` belongs to the scrape target.
"""

from __future__ import annotations

import time
from datetime import datetime

from jobctl import applied, pause
from jobctl.store import STATUSES, Store

PREFIX = "jobctl_job_"
METRICS = (
    ("last_start_timestamp_seconds", "Start of the job's latest run (Unix time)."),
    ("last_success_timestamp_seconds", "Start of the job's latest successful run (Unix time)."),
    ("last_duration_seconds", "Duration of the job's latest finished run."),
    ("last_exit_code", "Exit code of the job's latest finished run."),
    ("runs", "Runs in the run log by status, a run with its retries once, by its last attempt "
             "(retention prunes old ones)."),
    ("running", "1 while a run of the job is in progress."),
    ("paused", "1 when the job is paused."),
    ("consecutive_failures", "Failed, timed-out, killed or lost runs since the last success."),
    ("next_run_timestamp_seconds", "Next scheduled run (Unix time); absent for @reboot jobs."),
    ("usual_duration_seconds", "The job's usual duration: the median of its latest successful runs (baseline.runs); "
                               "absent below baseline.min_runs of them."),
)
#: counters, by their full names (the issue's and Prometheus's: a counter ends in _total)
MISSED = "jobctl_missed_runs_total"
COUNTERS = (
    (MISSED, "Scheduled runs that never started, one per slot, as the every-minute pass recorded them for a job "
             "that notifies on missed (alerts older than the job's history.max_age are pruned: a reset)."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition(state: str, log: Store | None, now: float | None = None) -> str:
    from jobctl.jobs.schedule import Schedule
    from jobctl.read.status import baseline_settings, consecutive_failures, usual

    now = time.time() if now is None else now
    names = applied.names(state)
    samples: dict[str, list[str]] = {m: [] for m, _ in METRICS + COUNTERS}
    counts = log.run_counts() if log is not None else {}
    missed = log.alert_counts("missed") if log is not None else {}
    start = datetime.fromtimestamp(now).astimezone()
    #: next runs by (schedule, zone): a thousand jobs share a handful
    next_runs: dict[tuple[str, str | None], int] = {}
    for name in names:
        defn = applied.read(state, name) or {}
        lbl = f'job_name="{_label(name)}"'

        def put(metric: str, value: float | int | None, extra: str = "", _lbl: str = lbl) -> None:
            if value is not None:
                samples[metric].append(f"{PREFIX}{metric}{{{_lbl}{extra}}} {value}")

        if log is not None:
            last = log.last_started(name)
            put("last_start_timestamp_seconds", last["started_at"] if last is not None else None)
            put("last_success_timestamp_seconds", log.last_success_at(name))
            fin = log.last_finished(name)
            if fin is not None:
                put("last_duration_seconds", round(fin["duration_s"], 3) if fin["duration_s"] is not None else None)
                put("last_exit_code", fin["exit_code"])
            put("consecutive_failures", consecutive_failures(log, name))
            found = usual(log, name, baseline_settings(defn))[0]
            put("usual_duration_seconds", None if found is None else round(found.median, 3))
        for status in STATUSES:
            put("runs", counts.get((name, status), 0), f',status="{status}"')
        put("running", 1 if counts.get((name, "running")) else 0)
        put("paused", 1 if pause.is_paused(state, name) else 0)
        cron = defn.get("cron")
        if cron and cron != "@reboot":
            key = (cron, defn.get("timezone"))
            if key not in next_runs:
                nxt = Schedule(defn.get("schedule", cron), cron).next_runs(start, 1, defn.get("timezone"))[0]
                next_runs[key] = int(nxt.timestamp())
            put("next_run_timestamp_seconds", next_runs[key])
        samples[MISSED].append(f"{MISSED}{{{lbl}}} {missed.get(name, 0)}")
    lines = []
    for metric, help_text in METRICS:
        lines.append(f"# HELP {PREFIX}{metric} {help_text}")
        lines.append(f"# TYPE {PREFIX}{metric} gauge")
        lines.extend(samples[metric])
    for metric, help_text in COUNTERS:
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} counter")
        lines.extend(samples[metric])
    return "\n".join(lines) + "\n"


def write_textfile(path: str, text: str) -> None:
    """Atomically, so node_exporter never reads half a file."""
    from jobctl.files import replace_atomically

    replace_atomically(path, text.encode(), 0o644)
