"""Applied definitions: the compiled snapshot of each job that cron runs.

`apply` writes one JSON file per job under STATE/applied/; the wrapper reads
only that file (no YAML, no validation) on every scheduled run.  Writes are
atomic (temp file + rename) and 0600, since env values may hold secrets.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from jobctl import paths
from jobctl.files import Batch, remove_stale_temps, replace_atomically

#: keys of an applied file that describe it rather than the job: where it was
#: defined, the precomputed UTC offsets of its time zone (clock.offsets), the
#: jobs directory it was applied from, and which schedulers run it (RECORDED_FOR).
#: None of them is part of the definition hash, so they never rewrite a crontab line.
NOT_DEFINITION = ("source", "tz_offsets", "jobs_dir", "recorded_for")
#: who runs an applied definition: "cron" (written by apply, a line in jobctl's
#: block) and/or "systemd" (written by export systemd --record, for the timers).
#: A file without the key was written by apply before the key existed: cron.
CRON, SYSTEMD = "cron", "systemd"


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


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}
#: files already warned about in this process (one warning per file)
_warned: set[str] = set()


def load(state: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(definition, None); (None, None) when there is none; (None, why) when the file is not a usable definition.

    Usable: a JSON object whose ``name`` is the file's name.  A truncated or
    hand-edited file must not stop the read commands: they treat it as not
    applied, and apply rewrites it.
    """
    try:
        with open(paths.applied_file(state, name), "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read it: {exc.strerror or exc}"
    try:
        defn = json.loads(data)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except (ValueError, RecursionError) as exc:
        return None, f"not JSON: {type(exc).__name__}"
    if not isinstance(defn, dict):
        return None, f"{_JSON_TYPES.get(type(defn), 'a JSON value')}, not an object"
    if "name" not in defn:
        return None, "no name"
    if defn["name"] != name:
        return None, f"its name is {_printable(json.dumps(defn['name']))[:80]}, not {json.dumps(name)}"
    return defn, None


def _printable(text: str) -> str:
    """One line for a message: control characters escaped (file names and names come from the disk)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def warning(state: str, name: str, why: str) -> str:
    return (f"jobctl: warning: {_printable(paths.applied_file(state, name))} is not a usable definition ({why}); "
            "jobctl apply rewrites it")


def read(state: str, name: str) -> dict[str, Any] | None:
    """NAME's applied definition; None when there is none or it is not usable (warned once per file on stderr)."""
    defn, why = load(state, name)
    if why is not None:
        path = paths.applied_file(state, name)
        if path not in _warned:
            _warned.add(path)
            print(warning(state, name, why), file=sys.stderr)
    return defn


def unusable(state: str) -> list[tuple[str, str, str]]:
    """(name, file, why) of every applied file that is not a usable definition (doctor); nothing printed."""
    out = []
    for name in names(state):
        _, why = load(state, name)
        if why is not None:
            out.append((name, paths.applied_file(state, name), why))
    return out


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


def recorded_for(defn: dict[str, Any] | None) -> list[str]:
    """Who runs ``defn``: a sorted list of CRON and SYSTEMD (empty for None)."""
    if defn is None:
        return []
    value = defn.get("recorded_for")
    if not isinstance(value, list):
        return [CRON]
    return sorted({v for v in value if v in (CRON, SYSTEMD)})


def with_meta(defn: dict[str, Any], jobs_dir: str | None, users: list[str]) -> dict[str, Any]:
    """``defn`` with where it was applied from and who runs it (keys outside the definition hash)."""
    out = dict(defn)
    if jobs_dir is not None:
        out["jobs_dir"] = jobs_dir
    out["recorded_for"] = sorted(set(users))
    return out


def jobs_dir_of(defn: dict[str, Any] | None) -> str | None:
    """The jobs directory ``defn`` was last applied from, when it can be told.

    Definitions written before ``jobs_dir`` existed name their file in
    ``source`` (PATH:LINE); only an absolute PATH says where it was.
    """
    if defn is None:
        return None
    value = defn.get("jobs_dir")
    if isinstance(value, str) and value:
        return value
    source = defn.get("source")
    if isinstance(source, str) and source.startswith("/"):
        return os.path.dirname(source.rpartition(":")[0] or source)
    return None


def same_dir(a: str | None, b: str | None) -> bool:
    """Whether two jobs directories are one (symlinks resolved); an unknown one matches nothing."""
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def mtime(state: str, name: str) -> int | None:
    """When the definition was last written (ns): status and the catch-up pass read it as "applied at"."""
    try:
        return os.stat(paths.applied_file(state, name)).st_mtime_ns
    except FileNotFoundError:
        return None


def keep_mtime(state: str, name: str, when: int | None) -> None:
    """Put back the time a definition was applied after a rewrite of its metadata only.

    Missed-run detection (status) and the catch-up pass count from that time;
    recording where a job came from, or for which scheduler, is not a new
    definition and must not reset them.
    """
    if when is None:
        return
    try:
        os.utime(paths.applied_file(state, name), ns=(when, when))
    except FileNotFoundError:
        pass


def to_spec(defn: dict[str, Any]) -> Any:
    """A JobSpec from an applied definition (status and run when no job file is found); None if unusable.

    Each value goes through the job-file key's own parser, so a hand-edited
    definition is refused here as validate would refuse it.
    """
    from jobctl.jobs import spec

    values: dict[str, Any] = {"name": defn.get("name")}
    try:
        for key, value in defn.items():
            field_ = spec.FIELDS_BY_KEY.get(key)
            if field_ is None or key == "name" or value is None:
                continue
            if key == "notify" and isinstance(value, dict):
                value = {k: v for k, v in value.items() if v not in (None, [], ())}
            values[key] = field_.parse(value)
        if not isinstance(values["name"], str) or not spec.NAME_RE.match(values["name"]):
            return None
        return spec.build(values, source=str(defn.get("source") or ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def differs(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """The keys whose values differ, ignoring where the job was defined."""
    if a is None or b is None:
        return ["(not applied)"] if a is not b else []
    keys = sorted((set(a) | set(b)) - set(NOT_DEFINITION))
    return [k for k in keys if a.get(k) != b.get(k)]
