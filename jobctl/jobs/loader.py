"""Job files → JobSpecs, with a location for every problem.

The loader composes YAML into nodes (never ``yaml.load``: no object tags, no
implicit alias expansion), checks each key's shape against ``spec.FIELDS``,
and only then converts the few scalars the schema needs.  Aliases share
nodes; since nothing here walks deeper than the schema allows, a "billion
laughs" document is never expanded, and alias use is bounded on top of that.
Every problem of every file is collected in one pass.

Hostile input is bounded so that any file under the size limit validates in
well under a second: values per file (the composer and everything after it
work per node), problems per file, the length of numbers, and the text the
slow pure-Python parser re-reads for its messages.

Run as root, jobctl installs what the job files say as root's crontab or
/etc/cron.d/jobctl, so whoever can change a job file, ``_defaults.yaml``, the
jobs directory or a directory above it runs commands as root.  As cron(8) and
sshd's StrictModes do, the loader then refuses everything not owned by root or
writable by group or others (a sticky directory above the jobs directory, such
as /tmp, excepted).  It checks what it opened (fstat of the descriptor, the
directory walked up through ``..`` from the open directory), not a path looked
up again later, so nothing can be swapped in between check and read.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader, ReaderError

from jobctl import paths
from jobctl.errors import InvalidJobs, JobctlError, Problem
from jobctl.jobs import spec

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 100
#: values the aliases of one file may stand for, counted as if expanded
MAX_EXPANDED = 10_000
#: job files nest three levels (job → retries → value); deeper is not a job file
MAX_DEPTH = 20
#: keys, values and list items of one file: a hundred jobs of a hundred values.
#: Composing and checking cost a few microseconds per value; this bounds a file.
MAX_VALUES = 10_000
#: problems reported per file; past this the file is not a job file being edited
MAX_PROBLEMS = 100
#: characters of a YAML number: an int of thousands of digits (or a 1:00:00:...
#: sexagesimal one) costs seconds to build and is no value a job file needs
MAX_NUMBER_CHARS = 100
#: how much text the pure-Python parser re-reads (about 0.1 s) to word a syntax error
_REPARSE_CHARS = 128 * 1024
DEFAULTS_STEMS = ("_defaults",)
#: keys a job sets for itself: a default then/on_failure/requires would also apply to the jobs it names
NOT_IN_DEFAULTS = ("name", "description", "then", "on_failure", "requires")
_BOMB = "refusing a file that expands like a 'billion laughs' bomb. Job files need few or no aliases"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK
#: O_NONBLOCK: opening a FIFO for reading would wait for a writer; the file is
#: refused by fstat right after, never read
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class _Refused(yaml.YAMLError):
    """A file shaped like an attack: composing stops at ``mark``."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _TooMany(Exception):
    """A file reached MAX_PROBLEMS: the rest of it is not checked."""


# libyaml scans and parses about ten times faster than PyYAML's pure-Python
# reader; composition stays in Python (Composer first in the MRO) so that the
# checks below see every node.  Without libyaml the pure-Python parser does it all.
_Base: Any = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
#: libyaml's loader, or None without libyaml (then _fast_compose is never used)
_CBase: Any = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else None


class _Loader(Composer, _Base):
    """A safe loader that bounds aliases, nesting and values while composing, and stops early.

    Nothing here expands aliases, but a file whose aliases would expand to
    millions of values is refused by name rather than reported as a pile of
    unrelated errors.  The composer recurses once per level, so nesting is
    bounded too (a file of ``[[[[…`` would otherwise hit RecursionError).
    """

    base: Any = _Base

    def __init__(self, stream: str) -> None:
        self.base.__init__(self, stream)
        Composer.__init__(self)
        self._aliases = 0
        self._expanded = 0
        self._depth = 0
        self._values = 0
        #: expanded size of each finished node, by id (the tree keeps nodes alive)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(event.start_mark, f"more than {MAX_ALIASES} YAML aliases; {_BOMB}")
            target = self.anchors.get(event.anchor)
            if target is not None:
                # A node still being composed has no size yet: the alias points
                # into itself, which never ends when expanded.
                self._expanded += self._sizes.get(id(target), MAX_EXPANDED + 1)
                if self._expanded > MAX_EXPANDED:
                    raise _Refused(event.start_mark,
                                   f"YAML aliases would expand to more than {MAX_EXPANDED} values; {_BOMB}")
            return Composer.compose_node(self, parent, index)
        self._values += 1
        if self._values > MAX_VALUES:
            raise _Refused(self.peek_event().start_mark,
                           f"more than {MAX_VALUES} values (keys, values and list items) in one file; "
                           "job files are small: split it into several files")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark,
                               f"nested more than {MAX_DEPTH} levels deep; job files need three at most")
            node = Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, SequenceNode):
            self._sizes[id(node)] = 1 + sum(self._sizes[id(v)] for v in node.value)
        elif isinstance(node, MappingNode):
            self._sizes[id(node)] = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        elif node is not None:
            self._sizes[id(node)] = 1
        return node


class _PyLoader(_Loader, yaml.SafeLoader):
    """The same checks on PyYAML's pure-Python parser, for its clearer error messages."""

    base = yaml.SafeLoader


# libyaml's own composer (C) builds the same nodes as _Loader's Python one, three
# times faster, but checks nothing while it builds.  It is used only where that
# cannot hurt, and its result only where _Loader would have accepted the file:
#  - its recursion is bounded before it starts: every level of nesting needs an
#    indicator of its own ("[", "{", "-", "?" or ":"), so a text with at most
#    _FAST_INDICATORS of them nests no deeper than that (a libyaml without a
#    nesting limit would otherwise overflow the C stack on "[[[[...");
#  - its time is bounded by the size of the text (_FAST_CHARS);
#  - the documents it built are then walked with _Loader's accounting (values,
#    depth, aliases and what they stand for, in the same order); anything over a
#    limit, and any error, sends the file through _Loader, which reports it as
#    it always did.  So problems, their wording and their locations never
#    depend on which composer ran.
_FAST_CHARS = 64 * 1024
_FAST_INDICATORS = 2000
_NESTING_INDICATORS = "[{-?:"


def _fast_compose(text: str) -> list[Node] | None:
    """The documents of ``text`` composed by libyaml, when _Loader would accept them as they are; else None."""
    if len(text) > _FAST_CHARS or sum(text.count(c) for c in _NESTING_INDICATORS) > _FAST_INDICATORS:
        return None
    loader = yaml.CSafeLoader(text)
    try:
        docs = _documents(loader)
    except Exception:  # noqa: BLE001 - whatever it is, _Loader reports it as it always did
        return None
    return docs if _within_limits(docs) else None


class _OverLimit(Exception):
    """_within_limits found a limit reached."""


