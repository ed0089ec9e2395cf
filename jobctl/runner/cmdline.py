"""The wrapper's command line, built and parsed in one place, and its exit codes.

A crontab line, a systemd unit, ``run --detach`` and the benchmarks build it
here without importing the wrapper itself; the wrapper parses it here
(``parse``), so what is written and what is read sit side by side.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from typing import TypedDict

    class Args(TypedDict):
        """The wrapper's arguments, parsed (a plain dict at run time: a class costs every start its creation)."""

        state: str
        name: str | None
        mode: str
        trigger: str
        stream: bool
        from_stdin: bool
        report_fd: int
        scheduled_for: float | None
else:
    Args = dict

# The wrapper's exit codes besides the job's own (errors.ExitCode names 75, 124
# and 125 too; importing its enum would cost every scheduled run ~2 ms).
EX_SKIPPED = 75
EX_TIMEOUT = 124
EX_JOBCTL = 125
EX_CANNOT_EXEC = 126
EX_NOT_FOUND = 127

USAGE = ("usage: python -m jobctl.runner [--state-dir DIR] [--scheduled | --timer | --catch-up-run TIME] "
         "[--quiet] [--definition-stdin] [--report-fd N] NAME\n"
         "       python -m jobctl.runner [--state-dir DIR] --catch-up")


#: The crontab line of earlier releases (and the line when start.py is not safe to name): the wrapper
#: as a module.  Such lines keep working; plan and status show them as changed until apply rewrites them.
MODULE_FORM = ("-I", "-m", "jobctl.runner")


