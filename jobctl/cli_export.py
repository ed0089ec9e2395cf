"""`jobctl export kubernetes|systemd` (placeholder until the export issue lands)."""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    """Add the export commands to the typer app."""
