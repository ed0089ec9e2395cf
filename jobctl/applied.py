"""Applied definitions: the compiled snapshot of each job that cron runs.

`apply` writes one JSON file per job under STATE/applied/; the wrapper reads
only that file (no YAML, no validation) on every scheduled run.  Writes are
atomic (temp file + rename) and 0600, since env values may hold secrets.

This module owns the definition's shape: its keys (``Definition``), what a
key a definition lacks means (``DEFAULTS``, by format), and the fast reader
the wrapper uses.  The wrapper imports it, so at import it loads nothing
beyond ``os`` and ``jobctl.paths``: json, typing and the file helpers are
imported by the functions that need them (json with its regular expressions
costs a scheduled run ~3 ms).  The compile step (job spec → definition, and
the hash in the crontab line) is jobctl.install.compile.
"""

from __future__ import annotations

import os
import sys

from jobctl import paths

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TypedDict

    from jobctl.files import Batch

    class Retries(TypedDict):
        attempts: int
        delay: float
        backoff: float
        max_delay: float

    class History(TypedDict):
        keep: int
        max_age: float

    class Notify(TypedDict):
        when: list[str]
        after_failures: int
        command: str | None
        webhook: str | None
        email: list[str]
        ping: str | None

    class _Meta(TypedDict, total=False):
        jobs_dir: str
        recorded_for: list[str]

    class Definition(_Meta):
        """An applied definition in the current format (what upgrade returns, and the wrapper indexes)."""

        name: str
        schedule: str | None
        cron: str | None
        #: the compiled field sets (jobs.schedule.compile_fields): minute, hour, dom, month, dow, *_star, fixed
        fields: dict[str, Any] | None
        command: str | list[str]
        shell: str
        working_dir: str | None
        env: dict[str, str]
        timeout: float | None
        kill_grace: float
        retries: Retries
        concurrency: str
        output_limit: int
        enabled: bool
        user: str | None
        description: str | None
        tags: list[str]
        timezone: str | None
        jitter: float
        catch_up: float | None
        notify: Notify | None
        history: History
        cron_mail: str
        source: str
        tz_offsets: list[list[int]] | None
else:
    Retries = History = Notify = Definition = dict

#: keys of an applied file that describe it rather than the job: where it was
#: defined, the precomputed UTC offsets of its time zone (clock.offsets), the
#: jobs directory it was applied from, and which schedulers run it (RECORDED_FOR).
#: None of them is part of the definition hash, so they never rewrite a crontab line.
NOT_DEFINITION = ("source", "tz_offsets", "jobs_dir", "recorded_for")
#: who runs an applied definition: "cron" (written by apply, a line in jobctl's
#: block) and/or "systemd" (written by export systemd --record, for the timers).
#: A file without the key was written by apply before the key existed: cron.
CRON, SYSTEMD = "cron", "systemd"

# --- the format ------------------------------------------------------------------------------

RETRIES_DEFAULT: Retries = {"attempts": 0, "delay": 10, "backoff": 2.0, "max_delay": 600}
HISTORY_DEFAULT: History = {"keep": 200, "max_age": 90 * 86400}
NOTIFY_DEFAULT: Notify = {"when": ["failure"], "after_failures": 1, "command": None, "webhook": None,
                          "email": [], "ping": None}

#: The keys each format of the definition brought, with the value that a
#: definition without the key means.  A format only ever added keys, so a file
#: needs no version field: the keys it lacks are those of the formats after
#: the one that wrote it, and upgrade() fills them with what the jobctl that
#: wrote it did without them.  For the first format's keys, which every
#: applied file has, the value is what a job file that leaves the key out
#: means (definitions written by hand: tests, `run --detach`).  ``name`` and
#: ``command`` have no default: a definition without them is not one.
FORMATS: tuple[dict[str, Any], ...] = (
    # 1: the first release
    {"schedule": None, "cron": None, "shell": "/bin/sh", "working_dir": None, "env": {}, "timeout": None,
     "kill_grace": 10, "retries": RETRIES_DEFAULT, "concurrency": "forbid", "output_limit": 1 << 20,
     "enabled": True, "user": None, "description": None, "tags": [], "source": ""},
    # 2: time zones (the compiled fields and, outside the hash, the zone's offsets),
    #    jitter, catch-up, notifications and retention
    {"fields": None, "timezone": None, "tz_offsets": None, "jitter": 0, "catch_up": None, "notify": None,
     "history": HISTORY_DEFAULT},
    # 3: what cron mails
    {"cron_mail": "failure"},
)
FORMAT_VERSION = len(FORMATS)
#: every key's default, written once (a job file that leaves a key out compiles to the same value)
DEFAULTS: dict[str, Any] = {key: value for keys in FORMATS for key, value in keys.items()}


def upgrade(defn: Mapping[str, Any]) -> Definition:
    """``defn`` (a JSON object naming a job) in the current format, as a new dict the wrapper indexes.

    Every key it lacks gets its DEFAULTS value, and so does every key of a
    ``retries``, ``history`` or (non-empty) ``notify`` mapping; ``retries``
    may be a bare count of attempts, as a hand-written definition gives it.
    Values are not checked here: the wrapper bounds each number it acts on
    (number, integer), and a value of the wrong type stops the run with one
    line naming the definition.
    """
    out: dict[str, Any] = {**DEFAULTS, **defn}
    retries = out["retries"]
    out["retries"] = {**RETRIES_DEFAULT, **retries} if isinstance(retries, dict) \
        else {**RETRIES_DEFAULT, "attempts": retries}
    history = out["history"]
    out["history"] = {**HISTORY_DEFAULT, **history} if isinstance(history, dict) else dict(HISTORY_DEFAULT)
    notify = out["notify"]
    out["notify"] = {**NOTIFY_DEFAULT, **notify} if isinstance(notify, dict) and notify else None
    if "env" not in defn:
        out["env"] = {}  # never the shared default
    if "tags" not in defn:
        out["tags"] = []
    return out  # type: ignore[return-value]  # filled above: every key of Definition is there


