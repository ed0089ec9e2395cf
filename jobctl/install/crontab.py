"""The managed block in a crontab: render, plan, apply, uninstall.

jobctl owns exactly one block per state directory::

    # BEGIN jobctl 3f2a9c1e ...
    <one line per enabled job>
    # END jobctl 3f2a9c1e

and treats every other byte of the crontab as opaque text: it is split around
the block, never parsed, and joined back unchanged.  python-crontab's full
round trip is not byte-preserving (it reorders comments, rewrites schedules,
comments out lines it cannot parse), so it is used only to render our own
entry lines, where it is strong: validation and ``%`` escaping.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from jobctl import applied, paths
from jobctl.errors import EnvironmentProblem, ExitCode, InvalidJobs, JobctlError, Problem
from jobctl.files import Batch, remove_stale_temps, replace_atomically, unlink_quietly
from jobctl.install.compile import definition, definition_hash
from jobctl.jobs.spec import JobSpec
from jobctl.runner import cmdline, host

BEGIN = "# BEGIN jobctl"
END = "# END jobctl"
#: on the BEGIN line when the crontab had no final newline and apply added one:
#: ``eol-added=HASH``, HASH being _eol_hash of the text above the block as apply left it
EOL_ADDED = "eol-added"
#: on the BEGIN line when there was no crontab at all before apply: uninstall
#: (or an apply that removes every job) then removes the crontab again
#: (crontab -r) instead of leaving an empty one behind
CREATED = "crontab-created"
BEGIN_TAIL = "-- managed by jobctl apply; edit the job files, not this block"
# The markers are whole lines of exactly the form join() writes, and nothing
# else: a foreign comment that starts the same way and quotes the block id
# ("# END jobctl 3f2a9c1e, old copy") is text like any other.  A bare
# "eol-added" (no hash) is what jobctl wrote before the hash existed.
_BEGIN_LINE = re.compile(rf"{BEGIN} (?P<id>[0-9a-f]{{8}})(?: {EOL_ADDED}(?:=(?P<eol>[0-9a-f]{{12}}))?)?"
                         rf"(?P<created> {CREATED})? state=[^\n]* {re.escape(BEGIN_TAIL)}\Z")
_END_LINE = re.compile(rf"{END} (?P<id>[0-9a-f]{{8}})\Z")
# Job names cannot start with "_": internal entries (the catch-up pass) use that.
_MARKER = re.compile(r"# jobctl:(?P<name>[a-z0-9_][a-z0-9_.-]*) (?P<hash>[0-9a-f]{12})\s*$")
CATCH_UP_ENTRIES = {"_catch-up-boot": "@reboot", "_catch-up": "* * * * *"}
BACKUPS_KEPT = 20


class CrontabConflict(JobctlError):
    code = ExitCode.NOT_OK


def instance_id(state: str) -> str:
    """Short id of a state directory: two setups for one user never share a block."""
    return hashlib.sha256(os.path.realpath(state).encode()).hexdigest()[:8]


# --- targets -----------------------------------------------------------------

class Target:
    """Where the crontab text lives.  ``system`` selects the cron.d format (a user field)."""

    system = False
    label = ""
    #: set by read(): there was no crontab at all (crontab -l: "no crontab for", or no file)
    absent = False

    def read(self) -> str:
        raise NotImplementedError

    def write(self, text: str) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """Leave no crontab at all, as before the first apply."""
        raise NotImplementedError


class UserCrontab(Target):
    """The invoking user's crontab, through the crontab(1) command."""

    def __init__(self) -> None:
        self.command = shutil.which("crontab") or ""
        import pwd

        self.label = f"the crontab of {pwd.getpwuid(os.geteuid()).pw_name}"

    def _need(self) -> str:
        if not self.command:
            raise EnvironmentProblem("no crontab command on this host; install cron (apt-get install cron) "
                                     "or set JOBCTL_CRONTAB to manage a crontab file")
        return self.command

    def read(self) -> str:
        proc = subprocess.run([self._need(), "-l"], capture_output=True)
        self.absent = False
        if proc.returncode == 0:
            return proc.stdout.decode("utf-8", "surrogateescape")
        err = proc.stderr.decode(errors="replace").strip()
        if "no crontab for" in err:
            self.absent = True
            return ""
        raise EnvironmentProblem(f"crontab -l failed: {err or f'exit status {proc.returncode}'}")

    def write(self, text: str) -> None:
        # On stdin ("crontab -"): a temporary file would outlive a killed apply.
        proc = subprocess.run([self._need(), "-"], input=text.encode("utf-8", "surrogateescape"),
                              capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise EnvironmentProblem(f"crontab refused the new table, nothing changed: {err}")

    def remove(self) -> None:
        proc = subprocess.run([self._need(), "-r"], capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            if "no crontab for" not in err:
                raise EnvironmentProblem(f"crontab -r failed, nothing changed: {err or proc.returncode}")


class FileCrontab(Target):
    """A crontab file (JOBCTL_CRONTAB, or /etc/cron.d/jobctl with --system)."""

    def __init__(self, path: str, system: bool) -> None:
        self.path = path
        self.system = system
        self.label = path

    def read(self) -> str:
        self.absent = False
        try:
            with open(self.path, "rb") as fh:
                return fh.read().decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            self.absent = True
            return ""
        except OSError as exc:
            raise EnvironmentProblem(f"cannot read {self.path}: {exc.strerror}") from None

    def write(self, text: str) -> None:
        if self.system and not text:
            # /etc/cron.d/jobctl is jobctl's own file: an empty one is removed, not left behind.
            self.remove()
            return
        try:
            mode = os.stat(self.path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644 if self.system else 0o600
        try:
            replace_atomically(self.path, text.encode("utf-8", "surrogateescape"), 0o644 if self.system else mode)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write {self.path}: {exc.strerror}; nothing was changed") from None
        if self.system:
            self.verify()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise EnvironmentProblem(f"cannot remove {self.path}: {exc.strerror}; nothing was changed") from None

    def verify(self) -> None:
        """cron(8) silently ignores a cron.d file that breaks any of these rules."""
        st = os.stat(self.path)
        problems = []
        if st.st_mode & 0o7777 != 0o644:
            problems.append(f"mode {st.st_mode & 0o7777:04o}, not 0644")
        if os.geteuid() == 0 and st.st_uid != 0:
            problems.append("not owned by root")
        with open(self.path, "rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):
            problems.append("no final newline")
        if "." in os.path.basename(self.path) and os.path.dirname(self.path) == "/etc/cron.d":
            problems.append("a dot in the file name")
        if problems:
            raise EnvironmentProblem(f"{self.path}: cron would ignore this file: {', '.join(problems)}")


def target(system: bool = False) -> Target:
    path = paths.crontab_file()
    if system:
        if os.geteuid() != 0 and not path:
            raise JobctlError("--system writes /etc/cron.d/jobctl and needs root", ExitCode.ENVIRONMENT)
        return FileCrontab(path or paths.SYSTEM_CRONTAB, system=True)
    if path:
        return FileCrontab(path, system=False)
    return UserCrontab()


# --- the block ---------------------------------------------------------------

@dataclass
class Entry:
    name: str
    #: the definition hash of the line's marker; OLDER_FORM appended when the line starts the wrapper the way an
    #: older jobctl wrote it, so that it matches no definition and the job shows as changed until apply
    hash: str
    line: str
    #: lines in the block carrying this job's marker (more than one: someone copied it)
    lines: int = 1
    #: lines in the block that run this job, whatever their marker says (not one: edited)
    runs: int = 1

    @property
    def tampered(self) -> bool:
        """Copied, or made to run another job, or run by another job's line: cron runs it otherwise."""
        return self.lines != 1 or self.runs != 1


#: the pseudo-entry for lines inside the block that jobctl did not write (no marker)
FOREIGN = "_foreign"

#: Appended to the hash of an entry whose line starts the wrapper through another interpreter line than
#: apply writes now (cmdline.interpreter_argv): an earlier release's ``python -I -m jobctl.runner``, a venv
#: re-created for another Python, another installed jobctl.  plan and status show the job as changed (a
#: new line, "(crontab line)"), not as edited, until apply rewrites it.
OLDER_FORM = "+module"

#: how a line jobctl wrote starts the wrapper, whichever interpreter and package it names
_WRAPPER_START = re.compile(r" -I -m jobctl\.runner | -I -S .*?/jobctl/runner/start\.py'? ")
#: today's interpreter line as _render quotes it, worked out once
_current_start: str | None = None


def _older_form(line: str) -> bool:
    """Whether ``line`` starts the wrapper another way than apply would write it now."""
    global _current_start
    if _current_start is None:
        import shlex

        _current_start = " " + " ".join(shlex.quote(a) for a in cmdline.interpreter_argv()).replace("%", "\\%") + " "
    return _current_start not in line and _WRAPPER_START.search(line) is not None


#: the blanks of shlex in POSIX mode
_SHLEX_BLANKS = re.compile(r"[ \t\r\n]+")


def _shell_words(line: str) -> list[str]:
    """``shlex.split(line, comments=True)``, without shlex for one line with no quote or backslash.

    Without those, shlex's words are the runs of non-blanks before the first
    ``#`` (outside quotes a ``#`` starts a comment, inside a word too, up to
    the end of the line); shlex took 0.18 s for the 1,000 lines of a `status`
    (tests/test_read_fast.py compares the two).  Raises ValueError as shlex does.
    """
    if "'" in line or '"' in line or "\\" in line or "\n" in line:
        import shlex

        return shlex.split(line, comments=True)
    return [word for word in _SHLEX_BLANKS.split(line.partition("#")[0]) if word]


def job_run_by(line: str) -> str | None:
    """The job a crontab line's wrapper command runs (its last word), or None for any other line.

    Both forms are the wrapper: ``…/jobctl/runner/start.py`` and, in lines
    an older jobctl wrote, ``-m jobctl.runner``.
    """
    if not ("jobctl.runner" in line or "/jobctl/runner/start.py" in line) \
            or not ("--scheduled" in line or "--timer" in line):
        return None
    try:
        words = _shell_words(line)
    except ValueError:
        return None
    return words[-1] if words else None


@dataclass
class Split:
    """A crontab as (text before our block, our block, text after it)."""

    before: str
    after: str
    entries: dict[str, Entry] = field(default_factory=dict)
    found: bool = False
    eol_added: bool = False
    #: there was no crontab before apply wrote the block (CREATED)
    created: bool = False


def _lines(text: str) -> list[str]:
    """The lines of a crontab as cron(8) sees them: split at "\\n" only, each with its newline.

    str.splitlines also splits at \\r, \\f, \\x1c, U+2028 ...; a marker hidden
    after one of those inside a foreign line must not count as a line.
    """
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _eol_hash(before: str) -> str:
    """Identifies the text above the block as apply left it (with the newline apply added)."""
    return hashlib.sha256(before.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def split(text: str, instance: str, label: str) -> Split:
    """The text around our block, byte for byte; the newline apply added is taken away again only if it is sure.

    When the crontab had no final newline, apply ended its last line before
    the block and recorded that on the BEGIN line with a hash of the text
    above the block.  The newline is apply's only while that text is exactly
    as apply left it: after any edit above the block (a line added just above
    it, say) the newline may end someone else's line, and it stays.  Keeping
    it is always safe (cron wants a final newline); taking away the wrong one
    would join two lines or leave the last one unterminated, which cron drops.
    """
    lines = _lines(text)
    begins, ends = [], []
    for i, line in enumerate(lines):
        bare = line[:-1] if line.endswith("\n") else line
        m = _BEGIN_LINE.match(bare)
        if m and m["id"] == instance:
            begins.append((i, m))
        m = _END_LINE.match(bare)
        if m and m["id"] == instance:
            ends.append(i)
    if not begins and not ends:
        return Split(before=text, after="")
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0][0]:
        raise JobctlError(
            f"{label}: jobctl's block {instance} is damaged ({len(begins)} BEGIN and {len(ends)} END lines); "
            "fix it by hand (keep one BEGIN ... END pair or delete both), then run jobctl apply",
            ExitCode.ENVIRONMENT,
        )
    (b, begin), e = begins[0], ends[0]
    result = Split(before="".join(lines[:b]), after="".join(lines[e + 1:]), found=True,
                   created=bool(begin["created"]))
    if begin["eol"] and result.before.endswith("\n") and _eol_hash(result.before) == begin["eol"]:
        result.before = result.before[:-1]
        result.eol_added = True
    runs: dict[str, int] = {}
    foreign: list[str] = []
    for line in lines[b + 1:e]:
        bare = line.rstrip("\n")
        m = _MARKER.search(line)
        if m:
            seen = result.entries.get(m["name"])
            digest = m["hash"] + OLDER_FORM if _older_form(bare) else m["hash"]
            result.entries[m["name"]] = Entry(m["name"], digest, bare, (seen.lines + 1) if seen else 1)
        elif bare.strip() and not bare.lstrip().startswith("#"):
            foreign.append(bare)
        target = job_run_by(bare)
        if target is not None:
            runs[target] = runs.get(target, 0) + 1
    for entry in result.entries.values():
        if not entry.name.startswith("_"):
            entry.runs = runs.get(entry.name, 0)
    if foreign:
        result.entries[FOREIGN] = Entry(FOREIGN, "", "\n".join(foreign), len(foreign), 0)
    return result


def join(parts: Split, instance: str, state: str, lines: list[str]) -> str:
    """Put the block back where it was (or at the end); no lines → no block at all.

    Every byte of ``parts.before`` and ``parts.after`` is kept; the one thing
    added is a newline ending a last line that had none, recorded on the
    BEGIN line (see split).  Without a block, that newline goes again -- unless
    text follows the block, whose first line it then separates.
    """
    if not lines:
        if parts.eol_added and parts.after:
            return parts.before + "\n" + parts.after
        return parts.before + parts.after
    before = parts.before
    flag = ""
    if before and not before.endswith("\n"):
        before += "\n"
        flag = f" {EOL_ADDED}={_eol_hash(before)}"
    if parts.created:
        flag += f" {CREATED}"
    block = (f"{BEGIN} {instance}{flag} state={state} {BEGIN_TAIL}\n"
             + "".join(line + "\n" for line in lines)
             + f"{END} {instance}\n")
    return before + block + parts.after


def cron_schedule(defn: dict) -> str:
    """What goes into the crontab for a job: its schedule, or a superset for a time zone.

    Debian's cron ignores CRON_TZ, so a job with a timezone wakes the wrapper
    on every minute it could be due (in the system's time) and the wrapper
    decides (clock.due).
    """
    if not defn.get("timezone") or defn["cron"] == "@reboot":
        return defn["cron"]
    from datetime import datetime, timezone

    from jobctl import clock

    minutes = clock.superset_minutes(defn["fields"], defn["timezone"], datetime.now(timezone.utc))
    return f"{','.join(map(str, minutes))} * * * *"


def _render(schedule: str, argv: list[str], marker: str, system: bool) -> str:
    """One crontab line, written by hand from jobctl's own canonical schedule.

    python-crontab's setall()/render() reorders lists and rewrites fields
    (``7-7`` became ``0,*``, a day range became ``@monthly``), so cron ran
    something other than what was validated; the schedule here is
    schedule.canonical's text, which Debian's cron reads to the same sets.
    """
    import shlex

    # cron.d lines run as root; the wrapper drops to the job's user itself, so
    # the run log and locks stay root-owned and private (see ARCHITECTURE.md).
    line = f"{schedule} {'root ' if system else ''}{' '.join(shlex.quote(a) for a in argv)} # {marker}"
    if any(ord(c) < 32 or ord(c) == 127 for c in line):
        # a newline would end the entry and start another (a path is the only way in)
        raise JobctlError(f"refusing to write a crontab line with a control character: {line!r}",
                          ExitCode.ENVIRONMENT)
    # cron turns an unescaped % into a newline and feeds the rest to stdin
    return line.replace("%", "\\%")


def render_line(defn: dict, state: str, system: bool) -> str:
    """One crontab entry: schedule, [user,] the wrapper command, a marker comment."""
    return _render(cron_schedule(defn), cmdline.wrapper_argv(state, defn["name"]),
                   f"jobctl:{defn['name']} {definition_hash(defn)}", system)


def needs_pass(defn: dict) -> bool:
    """Whether a job needs the every-minute pass: it has catch_up, or notifies on overdue or missed."""
    notify = defn.get("notify")
    when = notify.get("when") if isinstance(notify, dict) else None
    return bool(defn.get("catch_up")) or (isinstance(when, list) and any(e in when for e in applied.PASS_EVENTS))


def requests_pending(state: str) -> bool:
    """Whether the run log holds a request still to run (queued or running): the pass must stay installed."""
    import sqlite3

    from jobctl import store

    path = paths.runs_db(state)
    if not os.path.exists(path):
        return False
    try:
        log = store.connect(path, create=False, build_indexes=False)
    except (sqlite3.Error, OSError):
        return False
    try:
        return log.pending_requests() > 0
    except sqlite3.Error:
        return False
    finally:
        log.close()


def _system_format(parts: Split) -> bool:
    """Whether the block's lines name a user after the schedule (/etc/cron.d) or not (a user's crontab).

    Read from the lines themselves: $JOBCTL_CRONTAB names one file for both.
    """
    for name, entry in parts.entries.items():
        words = entry.line.split()
        if name == FOREIGN or not words:
            continue
        n = 1 if words[0].startswith("@") else 5
        if len(words) > n:
            return not words[n].startswith("/")
    return False


def ensure_pass(state: str, targets: list[Target]) -> str:
    """Add the pass lines to jobctl's block for ``state`` when it lacks them (a request waits).

    "added", "present", or "no block" (jobctl was never applied to any of the targets).

    The first of ``targets`` holding the block is changed, under apply's lock,
    only by inserting the two lines before its END line: everything else stays
    byte for byte.  The next apply keeps them while a request is pending.
    """
    instance = instance_id(state)
    with apply_lock(state):
        for tgt in targets:
            text = tgt.read()
            parts = split(text, instance, tgt.label)
            if not parts.found:
                continue
            if all(name in parts.entries for name in CATCH_UP_ENTRIES):
                return "present"
            lines = _lines(text)
            end = next(i for i, line in enumerate(lines)
                       if (m := _END_LINE.match(line.rstrip("\n"))) and m["id"] == instance)
            new = "".join(lines[:end]) + "".join(line + "\n" for line in catch_up_lines(state, _system_format(parts))) \
                + "".join(lines[end:])
            if tgt.read() != text:
                raise CrontabConflict(f"{tgt.label} changed while jobctl was adding the pass; run jobctl apply")
            tgt.write(new)
            return "added"
    return "no block"


def catch_up_lines(state: str, system: bool) -> list[str]:
    """At boot and every minute: the pass that starts runs missed during downtime and watches for missed and
    overdue runs."""
    argv = [*cmdline.interpreter_argv(), "--catch-up", "--state-dir", state]
    digest = hashlib.sha256(" ".join(argv).encode()).hexdigest()[:12]
    return [_render(when, argv, f"jobctl:{name} {digest}", system) for name, when in CATCH_UP_ENTRIES.items()]


# --- plan and apply ----------------------------------------------------------

@dataclass
class Change:
    name: str
    action: str  # add | change | remove | unchanged
    fields: list[str] = field(default_factory=list)
    #: what else the operator should know: where the job was last applied from, a timer that also runs it
    note: str = ""


#: a changed field of a job whose installed line is not the one apply wrote (edited by hand)
EDITED = "crontab line edited"


@dataclass
class Plan:
    target: Target
    instance: str
    old_text: str
    new_text: str
    changes: list[Change]
    definitions: dict[str, dict]
    stale: list[str]  # applied definitions cron no longer runs
    #: the jobs directory read (absolute), or None when unknown
    jobs_dir: str | None = None
    #: jobs of the crontab block (not the internal entries)
    installed: int = 0
    #: {job to remove: the jobs directory it was last applied from}, when that is another one
    others: dict[str, str] = field(default_factory=dict)
    #: settings cron applies to jobctl's lines, from the text above the block: (name, value, line)
    inherited: list[tuple[str, str, int]] = field(default_factory=list)
    #: jobs recorded for systemd timers (export systemd --record) whose job file now differs
    timers: list[Change] = field(default_factory=list)
    #: the crontab did not exist before jobctl's block (uninstall removes it again)
    created: bool = False
    #: the applied definitions as the plan read them, by name (None: not usable); apply compares with these
    current: dict[str, dict | None] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.old_text != self.new_text or any(c.action != "unchanged" for c in self.changes)

    def diff(self) -> str:
        return "".join(difflib.unified_diff(
            self.old_text.splitlines(keepends=True), self.new_text.splitlines(keepends=True),
            fromfile=f"{self.target.label} (now)", tofile=f"{self.target.label} (after apply)",
        ))

    def refusal(self) -> str | None:
        """Why apply stops without --prune-others, or None.

        A jobs directory other than the usual one (a stray ./jobs.d, another
        checkout) would otherwise replace the whole block: apply refuses to
        remove jobs last applied from another directory, or more than half of
        the installed jobs.
        """
        removed = [c.name for c in self.changes if c.action == "remove"]
        if not removed:
            return None
        where = f"this apply reads {self.jobs_dir}" if self.jobs_dir else "this apply reads another jobs directory"
        if self.others:
            dirs = sorted(set(self.others.values()))
            names = sorted(self.others)
            return (f"apply would remove {_names(names)}, last applied from {' and '.join(dirs)}; {where}. "
                    f"Run it with --jobs-dir {dirs[0]} (or from that directory), or pass --prune-others to remove "
                    "them")
        if len(removed) * 2 > self.installed:
            return (f"apply would remove {len(removed)} of the {self.installed} installed jobs ({_names(removed)}); "
                    f"{where}. Check it is the right one (--jobs-dir), or pass --prune-others to remove them")
        return None


def _names(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def refuse_other_users(jobs: list[JobSpec], why: str) -> None:
    """InvalidJobs for every job whose ``user`` is not the invoking user; ``why`` may use {me}."""
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    problems = []
    for job in jobs:
        if job.user and job.user != me:
            path, _, line = job.source.rpartition(":")
            problems.append(Problem(path, int(line or 1), 1, f"user {job.user!r} " + why.format(me=me), job.name))
    if problems:
        raise InvalidJobs(problems)


def check_users(jobs: list[JobSpec], system: bool) -> None:
    """`user:` is for the system target; elsewhere it may only name the invoking user."""
    if not system:
        refuse_other_users(jobs, "needs the system crontab (jobctl apply --system, as root); "
                                 "this crontab runs as {me}")


def _jobs_dir(jobs: list[JobSpec], jobs_dir: str | None) -> str | None:
    """The absolute jobs directory: as given, else the one the job files are in."""
    if jobs_dir:
        return os.path.abspath(jobs_dir)
    for job in jobs:
        path = job.source.rpartition(":")[0]
        if path:
            return os.path.dirname(os.path.abspath(path))
    return None


def make_plan(jobs: list[JobSpec], state: str, tgt: Target, jobs_dir: str | None = None) -> Plan:
    check_users(jobs, tgt.system)
    instance = instance_id(state)
    old_text = tgt.read()
    parts = split(old_text, instance, tgt.label)
    if not parts.found:
        parts.created = tgt.absent
    directory = _jobs_dir(jobs, jobs_dir)
    current = {name: applied.read(state, name) for name in applied.names(state)}
    wanted = {}
    for j in jobs:
        if j.enabled:
            users = set(applied.recorded_for(current.get(j.name))) | {applied.CRON}
            wanted[j.name] = applied.with_meta(definition(j), directory, sorted(users))
    # each line rendered once: the block, and the comparison with the installed line below
    rendered = {name: render_line(wanted[name], state, tgt.system) for name in sorted(wanted)}
    lines = list(rendered.values())
    if any(needs_pass(d) for d in wanted.values()) or requests_pending(state):
        lines += catch_up_lines(state, tgt.system)
    new_text = join(parts, instance, state, lines)
    changes, others = [], {}
    # same_dir resolves both paths: once per directory, not twice per job
    here = os.path.realpath(directory) if directory else None
    resolved: dict[str, str] = {}

    def same_dir(came_from: str) -> bool:
        if came_from not in resolved:
            resolved[came_from] = os.path.realpath(came_from)
        return resolved[came_from] == here

    for name in sorted(set(wanted) | {n for n in parts.entries if not n.startswith("_")}):
        entry = parts.entries.get(name)
        old = current.get(name)
        came_from = applied.jobs_dir_of(old)
        elsewhere = came_from if came_from and directory and not same_dir(came_from) else None
        note = f"last applied from {elsewhere}" if elsewhere else ""
        if name not in wanted:
            if elsewhere:
                others[name] = elsewhere
            changes.append(Change(name, "remove", note=note))
        elif entry is None:
            if applied.SYSTEMD in applied.recorded_for(old):
                note = "also recorded for its systemd timer (export systemd --record): it would run twice"
            changes.append(Change(name, "add", note=note))
        else:
            fields = applied.differs(old, wanted[name])
            if fields and applied.SYSTEMD in applied.recorded_for(old):
                # one definition serves both: apply changes what the timer runs too, and says so
                note = "; ".join(filter(None, [note, "its systemd timer runs the new definition too"]))
            # A line exactly as rendered carries the definition's hash in its marker: no need to hash again.
            if (entry.line != rendered[name] and entry.hash != definition_hash(wanted[name])) or fields:
                changes.append(Change(name, "change", fields or ["(crontab line)"], note))
            elif entry.tampered or entry.line != rendered[name]:
                changes.append(Change(name, "change", [EDITED], note))
            else:
                changes.append(Change(name, "unchanged", note=note))
    if FOREIGN in parts.entries:  # lines pasted into the block: apply rewrites it without them
        n = parts.entries[FOREIGN].lines
        changes.append(Change(f"({n} line{'s' if n != 1 else ''} in the block jobctl did not write)", "remove"))
    timers = []
    for j in jobs:
        old = current.get(j.name)
        if j.name not in parts.entries and applied.recorded_for(old) == [applied.SYSTEMD]:
            fields = applied.differs(old, definition(j))
            if fields:
                timers.append(Change(j.name, "timer", fields))
    stale = [n for n in current if n not in wanted and applied.CRON in applied.recorded_for(current[n])]
    installed = sum(1 for n in parts.entries if not n.startswith("_"))
    return Plan(tgt, instance, old_text, new_text, changes, wanted, stale, directory, installed, others,
                inherited(parts.before), timers, parts.created, current)


def _write(tgt: Target, text: str, created: bool) -> None:
    """Write the crontab; an empty one that did not exist before jobctl is removed instead (crontab -r)."""
    if not text and created:
        tgt.remove()
    else:
        tgt.write(text)


def _drop_cron(state: str, names: list[str], current: dict[str, dict | None]) -> None:
    """Cron no longer runs these: remove their definitions, but keep those a systemd timer runs."""
    for name in names:
        old = current.get(name)
        users = applied.recorded_for(old)
        if old is not None and applied.SYSTEMD in users:
            when = applied.mtime(state, name)
            applied.write(state, applied.with_meta(old, None, [u for u in users if u != applied.CRON]))
            applied.keep_mtime(state, name, when)
        else:
            applied.remove(state, name)


def _backup(state: str, text: str) -> str:
    """Keep the crontab as it was; a failed write leaves no partial backup behind."""
    directory = paths.backups_dir(state)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    now = time.time()
    stamp = time.strftime("crontab-%Y%m%dT%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    for n in range(1000):
        path = os.path.join(directory, f"{stamp}-{n}.txt" if n else f"{stamp}.txt")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "1000 backups in the same microsecond", os.path.join(directory, stamp))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogateescape"))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        unlink_quietly(path)
        raise
    return path


def _rotate_backups(state: str) -> None:
    """After a successful write only: a failed apply must not cost the oldest good backup."""
    directory = paths.backups_dir(state)
    old = sorted(f for f in os.listdir(directory) if f.startswith("crontab-"))
    for name in old[:-BACKUPS_KEPT]:
        unlink_quietly(os.path.join(directory, name))


def _environment(exc: OSError, doing: str) -> EnvironmentProblem:
    """One line for an OSError of apply or uninstall (a full disk, permissions)."""
    where = f" ({exc.filename})" if exc.filename and exc.filename not in doing else ""
    return EnvironmentProblem(f"{doing}: {exc.strerror or exc}{where}; nothing was changed")


@dataclass
class Outcome:
    plan: Plan
    wrote: bool
    backup: str | None


@contextmanager
def apply_lock(state: str) -> Iterator[None]:
    """Serialises apply, uninstall and export --record of one state directory; the file is never deleted.

    flock(2) on STATE/apply.lock, held until the block ends (or the process
    dies), waiting as long as another holds it: what filelock's FileLock did,
    without its import (~15 ms of every apply).
    """
    import fcntl

    os.makedirs(state, mode=0o700, exist_ok=True)  # as filelock did (the CLI has created it already)
    fd = os.open(paths.apply_lock(state), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
        except PermissionError:
            pass
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _sweep(state: str, tgt: Target) -> None:
    """Temporary files a killed apply (or export) left: in STATE/applied/ and next to a crontab file."""
    applied.sweep(state)
    if isinstance(tgt, FileCrontab):
        remove_stale_temps(os.path.dirname(os.path.abspath(tgt.path)), os.path.basename(tgt.path))


def untrusted_interpreter() -> str | None:
    """Why the interpreter the lines name could run another user's code; None when only root or we can change it.

    Every line runs it as the crontab's user (root for /etc/cron.d/jobctl).
    A venv reached through another user's symbolic link, or below a
    directory others can write, would let them put their own python there.
    """
    python = cmdline.interpreter_argv()[0]
    bad = cmdline.untrusted_part(python)
    if bad is None:
        return None
    who = "root or you" if os.geteuid() else "root"
    return (f"the lines would run {python}, and {bad} on its way can be changed by a user other than {who}: "
            "cron would run what they put there")


def refuse_untrusted_interpreter() -> None:
    why = untrusted_interpreter()
    if why is not None:
        raise JobctlError(f"{why}; nothing was changed. Install jobctl where only root (or you) can write"
                          " (./install.sh does) and run apply with that jobctl", ExitCode.ENVIRONMENT)


def apply(jobs: list[JobSpec], state: str, tgt: Target, jobs_dir: str | None = None,
          prune_others: bool = True) -> Outcome:
    """Install the jobs: all of it or, on any error, nothing (one EnvironmentProblem for an OSError).

    Every changed definition and the backup are written to disk first (a full
    disk shows up here, before anything changed); then the definitions are
    renamed into place, then the crontab is written; if that fails, the old
    definitions are renamed back.  Without ``prune_others`` (the CLI's
    default), an apply that would remove jobs last applied from another jobs
    directory, or more than half of the installed ones, stops (Plan.refusal).
    """
    doing = f"cannot apply to {tgt.label}"
    refuse_untrusted_interpreter()
    try:
        with apply_lock(state):
            _sweep(state, tgt)
            plan = make_plan(jobs, state, tgt, jobs_dir)
            refusal = None if prune_others else plan.refusal()
            if refusal:
                raise JobctlError(f"{refusal}; nothing was changed")
            changed = plan.new_text != plan.old_text
            # Someone may have edited the crontab since we read it: never lose that.
            if changed and tgt.read() != plan.old_text:
                raise CrontabConflict(f"{tgt.label} changed while jobctl was applying; nothing was written. "
                                      "Run jobctl apply again")
            batch = Batch()
            backup = None
            #: definitions rewritten only for their metadata keep the time they were applied
            kept_times: dict[str, int | None] = {}
            try:
                for name, defn in plan.definitions.items():
                    old = plan.current.get(name)  # read by make_plan, under the same lock
                    if old != defn:
                        doing = f"cannot write the applied definition {paths.applied_file(state, name)}"
                        if old is not None and not applied.differs(old, defn):
                            kept_times[name] = applied.mtime(state, name)
                        applied.stage(batch, state, defn)
                doing = f"cannot write the applied definitions in {paths.applied_dir(state)}"
                batch.sync()  # all of them durable in one pass, before any is renamed into place
                if changed:
                    doing = f"cannot back up {tgt.label} into {paths.backups_dir(state)}"
                    backup = _backup(state, plan.old_text)
            except BaseException:
                batch.discard()
                raise
            try:
                # Definitions first: cron must never find a line whose definition is missing.
                doing = f"cannot install the applied definitions in {paths.applied_dir(state)}"
                batch.commit()
                if changed:
                    doing = f"cannot write {tgt.label}"
                    _write(tgt, plan.new_text, plan.created)
            except BaseException:
                batch.rollback()
                if backup:
                    unlink_quietly(backup)
                raise
            batch.finish()
            for name, when in kept_times.items():
                applied.keep_mtime(state, name, when)
            if backup:
                _rotate_backups(state)
            _drop_cron(state, plan.stale, {n: applied.read(state, n) for n in plan.stale})
            return Outcome(plan, changed, backup)
    except OSError as exc:
        raise _environment(exc, doing) from None


def uninstall(state: str, tgt: Target) -> Outcome:
    doing = f"cannot uninstall from {tgt.label}"
    try:
        with apply_lock(state):
            _sweep(state, tgt)
            instance = instance_id(state)
            old_text = tgt.read()
            parts = split(old_text, instance, tgt.label)
            new_text = join(parts, instance, state, [])
            changes = [Change(n, "remove") for n in sorted(parts.entries) if not n.startswith("_")]
            current = {n: applied.read(state, n) for n in applied.names(state)}
            stale = [n for n in current if applied.CRON in applied.recorded_for(current[n])]
            plan = Plan(tgt, instance, old_text, new_text, changes, {}, stale, created=parts.created)
            backup = None
            if new_text != old_text:
                if tgt.read() != old_text:
                    raise CrontabConflict(f"{tgt.label} changed while jobctl was uninstalling; nothing was written. "
                                          "Run jobctl uninstall again")
                doing = f"cannot back up {tgt.label} into {paths.backups_dir(state)}"
                backup = _backup(state, old_text)
                try:
                    doing = f"cannot write {tgt.label}"
                    _write(tgt, new_text, parts.created)
                except BaseException:
                    unlink_quietly(backup)
                    raise
                _rotate_backups(state)
            # the block is gone: cron runs none of these any more (a systemd timer may)
            _drop_cron(state, plan.stale, current)
            return Outcome(plan, new_text != old_text, backup)
    except OSError as exc:
        raise _environment(exc, doing) from None


def installed(state: str, tgt: Target) -> dict[str, Entry]:
    """The entries of our block as the crontab has them now."""
    return split(tgt.read(), instance_id(state), tgt.label).entries


# --- settings above the block ---------------------------------------------------------------------
#
# cron gives every entry the environment settings (NAME=value lines) read
# before it, so jobctl's lines inherit whatever stands above its block.  What
# each means for them is said once, by plan and doctor.

_BLANK = " \t\n\v\f\r"  # C isspace()


def cron_env(line: str) -> tuple[str, str] | None:
    """(name, value) when cron reads ``line`` as an environment setting, else None.

    A port of load_env() of Debian's cron (env.c, the 4.1 parser Debian
    backported; tests/cron_oracle.py has the byte-level port): quotes around
    the name or the value, blanks around "=", trailing blanks dropped.
    """
    NAMEI, NAME, EQ1, EQ2, VALUEI, VALUE, FINI, ERROR = range(8)
    text = line.lstrip(" \t")
    if not text or text.startswith("#"):
        return None
    state, quote, i = NAMEI, "", 0
    name: list[str] = []
    val: list[str] = []
    cur = name
    while state != ERROR and i < len(text):
        c = text[i]
        if state in (NAMEI, VALUEI):
            if c in "'\"":
                quote = c
                i += 1
            state += 1
            if i >= len(text):
                break
            c = text[i]
        if state in (NAME, VALUE):
            if quote:
                if c == quote:
                    state += 1
                    i += 1
                    continue
                if state == NAME and c == "=":
                    state = ERROR
                    continue
            elif state == NAME:
                if c in _BLANK:
                    i += 1
                    state += 1
                    continue
                if c == "=":
                    state += 1
                    continue
            cur.append(c)
            i += 1
        elif state == EQ1:
            if c == "=":
                state, cur, quote = EQ2, val, ""
            elif c not in _BLANK:
                state = ERROR
            i += 1
        else:  # EQ2, FINI
            if c in _BLANK:
                i += 1
            else:
                state += 1
    if state != FINI and not (state == VALUE and not quote):
        return None
    value = "".join(val).rstrip(_BLANK)
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        value = value[1:-1]
    key = "".join(name)
    return (key, value) if key else None


def inherited(before: str) -> list[tuple[str, str, int]]:
    """The settings in effect at jobctl's block: (name, value, line number), the last of each name, in order."""
    found: dict[str, tuple[str, str, int]] = {}
    for number, line in enumerate(_lines(before), start=1):
        setting = cron_env(line.rstrip("\n"))
        if setting is not None:
            found.pop(setting[0], None)
            found[setting[0]] = (setting[0], setting[1], number)
    return list(found.values())


#: shells that read the POSIX quoting of jobctl's lines
POSIX_SHELLS = ("sh", "bash", "dash", "ash", "ksh", "ksh93", "mksh", "lksh", "pdksh", "zsh", "posh", "yash",
                "busybox")
MAIL_SETTINGS = ("MAILFROM", "CONTENT_TYPE", "CONTENT_TRANSFER_ENCODING")


def meaning(name: str, value: str) -> tuple[str, bool]:
    """What a setting above the block means for jobctl's lines, and whether it is a problem for them."""
    shown = f"{name}={value}" if value else f'{name}=""'
    if name == "MAILTO":
        if not value:
            return (f"{shown}: cron mails nothing, so the failure summary jobctl's lines print under cron "
                    "(cron_mail) reaches no one; remove it or give an address to get failure mail"), False
        return (f"{shown}: cron mails what jobctl's lines print to {value} (with cron_mail: failure, the default, "
                "one summary per failed run; needs a mail transfer agent)"), False
    if name == "CRON_TZ":
        return (f"{shown}: ignored by Debian's cron; jobctl's lines run on the system's time. Give the jobs "
                f"timezone: {value or 'ZONE'} instead"), True
    if name == "TZ":
        return (f"{shown}: does not move when cron runs jobctl's lines, and jobs do not see it (the wrapper's clean "
                f"environment); use timezone: {value or 'ZONE'} for the schedule, env: {{TZ: {value or 'ZONE'}}} "
                "for the job's clock"), False
    if name == "SHELL":
        if os.path.basename(value) in POSIX_SHELLS:
            return (f"{shown}: cron starts jobctl's lines with it; jobs run with their own shell: key "
                    "(default /bin/sh), not this one"), False
        return (f"{shown}: cron starts jobctl's lines with it, and they are written for a POSIX shell; remove it, "
                "or set SHELL=/bin/sh on the line just above jobctl's block"), True
    if name == "PATH":
        return (f"{shown}: no effect on jobctl's lines (absolute paths) or their jobs (the wrapper sets "
                f"PATH={host.CLEAN_PATH}); set env: {{PATH: ...}} in a job file to change a job's PATH"), False
    if name in ("HOME", "LOGNAME", "USER"):
        return (f"{shown}: jobs get HOME, LOGNAME and USER of their own user from the wrapper, not this"), False
    if name in MAIL_SETTINGS:
        return f"{shown}: used by cron for the mail of jobctl's lines too", False
    return (f"{shown}: cron sets it for jobctl's lines, but jobs do not see it (the wrapper's clean environment); "
            "put it under env: in the job files that need it"), False
