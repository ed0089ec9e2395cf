"""Presentation for the read commands: rich tables on a terminal, stable JSON.

Only the CLI imports this module; the core hands it plain rows.
"""

from __future__ import annotations

import json
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

    # Piped output is for grep and awk: never wrap a row.
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=1000)
    return out


def status_text(status: str) -> Any:
    from rich.text import Text

    return Text(status, style=STATUS_STYLE.get(status, ""))


def history_table(rows: list[Any]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT", "REASON"):
        table.add_column(col, justify="right" if col in ("ID", "EXIT", "DURATION") else "left",
                         no_wrap=col != "REASON")
    for r in rows:
        table.add_row(
            str(r["id"]), r["job"], status_text(r["status"]),
            r["trigger"] + (f" #{r['attempt']}" if r["attempt"] > 1 else ""),
            local(r["started_at"]), duration(r["duration_s"]),
            "-" if r["exit_code"] is None else str(r["exit_code"]), r["reason"] or "",
        )
    console().print(table)


ACTION_STYLE = {"add": "green", "change": "yellow", "remove": "red", "unchanged": "dim"}


def plan_summary(plan: Any) -> None:
    out = console()
    if not plan.changes:
        out.print(f"no jobs to install in {plan.target.label}")
    for c in plan.changes:
        detail = f" ({', '.join(c.fields)})" if c.fields else ""
        out.print(f"  [{ACTION_STYLE[c.action]}]{c.action:<9}[/] {c.name}{detail}", markup=True)
    counts = {a: sum(1 for c in plan.changes if c.action == a) for a in ("add", "change", "remove", "unchanged")}
    verdict = "in sync" if not plan.pending else "apply would change the crontab"
    out.print(f"{counts['add']} to add, {counts['change']} to change, {counts['remove']} to remove, "
              f"{counts['unchanged']} unchanged: {verdict}")


def diff(text: str) -> None:
    out = console()
    if not out.is_terminal:
        sys.stdout.write(text)
        return
    from rich.text import Text

    for line in text.splitlines():
        style = "bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+") else \
            "red" if line.startswith("-") else "cyan" if line.startswith("@@") else ""
        out.print(Text(line, style=style))


def apply_summary(outcome: Any) -> None:
    plan = outcome.plan
    counts = {a: sum(1 for c in plan.changes if c.action == a) for a in ("add", "change", "remove", "unchanged")}
    out = console()
    for c in plan.changes:
        if c.action != "unchanged":
            detail = f" ({', '.join(c.fields)})" if c.fields else ""
            out.print(f"  [{ACTION_STYLE[c.action]}]{c.action:<9}[/] {c.name}{detail}", markup=True)
    if outcome.wrote:
        out.print(f"applied to {plan.target.label}: {counts['add']} added, {counts['change']} changed, "
                  f"{counts['remove']} removed, {counts['unchanged']} unchanged; previous crontab saved "
                  f"as {outcome.backup}")
    else:
        out.print(f"{plan.target.label} already in sync: {counts['unchanged']} jobs unchanged, nothing written")


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
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("JOB", "SCHEDULE", "NEXT RUN", "STATE", "LAST RUN", "RESULT", "DURATION", "FAILS"):
        table.add_column(col, justify="right" if col in ("FAILS", "DURATION") else "left")
    for s in rows:
        last = s.last_run
        schedule = Text(s.schedule or "-")
        if s.schedule_description:
            schedule.append(f"\n{s.schedule_description}", style="dim")
        nxt = s.next_run.strftime("%Y-%m-%d %H:%M %Z") if s.next_run else "-"
        result = "-"
        if last is not None:
            code = "" if last["exit_code"] is None else f" ({last['exit_code']})"
            result = status_text(last["status"])
            result.append(code)
        state = Text(s.state, style=STATE_STYLE.get(s.state, ""))
        for flag, style in (("paused", "yellow"), ("late", "yellow"), ("missed", "bold red")):
            if getattr(s, flag):
                state.append(f" {flag}", style=style)
        table.add_row(
            s.name, schedule, nxt, state,
            local(last["started_at"]) if last is not None else "never", result,
            duration(last["duration_s"]) if last is not None else "-",
            Text(str(s.consecutive_failures), style="red" if s.consecutive_failures else ""),
        )
    console().print(table)
