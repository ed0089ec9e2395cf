"""Presentation for the read commands: rich tables on a terminal, stable JSON.

Only the CLI imports this module; the core hands it plain rows.  A run in
JSON is store.run_record's, the shape the webhook payload shares.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from jobctl.store import exit_code, iso, run_record

if TYPE_CHECKING:
    from collections.abc import Mapping

STATUS_STYLE = {
    "succeeded": "green", "failed": "red", "timeout": "red", "killed": "magenta",
    "lost": "magenta", "skipped": "yellow", "running": "cyan",
}


#: the RECENT strip of `status`: a glyph per run (every one a single terminal cell), and the ASCII
#: ones where the locale is not UTF-8
GLYPHS = {"succeeded": "\u2713", "failed": "\u2717", "timeout": "\u23f1", "skipped": "\u2298", "killed": "\u21af",
          "lost": "?", "running": "\u25b8"}
ASCII_GLYPHS = {"succeeded": "+", "failed": "x", "timeout": "T", "skipped": "-", "killed": "K", "lost": "?",
                "running": ">"}
#: what Python's locale coercion (PEP 538) sets LC_CTYPE to when the locale was C or POSIX
_COERCED = ("C.UTF-8", "C.utf8", "UTF-8")
_utf8: bool | None = None


def utf8() -> bool:
    """Whether stdout's locale is UTF-8: else the glyphs jobctl chooses are ASCII.

    Read from LC_ALL, LC_CTYPE, LANG as the C library does (the first one
    set).  Python itself never says: under LANG=C it coerces LC_CTYPE to
    C.UTF-8 in its own environment and writes UTF-8 anyway (UTF-8 mode), so
    an LC_CTYPE that coercion set is skipped; nothing set at all is the C
    locale.  A stdout that cannot write UTF-8 (PYTHONIOENCODING) is ASCII.
    """
    global _utf8
    if _utf8 is None:
        encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        _utf8 = False
        if encoding in ("utf8", "utf8mb4"):
            env = os.environ
            for name in ("LC_ALL", "LC_CTYPE", "LANG"):
                value = env.get(name)
                if not value or name == "LC_CTYPE" and sys.flags.utf8_mode and value in _COERCED:
                    continue
                _utf8 = "utf8" in value.lower().replace("-", "")
                break
    return _utf8


def glyphs() -> dict[str, str]:
    return GLYPHS if utf8() else ASCII_GLYPHS


def relative(ts: float, now: float) -> str:
    """``ts`` from ``now`` in words: "in 4 min", "12 min ago", "3 h ago", "in 2 days".

    Rounded to the nearest unit, and a unit grows at one and a half of the
    next (90 s is "2 min", 36 h is "2 days"), as git's relative dates.
    """
    delta = ts - now
    n = abs(delta)
    if n < 1:
        return "now"
    if n < 90:
        text = f"{int(n)} s"
    elif (m := int((n + 30) // 60)) < 90:
        text = f"{m} min"
    elif (h := int((m + 30) // 60)) < 36:
        text = f"{h} h"
    else:
        d = int((h + 12) // 24)
        text = f"{d} day{'s' if d != 1 else ''}"
    return f"in {text}" if delta > 0 else f"{text} ago"


def local_zone_name() -> str | None:
    """The system's zone by name, as the C library finds it: TZ, else /etc/timezone or /etc/localtime's target."""
    tz = os.environ.get("TZ")
    if tz is not None:
        tz = tz.lstrip(":")
        return tz.split("zoneinfo/", 1)[1] if "zoneinfo/" in tz else tz or "UTC"
    try:
        with open("/etc/timezone", encoding="utf-8") as fh:
            name = fh.readline().strip()
        if name:
            return name
    except OSError:
        pass
    target = os.path.realpath("/etc/localtime")
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def zone_note(now: float) -> str:
    """The line under the status table that says once which zone its times are in, and when now is."""
    t = time.localtime(now)
    off = t.tm_gmtoff or 0
    offset = f"UTC{'+' if off >= 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    abbr = t.tm_zone or ""
    label = local_zone_name() or abbr or offset
    details = [d for d in (abbr, "" if off == 0 and abbr in ("UTC", "GMT") else offset) if d and d != label]
    zone = f"{label} ({', '.join(details)})" if details else label
    return f"times in {zone}; now {time.strftime('%Y-%m-%d %H:%M:%S', t)}"


def local(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# --- text a job, its files or a server control ----------------------------------
#
# Run output, reasons (which quote paths and commands), notification errors,
# crontab lines: none of it may drive the operator's terminal.  Control
# characters (C0, DEL, C1), bytes that are not UTF-8, and the bidirectional
# overrides that reorder what a terminal shows are written as visible escapes
# (ESC becomes the four characters \x1b).  Markup is never read from such text:
# the console is created with markup off, and cells are rich Text objects.

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: a table cell is one line: every control character, newline and tab too
_UNSAFE_IN_CELL = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\udc80-\udcff]")
#: a line of a crontab diff keeps its tabs
_UNSAFE_IN_LINE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI}\udc80-\udcff]")
#: a line of output keeps newline, tab and a carriage return that ends a line
#: (CRLF); a lone \r could overwrite what the line showed, so it is escaped
_UNSAFE_IN_TEXT = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\udc80-\udcff]|\r(?!\n)")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _visible(match: re.Match[str]) -> str:
    c = match.group()
    if c in _NAMED:
        return _NAMED[c]
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that is not UTF-8 (decoded with surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def printable(text: str) -> str:
    """``text`` as one safe line for a table cell or a message: every control character escaped."""
    if text.isascii() and text.isprintable():  # nothing to escape (most cells): no regex pass
        return text
    return _UNSAFE_IN_CELL.sub(_visible, text)


def printable_output(data: bytes) -> bytes:
    """Run output for a terminal: lines and tabs kept, escape sequences and invalid bytes shown escaped."""
    return _UNSAFE_IN_TEXT.sub(_visible, data.decode("utf-8", "surrogateescape")).encode("utf-8")


def cell(text: Any, style: str = "") -> Any:
    """A table cell or line that rich prints as it is: no markup, no control characters."""
    from rich.text import Text

    return Text(printable("" if text is None else str(text)), style=style)


def plural(n: int, word: str) -> str:
    """``word`` for a count of ``n``: "1 job", "2 jobs"."""
    return word if n == 1 else word + "s"


def print_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj) + "\n")


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=2)``, byte for byte, several times faster.

    With an indent, json uses its pure-Python encoder, a generator per
    value: 0.2 s of `status --json` over 1,000 jobs.  This writes the same
    text in one pass with the C string encoder (tests/test_read_fast.py compares
    the two); anything json would need ``default`` for goes to json itself.
    """
    out: list[str] = []
    try:
        _encode(obj, "\n", out)
    except _NotPlain:
        return json.dumps(obj, indent=2)
    return "".join(out)


