"""Paused jobs: a flag file per job under STATE/paused/.

A file, not a row in the run log: the wrapper checks it with one stat() on
every scheduled run, and pausing must work even when the run log is broken.
Pausing never rewrites the crontab.
"""

from __future__ import annotations

import os
import time

from jobctl import paths


def is_paused(state: str, name: str) -> bool:
    return os.path.exists(paths.paused_file(state, name))


def pause(state: str, name: str) -> bool:
    """Pause a job; False when it already was."""
    os.makedirs(paths.paused_dir(state), mode=0o700, exist_ok=True)
    try:
        fd = os.open(paths.paused_file(state, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"paused at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} by uid {os.geteuid()}\n")
    return True


def resume(state: str, name: str) -> bool:
    """Resume a job; False when it was not paused."""
    try:
        os.unlink(paths.paused_file(state, name))
        return True
    except FileNotFoundError:
        return False
