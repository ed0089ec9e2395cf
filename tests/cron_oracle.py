"""Independent oracle: a Python port of Debian cron 3.0pl1-162 (bookworm).

Ported from Debian's own source package ``cron_3.0pl1-162`` (``cron_3.0pl1.orig.tar.gz`` with every patch in
``debian/patches/series`` applied, in order) -- *not* from jobctl.  File/function map:

* ``entry.c``  ``load_entry``, ``get_list``, ``get_range``, ``get_number``, ``set_element``
  -> :func:`_load_entry`, :func:`_get_list`, :func:`_get_range`, :func:`_get_number`, :func:`_set_element`
  (the patched versions: ``fixes/crontab-entry-parsing-fixes.patch`` rejects a step on a single number,
  ``fixes/Entry-time-range-check.patch`` range-checks both ends of every range, ``fixes/Entry-symbolic-name-fixes``
  gives the ``"Sun"`` twin at index 7 of ``DowNames``).
* ``misc.c``   ``get_char``, ``unget_char``, ``get_string``, ``skip_comments`` -> :class:`_Stream`,
  :func:`_get_string`, :func:`_skip_comments`; ``get_gmtoff`` -> ``ZoneInfo.utcoffset``.
* ``env.c``    ``load_env`` (the v4.1 parser backported by ``fixes/Backport-crontab-envparser-from-v4.1.patch``)
  -> :func:`_load_env`.
* ``user.c``   ``load_user`` (whole-file loop, ``fixes/Abort-processing-of-crontabs-with-errors.patch``,
  ``fixes/Enforce-maximum-crontab-line-count.patch``, missing-newline check) -> :func:`parse_crontab`.
* ``crontab.c`` ``replace_cmd``'s syntax check (what ``crontab FILE`` / ``crontab -n FILE`` run) -- same outcome
  as ``load_user`` for a user crontab.
* ``cron.c``   ``find_jobs`` -> :func:`matches` / :func:`is_wild` / :func:`_find_jobs`; ``main``'s loop with
  ``timeRunning``/``virtualTime``/``timeDiff``/``wakeupKind`` (``features/Better-timeskip-handling.patch``),
  ``set_time`` (with ``fixes/Check_for_timezone_changes.patch``: GMToff recomputed on every call) and
  ``cron_sleep`` -> :func:`iter_simulate` / :func:`simulate`.
* ``job.c``    ``job_add`` (dedup, append to tail), ``job_runqueue`` (run head..tail) -> :class:`_Sim`.
* ``cron.h``   ``FIRST_*``/``LAST_*``, ``MAX_COMMAND``/``MAX_TEMPSTR``/``MAX_ENVSTR``/``MAX_TAB_LINES``/
  ``NHEADER_LINES``, ``Skip_Blanks``/``Skip_Nonblanks``, flags ``DOM_STAR DOW_STAR WHEN_REBOOT MIN_STAR HR_STAR``,
  ``MonthNames``/``DowNames``.

Byte-level fidelity notes (all checked against the C code and, where marked, against bookworm's real
``crontab -n``):

* Input is scanned as bytes (``str`` is encoded UTF-8 with ``surrogateescape``).  "Blank" is only space and tab
  (``Skip_Blanks``); a field ends at space, tab, newline or EOF (``Skip_Nonblanks``).  ``isalnum``/``isspace`` are
  taken as ASCII-only (cron runs ``setlocale(LC_ALL, "")``; glibc's UTF-8 and C locales classify no byte >= 0x80).
* ``get_list``/``get_range``/``get_number`` are declared ``static char``: their return value is truncated to a
  (signed, on amd64) ``char``, so a 0xFF byte right after a number, after ``*`` or at the start of the next field
  reads as ``EOF`` and rejects the line [crontab -n].  :func:`_as_char` models that.
* ``get_string`` stops at any terminator *or at a NUL byte* (``strchr(terms, 0)`` is non-NULL).
* Numbers go through ``atoi`` = ``(int)strtol(...)``: clamped to LONG_MAX then truncated to 32 bits, so
  ``4294967296`` is minute 0 [crontab -n accepts it], ``*/4294967296`` is step 0 (rejected) and
  ``99999999999999999999`` is -1 (rejected).  Range stepping ``i += num3`` wraps at 32 bits, so
  ``1-59/2147483647`` is rejected while ``0-59/2147483647`` is accepted [crontab -n].
* Trailing junk after an element that is not alphanumeric (``5;x``, ``*5``, ``1-2-3``, ``5.5``) is silently
  skipped by ``Skip_Nonblanks`` [crontab -n]; alphanumeric junk (``5x``, ``1st``) is part of the number token and
  rejects the line.
* The ``@`` specials are compared with ``strcmp`` (case-sensitive: ``@HOURLY`` is "bad time specifier"
  [crontab -n]).  Their ``bit_nset(..., 0, LAST-FIRST+1)`` calls set one bit *past* each field (hour bit 24,
  dom bit 31 = "day 32", month bit 12 = "month 13", dow bit 8); those bits are never tested by ``find_jobs``
  (and hour bit 24 lands in dom's first byte, which @hourly sets anyway), so :class:`Entry` holds only the
  in-range values.

Simplifications (documented in detail on :func:`iter_simulate`): no ``@reboot`` run (the simulated daemon is
already running), ``job_runqueue``'s ``sleep(10)`` is a parameter that defaults to 0, getpwnam is a callback.
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

__all__ = [
    "Reject",
    "NotAnEntry",
    "Entry",
    "parse_line",
    "parse_crontab",
    "matches",
    "is_wild",
    "simulate",
    "iter_simulate",
    "next_runs",
    "system_user_exists",
    "FLAG_NAMES",
]

# ---------------------------------------------------------------------------------------------------------------
# cron.h constants
# ---------------------------------------------------------------------------------------------------------------

EOF = -1
OK, ERR, FALSE, TRUE = 0, -1, 0, 1

FIRST_MINUTE, LAST_MINUTE = 0, 59
FIRST_HOUR, LAST_HOUR = 0, 23
FIRST_DOM, LAST_DOM = 1, 31
FIRST_MONTH, LAST_MONTH = 1, 12
FIRST_DOW, LAST_DOW = 0, 7
MINUTE_COUNT = LAST_MINUTE - FIRST_MINUTE + 1
SECONDS_PER_MINUTE = 60

MAX_COMMAND = 1000
MAX_TEMPSTR = 1000
MAX_ENVSTR = MAX_TEMPSTR
MAX_TAB_LINES = 10000
NHEADER_LINES = 3  # crontab(1) prepends a 3-line "DO NOT EDIT" header to every installed user crontab

FLAG_NAMES = ("MIN_STAR", "HR_STAR", "DOM_STAR", "DOW_STAR", "WHEN_REBOOT")

# cron.h (MAIN_PROGRAM): char *MonthNames[], *DowNames[] -- note "Sun" twice (index 0 and 7)
MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
DOW_NAMES = (b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")

# entry.c: static char *ecodes[]
ECODES = {
    "e_none": "no error",
    "e_minute": "bad minute",
    "e_hour": "bad hour",
    "e_dom": "bad day-of-month",
    "e_month": "bad month",
    "e_dow": "bad day-of-week",
    "e_cmd": "bad command",
    "e_timespec": "bad time specifier",
    "e_username": "bad username",
    "e_cmd_len": "command too long",
}

_SP, _TAB, _NL = 0x20, 0x09, 0x0A


class Reject(Exception):
    """cron would reject this line (load_entry returns NULL with an ecode) or ignore this whole file.

    ``reason`` is cron's own text (``ecodes[]`` of entry.c, or the load_user/crontab(1) message); ``line`` is the
    1-based line of the offending entry in the text given to :func:`parse_crontab` (``None`` from
    :func:`parse_line`).
    """

    def __init__(self, reason: str, line: int | None = None):
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")


class NotAnEntry(ValueError):
    """:func:`parse_line` was given something that is not exactly one crontab entry line (blank, comment, or
    bytes that cron would read as a further line)."""


@dataclass(frozen=True)
class Entry:
    """What cron's ``struct _entry`` holds after ``load_entry`` (values, not bit offsets: dom/month are 1-based).

    ``dow`` contains 0..7 exactly as cron stores it after its "make sundays equivalent" step (0 and 7 always
    together).  ``flags`` is a subset of :data:`FLAG_NAMES`.  ``user`` is the user column (system crontab /
    cron.d format) or ``None``.  ``command`` is the raw remainder of the line (no '%' processing; in the system
    format it keeps the blanks after the first one following the user name, as cron does).
    """

    minute: frozenset[int]
    hour: frozenset[int]
    dom: frozenset[int]
    month: frozenset[int]
    dow: frozenset[int]
    flags: frozenset[str]
    user: str | None
    command: str


# ---------------------------------------------------------------------------------------------------------------
# misc.c: the FILE* with get_char / unget_char (LineNumber bookkeeping), get_string, skip_comments
# ---------------------------------------------------------------------------------------------------------------


class _Stream:
    """A FILE* over bytes; ``line`` is cron's global LineNumber (incremented on every '\\n' read)."""

    __slots__ = ("data", "pos", "line")

    def __init__(self, data: bytes, line: int = 1):
        self.data = data
        self.pos = 0
        self.line = line

    def get_char(self) -> int:  # misc.c get_char()
        if self.pos >= len(self.data):
            return EOF
        ch = self.data[self.pos]
        self.pos += 1
        if ch == _NL:
            self.line += 1
        return ch

    def unget_char(self, ch: int) -> None:  # misc.c unget_char(); ungetc(EOF) is a no-op
        if ch == EOF:
            return
        self.pos -= 1
        if ch == _NL:
            self.line -= 1


