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
        slots: list[float]
        parent: tuple[int, str, str, float | None] | None
        chain: bool
        request: int | None
        params: str | None
else:
    Args = dict

# The wrapper's exit codes besides the job's own (errors.ExitCode names 75, 124
# and 125 too; importing its enum would cost every scheduled run ~2 ms).
EX_SKIPPED = 75
EX_TIMEOUT = 124
EX_JOBCTL = 125
EX_CANNOT_EXEC = 126
EX_NOT_FOUND = 127

USAGE = ("usage: python -m jobctl.runner [--state-dir DIR] [--scheduled | --timer | --catch-up-run TIME[,TIME...]"
         " | --backfill-run TIME | --chain-run RUN_ID,JOB,STATUS[,TIME[,TIME]] | --request ID] "
         "[--quiet] [--no-chain] [--params JSON] [--definition-stdin] [--report-fd N] NAME\n"
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


def untrusted_part(path: str, _depth: int = 0) -> str | None:
    """The first place on the way to ``path`` that a user other than root or us could change; None when none.

    A line that names a file runs whatever that file holds, as the line's
    user (root for /etc/cron.d/jobctl).  Every component is looked at with
    lstat, as the kernel walks it: a directory or file must be root's or
    ours and writable by no one else (others may add to a sticky directory
    such as /tmp, but not replace what it holds of root's or ours); a
    symbolic link must be root's or ours too, and what it points to passes
    the same walk.  stat(2) alone follows links, and a link in /tmp owned
    by another user then passed for the root-owned directory it names.
    A path that does not exist is its own answer.
    """
    import stat

    if _depth > 40:  # the kernel's own bound on links followed (ELOOP)
        return path
    me = os.geteuid()
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)
    current = "/"
    for part in ["", *path.split("/")]:
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)
            continue
        here = os.path.join(current, part) if part else "/"
        try:
            st = os.lstat(here)
        except OSError:
            return here
        if st.st_uid not in (0, me):
            return here
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.path.join(current, os.readlink(here))
            except OSError:
                return here
            bad = untrusted_part(target, _depth + 1)
            if bad is not None:
                return bad
            current = os.path.realpath(target)
        else:
            if st.st_mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & 0o1000):
                return here
            current = here
    return None