def start_script() -> str:
    """The wrapper's entry script, run by its path: ``PYTHON -I -S …/jobctl/runner/start.py``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "start.py")


def _interpreter() -> str:
    """The interpreter a line names: an absolute, stable path.

    Cron's PATH is /usr/bin:/bin, so the path is absolute; it is the
    environment's ``bin/python3`` rather than sys.executable, which depends on
    how jobctl was started (python, python3, python3.11) and would make apply
    rewrite every line.  Under -S (the wrapper itself, starting a catch-up
    run) sys.prefix is the base interpreter's, not the venv's: the wrapper
    reuses the interpreter its own line named, which is sys.executable.
    """
    if sys.flags.no_site:
        return sys.executable
    python = os.path.join(sys.prefix, "bin", "python3")
    if not os.access(python, os.X_OK):
        python = sys.executable
    return python


def _safe_to_name(path: str) -> bool:
    """Whether a line may run the file at ``path``: it and every directory above it root's or ours, and writable
    by no one else (a sticky directory excepted).

    A line that names a file runs whatever that file holds, as the line's
    user (root for /etc/cron.d/jobctl).  With ``-m`` the interpreter finds
    the package on its own sys.path; a path baked into the line must be no
    easier to replace than that, even when apply ran from an unusual jobctl
    (a checkout on PYTHONPATH).  A path that fails this gets the module form.
    """
    me = os.geteuid()
    try:
        # the directories of the path as written hold its symbolic links; those of the real path, the file
        for walk in {path, os.path.realpath(path)}:
            while True:
                st = os.stat(walk)
                # others may write a sticky directory (/tmp) but not replace what it holds of root's or ours
                if st.st_uid not in (0, me) or (st.st_mode & 0o022 and not st.st_mode & 0o1000):
                    return False
                parent = os.path.dirname(walk)
                if parent == walk:
                    break
                walk = parent
    except OSError:
        return False
    return True


#: interpreter_argv's answer, worked out once per process
_interpreter_argv: list[str] | None = None


def interpreter_argv() -> list[str]:
    """``PYTHON -I -S …/jobctl/runner/start.py``: how every line, timer, catch-up and detached run starts the wrapper.

    Half of a scheduled run used to be the interpreter starting up: ``-m``
    imports runpy (importlib.util, contextlib: ~2 ms) and ``site`` reads
    every .pth file of the environment (~3 ms).  The entry script by its
    path needs neither: -S skips site, and the script puts the directory
    holding the jobctl package on sys.path itself.  -I keeps the operator's
    PYTHON* variables, user site-packages and the script's own directory out
    of scheduled runs.  When the script's path is not safe to write into a
    line (_safe_to_name), the module form ``PYTHON -I -m jobctl.runner``.
    """
    global _interpreter_argv
    if _interpreter_argv is None:  # once: apply renders a line per job, and the check walks the path
        python = _interpreter()
        start = start_script()
        _interpreter_argv = [python, "-I", "-S", start] if _safe_to_name(start) else [python, *MODULE_FORM]
    return list(_interpreter_argv)


def is_module_form(argv: list[str]) -> bool:
    """Whether a wrapper command starts the wrapper as earlier releases wrote it (``-I -m jobctl.runner``)."""
    return tuple(argv[1:4]) == MODULE_FORM


def wrapper_argv(state: str, name: str, timer: bool = False) -> list[str]:
    """The command a crontab line (or, with ``timer``, a systemd unit) runs for a job."""
    return [*interpreter_argv(), "--timer" if timer else "--scheduled", "--state-dir", state, name]


def catch_up_pass_argv(state: str) -> list[str]:
    """The command of the catch-up entries (@reboot and every minute)."""
    return [*interpreter_argv(), "--catch-up", "--state-dir", state]


def catch_up_run_argv(state: str, name: str, scheduled_for: float) -> list[str]:
    """The run the catch-up pass starts for a job that missed the minute ``scheduled_for``."""
    return [*interpreter_argv(), "--state-dir", state, "--catch-up-run", str(int(scheduled_for)), name]


def detached_argv(state: str, name: str, report_fd: int) -> list[str]:
    """``jobctl run --detach``: the definition comes on stdin, the run id goes to ``report_fd``.

    The same interpreter and ``-I`` as a crontab line: the operator's PYTHON*
    variables do not reach a run that may go on as root after the shell is gone.
    """
    return [*interpreter_argv(), "--state-dir", state, "--definition-stdin", "--quiet",
            "--report-fd", str(report_fd), name]


def parse(argv: list[str]) -> Args | None:
    """The wrapper's arguments; None when they do not parse (the caller prints USAGE)."""
    rest = list(argv)
    out: Args = {
        # --state-dir, else $JOBCTL_STATE_DIR, else "" (then paths.state_dir())
        "state": os.environ.get("JOBCTL_STATE_DIR") or "",
        "name": None,
        # manual, schedule (cron), timer (systemd), catchup (one catch-up run) or catch-up-pass
        "mode": "manual",
        # the run log's trigger of the first attempt
        "trigger": "manual",
        # copy the job's output to stdout as it comes (and say how it went on a terminal)
        "stream": True,
        "from_stdin": False,
        "report_fd": -1,
        # the minute a catch-up run makes up for (a scheduled run's is the minute it starts in)
        "scheduled_for": None,
    }
    while rest:
        arg = rest.pop(0)
        if arg == "--state-dir" and rest:
            out["state"] = rest.pop(0)
        elif arg in ("--scheduled", "--timer"):
            out["trigger"], out["stream"] = "schedule", False
            out["mode"] = arg[2:].replace("scheduled", "schedule")
        elif arg == "--catch-up":
            out["mode"] = "catch-up-pass"
        elif arg == "--catch-up-run" and rest and rest[0].isdigit():
            out["trigger"], out["stream"], out["mode"] = "catchup", False, "catchup"
            out["scheduled_for"] = float(rest.pop(0))
        elif arg == "--quiet":
            out["stream"] = False
        elif arg == "--definition-stdin":
            out["from_stdin"] = True
        elif arg == "--report-fd" and rest:
            out["report_fd"] = int(rest.pop(0))
        elif not arg.startswith("-") and out["name"] is None:
            out["name"] = arg
        else:
            return None
    return out