def _within_limits(docs: list[Node]) -> bool:
    """Whether _Loader's checks pass on these documents: its counts, in its order (a shared node is an alias)."""
    sizes: dict[int, int] = {}
    aliases = expanded = values = 0

    def size(node: Node, depth: int) -> int:
        nonlocal aliases, expanded, values
        key = id(node)
        if key in sizes:  # met before: this is an alias of it
            aliases += 1
            # still being walked (an alias inside its own anchor): never ends when expanded
            expanded += sizes[key]
            if aliases > MAX_ALIASES or expanded > MAX_EXPANDED:
                raise _OverLimit
            return sizes[key]
        values += 1
        if values > MAX_VALUES or depth > MAX_DEPTH:
            raise _OverLimit
        sizes[key] = MAX_EXPANDED + 1
        total = 1
        if isinstance(node, SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1)
                total += size(v, depth + 1)
        sizes[key] = total
        return total

    try:
        for doc in docs:
            size(doc, 1)
    except _OverLimit:
        return False
    return True


@dataclass
class LoadResult:
    jobs: list[spec.JobSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    #: located findings that do not make a job invalid: what is almost always
    #: a mistake (a crontab's \% kept in a command) yet still runs
    warnings: list[Problem] = field(default_factory=list)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _node_kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a value"


def _clean(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters.

    Problems embed names, keys and values from the files: a newline would
    split a problem over two lines, a lone surrogate cannot be printed, and
    bidi or zero-width characters would make the line lie.  All are escaped.
    """
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(text) > limit:
        text = text[: limit // 2] + " ... " + text[-(limit // 2):]
    return text


def _tally(counts: dict[str, int], path: str, node: Node | None, line: int, column: int) -> tuple[int, int, int]:
    """Where a finding is (its node's place when it has one) and how many ``counts`` has for its file, it included."""
    if node is not None:
        line, column = _pos(node)
    count = counts.get(path, 0) + 1
    counts[path] = count
    return line, column, count


def _finding(path: str, line: int, column: int, message: str, job: str | None = None) -> Problem:
    """A problem or warning, its text made printable and bounded (_clean)."""
    return Problem(_clean(path, 4096), line, column, _clean(message, 1000), _clean(job, 80) if job else job)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.counts: dict[str, int] = {}
        self.warnings: list[Problem] = []
        self.warning_counts: dict[str, int] = {}
        #: the text of each file composed, for what needs the source as written
        self.texts: dict[str, str] = {}
        self._lines: dict[str, list[str]] = {}

    def add(self, path: str, node: Node | None, message: str, job: str | None = None,
            line: int = 1, column: int = 1) -> None:
        line, column, count = _tally(self.counts, path, node, line, column)
        if count > MAX_PROBLEMS:
            self.problems.append(_finding(path, line, column, f"more than {MAX_PROBLEMS} problems in this file; "
                                          "stopped here: fix these and validate again"))
            raise _TooMany
        self.problems.append(_finding(path, line, column, message, job))

    def warn(self, path: str, node: Node | None, message: str, job: str | None = None,
             line: int = 1, column: int = 1) -> None:
        """A warning: bounded per file like problems, but never stops the checks."""
        line, column, count = _tally(self.warning_counts, path, node, line, column)
        if count > MAX_PROBLEMS:
            if count == MAX_PROBLEMS + 1:
                self.warnings.append(_finding(path, line, column, f"more than {MAX_PROBLEMS} warnings in this "
                                              "file; the rest are not listed"))
            return
        self.warnings.append(_finding(path, line, column, message, job))

    def warned_enough(self, path: str) -> bool:
        return self.warning_counts.get(path, 0) >= MAX_PROBLEMS

    def lines(self, path: str) -> list[str]:
        """The lines of a file's text, split once per file (a job file may hold thousands of commands)."""
        if path not in self._lines:
            self._lines[path] = self.texts.get(path, "").split("\n")
        return self._lines[path]

    def has(self, path: str) -> bool:
        return path in self.counts


# --- the jobs directory and its files: what may be opened, and as root, whose they are ----


@dataclass(frozen=True)
class Unsafe:
    """Something root must not trust: a job file, the jobs directory or a directory above.

    ``fix_path`` is what to chown/chmod (a link's target, a parent directory),
    ``reason`` the short form doctor lists (``0666``, ``owned by alice``).
    """

    problem: Problem
    fix_path: str
    reason: str


def _owner(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _issues(st: os.stat_result, sticky_ok: bool) -> tuple[str, str]:
    """What makes an inode unsafe for root to trust, long and short; ('', '') when nothing.

    Only its owner and root may be able to change it.  ``sticky_ok``: a
    sticky directory (/tmp) lets no one rename or delete what others own in
    it, so it may sit above the jobs directory, but never be it.
    """
    long, short = [], []
    if st.st_uid != 0:
        name = _owner(st.st_uid)
        long.append(f"owned by {name} (uid {st.st_uid}), not root")
        short.append(f"owned by {name}")
    mode = stat.S_IMODE(st.st_mode)
    who = ([f"group {_group(st.st_gid)}"] if mode & stat.S_IWGRP else []) + (["others"] if mode & stat.S_IWOTH else [])
    if who and not (sticky_ok and mode & stat.S_ISVTX):
        long.append(f"writable by {' and '.join(who)} (mode {mode:04o})")
        short.append(f"{mode:04o}")
    return " and ".join(long), ", ".join(short)


def _fix(path: str) -> str:
    q = shlex.quote(path)
    return f"chown root: {q}; chmod go-w {q}"


def _fd_path(fd: int, fallback: str) -> str:
    """Where an open file or directory is now (Linux names it in /proc)."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith("/") and not path.endswith(" (deleted)"):
            return path
    except OSError:
        pass
    return os.path.realpath(fallback)


def _walk_up(fd: int, real: str) -> list[tuple[str, os.stat_result]]:
    """The open directory ``fd`` and every directory above it, up to /.

    Walks ``..`` from the open directory itself (openat), so the chain checked
    is the one that holds what was opened, whatever a path says meanwhile.
    ``real`` only names the directories in messages.
    """
    root = os.stat("/")
    chain = []
    cur = os.dup(fd)
    try:
        for _ in range(4096):  # PATH_MAX/2 levels: a loop would be a kernel bug, not a file system
            st = os.fstat(cur)
            chain.append((real, st))
            if (st.st_dev, st.st_ino) == (root.st_dev, root.st_ino):
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=cur)
            pst = os.fstat(parent)
            os.close(cur)
            cur = parent
            if (pst.st_dev, pst.st_ino) == (st.st_dev, st.st_ino):
                break  # a root other than / (a chroot seen from outside): nothing above it
            real = os.path.dirname(real) or "/"
    finally:
        os.close(cur)
    return chain


def _foreign_links(path: str) -> list[tuple[str, int]]:
    """The symbolic links not owned by root met while resolving ``path``, as (link, uid).

    Whoever owns a link decides where it points, however root-owned its
    target is (fs.protected_symlinks stops root following such links in
    sticky directories only, and only where it is enabled), so as root every
    link on the way to a job file must be root's.  Resolved component by
    component, as the kernel does; at most 40 links, as the kernel allows.
    """
    from collections import deque

    parts = deque(os.path.abspath(path).split("/"))
    cur, found, hops = "/", [], 0
    while parts:
        part = parts.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            cur = os.path.dirname(cur) or "/"
            continue
        nxt = os.path.join(cur, part)
        try:
            st = os.lstat(nxt)
        except OSError:
            break  # opening it will say what is wrong
        if not stat.S_ISLNK(st.st_mode):
            cur = nxt
            continue
        hops += 1
        if hops > 40:
            break
        if st.st_uid != 0:
            found.append((nxt, st.st_uid))
        target = os.readlink(nxt)
        if target.startswith("/"):
            cur = "/"
        parts.extendleft(reversed(target.split("/")))
    return found


def _link_unsafe(path: str, what: str) -> list[Unsafe]:
    out = []
    for link, uid in _foreign_links(path):
        message = (f"{what} is reached through {link}, a symbolic link owned by {_owner(uid)} (uid {uid}), not "
                   f"root; whoever owns a link decides where it points, so jobctl runs as root and refuses it: "
                   f"replace the link with one root owns (ln -sfn TARGET {shlex.quote(link)} as root) or use the "
                   "real path")
        out.append(Unsafe(Problem(path, 1, 1, message), link, f"link owned by {_owner(uid)}"))
    return out


def _dir_unsafe(directory: str, dir_fd: int) -> list[Unsafe]:
    """As root: the jobs directory and every directory above it must be root's alone."""
    real = _fd_path(dir_fd, directory)
    found = _link_unsafe(directory, f"jobs directory {directory}")
    try:
        chain = _walk_up(dir_fd, real)
    except OSError as exc:
        message = (f"the directories above jobs directory {real} cannot be checked ({exc.strerror}); jobctl runs "
                   "as root and refuses a jobs directory it cannot tell is root's alone")
        return [Unsafe(Problem(directory, 1, 1, message), real, "unchecked")]
    for i, (path, st) in enumerate(chain):
        long, short = _issues(st, sticky_ok=i > 0)
        if not long:
            continue
        if i == 0:
            where = directory if os.path.abspath(directory) == real else f"{directory} (a link to {real})"
            sticky = "; being sticky, it still lets anyone add job files" if st.st_mode & stat.S_ISVTX else ""
            message = (f"jobs directory {where} is {long}{sticky}; jobctl runs as root and refuses it, since "
                       f"whoever can add or replace files in it could run commands as root: {_fix(path)}")
            found.append(Unsafe(Problem(directory, 1, 1, message), path, short))
        else:
            message = (f"{long}; it holds the jobs directory {real}, so whoever controls it could replace the job "
                       f"files and run commands as root: {_fix(path)}, or move the jobs directory under a "
                       f"directory only root can change (e.g. {paths.SYSTEM_JOBS_DIR})")
            found.append(Unsafe(Problem(path, 1, 1, message), path, short))
    return found


def _file_unsafe(fd: int, st: os.stat_result, path: str, link: bool, dir_real: str, name: str) -> list[Unsafe]:
    """As root: the opened job file (a link's final target) and, for a link, the directories holding it."""
    if not link:
        long, short = _issues(st, sticky_ok=False)
        if not long:
            return []
        message = (f"{long}; jobctl runs as root and refuses it, since whoever can change it could run commands "
                   f"as root: {_fix(path)}")
        return [Unsafe(Problem(path, 1, 1, message), path, short)]
    real = _fd_path(fd, os.path.join(dir_real, name))
    links = _link_unsafe(os.path.join(dir_real, name), f"job file {path}")
    if links:
        return links
    long, short = _issues(st, sticky_ok=False)
    if long:
        message = (f"links to {real}, which is {long}; jobctl runs as root and refuses it, since whoever can "
                   f"change it could run commands as root: {_fix(real)}")
        return [Unsafe(Problem(path, 1, 1, message), real, short)]
    # The target's directories decide who can replace it.  Open the directory
    # and make sure it holds the very file opened, then walk up from there.
    parent, base = os.path.split(real)
    try:
        pfd = os.open(parent or "/", _DIR_FLAGS)
    except OSError as exc:
        return [Unsafe(Problem(path, 1, 1, f"links to {real}, whose directory cannot be checked: {exc.strerror}; "
                                           "keep job files in a directory only root can change"), real, "unchecked")]
    try:
        try:
            same = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except OSError:
            same = None
        if same is None or (same.st_dev, same.st_ino) != (st.st_dev, st.st_ino):
            return [Unsafe(Problem(path, 1, 1, f"links to {real}, which changed while it was checked; "
                                               "validate again"), real, "changed")]
        found = []
        try:
            chain = _walk_up(pfd, parent or "/")
        except OSError as exc:
            return [Unsafe(Problem(path, 1, 1, f"links to {real}, whose directories cannot be checked "
                                               f"({exc.strerror}); keep job files in a directory only root can "
                                               "change"), real, "unchecked")]
        for dpath, dst in chain:
            long, short = _issues(dst, sticky_ok=True)
            if long:
                message = (f"links to {real}, in {dpath}, which is {long}; whoever controls that directory could "
                           f"replace the job file and run commands as root: {_fix(dpath)}, or keep the job file in "
                           "a directory only root can change")
                found.append(Unsafe(Problem(path, 1, 1, message), dpath, short))
        return found
    finally:
        os.close(pfd)


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def _open_dir(directory: str) -> int:
    try:
        return os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:
        raise JobctlError(
            f"jobs directory {directory} does not exist; create it (jobctl init {directory}) "
            "or point --jobs-dir / JOBCTL_JOBS_DIR at yours"
        ) from None
    except NotADirectoryError:
        raise JobctlError(f"jobs directory {directory} is not a directory") from None
    except PermissionError:
        raise JobctlError(f"jobs directory {directory} is not readable (permission denied)") from None
    except OSError as exc:
        raise JobctlError(f"jobs directory {directory} cannot be opened: {exc.strerror}") from None


def _select(directory: str, names: list[str]) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """The job files of a directory listing in sorted order, and its defaults file, as (name, path)."""
    files: list[tuple[str, str]] = []
    defaults = None
    for name in sorted(names):
        stem, ext = os.path.splitext(name)
        if ext not in (".yaml", ".yml") or name.startswith("."):
            continue
        if stem in DEFAULTS_STEMS:
            defaults = (name, os.path.join(directory, name))
        elif not name.startswith("_"):
            files.append((name, os.path.join(directory, name)))
    return files, defaults


class _Dir:
    """The jobs directory, open; every file is opened relative to it."""

    def __init__(self, directory: str) -> None:
        self.path = directory
        self.fd = _open_dir(directory)
        try:
            self.as_root = os.geteuid() == 0
            self.real = _fd_path(self.fd, directory)
            self.unsafe = _dir_unsafe(directory, self.fd) if self.as_root else []
            try:
                names = os.listdir(self.fd)
            except OSError as exc:
                raise JobctlError(f"jobs directory {directory} cannot be read: {exc.strerror}") from None
            self.files, self.defaults = _select(directory, names)
        except BaseException:
            os.close(self.fd)
            raise

    def close(self) -> None:
        os.close(self.fd)

    def open(self, name: str, path: str, out: _Collector | None, unsafe: list[Unsafe]) -> int | None:
        """A descriptor of the regular file ``name``, or None after reporting why not.

        ``unsafe`` collects, as root, why root must not trust it.  Nothing but
        a regular file is ever opened for reading: lstat first (a device may
        act on open), then open without following a link unless it was one,
        without blocking (a FIFO), and fstat what was opened.
        """
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            link = stat.S_ISLNK(st.st_mode)
            if link:
                st = os.stat(name, dir_fd=self.fd)
        except OSError as exc:
            if out is not None:
                out.add(path, None, f"cannot read: {exc.strerror}")
            return None
        if not stat.S_ISREG(st.st_mode):
            if out is not None:
                self._not_regular(path, st, link, out)
            return None
        try:
            fd = os.open(name, _FILE_FLAGS | (0 if link else os.O_NOFOLLOW), dir_fd=self.fd)
        except OSError as exc:
            if out is not None:
                out.add(path, None, f"cannot read: {exc.strerror}")
            return None
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):  # replaced between the lstat and the open
                if out is not None:
                    self._not_regular(path, fst, link, out)
                os.close(fd)
                return None
            if self.as_root:
                found = _file_unsafe(fd, fst, path, link, self.real, name)
                if found:
                    unsafe.extend(found)
                    os.close(fd)
                    return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _not_regular(path: str, st: os.stat_result, link: bool, out: _Collector) -> None:
        what = ("a symbolic link to " if link else "") + _kind(st)
        out.add(path, None, f"{what}, not a regular file; job files are regular files: move it out of the jobs "
                "directory or rename it so that its name does not end in .yaml or .yml")


def unsafe_paths(directory: str) -> list[Unsafe]:
    """As root: the jobs directory, directories above it and job files root must not trust.

    ``jobctl doctor`` lists these; ``load_dir`` refuses them.  Empty when not root.
    """
    if os.geteuid() != 0:
        return []
    jobs = _Dir(directory)
    try:
        found = list(jobs.unsafe)
        for name, path in ([jobs.defaults] if jobs.defaults else []) + jobs.files:
            fd = jobs.open(name, path, None, found)
            if fd is not None:
                os.close(fd)
        return found
    finally:
        jobs.close()


# --- reading and composing one file ------------------------------------------------------------


def _read_documents(jobs: _Dir, name: str, path: str, out: _Collector) -> list[Node]:
    """Compose every YAML document of a file, or report why it cannot be read."""
    unsafe: list[Unsafe] = []
    fd = jobs.open(name, path, out, unsafe)
    for u in unsafe:
        out.add(path, None, u.problem.message)
    if fd is None:
        return []
    try:
        data = _read_at_most(fd, MAX_FILE_BYTES + 1)
    except OSError as exc:
        out.add(path, None, f"cannot read: {exc.strerror}")
        return []
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        out.add(path, None, "file is larger than 1 MiB; job files are small text files, split it up")
        return []
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        out.add(path, None, "binary file (NUL byte); job files are UTF-8 YAML text",
                line=line, column=nul - (data.rfind(b"\n", 0, nul) + 1) + 1)
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        out.add(path, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                line=line, column=col)
        return []
    if text.startswith("\ufeff"):
        text = text[1:]
    return _compose_text(text, path, out)


def _read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fd``, to its end.

    In chunks: a buffered read(limit) allocates ``limit`` bytes for every
    file, a megabyte each time for files of a few hundred bytes.
    """
    parts, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(64 * 1024, limit - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _compose_text(text: str, path: str, out: _Collector) -> list[Node]:
    out.texts[path] = text
    # The check PyYAML's reader makes, made first: libyaml's message for it
    # names no character.
    bad = Reader.NON_PRINTABLE.search(text)
    if bad:
        pos = bad.start()
        out.add(path, None, f"character U+{ord(text[pos]):04X} is not allowed in YAML text; remove it",
                line=text.count("\n", 0, pos) + 1, column=pos - (text.rfind("\n", 0, pos) + 1) + 1)
        return []
    try:
        docs = _fast_compose(text) if _Loader.base is _CBase else None
        return docs if docs is not None else _compose(text, _Loader)
    except (_Refused, ComposerError) as exc:
        # raised by jobctl's own composer (Python), worded the same with either parser
        _report_yaml(exc, text, path, out)
        return []
    except yaml.YAMLError as exc:
        c_error = exc
    # libyaml's messages do not name the offending character; the pure-Python
    # parser's do.  It re-reads the text up to the line after the error: all of
    # a small file, never more than _REPARSE_CHARS (it reads ~1 MiB a second).
    prefix = _reparse_prefix(text, c_error)
    if prefix is not None:
        try:
            _compose(prefix, _PyLoader)
        except yaml.YAMLError as exc:
            _report_yaml(exc, text, path, out)
            return []
    _report_yaml(c_error, text, path, out)
    return []


def _reparse_prefix(text: str, exc: yaml.YAMLError) -> str | None:
    if len(text) <= _REPARSE_CHARS:
        return text
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return None
    lines = text[:_REPARSE_CHARS].split("\n", mark.line + 2)
    if len(lines) <= mark.line + 2:
        return None  # the error is further into the file than the parser may re-read
    return "\n".join(lines[: mark.line + 2]) + "\n"


def _report_yaml(exc: yaml.YAMLError, text: str, path: str, out: _Collector) -> None:
    if isinstance(exc, _Refused):
        out.add(path, None, exc.message, line=exc.mark.line + 1, column=exc.mark.column + 1)
    elif isinstance(exc, ReaderError):
        # Raised for control characters and the like; its position indexes ``text``.
        pos = min(exc.position, len(text))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        character = exc.character if isinstance(exc.character, int) else 0
        out.add(path, None, f"character U+{character:04X} is not allowed in YAML text; remove it",
                line=line, column=col)
    elif isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        tab = _tab_indent(text, mark, exc.problem or "")
        if tab is not None:
            # PyYAML says "found character '\t' that cannot start any token",
            # libyaml speaks of violated indentation: the cause is the same
            out.add(path, None, tab[2], line=tab[0], column=tab[1])
            return
        problem = exc.problem or exc.context or ""
        message = f"YAML syntax error: {problem}"
        hint = _syntax_hint(text, mark, problem)
        out.add(path, None, message + hint, line=(mark.line + 1) if mark else 1,
                column=(mark.column + 1) if mark else 1)
    else:
        out.add(path, None, f"YAML error: {exc}")


def _compose(text: str, cls: type) -> list[Node]:
    return _documents(cls(text))


def _documents(loader: Any) -> list[Node]:
    """The documents ``loader`` composes from its text; the loader is disposed of after, whatever happens."""
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(node)
        return docs
    finally:
        loader.dispose()


def _line_of(text: str, number: int) -> str | None:
    """Line ``number`` (0-based) of ``text``, splitting no further than needed."""
    lines = text.split("\n", number + 1)
    return lines[number] if number < len(lines) else None


def _tab_indent(text: str, mark: yaml.Mark | None, problem: str) -> tuple[int, int, str] | None:
    """(line, column, message) when a tab in a line's indentation is what YAML refused, else None."""
    if mark is None:
        return None
    line = _line_of(text, mark.line)
    if line is None:
        return None
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    if "\t" not in indent:
        return None
    # PyYAML names the tab; libyaml sometimes only points at it
    at_tab = line[mark.column:mark.column + 1] == "\t"
    if not (at_tab or "tab" in problem or "'\\t'" in problem):
        return None
    # A converted crontab or a tab-indenting editor leaves more than one such
    # line; naming them saves a validate per line.
    others = [str(i + 1) for i, other in enumerate(text.split("\n"))
              if other.startswith("\t") and i != mark.line and other.strip()]
    more = ""
    if others:
        listed = ", ".join(others[:10]) + (", ..." if len(others) > 10 else "")
        more = f" (line{'s' if len(others) > 1 else ''} {listed} also start{'' if len(others) > 1 else 's'} with a tab)"
    return (mark.line + 1, indent.index("\t") + 1,
            f"YAML indentation uses spaces, not tabs: line {mark.line + 1} is indented with a tab; "
            f"replace it with spaces{more}")


#: ``key: value`` on one line, a list item's dash allowed before the key
_KEY_VALUE = re.compile(r"(?P<indent>[ ]*)(?:-[ ]+)?(?P<key>[A-Za-z0-9_.-]+):[ \t]+(?P<value>\S.*)\Z")


def _quote(value: str) -> str:
    """``value`` as a YAML single-quoted scalar: taken as written, ' doubled."""
    return "'" + value.replace("'", "''") + "'"


def _colon_hint(text: str, mark: yaml.Mark) -> str:
    """Why YAML found a key in the middle of a value: a ': ' in an unquoted command, mostly."""
    line = _line_of(text, mark.line)
    if line is None:
        return ""
    m = _KEY_VALUE.match(line)
    if m and mark.column > m.start("value"):
        key, value = m.group("key"), m.group("value").rstrip()
        what = "the command" if key == "command" else "the value"
        example = f", e.g. {key}: {_quote(value)}" if len(line) <= 100 and " #" not in value else ""
        colon = "ends in ':'" if not line[mark.column + 1:].strip() else "contains ': ' (a colon and a space)"
        return f"; the value of {key} {colon}, which YAML reads as a new key: quote {what}{example}"
    # A line indented more than a key above it continues that key's plain value.
    indent = len(line) - len(line.lstrip(" "))
    lines = text.split("\n", mark.line)  # once: a line at a time would be quadratic
    for number in range(mark.line - 1, -1, -1):
        above = lines[number]
        if not above.strip() or above.lstrip().startswith("#"):
            continue
        if len(above) - len(above.lstrip(" ")) >= indent:
            continue
        m = _KEY_VALUE.match(above)
        if not m or m.group("value")[:1] in ("|", ">", "'", '"', "[", "{", "&", "*", "!"):
            return ""
        key = m.group("key")
        return (f"; line {mark.line + 1} is indented more than {key} (line {number + 1}), so it continues "
                f"{key}'s value, and its ': ' (a colon and a space) reads as a new key: if it is a key of its "
                f"own, indent it like {key}; otherwise quote the value, or write it as a block scalar "
                f"({key}: >- and the text on the lines below, indented)")
    return ""


def _syntax_hint(text: str, mark: yaml.Mark | None, problem: str = "") -> str:
    """The classic mistakes: unquoted cron values starting with * or @, a ': ' in a command, \\%."""
    if mark is None:
        return ""
    line = _line_of(text, mark.line)
    if line is None:
        return ""
    if problem.startswith("mapping values are not allowed"):
        return _colon_hint(text, mark)
    if "unknown escape" in problem and "\\%" in line:
        return ("; \\% is how a crontab escapes %, not a YAML escape: jobctl needs no % escaping, so write % "
                "(in double quotes a backslash starts an escape; single quotes take the text as written)")
    _, colon, value = line.partition(":")
    value = value.strip()
    if colon and value[:1] in ("*", "@", "%", "`"):
        example = f", e.g. {line.split(':')[0].strip()}: \"{value}\"" if len(line) <= 100 else ""
        return f"; values starting with {value[0]!r} must be quoted{example}"
    return ""


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: ScalarNode) -> Any:
    """The value of a scalar node; a value its tag cannot build is a ConstructorError."""
    if node.tag == _STR_TAG:
        return node.value  # what SafeConstructor builds for it, without building one
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
        raise ConstructorError(None, None, f"{spec.show(node.value)} is too long for a number ({len(node.value)} "
                               f"characters, at most {MAX_NUMBER_CHARS}); quote it if it is text", node.start_mark)
    # A fresh constructor each time: SafeConstructor caches every node it
    # builds, and a shared one would keep them all (and stale state after errors).
    try:
        return SafeConstructor().construct_object(node, deep=False)
    except (ValueError, KeyError, AttributeError, IndexError, OverflowError):
        # PyYAML's int, float, bool and timestamp constructors raise these for
        # values that do not fit the tag: !!float abc, !!bool maybe, 2024-02-30,
        # and IndexError for an !!int or !!float of '', '-', '+' or '_'.
        raise ConstructorError(None, None, f"{spec.show(node.value)} is not a valid {tag}; quote it if it is text",
                               node.start_mark) from None


def _item(node: ScalarNode, field_: spec.Field) -> Any:
    """A list item or map value; numbers keep their text where the field wants text."""
    if field_.numbers_as_written and node.tag in _NUMBER_TAGS:
        # YAML 1.1 would turn 0644 into 420, 1:30 into 90 and 1.10 into 1.1.
        return node.value
    return _scalar(node)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mapping_items(node: MappingNode, path: str, job: str | None, out: _Collector,
                   what: str) -> tuple[list[tuple[ScalarNode, Node]], bool]:
    """Scalar keys of a mapping, reporting duplicates and non-scalar keys.

    The items returned keep the first of duplicated keys, so the rest of the
    mapping is still checked in the same pass.
    """
    items: list[tuple[ScalarNode, Node]] = []
    seen: dict[str, ScalarNode] = {}
    ok = True
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            out.add(path, key_node, "YAML merge keys (<<) are not supported; put shared values in "
                    "_defaults.yaml", job)
            ok = False
            continue
        if not isinstance(key_node, ScalarNode):
            out.add(path, key_node, f"{what} keys must be plain names, not {_node_kind(key_node)}", job)
            ok = False
            continue
        key = key_node.value
        if key in seen:
            first = seen[key].start_mark.line + 1
            out.add(path, key_node, f"duplicate key {spec.show(key)} (first at line {first}); remove one", job)
            ok = False
            continue
        seen[key] = key_node
        items.append((key_node, value_node))
    return items, ok


def _shape(node: Node, field_: spec.Field, path: str, job: str | None, out: _Collector) -> tuple[bool, Any]:
    """Build the plain value of a key from its node, one level deep at most."""
    key = field_.key
    try:
        if isinstance(node, ScalarNode) and "scalar" in field_.shapes:
            return True, _scalar(node)
        if isinstance(node, SequenceNode) and "list" in field_.shapes:
            values = []
            for item in node.value:
                if not isinstance(item, ScalarNode):
                    hint = _colon_item_hint(item, out.texts.get(path, ""))
                    out.add(path, item, f"{key}: list items must be plain values, not {_node_kind(item)}{hint}",
                            job)
                    return False, None
                values.append(_item(item, field_))
            return True, values
        if isinstance(node, SequenceNode) and "records" in field_.shapes:
            # a list whose items are plain values or flat mappings of them (requires: [{job: a, within: 2h}])
            records: list[Any] = []
            for item in node.value:
                if isinstance(item, ScalarNode):
                    records.append(_item(item, field_))
                    continue
                if not isinstance(item, MappingNode):
                    out.add(path, item, f"{key}: list items must be plain values or mappings, not "
                            f"{_node_kind(item)}", job)
                    return False, None
                record = _flat_mapping(item, field_, key, path, job, out)
                if record is None:
                    return False, None
                records.append(record)
            return True, records
        if isinstance(node, MappingNode) and "map" in field_.shapes:
            items, ok = _mapping_items(node, path, job, out, key)
            if not ok:
                return False, None
            result: dict[str, Any] = {}
            for k, v in items:
                if (field_.list_values and isinstance(v, SequenceNode)
                        and all(isinstance(i, ScalarNode) for i in v.value)):
                    result[k.value] = [_item(i, field_) for i in v.value]
                    continue
                if field_.map_values and isinstance(v, MappingNode):
                    inner = _flat_mapping(v, field_, f"{key} {k.value}", path, job, out)
                    if inner is None:
                        return False, None
                    result[k.value] = inner
                    continue
                if not isinstance(v, ScalarNode):
                    what = "a plain value or a list of them" if field_.list_values else \
                        "a mapping of plain values" if field_.map_values else "a plain value"
                    out.add(path, v, f"{key} {spec.show(k.value)[1:-1]}: must be {what}, not {_node_kind(v)}", job)
                    return False, None
                # keys as written: an env variable named ON or NO is not a boolean
                result[k.value] = _item(v, field_)
            return True, result
    except ConstructorError as exc:
        mark = exc.problem_mark
        if mark is None:
            out.add(path, node, f"{key}: {exc.problem}", job)
        else:  # the item inside a list or mapping
            out.add(path, None, f"{key}: {exc.problem}", job, line=mark.line + 1, column=mark.column + 1)
        return False, None
    allowed = " or ".join({"scalar": "a value", "list": "a list", "map": "a mapping", "records": "a list"}[s]
                          for s in field_.shapes)
    out.add(path, node, f"{key} must be {allowed}, not {_node_kind(node)}", job)
    return False, None


def _flat_mapping(node: MappingNode, field_: spec.Field, what: str, path: str, job: str | None,
                  out: _Collector) -> dict[str, Any] | None:
    """A mapping of plain values inside a key's value (a requires item, a params entry); None when reported."""
    pairs, ok = _mapping_items(node, path, job, out, what)
    if not ok:
        return None
    result = {}
    for k, v in pairs:
        if not isinstance(v, ScalarNode):
            out.add(path, v, f"{what} {spec.show(k.value)[1:-1]}: must be a plain value, not {_node_kind(v)}", job)
            return None
        result[k.value] = _item(v, field_)
    return result


def _colon_item_hint(item: Node, text: str) -> str:
    """A list item YAML read as a one-key mapping was, nearly always, text with ': ' in it."""
    if not (isinstance(item, MappingNode) and len(item.value) == 1
            and all(isinstance(n, ScalarNode) and not n.style for n in item.value[0])):  # plain: None or ""
        return ""
    written = ""
    start, end = item.start_mark, item.value[0][1].end_mark  # a block mapping ends on the next line
    if start.line == end.line:
        written = (_line_of(text, start.line) or "")[start.column:end.column].strip()
    example = f", e.g. {_quote(written)}" if written and ": " in written and len(written) <= 80 else ""
    return (": the item contains ': ' (a colon and a space), which YAML reads as a key and its value; "
            f"quote the item{example}")


def _schedule_list(node: SequenceNode, path: str, job: str | None, out: _Collector) -> None:
    """A crontab's several lines for one command, converted to a list: one job per schedule."""
    texts = [i.value for i in node.value if isinstance(i, ScalarNode)]
    fix = ""
    if len(texts) == len(node.value) == 1:
        if _valid_schedule(texts[0]):
            fix = f"; for one schedule, write it without the list: schedule: {_quote(texts[0])}"
    elif len(texts) == len(node.value) > 1:
        merged = _merge_schedules(texts)
        if merged:
            fix = (f"; these differ only in the {merged[1]}, so one schedule runs when any of them does: "
                   f"schedule: {_quote(merged[0])}")
    out.add(path, node, "schedule is a list, but a job has one schedule: one job per schedule. Give each schedule "
            "its own job (a file each, or jobs separated by --- in one file, each with its own name:)" + fix, job)


def _valid_schedule(text: str) -> bool:
    try:
        spec.FIELDS_BY_KEY["schedule"].parse(text)
    except ValueError:
        return False
    return True


_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _merge_schedules(texts: list[str]) -> tuple[str, str] | None:
    """One cron expression running exactly when any of ``texts`` does, and the field merged; or None.

    Only for 5-field expressions that differ in one field, none of whose
    differing values has a ``*``: a list then is the union of the runs, and
    neither cron's day rule (a day field starting with ``*``) nor the DST
    class (minute or hour starting with ``*``) changes.
    """
    if len(texts) > 24:  # a crontab converted by hand, not a file built to make validate slow
        return None
    fields = [t.split() for t in texts]
    if any(len(f) != 5 for f in fields):  # @daily and friends are one or two words
        return None
    if not all(_valid_schedule(t) for t in texts):
        return None
    differing = [i for i in range(5) if len({f[i] for f in fields}) > 1]
    if len(differing) != 1:
        return None
    i = differing[0]
    values = list(dict.fromkeys(f[i] for f in fields))
    if any("*" in v for v in values):
        return None
    merged = fields[0][:i] + [",".join(values)] + fields[0][i + 1:]
    text = " ".join(merged)
    return (text, _FIELD_NAMES[i]) if _valid_schedule(text) else None


def _sub_node(node: Node, err: spec.FieldError) -> Node:
    if err.at is None:
        return node
    if isinstance(node, SequenceNode) and isinstance(err.at, int) and err.at < len(node.value):
        return node.value[err.at]
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == err.at:
                return k if err.on_key else v
    return node


def _parse_keys(node: MappingNode, path: str, job: str | None, out: _Collector,
                allowed: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Node], bool]:
    """Parse every key of a job (or defaults) mapping; report each bad one."""
    values: dict[str, Any] = {}
    nodes: dict[str, Node] = {}
    items, ok = _mapping_items(node, path, job, out, "job")
    for key_node, value_node in items:
        key = key_node.value
        if key not in allowed:
            # no key is longer than 12 characters: a long one is close to none
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6) if len(key) <= 40 else []
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
            if key in spec.KEYS:
                hint = " here; set it in each job file instead"
            out.add(path, key_node, f"unknown key {spec.show(key)}{hint}", job)
            ok = False
            continue
        field_ = spec.FIELDS_BY_KEY[key]
        if _is_null(value_node):
            out.add(path, value_node, f"{key} is empty; give it a value or remove the key", job)
            ok = False
            continue
        if key == "schedule" and isinstance(value_node, SequenceNode):
            _schedule_list(value_node, path, job, out)
            ok = False
            continue
        shaped, raw = _shape(value_node, field_, path, job, out)
        if not shaped:
            ok = False
            continue
        try:
            values[key] = field_.parse(raw)
            nodes[key] = value_node
            if key == "command":
                _warn_crontab_escape(values[key], value_node, path, job, out)
        except spec.FieldError as exc:
            out.add(path, _sub_node(value_node, exc), str(exc), job)
            ok = False
        except ValueError as exc:
            message = str(exc)
            if not message.startswith(key) and not message.startswith("schedule"):
                message = f"{key} {message}" if message.startswith("must") else f"{key}: {message}"
            out.add(path, value_node, message, job)
            ok = False
    return values, nodes, ok


