"""The job model: every job-file key, its form, default and meaning.

``FIELDS`` is the one table of keys.  The loader reads it to check shapes and
report locations, the JSON Schema is generated from it, and the docs test
checks every key appears in the man page.  Adding a key is one entry here plus
a field on ``JobSpec``; adding a notification sink is one row of
``NOTIFY_SINK_KEYS`` plus a field on ``Notify`` (and its sender in
``jobctl.runner.notify.SINKS``).  Durations and sizes are ``jobctl.units``'.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobctl import applied
from jobctl.jobs import schedule as schedule_mod

# the keys' parsers use these; code outside jobs/ imports them from jobctl.units
from jobctl.units import (
    DAY,
    DURATION_PATTERN,
    MAX_NUMBER_TEXT,
    SIZE_PATTERN,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    show,
)

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}\Z")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}\Z")
USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?\Z", re.IGNORECASE)
CONCURRENCY = applied.CONCURRENCY
#: what a run started by cron prints (cron mails whatever a job prints):
#: failure — one summary line and the output's tail when the run failed,
#: nothing on success, as ``cronic`` does; always — that summary after every
#: run; never — nothing (``MAILTO=""`` for jobctl's lines)
CRON_MAIL = applied.CRON_MAIL
#: how the catch-up pass makes up for missed schedules: latest — one run for the
#: latest missed one; each — every missed one, oldest first, one after another
CATCH_UP_MODES = applied.CATCH_UP_MODES
RESERVED_ENV = ("JOBCTL_JOB", "JOBCTL_RUN_ID", "JOBCTL_ATTEMPT", "JOBCTL_SCHEDULED_FOR", "JOBCTL_SLOT_START",
                "JOBCTL_SLOT_END", "JOBCTL_PARENT_RUN_ID", "JOBCTL_PARENT_JOB", "JOBCTL_PARENT_STATUS",
                "JOBCTL_PARENT_OUTPUT")
#: what a requirement asks of the required job's latest finished run (requires: status)
REQUIRE_STATUSES = applied.REQUIRE_STATUSES

MAX_OUTPUT_LIMIT = 1024**3
#: the longest cron expression worth writing (every value of every field is ~400)
MAX_SCHEDULE_CHARS = 1000
#: the tz database's own limit on a zone name (and the file system's on a name)
MAX_TIMEZONE_CHARS = 255


def text_problem(text: str) -> str | None:
    """Why a string cannot be handed to the system, or None.

    YAML's double-quoted escapes can write ``\\0`` and lone surrogates
    (``\\ud800``); neither survives the trip into a path, an argument, an
    environment or a UTF-8 file, so they fail later (at run time, or in
    ``export``) unless refused here.
    """
    if "\0" in text:
        return "contains a NUL byte (\\0), which no path, argument or environment variable can hold; remove it"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (f"contains U+{ord(text[exc.start]):04X}, a lone surrogate that is not a character "
                    "(a \\ud800-style escape?); remove it or write the character itself")
    return None


@dataclass(frozen=True)
class Range:
    """The values one numeric key accepts, both ends included, and why those ends."""

    key: str
    minimum: int | float
    maximum: int | float
    #: "duration" (seconds), "size" (bytes), "count" or "factor"
    kind: str
    why: str

    def show(self, value: int | float) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        unit = {"duration": "s", "size": "B"}.get(self.kind, "")
        if value >= 10**15:  # a 400-digit number says no more than its magnitude
            return _magnitude(value) + unit
        if self.kind == "duration":
            return format_duration(value)
        if self.kind == "size":
            return format_size(int(value))
        return repr(value) if isinstance(value, float) else str(value)  # 10.000001, not 10

    @property
    def text(self) -> str:
        return f"{self.show(self.minimum)} to {self.show(self.maximum)}"


def _magnitude(value: int | float) -> str:
    """1.23e+400 for numbers too large to write out, without float() (which overflows past 1e308)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if value.bit_length() > 40_000:  # str() refuses more than 4300 digits; no job file gets here
        return "a number of more than 12,000 digits"
    digits = str(value)
    return f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


