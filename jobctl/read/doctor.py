"""`jobctl doctor`: checks an operator can act on, each with a fix."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import dataclass

from jobctl import paths, store
from jobctl.runner.host import CLEAN_PATH


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: worth knowing, not a failure: printed as "note"
    note: bool = False


def _alive_not_zombie(pid: str) -> bool:
    """A killed daemon lingers as a zombie where PID 1 does not reap orphans."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _same_root(pid: str) -> bool:
    """A daemon seen through /proc from inside a chroot serves another file system."""
    try:
        theirs, ours = os.stat(f"/proc/{pid}/root"), os.stat("/")
    except OSError:
        return True  # cannot tell (another user's process): assume ours
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def cron_daemon() -> Check:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in ("cron", "crond") and _alive_not_zombie(pid) and _same_root(pid):
            return Check("cron daemon", True, f"running ({comm}, pid {pid})")
    return Check("cron daemon", False, "no cron daemon is running: scheduled jobs will not start",
                 "start it: systemctl enable --now cron (or /usr/sbin/cron where there is no systemd)")


def crontab_command() -> Check:
    found = shutil.which("crontab")
    if found:
        return Check("crontab command", True, found)
    return Check("crontab command", False, "not on PATH", "apt-get install cron")


def state_permissions(state: str) -> Check:
    if not os.path.isdir(state):
        return Check("state directory", True, f"{state} does not exist yet (created 0700 on first use)")
    problems = []
    st = os.stat(state)
    if stat.S_IMODE(st.st_mode) & 0o077:
        problems.append(f"{state} is {stat.S_IMODE(st.st_mode):04o}, not 0700")
    if st.st_uid != os.geteuid():
        problems.append(f"{state} is owned by uid {st.st_uid}, not {os.geteuid()}")
    log, definitions = paths.runs_db(state), paths.applied_dir(state)
    files = [log] if os.path.exists(log) else []
    if os.path.isdir(definitions):
        files += [os.path.join(definitions, f) for f in os.listdir(definitions)]
    elif os.path.exists(definitions):
        files.append(definitions)
    for f in files:
        mode = stat.S_IMODE(os.stat(f).st_mode)
        if mode & 0o077:
            problems.append(f"{f} is {mode:04o}, not 0600")
    if problems:
        return Check("state directory", False, "; ".join(problems), f"chmod -R go-rwx {shlex.quote(state)}")
    if not os.access(state, os.W_OK):
        return Check("state directory", False, f"{state} is not writable", "fix its ownership")
    return Check("state directory", True, f"{state} (0700)")


def run_log(state: str) -> Check:
    path = paths.runs_db(state)
    if not os.path.exists(path):
        return Check("run log", True, "none yet (created by the first run)")
    try:
        findings = store.quick_check(path)
    except sqlite3.Error as exc:
        return Check("run log", False, f"{path}: {exc}",
                     f"move it aside (mv {path} {path}.broken); the next run starts a new one")
    if findings:
        return Check("run log", False, f"{path}: quick_check: {findings[0]}",
                     f"move it aside (mv {path} {path}.broken); the next run starts a new one")
    return Check("run log", True, f"{path}: quick_check ok")


def applied_readable(state: str, jobs: list | None = None) -> Check:
    """Every STATE/applied/NAME.json is a usable definition (a JSON object named NAME)."""
    from jobctl import applied

    directory = paths.applied_dir(state)
    try:
        bad = applied.unusable(state)
    except OSError as exc:
        return Check("applied definitions readable", False, f"cannot list {directory}: {exc.strerror}",
                     "fix its ownership")
    if not bad:
        count = len(applied.names(state))
        return Check("applied definitions readable", True,
                     f"{count} definition{'s' if count != 1 else ''} in {directory}" if count else "none yet")
    detail = "; ".join(f"{applied.printable(path)}: {why}" for _, path, why in bad)
    fix = "jobctl apply"
    if jobs is not None:
        known = {j.name for j in jobs}
        gone = [path for name, path, _ in bad if name not in known]
        if gone:
            # apply rewrites the definitions of its jobs only
            fix += f" (and remove what no job file defines: rm {' '.join(shlex.quote(p) for p in gone)})"
    return Check("applied definitions readable", False, detail, fix)


