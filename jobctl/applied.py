"""Applied definitions: the compiled snapshot of each job that cron runs.

`apply` writes one JSON file per job under STATE/applied/; the wrapper reads
only that file (no YAML, none of validate's rules: only the check of its
shape, ``checked``) on every scheduled run.  Writes are atomic (temp file +
rename) and 0600, since env values may hold secrets.

This module owns the definition's shape: its keys (``Definition``), what a
key a definition lacks means (``DEFAULTS``, by format), the check that a
definition read has that shape (``checked``), and the fast reader the
wrapper uses.  The wrapper imports it, so at import it loads nothing
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
    from collections.abc import Callable, Mapping
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
        catch_up_mode: str
        catch_up_max: int
        notify: Notify | None
        history: History
        cron_mail: str
        baseline: dict[str, float]
        lock_group: str | None
        requires: list[dict[str, Any]]
        then: list[str]
        on_failure: list[str]
        params: dict[str, dict[str, Any]]
        max_queued: int
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
    # 4: catch-up of every missed schedule
    {"catch_up_mode": "latest", "catch_up_max": 100},
    # 5: baselines (null: the defaults of jobctl.baseline) and job-to-job rules
    {"baseline": None, "lock_group": None, "requires": [], "then": [], "on_failure": []},
    # 6: run parameters and requests (jobctl submit)
    {"params": {}, "max_queued": 100},
)
FORMAT_VERSION = len(FORMATS)
#: every key's default, written once (a job file that leaves a key out compiles to the same value)
DEFAULTS: dict[str, Any] = {key: value for keys in FORMATS for key, value in keys.items()}


def upgrade(defn: Mapping[str, Any]) -> Definition:
    """``defn`` (a JSON object naming a job) in the current format, as a new dict the wrapper indexes.

    Every key it lacks gets its DEFAULTS value, and so does every key of a
    ``retries``, ``history`` or (non-empty) ``notify`` mapping; ``retries``
    may be a bare count of attempts, as a hand-written definition gives it.
    Values are not checked here but by checked(), which the wrapper and
    the catch-up pass read a definition through; the wrapper bounds each
    number it acts on (number, integer).
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
    for key in ("tags", "requires", "then", "on_failure"):
        if key not in defn:
            out[key] = []  # never the shared default
    if "params" not in defn:
        out["params"] = {}
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


# --- the shape the wrapper indexes ------------------------------------------------------------

class Malformed(ValueError):
    """An applied definition the wrapper cannot act on; the message names the key: ``key K: expected T, got V``.

    A definition is written by apply, but the state directory may be
    hand-edited, damaged on disk or written by an older release: every key
    the wrapper (or the catch-up pass) indexes is checked once, here, so that
    a bad one stops the run with one line rather than a traceback wherever it
    is first used.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        #: the key at fault (None: the file as a whole is no definition)
        self.key = key


def expected(key: str, what: str, value: Any) -> Malformed:
    """``key K: expected WHAT, got VALUE``, VALUE shown short."""
    return Malformed(f"key {key}: expected {what}, got {_got(value)}", key)


#: the words of concurrency, cron_mail and catch_up_mode, owned here (the wrapper reads them and does not
#: import jobs/); jobs.spec validates job files against the same tuples
CONCURRENCY = ("forbid", "allow", "replace", "wait")
CRON_MAIL = ("failure", "always", "never")
CATCH_UP_MODES = ("latest", "each")
#: notify events only the every-minute pass notices (jobctl.runner.watch; install.crontab installs the
#: pass for a job that asks for one)
PASS_EVENTS = ("overdue", "missed")
#: what ``requires`` asks of the required job's latest finished run: that it succeeded, failed
#: (failed, timed out, was killed or lost) or just finished, whichever way
REQUIRE_STATUSES = ("succeeded", "failed", "finished")
#: the compiled field sets (jobs.schedule.compile_fields): the sets, then the flags
FIELD_SETS = ("minute", "hour", "dom", "month", "dow")
FIELD_FLAGS = ("dom_star", "dow_star", "fixed")
#: a UTC offset is less than a day either way (datetime.utcoffset's own bound)
MAX_OFFSET = 86400
#: the type of every item of an array of integers (bool, a subclass of int, is not one)
_INT = {int}


def _got(value: Any) -> str:
    """A value of a definition as a message shows it: short, one line, JSON's names for its types."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        if len(value) <= 4 and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
            return printable("[" + ", ".join(_got(v) for v in value) + "]")[:120]  # [1, "a"]: short enough
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, int) and value.bit_length() > 100:  # str() of a huge one is slow, or refused
        return "a number of over 30 digits"
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (int, float)):
        return repr(value).replace("inf", "Infinity")  # JSON's names, as the file has them
    if isinstance(value, str):
        return printable('"' + value[:60] + ('..."' if len(value) > 60 else '"'))
    return type(value).__name__


