"""Durations and sizes as job files write them: ``1h30m``, ``512KiB``.

A foundation: the job model (``jobs/spec.py``) and the schedule parser
(``@every 15m`` in ``jobs/schedule.py``) both read durations, and the read
commands and exports write them back; none of those should have to import
the others for it.  Standard library only.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing costs milliseconds a caller on the wrapper's path need not pay
if TYPE_CHECKING:
    from typing import Any

DAY = 86400
#: the grammar of a duration as text, anchored at both ends (the JSON Schema takes it as it is)
DURATION_PATTERN = r"^(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?$"
#: the grammar of a size as text (bytes with an optional unit)
SIZE_PATTERN = r"^\d+\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)?$"
SIZE_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3,
              "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
#: no duration or size is written with more characters; longer text is not one
#: (and int() of thousands of digits is slow, then refused by Python itself)
MAX_NUMBER_TEXT = 64

# the same grammars, with the numbers captured
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")
_SIZE_RE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)?\Z")


def show(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for a message, shortened: a 1 MiB value must not make a 1 MiB line."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 7] + "..." + text[-4:]
    return text


def parse_duration(value: Any) -> int:
    """``90s``, ``15m``, ``2h``, ``1h30m``, ``1d`` or an integer of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 15m, 2h or 1h30m")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; durations are 0 or more")
        return value
    if isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT:
        m = _DURATION_RE.match(value.strip())
        if m and any(m.groups()):
            d, h, mi, s = (int(g or 0) for g in m.groups())
            return ((d * 24 + h) * 60 + mi) * 60 + s
    raise ValueError(f"{show(value)} is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)")


def format_duration(seconds: float) -> str:
    """Inverse of parse_duration for whole seconds: 5400 → 1h30m."""
    total = int(seconds)
    if total == 0:
        return "0s"
    out = ""
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out


def parse_size(value: Any) -> int:
    """``512KiB``, ``1MiB``, ``10MB`` or an integer of bytes → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size; write e.g. 512KiB or 1MiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; sizes are 0 or more")
        return value
    if isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT:
        m = _SIZE_RE.match(value.strip())
        if m:
            return int(m.group(1)) * SIZE_UNITS[m.group(2)]
    raise ValueError(f"{show(value)} is not a size; write e.g. 512KiB, 1MiB or 10MB (or whole bytes)")


def format_size(size: int) -> str:
    """Bytes in the largest binary unit that divides them: 1073741824 → 1GiB."""
    for unit in ("GiB", "MiB", "KiB"):
        if size and size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit}"
    return str(size)
