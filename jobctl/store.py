"""The SQLite run log: connection settings, migrations, run rows, queries.

Imported by the wrapper on every scheduled run, so it uses only the standard
library.  Settings measured with concurrent wrappers: WAL set once at
creation, a 15 s busy timeout, BEGIN IMMEDIATE for every write and
synchronous=NORMAL; 300 wrappers writing at once then see no "database is
locked".  Times are stored as UTC epoch seconds (REAL) and rendered as ISO 8601
by the read commands.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any


def _load_sqlite3() -> ModuleType:
    """SQLite's C module, ``_sqlite3``, loaded without functools where it can be.

    The C module itself: the sqlite3 package adds only datetime adapters,
    which the run log never uses (times are REAL), and importing datetime
    costs the wrapper ~1.5 ms at every start (docs/benchmarks.md).  Its
    classes and exceptions are sqlite3's.

    Since Python 3.11 the module builds each connection's statement cache
    with ``functools.lru_cache``, looked up once as it loads, and functools
    brings collections, types, operator and more: a tenth of a scheduled
    run.  lru_cache with a number is functools' thin wrapper over the C cache
    ``_functools._lru_cache_wrapper``.  When nothing has imported functools
    yet (the wrapper), the module loads with a stand-in holding only that
    wrapper, which leaves sys.modules before anything else can import
    functools; the cache it builds is the same object.  Should a _sqlite3
    want more of functools, the real one is loaded and nothing is lost.
    """
    if "functools" not in sys.modules:
        try:
            from _functools import _lru_cache_wrapper  # type: ignore[import-not-found]
        except ImportError:  # not CPython
            pass
        else:
            def lru_cache(maxsize: int = 128, typed: bool = False) -> Callable[[Any], Any]:
                # cache_info() would build a plain tuple; the statement cache never asks for it
                return lambda user_function: _lru_cache_wrapper(user_function, maxsize, typed, tuple)

            stand_in = type(sys)("functools")
            stand_in.lru_cache = lru_cache  # type: ignore[attr-defined]
            sys.modules["functools"] = stand_in
            try:
                import _sqlite3
                return _sqlite3
            except Exception:  # noqa: BLE001 - loaded with the real functools below
                pass
            finally:
                if sys.modules.get("functools") is stand_in:
                    del sys.modules["functools"]
    try:
        import _sqlite3
    except ImportError:  # not CPython
        import sqlite3 as _sqlite3  # type: ignore[no-redef]
    return _sqlite3


if not TYPE_CHECKING:
    sqlite3 = _load_sqlite3()

BUSY_TIMEOUT_S = 15.0
#: a wrapper whose run got an id divisible by this folds the WAL back into the database (Store.checkpoint_due)
CHECKPOINT_EVERY = 8

STATUSES = ("running", "succeeded", "failed", "timeout", "killed", "skipped", "lost")
#: what counts as a failure for streaks, notifications and status
FAILED_STATUSES = ("failed", "timeout", "killed", "lost")

#: The fields of a run record, in order: ``history --json``, the runs in
#: ``status --json``, the webhook payload's ``run`` and the notify command's
#: JOBCTL_* variables all come from run_record (an interface: README,
#: "Notifications", and jobctl(1) document every field).
RUN_FIELDS = ("id", "job", "status", "exit_code", "signal", "trigger", "attempt", "scheduled_for",
              "started_at", "finished_at", "duration_s", "pid", "host", "output_bytes",
              "output_truncated", "reason", "parent_run_id", "params")


class QueueFull(Exception):
    """A job's queue holds max_queued requests already; ``args[0]`` how many."""


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with milliseconds and a Z, the JSON form of every time."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def exit_code(row: Any) -> int | None:
    """A run's exit code; None for a skip, which started no process.

    Older wrappers recorded 0 for a paused skip and 75 for a forbid one;
    whatever is stored, a skip has no exit code.
    """
    return None if row["status"] == "skipped" else row["exit_code"]


