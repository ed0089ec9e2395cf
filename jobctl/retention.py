"""Run-log retention: keep the last N runs and nothing older than max_age, per job.

Pruning is cheap enough to run after every run (two indexed deletes) and is
also what ``jobctl prune`` does for every job at once.  Deleted pages are given
back to the file system by incremental vacuum, so a job that runs every minute
for a year keeps the log at a bounded size.
"""

from __future__ import annotations

TYPE_CHECKING = False  # imported after every run: the sqlite3 package costs the wrapper ~1.5 ms
if TYPE_CHECKING:
    import sqlite3

DEFAULT_KEEP = 200
DEFAULT_MAX_AGE = 90 * 86400
#: pages handed back per run; a full `jobctl prune` vacuums everything
VACUUM_PAGES_AFTER_RUN = 256


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