# Bounds of the arithmetic on a definition.  Validation keeps job files far
# inside them; these hold for hand-edited or older definitions too.
#: no duration the wrapper acts on is longer (a century: "never" for a scheduled job)
MAX_SECONDS = 100 * 366 * 86400.0
#: SQLite integers are signed 64-bit
MAX_INT = (1 << 63) - 1
#: retries.attempts' maximum in spec.RANGES (the wrapper does not import spec; a test checks they agree)
MAX_RETRIES = 100
#: likewise notify.after_failures
MAX_AFTER_FAILURES = 10_000


def number(value: Any, default: float, high: float = MAX_SECONDS) -> float:
    """A number of a definition as a float in [0, high].

    Not a number (NaN, a string, null) means ``default``; an infinity or an
    integer too large for a float means ``high``.  So no arithmetic of the
    wrapper can overflow, turn into NaN or make poll(2) raise.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return float(default)
    return float(min(max(value, 0), high))  # compared as given: a huge int never becomes a float


def integer(value: Any, default: int, high: int = MAX_INT) -> int:
    """A whole number of a definition in [0, high]; see number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return int(min(max(value, 0), high))


def retention(defn: Definition) -> tuple[int, float]:
    """(keep, max_age) of the job's history, bounded as the wrapper acts on them."""
    history = defn["history"]
    return integer(history["keep"], HISTORY_DEFAULT["keep"]), number(history["max_age"], HISTORY_DEFAULT["max_age"])


# --- reading and writing files -----------------------------------------------------------------

class _JsonContext:
    """The settings of a default json.JSONDecoder, as its C scanner reads them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__


def parse(data: bytes) -> Any:
    """json.loads(data), without importing json for an applied definition.

    json.decoder compiles regular expressions at import, and re with its enum
    costs the wrapper ~3 ms at every start (docs/benchmarks.md).  An applied
    definition is a JSON object; it is parsed by the C scanner json.loads
    itself uses, and anything else (other encodings, errors, trailing data)
    goes to json.loads, so the result and the errors are json's.
    """
    if data[:1] == b"{":
        try:
            from _json import make_scanner

            text = data.decode("utf-8", "surrogatepass")
            obj, end = make_scanner(_JsonContext)(text, 0)  # type: ignore[arg-type]  # the scanner reads attributes
            if not text[end:].strip(" \t\n\r"):
                return obj
        except Exception:  # noqa: BLE001 - the C scanner raises SystemError on some truncations: json.loads says why
            pass
    import json

    return json.loads(data)


def read_raw(state: str, name: str) -> Any:
    """NAME's applied file parsed, whatever JSON value it holds (the wrapper's read: no checks, no warning).

    Raises FileNotFoundError when there is none, OSError or ValueError when
    it cannot be read or is not JSON.
    """
    with open(paths.applied_file(state, name), "rb") as fh:
        return parse(fh.read())


def _encode(definition: Mapping[str, Any]) -> bytes:
    """One line of JSON, keys sorted: json's C encoder writes it (with an indent json uses its Python one,
    ten times slower, a third of `apply`'s time over 1,000 jobs)."""
    import json

    return (json.dumps(definition, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _target(state: str, name: str) -> str:
    os.makedirs(paths.applied_dir(state), mode=0o700, exist_ok=True)
    return paths.applied_file(state, name)


def write(state: str, definition: Mapping[str, Any]) -> str:
    from jobctl.files import replace_atomically

    target = _target(state, definition["name"])
    replace_atomically(target, _encode(definition), 0o600)
    return target


def stage(batch: Batch, state: str, definition: Mapping[str, Any]) -> str:
    """Add a definition to ``batch``: written now, in place only when the batch commits (crontab.apply)."""
    target = _target(state, definition["name"])
    batch.add(target, _encode(definition), 0o600)
    return target


def sweep(state: str) -> list[str]:
    """Remove the temporary files a killed apply or export left in STATE/applied/."""
    from jobctl.files import remove_stale_temps

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
    import json

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


def recorded_for(defn: Mapping[str, Any] | None) -> list[str]:
    """Who runs ``defn``: a sorted list of CRON and SYSTEMD (empty for None)."""
    if defn is None:
        return []
    value = defn.get("recorded_for")
    if not isinstance(value, list):
        return [CRON]
    return sorted({v for v in value if v in (CRON, SYSTEMD)})


def with_meta(defn: Mapping[str, Any], jobs_dir: str | None, users: list[str]) -> dict[str, Any]:
    """``defn`` with where it was applied from and who runs it (keys outside the definition hash)."""
    out = dict(defn)
    if jobs_dir is not None:
        out["jobs_dir"] = jobs_dir
    out["recorded_for"] = sorted(set(users))
    return out


def jobs_dir_of(defn: Mapping[str, Any] | None) -> str | None:
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


def differs(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    """The keys whose values differ, ignoring where the job was defined."""
    if a is None or b is None:
        return ["(not applied)"] if a is not b else []
    keys = sorted((set(a) | set(b)) - set(NOT_DEFINITION))
    return [k for k in keys if a.get(k) != b.get(k)]