def _as_char(ch: int) -> int:
    """``(char)ch`` for the ``static char`` parsers of entry.c: on a signed-char ABI byte 0xFF becomes -1 == EOF.
    (Other bytes >= 0x80 turn negative too, but they only ever meet comparisons with ASCII and ungetc, which
    behave as for the unsigned value.)"""
    return EOF if ch == 0xFF else ch


def _isalnum(ch: int) -> bool:
    return 0x30 <= ch <= 0x39 or 0x41 <= ch <= 0x5A or 0x61 <= ch <= 0x7A


def _isdigit(ch: int) -> bool:
    return 0x30 <= ch <= 0x39


def _isspace(ch: int) -> bool:  # C isspace: ' ' \t \n \v \f \r
    return ch == 0x20 or 0x09 <= ch <= 0x0D


def _get_string(f: _Stream, size: int, terms: bytes) -> tuple[int, bytes]:
    """misc.c get_string(): read until a char in ``terms`` (or NUL: strchr(terms, 0) matches the terminator) or
    EOF; keep at most size-1 chars; return (terminating char, string)."""
    out = bytearray()
    while True:
        ch = f.get_char()
        if ch == EOF or ch == 0 or ch in terms:
            break
        if size > 1:
            out.append(ch)
            size -= 1
    return ch, bytes(out)