#: Every numeric key's range: the one table the loader, the JSON Schema and the
#: man page read.  The maxima keep every value inside what the wrapper can act
#: on (poll(2) and sleeps take at most ~24.8 days, floats overflow past 1e308)
#: and inside what an operator would mean.
RANGES: tuple[Range, ...] = (
    Range("timeout", 1, 7 * DAY, "duration",
          "a job that runs for more than a week is a service, not a scheduled job"),
    Range("kill_grace", 0, 3600, "duration", "time a timed-out job gets between SIGTERM and SIGKILL"),
    Range("retries.attempts", 0, 100, "count", "more attempts than that only hammer what is failing"),
    Range("retries.delay", 0, DAY, "duration", "wait before the first retry"),
    Range("retries.backoff", 1, 10, "factor", "a finite factor; delays grow by at most 10x per attempt"),
    Range("retries.max_delay", 0, DAY, "duration", "no wait between attempts is longer than a day"),
    Range("output_limit", 0, MAX_OUTPUT_LIMIT, "size", "the wrapper keeps a run's output in memory"),
    Range("jitter", 0, DAY, "duration", "a random delay longer than a day is a different schedule"),
    Range("catch_up", 1, 366 * DAY, "duration", "a missed run is made up within a year at most"),
    Range("catch_up_max", 1, 10_000, "count",
          "missed runs catch_up_mode each makes up after one downtime (a week of a job every minute)"),
    Range("notify.after_failures", 1, 10_000, "count", "a week of failures of a job that runs every minute"),
    Range("history.keep", 1, 1_000_000, "count", "runs kept per job in the run log"),
    Range("history.max_age", 1, 3650 * DAY, "duration", "ten years"),
    Range("baseline.min_runs", 5, 1000, "count", "fewer than five runs are no baseline to judge a run by"),
    Range("baseline.runs", 5, 1000, "count", "the latest successful runs the usual duration is learned from"),
    Range("baseline.slow", 1.5, 100, "factor", "times the usual (median) duration beyond which a run is slow"),
    Range("baseline.short", 0.01, 0.9, "factor",
          "fraction of the usual (median) duration below which a successful run is short"),
    Range("requires.within", 1, 366 * DAY, "duration", "how recent the required run must be, a year at most"),
    Range("max_queued", 1, 100_000, "count", "requests of one job waiting at once; more is a backlog, not a queue"),
)
RANGE = {r.key: r for r in RANGES}


def check_range(key: str, value: int | float, label: str | None = None) -> Any:
    """``value`` when RANGE[key] holds it; otherwise ValueError: what, the range, the fix."""
    r = RANGE[key]
    label = label or key.replace(".", " ")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{label} {value} is not a number; use one from {r.text}")
    if value > r.maximum:
        raise ValueError(f"{label} {r.show(value)} is out of range ({r.text}); use {r.show(r.maximum)} or less")
    if value < r.minimum:
        raise ValueError(f"{label} {r.show(value)} is out of range ({r.text}); use {r.show(r.minimum)} or more")
    return value


class FieldError(ValueError):
    """A bad value; ``at`` locates it inside a list (index) or map (key)."""

    def __init__(self, message: str, at: int | str | None = None, on_key: bool = False) -> None:
        super().__init__(message)
        self.at = at
        self.on_key = on_key


@dataclass(frozen=True)
class Retries:
    attempts: int = 0
    delay: int = 10
    backoff: float = 2.0
    max_delay: int = 600

    def delay_before(self, retry: int) -> float:
        """Seconds to sleep before retry number ``retry`` (1-based)."""
        return float(min(self.delay * self.backoff ** (retry - 1), self.max_delay))


#: run events (failure, recovery, success), baseline events of a run (slow, short: the wrapper;
#: overdue: the pass, while it runs) and missed, the pass's alert that a scheduled run never started
NOTIFY_WHEN = ("failure", "recovery", "success", "slow", "short", "overdue", "missed")


@dataclass(frozen=True)
class Notify:
    """A job's ``notify``: when to alert, and one field per sink of NOTIFY_SINK_KEYS (its default: unused)."""

    when: tuple[str, ...] = ("failure",)
    after_failures: int = 1
    command: str | None = None
    webhook: str | None = None
    email: tuple[str, ...] = ()
    ping: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"when": list(self.when), "after_failures": self.after_failures}
        for key in NOTIFY_SINKS:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class History:
    keep: int = 200
    max_age: int = 90 * 86400


@dataclass(frozen=True)
class Baseline:
    """How a job's usual duration is learned and a run judged against it (jobctl.baseline)."""

    min_runs: int = 5
    runs: int = 20
    slow: float = 3.0
    short: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return {"min_runs": self.min_runs, "runs": self.runs, "slow": self.slow, "short": self.short}


@dataclass(frozen=True)
class Param:
    """One declared run parameter (``params: {NAME: {required, default, pattern, description}}``)."""

    required: bool = False
    default: str | None = None
    pattern: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"required": self.required, "default": self.default, "pattern": self.pattern,
                "description": self.description}


@dataclass(frozen=True)
class Requirement:
    """One ``requires`` item: ``job``'s latest finished run ended in ``status``, at most ``within`` s ago."""

    job: str
    status: str = "succeeded"
    within: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status, "within": self.within}


@dataclass(frozen=True)
class JobSpec:
    name: str
    schedule: schedule_mod.Schedule
    command: str | tuple[str, ...]
    description: str | None = None
    shell: str = "/bin/sh"
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: int | None = None
    kill_grace: int = 10
    retries: Retries = Retries()
    concurrency: str = "forbid"
    output_limit: int = 1024 * 1024
    enabled: bool = True
    tags: tuple[str, ...] = ()
    user: str | None = None
    timezone: str | None = None
    jitter: int = 0
    catch_up: int | None = None
    catch_up_mode: str = "latest"
    catch_up_max: int = 100
    notify: Notify | None = None
    history: History = History()
    cron_mail: str = "failure"
    baseline: Baseline = Baseline()
    lock_group: str | None = None
    requires: tuple[Requirement, ...] = ()
    then: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)
    max_queued: int = 100
    #: where the job was defined: "path:line"
    source: str = ""

# --- key parsers: plain values in, model values out, ValueError on bad input.