def _escape_at(node: Node, lines: list[str]) -> tuple[int, int] | None:
    """Line and column (1-based) of the first ``\\%`` written inside ``node``, if found in the source."""
    start, end = node.start_mark, node.end_mark
    for number in range(start.line, min(end.line + 1, len(lines))):
        line = lines[number]
        first = start.column if number == start.line else 0
        last = end.column if number == end.line else len(line)
        at = line.find("\\%", first, max(first, last))
        if at >= 0:
            return number + 1, at + 1
    return None


def _warn_crontab_escape(command: str | tuple[str, ...], node: Node, path: str, job: str | None,
                         out: _Collector) -> None:
    """Warn about a ``\\%`` kept from a crontab line.

    cron ends a command at a bare % (the rest becomes its input), so crontab
    lines write \\% for %.  jobctl never puts the command into a crontab
    line: the backslash reaches the shell, which drops it outside quotes but
    keeps it inside them (date '+\\%F' prints \\2024-...), or, for a list,
    the program itself.
    """
    if isinstance(command, str):
        if "\\%" not in command:
            return
        where: Node = node
        message = ("command has \\%, a crontab escape: jobctl never writes the command into the crontab, so % "
                   "needs no escaping, and the shell keeps the backslash inside quotes ('+\\%F' stays +\\%F); "
                   "write % instead of \\%")
    else:
        index = next((i for i, arg in enumerate(command) if "\\%" in arg), None)
        if index is None:
            return
        where = node.value[index] if isinstance(node, SequenceNode) and index < len(node.value) else node
        message = (f"command argument {index + 1} has \\%, a crontab escape: a command list runs without a "
                   "shell, so the program gets the backslash as written; % needs no escaping in jobctl: write % "
                   "instead of \\%")
    if out.warned_enough(path):
        out.warn(path, where, message, job)  # counted, not listed: no need to find where
        return
    at = _escape_at(where, out.lines(path))
    if at is None:
        out.warn(path, where, message, job)
    else:
        out.warn(path, None, message, job, line=at[0], column=at[1])