def _skip_comments(f: _Stream) -> None:
    """misc.c skip_comments(): skip lines that are blank or whose first non-blank char is '#'."""
    ch = f.get_char()
    while ch != EOF:
        while ch in (_SP, _TAB):
            ch = f.get_char()
        if ch == EOF:
            break
        if ch != _NL and ch != ord("#"):
            break
        while ch != _NL and ch != EOF:
            ch = f.get_char()
        ch = f.get_char()
    if ch != EOF:
        f.unget_char(ch)


# ---------------------------------------------------------------------------------------------------------------
# entry.c: get_number / set_element / get_range / get_list / load_entry
# ---------------------------------------------------------------------------------------------------------------


def _wrap_int(v: int) -> int:
    """Truncate to a 32-bit two's-complement C int."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def _atoi(digits: bytes) -> int:
    """glibc atoi(): (int)strtol(s, NULL, 10); strtol saturates at LONG_MAX (64-bit), then the cast truncates."""
    v = min(int(digits), (1 << 63) - 1)
    return _wrap_int(v)


def _get_number(low: int, names: tuple[bytes, ...] | None, ch: int, f: _Stream) -> tuple[int, int]:
    """entry.c get_number(): collect an alphanumeric token; a name (strcasecmp, whole token) maps to index+low,
    an all-digit token to atoi(); anything else (or an empty / >= MAX_TEMPSTR-1 long token) is EOF.
    Returns (next char as (char), number)."""
    temp = bytearray()
    all_digits = True
    while ch != EOF and _isalnum(ch):
        if len(temp) + 1 >= MAX_TEMPSTR:
            return EOF, 0
        temp.append(ch)
        if not _isdigit(ch):
            all_digits = False
        ch = f.get_char()
    if not temp:
        return EOF, 0
    if names is not None:
        low_temp = bytes(temp).lower()
        for i, name in enumerate(names):
            if name.lower() == low_temp:
                return _as_char(ch), i + low
    if all_digits:
        return _as_char(ch), _atoi(bytes(temp))
    return EOF, 0


def _set_element(bits: set[int], low: int, high: int, number: int) -> bool:
    """entry.c set_element(): False (EOF) if out of [low, high]."""
    if number < low or number > high:
        return False
    bits.add(number)
    return True


def _get_range(bits: set[int], low: int, high: int, names: tuple[bytes, ...] | None, ch: int, f: _Stream) -> int:
    """entry.c get_range(): ``*`` | number | number-number, optionally /step (not after a single number)."""
    if ch == ord("*"):
        # '*' means "first-last" but can still be modified by /step.  Nothing checks what follows the '*':
        # "*5" returns '5' to get_list, whose Skip_Nonblanks throws it away.
        num1, num2 = low, high
        ch = f.get_char()
        if ch == EOF:
            return EOF
    else:
        ch, num1 = _get_number(low, names, ch, f)
        if ch == EOF:
            return EOF
        if ch != ord("-"):
            # single number; Debian's crontab-entry-parsing-fixes: "1/20" (step without range) is an error
            if ch == ord("/"):
                return EOF
            if not _set_element(bits, low, high, num1):
                return EOF
            return ch
        ch = f.get_char()  # eat the dash
        if ch == EOF:
            return EOF
        ch, num2 = _get_number(low, names, ch, f)
        if ch == EOF:
            return EOF

    if ch == ord("/"):
        ch = f.get_char()  # eat the slash
        if ch == EOF:
            return EOF
        ch, num3 = _get_number(0, None, ch, f)  # no names for a step
        if ch == EOF or num3 <= 0:
            return EOF
    else:
        num3 = 1

    # Entry-time-range-check.patch: both ends must be in range (a backwards range like 5-1 passes and sets nothing)
    if num1 < low or num1 > high or num2 < low or num2 > high:
        return EOF

    i = num1
    while i <= num2:  # for (i = num1; i <= num2; i += num3) -- int arithmetic, wraps
        if not _set_element(bits, low, high, i):
            return EOF
        i = _wrap_int(i + num3)
    return _as_char(ch)


def _get_list(bits: set[int], low: int, high: int, names: tuple[bytes, ...] | None, ch: int, f: _Stream) -> int:
    """entry.c get_list(): range {',' range}, then Skip_Nonblanks + Skip_Blanks."""
    bits.clear()  # bit_nclear(bits, 0, high-low+1)
    while True:
        ch = _get_range(bits, low, high, names, ch, f)
        if ch == ord(","):
            ch = f.get_char()
        else:
            break
    while ch not in (_TAB, _SP, _NL, EOF):  # Skip_Nonblanks
        ch = f.get_char()
    while ch in (_TAB, _SP):  # Skip_Blanks
        ch = f.get_char()
    return _as_char(ch)


def _default_user_exists(name: str) -> bool:
    # Stand-in for getpwnam(): any non-empty name a passwd file could hold.  Pass user_exists=system_user_exists
    # to ask this machine's passwd database like cron does.
    return name != "" and "\n" not in name and ":" not in name


def system_user_exists(name: str) -> bool:
    """getpwnam(name) != NULL on this machine."""
    import pwd

    try:
        pwd.getpwnam(name)
    except (KeyError, ValueError):
        return False
    return True


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _load_entry(f: _Stream, system: bool, user_exists: Callable[[str], bool]) -> Entry | None:
    """entry.c load_entry(): None at EOF (after skipping comments/blank lines); raises Reject(ecode text).

    ``system`` is ``pw == NULL`` in the C code: /etc/crontab and /etc/cron.d files, which have a user column.
    """
    _skip_comments(f)
    ch = f.get_char()
    if ch == EOF:
        return None
    start_line = f.line

    def fail(code: str) -> Reject:
        return Reject(ECODES[code], start_line)

    minute: set[int] = set()
    hour: set[int] = set()
    dom: set[int] = set()
    month: set[int] = set()
    dow: set[int] = set()
    flags: set[str] = set()

    if ch == ord("@"):
        ch, word = _get_string(f, MAX_COMMAND, b" \t\n")
        if word == b"reboot":
            flags.add("WHEN_REBOOT")  # no time bits at all: find_jobs never matches it
        elif word in (b"yearly", b"annually"):
            minute.add(0)
            hour.add(0)
            dom.add(1)  # bit_set(e->dom, 0)
            month.add(1)  # bit_set(e->month, 0)
            dow.update(range(FIRST_DOW, LAST_DOW + 1))  # bit_nset(e->dow, 0, 8)
            flags.add("DOW_STAR")
        elif word == b"monthly":
            minute.add(0)
            hour.add(0)
            dom.add(1)
            month.update(range(FIRST_MONTH, LAST_MONTH + 1))
            dow.update(range(FIRST_DOW, LAST_DOW + 1))
            flags.add("DOW_STAR")
        elif word == b"weekly":
            minute.add(0)
            hour.add(0)
            dom.update(range(FIRST_DOM, LAST_DOM + 1))
            flags.add("DOM_STAR")
            month.update(range(FIRST_MONTH, LAST_MONTH + 1))
            dow.add(0)  # bit_nset(e->dow, 0, 0): Sunday only (7 is added by the sunday fold below)
        elif word in (b"daily", b"midnight"):
            minute.add(0)
            hour.add(0)
            dom.update(range(FIRST_DOM, LAST_DOM + 1))
            month.update(range(FIRST_MONTH, LAST_MONTH + 1))
            dow.update(range(FIRST_DOW, LAST_DOW + 1))
            # NB: no DOM_STAR/DOW_STAR -- harmless, both sets are full
        elif word == b"hourly":
            minute.add(0)
            hour.update(range(FIRST_HOUR, LAST_HOUR + 1))
            dom.update(range(FIRST_DOM, LAST_DOM + 1))
            month.update(range(FIRST_MONTH, LAST_MONTH + 1))
            dow.update(range(FIRST_DOW, LAST_DOW + 1))
            flags.add("HR_STAR")  # makes @hourly a "wildcard" job for the DST logic
        else:
            raise fail("e_timespec")
    else:
        # each *_STAR flag is set iff the field's FIRST character is '*'
        if ch == ord("*"):
            flags.add("MIN_STAR")
        ch = _get_list(minute, FIRST_MINUTE, LAST_MINUTE, None, ch, f)
        if ch == EOF:
            raise fail("e_minute")
        if ch == ord("*"):
            flags.add("HR_STAR")
        ch = _get_list(hour, FIRST_HOUR, LAST_HOUR, None, ch, f)
        if ch == EOF:
            raise fail("e_hour")
        if ch == ord("*"):
            flags.add("DOM_STAR")
        ch = _get_list(dom, FIRST_DOM, LAST_DOM, None, ch, f)
        if ch == EOF:
            raise fail("e_dom")
        # (no MONTH_STAR flag exists)
        ch = _get_list(month, FIRST_MONTH, LAST_MONTH, MONTH_NAMES, ch, f)
        if ch == EOF:
            raise fail("e_month")
        if ch == ord("*"):
            flags.add("DOW_STAR")
        ch = _get_list(dow, FIRST_DOW, LAST_DOW, DOW_NAMES, ch, f)
        if ch == EOF:
            raise fail("e_dow")

    # "make sundays equivilent"
    if 0 in dow or 7 in dow:
        dow.update((0, 7))

    while ch in (_TAB, _SP):  # Skip_Blanks (the @special's terminator may be followed by more blanks)
        ch = f.get_char()
    f.unget_char(ch)

    user: str | None = None
    if system:
        # user column: get_string(username, MAX_COMMAND, file, " \t") -- '\n' is NOT a terminator
        ch, username = _get_string(f, MAX_COMMAND, b" \t")
        if ch == EOF:
            raise fail("e_cmd")
        user = _decode(username)
        if not user_exists(user):
            raise fail("e_username")
    elif ch == ord("*"):
        # a user crontab line whose command starts with '*' (typically a 6th time field) is rejected
        raise fail("e_cmd")

    ch, cmd = _get_string(f, MAX_COMMAND, b"\n")
    if len(cmd) == MAX_COMMAND - 1:  # strnlen(cmd, MAX_COMMAND) == MAX_COMMAND - 1: assume truncated
        raise fail("e_cmd_len")
    if ch == EOF:  # no newline after the command
        raise fail("e_cmd")

    return Entry(
        minute=frozenset(minute),
        hour=frozenset(hour),
        dom=frozenset(dom),
        month=frozenset(month),
        dow=frozenset(dow),
        flags=frozenset(flags),
        user=user,
        command=_decode(cmd),
    )


# ---------------------------------------------------------------------------------------------------------------
# env.c: load_env (Debian's backport of the 4.1 parser)
# ---------------------------------------------------------------------------------------------------------------

_NAMEI, _NAME, _EQ1, _EQ2, _VALUEI, _VALUE, _FINI, _ERROR = range(8)


def _load_env(f: _Stream) -> tuple[int, bytes]:
    """env.c load_env(): ERR at EOF (second item: what was read), FALSE if not an env setting (stream rewound),
    TRUE if it was one (second item: "NAME=value")."""
    filepos, fileline = f.pos, f.line
    _skip_comments(f)
    ch, envstr = _get_string(f, MAX_ENVSTR - 1, b"\n")
    if ch == EOF:
        return ERR, envstr

    name = bytearray()
    val = bytearray()
    dst = name
    state = _NAMEI
    quotechar = 0
    i, n = 0, len(envstr)
    while state != _ERROR and i < n:
        if state in (_NAMEI, _VALUEI):
            if envstr[i] in (0x27, 0x22):  # ' or "
                quotechar = envstr[i]
                i += 1
            state += 1
            if i >= n:
                # C falls through with *c == '\0', copies it and steps past the terminator into stale buffer
                # bytes (undefined contents); we treat the rest of the buffer as empty.
                break
        if state in (_NAME, _VALUE):
            c = envstr[i]
            if quotechar:
                if c == quotechar:
                    state += 1
                    i += 1
                    continue
                if state == _NAME and c == ord("="):
                    state = _ERROR
                    continue
            elif state == _NAME:
                if _isspace(c):
                    i += 1
                    state += 1
                    continue
                if c == ord("="):
                    state += 1
                    continue
            dst.append(c)
            i += 1
        elif state == _EQ1:
            c = envstr[i]
            if c == ord("="):
                state += 1
                dst = val
                quotechar = 0
            elif not _isspace(c):
                state = _ERROR
            i += 1
        elif state in (_EQ2, _FINI):
            if _isspace(envstr[i]):
                i += 1
            else:
                state += 1

    if state != _FINI and not (state == _VALUE and not quotechar):
        f.pos, f.line = filepos, fileline  # fseek(f, filepos, 0); Set_LineNum(fileline)
        return FALSE, envstr
    if state == _VALUE:
        while val and _isspace(val[-1]):
            val.pop()
    # strdtb(val) then strip one pair of matching quotes
    while val and _isspace(val[-1]):
        val.pop()
    if len(val) >= 2 and val[0] in (0x27, 0x22) and val[-1] == val[0]:
        val = val[1:-1]
    if len(name) + 1 + len(val) >= MAX_ENVSTR - 1:
        # too long to be an env setting: "not an env setting" -- but the stream is NOT rewound here in C!
        return FALSE, envstr
    return TRUE, bytes(name) + b"=" + bytes(val)


# ---------------------------------------------------------------------------------------------------------------
# Public parsing API
# ---------------------------------------------------------------------------------------------------------------


def _encode(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogateescape")


def parse_line(line: str | bytes, system: bool = False, *, user_exists: Callable[[str], bool] | None = None) -> Entry:
    """``load_entry`` on one crontab line (a trailing newline is added if missing, as cron needs one).

    ``system=True`` is the /etc/crontab and /etc/cron.d format (user column; ``pw == NULL`` in load_entry);
    ``user_exists`` replaces getpwnam (default: any non-empty name without ':' or newline).
    Raises :class:`Reject` with cron's ecode text, or :class:`NotAnEntry` for a blank/comment line or one that
    cron would read as more than one line.
    """
    data = _encode(line)
    if not data.endswith(b"\n"):
        data += b"\n"
    if b"\n" in data[:-1]:
        raise NotAnEntry("more than one line")
    f = _Stream(data)
    try:
        entry = _load_entry(f, system, user_exists or _default_user_exists)
    except Reject as exc:
        raise Reject(exc.reason) from None
    if entry is None:
        raise NotAnEntry("blank or comment line")
    if f.pos != len(data):
        # only a NUL byte in the command can do this: cron cuts the command there and parses the rest as a new line
        raise NotAnEntry("NUL byte: cron would parse the rest of the line as a further line")
    return entry


def parse_crontab(
    text: str | bytes, system: bool = False, *, user_exists: Callable[[str], bool] | None = None
) -> list[Entry]:
    """A whole crontab as ``user.c load_user`` (daemon) / ``crontab.c replace_cmd`` (``crontab FILE``) read it.

    Returns the entries in *file* order (cron itself keeps them reversed, see :func:`iter_simulate`).
    Environment lines (``load_env`` returns TRUE) are skipped, as are blank lines and lines whose first non-blank
    character is ``#``.  Raises :class:`Reject` whenever cron would refuse/ignore the *whole* file:

    * any entry that load_entry rejects: since ``fixes/Abort-processing-of-crontabs-with-errors.patch`` the daemon
      logs "Syntax error, this crontab file will be ignored" and drops the entire file -- user crontabs, /etc/crontab
      and every /etc/cron.d file alike (crontab(1) refuses to install it: "errors in crontab file, can't install");
    * a last line without a trailing newline ("Missing newline before EOF, this crontab file will be ignored");
    * more than MAX_TAB_LINES lines (user crontab: 10001 lines of content reach the limit, counting the 3 header
      lines crontab(1) adds; system files: 10004 lines).

    ``text`` for ``system=False`` is the content given to ``crontab(1)`` (without its header).

    Not modelled here (database.c process_crontab/valid_name): an /etc/cron.d file is only read if its name matches
    ``^[a-zA-Z0-9_-]+$`` (no dots -- without ``cron -l``), it is owned by root, not group/other-writable and has a
    single hard link; a user crontab must be mode 0600, owned by the user (or root), with one link.
    """
    data = _encode(text)
    user_exists = user_exists or _default_user_exists
    f = _Stream(data, line=1 if system else 1 + NHEADER_LINES)
    offset = 0 if system else NHEADER_LINES
    limit = MAX_TAB_LINES + NHEADER_LINES + 2
    entries: list[Entry] = []
    while True:
        status, envstr = _load_env(f)
        if status == ERR:
            if envstr:
                raise Reject("missing newline before EOF", f.line - offset)
            break
        if status == FALSE:
            try:
                entry = _load_entry(f, system, user_exists)
            except Reject as exc:
                raise Reject(exc.reason, None if exc.line is None else exc.line - offset) from None
            if entry is None:  # load_entry returned NULL without an ecode
                raise Reject("syntax error", f.line - offset)
            entries.append(entry)
        if f.line >= limit:
            raise Reject(f"crontab must not be longer than {MAX_TAB_LINES} lines", f.line - offset - 1)
    return entries


# ---------------------------------------------------------------------------------------------------------------
# cron.c find_jobs
# ---------------------------------------------------------------------------------------------------------------


def matches(e: Entry, minute: int, hour: int, mday: int, month: int, wday: int) -> bool:
    """find_jobs()' test for one entry; ``month`` 1..12, ``wday`` is tm_wday (0 = Sunday .. 6).

    Exactly as Debian writes it::

        bit_test(e->minute, minute) && bit_test(e->hour, hour) && bit_test(e->month, month) &&
        ( ((e->flags & DOM_STAR) || (e->flags & DOW_STAR))
          ? (bit_test(e->dow,dow) && bit_test(e->dom,dom))
          : (bit_test(e->dow,dow) || bit_test(e->dom,dom)))

    i.e. the day fields are OR-ed only when *neither* field starts with '*' (so ``*/2`` in dom means AND).
    """
    if minute not in e.minute or hour not in e.hour or month not in e.month:
        return False
    if "DOM_STAR" in e.flags or "DOW_STAR" in e.flags:
        return wday in e.dow and mday in e.dom
    return wday in e.dow or mday in e.dom


def is_wild(e: Entry) -> bool:
    """find_jobs()' wildcard test ``e->flags & (MIN_STAR|HR_STAR)`` (minute or hour field starts with '*', or
    @hourly)."""
    return "MIN_STAR" in e.flags or "HR_STAR" in e.flags


# ---------------------------------------------------------------------------------------------------------------
# cron.c main loop / set_time / cron_sleep, job.c job_add / job_runqueue
# ---------------------------------------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
_UTC = timezone.utc


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _gmtime_min(vtime: int) -> datetime:
    """gmtime(vtime * 60) as a naive datetime: the virtual local wall clock."""
    return _EPOCH + timedelta(minutes=vtime)


class _Offsets:
    """localtime()-derived GMToff for a zone, with a cached search for the next offset change."""

    _STEP = 6 * 3600  # probe spacing when looking for transitions (no tzdb zone changes offset twice in 6h)

    def __init__(self, zone: str):
        self.tz = ZoneInfo(zone)
        self._cache: dict[int, int] = {}
        self._transitions: list[int] = []  # known offset-change instants (sorted)
        self._scanned_to: int | None = None
        self._scanned_from: int | None = None

    def off(self, t: int) -> int:
        """get_gmtoff(): seconds east of UTC at epoch second ``t``."""
        o = self._cache.get(t)
        if o is None:
            off = datetime.fromtimestamp(t, _UTC).astimezone(self.tz).utcoffset()
            o = int(off.total_seconds()) if off is not None else 0
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[t] = o
        return o

    def _bisect(self, a: int, b: int) -> int:
        """First second in (a, b] whose offset differs from off(a)."""
        oa = self.off(a)
        while b - a > 1:
            mid = (a + b) // 2
            if self.off(mid) == oa:
                a = mid
            else:
                b = mid
        return b

    def constant_until(self, t: int, horizon: int) -> int:
        """The first instant in (t, t+horizon] at which the offset differs from off(t), or t+horizon+1."""
        if self._scanned_from is None or t < self._scanned_from or t > (self._scanned_to or t):
            self._scanned_from = self._scanned_to = t
            self._transitions = []
        end = t + horizon
        while self._scanned_to < end:
            a = self._scanned_to
            b = a + self._STEP
            if self.off(a) != self.off(b):
                self._transitions.append(self._bisect(a, b))
            self._scanned_to = b
        i = bisect.bisect_right(self._transitions, t)
        if i < len(self._transitions) and self._transitions[i] <= end:
            return self._transitions[i]
        return end + 1


def _quiet_minutes(entries: list[Entry], vtime: int) -> int:
    """How many consecutive virtual minutes from ``vtime`` on match no entry at all (0 if ``vtime`` matches or
    might).  Only used to fast-forward steady-state stretches; works at day and hour granularity."""
    dt = _gmtime_min(vtime)
    wday = (dt.weekday() + 1) % 7
    day_ok = [
        e
        for e in entries
        if e.minute
        and e.hour
        and dt.month in e.month
        and (
            (wday in e.dow and dt.day in e.dom)
            if ("DOM_STAR" in e.flags or "DOW_STAR" in e.flags)
            else (wday in e.dow or dt.day in e.dom)
        )
    ]
    if not day_ok:
        return 1440 - (dt.hour * 60 + dt.minute)
    hour_ok = [e for e in day_ok if dt.hour in e.hour]
    if not hour_ok:
        return 60 - dt.minute
    used = frozenset().union(*(e.minute for e in hour_ok))
    n = 0
    for m in range(dt.minute, 60):
        if m in used:
            break
        n += 1
    return n


class _Sim:
    """The daemon's globals: timeRunning, virtualTime, clockTime, GMToff, StartTime ("now") and the job queue."""

    def __init__(self, entries: list[Entry], offsets: _Offsets, now: int, runqueue_sleep: int):
        # load_user prepends each entry (e->next = u->crontab; u->crontab = e): cron walks a crontab bottom-up
        self.crontab = list(reversed(list(enumerate(entries))))
        self.offsets = offsets
        self.now = now
        self.runqueue_sleep = runqueue_sleep
        self.queue: list[tuple[int, int]] = []  # (entry index, vtime it was found for)
        self.gmtoff = 0
        self.clock = 0
        self.set_time()
        self.time_running = self.virtual_time = self.clock

    def set_time(self) -> None:
        """cron.c set_time(): GMToff from localtime(), clockTime = (StartTime + GMToff) / 60."""
        self.gmtoff = self.offsets.off(self.now)
        self.clock = _cdiv(self.now + self.gmtoff, SECONDS_PER_MINUTE)

    def cron_sleep(self, target: int) -> bool:
        """cron.c cron_sleep(): sleep until 1 s past the target (local) minute; only if 0 < wait < 65."""
        t = self.now + self.gmtoff
        wait = target * SECONDS_PER_MINUTE - t + 1
        if 0 < wait < 65:
            self.now += wait
            return True
        return False

    def find_jobs(self, vtime: int, do_wild: bool, do_nonwild: bool) -> None:
        """cron.c find_jobs() + job.c job_add()."""
        tm = _gmtime_min(vtime)
        wday = (tm.weekday() + 1) % 7
        for idx, e in self.crontab:
            if not matches(e, tm.minute, tm.hour, tm.day, tm.month, wday):
                continue
            wild = is_wild(e)
            # job_add: "if already on queue, keep going"; else append to the tail
            if ((do_nonwild and not wild) or (do_wild and wild)) and all(j[0] != idx for j in self.queue):
                self.queue.append((idx, vtime))

    def job_runqueue(self) -> list[tuple[int, datetime, datetime]]:
        """job.c job_runqueue(): start everything queued, head first, and empty the queue (the C function returns
        how many it started: len() of the result)."""
        minute = datetime.fromtimestamp(self.now - self.now % 60, _UTC)
        started = [(idx, minute, _gmtime_min(vtime)) for idx, vtime in self.queue]
        self.queue = []
        return started