def crontab_in_sync(jobs: list, state: str, system: bool, jobs_dir: str | None = None) -> Check:
    from jobctl.errors import JobctlError
    from jobctl.install import crontab

    try:
        plan = crontab.make_plan(jobs, state, crontab.target(system), jobs_dir)
    except JobctlError as exc:
        return Check("crontab in sync", False, exc.message, "see the message; then jobctl apply")
    if plan.pending:
        edited = [c.name for c in plan.changes if crontab.EDITED in c.fields]
        changed = [f"{c.action} {c.name}" for c in plan.changes if c.action != "unchanged" and c.name not in edited]
        changed += [f"line of {n} edited in the crontab" for n in edited]
        fix = "jobctl plan, then jobctl apply"
        if edited:
            fix += " (it writes the edited lines back: change a job in its job file, not in the crontab)"
        return Check("crontab in sync", False, f"{plan.target.label}: {', '.join(changed) or 'block differs'}", fix)
    n = len(plan.changes)
    return Check("crontab in sync", True, f"{plan.target.label}: {n} job{'s' if n != 1 else ''} as applied")


def wrapper_lines(state: str, system: bool) -> Check:
    """Whether what the installed lines start (interpreter, start.py) exists and only root or we can change it.

    A venv re-created for another Python, or a jobctl removed, leaves lines
    naming files that are gone: cron then fails every run before jobctl
    could record anything (only cron's mail says so).
    """
    from jobctl.errors import JobctlError
    from jobctl.install import crontab
    from jobctl.runner import cmdline

    try:
        entries = crontab.installed(state, crontab.target(system))
    except JobctlError as exc:
        return Check("wrapper lines", False, exc.message, "see the message")
    named: dict[str, list[str]] = {}
    for entry in entries.values():
        try:
            words = shlex.split(entry.line.replace("\\%", "%"), comments=True)
        except ValueError:  # a hand-edited line that does not parse: crontab in sync says so
            continue
        for i, word in enumerate(words):
            if word == "-I" and i > 0:
                named.setdefault(words[i - 1], []).append(entry.name)
                if words[i + 1:i + 2] == ["-S"] and len(words) > i + 2:
                    named.setdefault(words[i + 2], []).append(entry.name)
                break
    problems = []
    for path, jobs in sorted(named.items()):
        who = ", ".join(sorted(set(jobs))[:3]) + (" ..." if len(set(jobs)) > 3 else "")
        if not os.path.exists(path):
            problems.append(f"{path} (run by {who}) does not exist: cron fails every run of those jobs")
        else:
            bad = cmdline.untrusted_part(path)
            if bad is not None:
                problems.append(f"{path} (run by {who}): {bad} can be changed by a user other than root or you")
    if problems:
        return Check("wrapper lines", False, "; ".join(problems),
                     "reinstall jobctl where only root (or you) can write (./install.sh), then jobctl apply")
    if not named:
        return Check("wrapper lines", True, "no jobctl lines installed")
    return Check("wrapper lines", True, ", ".join(sorted(named)))


def adopts_finished(state: str) -> Check:
    """Whether an `import --adopt` was interrupted between taking entries out and installing their jobs."""
    from jobctl.errors import JobctlError
    from jobctl.install import importer

    try:
        pending = importer.pending(state)
    except JobctlError as exc:
        return Check("import --adopt", False, exc.message, "see the message")
    if not pending:
        return Check("import --adopt", True, "no adopt left half done")
    where = ", ".join(sorted({str(r.get("file") or r.get("target")) for r in pending}))
    return Check("import --adopt", False,
                 f"an import --adopt of {where} was interrupted: its jobs may run nowhere, or twice",
                 "run the same jobctl import --adopt again to finish it, or jobctl uninstall [--system] --restore")


def job_files_safe(directory: str) -> Check:
    """As root: the job files, the jobs directory and every directory above it are root's alone.

    The same rule ``validate`` and ``apply`` enforce (loader.unsafe_paths):
    owned by root, not writable by group or others (sticky directories above
    the jobs directory excepted), links judged by what they point at.
    """
    from jobctl.errors import JobctlError
    from jobctl.jobs import loader

    if os.geteuid() != 0:
        return Check("job file permissions", True, "not running as root")
    try:
        unsafe = loader.unsafe_paths(directory)
    except JobctlError as exc:
        return Check("job file permissions", False, exc.message, f"jobctl init {shlex.quote(directory)}")
    if unsafe:
        targets = list(dict.fromkeys(shlex.quote(u.fix_path) for u in unsafe))
        listed = ", ".join(f"{u.fix_path} ({u.reason})" for u in unsafe)
        return Check("job file permissions", False,
                     f"writable by others, a root shell for anyone: {listed}",
                     f"chown root: {' '.join(targets)}; chmod go-w {' '.join(targets)} "
                     "(or move the jobs directory under a directory only root can change)")
    return Check("job file permissions", True,
                 f"{directory}, the directories above it and its job files are root's and writable only by root")


def _first_word(command: str | list) -> str | None:
    if isinstance(command, list):
        return str(command[0])
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    for word in words:
        if "=" in word.split("/")[0] and not word.startswith(("/", ".")):
            continue  # VAR=value prefix
        return word
    return None