class _NotPlain(Exception):
    """A value of a type json itself must handle (or refuse)."""


def _float(f: float) -> str:
    # json.encoder's floatstr with allow_nan
    if f != f:
        return "NaN"
    if f == _INF:
        return "Infinity"
    if f == -_INF:
        return "-Infinity"
    return float.__repr__(f)


_INF = float("inf")
_string = json.encoder.encode_basestring_ascii


def _key(k: Any) -> str:
    if isinstance(k, str):
        return _string(k)
    if isinstance(k, float):
        return _string(_float(k))
    if k is True:
        return '"true"'
    if k is False:
        return '"false"'
    if k is None:
        return '"null"'
    if isinstance(k, int):
        return _string(int.__repr__(k))
    raise _NotPlain


#: exact types written without a call of _encode (subclasses go through its isinstance checks)
_SCALAR: dict[type, Any] = {str: _string, int: int.__repr__, float: _float, bool: lambda b: "true" if b else "false",
                            type(None): lambda _: "null"}


def _encode(o: Any, nl: str, out: list[str]) -> None:
    scalar = _SCALAR.get(type(o))
    if scalar is not None:
        out.append(scalar(o))
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = nl + "  "
        sep = "{" + inner
        for k, v in o.items():
            key = _string(k) if type(k) is str else _key(k)
            scalar = _SCALAR.get(type(v))
            if scalar is not None:
                out.append(sep + key + ": " + scalar(v))
            else:
                out.append(sep + key + ": ")
                _encode(v, inner, out)
            sep = "," + inner
        out.append(nl + "}")
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = nl + "  "
        if type(o[0]) is str:
            try:  # a list of strings (status's recent statuses) in one piece
                out.append("[" + inner + ("," + inner).join(map(_string, o)) + nl + "]")
                return
            except TypeError:  # not all of them
                pass
        sep = "[" + inner
        for v in o:
            scalar = _SCALAR.get(type(v))
            if scalar is not None:  # status's lists of ten statuses: no call per item
                out.append(sep + scalar(v))
            else:
                out.append(sep)
                _encode(v, inner, out)
            sep = "," + inner
        out.append(nl + "]")
    # the order of json.encoder's checks for subclasses: str, None, True, False, int, float
    elif isinstance(o, str):
        out.append(_string(o))
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    else:
        raise _NotPlain


def console() -> Any:
    from rich.console import Console

    # Markup and emoji codes off: a reason reading "[/]" or ":fire:" is text,
    # not an instruction (a stray "[/]" made every later `history` crash).
    # Piped output is for grep and awk: never wrap a row.  NO_COLOR: no
    # escape codes at all (rich alone would still write bold and dim).
    colours: Any = None if os.environ.get("NO_COLOR") else "auto"
    out = Console(highlight=False, soft_wrap=False, markup=False, emoji=False, color_system=colours)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, markup=False, emoji=False, width=1000)
    return out