def _job_label(node: MappingNode, fallback: str | None) -> str | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == "name" and isinstance(v, ScalarNode) and v.value:
            return str(v.value)
    return fallback


def _check_user(user: str | None, node: Node | None, path: str, job: str | None, out: _Collector) -> bool:
    if user is None:
        return True
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        out.add(path, node, f"user {user!r} does not exist on this host; create it or fix the name", job)
        return False
    return True


def load_dir(directory: str) -> LoadResult:
    """Validate every job file of a directory in one pass."""
    jobs = _Dir(directory)
    try:
        return _load(jobs)
    finally:
        jobs.close()


def _load(jobs: _Dir) -> LoadResult:
    out = _Collector()
    result = LoadResult(files=[path for _, path in jobs.files])
    if jobs.defaults:
        result.files.insert(0, jobs.defaults[1])
    if jobs.unsafe:
        # Whoever controls the directory controls every file in it: none is read.
        for u in jobs.unsafe:
            out.add(u.problem.path, None, u.problem.message)
        result.problems = out.problems
        return result

    defaults: dict[str, Any] = {}
    if jobs.defaults:
        name, defaults_path = jobs.defaults
        try:
            defaults = _load_defaults(jobs, name, defaults_path, out)
        except _TooMany:
            pass

    seen_names: dict[str, str] = {}
    #: job name -> (file, the nodes of its keys): where a then/on_failure/requires problem is reported
    refs: dict[str, tuple[str, dict[str, Node]]] = {}
    for name, path in jobs.files:
        try:
            nodes = [n for n in _read_documents(jobs, name, path, out) if not _is_null(n)]
            if not nodes and not out.has(path):
                out.add(path, None, "no job in this file; add a job mapping or delete the file")
                continue
            stem = os.path.splitext(name)[0]
            only = len(nodes) == 1
            for node in nodes:
                _load_job(path, node, stem, only, defaults, seen_names, out, result, refs)
        except _TooMany:
            continue
    _check_links(result, refs, seen_names, out)
    result.problems = out.problems
    # job is None for _defaults.yaml: never compared with a name
    result.warnings = sorted(out.warnings, key=lambda p: (p.path, p.line, p.column, p.message))
    return result


