"""Specs → applied definitions: what apply installs for a job, and the hash its crontab line carries.

The definition is the whole contract between apply and the wrapper
(jobctl.applied owns its shape and defaults): plain JSON, with the schedule
already compiled to field sets and a time zone's UTC offsets precomputed, so
the wrapper needs neither YAML nor the schedule parser nor zoneinfo.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jobctl import applied
from jobctl.jobs import schedule as schedule_mod
from jobctl.jobs import spec
from jobctl.jobs.spec import JobSpec


def _offsets(zone: str | None) -> list[list[int]] | None:
    if not zone:
        return None
    import time

    from jobctl.clock import offsets

    year = time.gmtime().tm_year  # a fixed anchor: the table changes once a year, not at every apply
    return offsets(zone, year, years=3)


def definition(job: JobSpec) -> dict[str, Any]:
    """The compiled definition the wrapper runs (JSON-ready, no YAML), in applied.FORMAT_VERSION's format."""
    return {
        "name": job.name,
        "schedule": job.schedule.text,
        "cron": job.schedule.cron,
        # the field sets the wrapper matches a time zone's minutes against
        "fields": schedule_mod.compile_fields(job.schedule.cron),
        "command": list(job.command) if isinstance(job.command, tuple) else job.command,
        "shell": job.shell,
        "working_dir": job.working_dir,
        "env": dict(job.env),
        "timeout": job.timeout,
        "kill_grace": job.kill_grace,
        "retries": {
            "attempts": job.retries.attempts,
            "delay": job.retries.delay,
            "backoff": job.retries.backoff,
            "max_delay": job.retries.max_delay,
        },
        "concurrency": job.concurrency,
        "output_limit": job.output_limit,
        "enabled": job.enabled,
        "user": job.user,
        "description": job.description,
        "tags": list(job.tags),
        "timezone": job.timezone,
        "jitter": job.jitter,
        "catch_up": job.catch_up,
        "catch_up_mode": job.catch_up_mode,
        "catch_up_max": job.catch_up_max,
        "notify": job.notify.to_dict() if job.notify else None,
        "history": {"keep": job.history.keep, "max_age": job.history.max_age},
        "cron_mail": job.cron_mail,
        # null unless set: the wrapper then uses jobctl.baseline.DEFAULT, and a later release may change those
        "baseline": job.baseline.to_dict() if job.baseline != spec.Baseline() else None,
        "lock_group": job.lock_group,
        "requires": [r.to_dict() for r in job.requires],
        "then": list(job.then),
        "on_failure": list(job.on_failure),
        "params": {name: p.to_dict() for name, p in job.params.items()},
        "max_queued": job.max_queued,
        "source": job.source,
        # lets the wrapper decide time-zone wake-ups without datetime/zoneinfo
        "tz_offsets": _offsets(job.timezone),
    }


def definition_hash(defn: dict[str, Any]) -> str:
    """The hash a crontab line carries (``# jobctl:NAME HASH``): of the definition, not of its metadata."""
    memo = _memo
    if memo is not None:
        hit = memo.get(id(defn))
        if hit is not None and hit[0] is defn:
            return hit[1]
    canonical = json.dumps({k: v for k, v in defn.items() if k not in applied.NOT_DEFINITION}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    if memo is not None:
        memo[id(defn)] = (defn, digest)  # the dict itself too: its id cannot be reused while the memo lives
    return digest


#: definition_hash's results by definition object, inside ``with unchanged_definitions()``
_memo: dict[int, tuple[dict[str, Any], str]] | None = None


class unchanged_definitions:  # noqa: N801 - used as a context manager, like a function
    """``with compile.unchanged_definitions():`` each definition dict is hashed once, however often it is asked.

    For a caller that hashes the same dicts several times and changes none
    of them meanwhile: `status` hashes each applied definition to compare it
    with its crontab line, then renders that line, which hashes it again
    (json.dumps and sha256, ~15 us a job).  By identity, not content: a dict
    changed inside the block would keep its old hash, so nothing may change one.
    """

    def __enter__(self) -> None:
        global _memo
        self._outer = _memo
        if _memo is None:
            _memo = {}

    def __exit__(self, *exc: object) -> None:
        global _memo
        _memo = self._outer


def to_spec(defn: dict[str, Any]) -> JobSpec | None:
    """A JobSpec from an applied definition (status and run when no job file is found); None if unusable.

    Each value goes through the job-file key's own parser, so a hand-edited
    definition is refused here as validate would refuse it.
    """
    values: dict[str, Any] = {"name": defn.get("name")}
    try:
        for key, value in defn.items():
            field_ = spec.FIELDS_BY_KEY.get(key)
            if field_ is None or key == "name" or value is None or (value in ([], {}) and key != "env"):
                continue  # null, [] and {}: the key left out (then: [] is what a job without then compiles to)
            if key == "notify" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if v not in (None, [], ())}
            values[key] = field_.parse(value)
        if not isinstance(values["name"], str) or not spec.NAME_RE.match(values["name"]):
            return None
        return spec.build(values, source=str(defn.get("source") or ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