def run_record(row: Any) -> dict[str, Any]:
    """A run as the documented record: the fields of RUN_FIELDS, times in ISO 8601.

    ``row`` is a ``runs`` row or a mapping with the same columns (the
    wrapper's run just finished, which it notifies about before reading
    anything back): every field of RUN_FIELDS must be there.
    """
    duration = row["duration_s"]
    return {
        "id": row["id"],
        "job": row["job"],
        "status": row["status"],
        "exit_code": exit_code(row),
        "signal": row["signal"],
        "trigger": row["trigger"],
        "attempt": row["attempt"],
        "scheduled_for": iso(row["scheduled_for"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "duration_s": None if duration is None else round(duration, 3),
        "pid": row["pid"],
        "host": row["host"],
        "output_bytes": row["output_bytes"],
        "output_truncated": bool(row["output_truncated"]),
        "reason": row["reason"],
        # the run whose then/on_failure started this one (trigger chain); null otherwise
        "parent_run_id": row["parent_run_id"] or None,
        # the parameters the run got (jobctl run/submit -p, defaults filled in); null for a job without params
        "params": _params(row["params"]),
    }


def _params(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    import json  # only for a run with parameters

    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _m1_runs(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE runs (
            id               INTEGER PRIMARY KEY,
            job              TEXT    NOT NULL,
            status           TEXT    NOT NULL,
            exit_code        INTEGER,
            signal           INTEGER,
            trigger          TEXT    NOT NULL,
            attempt          INTEGER NOT NULL DEFAULT 1,
            scheduled_for    REAL,
            started_at       REAL    NOT NULL,
            finished_at      REAL,
            duration_s       REAL,
            pid              INTEGER,
            wrapper_pid      INTEGER,
            host             TEXT,
            boot_id          TEXT,
            output_bytes     INTEGER NOT NULL DEFAULT 0,
            output_truncated INTEGER NOT NULL DEFAULT 0,
            reason           TEXT
        )""")
    # "last N runs of job X" and "runs since T"; the partial index finds
    # unfinished runs without a scan.
    db.execute("CREATE INDEX runs_job_id ON runs (job, id)")
    db.execute("CREATE INDEX runs_started ON runs (started_at)")
    db.execute("CREATE INDEX runs_running ON runs (job) WHERE status = 'running'")
    # Output lives apart so that history queries never page through it.
    db.execute("""
        CREATE TABLE run_output (
            run_id  INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
            head    BLOB    NOT NULL,
            tail    BLOB    NOT NULL,
            dropped INTEGER NOT NULL DEFAULT 0
        )""")


def _m2_jitter_notify(db: sqlite3.Connection) -> None:
    # the jitter a scheduled run waited, and what its notifications did (jobctl logs prints it)
    db.execute("ALTER TABLE runs ADD COLUMN jitter_s REAL")
    db.execute("ALTER TABLE runs ADD COLUMN notify TEXT")


def _m3_retried(db: sqlite3.Connection) -> None:
    # An attempt that a retry followed is not the end of its run: the failure
    # streak, after_failures and the metrics count each run once, by its last
    # attempt.  Earlier logs are marked from what they hold (only failed or
    # timed-out attempts are ever retried, so the scan is short).
    db.execute("ALTER TABLE runs ADD COLUMN retried INTEGER NOT NULL DEFAULT 0")
    # The failure streak as of each finished run, kept on the run: retention
    # may prune the runs that made it (history.keep under after_failures).
    db.execute("ALTER TABLE runs ADD COLUMN failures INTEGER")
    db.execute("""
        UPDATE runs SET retried = 1
        WHERE status IN ('failed', 'timeout') AND EXISTS (
            SELECT 1 FROM runs AS nxt
            WHERE nxt.id = (SELECT min(id) FROM runs AS r WHERE r.job = runs.job AND r.id > runs.id)
              AND nxt.trigger = 'retry')""")


def _m4_job_scheduled(db: sqlite3.Connection) -> None:
    # status's late/missed question ("when did the run scheduled for T
    # start?") read every run of the job through (job, id): with a job's runs
    # scattered over the table that was a page per run, 2 s at a million runs
    # (docs/benchmarks.md, section 8).  With this index it reads the one or
    # two rows for T, whatever the size of the log.  One more index entry per
    # insert, measured negligible next to the wrapper's transaction.  IF NOT
    # EXISTS: a log someone indexed by hand (or rolled back) still migrates.
    db.execute("CREATE INDEX IF NOT EXISTS runs_job_scheduled ON runs (job, scheduled_for)")


def _m5_chains_alerts(db: sqlite3.Connection) -> None:
    # The run whose then/on_failure started this one (trigger chain): history --tree
    # walks it.  An ADD COLUMN only changes the schema, whatever the size of the log.
    db.execute("ALTER TABLE runs ADD COLUMN parent_run_id INTEGER")
    # Alerts the catch-up pass sends once: a scheduled run that never started
    # (kind missed, key its scheduled time) and a run still going well past its
    # usual duration (kind overdue, key its run id); status and metrics count
    # the missed ones.  A row says the alert was decided; notified what it did.
    db.execute("""
        CREATE TABLE alerts (
            job      TEXT NOT NULL,
            kind     TEXT NOT NULL,
            key      REAL NOT NULL,
            at       REAL NOT NULL,
            detail   TEXT,
            PRIMARY KEY (job, kind, key)
        ) WITHOUT ROWID""")
    # how far the pass has looked for missed runs, per job (kind 'checked', key 0, at: up to when)


def _m6_parent(db: sqlite3.Connection) -> None:
    # history --tree's "which runs did this one start?": a partial index holds only chained runs
    db.execute("CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL")


def _m7_requests(db: sqlite3.Connection) -> None:
    # Run requests (jobctl submit): durable from the moment submit returns.
    # status: queued, then running once a wrapper claimed it (claimed_pid,
    # claimed_at), then done (its run ended: run_id, exit_code), skipped
    # (forbid met a run in progress, or the job was paused) or cancelled; lost
    # when its wrapper died before its run could be recorded.  A new table:
    # its indexes cost nothing to build, whatever the size of runs.
    db.execute("""
        CREATE TABLE requests (
            id          INTEGER PRIMARY KEY,
            job         TEXT    NOT NULL,
            params      TEXT    NOT NULL DEFAULT '{}',
            key         TEXT,
            due         REAL    NOT NULL,
            submitted   REAL    NOT NULL,
            status      TEXT    NOT NULL DEFAULT 'queued',
            claimed_pid INTEGER,
            claimed_at  REAL,
            host        TEXT,
            boot_id     TEXT,
            run_id      INTEGER,
            exit_code   INTEGER,
            finished    REAL,
            reason      TEXT
        )""")
    # --key: at most one request per job and key that is still to run or running
    db.execute("CREATE UNIQUE INDEX requests_key ON requests (job, key)"
               " WHERE key IS NOT NULL AND status IN ('queued', 'running')")
    db.execute("CREATE INDEX requests_queued ON requests (job, id) WHERE status = 'queued'")
    # the parameters a run was given (JSON), and the request it ran for
    db.execute("ALTER TABLE runs ADD COLUMN params TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN request_id INTEGER")


#: Numbered migrations, applied in order, each in the transaction that records it.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("runs and run_output", _m1_runs),
    ("runs.jitter_s and runs.notify", _m2_jitter_notify),
    ("runs.retried and runs.failures", _m3_retried),
    ("index runs (job, scheduled_for)", _m4_job_scheduled),
    ("runs.parent_run_id and alerts", _m5_chains_alerts),
    ("index runs (parent_run_id)", _m6_parent),
    ("requests, runs.params and runs.request_id", _m7_requests),
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Migrations that only add an index: no statement needs them to be right, only
#: fast.  A wrapper, the catch-up pass or a read command opening an older log
#: leaves them to apply and prune (connect(build_indexes=False)): building an
#: index over ten million runs takes ~10 s under the write lock, while cron's
#: other wrappers wait on the busy timeout and would drop their records past it.
#: Such a connection still applies the other pending migrations (a new column,
#: a new table: instant whatever the log's size) and records the index ones as
#: deferred; apply and prune build every index that is missing (CREATE INDEX IF
#: NOT EXISTS, a no-op once built).
INDEX_ONLY = frozenset({4, 6})


class _Transaction:
    """``with``: BEGIN IMMEDIATE, then COMMIT, or ROLLBACK when the block raises.

    A class, not contextlib.contextmanager: the wrapper would pay for
    importing contextlib (and functools) at every start.
    """

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


# --- retention: the deletes after a run and `jobctl prune` (jobctl.retention holds the policy)

#: pages handed back per run; a full `jobctl prune` vacuums everything
VACUUM_PAGES_AFTER_RUN = 256


def margin(keep: int, max_age: float) -> tuple[int, float]:
    """How far past its bounds a job's log may go before a run prunes it: a tenth of each (at least one run).

    Pruning after every run deleted one row each time and often moved pages
    back (incremental vacuum): 2 ms a run on average at keep 200.  The
    wrapper prunes a job once it holds more than keep + margin rows or a row
    older than max_age + margin, and then down to keep and max_age exactly
    (``jobctl prune`` always does), so the work comes once in keep/10 runs.
    """
    return max(1, min(keep, 2**62) // 10), min(max(max_age, 0), 2**62) / 10


def over_bounds(db: sqlite3.Connection, job: str, keep: int, max_age: float, now: float) -> bool:
    """Whether ``job`` is past retention's bounds by more than the margin: the wrapper then prunes it.

    Rows, not runs, are counted (keep counts real runs and skips apart, a run
    with its retries once): more rows than keep + margin is necessary for
    either count to pass keep + margin, so a job under this never holds more.
    Both questions read the (job, id) index from one end: no scan of the job.
    """
    extra, age = margin(keep, max_age)
    keep = min(max(keep, 1), 2**62)
    cutoff = now - min(max(max_age, 0), now) - age
    return bool(db.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1 OFFSET ?)"
        " OR (SELECT started_at FROM runs WHERE job = ? ORDER BY id LIMIT 1) < ?",
        (job, keep + extra, job, cutoff)).fetchone()[0])


def doomed(db: sqlite3.Connection, job: str, keep: int, max_age: float, now: float) -> list[int]:
    """Ids of the finished runs of ``job`` that retention removes, oldest first.

    ``keep`` counts real runs (started jobs) and, separately, skipped ones:
    a long pause or a stream of ``forbid`` skips never pushes a real run and
    its output out.  A run is all its attempts: the cut falls before the
    first attempt (a row that is not a retry) of the keep-th newest run, so
    retries are kept or dropped with their run.  Anything older than
    ``max_age`` goes either way, except the newest real run: whatever
    ``max_age`` says, the run just recorded stays.
    ``keep`` and ``max_age`` are clamped to what SQLite's 64-bit integers and
    a float can hold: a hand-edited definition or an old release's value must
    not make every run or ``jobctl prune`` fail (validate bounds them too).
    """
    keep = min(max(keep, 1), 2**63 - 1)
    cutoff = now - min(max(max_age, 0), now)
    rows = db.execute(
        "SELECT id FROM runs WHERE job = ? AND status NOT IN ('running', 'skipped') AND ("
        " id < coalesce((SELECT id FROM runs WHERE job = ? AND status NOT IN ('running', 'skipped')"
        "  AND trigger != 'retry' ORDER BY id DESC LIMIT 1 OFFSET ?), -1) OR (started_at < ?"
        "  AND id < (SELECT max(id) FROM runs WHERE job = ? AND status NOT IN ('running', 'skipped')"
        "   AND trigger != 'retry')))"
        " UNION ALL "
        "SELECT id FROM runs WHERE job = ? AND status = 'skipped' AND ("
        " id < coalesce((SELECT id FROM runs WHERE job = ? AND status = 'skipped'"
        "  ORDER BY id DESC LIMIT 1 OFFSET ?), -1) OR started_at < ?)"
        " ORDER BY id",
        (job, job, keep - 1, cutoff, job, job, job, keep - 1, cutoff),
    ).fetchall()
    return [r[0] for r in rows]


def prune_job(db: sqlite3.Connection, job: str, keep: int, max_age: float, now: float) -> int:
    """Delete what retention removes for one job; the caller owns the transaction."""
    ids = doomed(db, job, keep, max_age, now)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
        db.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
    return len(ids)


def vacuum(db: sqlite3.Connection, pages: int | None = None) -> None:
    """Give freed pages back (outside a transaction); converts an old log once."""
    mode = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    if mode != 2:  # not INCREMENTAL yet: one full VACUUM switches the file over
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")
        return
    # The pragma frees one page per step, and Python's execute() steps once:
    # executescript() runs it to the end.
    db.executescript(f"PRAGMA incremental_vacuum({int(pages)});" if pages else "PRAGMA incremental_vacuum;")


class Store:
    def __init__(self, path: str, db: sqlite3.Connection) -> None:
        self.path = path
        self.db = db
        #: the ids of the rows this connection inserted (start_run, record), for checkpoint_due
        self.inserted: list[int] = []

    def close(self) -> None:
        self.db.close()

    def write(self) -> _Transaction:
        """One write transaction, taken immediately so writers queue on the busy timeout."""
        return _Transaction(self.db)

    def sync_wal(self) -> None:
        """fsync the WAL: every transaction committed so far is on disk (fsync needs no write access)."""
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return  # no WAL: a checkpoint folded it into the database, and synced that
        try:
            os.fsync(fd)
        except OSError:
            pass  # the run is recorded; only its durability across a power cut is lost
        finally:
            os.close(fd)

    def checkpoint_due(self) -> None:
        """Fold the WAL back into the database and empty it when one of this connection's rows has an id
        divisible by CHECKPOINT_EVERY (a wrapper's connection, which is never closed: connect(checkpoint=False)).

        Every eighth run of the machine, whichever job: the WAL stays at about
        eight runs' pages (~30 KiB), which is what the next wrapper to open
        the log reads back (SQLite's recovery, whenever no other connection is
        open), and the checkpoint's fsyncs come once in eight runs.  TRUNCATE,
        because the next opener's recovery forgets what a checkpoint copied:
        a WAL that is not emptied here is never started over and grows.  With
        no busy wait: where other wrappers are at work (a herd) it copies what
        it can and leaves the rest to the next one.  SQLite's own automatic
        checkpoint, after every commit once the WAL passes a size, made every
        commit of a herd checkpoint and sync (five fsyncs a run in a herd of
        200); this way one wrapper in eight does.
        """
        if any(row % CHECKPOINT_EVERY == 0 for row in self.inserted):
            self.db.execute("PRAGMA busy_timeout = 0")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # --- writes used by the wrapper

    def start_run(self, job: str, trigger: str, attempt: int, scheduled_for: float | None,
                  started_at: float, wrapper_pid: int, host: str, boot_id: str,
                  jitter_s: float | None = None, retry_of: int = 0, parent_run_id: int | None = None,
                  params: str | None = None, request_id: int | None = None) -> int:
        with self.write() as db:
            if retry_of:
                # the attempt before this one no longer ends its run
                db.execute("UPDATE runs SET retried = 1 WHERE id = ?", (retry_of,))
            cur = db.execute(
                "INSERT INTO runs (job, status, trigger, attempt, scheduled_for, started_at, wrapper_pid,"
                " host, boot_id, jitter_s, parent_run_id, params, request_id)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job, trigger, attempt, scheduled_for, started_at, wrapper_pid, host, boot_id, jitter_s,
                 parent_run_id or None, params, request_id),
            )
            row = int(cur.lastrowid or 0)
            if request_id and attempt == 1:
                db.execute("UPDATE requests SET run_id = ? WHERE id = ?", (row, request_id))
        self.inserted.append(row)
        return row

    def set_notify(self, run_id: int, text: str) -> None:
        with self.write() as db:
            db.execute("UPDATE runs SET notify = ? WHERE id = ?", (text, run_id))

    def after_run(self, job: str, keep: int, max_age: float, now: float) -> tuple[int, int]:
        """Record the failure streak on the run just finished, apply retention, hand a few pages back.

        Returns (runs pruned, consecutive failures up to now).  The streak is
        stored on the run's last attempt before retention runs, so pruning
        never lowers it (a keep smaller than after_failures would otherwise
        cap it and the alert would never come).
        """
        with self.write():
            pruned, streak = self._after_run(job, keep, max_age, now)
        if pruned:
            vacuum(self.db, VACUUM_PAGES_AFTER_RUN)
        return pruned, streak

    def _after_run(self, job: str, keep: int, max_age: float, now: float) -> tuple[int, int]:
        """after_run's work, in the caller's transaction."""
        streak, last = self._streak_and_last(job)
        if last is not None:
            self.db.execute("UPDATE runs SET failures = ? WHERE id = ?", (streak, last))
        pruned = prune_job(self.db, job, keep, max_age, now) if over_bounds(self.db, job, keep, max_age, now) else 0
        return pruned, streak

    def finish_last(self, run_id: int, status: str, exit_code: int | None, signal: int | None,
                    finished_at: float, reason: str, head: bytes, tail: bytes, dropped: int, output_bytes: int,
                    job: str, keep: int, max_age: float, now: float) -> tuple[int, int]:
        """finish_run of a run's last attempt and after_run, in one transaction: (runs pruned, failures in a row).

        Then the WAL is synced, so that a finished run survives a power cut:
        outside the write lock, so that in a herd the wrappers' syncs overlap
        (the file system commits them together) instead of queueing behind
        the lock, as synchronous=FULL would make them (2.2 x the CPU bound for
        a herd of 1,000, against 1.6 x without a sync; docs/benchmarks.md).
        Every frame committed before the sync is on disk after it, ours with
        them.  The start of a run stays unsynced: one started in the seconds
        before a power cut may be lost with its wrapper.
        """
        with self.write():
            self._finish_run(run_id, status, exit_code, signal, finished_at, reason, head, tail, dropped,
                             output_bytes)
            pruned, streak = self._after_run(job, keep, max_age, now)
        self.sync_wal()
        if pruned:
            vacuum(self.db, VACUUM_PAGES_AFTER_RUN)
        return pruned, streak

    def prune(self, job: str, keep: int, max_age: float, now: float) -> int:
        """Retention alone (after a skip: a long pause must not pile up rows until the next real run)."""
        with self.write() as db:
            pruned = prune_job(db, job, keep, max_age, now) if over_bounds(db, job, keep, max_age, now) else 0
        if pruned:
            vacuum(self.db, VACUUM_PAGES_AFTER_RUN)
        return pruned

    def failure_streak(self, job: str, latest: sqlite3.Row | None = None) -> int:
        """Failed runs in a row, newest first; a run with its retries counts once, by its last attempt.

        The streak recorded on the latest finished run (after_run), else
        counted from the log.  Skips and runs in progress neither break nor
        extend it.  ``latest``, the job's newest row when the caller has it
        (status): when that is a finished last attempt, it is the row this
        asks for, and no query is needed.
        """
        if latest is not None and latest["status"] not in ("skipped", "running") and not latest["retried"]:
            row = (latest["status"], latest["failures"])
        else:
            row = self.db.execute("SELECT status, failures FROM runs WHERE job = ? AND status NOT IN ('skipped',"
                                  " 'running') AND retried = 0 ORDER BY id DESC LIMIT 1", (job,)).fetchone()
        if row is None or row[0] not in FAILED_STATUSES:
            return 0  # what _count_streak finds on the same first row, without asking again
        if row[1] is not None:
            return int(row[1])
        return self._count_streak(job)

    def _count_streak(self, job: str) -> int:
        """The streak from the log alone: failed last attempts in a row, each extending a streak it recorded."""
        return self._streak_and_last(job)[0]

    def _streak_and_last(self, job: str) -> tuple[int, int | None]:
        """_count_streak, and the id of the job's latest finished last attempt (the first row it reads), or None."""
        count, last = 0, None
        for run_id, status, failures in self.db.execute(
            "SELECT id, status, failures FROM runs WHERE job = ? AND status NOT IN ('skipped', 'running')"
            " AND retried = 0 ORDER BY id DESC LIMIT 1000", (job,)
        ):
            if last is None:
                last = run_id
            if status not in FAILED_STATUSES:
                break
            if failures is not None:  # a run older than this one recorded the streak up to it
                return count + int(failures), last
            count += 1
        return count, last

    def set_pid(self, run_id: int, pid: int) -> None:
        with self.write() as db:
            db.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

    def finish_run(self, run_id: int, status: str, exit_code: int | None, signal: int | None,
                   finished_at: float, reason: str, head: bytes, tail: bytes, dropped: int,
                   output_bytes: int) -> None:
        with self.write():
            self._finish_run(run_id, status, exit_code, signal, finished_at, reason, head, tail, dropped,
                             output_bytes)

    def _finish_run(self, run_id: int, status: str, exit_code: int | None, signal: int | None,
                    finished_at: float, reason: str, head: bytes, tail: bytes, dropped: int,
                    output_bytes: int) -> None:
        """finish_run's statements, in the caller's transaction."""
        self.db.execute(
            "UPDATE runs SET status = ?, exit_code = ?, signal = ?, finished_at = ?,"
            " duration_s = ? - started_at, output_bytes = ?, output_truncated = ?, reason = ?"
            " WHERE id = ?",
            (status, exit_code, signal, finished_at, finished_at, output_bytes, int(dropped > 0),
             reason, run_id),
        )
        if head or tail:
            self.db.execute("INSERT OR REPLACE INTO run_output (run_id, head, tail, dropped) VALUES (?, ?, ?, ?)",
                            (run_id, head, tail, dropped))

    def record(self, job: str, status: str, trigger: str, attempt: int, scheduled_for: float | None,
               at: float, wrapper_pid: int, host: str, reason: str, exit_code: int | None = None,
               parent_run_id: int | None = None, params: str | None = None, request_id: int | None = None) -> int:
        """A run that never started a process (skipped), as one finished row."""
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO runs (job, status, exit_code, trigger, attempt, scheduled_for, started_at,"
                " finished_at, duration_s, wrapper_pid, host, reason, parent_run_id, params, request_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                (job, status, exit_code, trigger, attempt, scheduled_for, at, at, wrapper_pid, host, reason,
                 parent_run_id or None, params, request_id),
            )
            row = int(cur.lastrowid or 0)
        self.inserted.append(row)
        return row

    def append_reason(self, run_id: int, text: str) -> None:
        with self.write() as db:
            db.execute("UPDATE runs SET reason = coalesce(reason, '') || ? WHERE id = ?", (text, run_id))

    # --- lost runs

    def running(self, job: str | None = None) -> list[sqlite3.Row]:
        if job is None:
            # Sorted here: with ORDER BY id, SQLite walks the whole table in id
            # order instead of the small partial index (65 ms at a million runs,
            # paid by every read command through finalize_lost).
            return sorted(self.db.execute("SELECT * FROM runs WHERE status = 'running'"), key=lambda r: r["id"])
        return self.db.execute("SELECT * FROM runs WHERE status = 'running' AND job = ? ORDER BY id",
                               (job,)).fetchall()

    def finalize_lost(self, job: str | None, host: str, boot_id: str,
                      alive: Callable[[int], bool], group_alive: Callable[[int], bool], now: float) -> int:
        """Mark runs left `running` whose wrapper and job are both gone as `lost`."""
        lost = []
        for row in self.running(job):
            if row["host"] != host:
                continue  # another machine's run (shared state dir): not ours to judge
            if row["boot_id"] == boot_id and (
                (row["wrapper_pid"] and alive(row["wrapper_pid"])) or (row["pid"] and group_alive(row["pid"]))
            ):
                continue
            why = "machine rebooted" if row["boot_id"] != boot_id else f"wrapper {row['wrapper_pid']} died"
            lost.append((now, f"lost: {why} before recording the end", row["id"]))
        if lost:
            with self.write() as db:
                db.executemany(
                    "UPDATE runs SET status = 'lost', finished_at = ?, duration_s = ? - started_at, reason = ?"
                    " WHERE id = ? AND status = 'running'",
                    [(t, t, r, i) for t, r, i in lost],
                )
            from jobctl import paths

            state = os.path.dirname(self.path)
            for _, _, run_id in lost:  # its wrapper died before removing the run's live output
                try:
                    os.unlink(paths.output_spool(state, run_id))
                except OSError:
                    pass
        return len(lost)

    # --- reads

    def get(self, run_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()

    def latest(self, job: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1", (job,)).fetchone()

    def output(self, run_id: int) -> tuple[bytes, bytes, int] | None:
        row = self.db.execute("SELECT head, tail, dropped FROM run_output WHERE run_id = ?", (run_id,)).fetchone()
        return (bytes(row[0]), bytes(row[1]), int(row[2])) if row else None

    def history(self, job: str | None = None, limit: int = 20, status: str | None = None,
                since: float | None = None) -> list[sqlite3.Row]:
        where: list[str] = []
        args: list[Any] = []
        if job is not None:
            where.append("job = ?")
            args.append(job)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if since is not None:
            where.append("started_at >= ?")
            args.append(since)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return self.db.execute(sql, args).fetchall()

    def last_activity(self, job: str) -> float | None:
        """The latest minute a run of the job was scheduled for or started at (the catch-up pass); None: no runs.

        A backfill or catch-up run counts by its slot only: replaying last
        month today says nothing about whether today's slots ran, and a
        catch-up started at 15:11 for 15:05 says nothing of 15:10 (the pass
        leaves alone a job whose catch-up wrapper is still at work instead:
        paths.catch_up_job_lock).
        """
        return self.db.execute("SELECT max(max(coalesce(scheduled_for, 0),"
                               " CASE WHEN trigger IN ('backfill', 'catchup') THEN 0 ELSE started_at END))"
                               " FROM runs WHERE job = ?", (job,)).fetchone()[0]

    # --- baselines, requirements, chains and the pass's alerts

    def durations(self, job: str, count: int, before: int | None = None) -> list[float]:
        """Durations of the job's latest ``count`` successful runs (older than run ``before``), newest first.

        The baseline's input (jobctl.baseline.usual).  Newest first through
        (job, id): it reads back until ``count`` successes are found.
        """
        if before is None:
            rows = self.db.execute("SELECT duration_s FROM runs WHERE job = ? AND status = 'succeeded'"
                                   " AND duration_s IS NOT NULL ORDER BY id DESC LIMIT ?", (job, count))
        else:
            rows = self.db.execute("SELECT duration_s FROM runs WHERE job = ? AND id < ? AND status = 'succeeded'"
                                   " AND duration_s IS NOT NULL ORDER BY id DESC LIMIT ?", (job, before, count))
        return [r[0] for r in rows]

    def last_result(self, job: str) -> sqlite3.Row | None:
        """The job's latest finished run, by its last attempt (requires): retried attempts and skips are no result."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND status NOT IN ('running', 'skipped')"
                               " AND retried = 0 ORDER BY id DESC LIMIT 1", (job,)).fetchone()

    def children(self, run_id: int) -> list[sqlite3.Row]:
        """The runs a run's then/on_failure started, oldest first (every attempt)."""
        return self.db.execute("SELECT * FROM runs WHERE parent_run_id = ? ORDER BY id", (run_id,)).fetchall()

    def alert_once(self, job: str, kind: str, key: float, at: float, detail: str = "") -> bool:
        """Record that ``kind`` was alerted for ``key`` (a slot, a run id); False when it already was."""
        with self.write() as db:
            cur = db.execute("INSERT OR IGNORE INTO alerts (job, kind, key, at, detail) VALUES (?, ?, ?, ?, ?)",
                             (job, kind, key, at, detail))
            return cur.rowcount > 0

    def set_alert_detail(self, job: str, kind: str, key: float, detail: str) -> None:
        with self.write() as db:
            db.execute("UPDATE alerts SET detail = ? WHERE job = ? AND kind = ? AND key = ?", (detail, job, kind, key))

    def alerts(self, job: str | None = None, kind: str | None = None, since: float | None = None) -> list[sqlite3.Row]:
        """Alerts recorded, oldest first, filtered by job, kind and time alerted."""
        where, args = [], []
        for column, value in (("job = ?", job), ("kind = ?", kind), ("at >= ?", since)):
            if value is not None:
                where.append(column)
                args.append(value)
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at, job, key"
        return self.db.execute(sql, args).fetchall()

    def alert_counts(self, kind: str) -> dict[str, int]:
        """{job: alerts of ``kind``} (metrics' jobctl_missed_runs_total, status's missed count)."""
        return {job: n for job, n in self.db.execute("SELECT job, count(*) FROM alerts WHERE kind = ? GROUP BY job",
                                                      (kind,))}

    def checked_until(self, job: str) -> float | None:
        """How far the pass has looked for the job's missed runs (None: never)."""
        row = self.db.execute("SELECT at FROM alerts WHERE job = ? AND kind = 'checked' AND key = 0", (job,)).fetchone()
        return None if row is None else float(row[0])

    def set_checked_until(self, job: str, at: float) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO alerts (job, kind, key, at) VALUES (?, 'checked', 0, ?)", (job, at))

    # --- requests (jobctl submit, queue, cancel, wait; the wrapper claims them, the pass starts due ones)

    def submit(self, job: str, params: str, key: str | None, due: float, now: float,
               max_queued: int) -> tuple[int, bool]:
        """Record a request, durably; (its id, False), or (the id of the same job and key, True).

        Raises QueueFull when ``max_queued`` requests of the job are queued.
        The check and the insert are one transaction: two submits cannot both
        take the last place, nor both record the same key.
        """
        with self.write() as db:
            if key is not None:
                row = db.execute("SELECT id FROM requests WHERE job = ? AND key = ?"
                                 " AND status IN ('queued', 'running')", (job, key)).fetchone()
                if row is not None:
                    return int(row[0]), True
            queued = db.execute("SELECT count(*) FROM requests WHERE job = ? AND status = 'queued'",
                                (job,)).fetchone()[0]
            if queued >= max_queued:
                raise QueueFull(queued)
            cur = db.execute("INSERT INTO requests (job, params, key, due, submitted) VALUES (?, ?, ?, ?, ?)",
                             (job, params, key, due, now))
            request_id = int(cur.lastrowid or 0)
        self.sync_wal()  # submit says the request is recorded: it must survive a power cut from here on
        return request_id, False

    def claim(self, job: str, now: float, pid: int, host: str, boot_id: str) -> sqlite3.Row | None:
        """Take the job's oldest queued request that is due, marking it running; None when there is none.

        Whoever holds the job's lock claims, oldest first, so requests run in
        submit order whichever wrapper got the lock; a request is claimed once.
        """
        with self.write() as db:
            row = db.execute("SELECT * FROM requests WHERE job = ? AND status = 'queued' AND due <= ?"
                             " ORDER BY id LIMIT 1", (job, now)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE requests SET status = 'running', claimed_pid = ?, claimed_at = ?, host = ?,"
                       " boot_id = ? WHERE id = ?", (pid, now, host, boot_id, row["id"]))
        return row

    def request_started(self, request_id: int, run_id: int) -> None:
        with self.write() as db:
            db.execute("UPDATE requests SET run_id = ? WHERE id = ?", (run_id, request_id))

    def finish_request(self, request_id: int, status: str, run_id: int | None, exit_code: int | None,
                       finished: float, reason: str) -> None:
        with self.write() as db:
            db.execute("UPDATE requests SET status = ?, run_id = coalesce(?, run_id), exit_code = ?, finished = ?,"
                       " reason = ? WHERE id = ?", (status, run_id or None, exit_code, finished, reason, request_id))

    def prune_requests(self, job: str, before: float) -> int:
        """Forget the job's requests that ended before ``before`` (its history.max_age): their runs say the rest."""
        with self.write() as db:
            return db.execute("DELETE FROM requests WHERE job = ? AND status NOT IN ('queued', 'running')"
                              " AND finished < ?", (job, before)).rowcount

    def requeue(self, request_id: int) -> None:
        """A running request whose wrapper died before its job started: queued again (it runs once, later)."""
        with self.write() as db:
            db.execute("UPDATE requests SET status = 'queued', claimed_pid = NULL, claimed_at = NULL, run_id = NULL"
                       " WHERE id = ? AND status = 'running'", (request_id,))

    def skip_request(self, request_id: int, now: float, reason: str) -> bool:
        """A queued request that will not run (forbid met a run, the job is paused); False if no longer queued."""
        with self.write() as db:
            cur = db.execute("UPDATE requests SET status = 'skipped', finished = ?, reason = ?, exit_code = 75"
                             " WHERE id = ? AND status = 'queued'", (now, reason, request_id))
            return cur.rowcount > 0

    def cancel(self, request_id: int, now: float) -> tuple[sqlite3.Row | None, bool]:
        """Cancel a queued request: (the request as it is now, None when there is none; whether this cancelled it)."""
        with self.write() as db:
            cur = db.execute("UPDATE requests SET status = 'cancelled', finished = ?,"
                             " reason = 'cancelled (jobctl cancel)' WHERE id = ? AND status = 'queued'",
                             (now, request_id))
            return db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone(), cur.rowcount > 0

    def request(self, request_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()

    def requests(self, job: str | None = None, statuses: tuple[str, ...] = ("queued", "running"),
                 limit: int = 10_000) -> list[sqlite3.Row]:
        """Requests in those statuses, oldest first."""
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT * FROM requests WHERE status IN ({marks})"
        args: list[Any] = list(statuses)
        if job is not None:
            sql += " AND job = ?"
            args.append(job)
        return self.db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()

    def due_jobs(self, now: float) -> list[str]:
        """Jobs with a queued request due by ``now``, by their oldest one (the pass starts a wrapper for each)."""
        return [r[0] for r in self.db.execute("SELECT job FROM requests WHERE status = 'queued' AND due <= ?"
                                              " GROUP BY job ORDER BY min(id)", (now,))]

    def pending_requests(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM requests WHERE status IN ('queued', 'running')")
                   .fetchone()[0])

    # --- reads of the read commands (status, metrics, logs, prune)

    def jobs(self) -> list[str]:
        """Every job with rows in the log (applied or not)."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT job FROM runs")]

    def last_started(self, job: str) -> sqlite3.Row | None:
        """The latest run that started the job: skips (paused, forbid) are not results."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND status != 'skipped' ORDER BY id DESC LIMIT 1",
                               (job,)).fetchone()

    def last_finished(self, job: str) -> sqlite3.Row | None:
        """The latest attempt that started and ended."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND status NOT IN ('running', 'skipped')"
                               " ORDER BY id DESC LIMIT 1", (job,)).fetchone()

    def last_success_at(self, job: str) -> float | None:
        """When the job's latest successful run (the newest by id, as every "latest" here) started.

        Walks the job's runs newest first through (job, id) and stops at the
        first success; max(started_at) read every run of the job.
        """
        row = self.db.execute("SELECT started_at FROM runs WHERE job = ? AND status = 'succeeded'"
                              " ORDER BY id DESC LIMIT 1", (job,)).fetchone()
        return row[0] if row is not None else None

    def recent(self, job: str, count: int = 10) -> list[sqlite3.Row]:
        """(status, duration_s) of the job's last ``count`` runs, newest first (status's strip and usual duration).

        A run counts once, by its last attempt: an attempt a retry followed is
        left out.  Skips and a run in progress are in.  One statement newest
        first through (job, id): it reads ``count`` rows and the retried
        attempts among them, however long the job's history.
        """
        return self.db.execute("SELECT status, duration_s FROM runs WHERE job = ? AND retried = 0"
                               " ORDER BY id DESC LIMIT ?", (job, count)).fetchall()

    def latest_with_output(self, job: str) -> sqlite3.Row | None:
        """The job's latest run that printed something."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND output_bytes > 0 ORDER BY id DESC LIMIT 1",
                               (job,)).fetchone()

    def next_attempt(self, row: sqlite3.Row) -> sqlite3.Row | None:
        """The attempt that retried ``row`` (its wrapper's next one), once it has started."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND id > ? AND wrapper_pid = ? AND attempt = ?"
                               " ORDER BY id LIMIT 1",
                               (row["job"], row["id"], row["wrapper_pid"], row["attempt"] + 1)).fetchone()

    def run_started_at(self, row: sqlite3.Row) -> float:
        """When the run ``row`` is an attempt of started: its first attempt's start (its own for attempt 1)."""
        if row["attempt"] <= 1:
            return float(row["started_at"])
        first = self.db.execute("SELECT started_at FROM runs WHERE job = ? AND id < ? AND wrapper_pid = ?"
                                " AND attempt = 1 ORDER BY id DESC LIMIT 1",
                                (row["job"], row["id"], row["wrapper_pid"])).fetchone()
        return float(first[0] if first is not None else row["started_at"])

    def runs_after(self, job: str, run_id: int) -> int:
        """How many rows of the job are newer than ``run_id``."""
        return int(self.db.execute("SELECT count(*) FROM runs WHERE job = ? AND id > ?", (job, run_id)).fetchone()[0])

    def first_start(self, job: str, since: float, until: float) -> float | None:
        """When the first run scheduled for a time in [since, until) started; None when none did."""
        return self.db.execute("SELECT min(started_at) FROM runs WHERE job = ? AND scheduled_for >= ?"
                               " AND scheduled_for < ?", (job, since, until)).fetchone()[0]

    def run_counts(self) -> dict[tuple[str, str], int]:
        """{(job, status): runs}, a run with its retries once, by its last attempt."""
        # NOT INDEXED: every row is counted anyway, and reading the table in
        # order beats visiting it in job order through an index (3x at 1M runs)
        return {(job, status): n for job, status, n in self.db.execute(
            "SELECT job, status, count(*) FROM runs NOT INDEXED WHERE retried = 0 GROUP BY job, status")}

    # --- reads of `jobctl why`

    def scheduled_runs(self, job: str, since: float, until: float) -> list[sqlite3.Row]:
        """Every row (attempts and skips) of ``job`` scheduled for a time in [since, until), oldest first."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND scheduled_for >= ? AND scheduled_for < ?"
                               " ORDER BY id", (job, since, until)).fetchall()

    def cron_started(self, since: float, until: float, started_by: float) -> list[tuple[str, int]]:
        """(job, first run id) of every job cron started for a minute in [since, until), started before ``started_by``.

        Only trigger ``schedule``: a wrapper cron (or a timer) started for
        that minute, whatever it then did (a skip too).  Read through the
        started_at index: such a run starts within its minute plus jitter.
        """
        return [(r[0], int(r[1])) for r in self.db.execute(
            "SELECT job, min(id) FROM runs WHERE started_at >= ? AND started_at < ? AND scheduled_for >= ?"
            " AND scheduled_for < ? AND trigger = 'schedule' GROUP BY job ORDER BY job",
            (since, started_by, since, until))]

    def first_cron_start(self, since: float) -> sqlite3.Row | None:
        """The first run of any job that cron's lines started (scheduled or catch-up) at or after ``since``."""
        return self.db.execute("SELECT * FROM runs WHERE started_at >= ? AND trigger IN ('schedule', 'catchup')"
                               " ORDER BY started_at LIMIT 1", (since,)).fetchone()

    # --- reads of `jobctl backfill`

    def succeeded_slots(self, job: str, since: float, until: float) -> set[float]:
        """The scheduled times in [since, until) that a run of the job (any trigger) succeeded for."""
        return {float(r[0]) for r in self.db.execute(
            "SELECT DISTINCT scheduled_for FROM runs WHERE job = ? AND status = 'succeeded' AND scheduled_for >= ?"
            " AND scheduled_for < ?", (job, since, until))}

    def catch_up_since(self, job: str, since: float) -> sqlite3.Row | None:
        """The job's first catch-up run for a minute at or after ``since``."""
        return self.db.execute("SELECT * FROM runs WHERE job = ? AND trigger = 'catchup' AND scheduled_for >= ?"
                               " ORDER BY id LIMIT 1", (job, since)).fetchone()


def _create(path: str) -> None:
    """A new run log, migrated and in WAL mode before any other process can open it.

    Switching a file to WAL takes an exclusive lock without the busy timeout,
    so wrappers creating the log at the same moment got "database is locked"
    (two at once failed about half the time).  The log is built under a
    private name and hard-linked into place; a creator that loses the race
    uses the winner's file.
    """
    tmp = f"{path}.new.{os.getpid()}"
    # Created 0600 before SQLite touches it; SQLite gives -wal/-shm the same mode.
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            # Before any table exists: freed pages can then be handed back
            # bit by bit after runs (retention) instead of by a full VACUUM.
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            _migrate(db)
        finally:
            db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            if not os.path.exists(path):  # a filesystem without hard links
                os.rename(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def connect(path: str, create: bool = True, checkpoint: bool = True, build_indexes: bool = True) -> Store:
    """Open the run log, creating and migrating it when needed.

    ``checkpoint=False``: the connection is never closed (the wrapper's,
    runlog.leave_open) and checkpoints only when asked (Store.checkpoint_due).
    ``build_indexes=False`` (the wrapper, the catch-up pass, read commands):
    a log whose pending migrations are all INDEX_ONLY is used as it is;
    apply and prune migrate it.
    Raises sqlite3.Error or OSError; the wrapper turns those into one logged
    line and runs the job anyway.
    """
    if not os.path.exists(path):
        if not create:
            raise FileNotFoundError(path)
        _create(path)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA synchronous = NORMAL")
        if not checkpoint:
            db.execute("PRAGMA wal_autocheckpoint = 0")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION and (
                build_indexes or not INDEX_ONLY.issuperset(range(version + 1, SCHEMA_VERSION + 1))):
            _migrate(db, build_indexes)
        elif version == SCHEMA_VERSION and build_indexes and _deferred(db):
            _migrate(db, True)
        elif version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"run log {path} has schema version {version}, newer than this jobctl knows ({SCHEMA_VERSION});"
                " upgrade jobctl"
            )
    except BaseException:
        db.close()
        raise
    return Store(path, db)


def quick_check(path: str) -> list[str]:
    """What SQLite's quick_check finds wrong in the log, read-only (nothing created or migrated); [] when ok.

    Raises sqlite3.Error when the file cannot be opened as a database.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    finally:
        db.close()
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows]


#: how schema_migrations marks an index migration a connection without build_indexes passed over
DEFERRED = " (deferred)"


def _deferred(db: sqlite3.Connection) -> bool:
    """Whether an index migration was passed over (DEFERRED) and waits for apply or prune to build it."""
    try:
        return db.execute("SELECT 1 FROM schema_migrations WHERE name LIKE ? LIMIT 1",
                          ("%" + DEFERRED,)).fetchone() is not None
    except sqlite3.OperationalError:  # no schema_migrations: a log nothing migrated
        return False


def _migrate(db: sqlite3.Connection, build_indexes: bool = True) -> None:
    # WAL is a property of the file: set it once, outside any transaction.
    if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
        current = db.execute("PRAGMA user_version").fetchone()[0]  # re-read under the write lock
        for number, (name, apply) in enumerate(MIGRATIONS, start=1):
            if number <= current:
                if build_indexes and number in INDEX_ONLY and db.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = ? AND name LIKE ?",
                        (number, "%" + DEFERRED)).fetchone():
                    apply(db)  # the index a wrapper passed over, built now
                    db.execute("UPDATE schema_migrations SET name = ?, applied_at = ? WHERE version = ?",
                               (name, time.time(), number))
                continue
            if number in INDEX_ONLY and not build_indexes:
                db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           (number, name + DEFERRED, time.time()))
            else:
                apply(db)
                db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           (number, name, time.time()))
            db.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