def captured(like: Any, file: Any) -> Any:
    """A console that writes to ``file`` what ``like``, a terminal's, would show (the pager reads it)."""
    from rich.console import Console

    return Console(file=file, force_terminal=True, width=like.width, height=like.height,
                   color_system=like.color_system, no_color=like.no_color, legacy_windows=False,
                   highlight=False, soft_wrap=False, markup=False, emoji=False)


class _Cell:
    """A table cell: its text (control characters escaped), its style, and styled pieces appended.

    Plain data rather than a rich Text: a status of 1,000 jobs has 10,000
    cells, and rich's Table measured, wrapped and padded each one through
    several layers (half of `status`'s time).  _table_lines lays them out as
    that Table did; the style semantics are rich's (``style`` covers the
    whole cell, each span adds its own on top, as Text.append does).
    """

    __slots__ = ("text", "style", "spans", "cell_len")

    def __init__(self, text: Any = "", style: str = "") -> None:
        if type(text) is not str:
            text = "" if text is None else str(text)
        if text.isascii():  # printable() and _cells() for most cells, without their calls
            if not text.isprintable():
                text = _UNSAFE_IN_CELL.sub(_visible, text)
            self.cell_len = len(text)
        else:
            text = printable(text)
            #: terminal cells, as rich measures them (wide characters count two)
            self.cell_len = _cells(text)
        self.text = text
        self.style = style
        self.spans: list[tuple[int, int, str]] = []

    def append(self, text: str, style: str = "") -> _Cell:
        start = len(self.text)
        self.text += printable(text)
        if style and len(self.text) > start:
            self.spans.append((start, len(self.text), style))
        self.cell_len = _cells(self.text)
        return self


def _cells(text: str) -> int:
    """rich's cell_len; printable ASCII (all a cell has after printable()) is one cell a character."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _status_cell(status: str) -> _Cell:
    return _Cell(status, STATUS_STYLE.get(status, ""))


ACTION_STYLE = {"add": "green", "change": "yellow", "remove": "red", "unchanged": "dim", "timer": "cyan"}


def _change_line(c: Any) -> Any:
    from rich.text import Text

    # a field list in parentheses; a lone note that is one already ("(not applied)") stands as it is
    detail = f" {c.fields[0]}" if len(c.fields) == 1 and c.fields[0].startswith("(") else \
        f" ({', '.join(c.fields)})" if c.fields else ""
    line = Text.assemble("  ", cell(f"{c.action:<9}", ACTION_STYLE[c.action]), " ", cell(c.name + detail))
    if c.note:
        line.append_text(cell(f": {c.note}", "yellow"))
    return line


def jobs_dir_line(directory: str, origin: str, jobs: int) -> None:
    """The first line of plan and apply: which jobs directory they read, and why that one."""
    console().print(cell(f"jobs directory: {directory} ({origin}; {jobs} job{'s' if jobs != 1 else ''})"))


def plan_summary(plan: Any) -> None:
    out = console()
    if not plan.changes:
        out.print(cell(f"no jobs to install in {plan.target.label}"))
    for c in plan.changes:
        out.print(_change_line(c))
    counts = {a: sum(1 for c in plan.changes if c.action == a) for a in ("add", "change", "remove", "unchanged")}
    verdict = "in sync" if not plan.pending else "apply would change the crontab"
    out.print(cell(f"{counts['add']} to add, {counts['change']} to change, {counts['remove']} to remove, "
                   f"{counts['unchanged']} unchanged: {verdict}"))
    refusal = plan.refusal()
    if refusal:
        out.print(cell(f"apply will refuse: {refusal}", "bold red"))
    if plan.timers:
        out.print(cell("systemd timers (jobctl export systemd --record wrote what they run; apply does not change "
                       "it):"))
        for c in plan.timers:
            out.print(_change_line(c).append_text(cell(": its job file differs; jobctl export systemd --record "
                                                        "updates it")))
    inherited_settings(plan.inherited, plan.target.label)


def inherited_settings(settings: list[tuple[str, str, int]], label: str) -> None:
    """Once per plan: what each setting above jobctl's block means for its lines."""
    from jobctl.install.crontab import meaning

    if not settings:
        return
    out = console()
    out.print(cell(f"settings above jobctl's block in {label}, which cron applies to its lines too:"))
    for name, value, number in settings:
        text, problem = meaning(name, value)
        out.print(cell(f"  line {number}: {text}", "yellow" if problem else ""))


def diff(text: str) -> None:
    out = console()
    if not out.is_terminal:
        sys.stdout.write(text)
        return
    from rich.text import Text

    # Lines of the crontab: a foreign line may hold anything, so it is shown escaped.
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        style = "bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+") else \
            "red" if line.startswith("-") else "cyan" if line.startswith("@@") else ""
        out.print(Text(_UNSAFE_IN_LINE.sub(_visible, line), style=style))


