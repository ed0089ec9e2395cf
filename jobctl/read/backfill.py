"""`jobctl backfill`: the schedule's slots in a range, which of them already succeeded, and one run per slot.

Each slot is run by the same wrapper cron starts (``--backfill-run TIME``,
trigger ``backfill``, scheduled_for the slot), one after another, so the job's
lock, concurrency policy, retries, timeout and notifications apply as to any
run, and the job sees its slot in JOBCTL_SCHEDULED_FOR, JOBCTL_SLOT_START and
JOBCTL_SLOT_END.  A slot that already has a succeeded run (whatever started
it) is skipped unless forced: re-running the same range after an interruption
goes on where it stopped.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobctl import clock, units
from jobctl.errors import ExitCode, JobctlError

#: slots a backfill runs unless --max says more: a week of a job that runs every minute
DEFAULT_MAX = 10_000
#: the runs whose durations make the usual duration (the ETA)
USUAL_OF = 20


def parse_time(text: str, option: str, zone: str | None, now: float) -> float:
    """``--since``/``--until``: ISO 8601 (a date, a date and time, with Z or an offset), ``now``, or a duration ago.

    A time without Z or an offset is read in the job's time zone (the
    system's for a job without one), as its schedule is: ``2026-12-01``
    is that day's midnight where the job runs.
    """
    raw = text.strip()
    if raw == "now":
        return now
    try:
        ago = now - units.parse_duration(raw)
    except (ValueError, OverflowError):
        pass
    else:
        if ago < 0:
            raise JobctlError(f"{option} {text!r}: before 1970; give a time from 1970 on", ExitCode.USAGE)
        return ago
    value = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        or_ago = ", or a duration ago (2d, 12h)" if option != "--at" else ""
        raise JobctlError(f"{option} {text!r}: not a time; write an ISO 8601 date or time (2026-12-01, "
                          f"2026-12-01T03:00, 2026-12-01T03:00Z, 2026-12-01T03:00+01:00), now{or_ago}",
                          ExitCode.USAGE) from None
    if not 1970 <= at.year <= 9998:
        raise JobctlError(f"{option} {text!r}: out of range; give a time from 1970 to 9998", ExitCode.USAGE)
    if at.tzinfo is None:
        try:
            at = clock.attach(at, zone)
        except (LookupError, ValueError, OSError):
            raise JobctlError(f"{option}: the job's time zone {zone!r} is not in the tz database; "
                              "give the time with Z or an offset", ExitCode.USAGE) from None
    return at.timestamp()


def slots(defn: dict[str, Any], since: float, until: float, limit: int) -> list[float]:
    """The job's scheduled times in [since, until), oldest first; at most ``limit + 1`` (more means too many)."""
    f = defn.get("fields")
    zone = defn.get("timezone")
    out: list[float] = []
    after = datetime.fromtimestamp(since - 1, timezone.utc)
    while len(out) <= limit:
        batch = clock.next_runs(f, zone, after, min(500, limit + 1 - len(out)))  # type: ignore[arg-type]
        if not batch:
            break
        for u in batch:
            t = u.timestamp()
            if t >= until:
                return out
            out.append(t)
        after = batch[-1]
    return out


@dataclass
class Plan:
    """What a backfill of one job does: every slot in the range, those already done, those to run."""

    job: str
    since: float
    until: float
    slots: list[float]
    done: set[float] = field(default_factory=set)
    #: the median duration of the job's recent successful runs, None without any
    usual: float | None = None

    @property
    def to_run(self) -> list[float]:
        return [s for s in self.slots if s not in self.done]


def plan(defn: dict[str, Any], log: Any, since: float, until: float, force: bool, limit: int) -> Plan:
    """The slots of [since, until), those a succeeded run already covers (none with ``force``), the usual duration."""
    name = defn["name"]
    if not defn.get("fields"):
        what = "@reboot" if defn.get("cron") == "@reboot" else "no periodic schedule"
        raise JobctlError(f"{name} has {what}: it has no slots to backfill", ExitCode.NOT_OK)
    if since >= until:
        raise JobctlError(f"--since ({iso(since)}) must be before --until ({iso(until)})", ExitCode.USAGE)
    found = slots(defn, since, until, limit)
    if len(found) > limit:
        raise JobctlError(f"more than {limit} slots of {name} between {iso(since)} and {iso(until)}; "
                          "narrow the range or raise the bound with --max N", ExitCode.USAGE)
    done: set[float] = set()
    usual = None
    if log is not None:
        if not force and found:
            done = log.succeeded_slots(name, found[0], found[-1] + 1) & set(found)
        durations = [d for status, d in log.recent(name, USUAL_OF) if status == "succeeded" and d is not None]
        usual = statistics.median(durations) if durations else None
    return Plan(name, since, until, found, done, usual)


def iso(t: float) -> str:
    """A Unix time as ISO 8601 UTC (JOBCTL_SCHEDULED_FOR's form)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
