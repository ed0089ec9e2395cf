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