@dataclass
class _User:
    """Whom a job runs as: checks of paths are made with that user's rights."""

    name: str
    uid: int
    gid: int
    home: str

    @property
    def me(self) -> bool:
        return self.uid == os.geteuid()


def _job_user(job) -> _User | None:
    import pwd

    try:
        pw = pwd.getpwnam(job.user) if job.user else pwd.getpwuid(os.geteuid())
    except KeyError:
        return None
    return _User(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def _as_user(user: _User, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess | None:
    """Run ``argv`` with ``user``'s rights (root only; None when they cannot be taken)."""
    kwargs: dict = {}
    if not user.me:
        if os.geteuid() != 0:
            return None
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": os.getgrouplist(user.name, user.gid)}
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, cwd="/", timeout=30, **kwargs)
    except (OSError, subprocess.SubprocessError):
        return None


#: `sh -c` exit codes of _PATH_TEST, as the job's user
_PATH_TEST = ('[ -e "$1" ] || exit 2; if [ -n "$2" ]; then [ -d "$1" ] || exit 4; cd -- "$1" 2>/dev/null || exit 3; '
              'else [ -d "$1" ] && exit 4; [ -x "$1" ] || exit 3; fi; exit 0')


def _path_check(user: _User, path: str, directory: bool) -> str | None:
    """None when ``user`` can execute the file (or enter the directory) ``path``, else what is wrong."""
    proc = _as_user(user, ["/bin/sh", "-c", _PATH_TEST, "sh", path, "d" if directory else ""], {"PATH": CLEAN_PATH})
    if proc is None:
        return "cannot check (not root)" if not user.me else "cannot check"
    if proc.returncode == 0:
        return None
    if proc.returncode == 2:
        # as the caller (root, usually): missing, or hidden from the job's user by a directory above
        return "hidden" if os.path.lexists(path) else "missing"
    return {3: "denied", 4: "not a directory" if directory else "a directory"}.get(proc.returncode, "cannot check")


def _path_passed(name: str, user: _User, path: str, problem: str | None, how: str) -> Check | None:
    """The passed check when _path_check found nothing wrong (``how``: in what way) or could not check (a note).

    None when it found a problem: what to say then depends on what the path is for.
    """
    if problem is None:
        return Check(name, True, f"{path} ({how})")
    if problem.startswith("cannot check"):
        return Check(name, True, f"{path}: {problem} as {user.name}", note=True)
    return None


def commands_found(jobs: list) -> list[Check]:
    """Each job's program, as its user finds it on the run PATH, with a fix worded for what is wrong."""
    from jobctl.install import compile

    checks = []
    for job in jobs:
        defn = compile.definition(job)
        name = f"command of {job.name}"
        user = _job_user(job)
        word = _first_word(defn["command"])
        if word is None or user is None:
            checks.append(Check(name, True, "cannot tell the program (complex shell)" if word is None
                                else f"user {job.user} does not exist here"))
            continue
        path = (defn.get("env") or {}).get("PATH", CLEAN_PATH)
        shell = defn.get("shell") or "/bin/sh"
        where = f"in {job.source}"
        if not isinstance(defn["command"], list) and not os.path.isfile(shell):
            checks.append(Check(name, False, f"its shell {shell} does not exist",
                                f"install {shell}, or set shell: to an existing one {where}"))
            continue
        if "/" in word:
            target = word if word.startswith("/") else os.path.join(job.working_dir or user.home, word)
            problem = _path_check(user, target, directory=False)
            passed = _path_passed(name, user, target, problem, f"executable by {user.name}")
            if passed is not None:
                checks.append(passed)
            elif problem == "missing":
                checks.append(Check(name, False, f"{target} does not exist",
                                    f"install the program at {target}, or correct the command {where}"))
            elif problem == "hidden":
                checks.append(Check(name, False, f"{user.name} cannot reach {target}: a directory above it is "
                                    "not searchable by that user",
                                    f"give {user.name} search (x) permission on the directories above "
                                    f"{target}, or run the job as a user who has it"))
            elif problem == "a directory":
                checks.append(Check(name, False, f"{target} is a directory, not a program",
                                    f"correct the command {where}"))
            else:
                checks.append(Check(name, False, f"{target} is not executable by {user.name}",
                                    f"chmod +x {shlex.quote(target)}, or run it through its interpreter "
                                    f"(command: [/bin/sh, {target}]) {where}"))
            continue
        env = {"PATH": path, "HOME": user.home}
        proc = _as_user(user, [shell, "-c", 'command -v -- "$1"', "sh", word], env)
        if proc is None:
            checks.append(Check(name, True, f"{word}: cannot check as {user.name} (not root)", note=True))
        elif proc.returncode == 0:
            checks.append(Check(name, True, f"{word} → {proc.stdout.strip()}"))
        else:
            elsewhere = shutil.which(word)
            if elsewhere:
                fix = (f"use its absolute path ({elsewhere}) in the command, or add {os.path.dirname(elsewhere)} "
                       f"to env: PATH {where}")
            else:
                fix = f"install {word} on this host, or correct the command {where}"
            checks.append(Check(name, False, f"{word!r} is not found on the run PATH ({path})", fix))
    return checks


def working_dirs(jobs: list) -> list[Check]:
    """Each job's working directory (working_dir, or its user's home) exists and its user may enter it.

    The wrapper changes into it before starting the job; if it cannot, every
    run fails with exit 125 ("cannot start: working directory ...").
    """
    checks = []
    for job in jobs:
        name = f"working directory of {job.name}"
        user = _job_user(job)
        if user is None:
            continue
        directory = job.working_dir or user.home
        what = f"working_dir {directory}" if job.working_dir else \
            f"{directory}, the home of {user.name} (working_dir is not set)"
        where = f"in {job.source}"
        problem = _path_check(user, directory, directory=True)
        passed = _path_passed(name, user, directory, problem, f"as {user.name}")
        if passed is not None:
            checks.append(passed)
        elif problem == "missing":
            fix = (f"mkdir -p {shlex.quote(directory)}" + (f" && chown {user.name}: {shlex.quote(directory)}"
                                                           if not user.me else "")
                   + f", or correct working_dir {where}") if job.working_dir else \
                f"set working_dir: to an existing directory {where}, or create the home directory"
            checks.append(Check(name, False, f"{what} does not exist: every run would fail (exit 125)", fix))
        elif problem == "not a directory":
            checks.append(Check(name, False, f"{what} is not a directory: every run would fail (exit 125)",
                                f"point working_dir at a directory {where}"))
        else:
            checks.append(Check(name, False, f"{user.name} cannot enter {what}: no search (x) permission on it or "
                                "a directory above; every run would fail (exit 125)",
                                f"give {user.name} access (chown {user.name}: {shlex.quote(directory)}, or chmod "
                                f"o+x on it and the directories above), or set working_dir: {where}"))
    return checks


#: the fix for a setting above the block that is a problem for jobctl's lines
_SETTING_FIXES = {
    "CRON_TZ": "remove the CRON_TZ= line (Debian's cron ignores it) and set timezone: in the job files that need it",
    "SHELL": "remove the SHELL= line, or set SHELL=/bin/sh on the line just above jobctl's block",
}


def inherited_settings(state: str, system: bool) -> list[Check]:
    """One check per setting above jobctl's block: what it means for jobctl's lines (crontab.meaning)."""
    from jobctl.errors import JobctlError
    from jobctl.install import crontab

    try:
        tgt = crontab.target(system)
        parts = crontab.split(tgt.read(), crontab.instance_id(state), tgt.label)
    except JobctlError:
        return []  # the crontab checks above say why
    checks = []
    for name, value, number in crontab.inherited(parts.before):
        text, problem = crontab.meaning(name, value)
        checks.append(Check(f"crontab line {number}", not problem, text, _SETTING_FIXES.get(name, ""),
                            note=not problem))
    return checks


def checks(state: str, jobs_dir: str | None, system: bool) -> list[Check]:
    """Every check of `jobctl doctor`, in the order it prints them.

    The host first (cron, crontab(1)), then the state directory and run log,
    the job files and whether the crontab holds them as applied, each job's
    program and working directory, and the settings above jobctl's block.
    """
    from jobctl.jobs import loader

    found = [cron_daemon(), crontab_command(), state_permissions(state), run_log(state)]
    loaded = loader.read(jobs_dir)
    directory, result = loaded.directory, loaded.result
    if loaded.error is not None:
        found.append(Check("job files", False, loaded.error.message, f"jobctl init {directory}"))
    found.append(applied_readable(state, result.jobs if result is not None and not result.problems else None))
    if result is not None:
        if result.problems:
            n = len(result.problems)
            found.append(Check("job files", False, f"{n} problem{'s' if n != 1 else ''} in {directory}",
                               "jobctl validate"))
        else:
            n = len(result.jobs)
            found.append(Check("job files", True, f"{n} valid job{'s' if n != 1 else ''} in {directory}"))
            found.append(crontab_in_sync(result.jobs, state, system, directory))
        found.append(wrapper_lines(state, system))
        found.append(adopts_finished(state))
        if os.path.isdir(directory):
            found.append(job_files_safe(directory))
        found.extend(commands_found(result.jobs))
        found.extend(working_dirs(result.jobs))
    found.extend(inherited_settings(state, system))
    return found
