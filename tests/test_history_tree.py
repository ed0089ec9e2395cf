"""`jobctl history NAME --tree`: each run of a job with the runs its then/on_failure started beneath it.

The chains are written into a real run log through the store's own writes (start_run with parent_run_id, then
finish_last: what the wrapper calls for a chained run), and the real CLI reads them back: nested JSON, an indented
table when piped, tree guides on a terminal (ASCII where the locale is not UTF-8).  Every expectation about who is
whose child comes from the parent_run_id column as plain SQLite reads it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from jobctl import store
from jobctl.cli.app import app

import runhelp

cli = CliRunner()


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


class Log:
    """A run log written as the wrapper writes it, runs a minute apart ending about now."""

    def __init__(self) -> None:
        os.makedirs(state(), mode=0o700, exist_ok=True)
        self.store = store.connect(os.path.join(state(), "runs.db"))
        self.t = time.time() - 3 * 86400

    def run(self, job: str, status: str = "succeeded", parent: int | None = None, took: float = 2.0) -> int:
        self.t += 60
        run_id = self.store.start_run(job, "chain" if parent else "schedule", 1, self.t - 60 if not parent else None,
                                      self.t, os.getpid(), "elsewhere", "boot", parent_run_id=parent)
        code = {"succeeded": 0, "failed": 3, "timeout": 124}[status]
        self.store.finish_last(run_id, status, code, None, self.t + took, f"exit status {code}", b"", b"", 0, 0,
                               job, 200, 90 * 86400.0, self.t + took)
        return run_id

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def chain():
    """etl's runs; the second started load and notify (then), load started report, whose failure started cleanup.

    Returns the ids by name.  A run of load that cron started (no parent) and a run of report chained from
    a run of another job are there too: neither belongs under etl.
    """
    log = Log()
    ids = {"etl1": log.run("etl")}
    ids["etl2"] = log.run("etl", took=600.0)
    ids["load"] = log.run("load", parent=ids["etl2"])
    ids["notify"] = log.run("notify", parent=ids["etl2"])
    ids["report"] = log.run("report", "failed", parent=ids["load"])
    ids["cleanup"] = log.run("cleanup", parent=ids["report"])
    ids["load_alone"] = log.run("load")
    ids["report_of_load"] = log.run("report", parent=ids["load_alone"])
    ids["etl3"] = log.run("etl", "failed")
    ids["alert"] = log.run("page-oncall", parent=ids["etl3"])
    log.close()
    return ids


def parents() -> dict[int, int | None]:
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    try:
        return dict(db.execute("SELECT id, parent_run_id FROM runs"))
    finally:
        db.close()


def jobctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def on_pty(*args: str, env: dict, columns: int = 200) -> str:
    """What the real jobctl shows on a terminal of ``columns`` columns."""
    code, got = runhelp.on_terminal(*args, env=env, columns=columns)
    assert code == 0
    return got.decode()


def walk(records: list[dict], depth: int = 0) -> list[tuple[int, int]]:
    """(run id, depth) of every record of nested JSON, depth first."""
    out = []
    for r in records:
        out.append((r["id"], depth))
        out += walk(r["children"], depth + 1)
    return out


# --- JSON --------------------------------------------------------------------------------------------------

def test_json_nests_each_runs_chain(chain):
    result = cli.invoke(app, ["history", "etl", "--tree", "--json"])
    assert result.exit_code == 0, result.output
    roots = json.loads(result.stdout)
    assert [r["id"] for r in roots] == [chain["etl3"], chain["etl2"], chain["etl1"]]  # etl's runs, newest first
    up = parents()

    def check(record: dict) -> None:
        """Every child is under the run the log names as its parent, and only there."""
        kids = sorted(i for i, p in up.items() if p == record["id"])
        assert [c["id"] for c in record["children"]] == kids, record["id"]
        for c in record["children"]:
            assert c["parent_run_id"] == record["id"] and c["trigger"] == "chain"
            check(c)
    for root in roots:
        check(root)
    etl2 = roots[1]
    assert [(c["job"], c["status"]) for c in etl2["children"]] == [("load", "succeeded"), ("notify", "succeeded")]
    [report] = etl2["children"][0]["children"]
    assert (report["job"], report["status"]) == ("report", "failed")
    [cleanup] = report["children"]  # a child chained from a child, from a child
    assert (cleanup["id"], cleanup["job"], cleanup["children"]) == (chain["cleanup"], "cleanup", [])
    assert [c["job"] for c in roots[0]["children"]] == ["page-oncall"]  # an on_failure of a failed run
    # each record is history --json's, with children after it
    flat = {r["id"]: r for r in json.loads(cli.invoke(app, ["history", "-n", "100", "--json"]).stdout)}
    nested = _records(roots)
    assert len(nested) == 8
    for record in nested:
        assert {k: v for k, v in record.items() if k != "children"} == flat[record["id"]]
        assert list(record)[-1] == "children"
    assert list(flat[chain["cleanup"]])[:len(store.RUN_FIELDS)] == list(store.RUN_FIELDS)
    assert flat[chain["cleanup"]]["parent_run_id"] == chain["report"]
    assert flat[chain["etl1"]]["parent_run_id"] is None


def _records(roots: list[dict]) -> list[dict]:
    out = []
    for r in roots:
        out.append(r)
        out += _records(r["children"])
    return out


def test_limit_status_and_since_choose_the_runs_of_the_job(chain):
    def roots(*args: str) -> list[int]:
        result = cli.invoke(app, ["history", "etl", "--tree", "--json", *args])
        assert result.exit_code == 0, result.output
        return [r["id"] for r in json.loads(result.stdout)]

    assert roots("-n", "1") == [chain["etl3"]]
    assert roots("--status", "succeeded") == [chain["etl2"], chain["etl1"]]
    assert roots("--since", "2999-01-01") == []
    # a run of a job that another job's chain started: its own chain beneath it, its parent named
    [report] = json.loads(cli.invoke(app, ["history", "report", "--tree", "--json", "-n", "1"]).stdout)
    assert (report["id"], report["parent_run_id"], report["children"]) == (chain["report_of_load"],
                                                                            chain["load_alone"], [])


def test_tree_needs_a_job_name(chain):
    result = cli.invoke(app, ["history", "--tree"])
    assert result.exit_code == 2
    assert "jobctl history NAME --tree" in result.output


def test_no_runs_of_the_job(chain):
    result = cli.invoke(app, ["history", "nothing-here", "--tree"])
    assert result.exit_code == 0 and result.stdout == "" and "no runs of nothing-here" in result.stderr
    assert json.loads(cli.invoke(app, ["history", "nothing-here", "--tree", "--json"]).stdout) == []


# --- the table: piped, on a terminal -----------------------------------------------------------------------

def test_piped_the_chain_is_indented_two_spaces_a_level(chain):
    done = jobctl("history", "etl", "--tree")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["RUN", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "PARENT", "REASON"]
    shown = [(int(line.split()[0]), (len(line) - len(line.lstrip())) // 2) for line in lines]
    expected = walk(json.loads(jobctl("history", "etl", "--tree", "--json").stdout))
    assert shown == expected
    assert shown == [(chain["etl3"], 0), (chain["alert"], 1), (chain["etl2"], 0), (chain["load"], 1),
                     (chain["report"], 2), (chain["cleanup"], 3), (chain["notify"], 1), (chain["etl1"], 0)]
    by_id = {int(line.split()[0]): line.split() for line in lines}
    at = header.index("PARENT")
    parent_of = {int(line.split()[0]): line[at:].split()[0] if line[at:at + 1].strip() else "" for line in lines}
    # PARENT: the status of the run that started it (JOBCTL_PARENT_STATUS): a then after a success, an
    # on_failure after a failure
    assert parent_of == {chain["etl3"]: "", chain["alert"]: "failed", chain["etl2"]: "", chain["load"]: "succeeded",
                         chain["report"]: "succeeded", chain["cleanup"]: "failed", chain["notify"]: "succeeded",
                         chain["etl1"]: ""}
    assert by_id[chain["cleanup"]][1:4] == ["cleanup", "succeeded", "chain"]
    assert by_id[chain["report"]][1:3] == ["report", "failed"]


def test_a_run_chained_from_another_jobs_run_names_its_parent(chain):
    done = jobctl("history", "report", "--tree")
    header, *lines = done.stdout.splitlines()
    at = header.index("PARENT")
    parent = {int(line.split()[0]): line[at:].split()[:3] for line in lines}
    assert parent[chain["report_of_load"]] == [f"#{chain['load_alone']}", "load", "succeeded"]
    assert parent[chain["report"]] == [f"#{chain['load']}", "load", "succeeded"]
    assert [int(line.split()[0]) for line in lines if line.startswith("  ")] == [chain["cleanup"]]


@pytest.mark.parametrize(("lang", "child", "last", "below"), [
    ("C.UTF-8", "\u251c\u2500 ", "\u2514\u2500 ", "\u2502  "),
    ("C", "|- ", "`- ", "|  "),
])
def test_on_a_terminal_the_chain_has_guides(chain, lang, child, last, below):
    clean = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONUTF8")}
    shown = on_pty("history", "etl", "--tree", env={**clean, "LANG": lang, "NO_COLOR": "1"})
    lines = [re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", line) for line in shown.splitlines()]
    assert lines[0].split()[0] == "RUN"
    runs = {}
    for line in lines[1:]:
        m = re.match(r"^((?:[^0-9 ][^0-9]*)?)(\d+) ", line)
        assert m, line
        runs[int(m.group(2))] = m.group(1)
    assert runs == {
        chain["etl3"]: "", chain["alert"]: last,
        chain["etl2"]: "", chain["load"]: child, chain["report"]: below + last, chain["cleanup"]: below + "   " + last,
        chain["notify"]: last,
        chain["etl1"]: "",
    }
    assert list(runs) == [chain[k] for k in ("etl3", "alert", "etl2", "load", "report", "cleanup", "notify", "etl1")]


def test_a_slow_run_in_a_chain_is_marked(chain):
    log = Log()
    for _ in range(5):
        log.run("notify", took=1.0)
    parent = log.run("etl")
    slow = log.run("notify", parent=parent, took=30.0)
    log.close()
    [root] = json.loads(cli.invoke(app, ["history", "etl", "--tree", "--json", "-n", "1"]).stdout)
    [kid] = root["children"]
    assert (kid["id"], kid["judged"], kid["usual_s"]) == (slow, "slow", 1.0)
    done = jobctl("history", "etl", "--tree", "-n", "1", env={"LANG": "C.UTF-8"})
    line = next(line for line in done.stdout.splitlines() if line.split()[0] == str(slow))
    assert "30.0s  \u25b2slow" in line


def test_a_loop_of_parents_in_an_edited_log_ends(chain):
    """parent_run_id written by hand into a loop: each run is shown once, and the command ends."""
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    db.execute("UPDATE runs SET parent_run_id = ? WHERE id = ?", (chain["cleanup"], chain["etl2"]))
    db.commit()
    db.close()
    records = json.loads(jobctl("history", "etl", "--tree", "--json").stdout)
    ids = [run_id for run_id, _ in walk(records)]
    assert len(ids) == len(set(ids)) and chain["cleanup"] in ids
    assert jobctl("history", "etl", "--tree").returncode == 0
