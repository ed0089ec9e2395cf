"""Presentation for the read commands: rich tables on a terminal, stable JSON.

Only the CLI imports this module; the core hands it plain rows.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

STATUS_STYLE = {
    "succeeded": "green", "failed": "red", "timeout": "red", "killed": "magenta",
    "lost": "magenta", "skipped": "yellow", "running": "cyan",
}


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with a Z, the JSON form of every time."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


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


def run_json(row: Any) -> dict[str, Any]:
    """A run row as the documented JSON object (the field names are an interface)."""
    return {
        "id": row["id"],
        "job": row["job"],
        "status": row["status"],
        "exit_code": row["exit_code"],
        "signal": row["signal"],
        "trigger": row["trigger"],
        "attempt": row["attempt"],
        "scheduled_for": iso(row["scheduled_for"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "duration_s": None if row["duration_s"] is None else round(row["duration_s"], 3),
        "pid": row["pid"],
        "host": row["host"],
        "output_bytes": row["output_bytes"],
        "output_truncated": bool(row["output_truncated"]),
        "reason": row["reason"],
    }


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


def history_table(rows: list[Any]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "REASON"):
        table.add_column(col, justify="right" if col in ("ID", "EXIT", "DURATION") else "left",
                         no_wrap=col != "REASON")
    for r in rows:
        table.add_row(
            cell(r["id"]), cell(r["job"]), status_text(r["status"]),
            cell(r["trigger"] + (f" #{r['attempt']}" if r["attempt"] > 1 else "")),
            cell(local(r["started_at"])), cell(duration(r["duration_s"])),
            cell("-" if r["exit_code"] is None else r["exit_code"]), cell(r["reason"] or ""),
        )
    console().print(table)


ACTION_STYLE = {"add": "green", "change": "yellow", "remove": "red", "unchanged": "dim"}


def _change_line(c: Any) -> Any:
    from rich.text import Text

    detail = f" ({', '.join(c.fields)})" if c.fields else ""
    return Text.assemble("  ", cell(f"{c.action:<9}", ACTION_STYLE[c.action]), " ", cell(c.name + detail))


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
    if outcome.wrote:
        out.print(cell(f"applied to {plan.target.label}: {counts['add']} added, {counts['change']} changed, "
                       f"{counts['remove']} removed, {counts['unchanged']} unchanged; previous crontab saved "
                       f"as {outcome.backup}"))
    else:
        out.print(cell(f"{plan.target.label} already in sync: {counts['unchanged']} jobs unchanged, nothing written"))


def uninstall_summary(outcome: Any) -> None:
    plan = outcome.plan
    if outcome.wrote:
        print(f"removed jobctl's block ({len(plan.changes)} jobs) from {plan.target.label}; run log kept; "
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
        "last_run": run_json(s.last_run) if s.last_run is not None else None,
        "consecutive_failures": s.consecutive_failures,
        "paused": s.paused,
        "late": s.late,
        "missed": s.missed,
    }


STATE_STYLE = {"ok": "green", "changed": "yellow", "not applied": "yellow", "orphaned": "red", "disabled": "dim"}


def status_table(rows: list[Any]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("JOB", "SCHEDULE", "NEXT RUN", "STATE", "LAST RUN", "RESULT", "DURATION", "FAILS"):
        table.add_column(col, justify="right" if col in ("FAILS", "DURATION") else "left")
    for s in rows:
        last = s.last_run
        schedule = cell(s.schedule or "-")
        if s.schedule_description:
            schedule.append("\n")
            schedule.append_text(cell(s.schedule_description, "dim"))
        nxt = s.next_run.strftime("%Y-%m-%d %H:%M %Z") if s.next_run else "-"
        result = cell("-")
        if last is not None:
            result = status_text(last["status"])
            if last["exit_code"] is not None:
                result.append_text(cell(f" ({last['exit_code']})"))
        state = cell(s.state, STATE_STYLE.get(s.state, ""))
        for flag, style in (("paused", "yellow"), ("late", "yellow"), ("missed", "bold red")):
            if getattr(s, flag):
                state.append(f" {flag}", style=style)
        table.add_row(
            cell(s.name), schedule, cell(nxt), state,
            cell(local(last["started_at"]) if last is not None else "never"), result,
            cell(duration(last["duration_s"]) if last is not None else "-"),
            cell(s.consecutive_failures, "red" if s.consecutive_failures else ""),
        )
    console().print(table)