def apply_summary(outcome: Any) -> None:
    plan = outcome.plan
    counts = {a: sum(1 for c in plan.changes if c.action == a) for a in ("add", "change", "remove", "unchanged")}
    out = console()
    for c in plan.changes:
        if c.action != "unchanged":
            out.print(_change_line(c))
    if outcome.wrote and plan.created and not plan.new_text:
        out.print(cell(f"removed {plan.target.label}: there was none before jobctl; previous crontab saved as "
                       f"{outcome.backup}"))
    elif outcome.wrote:
        out.print(cell(f"applied to {plan.target.label}: {counts['add']} added, {counts['change']} changed, "
                       f"{counts['remove']} removed, {counts['unchanged']} unchanged; previous crontab saved "
                       f"as {outcome.backup}"))
    elif rewritten := [c.name for c in plan.changes if c.action != "unchanged"]:
        # the crontab already had these lines; only the definitions they run were written
        out.print(cell(f"{plan.target.label} already had these lines, not written; rewrote the applied "
                       f"definition{'s' if len(rewritten) != 1 else ''} of {', '.join(rewritten)} "
                       f"({counts['unchanged']} {plural(counts['unchanged'], 'job')} unchanged)"))
    else:
        out.print(cell(f"{plan.target.label} already in sync: {counts['unchanged']} "
                       f"{plural(counts['unchanged'], 'job')} unchanged, nothing written"))


def uninstall_summary(outcome: Any) -> None:
    plan = outcome.plan
    if outcome.wrote:
        after = ("; nothing else was in it, and there was none before jobctl, so it is removed (crontab -r)"
                 if plan.created and not plan.new_text else "")
        n = len(plan.changes)
        print(f"removed jobctl's block ({n} {plural(n, 'job')}) from {plan.target.label}{after}; run log kept; "
              f"previous crontab saved as {outcome.backup}")
    else:
        print(f"no jobctl block in {plan.target.label}; nothing to remove")


def status_json(s: Any) -> dict[str, Any]:
    last = run_record(s.last_run) if s.last_run is not None else None
    started = s.last_started_run
    # most often the latest run is the latest that started: one record for both (1,000 of them)
    last_started = last if started is s.last_run else run_record(started) if started is not None else None
    took = started["duration_s"] if started is not None else None
    return {
        "name": s.name,
        "description": s.description,
        "schedule": s.schedule,
        "schedule_description": s.schedule_description,
        "next_run": iso(s.next_run.timestamp()) if s.next_run else None,
        "state": s.state,
        "last_run": last,
        "consecutive_failures": s.consecutive_failures,
        "paused": s.paused,
        "late": s.late,
        "missed": s.missed,
        "last_started_run": last_started,
        "jobs_dir": s.jobs_dir,
        "recent": s.recent,
        "usual_duration_s": None if s.usual_duration is None else round(s.usual_duration, 3),
        "last_duration_s": None if took is None else round(took, 3),
        "usual_mad_s": None if s.usual_mad is None else round(s.usual_mad, 3),
        "usual_runs": s.usual_runs,
        "missed_runs": s.missed_runs,
    }


STATE_STYLE = {"ok": "green", "changed": "yellow", "edited": "bold yellow", "not applied": "yellow",
               "timer": "cyan", "orphaned": "red", "disabled": "dim"}


# --- the status table ----------------------------------------------------------------
#
# One line per job.  The job name is never cut.  When the table is wider than
# the terminal, columns go in this order until it fits: first every column
# takes its short form (NEXT RUN and LAST RUN only the relative time, "in 4
# min", "12 min ago"; a success without "(0)"), then WHEN, DESCRIPTION (cut
# with "..." before it goes), USUAL, DURATION, RECENT, LAST RUN, MISSED, FAILS
# (the count then follows the result, "x3"), NEXT RUN and SCHEDULE: what a
# glance needs goes last.  JOB, STATE and RESULT always stay.  MISSED is there
# only when some job has missed runs.  --wide shows every column in full.
# Times are the system's local time, without a zone in each cell:
# status_screen's last line names the zone once.

#: columns in display order: (header, justify, drop rank: 0 never, lower goes first)
_COLUMNS = (("JOB", "left", 0), ("SCHEDULE", "left", 10), ("WHEN", "left", 1), ("NEXT RUN", "left", 9),
            ("STATE", "left", 0), ("LAST RUN", "left", 6), ("RESULT", "left", 0), ("RECENT", "left", 5),
            ("DURATION", "right", 4), ("USUAL", "right", 3), ("FAILS", "right", 8), ("MISSED", "right", 7),
            ("DESCRIPTION", "left", 2))
_GAP = 2  # padding between two columns (rich: one on each side)
_MIN_DESCRIPTION = 12


def _result(s: Any, short: bool, fails: bool) -> _Cell:
    last = s.last_started_run
    if last is None:
        text = _Cell("-")
    else:
        text = _status_cell(last["status"])
        code = exit_code(last)
        if code is not None and not (short and code == 0):
            text.append(f" ({code})")
    if fails and s.consecutive_failures > 1:
        text.append(f" x{s.consecutive_failures}", "red")
    if s.paused and not short:  # short: STATE, which always stays, says "paused"
        text.append(" (paused)", "yellow")
    return text


