"""The read commands at scale (issue 13): the run log's indexes, the caches, and the fast renderers.

Each fast path is checked against what it replaces: the plan of every
statement `status`, `history` and `metrics` run; the table against rich's
Table; the JSON against json.dumps; the crontab word splitter against shlex;
the schedule and zone caches against fresh computations.  No timings.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import re
import shlex
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jobctl import clock, store
from jobctl.cli.app import app
from jobctl.install import compile, crontab
from jobctl.jobs import schedule
from jobctl.read import render

cli = CliRunner()


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


# --- the run log: migration 4 and the plans of the read commands' statements -------------

def _plan(db: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]


def test_migration_4_indexes_job_and_scheduled_for_and_upgrades_an_old_log(tmp_path):
    path = str(tmp_path / "runs.db")
    log = store.connect(path)
    indexes = {r[0]: r[1] for r in log.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "ON runs (job, scheduled_for)" in indexes["runs_job_scheduled"]
    log.close()
    # a log as the previous release left it: version 3, no such index
    os.unlink(path)
    _as_release_3(path)
    log = store.connect(path)
    assert log.db.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    assert log.db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs_job_scheduled'").fetchone()[0] == 1
    log.close()


def _as_release_3(path: str) -> None:
    """The log as the previous release left it: schema version 3, no (job, scheduled_for) index."""
    import runhelp

    runhelp.log_at_version(path, 3)


def _version_and_index(path: str) -> tuple[int, int]:
    """(the schema version, how many of the index migrations' indexes exist)."""
    db = sqlite3.connect(path)
    try:
        return (db.execute("PRAGMA user_version").fetchone()[0],
                db.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('runs_job_scheduled', 'runs_parent')")
                .fetchone()[0])
    finally:
        db.close()


def test_a_wrapper_and_read_commands_leave_a_new_index_to_apply(tmp_path, write_job):
    """The index build holds the write lock for seconds on a big log: never under cron's herd of wrappers."""
    import runhelp

    path = os.path.join(state(), "runs.db")
    os.makedirs(state(), mode=0o700, exist_ok=True)
    _as_release_3(path)
    done = runhelp.run(state(), runhelp.job("old-log", "echo recorded"))
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in runhelp.rows(state(), "old-log")] == ["succeeded"]
    # the new columns and tables are there (instant), the indexes are not
    assert _version_and_index(path) == (store.SCHEMA_VERSION, 0)
    # nor does a read command (an operator's status at a minute's turn); apply, after an upgrade, does
    write_job("old-log.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    assert cli.invoke(app, ["status", "--json"]).exit_code == 0
    assert cli.invoke(app, ["history", "--json"]).exit_code == 0
    assert _version_and_index(path) == (store.SCHEMA_VERSION, 0)
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert _version_and_index(path) == (store.SCHEMA_VERSION, 2)


def _fill(log: store.Store, jobs: list[str], per_job: int, now: float) -> None:
    """Runs of each job, every minute back from ``now``, interleaved as wrappers write them."""
    statuses = ["succeeded", "failed", "skipped", "succeeded", "timeout"]
    with log.write() as db:
        for k in range(per_job, 0, -1):
            t = (now // 60 - k) * 60
            for i, job in enumerate(jobs):
                status = statuses[(k + i) % len(statuses)]
                db.execute("INSERT INTO runs (job, status, exit_code, trigger, scheduled_for, started_at, finished_at,"
                           " duration_s, host, failures) VALUES (?, ?, ?, 'schedule', ?, ?, ?, 1, 'h', ?)",
                           (job, status, 0 if status == "succeeded" else None, t, t + 0.5, t + 1.5,
                            None if status == "skipped" else 1))


def test_every_statement_of_status_history_and_metrics_reads_through_an_index(write_job, monkeypatch):
    """No statement of these commands scans the runs table, except metrics' count of every run (NOT INDEXED)."""
    for name in ("alpha", "beta"):
        write_job(f"{name}.yaml", 'schedule: "* * * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    log = store.connect(os.path.join(state(), "runs.db"))
    _fill(log, ["alpha", "beta", "gamma"], 30, time.time())
    log.close()
    # applied an hour ago: status asks when the latest scheduled minute's run started
    for name in ("alpha", "beta"):
        path = os.path.join(state(), "applied", f"{name}.json")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    seen: list[str] = []
    connect = store.connect

    def traced(path: str, create: bool = True, **settings: bool) -> store.Store:
        opened = connect(path, create, **settings)
        opened.db.set_trace_callback(seen.append)
        return opened

    monkeypatch.setattr(store, "connect", traced)
    for argv in (["status", "--json"], ["status"], ["history", "alpha", "--json"], ["history", "alpha", "-n", "3"],
                 ["metrics"]):
        result = cli.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.output)
    db = sqlite3.connect(os.path.join(state(), "runs.db"))
    selects = sorted({s for s in seen if s.lstrip().upper().startswith("SELECT") and " runs" in s})
    assert any("scheduled_for >=" in s for s in selects), "status did not ask the late/missed question"
    assert any("retried = 0 ORDER BY id DESC LIMIT" in s for s in selects), "status did not read the recent runs"
    for sql in selects:
        plan = _plan(db, sql)
        if "NOT INDEXED" in sql:  # metrics' runs by status: every row counted, in table order
            assert "SCAN runs" in plan, (sql, plan)
            continue
        assert not any(p == "SCAN runs" or p.startswith("SCAN runs ") and "runs_running" not in p for p in plan), \
            (sql, plan)
        if "scheduled_for >=" in sql:
            assert any("runs_job_scheduled (job=? AND scheduled_for>? AND scheduled_for<?)" in p for p in plan), plan
        if "ORDER BY id DESC" in sql and "job =" in sql:
            assert any("runs_job_id (job=?)" in p for p in plan), (sql, plan)  # newest first, no sort
    db.close()


def test_the_store_shortcuts_answer_as_the_full_queries(tmp_path):
    """failure_streak without a second query, last_success_at by id, last_started from the latest run."""
    from jobctl.read import status

    def streak_before(log: store.Store, job: str) -> int:  # failure_streak as it was
        row = log.db.execute("SELECT status, failures FROM runs WHERE job = ? AND status NOT IN ('skipped',"
                             " 'running') AND retried = 0 ORDER BY id DESC LIMIT 1", (job,)).fetchone()
        if row is not None and row[1] is not None and row[0] in store.FAILED_STATUSES:
            return int(row[1])
        return log._count_streak(job)

    log = store.connect(str(tmp_path / "runs.db"))
    _fill(log, ["a", "b", "c", "d", "e"], 12, time.time())
    with log.write() as db:  # streaks never recorded (older logs): counted from the rows
        db.execute("UPDATE runs SET failures = NULL WHERE job IN ('b', 'd')")
        # newest rows that are not a run's last word: a retried attempt, a run in progress
        db.execute("UPDATE runs SET retried = 1 WHERE id = (SELECT max(id) FROM runs WHERE job = 'c')")
        db.execute("INSERT INTO runs (job, status, trigger, started_at) VALUES ('e', 'running', 'manual', 1)")
    for job in ("a", "b", "c", "d", "e", "nobody"):
        assert log.failure_streak(job) == log.failure_streak(job, log.latest(job)) == streak_before(log, job)
        best = log.db.execute("SELECT max(started_at) FROM runs WHERE job = ? AND status = 'succeeded'",
                              (job,)).fetchone()[0]
        assert log.last_success_at(job) == best  # started_at grows with id, as wrappers write runs
        got, want = status.last_started(log, job, log.latest(job)), log.last_started(job)
        assert (got["id"] if got else None) == (want["id"] if want else None)
    assert {log.failure_streak(j) for j in "abcde"} != {0}  # some streaks were there to count
    log.close()


# --- schedules and zones: computed once, the same answers ------------------------------

def test_parse_cron_cache_hands_out_fresh_sets_and_never_caches_an_error():
    first = schedule.parse_cron("*/15 3 * * 1-5")
    first[0][0].add(7)  # a caller changing its copy changes nobody else's
    again = schedule.parse_cron("*/15 3 * * 1-5")
    assert again[0][0] == {0, 15, 30, 45} and again[1] == ({3}, False) and again[4] == ({1, 2, 3, 4, 5}, False)
    for _ in range(2):
        with pytest.raises(schedule.ScheduleError):
            schedule.parse_cron("61 * * * *")
    fields = schedule.compile_fields("0 4 * * 0")
    fields["minute"].append(30)
    assert schedule.compile_fields("0 4 * * 0")["minute"] == [0]


def test_offsets_and_superset_minutes_cached_per_zone_give_what_a_fresh_walk_gives(monkeypatch):
    table = clock.offsets("Europe/Paris", 2026)
    assert table == clock._offsets("Europe/Paris", 2026, 3)
    table[0][1] = 0  # the caller's copy
    assert clock.offsets("Europe/Paris", 2026)[0][1] == 3600
    f = schedule.compile_fields("30 2 * * *")
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    got = clock.superset_minutes(f, "Asia/Kolkata", start)
    shifts, jumps = clock._shifts("Asia/Kolkata", start, 400)
    assert got == sorted({(m + s) % 60 for m in f["minute"] for s in shifts} | set(jumps))
    # the system's zone is part of the answer: a changed TZ is not served from the cache
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert clock.superset_minutes(f, "Asia/Kolkata", start) == [30]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_status_computes_next_and_latest_runs_once_per_schedule(write_job, monkeypatch):
    for i in range(12):
        write_job(f"job{i:02d}.yaml", f'schedule: "{"*/5 * * * *" if i % 2 else "@hourly"}"\ncommand: "true"\n'
                  + ("jitter: 30s\n" if i == 11 else ""))
    assert cli.invoke(app, ["apply"]).exit_code == 0
    log = store.connect(os.path.join(state(), "runs.db"))
    log.close()
    for name in os.listdir(os.path.join(state(), "applied")):
        os.utime(os.path.join(state(), "applied", name), (time.time() - 7200, time.time() - 7200))
    calls = {"next_runs": 0, "prev_run": 0}
    for method in calls:
        original = getattr(schedule.Schedule, method)

        def counted(self, *args, _original=original, _name=method, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(schedule.Schedule, method, counted)
    rows = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    assert len(rows) == 12 and all(r["missed"] for r in rows)  # no runs at all: every job missed its last time
    assert calls == {"next_runs": 2, "prev_run": 3}  # two schedules; one of them also with a jitter
    for text in ("*/5 * * * *", "@hourly"):
        assert len({r["next_run"] for r in rows if r["schedule"] == text}) == 1


def test_definition_hash_inside_unchanged_definitions_is_the_hash():
    defn = {"name": "x", "cron": "* * * * *", "env": {"A": "1"}, "source": "/a:1"}
    outside = compile.definition_hash(defn)
    with compile.unchanged_definitions():
        assert compile.definition_hash(defn) == outside
        assert compile.definition_hash(dict(defn)) == outside
        with compile.unchanged_definitions():
            assert compile.definition_hash(defn) == outside
        assert compile._memo  # the outer block's memo is kept by an inner one
        other = {**defn, "env": {"A": "2"}}
        assert compile.definition_hash(other) != outside
    assert compile._memo is None
    defn["env"]["A"] = "2"  # outside the block a change counts at once
    assert compile.definition_hash(defn) != outside


# --- the crontab's words -------------------------------------------------------------------

@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab #\t\r\n\x0b\x0c'\"\\-%\u00e9\u00a0\x00", max_size=16))
def test_shell_words_split_as_shlex_does(line):
    try:
        want: object = shlex.split(line, comments=True)
    except ValueError:
        want = ValueError
    try:
        got: object = crontab._shell_words(line)
    except ValueError:
        got = ValueError
    assert got == want


def test_job_run_by_reads_jobctl_lines_as_before():
    line = "*/5 * * * * /usr/bin/python3 -I -m jobctl.runner --scheduled --state-dir /var/lib/jobctl backup # jobctl:x"
    assert crontab.job_run_by(line) == "backup"
    quoted = "0 * * * * /usr/bin/python3 -I -m jobctl.runner --scheduled --state-dir '/s d' 'odd name'  # x"
    assert crontab.job_run_by(quoted) == "odd name"
    assert crontab.job_run_by("0 * * * * jobctl.runner --scheduled a#b c") == "a"  # shlex: a comment from '#'


# --- history: the name check without jobctl.jobs.spec -------------------------------------

def test_history_name_check_is_specs():
    from jobctl.cli import history
    from jobctl.jobs import spec

    assert history._NAME_RE.pattern == spec.NAME_RE.pattern


# --- JSON: json.dumps(indent=2), byte for byte -----------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())
_keys = st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(_keys, inner, max_size=4)), max_leaves=25)


@settings(max_examples=500, deadline=None)
@given(_values)
def test_dumps_is_json_dumps_indent_2(value):
    assert render.dumps(value) == json.dumps(value, indent=2)


def test_dumps_leaves_what_json_cannot_write_to_json():
    import enum

    class Level(enum.IntEnum):
        HIGH = 2

    assert render.dumps({"a": Level.HIGH, Level.HIGH: [math.inf]}) == json.dumps({"a": Level.HIGH, Level.HIGH: [
        math.inf]}, indent=2)
    with pytest.raises(TypeError):
        render.dumps([object()])
    with pytest.raises(TypeError):
        render.dumps({(1, 2): 1})


# --- the tables: what rich's Table printed ---------------------------------------------------

_TEXTS = ["", "backup", "日本語のテキスト", "e\u0301te\u0301", "\U0001F600 smile", "tab\there", "new\nline", "x" * 90,
          "  spaced  ", "esc \x1b[31m", "[/] :fire: [bold]", "\u202eevil"]


def _status_rows(rng: random.Random, n: int) -> list[SimpleNamespace]:
    rows = []
    for i in range(n):
        last = None if rng.random() < 0.2 else {
            "status": rng.choice(list(render.STATUS_STYLE) + ["weird"]), "exit_code": rng.choice([0, 1, 143, None]),
            "started_at": 1.7e9 + rng.random() * 1e7, "duration_s": rng.choice([None, 0.5, 75.0, 4000.0])}
        rows.append(SimpleNamespace(
            name=f"job-{i:03d}" + ("-with-a-rather-long-name" if rng.random() < 0.2 else ""),
            schedule=rng.choice(["*/5 * * * *", "@hourly", None, "30 4 * * 1-5"]),
            schedule_description=rng.choice(_TEXTS[:4] + ["Every 5 minutes", None]),
            next_run=rng.choice([None, datetime(2026, 12, 2, 7, 5, tzinfo=timezone(timedelta(hours=1)))]),
            state=rng.choice(list(render.STATE_STYLE) + ["other"]),
            paused=rng.random() < 0.2, late=rng.random() < 0.1, missed=rng.random() < 0.1,
            last_started_run=last, consecutive_failures=rng.choice([0, 0, 1, 2, 17]),
            description=rng.choice(_TEXTS + [None]),
            recent=[rng.choice(list(render.STATUS_STYLE) + ["weird"]) for _ in range(rng.choice([0, 1, 3, 10]))],
            usual_duration=rng.choice([None, 0.2, 30.0])))
    return rows


def _history_rows(rng: random.Random, n: int) -> list[dict]:
    return [{"id": rng.randint(1, 10**9), "job": f"job-{i}", "status": rng.choice(list(render.STATUS_STYLE)),
             "trigger": rng.choice(["schedule", "manual", "retry"]), "attempt": rng.choice([1, 1, 3]),
             "started_at": rng.choice([None, 1.7e9 + i]), "duration_s": rng.choice([None, 1.25, 100.0]),
             "exit_code": rng.choice([None, 0, 2]), "reason": rng.choice(_TEXTS + [None])} for i in range(n)]


# The renderer before issue 13, the reference: rich Text cells built as they were, in a rich Table
# (with issue 14's cells: the relative times, the RECENT strip a Text appended glyph by glyph, USUAL).

def _old_status_text(status):
    return render.cell(status, render.STATUS_STYLE.get(status, ""))


def _old_result(s, short, fails):
    last = s.last_started_run
    if last is None:
        text = render.cell("-")
    else:
        text = _old_status_text(last["status"])
        code = store.exit_code(last)
        if code is not None and not (short and code == 0):
            text.append_text(render.cell(f" ({code})"))
    if fails and s.consecutive_failures > 1:
        text.append_text(render.cell(f" x{s.consecutive_failures}", "red"))
    if s.paused and not short:
        text.append_text(render.cell(" (paused)", "yellow"))
    return text


def _old_status_cells(s, short, fails_in_result, now):
    cell = render.cell
    last = s.last_started_run
    state = cell(s.state, render.STATE_STYLE.get(s.state, ""))
    for flag, style in (("paused", "yellow"), ("late", "yellow"), ("missed", "bold red")):
        if getattr(s, flag):
            state.append(f" {flag}", style=style)

    def at(ts, stamp):
        ago = render.relative(ts, now)
        return ago if short else f"{time.strftime(stamp, time.localtime(ts))} ({ago})"

    when = "never" if last is None else at(last["started_at"], "%Y-%m-%d %H:%M:%S")
    strip = cell("")
    for status in s.recent:
        strip.append(render.glyphs().get(status, "?"), style=render.STATUS_STYLE.get(status, ""))
    took = last["duration_s"] if last is not None else None
    return {
        "JOB": cell(s.name), "SCHEDULE": cell(s.schedule or "-"), "WHEN": cell(s.schedule_description or "", "dim"),
        "NEXT RUN": cell(at(s.next_run.timestamp(), "%Y-%m-%d %H:%M") if s.next_run else "-"), "STATE": state,
        "LAST RUN": cell(when), "RESULT": _old_result(s, short, fails_in_result), "RECENT": strip,
        "DURATION": cell(render.duration(took), "yellow" if render.slow(took, s.usual_duration) else ""),
        "USUAL": cell(render.duration(s.usual_duration)),
        "FAILS": cell(s.consecutive_failures, "red" if s.consecutive_failures else ""),
        "DESCRIPTION": cell(s.description or "", "dim"),
    }


def _old_history_cells(r, short):
    cell = render.cell
    started = "-" if r["started_at"] is None else \
        time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
    return {
        "ID": cell(r["id"]), "JOB": cell(r["job"]), "STATUS": _old_status_text(r["status"]),
        "TRIGGER": cell(r["trigger"] + (f" #{r['attempt']}" if r["attempt"] > 1 else "")),
        "STARTED": cell(started), "DURATION": cell(render.duration(r["duration_s"])),
        "EXIT": cell("-" if store.exit_code(r) is None else store.exit_code(r)), "REASON": cell(r["reason"] or ""),
    }


def _rich_table(columns, shown, widths, cells, out) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header, justify, _ in columns:
        if header in shown:
            table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis", width=widths[header])
    for c in cells:
        table.add_row(*(c[h] for h in shown))
    needed = sum(widths[h] for h in shown) + render._GAP * (len(shown) - 1)
    if needed > out.width:
        out.width = needed
    out.print(table)


_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _looks(text: str) -> list[tuple[str, str]]:
    """Each character with the escape codes in force, as a terminal shows it (a blank's style is invisible)."""
    out, style, pos = [], "", 0
    for m in _SGR.finditer(text):
        out += [(ch, "" if ch in " \n" else style) for ch in text[pos:m.start()]]
        style = "" if m.group(1) in ("", "0") else style + ";" + m.group(1)
        pos = m.end()
    return out + [(ch, "" if ch in " \n" else style) for ch in text[pos:]]


@pytest.mark.parametrize("seed", range(4))
def test_tables_print_what_richs_table_printed(seed, monkeypatch):
    from rich.console import Console

    rng = random.Random(seed)
    status_rows, history_rows = _status_rows(rng, 60), _history_rows(rng, 40)

    def printed(draw, width: int, terminal: bool, **options) -> str:
        buffer = io.StringIO()
        out = Console(width=width, file=buffer, highlight=False, markup=False, emoji=False, soft_wrap=False,
                      force_terminal=terminal, color_system="standard" if terminal else None, **options)
        draw(out)
        return buffer.getvalue()

    for width in (40, 60, 80, 100, 160, 1000):
        for wide in (False, True):
            for terminal, options in ((False, {}), (True, {}), (True, {"no_color": True})):
                def status(out, wide=wide):
                    render.status_table(status_rows, wide=wide, out=out)

                def history(out):
                    render.history_table(history_rows, out=out)

                for draw in (status, history):
                    new = printed(draw, width, terminal, **options)
                    with monkeypatch.context() as m:
                        m.setattr(render, "_fitted_table", _rich_table)
                        m.setattr(render, "_status_cells", _old_status_cells)
                        m.setattr(render, "_history_cells", _old_history_cells)
                        old = printed(draw, width, terminal, **options)
                    if terminal:
                        assert _looks(new) == _looks(old), (draw.__name__, width, wide, options)
                    else:
                        assert new == old, (draw.__name__, width, wide)


def test_piped_tables_are_what_a_non_terminal_console_printed(monkeypatch, capsys):
    """Piped, status and history write the plain table without rich; what rich's own console would print."""
    from rich.console import Console

    rng = random.Random(7)
    status_rows, history_rows = _status_rows(rng, 30), _history_rows(rng, 30)
    for draw in (lambda out: render.status_table(status_rows, out=out),
                 lambda out: render.history_table(history_rows, out=out)):
        assert render._piped()  # capsys: not a terminal
        draw(None)
        piped = capsys.readouterr().out
        buffer = io.StringIO()
        draw(Console(highlight=False, soft_wrap=False, markup=False, emoji=False, width=1000, file=buffer))
        assert piped == buffer.getvalue()
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # rich may then see a terminal: rich decides
        with monkeypatch.context() as m:
            m.setenv(variable, "1")
            assert not render._piped()


def test_a_closed_pipe_ends_a_piped_table_as_rich_did(monkeypatch, tmp_path):
    class Closed(io.StringIO):
        def __init__(self, fd: int) -> None:
            super().__init__()
            self.fd = fd

        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            return self.fd

    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    monkeypatch.setattr("sys.stdout", Closed(fd))
    with pytest.raises(SystemExit) as exit_:
        render._write_piped("JOB\n")
    assert exit_.value.code == 1  # rich's Console.on_broken_pipe: quiet, status 1
    os.close(fd)
