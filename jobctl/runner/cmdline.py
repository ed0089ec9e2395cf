"""The wrapper's command line, built and parsed in one place.

A crontab line, a systemd unit, ``run --detach`` and the benchmarks build it
here without importing the wrapper itself.
"""

from __future__ import annotations

import os
import sys


def interpreter_argv() -> list[str]:
    """``PYTHON -I -m jobctl.runner`` with the interpreter named by a stable absolute path.

    Cron's PATH is /usr/bin:/bin, so the path is absolute; it is the
    environment's ``bin/python3`` rather than sys.executable, which depends on
    how jobctl was started (python, python3, python3.11) and would make apply
    rewrite every line.  -I keeps the operator's PYTHON* variables and user
    site-packages out of scheduled runs.
    """
    python = os.path.join(sys.prefix, "bin", "python3")
    if not os.access(python, os.X_OK):
        python = sys.executable
    return [python, "-I", "-m", "jobctl.runner"]


def wrapper_argv(state: str, name: str, timer: bool = False) -> list[str]:
    """The command a crontab line (or, with ``timer``, a systemd unit) runs for a job."""
    return [*interpreter_argv(), "--timer" if timer else "--scheduled", "--state-dir", state, name]
