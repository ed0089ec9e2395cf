"""Presentation for the read commands: rich tables on a terminal, stable JSON.

Only the CLI imports this module; the core hands it plain rows.  A run in
JSON is store.run_record's, the shape the webhook payload shares.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

from jobctl.store import exit_code, iso, run_record

STATUS_STYLE = {
    "succeeded": "green", "failed": "red", "timeout": "red", "killed": "magenta",
    "lost": "magenta", "skipped": "yellow", "running": "cyan",
}


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
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def console() -> Any:
    from rich.console import Console

    # Markup and emoji codes off: a reason reading "[/]" or ":fire:" is text,
    # not an instruction (a stray "[/]" made every later `history` crash).
    # Piped output is for grep and awk: never wrap a row.
    out = Console(highlight=False, soft_wrap=False, markup=False, emoji=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, markup=False, emoji=False, width=1000)
    return out


def status_text(status: str) -> Any:
    return cell(status, STATUS_STYLE.get(status, ""))


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
    return {
        "name": s.name,
        "description": s.description,
        "schedule": s.schedule,
        "schedule_description": s.schedule_description,
        "next_run": iso(s.next_run.timestamp()) if s.next_run else None,
        "state": s.state,
        "last_run": run_record(s.last_run) if s.last_run is not None else None,
        "consecutive_failures": s.consecutive_failures,
        "paused": s.paused,
        "late": s.late,
        "missed": s.missed,
        "last_started_run": run_record(s.last_started_run) if s.last_started_run is not None else None,
        "jobs_dir": s.jobs_dir,
    }


STATE_STYLE = {"ok": "green", "changed": "yellow", "edited": "bold yellow", "not applied": "yellow",
               "timer": "cyan", "orphaned": "red", "disabled": "dim"}


# --- the status table ----------------------------------------------------------------
#
# One line per job.  The job name is never cut.  When the table is wider than
# the terminal, columns go in this order until it fits: first every column
# takes its short form (times without the year, a success without "(0)"),
# then WHEN, DURATION, DESCRIPTION (cut with "..." before it goes), LAST RUN,
# FAILS (the count then follows the result, "x3"), NEXT RUN and SCHEDULE.
# JOB, STATE and RESULT always stay.  --wide shows every column in full.

#: columns in display order: (header, justify, drop rank: 0 never, lower goes first)
_COLUMNS = (("JOB", "left", 0), ("SCHEDULE", "left", 7), ("WHEN", "left", 1), ("NEXT RUN", "left", 6),
            ("STATE", "left", 0), ("LAST RUN", "left", 4), ("RESULT", "left", 0), ("DURATION", "right", 2),
            ("FAILS", "right", 5), ("DESCRIPTION", "left", 3))
_GAP = 2  # padding between two columns (rich: one on each side)
_MIN_DESCRIPTION = 12


def _result(s: Any, short: bool, fails: bool) -> Any:
    last = s.last_started_run
    if last is None:
        text = cell("-")
    else:
        text = status_text(last["status"])
        code = exit_code(last)
        if code is not None and not (short and code == 0):
            text.append_text(cell(f" ({code})"))
    if fails and s.consecutive_failures > 1:
        text.append_text(cell(f" x{s.consecutive_failures}", "red"))
    if s.paused and not short:  # short: STATE, which always stays, says "paused"
        text.append_text(cell(" (paused)", "yellow"))
    return text


def _status_cells(s: Any, short: bool, fails_in_result: bool) -> dict[str, Any]:
    last = s.last_started_run
    stamp = "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M %Z"
    state = cell(s.state, STATE_STYLE.get(s.state, ""))
    for flag, style in (("paused", "yellow"), ("late", "yellow"), ("missed", "bold red")):
        if getattr(s, flag):
            state.append(f" {flag}", style=style)
    if last is None:
        when = "never"
    else:
        when = time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S", time.localtime(last["started_at"]))
    return {
        "JOB": cell(s.name),
        "SCHEDULE": cell(s.schedule or "-"),
        "WHEN": cell(s.schedule_description or "", "dim"),
        "NEXT RUN": cell(s.next_run.strftime(stamp) if s.next_run else "-"),
        "STATE": state,
        "LAST RUN": cell(when),
        "RESULT": _result(s, short, fails_in_result),
        "DURATION": cell(duration(last["duration_s"]) if last is not None else "-"),
        "FAILS": cell(s.consecutive_failures, "red" if s.consecutive_failures else ""),
        "DESCRIPTION": cell(s.description or "", "dim"),
    }


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


def _layout(rows: list[Any], width: int | None) -> tuple[list[str], dict[str, int], list[dict[str, Any]]]:
    """The status table's columns, widths and cells; once FAILS is gone its count follows the result."""
    shown = [h for h, _, _ in _COLUMNS if h != "DESCRIPTION" or any(s.description for s in rows)]
    return _fit(_COLUMNS, shown, lambda short, cols: [_status_cells(s, short, short and "FAILS" not in cols)
                                                      for s in rows], width, cut="DESCRIPTION")


def _fitted_table(columns: tuple, shown: list[str], widths: dict[str, int], cells: list[dict[str, Any]],
                  out: Any) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header, justify, _ in columns:
        if header in shown:
            table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis", width=widths[header])
    for c in cells:
        table.add_row(*(c[h] for h in shown))
    needed = sum(widths[h] for h in shown) + _GAP * (len(shown) - 1)
    if needed > out.width:
        # Never cut a job name (or a run id): a line longer than the terminal wraps there instead.
        out.width = needed
    out.print(table)


def _width(out: Any, wide: bool) -> int | None:
    """The width a table must fit in; None for --wide and for piped output (the console is 1000 wide)."""
    return None if wide or not out.is_terminal and out.width >= 1000 else out.width


def status_table(rows: list[Any], wide: bool = False, out: Any = None) -> None:
    out = out or console()
    shown, widths, cells = _layout(rows, _width(out, wide))
    _fitted_table(_COLUMNS, shown, widths, cells, out)


# --- the history table ---------------------------------------------------------------
#
# One line per run.  The run id (what `logs RUN_ID` takes) and the job name are
# never cut.  When the table is wider than the terminal, STARTED loses its year
# and seconds, then REASON is cut with "..." (it goes when too little is left),
# then DURATION, TRIGGER, EXIT, STARTED and STATUS go in that order.

_HISTORY_COLUMNS = (("ID", "right", 0), ("JOB", "left", 0), ("STATUS", "left", 6), ("TRIGGER", "left", 3),
                    ("STARTED", "left", 5), ("DURATION", "right", 2), ("EXIT", "right", 4), ("REASON", "left", 1))


def _history_cells(r: Any, short: bool) -> dict[str, Any]:
    started = "-" if r["started_at"] is None else \
        time.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
    return {
        "ID": cell(r["id"]), "JOB": cell(r["job"]), "STATUS": status_text(r["status"]),
        "TRIGGER": cell(r["trigger"] + (f" #{r['attempt']}" if r["attempt"] > 1 else "")),
        "STARTED": cell(started), "DURATION": cell(duration(r["duration_s"])),
        "EXIT": cell("-" if exit_code(r) is None else exit_code(r)), "REASON": cell(r["reason"] or ""),
    }


def history_table(rows: list[Any], out: Any = None) -> None:
    out = out or console()
    shown = [h for h, _, _ in _HISTORY_COLUMNS]
    shown, widths, cells = _fit(_HISTORY_COLUMNS, shown,
                                lambda short, _: [_history_cells(r, short) for r in rows], _width(out, False),
                                cut="REASON")
    _fitted_table(_HISTORY_COLUMNS, shown, widths, cells, out)