_STRIPS: dict[tuple[bool | str, ...], _Cell] = {}


def _strip(recent: list[str]) -> _Cell:
    """The RECENT cell: a glyph per run, oldest first, each in its status's colour (a span per run of one colour).

    Made once per sequence of statuses (most jobs repeat a few); a cell
    that is never appended to can be shared.
    """
    key: tuple[bool | str, ...] = (utf8(), *recent)
    made = _STRIPS.get(key)
    if made is None:
        made = _STRIPS[key] = _new_strip(recent)
    return made


def _new_strip(recent: list[str]) -> _Cell:
    marks = glyphs()
    c = _Cell.__new__(_Cell)  # the glyphs need no escaping, and each is one cell wide
    c.text = "".join([marks.get(st, "?") for st in recent])
    c.cell_len = len(recent)
    c.style = ""
    spans: list[tuple[int, int, str]] = []
    for i, st in enumerate(recent):
        style = STATUS_STYLE.get(st)
        if style is None:
            continue
        if spans and spans[-1][1] == i and spans[-1][2] == style:
            spans[-1] = (spans[-1][0], i + 1, style)
        else:
            spans.append((i, i + 1, style))
    c.spans = spans
    return c


def slow(took: float | None, usual: float | None) -> bool:
    """Whether the last run took more than twice the usual time (and at least a second more)."""
    return took is not None and usual is not None and took > 2 * usual and took - usual >= 1


_NEXT: dict[tuple[float, float, bool], str] = {}


def _next_run(at: float, now: float, short: bool) -> str:
    """The NEXT RUN cell's text, once per time: jobs share a few schedules."""
    key = (at, now, short)
    text = _NEXT.get(key)
    if text is None:
        until = relative(at, now)
        text = _NEXT[key] = until if short else f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(at))} ({until})"
    return text


def _status_cells(s: Any, short: bool, fails_in_result: bool, now: float) -> dict[str, _Cell]:
    last = s.last_started_run
    state = _Cell(s.state, STATE_STYLE.get(s.state, ""))
    for flag, style in (("paused", "yellow"), ("late", "yellow"), ("missed", "bold red")):
        if getattr(s, flag):
            state.append(f" {flag}", style)
    if last is None:
        when = "never"
    else:
        ago = relative(last["started_at"], now)
        when = ago if short else \
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last['started_at']))} ({ago})"
    nxt = "-" if s.next_run is None else _next_run(s.next_run.timestamp(), now, short)
    took = last["duration_s"] if last is not None else None
    return {
        "JOB": _Cell(s.name),
        "SCHEDULE": _Cell(s.schedule or "-"),
        "WHEN": _Cell(s.schedule_description or "", "dim"),
        "NEXT RUN": _Cell(nxt),
        "STATE": state,
        "LAST RUN": _Cell(when),
        "RESULT": _result(s, short, fails_in_result),
        "RECENT": _strip(s.recent),
        "DURATION": _Cell(duration(took), "yellow" if slow(took, s.usual_duration) else ""),
        "USUAL": _Cell(duration(s.usual_duration)),
        "FAILS": _Cell(s.consecutive_failures, "red" if s.consecutive_failures else ""),
        "MISSED": _Cell(_missed(s), "red" if _missed(s) else ""),
        "DESCRIPTION": _Cell(s.description or "", "dim"),
    }


def _missed(s: Any) -> int:
    """The job's missed runs; 0 for a row made before the count existed (the renderer takes any such object)."""
    return getattr(s, "missed_runs", 0)


def _fit(columns: tuple, shown: list[str], make: Any, width: int | None,
         cut: str | None = None) -> tuple[list[str], dict[str, int], list[dict[str, Any]]]:
    """The columns to show, their widths and the cells: full when they fit in ``width`` (None: no limit).

    ``columns`` are (header, justify, drop rank: 0 never, lower goes first);
    ``make(short, shown)`` gives the cells of every row.  When the full table
    is too wide, every cell takes its short form, then columns go by rank; the
    ``cut`` column is first cut with an ellipsis (while it keeps
    _MIN_DESCRIPTION characters) before it goes.
    """
    shown = list(shown)

    def measure(cells: list[dict[str, Any]], headers: list[str]) -> dict[str, int]:
        return {h: max([len(h)] + [c[h].cell_len for c in cells]) for h in headers}

    def total(widths: dict[str, int]) -> int:
        return sum(widths.values()) + _GAP * (len(widths) - 1)

    cells = make(False, shown)
    widths = measure(cells, shown)
    if width is None or total(widths) <= width:
        return shown, widths, cells
    cells = make(True, shown)
    for rank in range(1, max(r for _, _, r in columns) + 1):
        widths = measure(cells, shown)
        if total(widths) <= width:
            break
        victim = next(h for h, _, r in columns if r == rank)
        if victim not in shown:
            continue
        if victim == cut:
            room = width - (total(widths) - widths[victim])
            if room >= _MIN_DESCRIPTION:
                widths[victim] = room
                return shown, widths, cells
        shown.remove(victim)
        cells = make(True, shown)
    return shown, measure(cells, shown), cells