def _string(value: Any, what: str = "a string") -> str:
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, (int, float, bool)) else ""
        raise ValueError(f"must be {what}, not {_kind(value)}{hint}")
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _name(value: Any) -> str:
    text = _string(value)
    if not NAME_RE.match(text):
        raise ValueError(
            f"{show(text, 80)} is not a valid job name; use 1-63 lowercase letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return text


def _description(value: Any) -> str:
    return _string(value)


@functools.lru_cache(maxsize=256)
def _parse_schedule(text: str) -> schedule_mod.Schedule:
    # A thousand jobs share a handful of schedules; a Schedule is immutable, and
    # an expression that fails is not cached (it raises again, the same way).
    return schedule_mod.parse(text)


def _schedule(value: Any) -> schedule_mod.Schedule:
    text = _string(value, "a cron expression in quotes, e.g. '*/15 * * * *'")
    if len(text) > MAX_SCHEDULE_CHARS:
        raise ValueError(f"schedule is {len(text)} characters long; a cron expression needs at most "
                         f"{MAX_SCHEDULE_CHARS}: use ranges and steps (1-5, */10) instead of long lists")
    try:
        return _parse_schedule(text)
    except schedule_mod.ScheduleError as exc:
        message = str(exc)
        if message.startswith(("@", "schedule")):
            raise ValueError(message) from None
        raise ValueError(f"schedule {text!r}: {message}") from None


def _command(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, list):
        if not value:
            raise ValueError("command list is empty; give the program and its arguments")
        for i, item in enumerate(value):
            # Every item is a string: the loader hands over a number as written in the
            # file (numbers_as_written: [chmod, 0644, f] runs chmod 0644), so a number
            # here (an applied definition edited by hand) would run as str() of it.
            if not isinstance(item, str):
                hint = " (quote it)" if isinstance(item, (int, float)) and not isinstance(item, bool) else ""
                raise FieldError(f"command argument must be a string, not {_kind(item)}{hint}", at=i)
            problem = text_problem(item)
            if problem:
                raise FieldError(f"command argument {problem}", at=i)
        if not value[0]:
            raise FieldError("the program (first element) is empty", at=0)
        return tuple(value)
    text = _string(value, "a string (run by the shell) or a list of strings (argv)")
    if not text.strip():
        raise ValueError("command is empty")
    return text


def _abs_path(value: Any) -> str:
    text = _string(value)
    if not text.startswith("/"):
        raise ValueError(f"{show(text)} is not an absolute path; start it with /")
    return text


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of NAME: value, not {_kind(value)}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not ENV_NAME_RE.match(key):
            raise FieldError(f"{show(key)} is not a valid environment variable name", at=key, on_key=True)
        if key in RESERVED_ENV:
            raise FieldError(f"{key} is set by jobctl for every run; choose another name", at=key, on_key=True)
        if key.startswith("JOBCTL_PARAM_"):
            raise FieldError(f"{key}: JOBCTL_PARAM_* are the run's parameters (params:); declare a parameter with a "
                             "default instead, or choose another name", at=key, on_key=True)
        if isinstance(val, bool) or val is None:
            raise FieldError(
                f"env {key}: {_kind(val)} is not a string; quote it (YAML reads yes/no/on/off as booleans)",
                at=key,
            )
        if isinstance(val, (int, float)):
            val = str(val)
        if not isinstance(val, str):
            raise FieldError(f"env {key}: must be a string, not {_kind(val)}", at=key)
        problem = text_problem(val)
        if problem:
            raise FieldError(f"env {key}: {problem}", at=key)
        out[key] = val
    return out


def _kill_grace(value: Any) -> int:
    return check_range("kill_grace", parse_duration(value))


def _jitter(value: Any) -> int:
    return check_range("jitter", parse_duration(value))


def _timeout(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError("timeout 0 would kill the job at once; remove the key for no timeout")
    return check_range("timeout", seconds)


_RETRY_KEYS = ("attempts", "delay", "backoff", "max_delay")


def _attempts(value: Any, label: str = "retries attempts") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"retries must be a whole number 0 or more, not {show(value)}")
    return check_range("retries.attempts", value, label)


def _backoff(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise ValueError(f"retries backoff must be a number 1 or more, not {show(value)}")
    # compared before float(): a 400-digit integer has no float
    return float(check_range("retries.backoff", value))


def _retries(value: Any) -> Retries:
    if not isinstance(value, dict):
        return Retries(attempts=_attempts(value, "retries"))
    import difflib

    for key in value:
        if key not in _RETRY_KEYS:
            close = difflib.get_close_matches(str(key), _RETRY_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; use {', '.join(_RETRY_KEYS)}"
            raise FieldError(f"unknown retries key {key!r}{hint}", at=key, on_key=True)
    kwargs: dict[str, Any] = {}
    for key, val in value.items():
        try:
            if key == "attempts":
                kwargs[key] = _attempts(val)
            elif key == "backoff":
                kwargs[key] = _backoff(val)
            else:
                kwargs[key] = check_range(f"retries.{key}", parse_duration(val))
        except ValueError as exc:
            if isinstance(exc, FieldError):
                raise
            raise FieldError(f"retries {key}: {exc}" if "retries" not in str(exc) else str(exc), at=key) from None
    if "attempts" not in kwargs:
        raise ValueError("retries needs attempts, e.g. {attempts: 3, delay: 30s}")
    return Retries(**kwargs)


def _concurrency(value: Any) -> str:
    text = _string(value)
    if text not in CONCURRENCY:
        raise ValueError(f"{text!r} is not a concurrency policy; use one of {', '.join(CONCURRENCY)}")
    return text


def _cron_mail(value: Any) -> str:
    if isinstance(value, bool):
        # YAML 1.1 reads no/off/false and yes/on/true as booleans
        word = "never" if not value else "always"
        raise ValueError(f"must be one of {', '.join(CRON_MAIL)}, not a boolean (YAML reads "
                         f"{'no, off and false' if not value else 'yes, on and true'} as one); write {word}")
    return _one_of(value, CRON_MAIL, "cron_mail setting")


def _one_of(value: Any, choices: tuple[str, ...], what: str) -> str:
    """A word from ``choices``; a near miss names the word meant."""
    if not isinstance(value, str):
        raise ValueError(f"must be one of {', '.join(choices)}, not {_kind(value)}")
    text = _string(value)
    if text not in choices:
        import difflib

        close = difflib.get_close_matches(text.lower(), choices, n=1, cutoff=0.6) if len(text) <= 40 else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{show(text)} is not a {what}; use one of {', '.join(choices)}{hint}")
    return text


def _output_limit(value: Any) -> int:
    return check_range("output_limit", parse_size(value))


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of strings, not {_kind(value)}")
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            raise FieldError(
                f"tag {show(tag)} is not valid; use letters, digits, '_', '.', ':' or '-'", at=i
            )
    # first occurrence wins, in order; a dict keeps that in linear time (a list
    # search per tag made 40,000 tags take 14 s)
    return tuple(dict.fromkeys(value))


def _user(value: Any) -> str:
    # Never "", 0 or null: the wrapper runs a job without a user as whoever runs
    # the crontab, root for apply --system (the loader refuses null itself).
    text = _string(value)
    if not text:
        raise ValueError("must be a user name, not an empty string; remove the key to run the job as the "
                         "crontab's owner")
    if not USER_RE.match(text):
        raise ValueError(f"{show(text)} is not a valid user name")
    return text


@functools.lru_cache(maxsize=1)
def _zones() -> tuple[str, ...]:
    # available_timezones() walks the tz database (~30 ms): once per process
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


def _timezone(value: Any) -> str:
    text = _string(value)
    if len(text) > MAX_TIMEZONE_CHARS:
        raise ValueError(f"timezone is {len(text)} characters long; time zone names have at most "
                         f"{MAX_TIMEZONE_CHARS}: use an IANA name such as Europe/Berlin or UTC")
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(text)
        return text
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory of the tz database (Europe, Etc) or a name the
        # file system refuses; none of them is a zone
        pass
    region = [z for z in _zones() if z.startswith(text + "/")] if text else []
    if region:
        raise ValueError(f"{show(text)} is a region of the tz database, not a time zone; name a zone in it, "
                         f"e.g. {region[0]!r}")
    # Abbreviations (CEST, PST) are not zones; suggesting EST for CEST would mislead.
    close = _close_zone(text) if "/" in text else None
    hint = f"; did you mean {close!r}?" if close else "; use an IANA name such as Europe/Berlin or UTC"
    raise ValueError(f"{show(text)} is not a known time zone{hint}")


def _close_zone(text: str) -> str | None:
    """The zone a misspelt name most likely meant: its region first, then the zone within it.

    Comparing with the ~150 zones of one region, not all ~600, keeps a file
    of a hundred misspelt zones well under a second.
    """
    import difflib

    region = text.split("/", 1)[0]
    regions = sorted({z.split("/", 1)[0] for z in _zones() if "/" in z})
    if region not in regions:
        close = difflib.get_close_matches(region, regions, n=1)
        if not close:
            return None
        region = close[0]
    zones = [z for z in _zones() if z.startswith(region + "/")]
    close = difflib.get_close_matches(text, zones, n=1)
    return close[0] if close else None


def _catch_up(value: Any) -> int:
    return check_range("catch_up", _positive_duration(value))


def _catch_up_mode(value: Any) -> str:
    return _one_of(value, CATCH_UP_MODES, "catch_up_mode")


def _catch_up_max(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number of runs, not {_kind(value)}")
    return check_range("catch_up_max", value)


def _positive_duration(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError("must be longer than 0s; remove the key to turn it off")
    return seconds


# --- notification sinks: each parses the value of its key under notify, located at that key

def _notify_command(value: Any, key: str) -> str:
    try:
        command = _string(value)
    except ValueError as exc:
        raise FieldError(f"notify {key} {exc}", at=key) from None
    if not command.strip():
        raise FieldError(f"notify {key} is empty", at=key)
    return command


def _url(value: Any, key: str) -> str:
    try:
        text = _string(value)
    except ValueError as exc:
        raise FieldError(f"notify {key} {exc}", at=key) from None
    if not re.match(r"https?://[^\s/]+", text):
        raise FieldError(f"notify {key}: {show(text)} is not an http:// or https:// URL", at=key)
    return text


def _emails(value: Any, key: str) -> tuple[str, ...]:
    emails = value if isinstance(value, list) else [value]
    for e in emails:
        # an address goes to sendmail's command line: the NUL and surrogate rules apply
        if not isinstance(e, str) or not re.match(r"[^@\s]+@[^@\s]+\Z", e) or text_problem(e):
            raise FieldError(f"notify {key}: {show(e)} is not an e-mail address", at=key)
    return tuple(emails)


_URL_SCHEMA = {"type": "string", "pattern": "^https?://"}

#: The sinks a job's ``notify`` can name, in the order messages and docs list
#: them: key -> (parser of its value, JSON Schema of its value).  ``Notify`` has
#: a field of the same name; ``jobctl.runner.notify.SINKS`` sends it.
NOTIFY_SINK_KEYS: dict[str, tuple[Callable[[Any, str], Any], dict[str, Any]]] = {
    "command": (_notify_command, {"type": "string", "minLength": 1}),
    "webhook": (_url, _URL_SCHEMA),
    "email": (_emails, {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
    "ping": (_url, _URL_SCHEMA),
}
NOTIFY_SINKS = tuple(NOTIFY_SINK_KEYS)
_NOTIFY_KEYS = ("when", "after_failures", *NOTIFY_SINKS)


def _notify(value: Any) -> Notify:
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping with when and at least one of {', '.join(NOTIFY_SINKS)}")
    import difflib

    for key in value:
        if key not in _NOTIFY_KEYS:
            close = difflib.get_close_matches(str(key), _NOTIFY_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; use {', '.join(_NOTIFY_KEYS)}"
            if key in (True, "on"):
                hint = "; the key is 'when' (YAML 1.1 reads 'on' as true)"
            raise FieldError(f"unknown notify key {key!r}{hint}", at=key, on_key=True)
    kwargs: dict[str, Any] = {}
    when = value.get("when", ["failure"])
    when = [when] if isinstance(when, str) else when
    if not isinstance(when, list) or not when or any(w not in NOTIFY_WHEN for w in when):
        bad = next((w for w in when if w not in NOTIFY_WHEN), None) if isinstance(when, list) else None
        what = f"{show(bad)} is not an event; " if isinstance(bad, str) else ""
        raise FieldError(f"notify when: {what}use a list of {', '.join(NOTIFY_WHEN)}, e.g. [failure, recovery]",
                         at="when")
    kwargs["when"] = tuple(dict.fromkeys(when))
    if "after_failures" in value:
        n = value["after_failures"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FieldError("notify after_failures: a whole number 1 or more", at="after_failures")
        try:
            kwargs["after_failures"] = check_range("notify.after_failures", n)
        except ValueError as exc:
            raise FieldError(str(exc), at="after_failures") from None
    for key, (parse, _) in NOTIFY_SINK_KEYS.items():
        if key in value:
            kwargs[key] = parse(value[key], key)
    if not any(k in value for k in NOTIFY_SINKS):
        raise ValueError(f"notify needs at least one of {', '.join(NOTIFY_SINKS)}")
    return Notify(**kwargs)


def _history(value: Any) -> History:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping such as {keep: 100, max_age: 30d}")
    for key in value:
        if key not in ("keep", "max_age"):
            raise FieldError(f"unknown history key {key!r}; use keep and max_age", at=key, on_key=True)
    kwargs: dict[str, Any] = {}
    if "keep" in value:
        keep = value["keep"]
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise FieldError("history keep: a whole number of runs, 1 or more", at="keep")
        try:
            kwargs["keep"] = check_range("history.keep", keep)
        except ValueError as exc:
            raise FieldError(str(exc), at="keep") from None
    if "max_age" in value:
        try:
            seconds = _positive_duration(value["max_age"])
        except ValueError as exc:
            raise FieldError(f"history max_age: {exc}", at="max_age") from None
        try:
            kwargs["max_age"] = check_range("history.max_age", seconds)
        except ValueError as exc:
            raise FieldError(str(exc), at="max_age") from None
    return History(**kwargs)


_BASELINE_KEYS = ("min_runs", "runs", "slow", "short")


def _unknown_key(what: str, key: Any, known: tuple[str, ...]) -> FieldError:
    import difflib

    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; use {', '.join(known)}"
    return FieldError(f"unknown {what} key {show(key)}{hint}", at=key, on_key=True)


def _baseline(value: Any) -> Baseline:
    if not isinstance(value, dict):
        raise ValueError("must be a mapping such as {min_runs: 5, slow: 3, short: 0.1}")
    kwargs: dict[str, Any] = {}
    for key, val in value.items():
        if key not in _BASELINE_KEYS:
            raise _unknown_key("baseline", key, _BASELINE_KEYS)
        label = f"baseline {key}"
        if key in ("min_runs", "runs"):
            if isinstance(val, bool) or not isinstance(val, int):
                raise FieldError(f"{label}: a whole number of runs, not {show(val)}", at=key)
        elif isinstance(val, bool) or not isinstance(val, (int, float)):
            raise FieldError(f"{label}: a number (a factor of the usual duration), not {show(val)}", at=key)
        try:
            kwargs[key] = check_range(f"baseline.{key}", val, label)
        except ValueError as exc:
            raise FieldError(str(exc), at=key) from None
    out = Baseline(**kwargs)
    if out.runs < out.min_runs:
        raise FieldError(f"baseline runs {out.runs} is fewer than min_runs {out.min_runs}: nothing would ever be "
                         f"judged; use runs: {out.min_runs} or more",
                         at="runs" if "runs" in value else "min_runs")
    return out


def _lock_group(value: Any) -> str:
    text = _string(value)
    if not NAME_RE.match(text):
        raise ValueError(f"{show(text, 80)} is not a valid lock group name; use 1-63 lowercase letters, digits, "
                         "'_', '.' or '-', starting with a letter or digit")
    return text


_REQUIRE_KEYS = ("job", "status", "within")


def _requires(value: Any) -> tuple[Requirement, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[Requirement] = []
    for i, item in enumerate(items):
        if isinstance(item, str):  # a bare name: that job's latest run succeeded, however long ago
            item = {"job": item}
        if not isinstance(item, dict):
            raise FieldError(f"requires: each item is a mapping such as {{job: extract, status: succeeded, "
                             f"within: 2h}} or a job name, not {_kind(item)}", at=i if isinstance(value, list)
                             else None)
        at = i if isinstance(value, list) else None
        for key in item:
            if key not in _REQUIRE_KEYS:
                raise FieldError(f"requires: unknown key {show(key)}; use {', '.join(_REQUIRE_KEYS)}", at=at)
        if "job" not in item:
            raise FieldError("requires: each item names a job, e.g. {job: extract, status: succeeded, within: 2h}",
                             at=at)
        try:
            job = _name(item["job"])
            status = _one_of(item.get("status", "succeeded"), REQUIRE_STATUSES, "required status")
            within = item.get("within")
            if within is not None:
                try:
                    within = check_range("requires.within", _positive_duration(within), "requires within")
                except ValueError as exc:
                    message = str(exc)
                    raise ValueError(message if message.startswith("requires") else f"requires within {message}") \
                        from None
        except ValueError as exc:
            message = str(exc)
            raise FieldError(message if message.startswith("requires") else f"requires: {message}", at=at) from None
        out.append(Requirement(job, status, within))
    if not out:
        raise ValueError("requires is an empty list; name at least one job, or remove the key")
    return tuple(dict.fromkeys(out))  # each requirement once


_PARAM_KEYS = ("required", "default", "pattern", "description")


def _params(value: Any) -> dict[str, Param]:
    from jobctl import params as params_mod

    if not isinstance(value, dict):
        raise ValueError("must be a mapping of NAME: {required, default, pattern, description}")
    if len(value) > params_mod.MAX_PARAMS:
        raise ValueError(f"declares {len(value)} parameters; at most {params_mod.MAX_PARAMS}")
    out: dict[str, Param] = {}
    for name, decl in value.items():
        if not isinstance(name, str) or not params_mod.valid_name(name):
            raise FieldError(f"params: {show(name)} is not a valid parameter name; use 1-63 lowercase letters, "
                             "digits or '_', starting with a letter (the job gets it as JOBCTL_PARAM_<NAME>)",
                             at=name, on_key=True)
        decl = {} if decl is None else decl
        if not isinstance(decl, dict):
            raise FieldError(f"params {name}: must be a mapping such as {{required: true, pattern: '[a-z]+'}}, not "
                             f"{_kind(decl)}", at=name)
        for key in decl:
            if key not in _PARAM_KEYS:
                raise FieldError(f"params {name}: unknown key {show(key)}; use {', '.join(_PARAM_KEYS)}", at=name)
        kwargs: dict[str, Any] = {}
        try:
            if "required" in decl:
                kwargs["required"] = _bool(decl["required"])
            for key in ("default", "pattern", "description"):
                if key in decl and decl[key] is not None:
                    item = decl[key]
                    if isinstance(item, (int, float)) and not isinstance(item, bool) and key == "default":
                        item = str(item)
                    kwargs[key] = _string(item)
        except ValueError as exc:
            raise FieldError(f"params {name}: {exc}", at=name) from None
        param = Param(**kwargs)
        if param.pattern is not None:
            try:
                re.compile(param.pattern)
            except re.error as exc:
                raise FieldError(f"params {name}: pattern {show(param.pattern)} is not a regular expression: {exc}",
                                 at=name) from None
        if param.default is not None:
            problem = params_mod.value_problem(param.default)
            if problem is None and param.pattern is not None and re.fullmatch(param.pattern, param.default) is None:
                problem = f"{param.default!r} does not match its pattern {param.pattern!r}"
            if problem is not None:
                raise FieldError(f"params {name}: default {problem}", at=name)
            if param.required:
                raise FieldError(f"params {name}: required with a default is never missing; remove one of them",
                                 at=name)
        out[name] = param
    return out


def _max_queued(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number of requests, not {_kind(value)}")
    return check_range("max_queued", value)


def _job_names(key: str) -> Callable[[Any], tuple[str, ...]]:
    """then and on_failure: a job name or a list of them, in order, each once."""

    def parse(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise ValueError(f"{key} is an empty list; name at least one job, or remove the key")
        for i, item in enumerate(items):
            try:
                _name(item)
            except ValueError as exc:
                raise FieldError(f"{key}: {exc}", at=i if isinstance(value, list) else None) from None
        return tuple(dict.fromkeys(items))

    return parse


@dataclass(frozen=True)
class Field:
    """One job-file key."""

    key: str
    parse: Callable[[Any], Any]
    #: what the loader may build for it: scalars always; "list"/"map" allow one
    #: level of scalars (never deeper, so aliases are never expanded); "records" a
    #: list of scalars or flat mappings of scalars (requires), two levels at most.
    shapes: tuple[str, ...]
    schema: dict[str, Any]
    doc: str
    required: bool = False
    #: list items / map values YAML reads as numbers keep their text, so
    #: ``[chmod, 0644, f]`` runs chmod 0644, not chmod 420.
    numbers_as_written: bool = False
    #: a "map" whose values may also be lists of plain values (notify: when: [...])
    list_values: bool = False
    #: a "map" whose values may also be flat mappings of plain values (params: {region: {required: true}})
    map_values: bool = False


def _bounds(key: str) -> dict[str, Any]:
    """JSON Schema minimum/maximum of a key, from RANGES."""
    r = RANGE[key]
    return {"minimum": r.minimum, "maximum": r.maximum}


def _duration_schema(key: str) -> dict[str, Any]:
    # the range binds whole seconds; "25d" is checked by validate only (a
    # pattern cannot compare numbers)
    return {
        "oneOf": [
            {"type": "integer", **_bounds(key)},
            {"type": "string", "pattern": DURATION_PATTERN, "minLength": 2, "maxLength": MAX_NUMBER_TEXT},
        ]
    }


FIELDS: tuple[Field, ...] = (
    Field("name", _name, ("scalar",), {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"},
          "Job name, unique across the directory; defaults to the file's stem when the file holds one job."),
    Field("description", _description, ("scalar",), {"type": "string"}, "Free text shown by status."),
    Field("schedule", _schedule, ("scalar",), {"type": "string", "minLength": 1, "maxLength": MAX_SCHEDULE_CHARS},
          "5-field cron expression, @hourly/@daily/@weekly/@monthly/@yearly/@reboot, or @every <duration>.",
          required=True),
    Field("command", _command, ("scalar", "list"),
          {"oneOf": [{"type": "string", "minLength": 1},
                     {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}}]},
          "A string run by `shell -c`, or a list of strings run as argv without a shell.", required=True,
          numbers_as_written=True),
    Field("shell", _abs_path, ("scalar",), {"type": "string", "pattern": "^/"},
          "Absolute path of the shell that runs a string command (default /bin/sh)."),
    Field("working_dir", _abs_path, ("scalar",), {"type": "string", "pattern": "^/"},
          "Absolute working directory (default: the job user's home)."),
    Field("env", _env, ("map",),
          {"type": "object", "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
           "additionalProperties": {"type": ["string", "number"]}},
          "Environment variables added to the clean run environment.", numbers_as_written=True),
    Field("timeout", _timeout, ("scalar",), _duration_schema("timeout"),
          "Kill the job's process group after this long (SIGTERM, then SIGKILL after kill_grace)."),
    Field("kill_grace", _kill_grace, ("scalar",), _duration_schema("kill_grace"),
          "Time between SIGTERM and SIGKILL (default 10s)."),
    Field("retries", _retries, ("scalar", "map"),
          {"oneOf": [{"type": "integer", **_bounds("retries.attempts")},
                     {"type": "object", "additionalProperties": False, "required": ["attempts"],
                      "properties": {"attempts": {"type": "integer", **_bounds("retries.attempts")},
                                     "delay": _duration_schema("retries.delay"),
                                     "max_delay": _duration_schema("retries.max_delay"),
                                     "backoff": {"type": "number", **_bounds("retries.backoff")}}}]},
          "More attempts after a failure: a count, or {attempts, delay, backoff, max_delay}."),
    Field("concurrency", _concurrency, ("scalar",), {"enum": list(CONCURRENCY)},
          "When a run starts while the previous one runs: forbid (default), allow, replace, wait."),
    Field("output_limit", _output_limit, ("scalar",),
          {"oneOf": [{"type": "integer", **_bounds("output_limit")},
                     {"type": "string", "pattern": SIZE_PATTERN, "maxLength": MAX_NUMBER_TEXT}]},
          "Output kept per run, head and tail (default 1MiB)."),
    Field("enabled", _bool, ("scalar",), {"type": "boolean"},
          "A disabled job is validated but not installed (default true)."),
    Field("tags", _tags, ("list",),
          {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"}},
          "Labels to filter read commands by."),
    Field("user", _user, ("scalar",), {"type": "string"},
          "User to run as; only for the system crontab target (apply --system)."),
)

FIELDS += (
    Field("timezone", _timezone, ("scalar",), {"type": "string", "minLength": 1, "maxLength": MAX_TIMEZONE_CHARS},
          "IANA time zone the schedule is read in (e.g. Europe/Berlin); DST as cron(8) handles it."),
    Field("jitter", _jitter, ("scalar",), _duration_schema("jitter"),
          "Random delay in [0, jitter) before each scheduled run starts."),
    Field("catch_up", _catch_up, ("scalar",), _duration_schema("catch_up"),
          "After downtime, run once if the last scheduled run was missed within this window."),
    Field("catch_up_mode", _catch_up_mode, ("scalar",), {"enum": list(CATCH_UP_MODES)},
          "latest (default): one catch-up run for the latest missed schedule; each: one run for every missed "
          "schedule in the catch_up window, oldest first, one after another, each with its own scheduled time."),
    Field("catch_up_max", _catch_up_max, ("scalar",), {"type": "integer", **_bounds("catch_up_max")},
          "With catch_up_mode each: at most this many missed runs are made up, the latest ones (default 100)."),
    Field("notify", _notify, ("map",),
          {"type": "object", "additionalProperties": False,
           "properties": {"when": {"oneOf": [{"enum": list(NOTIFY_WHEN)},
                                             {"type": "array", "minItems": 1, "items": {"enum": list(NOTIFY_WHEN)}}]},
                          "after_failures": {"type": "integer", **_bounds("notify.after_failures")},
                          # the order the schema has listed them in since ping came (a schema
                          # committed next to the job files must not change on upgrade)
                          **{key: NOTIFY_SINK_KEYS[key][1]
                             for key in sorted(NOTIFY_SINKS, key=lambda k: k == "email")}},
           "anyOf": [{"required": [k]} for k in NOTIFY_SINKS]},
          f"Alerts: when [failure, recovery, success], after_failures N, sinks {'/'.join(NOTIFY_SINKS)}.",
          list_values=True),
    Field("history", _history, ("map",),
          {"type": "object", "additionalProperties": False,
           "properties": {"keep": {"type": "integer", **_bounds("history.keep")},
                          "max_age": _duration_schema("history.max_age")}},
          "Run-log retention: {keep: runs, max_age: duration} (default 200 runs, 90d)."),
    Field("cron_mail", _cron_mail, ("scalar",), {"enum": list(CRON_MAIL)},
          "What a run started by cron prints, for cron to mail (MAILTO): failure (default: a summary line and "
          "the output's tail when a run fails, nothing on success), always, or never."),
)

_NAME_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"}
_NAMES_SCHEMA = {"oneOf": [_NAME_SCHEMA, {"type": "array", "minItems": 1, "items": _NAME_SCHEMA}]}

FIELDS += (
    Field("baseline", _baseline, ("map",),
          {"type": "object", "additionalProperties": False,
           "properties": {"min_runs": {"type": "integer", **_bounds("baseline.min_runs")},
                          "runs": {"type": "integer", **_bounds("baseline.runs")},
                          "slow": {"type": "number", **_bounds("baseline.slow")},
                          "short": {"type": "number", **_bounds("baseline.short")}}},
          "The usual duration: median and MAD of the latest runs (default 20) successful runs, judged from "
          "min_runs (default 5) on; a run is slow beyond slow (default 3) times the median, short below short "
          "(default 0.1) times it (notify when: slow, short, overdue)."),
    Field("lock_group", _lock_group, ("scalar",), _NAME_SCHEMA,
          "Jobs sharing a lock group never run at the same time; each job's concurrency policy (forbid, wait, "
          "replace) applies to the group."),
    Field("requires", _requires, ("scalar", "records"),
          {"oneOf": [_NAME_SCHEMA,
                     {"type": "array", "minItems": 1,
                      "items": {"oneOf": [_NAME_SCHEMA,
                                          {"type": "object", "additionalProperties": False, "required": ["job"],
                                           "properties": {"job": _NAME_SCHEMA,
                                                          "status": {"enum": list(REQUIRE_STATUSES)},
                                                          "within": _duration_schema("requires.within")}}]}}]},
          "Run only when each named job's latest finished run ended in status (default succeeded) within "
          "(default: any time); otherwise the run is recorded skipped, naming the requirement."),
    Field("then", _job_names("then"), ("scalar", "list"), _NAMES_SCHEMA,
          "Jobs started, in order, when a run of this job succeeds (trigger chain, with JOBCTL_PARENT_*)."),
    Field("on_failure", _job_names("on_failure"), ("scalar", "list"), _NAMES_SCHEMA,
          "Jobs started, in order, when a run of this job fails, times out or is killed (trigger chain)."),
    Field("params", _params, ("map",),
          {"type": "object", "maxProperties": 100, "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,62}$"},
           "additionalProperties": {"oneOf": [{"type": "null"}, {
               "type": "object", "additionalProperties": False,
               "properties": {"required": {"type": "boolean"}, "default": {"type": ["string", "number"]},
                              "pattern": {"type": "string"}, "description": {"type": "string"}}}]}},
          "Parameters a run accepts (jobctl run/submit -p NAME=VALUE), each {required, default, pattern, "
          "description}; the job gets JOBCTL_PARAM_<NAME>. A job without params accepts none.",
          map_values=True, numbers_as_written=True),
    Field("max_queued", _max_queued, ("scalar",), {"type": "integer", **_bounds("max_queued")},
          "At most this many requests of the job wait at once (jobctl submit); one more is refused (default 100)."),
)

FIELDS_BY_KEY = {f.key: f for f in FIELDS}
KEYS = tuple(FIELDS_BY_KEY)


def build(values: Mapping[str, Any], source: str) -> JobSpec:
    """A JobSpec from already-parsed values (keys as in FIELDS)."""
    kwargs = dict(values)
    kwargs.pop("name", None)
    return JobSpec(name=values["name"], source=source, **kwargs)