def _number(value: Any) -> bool:
    """A JSON number; number() and integer() bound it (NaN, infinities and huge ones included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any, empty: bool = False) -> bool:
    """A string the system can take as a path, an argument or an environment value: no NUL, no lone surrogate."""
    if not isinstance(value, str) or not (empty or value) or "\0" in value:
        return False
    if not value.isascii():
        try:
            os.fsencode(value)
        except UnicodeError:
            return False
    return True


def _optional_number(value: Any) -> bool:
    return value is None or _number(value)  # null: the default, as number() reads it


def _optional_text(value: Any) -> bool:
    return value is None or _text(value)


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _text_list(value: Any) -> bool:
    return isinstance(value, list) and all(_text(v) for v in value)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_command(value: Any) -> str | None:
    if isinstance(value, str):
        return None if _text(value) else "expected a non-empty command string or array of strings"
    if not isinstance(value, list) or not value:
        return "expected a non-empty command string or array of strings"
    for i, item in enumerate(value):
        if not _text(item, empty=i > 0):  # an argument may be "", the program may not
            return f"[{i}]: expected {'the program, a non-empty string' if i == 0 else 'a string'}, got {_got(item)}"
    return None


def _check_env(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected an object of NAME: value strings"
    for key, val in value.items():
        if not _text(key) or "=" in key:
            return f": expected variable names, got {_got(key)}"
        if not _text(val, empty=True):
            return f".{printable(key)}: expected a string, got {_got(val)}"
    return None


def _check_fields(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "expected null or the compiled fields of a schedule"
    for key in FIELD_SETS:
        items = value.get(key)
        # set(map(type)) runs in C: a schedule's sets hold ~140 numbers, checked at every wake-up
        if not isinstance(items, list) or not set(map(type, items)) <= _INT:
            return f".{key}: expected an array of integers, got {_got(items)}"
    for key in FIELD_FLAGS:
        if not isinstance(value.get(key), bool):
            return f".{key}: expected true or false, got {_got(value.get(key))}"
    return None


def _check_offsets(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return "expected null or an array of [start, offset] pairs"
    previous = None
    for i, row in enumerate(value):
        if not (isinstance(row, list) and len(row) == 2 and type(row[0]) is int and type(row[1]) is int):
            return f"[{i}]: expected a [start, offset] pair of integers, got {_got(row)}"
        if not -MAX_OFFSET < row[1] < MAX_OFFSET:
            return f"[{i}]: expected a UTC offset of less than a day in seconds, got {_got(row[1])}"
        if previous is not None and row[0] <= previous:
            return f"[{i}]: expected starts in increasing order, got {_got(row[0])} after {_got(previous)}"
        previous = row[0]
    return None


def _check_notify(value: Any) -> str | None:
    if value is None:
        return None
    for key, ok, what in (("when", _str_list, "an array of strings"),
                          ("after_failures", _optional_number, "a number"),
                          ("command", _optional_text, "a string or null"),
                          ("webhook", _optional_text, "a string or null"),
                          ("ping", _optional_text, "a string or null"),
                          ("email", _text_list, "an array of e-mail addresses")):
        if not ok(value[key]):
            return f".{key}: expected {what}, got {_got(value[key])}"
    return None


def _name_list(value: Any) -> bool:
    """Job names: what then and on_failure start (a name with / or .. would reach outside applied/)."""
    return isinstance(value, list) and all(isinstance(v, str) and paths.valid_job_name(v) for v in value)


def _check_requires(value: Any) -> str | None:
    if not isinstance(value, list):
        return "expected an array of {job, status, within} objects"
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not _name_list([item.get("job")]):
            return f"[{i}]: expected an object naming a job, got {_got(item)}"
        if item.get("status", "succeeded") not in REQUIRE_STATUSES:
            return f"[{i}].status: expected one of {', '.join(REQUIRE_STATUSES)}, got {_got(item.get('status'))}"
        if not _optional_number(item.get("within")):
            return f"[{i}].within: expected a number of seconds or null, got {_got(item.get('within'))}"
    return None


def _check_params(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "expected an object of NAME: {required, default, pattern, description}"
    for name, decl in value.items():
        if not isinstance(decl, dict):
            return f".{printable(str(name))}: expected an object, got {_got(decl)}"
        if not isinstance(decl.get("required", False), bool):
            return f".{printable(str(name))}.required: expected true or false, got {_got(decl.get('required'))}"
        for key in ("default", "pattern", "description"):
            if not _optional_str(decl.get(key)):
                return f".{printable(str(name))}.{key}: expected a string or null, got {_got(decl.get(key))}"
    return None


def _check_baseline(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "expected null or an object"
    for key, item in value.items():
        if not _number(item):
            return f".{printable(str(key))}: expected a number, got {_got(item)}"
    return None


def _check_numbers(value: Any, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if not _optional_number(value[key]):
            return f".{key}: expected a number, got {_got(value[key])}"
    return None


#: key -> (check, what it expects) for the keys whose check is a yes or no; a check of a
#: structure says itself where in it the problem is (_check_*: None or the rest of the message)
_SIMPLE: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("schedule", _optional_str, "a string or null"),
    ("cron", _optional_str, "a string or null"),
    ("shell", _text, "the path of a shell"),
    ("working_dir", _optional_text, "a directory's path or null"),
    ("timeout", _optional_number, "a number of seconds or null"),
    ("kill_grace", _optional_number, "a number of seconds"),
    ("concurrency", CONCURRENCY.__contains__, "one of " + ", ".join(CONCURRENCY)),
    ("output_limit", _optional_number, "a number of bytes"),
    ("enabled", lambda v: isinstance(v, bool), "true or false"),
    # never "" nor 0: an empty user would run the job as whoever runs the wrapper (root, for --system)
    ("user", _optional_text, "a user name or null"),
    ("description", _optional_str, "a string or null"),
    ("tags", _str_list, "an array of strings"),
    ("timezone", _optional_text, "a time zone name or null"),
    ("jitter", _optional_number, "a number of seconds"),
    ("catch_up", _optional_number, "a number of seconds or null"),
    ("cron_mail", CRON_MAIL.__contains__, "one of " + ", ".join(CRON_MAIL)),
    ("catch_up_mode", CATCH_UP_MODES.__contains__, "one of " + ", ".join(CATCH_UP_MODES)),
    ("catch_up_max", _number, "a number of runs"),
    ("lock_group", lambda v: v is None or _name_list([v]), "a lock group name or null"),
    ("then", _name_list, "an array of job names"),
    ("on_failure", _name_list, "an array of job names"),
    ("max_queued", _number, "a number of requests"),
    ("source", lambda v: isinstance(v, str), "a string"),
)


def checked(raw: Any, name: str) -> Definition:
    """``raw`` (an applied file, parsed) as the definition of job ``name``: in the current format, checked.

    Raises Malformed when it is not a JSON object naming the job, or when a
    key the wrapper indexes holds a type or value it cannot act on; the
    message is ``key K: expected T, got V``.  Types, and the values the
    wrapper branches on, are checked; numbers are not bounded here (the
    wrapper bounds each: number, integer), so a hand-edited NaN or 1e400
    still runs as it always has.  A ``retries``, ``history`` or ``notify``
    that is no mapping is refused before upgrade() would take it for its
    default.  Some 20 us (a tenth of a percent of a scheduled wake-up).
    """
    if not isinstance(raw, dict) or raw.get("name") != name:
        raise Malformed("not a JSON object naming this job")
    retries, history, notify = raw.get("retries"), raw.get("history"), raw.get("notify")
    if not (retries is None or _number(retries) or isinstance(retries, dict)):
        raise expected("retries", "an object or a number of attempts", retries)
    if not (history is None or isinstance(history, dict)):
        raise expected("history", "an object", history)
    if not (notify is None or isinstance(notify, dict)):
        raise expected("notify", "an object or null", notify)
    if "command" not in raw:
        raise Malformed("key command: expected a command string or array of strings, got nothing", "command")
    defn = upgrade(raw)
    values: dict[str, Any] = defn  # type: ignore[assignment]  # indexed by the names of _SIMPLE's keys
    for key, ok, what in _SIMPLE:
        if not ok(values[key]):
            raise expected(key, what, values[key])
    for key, why in (("command", _check_command(defn["command"])), ("env", _check_env(defn["env"])),
                     ("fields", _check_fields(defn["fields"])), ("tz_offsets", _check_offsets(defn["tz_offsets"])),
                     ("retries", _check_numbers(defn["retries"], tuple(RETRIES_DEFAULT))),
                     ("history", _check_numbers(defn["history"], tuple(HISTORY_DEFAULT))),
                     ("notify", _check_notify(defn["notify"])), ("requires", _check_requires(defn["requires"])),
                     ("baseline", _check_baseline(defn["baseline"])), ("params", _check_params(defn["params"]))):
        if why is not None:
            if why.startswith("expected"):  # about the value itself
                why = f": {why}, got {_got(values[key])}"
            raise Malformed(f"key {key}{why}", key)
    return defn


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
    goes to json.loads, so the result and the errors are json's, but for
    one: a value nested too deeply for the parser's recursion (100,000
    arrays in one another) is a ValueError here, as any other JSON that
    cannot be a definition, rather than json's RecursionError.
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

    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to be a definition") from None


def read_raw(state: str, name: str) -> Any:
    """NAME's applied file parsed, whatever JSON value it holds (the wrapper's read: no warning).

    Raises FileNotFoundError when there is none, OSError or ValueError when
    it cannot be read or is not JSON.  The wrapper then checks it (checked).
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
        return None, f"its name is {printable(json.dumps(defn['name']))[:80]}, not {json.dumps(name)}"
    return defn, None


def printable(text: str) -> str:
    """One line for a message: control characters escaped (file names and names come from the disk)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def warning(state: str, name: str, why: str) -> str:
    return (f"jobctl: warning: {printable(paths.applied_file(state, name))} is not a usable definition ({why}); "
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
