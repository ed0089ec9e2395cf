"""Run-log retention: keep the last N runs and nothing older than max_age, per job.

Pruning is cheap enough to run after every run (two indexed deletes, in
store.Store.after_run) and is also what ``jobctl prune`` does for every job at
once (prune_all).  Deleted pages are given back to the file system by
incremental vacuum, so a job that runs every minute for a year keeps the log
at a bounded size.  The queries are store's (store.doomed, prune_job, vacuum).
"""

from __future__ import annotations

from types import ModuleType

from jobctl import applied, store

#: what a job whose definition says nothing keeps (applied.HISTORY_DEFAULT, for the benchmarks)
DEFAULT_KEEP: int = applied.HISTORY_DEFAULT["keep"]
DEFAULT_MAX_AGE: float = applied.HISTORY_DEFAULT["max_age"]


def prune_all(log: store.Store, state: str, now: float, dry_run: bool = False) -> list[tuple[str, int]]:
    """`jobctl prune`: every job in the log under its applied ``history`` settings, in one transaction.

    Returns (job, runs deleted, or that would be with ``dry_run``) for each
    job with runs, by name.  Unless ``dry_run``, the whole file is vacuumed
    after, not the few pages a run hands back.
    """
    counts = []
    with log.write() as db:
        for job in sorted(log.jobs()):
            # as the wrapper prunes after a run; a job no longer applied keeps the defaults
            keep, max_age = applied.retention(applied.upgrade(applied.read(state, job) or {}))
            counts.append((job, len(store.doomed(db, job, keep, max_age, now)) if dry_run
                           else store.prune_job(db, job, keep, max_age, now)))
    if not dry_run:
        store.vacuum(log.db)
    return counts


# --- for a wrapper of the previous release running across an upgrade (jobctl.inflight):
# its run log calls these two when its job ends, with these signatures.

def prune_job(db: object, job: str, keep: int, max_age: float, now: float) -> int:
    return int(_store_now().prune_job(db, job, keep, max_age, now))


def vacuum(db: object, pages: int | None = None) -> None:
    _store_now().vacuum(db, pages)


def __getattr__(name: str) -> int:
    if name == "VACUUM_PAGES_AFTER_RUN":
        return int(_store_now().VACUUM_PAGES_AFTER_RUN)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _store_now() -> ModuleType:
    """This release's run-log module, even where the previous release's holds ``jobctl.store``."""
    from jobctl import inflight

    return store if hasattr(store, "prune_job") else inflight.current("store.py")