def _to_epoch(dt: datetime) -> int:
    if dt.tzinfo is None:
        return calendar.timegm(dt.timetuple())
    return int(dt.timestamp() // 1)


def iter_simulate(
    entries: list[Entry],
    zone: str,
    start_utc: datetime,
    end_utc: datetime | None,
    *,
    runqueue_sleep: int = 0,
) -> Iterator[tuple[int, datetime, datetime]]:
    """Generator behind :func:`simulate`; ``end_utc=None`` runs forever."""
    offsets = _Offsets(zone)
    start = _to_epoch(start_utc)
    start -= start % 60
    end = None if end_utc is None else _to_epoch(end_utc)
    if end is not None:
        end -= end % 60
    # The daemon is started 59 s before start_utc (set_time(TRUE); timeRunning = virtualTime = clockTime), so
    # its first wakeup (1 s past a minute, see cron_sleep) is in start_utc's minute.  @reboot jobs are not run.
    sim = _Sim(entries, offsets, start - 59, runqueue_sleep)
    while True:
        # ---- fast-forward (not in cron): in the steady state (virtualTime == timeRunning, woke 1 s past the
        # minute) with GMToff constant, every wakeup is the timeDiff == 1 shortcut; if find_jobs would match
        # nothing for the next k virtual minutes, those k wakeups change nothing but the clocks.
        if sim.virtual_time == sim.time_running and sim.now + sim.gmtoff == sim.time_running * 60 + 1:
            k = _quiet_minutes(entries, sim.virtual_time + 1) if entries else 1440
            if end is not None:
                k = min(k, (end - 1 - (sim.now - sim.now % 60)) // 60)
            if k > 0:
                change = offsets.constant_until(sim.now, 60 * k)
                k = min(k, (change - 1 - sim.now) // 60)
            if k > 0:
                sim.now += 60 * k
                sim.time_running += k
                sim.virtual_time += k
                sim.clock = sim.time_running
                continue

        # ---- do { cron_sleep(timeRunning + 1); set_time(FALSE); } while (clockTime == timeRunning);
        while True:
            slept = sim.cron_sleep(sim.time_running + 1)
            sim.set_time()
            if sim.clock != sim.time_running:
                break
            if not slept:
                sim.now += 1  # cron spins here (no sleep) while real time passes
        if end is not None and sim.now - sim.now % 60 >= end:
            return
        sim.time_running = sim.clock
        # (check_orphans / load_database: the crontab does not change during a simulation)

        time_diff = sim.time_running - sim.virtual_time
        if time_diff == 1:  # shortcut for the most common case
            sim.virtual_time = sim.time_running
            sim.find_jobs(sim.virtual_time, True, True)
        else:
            wakeup_kind = -1
            if time_diff > -(3 * MINUTE_COUNT):
                wakeup_kind = 0
            if time_diff > 0:
                wakeup_kind = 1
            if time_diff > 5:
                wakeup_kind = 2
            if time_diff > 3 * MINUTE_COUNT:
                wakeup_kind = 3

            if wakeup_kind == 1:
                # woke up late: run jobs for each virtual minute until caught up
                while True:
                    started = sim.job_runqueue()
                    yield from started
                    if started:
                        sim.now += sim.runqueue_sleep  # sleep(10)
                    sim.virtual_time += 1
                    sim.find_jobs(sim.virtual_time, True, True)
                    if not sim.virtual_time < sim.time_running:
                        break
            elif wakeup_kind == 2:
                # DST began (or a medium jump forward): wildcard jobs once for the current minute, then the
                # fixed-time jobs for every virtual minute up to and including timeRunning
                sim.find_jobs(sim.time_running, True, False)
                while True:
                    started = sim.job_runqueue()
                    yield from started
                    if started:
                        sim.now += sim.runqueue_sleep
                    sim.virtual_time += 1
                    sim.find_jobs(sim.virtual_time, False, True)
                    sim.set_time()
                    if not (sim.virtual_time < sim.time_running and sim.clock == sim.time_running):
                        break
            elif wakeup_kind == 0:
                # DST ended (or a jump back of < 3 h): wildcard jobs only; virtualTime stays until caught up
                sim.find_jobs(sim.time_running, True, False)
            else:
                # the clock jumped a lot: reset virtual time and run everything for the current minute
                sim.virtual_time = sim.time_running
                sim.find_jobs(sim.time_running, True, True)
        # jobs to be run (if any) are loaded. clear the queue
        yield from sim.job_runqueue()


def simulate(
    entries: list[Entry],
    zone: str,
    start_utc: datetime,
    end_utc: datetime,
    *,
    runqueue_sleep: int = 0,
) -> list[tuple[int, datetime, datetime]]:
    """cron(8)'s main loop with the daemon's local zone ``zone``, over the real minutes [start_utc, end_utc).

    Returns ``(entry index, real UTC minute the job is started in (aware, UTC), virtual local wall time it was
    matched for (naive))`` in the order cron starts them.  ``entries`` is one crontab in file order (as
    :func:`parse_crontab` returns it); cron keeps a crontab's entries reversed (load_user prepends), so when several
    entries match the same pass, the *later* line starts first.  Naive datetimes are taken as UTC; both bounds are
    floored to the minute.

    What is ported exactly (cron.c main(), Better-timeskip-handling):

    * ``set_time``: ``GMToff`` = this instant's UTC offset (Debian recomputes it on every call since
      Check_for_timezone_changes.patch), ``clockTime = (now + GMToff) / 60`` -- local wall minutes.
    * ``cron_sleep(timeRunning + 1)``: wakes 1 s past the next local minute (using the GMToff of the previous
      set_time); the do/while repeats until clockTime moves.
    * ``timeDiff = timeRunning - virtualTime``; 1 -> find_jobs(all); 2..5 -> run every missed virtual minute
      (wild and fixed); 6..180 -> wildcard jobs once for the current minute, then fixed-time jobs for each missed
      minute through timeRunning (with set_time each step, stopping early if the real minute moves on);
      -179..0 -> wildcard jobs only, virtualTime kept; otherwise (> 180 or <= -180) -> virtualTime = timeRunning,
      everything for the current minute.
    * find_jobs matches on gmtime(vtime * 60), i.e. the virtual local wall clock; job_add de-duplicates queued
      entries; job_runqueue starts jobs head-first; the only start times are the job_runqueue calls.

    Simplifications, and why they do not change which jobs start for which minute:

    * The daemon is started 59 s before ``start_utc``; ``@reboot`` is never run (run_reboot_jobs happens only at
      daemon start-up after boot).
    * ``if (job_runqueue()) sleep(10);`` in the catch-up loops: real cron sleeps 10 s -- or less, because the
      SIGCHLD of any exiting child interrupts sleep().  The default ``runqueue_sleep=0`` assumes it is cut short.
      With 0 the catch-up always finishes inside the wakeup minute, so the (entry, virtual minute) pairs are exactly
      cron's; only a catch-up that overruns a real minute (>= 6 job-running catch-up steps with full 10 s sleeps)
      can differ, and ``runqueue_sleep=10`` models that worst case faithfully (the loops re-check the clock).
    * Spawning a job takes no time; load_database/check_orphans are no-ops (the crontab never changes).
    * A fast-forward (not in cron) skips steady-state stretches where the zone's offset is constant and no entry
      can match; those wakeups would only advance the clocks.  Offset changes are found by probing every 6 h and
      bisecting, which assumes no zone changes its offset twice within 6 h.
    """
    return list(iter_simulate(entries, zone, start_utc, end_utc, runqueue_sleep=runqueue_sleep))


def next_runs(
    e: Entry,
    zone: str,
    start_utc: datetime,
    count: int,
    *,
    horizon: timedelta = timedelta(days=9 * 366),
) -> list[tuple[datetime, datetime]]:
    """The first ``count`` starts of ``e`` from ``start_utc`` on, as (real UTC minute, virtual local wall time),
    per :func:`simulate` (an uninterrupted daemon).  Stops early at ``start_utc + horizon``."""
    if count <= 0:
        return []
    out: list[tuple[datetime, datetime]] = []
    end = start_utc + horizon
    for _, real, virtual in iter_simulate([e], zone, start_utc, end):
        out.append((real, virtual))
        if len(out) >= count:
            break
    return out
