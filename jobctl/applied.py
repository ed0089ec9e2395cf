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
from .files import replace_atomically

#: keys of an applied file that describe it rather than the job: where it was
#: defined, and the precomputed UTC offsets of its time zone (clock.offsets)
NOT_DEFINITION = ("source", "tz_offsets")


def write(state: str, definition: dict[str, Any]) -> str:
    directory = paths.applied_dir(state)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    target = paths.applied_file(state, definition["name"])
    data = json.dumps(definition, indent=1, sort_keys=True) + "\n"
    replace_atomically(target, data.encode(), 0o600)
    return target


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