def _layout(rows: list[Any], width: int | None,
            now: float) -> tuple[list[str], dict[str, int], list[dict[str, Any]]]:
    """The status table's columns, widths and cells; once FAILS is gone its count follows the result."""
    shown = [h for h, _, _ in _COLUMNS if (h != "DESCRIPTION" or any(s.description for s in rows))
             and (h != "MISSED" or any(_missed(s) for s in rows))]
    return _fit(_COLUMNS, shown, lambda short, cols: [_status_cells(s, short, short and "FAILS" not in cols, now)
                                                      for s in rows], width, cut="DESCRIPTION")


def _fitted(c: _Cell, width: int, justify: str) -> tuple[int, str, list[tuple[int, int, str]], int]:
    """A cell in a column ``width`` cells wide, as rich's Table fits a no_wrap, ellipsis cell.

    (spaces before, text, its spans, spaces after): left-justified text is
    padded after; right-justified text loses trailing blanks and is padded
    before; text that is too long keeps ``width - 1`` cells and "…"
    (Text.truncate, Lines.justify, Segment.adjust_line_length).
    """
    from rich.cells import cell_len, set_cell_size

    text, spans, length = c.text, c.spans, c.cell_len
    if justify == "right" and text[-1:].isspace():
        text = text.rstrip()
        length = cell_len(text)
    if length > width:
        text = set_cell_size(text, width - 1) + "…"
        length = cell_len(text)
    if len(text) < len(c.text):  # spans past the end go, the last one is cut (Text._trim_spans)
        spans = [(a, min(b, len(text)), st) for a, b, st in spans if a < len(text)]
    if justify == "right":
        return width - length, text, spans, 0
    return 0, text, spans, max(width - length, 0)


def _table_lines(columns: tuple, shown: list[str], widths: dict[str, int],
                 cells: list[dict[str, _Cell]]) -> list[list[tuple[int, str, list[tuple[int, int, str]], int, str]]]:
    """Every line of the table, the header first: per shown column (pad before, text, spans, pad after, style)."""
    justify = {h: j for h, j, _ in columns}
    layout = [(h, widths[h], justify[h]) for h in shown]
    lines = [[(*_fitted(_Cell(h), w, j), "bold") for h, w, j in layout]]
    for row in cells:
        line = []
        for h, w, j in layout:
            c = row[h]
            if not c.spans and c.cell_len <= w and (j == "left" or not c.text[-1:].isspace()):
                # the common case without the general path's calls: fits, one style
                pad = w - c.cell_len
                line.append((pad, c.text, c.spans, 0, c.style) if j == "right" else (0, c.text, c.spans, pad, c.style))
            else:
                line.append((*_fitted(c, w, j), c.style))
        lines.append(line)
    return lines


def _plain_table(columns: tuple, shown: list[str], widths: dict[str, int], cells: list[dict[str, _Cell]]) -> str:
    """The table's text without styles: what _table_lines gives, joined (the common case inlined)."""
    justify = {h: j for h, j, _ in columns}
    layout = [(h, widths[h], justify[h] == "right") for h in shown]
    out = []
    for row in [{h: _Cell(h) for h in shown}, *cells]:  # the header first
        parts = []
        for h, w, right in layout:
            c = row[h]
            pad = w - c.cell_len
            if pad < 0 or right and c.text[-1:].isspace():
                before, text, _, after = _fitted(c, w, "right" if right else "left")
                parts.append(" " * before + text + " " * after)
            else:
                parts.append(" " * pad + c.text if right else c.text + " " * pad)
        out.append("  ".join(parts))
    return "\n".join(out) + "\n"


def _fitted_table(columns: tuple, shown: list[str], widths: dict[str, int], cells: list[dict[str, _Cell]],
                  out: Any) -> None:
    """Print the table as rich's Table(box=None, padding=(0, 1), pad_edge=False) with these widths did.

    Cells are joined by two spaces (the padding on each side of a column
    edge, none at the table's edges), every line padded to the table's
    width.  Written as segments through the console (Segments, crop=False):
    rich still turns styles into escape codes for the terminal it found
    (none when piped, and NO_COLOR as rich reads it), catches a broken pipe
    and flushes.  Without colours (piped output) styles are left out at once.
    """
    from rich.segment import Segment, Segments

    needed = sum(widths[h] for h in shown) + _GAP * (len(shown) - 1)
    if needed > out.width:
        # Never cut a job name (or a run id): a line longer than the terminal wraps there instead.
        out.width = needed
    if out.color_system is None:  # styles would render as nothing
        out.print(Segments([Segment(_plain_table(columns, shown, widths, cells))]), crop=False)
        return
    lines = _table_lines(columns, shown, widths, cells)
    styles: dict[str, Any] = {}

    def style(name: str) -> Any:
        if name not in styles:
            styles[name] = out.get_style(name) if name else None
        return styles[name]

    segments: list[Any] = []
    add = segments.append
    for line in lines:
        for i, (before, text, spans, after, base) in enumerate(line):
            if i:
                add(Segment("  "))
            if before:
                add(Segment(" " * before))
            if not spans:
                add(Segment(text, style(base)))
            else:  # runs between span edges, each with the cell's style and the spans over it, in order
                edges = sorted({0, len(text), *(a for a, _, _ in spans), *(b for _, b, _ in spans)})
                for a, b in zip(edges, edges[1:], strict=False):
                    run = [style(base)] + [style(st) for sa, sb, st in spans if sa <= a and b <= sb]
                    combined = None
                    for st in run:
                        if st is not None:
                            combined = st if combined is None else combined + st
                    add(Segment(text[a:b], combined))
            if after:
                add(Segment(" " * after))
        add(Segment("\n"))
    out.print(Segments(segments), crop=False)


