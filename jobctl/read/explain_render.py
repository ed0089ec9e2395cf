"""Presentation of `jobctl show` and `jobctl why`: text through read/render's console, and the documented JSON.

The console is render.console(): plain text when stdout is not a terminal,
colours only on one and never under NO_COLOR (rich reads it).  Every text
jobctl writes here is ASCII; values from job files, paths and run reasons go
through render.printable (control characters escaped) and, where stdout
cannot encode them (a locale that is not UTF-8), as backslash escapes.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any

from jobctl import clock
from jobctl.read import explain, render
from jobctl.store import iso, run_record

REASON_STYLE = {
    "ran": "green", "paused": "yellow", "skipped-lock": "yellow", "skipped": "yellow", "dst-skipped": "cyan",
    "dst-doubled": "cyan", "not-due": "cyan", "future": "cyan", "pending": "cyan", "not-installed": "red",
    "outside-catch-up": "red", "cron-not-running": "red", "drifted": "red", "not-recorded": "red", "reboot": "cyan",
}
#: how wide the key column of `show` is
_KEY_WIDTH = 14


def _safe(text: str) -> str:
    """``text`` as stdout can write it: printable, and backslash escapes for what its encoding lacks."""
    text = render.printable(text)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    if text.isascii() or encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8mb4"):
        return text
    return text.encode(encoding, "backslashreplace").decode(encoding, "replace")


def _line(out: Any, text: str, style: str = "") -> None:
    out.print(render.cell(_safe(text), style))


def _offset_iso(u: datetime, zone_name: str | None) -> str:
    """ISO 8601 with the zone's offset, to the minute: 2026-03-29T03:00:00+02:00."""
    return clock.aware(u, clock.zone_of(zone_name)).replace(microsecond=0).isoformat()


# --- why

def why_json(w: explain.Why) -> dict[str, Any]:
    return {
        "job": w.job,
        "at": iso(w.at.timestamp()) if w.at is not None else None,
        "at_job_zone": _offset_iso(w.at, w.zone) if w.at is not None else None,
        "zone": w.zone,
        "wall": w.wall.strftime("%Y-%m-%dT%H:%M") if w.wall is not None else None,
        "verdict": w.verdict,
        "reason": w.reason,
        "due": w.due,
        "ran": w.ran,
        "runs": [run_record(r) for r in w.runs],
        "evidence": w.evidence,
    }


def why_text(w: explain.Why) -> None:
    out = render.console()
    style = REASON_STYLE.get(w.reason, "")
    if w.reason == "ran" and w.runs and w.runs[-1]["status"] not in ("succeeded", "running"):
        style = "red"
    _line(out, w.verdict, f"bold {style}".strip())
    for item in w.evidence:
        _line(out, f"  - {item}")


# --- show

def show_json(s: explain.Shown) -> dict[str, Any]:
    return {
        "name": s.name,
        "shown_from": s.shown_from,
        "source": s.source or None,
        "state": s.state,
        "changed": s.changed,
        "schedule": {"text": s.schedule_text, "cron": s.cron, "description": s.description,
                     "timezone": s.timezone},
        "definition": s.definition,
        "origins": {k: {"from": o.source, "path": o.path, "line": o.line, "column": o.column}
                    for k, o in s.origins.items()},
        "differences": [{"key": k, "applied": a, "file": b} for k, a, b in s.differences],
        "crontab": {"target": s.target, "line": s.line, "hash": s.installed_hash, "applied_hash": s.applied_hash,
                    "drift": s.drift},
        "applied_at": iso(s.applied_at),
        "paused": s.paused is not None,
        "paused_since": iso(s.paused[0]) if s.paused is not None else None,
        "next_runs": [{"utc": iso(t.timestamp()), "job_zone": _offset_iso(t, s.timezone),
                       "server_zone": _offset_iso(t, None)} for t in s.next_runs],
    }


def _row(out: Any, key: str, value: str, where: str = "", style: str = "") -> None:
    cell = render.cell(_safe(f"  {key:<{_KEY_WIDTH}}"))
    cell.append(_safe(value), style)
    if where:
        cell.append(_safe(f"   ({where})"), "dim")
    out.print(cell)


def show_text(s: explain.Shown) -> None:
    out = render.console()
    where = f"{s.source}" if s.source else "no source recorded"
    _line(out, f"{s.name}: from its {s.shown_from} ({where})", "bold")
    state_style = render.STATE_STYLE.get(s.state, "")
    changed = f" ({', '.join(s.changed)})" if s.changed else ""
    _line(out, f"state: {s.state}{changed}", state_style)
    if s.paused is not None:
        _line(out, f"paused since {explain.utc(s.paused[0])} (jobctl resume {s.name})", "yellow")

    _line(out, "")
    _line(out, "definition (defaults filled in; where each value comes from):", "bold")
    for key, value in s.definition.items():
        origin = s.origins.get(key)
        if key == "env" and isinstance(value, dict) and value:
            for var, text in value.items():
                o = s.origins.get(f"env.{var}") or origin
                _row(out, f"env.{var}", str(text), str(o) if o else "")
            continue
        shown = explain.format_value(key, value)
        if key == "schedule":
            shown = f"{value} ({s.description}" + (f", in {s.timezone})" if s.timezone else ")")
        _row(out, key, shown, str(origin) if origin else "", "dim" if origin and origin.source == "default" else "")

    _line(out, "")
    _line(out, f"crontab ({s.target}):", "bold")
    if s.line:
        _line(out, f"  {s.line}")
    else:
        _line(out, "  no line installed" + ("" if s.definition.get("enabled", True) else
                                             " (enabled: false: a disabled job is not installed)"), "yellow")
    if s.applied_hash:
        _line(out, f"  applied {explain.utc(s.applied_at)}, definition hash {s.applied_hash}"
              + (f", installed line's {s.installed_hash}" if s.installed_hash and s.installed_hash != s.applied_hash
                 else ""))
    if s.drift:
        _line(out, f"  drifted: {s.drift}; jobctl apply rewrites it", "red")

    if s.differences:
        _line(out, "")
        _line(out, "job file vs applied (jobctl apply installs the job file's):", "bold")
        for key, old, new in s.differences:
            _row(out, key, f"applied {explain.format_value(key, old)}  ->  file {explain.format_value(key, new)}",
                 style="yellow")

    _line(out, "")
    if not s.next_runs:
        _line(out, "next runs: none" + (" (@reboot: at cron's start)" if s.cron == "@reboot" else
                                         " (not enabled)" if not s.definition.get("enabled", True) else ""))
        return
    server = f"the server's zone ({datetime.now(timezone.utc).astimezone().tzname()})"
    if s.timezone is None:  # the job's zone is the server's: one column
        _line(out, f"next {len(s.next_runs)} runs, in {server}:", "bold")
        for t in s.next_runs:
            _line(out, f"  {explain.in_zone(t, None)}")
        return
    _line(out, f"next {len(s.next_runs)} runs:", "bold")
    width = max(len(s.timezone), 22)
    _line(out, f"  {s.timezone:<{width}}  {server}", "dim")
    for t in s.next_runs:
        _line(out, f"  {explain.in_zone(t, clock.zone_of(s.timezone)):<{width}}  {explain.in_zone(t, None)}")