def _module_start(python: str, start: str) -> str | None:
    """The start.py of the package ``python -I -m jobctl.runner`` loads: ``start`` (ours) or another; None if none.

    apply run as ``python -m jobctl`` from a checkout, or with a checkout on
    PYTHONPATH, imports that checkout's jobctl, while -I drops both (and the
    user's site-packages): a line written the module way runs the installed
    package.  A line naming the checkout's start.py would make cron follow
    whatever the working tree holds, and which CLI last ran apply would
    change every line.  Where our package was found through a place -I
    drops, the interpreter is asked which package it loads (~25 ms, once);
    otherwise (the installed ``jobctl``) it is ours.
    """
    import site

    parent = os.path.realpath(os.path.dirname(os.path.dirname(os.path.dirname(start))))
    dropped = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    if sys.path and sys.path[0]:
        dropped.append(sys.path[0])  # the script's directory, or the current one under -m
    if site.ENABLE_USER_SITE and site.USER_SITE:
        dropped.append(site.USER_SITE)
    if parent not in {os.path.realpath(p) for p in dropped if p}:
        return start
    import subprocess

    try:
        done = subprocess.run([python, "-I", "-c", "import jobctl.runner.cmdline as c; print(c.start_script())"],
                              cwd="/", stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    found = done.stdout.strip()
    return found if done.returncode == 0 and found.startswith("/") else None


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
    line (untrusted_part), the module form ``PYTHON -I -m jobctl.runner``;
    the script is always the one of the package that form would run
    (_module_start).
    """
    global _interpreter_argv
    if _interpreter_argv is None:  # once: apply renders a line per job, and the check walks the path
        python = _interpreter()
        start = start_script()
        # under -S this is a wrapper that apply's line started by this very script: no need to ask again
        named = start if sys.flags.no_site else _module_start(python, start)
        if named is not None and (not os.path.isfile(named) or untrusted_part(named) is not None):
            named = None
        _interpreter_argv = [python, "-I", "-S", named] if named is not None else [python, *MODULE_FORM]
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


def catch_up_run_argv(state: str, name: str, scheduled_for: float, *more: float) -> list[str]:
    """The run the catch-up pass starts for a job that missed the minute ``scheduled_for``.

    With ``more`` (catch_up_mode each), one wrapper makes up for each of the
    minutes in turn, oldest first: ``--catch-up-run T1,T2,...``.
    """
    times = ",".join(str(int(t)) for t in (scheduled_for, *more))
    return [*interpreter_argv(), "--state-dir", state, "--catch-up-run", times, name]


def backfill_run_argv(state: str, name: str, scheduled_for: float) -> list[str]:
    """One slot of ``jobctl backfill``: a run of the job for the scheduled time ``scheduled_for``."""
    return [*interpreter_argv(), "--state-dir", state, "--backfill-run", str(int(scheduled_for)), "--quiet", name]


def chain_run_argv(state: str, name: str, parent_id: int, parent_job: str, parent_status: str,
                   scheduled_for: float | None, slot_start: float | None = None) -> list[str]:
    """A run of ``name`` that run ``parent_id`` of ``parent_job`` started through then/on_failure (trigger chain).

    The parent's job and status ride on the command line as well as in the
    run log: a child whose run log cannot be read still knows them.  The
    parent's scheduled time and slot, when it had them, are the child's too.
    """
    when = "" if scheduled_for is None else f",{int(scheduled_for)}"
    if scheduled_for is not None and slot_start is not None:
        when += f",{int(slot_start)}"
    return [*interpreter_argv(), "--state-dir", state, "--chain-run", f"{parent_id},{parent_job},{parent_status}{when}",
            "--quiet", name]


def _chain_arg(text: str) -> tuple[int, str, str, float | None, float | None] | None:
    """RUN_ID,JOB,STATUS[,SCHEDULED_FOR[,SLOT_START]] (chain_run_argv)."""
    parts = text.split(",")
    if not 3 <= len(parts) <= 5 or not parts[0].isdigit() or not parts[1] or not parts[2].isalpha():
        return None
    if not all(p.isdigit() for p in parts[3:]):
        return None
    times = [float(p) for p in parts[3:]] + [None, None]
    return int(parts[0]), parts[1], parts[2], times[0], times[1]


def request_run_argv(state: str, name: str, request_id: int = 0) -> list[str]:
    """The wrapper that runs a job's requests (jobctl submit: ``request_id``; the pass: 0, whatever is due)."""
    return [*interpreter_argv(), "--state-dir", state, "--request", str(int(request_id)), "--quiet", name]


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
        # manual, schedule (cron), timer (systemd), catchup (a catch-up run), backfill (one slot) or catch-up-pass
        "mode": "manual",
        # the run log's trigger of the first attempt
        "trigger": "manual",
        # copy the job's output to stdout as it comes (and say how it went on a terminal)
        "stream": True,
        "from_stdin": False,
        "report_fd": -1,
        # the minute a catch-up run makes up for (a scheduled run's is the minute it starts in)
        "scheduled_for": None,
        # every minute a catch-up run makes up for, in order (catch_up_mode each: more than one)
        "slots": [],
        # (run id, job, status) of the run whose then/on_failure started this one (mode chain)
        "parent": None,
        # start the job's then/on_failure jobs after the run (--no-chain: a systemd unit's OnSuccess= does)
        "chain": True,
        # run the job's requests: this one first (0: whatever is due), then any other due
        "request": None,
        # the parameters of a detached `jobctl run -p` (JSON), checked by the wrapper
        "params": None,
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
        elif arg == "--catch-up-run" and rest and rest[0].replace(",", "").isdigit() and "" not in rest[0].split(","):
            out["trigger"], out["stream"], out["mode"] = "catchup", False, "catchup"
            out["slots"] = [float(t) for t in rest.pop(0).split(",")]
            out["scheduled_for"] = out["slots"][0]
        elif arg == "--backfill-run" and rest and rest[0].isdigit():
            out["trigger"], out["stream"], out["mode"] = "backfill", False, "backfill"
            out["scheduled_for"] = float(rest.pop(0))
        elif arg == "--chain-run" and rest and (chain := _chain_arg(rest[0])) is not None:
            rest.pop(0)
            out["trigger"], out["stream"], out["mode"] = "chain", False, "chain"
            out["parent"] = (chain[0], chain[1], chain[2], chain[4])
            out["scheduled_for"] = chain[3]
        elif arg == "--no-chain":
            out["chain"] = False
        elif arg == "--request" and rest and rest[0].isdigit():
            out["trigger"], out["stream"], out["mode"] = "request", False, "request"
            out["request"] = int(rest.pop(0))
        elif arg == "--params" and rest:
            out["params"] = rest.pop(0)
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
