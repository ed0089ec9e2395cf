"""Applied definitions: the compiled snapshot of each job that cron runs.

`apply` writes one JSON file per job under STATE/applied/; the wrapper reads
only that file (no YAML, no validation) on every scheduled run.  Writes are
atomic (temp file + rename) and 0600, since env values may hold secrets.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import paths
from .files import Batch, remove_stale_temps, replace_atomically

#: keys of an applied file that describe it rather than the job: where it was
#: defined, and the precomputed UTC offsets of its time zone (clock.offsets)
NOT_DEFINITION = ("source", "tz_offsets")


def _encode(definition: dict[str, Any]) -> bytes:
    return (json.dumps(definition, indent=1, sort_keys=True) + "\n").encode()


def _target(state: str, name: str) -> str:
    os.makedirs(paths.applied_dir(state), mode=0o700, exist_ok=True)
    return paths.applied_file(state, name)


def write(state: str, definition: dict[str, Any]) -> str:
    target = _target(state, definition["name"])
    replace_atomically(target, _encode(definition), 0o600)
    return target


def stage(batch: Batch, state: str, definition: dict[str, Any]) -> str:
    """Add a definition to ``batch``: written now, in place only when the batch commits (crontab.apply)."""
    target = _target(state, definition["name"])
    batch.add(target, _encode(definition), 0o600)
    return target


def sweep(state: str) -> list[str]:
    """Remove the temporary files a killed apply or export left in STATE/applied/."""
    return remove_stale_temps(paths.applied_dir(state))


def read(state: str, name: str) -> dict[str, Any] | None:
    try:
        with open(paths.applied_file(state, name), "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return None


def names(state: str) -> list[str]:
    try:
        entries = os.listdir(paths.applied_dir(state))
    except FileNotFoundError:
        return []
    return sorted(e[:-5] for e in entries if e.endswith(".json"))


def remove(state: str, name: str) -> None:
    try:
        os.unlink(paths.applied_file(state, name))
    except FileNotFoundError:
        pass


def differs(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """The keys whose values differ, ignoring where the job was defined."""
    if a is None or b is None:
        return ["(not applied)"] if a is not b else []
    keys = sorted((set(a) | set(b)) - set(NOT_DEFINITION))
    return [k for k in keys if a.get(k) != b.get(k)]
