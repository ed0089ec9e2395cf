"""Atomic file replacement: a temporary file in the same directory, fsync, rename.

Readers (cron, node_exporter, the wrapper) see the old file or the new one,
never half of one; a failure leaves the old file and no temporary behind.
"""

from __future__ import annotations

import os
import tempfile


def replace_atomically(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with permissions ``mode``; raises OSError (nothing changed then)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