def _load_defaults(jobs: _Dir, name: str, path: str, out: _Collector) -> dict[str, Any]:
    docs = _read_documents(jobs, name, path, out)
    allowed = tuple(k for k in spec.KEYS if k not in NOT_IN_DEFAULTS)
    if len(docs) > 1:
        out.add(path, docs[1], "_defaults.yaml holds one mapping of default values, not several documents")
    elif docs and not _is_null(docs[0]):
        if not isinstance(docs[0], MappingNode):
            out.add(path, docs[0], f"defaults must be a mapping of keys, not {_node_kind(docs[0])}")
        else:
            defaults, default_nodes, _ = _parse_keys(docs[0], path, None, out, allowed)
            _check_user(defaults.get("user"), default_nodes.get("user"), path, None, out)
            return defaults
    return {}


def _load_job(path: str, node: Node, stem: str, only: bool, defaults: dict[str, Any],
              seen_names: dict[str, str], out: _Collector, result: LoadResult,
              refs: dict[str, tuple[str, dict[str, Node]]]) -> None:
    if not isinstance(node, MappingNode):
        out.add(path, node, f"a job must be a mapping of keys (name, schedule, command, ...), not {_node_kind(node)}")
        return
    label = _job_label(node, stem if only else None)
    values, nodes, ok = _parse_keys(node, path, label, out, spec.KEYS)
    written = {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
    name = values.get("name")
    if name is None and "name" not in written:
        if not only:
            out.add(path, node, "name is required when a file holds several jobs; add name: <job-name>", label)
            ok = False
        elif spec.NAME_RE.match(stem):
            name = stem
        else:
            out.add(path, node, f"the file name {stem!r} is not a valid job name; add a name: key "
                    "(lowercase letters, digits, '_', '.', '-') or rename the file", None)
            ok = False
    for key in spec.FIELDS:
        if key.required and key.key not in values and key.key not in defaults and key.key not in written:
            out.add(path, node, f"missing required key {key.key!r}", name or label)
            ok = False
    if name:
        where = f"{path}:{_pos(node)[0]}"
        if name in seen_names:
            out.add(path, nodes.get("name", node), f"duplicate job name {name!r} (also defined at "
                    f"{seen_names[name]}); job names must be unique", name)
            ok = False
        else:
            seen_names[name] = where
        if not _check_user(values.get("user"), nodes.get("user"), path, name, out):
            ok = False
    if not ok or not name:
        return
    merged = dict(defaults)
    merged.update(values)
    if "env" in defaults and "env" in values:
        merged["env"] = {**defaults["env"], **values["env"]}
    merged["name"] = name
    if merged.get("lock_group") and merged.get("concurrency") == "allow":
        out.add(path, nodes.get("lock_group") or nodes.get("concurrency") or node,
                f"lock_group {merged['lock_group']!r} with concurrency allow: allow would let the group's runs "
                "overlap; use forbid, wait or replace", name)
        return
    refs[name] = (path, nodes)
    required = [k for k, p in (merged.get("params") or {}).items() if p.required]
    if required and merged.get("enabled", True):
        out.warn(path, nodes.get("params"), f"params {', '.join(required)} required: the runs cron starts on the "
                 "schedule get no parameters and fail (recorded); give a default, or run the job by jobctl submit "
                 "and jobctl run -p only", name)
    result.jobs.append(spec.build(merged, source=f"{path}:{_pos(node)[0]}"))


def _check_links(result: LoadResult, refs: dict[str, tuple[str, dict[str, Node]]], seen: dict[str, str],
                 out: _Collector) -> None:
    """then, on_failure and requires across jobs: every name is a job, and no chain comes back to where it began.

    A job that fails a check is taken out of the result, as any invalid job is.
    """
    by_name = {job.name: job for job in result.jobs}
    bad: set[str] = set()

    def item_node(job: str, key: str, index: int) -> Node | None:
        node = refs[job][1].get(key)
        if isinstance(node, SequenceNode) and index < len(node.value):
            return node.value[index]
        return node

    for job in result.jobs:
        path = refs[job.name][0]
        named = [("then", n) for n in job.then] + [("on_failure", n) for n in job.on_failure] + \
                [("requires", r.job) for r in job.requires]
        counters: dict[str, int] = {}
        for key, other in named:
            index = counters[key] = counters.get(key, -1) + 1
            if other not in seen:
                close = difflib.get_close_matches(other, list(seen), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "; name a job of this directory"
                out.add(path, item_node(job.name, key, index), f"{key}: no job named {other!r}{hint}", job.name)
                bad.add(job.name)
            elif other == job.name and key == "requires":
                out.add(path, item_node(job.name, key, index), f"requires: {other!r} is this job itself; a job "
                        "cannot wait for its own runs", job.name)
                bad.add(job.name)
            elif key != "requires" and other in by_name and not by_name[other].enabled:
                out.warn(path, item_node(job.name, key, index), f"{key}: job {other!r} is disabled "
                         "(enabled: false), so it is never started from here", job.name)
    # then and on_failure form one graph: a run of a cycle's first job would start itself again, for ever
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(name: str, trail: list[str]) -> None:
        state[name] = 1
        job = by_name[name]
        for nxt in (*job.then, *job.on_failure):
            if nxt not in by_name:
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [name, nxt] if nxt in trail else [name, nxt]
                first = by_name[nxt]
                key = "then" if cycle[1] in first.then else "on_failure"
                index = list(getattr(first, key)).index(cycle[1])
                out.add(refs[nxt][0], item_node(nxt, key, index),
                        f"{key}: {' -> '.join(cycle)} is a cycle: a run would start itself again without end; "
                        "remove one of these links", nxt)
                bad.update(cycle)
            elif nxt not in state:
                walk(nxt, [*trail, name])
        state[name] = 2

    for name in by_name:
        if name not in state:
            walk(name, [])
    if bad:
        result.jobs = [job for job in result.jobs if job.name not in bad]


def load_jobs(directory: str) -> list[spec.JobSpec]:
    """Every job of the directory, or InvalidJobs listing every problem."""
    result = load_dir(directory)
    if result.problems:
        raise InvalidJobs(result.problems)
    return result.jobs


@dataclass
class Loaded:
    """A jobs directory as the commands read it: its path and what it holds, or why it could not be read."""

    directory: str
    #: None when the directory could not be read at all (then ``error`` says why)
    result: LoadResult | None
    error: JobctlError | None = None

    @property
    def jobs(self) -> list[spec.JobSpec]:
        """The valid jobs (none when the directory could not be read)."""
        return self.result.jobs if self.result is not None else []

    @property
    def problems(self) -> list[Problem]:
        return self.result.problems if self.result is not None else []


def read(jobs_dir: str | None = None) -> Loaded:
    """The jobs directory a command works on (``jobs_dir``, else paths.jobs_dir's choice), loaded; never raises.

    The one way every command reads job files.  What a command makes of a
    directory that cannot be read or has problems is its own decision:
    validate reports them, apply refuses, status and doctor carry on.
    """
    directory = paths.jobs_dir(jobs_dir)
    try:
        return Loaded(directory, load_dir(directory))
    except JobctlError as exc:
        return Loaded(directory, None, exc)