def _width(out: Any, wide: bool) -> int | None:
    """The width a table must fit in; None for --wide and for piped output (the console is 1000 wide)."""
    return None if wide or not out.is_terminal and out.width >= 1000 else out.width


def _piped() -> bool:
    """Whether rich would see stdout as no terminal, told without importing rich (~25 ms of a `status`).

    Then console() makes a 1000-column console without colours, and a table
    is its plain text.  Whatever could make rich think otherwise (FORCE_COLOR,
    TTY_COMPATIBLE, Jupyter, a stdout that cannot say) leaves it to rich.
    """
    import builtins

    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ or hasattr(builtins, "get_ipython"):
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _write_piped(text: str) -> None:
    """Write as rich's Console does: then flush; a closed pipe (``| head``) ends quietly with status 1."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None
    except UnicodeEncodeError as error:
        error.reason = f"{error.reason}\n*** You may need to add PYTHONIOENCODING=utf-8 to your environment ***"
        raise


def write_out(text: str) -> None:
    """Text made for this terminal, written as rich would (the pager's short output)."""
    _write_piped(text)


def status_table(rows: list[Any], wide: bool = False, out: Any = None, now: float | None = None) -> None:
    """The table alone; relative times are from ``now`` (epoch seconds; the time of the call by default)."""
    now = time.time() if now is None else now
    if out is None and _piped():  # every column in full (_width), no styles
        _write_piped(_plain_table(_COLUMNS, *_layout(rows, None, now)))
        return
    out = out or console()
    shown, widths, cells = _layout(rows, _width(out, wide), now)
    _fitted_table(_COLUMNS, shown, widths, cells, out)


def status_screen(rows: list[Any], wide: bool = False, out: Any = None, now: float | None = None) -> None:
    """`jobctl status`: the table, and on a terminal a last line naming the zone of its times once.

    Piped, the table alone: every line after the header is a job, for grep
    and awk (--json has UTC times).
    """
    now = time.time() if now is None else now
    if out is None and _piped():
        status_table(rows, wide, None, now)
        return
    out = out or console()
    status_table(rows, wide, out, now)
    out.print(cell(zone_note(now), "dim"))


# --- the history table ---------------------------------------------------------------
#
# One line per run.  The run id (what `logs RUN_ID` takes) and the job name are
# never cut.  A run judged slow or short against its job's usual duration has
# a mark after DURATION, in a column of its own (there only when a run shown
# has one), so that durations stay aligned.  When the table is wider than the
# terminal, STARTED loses its year and seconds, then REASON is cut with "..."
# (it goes when too little is left), then the marks, DURATION, TRIGGER, EXIT,
# STARTED and STATUS go in that order.

#: the header of the column of slow/short marks: none, the marks say what they are
MARK = ""
_HISTORY_COLUMNS = (("ID", "right", 0), ("JOB", "left", 0), ("STATUS", "left", 7), ("TRIGGER", "left", 4),
                    ("STARTED", "left", 6), ("DURATION", "right", 3), (MARK, "left", 2), ("EXIT", "right", 5),
                    ("REASON", "left", 1))
#: a run judged slow or short (jobctl.baseline.judge), and the ASCII marks where the locale is not UTF-8
JUDGED_MARKS = {"slow": "\u25b2slow", "short": "\u25bcshort"}
ASCII_JUDGED_MARKS = {"slow": "slow", "short": "short"}


def _history_cells(r: Any, short: bool) -> dict[str, _Cell]:
    started = "-" if r["started_at"] is None else \
        time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
    return {
        "ID": _Cell(r["id"]), "JOB": _Cell(r["job"]), "STATUS": _status_cell(r["status"]),
        "TRIGGER": _Cell(r["trigger"] + (f" #{r['attempt']}" if r["attempt"] > 1 else "")),
        "STARTED": _Cell(started), "DURATION": _Cell(duration(r["duration_s"])),
        "EXIT": _Cell("-" if exit_code(r) is None else exit_code(r)), "REASON": _Cell(r["reason"] or ""),
    }


def judged_mark(verdict: str | None) -> str:
    """What the history shows next to the duration of a run judged ``verdict`` ("slow", "short"; None: nothing)."""
    if verdict is None:
        return ""
    return (JUDGED_MARKS if utf8() else ASCII_JUDGED_MARKS).get(verdict, verdict)


def _mark_cell(verdict: str | None) -> _Cell:
    return _Cell(judged_mark(verdict), "yellow" if verdict else "")


def _shown_columns(columns: tuple, marked: bool) -> list[str]:
    return [h for h, _, _ in columns if h != MARK or marked]


def _write_runs(columns: tuple, marked: bool, cells: Any, piped: bool, out: Any) -> None:
    """history's tables: the columns that fit (REASON cut first), plain when piped, else through rich."""
    shown, widths, made = _fit(columns, _shown_columns(columns, marked), cells,
                               None if piped else _width(out, False), cut="REASON")
    if piped:
        _write_piped(_plain_table(columns, shown, widths, made))
    else:
        _fitted_table(columns, shown, widths, made, out)


def history_table(rows: list[Any], out: Any = None, judged: Mapping[int, str | None] | None = None) -> None:
    """The history table; ``judged``: {run id: "slow", "short" or None}, the marks after the durations."""
    piped = out is None and _piped()
    if not piped:
        out = out or console()
    judged = judged or {}
    marked = any(judged.get(r["id"]) for r in rows)

    def cells(short: bool, _: list[str]) -> list[dict[str, _Cell]]:
        made = [_history_cells(r, short) for r in rows]
        if marked:
            for r, c in zip(rows, made, strict=True):
                c[MARK] = _mark_cell(judged.get(r["id"]))
        return made

    _write_runs(_HISTORY_COLUMNS, marked, cells, piped, out)


# --- history --tree: the runs a run's then/on_failure started, beneath it ----------------
#
# The history table with the chain drawn in its first column: each run of the
# job, then the runs it started (trigger chain), and the runs those started,
# each indented under the run that started it.  PARENT is the status of the
# run that started it (what JOBCTL_PARENT_STATUS said: succeeded for a then,
# failed, timeout or killed for an on_failure); for a run of the job that a
# run of another job started, that run's id, job and status.  Piped, the
# chain is plain indentation (two spaces a level), for grep and awk.

_TREE_COLUMNS = (("RUN", "left", 0), ("JOB", "left", 0), ("STATUS", "left", 8), ("TRIGGER", "left", 4),
                 ("STARTED", "left", 7), ("DURATION", "right", 3), (MARK, "left", 2), ("EXIT", "right", 6),
                 ("PARENT", "left", 5), ("REASON", "left", 1))
#: (a child, the last child, below a child, below the last child)
TREE_GUIDES = ("\u251c\u2500 ", "\u2514\u2500 ", "\u2502  ", "   ")
ASCII_TREE_GUIDES = ("|- ", "`- ", "|  ", "   ")
_INDENT = ("  ", "  ", "  ", "  ")


def tree_rows(roots: list[Any], guides: tuple[str, str, str, str]) -> list[tuple[Any, str]]:
    """(node, the guides before its run id) of every node, depth first, children in the order given.

    A node has ``row`` (its run), ``children`` (nodes) and ``parent`` (the
    PARENT cell's text).  Walked with a stack: a chain is as deep as it is long.
    """
    out: list[tuple[Any, str]] = []
    stack: list[tuple[Any, str, str]] = [(node, "", "") for node in reversed(roots)]
    while stack:
        node, own, below = stack.pop()
        out.append((node, own))
        kids = node.children
        for i in range(len(kids) - 1, -1, -1):
            last = i == len(kids) - 1
            stack.append((kids[i], below + guides[1 if last else 0], below + guides[3 if last else 2]))
    return out


def history_tree(roots: list[Any], out: Any = None, judged: Mapping[int, str | None] | None = None) -> None:
    """`history NAME --tree`: each root run with the runs it started beneath it (see tree_rows for a node)."""
    piped = out is None and _piped()
    if not piped:
        out = out or console()
    judged = judged or {}
    lines = tree_rows(roots, _INDENT if piped else TREE_GUIDES if utf8() else ASCII_TREE_GUIDES)
    marked = any(judged.get(node.row["id"]) for node, _ in lines)

    def cells(short: bool, _: list[str]) -> list[dict[str, _Cell]]:
        made = []
        for node, guides in lines:
            r = node.row
            c = _history_cells(r, short)
            run = _Cell("")
            if guides:
                run.append(guides, "dim")
            c["RUN"] = run.append(str(r["id"]))
            c["PARENT"] = _Cell(node.parent or "")
            c[MARK] = _mark_cell(judged.get(r["id"]))
            made.append(c)
        return made

    _write_runs(_TREE_COLUMNS, marked, cells, piped, out)
