"""A crontab written by hand -> job files that run the same commands, with the same input, shell and environment.

The crontab is read the way Debian's cron (3.0pl1, the reading jobs/schedule.py
and tests/cron_oracle.py follow) reads it, line by line:

* a line is a comment (first non-blank ``#``), an environment setting
  (``crontab.cron_env``, cron's own load_env), or an entry; cron gives an
  entry every setting read above it, the last one of each name;
* an entry is five time fields (or an ``@`` word, case-sensitive), in the
  /etc/cron.d format a user, then the command: the rest of the line;
* cron ends the command at the first ``%`` not escaped by a backslash and
  turns ``\\%`` into ``%`` and ``\\\\`` into ``\\`` before it; what follows
  is written to the command's standard input, each further ``%`` a newline,
  with a final newline added (Debian's do_command.c, checked against the
  real daemon in tests/test_import.py);
* cron runs ``$SHELL -c COMMAND`` (default /bin/sh) in ``$HOME``, with the
  settings plus SHELL, HOME and PATH (``/usr/bin:/bin``) where the crontab
  set none, and LOGNAME of the crontab's owner whatever it set.

Each entry becomes one job file whose command is exactly the command cron
ran, input included (``exec <<'JOBCTL_STDIN'`` before it), with ``shell``
and ``env`` set so that the wrapper's environment is cron's.  A line cron
refuses is an error (cron then ignores the whole crontab); a line jobctl
cannot express stays in the crontab, with the reason.  python-crontab is not
used: it drops what follows a ``%``, reads a shell comment as the entry's
comment and applies settings to every entry wherever they stand.

``adopt`` then takes the imported entries out of the crontab and installs
jobctl's block in the same write, keeping the original; ``restore`` (for
`uninstall --restore`) puts it back byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from jobctl import paths
from jobctl.errors import EnvironmentProblem, ExitCode, JobctlError
from jobctl.files import replace_atomically, stage, unlink_quietly
from jobctl.install import crontab
from jobctl.jobs import schedule as schedule_mod
from jobctl.jobs import spec

BLANKS = " \t"
#: Debian's cron compares these with strcmp: @Daily is "bad time specifier" and the whole crontab is ignored
SPECIALS = ("reboot", "yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")
CRON_SHELL = "/bin/sh"
#: _PATH_DEFPATH of Debian's cron: an entry's PATH when the crontab sets none
CRON_PATH = "/usr/bin:/bin"
#: cron.h MAX_COMMAND: a command of MAX_COMMAND - 1 bytes or more is "command too long"
MAX_COMMAND = 1000
#: a line cron reads as a setting must fit MAX_ENVSTR - 1 bytes
MAX_ENVSTR = 1000
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: (low, high, names, index of names[0]) per field, as entry.c calls get_list
_FIELD_RANGES: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7, _DAYS))
STDIN_DELIMITER = "JOBCTL_STDIN"


class ImportProblem(JobctlError):
    """The input is not a crontab jobctl can import (cron would refuse it, or it is not text)."""

    code = ExitCode.NOT_OK


# --- reading, as Debian's cron reads ------------------------------------------------------------

@dataclass
class Entry:
    """One crontab entry as cron runs it."""

    line: int
    #: the line as written (no newline)
    text: str
    #: the time fields, one space apart, or the @ word as written
    schedule: str
    #: the user column of the /etc/cron.d format
    user: str | None
    #: what cron hands to ``$SHELL -c``
    command: str
    #: what cron writes to the command's standard input; None: no % (it gets an empty pipe)
    stdin: str | None
    #: the settings in effect for the entry: name -> (value, line)
    settings: dict[str, tuple[str, int]]
    #: the comment lines right above it, without their '#'
    comments: list[str]
    #: the command part of the line as written (before cron's % and \ processing)
    raw: str = ""
    #: the line numbers of ``comments``
    comment_lines: list[int] = field(default_factory=list)


@dataclass
class Reading:
    entries: list[Entry]
    #: every setting of the crontab in the order read: (name, value, line)
    settings: list[tuple[str, str, int]]
    notes: list[str] = field(default_factory=list)
    #: the line of the first jobctl block's BEGIN marker (None: no block; apply adds one at the end)
    block_at: int | None = None


def _problem(label: str, number: int, message: str) -> ImportProblem:
    return ImportProblem(f"{label}:{number}: {message}; nothing was written")


def _refused(label: str, number: int, why: str) -> ImportProblem:
    return _problem(label, number, f"{why}: Debian's cron refuses this line, and with it ignores the whole crontab "
                                   "(crontab(1) would not install it); fix or remove the line, then import again")


def _check_text(line: str, number: int, label: str, comment: bool) -> None:
    """Bytes a crontab line may not hold: NUL (binary data), non-UTF-8 outside comments, control characters."""
    if "\0" in line:
        raise _problem(label, number, f"a NUL byte at column {line.index(chr(0)) + 1}: this is binary data, not a "
                                      "crontab; give the crontab's text")
    if comment:
        return
    for column, c in enumerate(line, start=1):
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            raise _problem(label, number, f"byte 0x{o - 0xDC00:02x} at column {column} is not UTF-8: this does not "
                                          "look like a crontab (job files are UTF-8); convert it to UTF-8 first")
        if c == "\r":
            if column == len(line):
                raise _problem(label, number, "the line ends in a carriage return (a file saved with Windows line "
                                              "ends): cron passes it to the shell as part of the line; convert the "
                                              "file (dos2unix) first")
            raise _problem(label, number, f"a carriage return at column {column}; remove it")
        if (o < 32 and c != "\t") or o == 127:
            raise _problem(label, number, f"control character U+{o:04X} at column {column}; remove it")


def _lines(text: str) -> tuple[list[str], bool]:
    """The lines as cron splits them (at \\n only), and whether the last one lacked its newline."""
    parts = text.split("\n")
    unterminated = parts[-1] != ""
    if not unterminated:
        parts.pop()
    return parts, unterminated


def _token(text: str) -> tuple[str, str]:
    """The first blank-delimited word of ``text`` (after blanks) and what follows it."""
    text = text.lstrip(BLANKS)
    end = 0
    while end < len(text) and text[end] not in BLANKS:
        end += 1
    return text[:end], text[end:]


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _wrap32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _number(token: str, i: int, low: int, names: tuple[str, ...]) -> tuple[int | None, int]:
    """entry.c get_number: an alphanumeric run that is a name (any case) or all digits (atoi, 32 bits)."""
    end = i
    while end < len(token) and _alnum(token[end]):
        end += 1
    word = token[i:end]
    if not word or len(word) >= 999:
        return None, end
    if names and word.lower() in names:
        return names.index(word.lower()) + low, end
    if word.isdigit():
        return _wrap32(min(int(word), (1 << 63) - 1)), end
    return None, end


def _cron_field(token: str, index: int) -> bool:
    """Whether Debian's entry.c (get_list, get_range) accepts ``token`` as time field ``index``.

    Elements ``*``, ``N`` or ``N-M``, the last two optionally ``/STEP`` after a
    range or ``*``, separated by commas; both ends of a range in the field's
    range (a backwards one passes and matches nothing); whatever follows the
    last element up to the blank is skipped (``5;x`` is 5).
    """
    low, high, names = _FIELD_RANGES[index]
    i = 0
    while True:
        if i < len(token) and token[i] == "*":
            first, last, i = low, high, i + 1
        else:
            value, i = _number(token, i, low, names)
            if value is None:
                return False
            if i >= len(token) or token[i] != "-":
                if i < len(token) and token[i] == "/":
                    return False  # a step after a single value (Debian's parsing fixes)
                if not low <= value <= high:
                    return False
                first = last = value
                if i < len(token) and token[i] == ",":
                    i += 1
                    continue
                return True
            end, i = _number(token, i + 1, low, names)
            if end is None:
                return False
            first, last = value, end
        step = 1
        if i < len(token) and token[i] == "/":
            value, i = _number(token, i + 1, 0, ())
            if value is None or value <= 0:
                return False
            step = value
        if not (low <= first <= high and low <= last <= high):
            return False
        n = first
        while n <= last:  # for (i = num1; i <= num2; i += num3): int arithmetic, which may wrap
            if not low <= n <= high:
                return False
            n = _wrap32(n + step)
        if i < len(token) and token[i] == ",":
            i += 1
            continue
        return True


def split_command(raw: str) -> tuple[str, str | None]:
    """(what cron runs, what it writes to the command's input or None) for the command part of an entry.

    The first unescaped ``%`` ends the command; before it ``\\%`` is ``%``
    and ``\\\\`` is ``\\``; after it each unescaped ``%`` is a newline,
    ``\\%`` is ``%``, other backslashes stay, and a final newline is added
    when the input does not end with one.
    """
    out: list[str] = []
    escaped = False
    rest: str | None = None
    for i, c in enumerate(raw):
        if escaped:
            if c in "%\\":
                out[-1] = c
            else:
                out.append(c)
            escaped = False
        elif c == "\\":
            out.append(c)
            escaped = True
        elif c == "%":
            rest = raw[i + 1:]
            break
        else:
            out.append(c)
    if rest is None:
        return "".join(out), None
    data: list[str] = []
    escaped = False
    for c in rest:
        if escaped:
            if c != "%":
                data.append("\\")
        elif c == "%":
            c = "\n"
        escaped = c == "\\"
        if not escaped:
            data.append(c)
    if escaped:
        data.append("\\")
    if data and data[-1] != "\n":
        data.append("\n")
    return "".join(out), "".join(data)


def _entry(line: str, number: int, label: str, system: bool, settings: dict[str, tuple[str, int]],
           comments: list[tuple[int, str]]) -> Entry:
    s = line.lstrip(BLANKS)
    if s.startswith("@"):
        word, rest = _token(s)
        if word[1:] not in SPECIALS:
            near = [w for w in SPECIALS if w == word[1:].lower()]
            hint = f" (write @{near[0]}: cron matches these names case by case)" if near else \
                f"; use one of {', '.join('@' + w for w in SPECIALS)} or five time fields"
            raise _refused(label, number, f"bad time specifier {word!r}{hint}")
        when = word
    else:
        fields = []
        rest = s
        for index, name in enumerate(FIELD_NAMES):
            token, rest = _token(rest)
            if not token:
                got = f"{index} time field{'s' if index != 1 else ''}"
                raise _refused(label, number, f"{got} and no command; an entry is five time fields (minute hour "
                                              "day-of-month month day-of-week), then the command")
            if not _cron_field(token, index):
                raise _refused(label, number, f"bad {name} {token!r}")
            fields.append(token)
        when = " ".join(fields)
    rest = rest.lstrip(BLANKS)
    user = None
    if system:
        user, sep, rest = rest.partition(" ") if " " in rest.split("\t", 1)[0] else rest.partition("\t")
        if not user or not sep:
            raise _refused(label, number, "no user and command after the time fields (the /etc/cron.d format is "
                                          "five time fields, a user, then the command)")
    elif rest.startswith("*"):
        raise _refused(label, number, "the command starts with '*': a sixth time field? Debian's cron has no "
                                      "seconds or year field")
    if not rest.strip(BLANKS):
        raise _problem(label, number, "a schedule with no command: cron runs nothing for it; add the command or "
                                      "delete the line")
    if len(rest.encode("utf-8", "surrogateescape")) >= MAX_COMMAND - 1:
        raise _refused(label, number, f"command too long (cron takes at most {MAX_COMMAND - 2} bytes)")
    command, stdin = split_command(rest)
    return Entry(number, line, when, user, command, stdin, dict(settings), [c for _, c in comments], rest,
                 [n for n, _ in comments])


def _is_marker(line: str) -> bool:
    bare = line.strip(BLANKS)
    return bare.startswith((crontab.BEGIN + " ", crontab.END + " "))


def read(text: str, label: str, system: bool = False) -> Reading:
    """Every entry of a crontab with what cron gives it; ImportProblem (nothing written) for what cron refuses."""
    lines, unterminated = _lines(text)
    reading = Reading([], [])
    settings: dict[str, tuple[str, int]] = {}
    comments: list[tuple[int, str]] = []
    in_block = False
    skipped = 0
    for number, line in enumerate(lines, start=1):
        bare = line.lstrip(BLANKS)
        is_comment = not bare or bare.startswith("#")
        _check_text(line, number, label, is_comment)
        if _is_marker(line):
            in_block = bare.startswith(crontab.BEGIN)
            if in_block and reading.block_at is None:
                reading.block_at = number
            comments = []
            continue
        if in_block:
            skipped += not is_comment
            continue
        if not bare:
            comments = []
            continue
        if is_comment:
            comments.append((number, bare[1:]))
            continue
        setting = crontab.cron_env(line)
        if setting is not None:
            if len(line.encode("utf-8", "surrogateescape")) >= MAX_ENVSTR - 1:
                raise _problem(label, number, f"a setting of {len(line)} characters: cron reads at most "
                                              f"{MAX_ENVSTR - 2} and then the rest as another line; shorten it")
            name, value = setting
            settings.pop(name, None)
            settings[name] = (value, number)
            reading.settings.append((name, value, number))
            comments = []
            continue
        if crontab.job_run_by(line) is not None:
            skipped += 1
            comments = []
            continue
        reading.entries.append(_entry(line, number, label, system, settings, comments))
        comments = []
    if skipped:
        reading.notes.append(f"{skipped} line{'s' if skipped != 1 else ''} of a jobctl block (jobctl's own lines) "
                             "not imported")
    if unterminated and lines:
        reading.notes.append(f"{label} has no newline after its last line: Debian's cron ignores such a crontab "
                             "and crontab(1) refuses to install it; it was read as if the newline were there")
    return reading


# --- names --------------------------------------------------------------------------------------

#: commands that prepare or guard rather than do the work: a name comes from another one
_NOT_THE_JOB = frozenset({
    "cd", "test", "[", "[[", "source", ".", "sleep", "desync", "true", "false", ":", "export", "set", "umask",
    "ulimit", "echo", "printf", "exit", "wait", "trap", "unset", "eval", "let", "local", "read", "mkdir", "rm",
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "case", "esac", "!", "{", "}",
    "(", ")", "]", "]]",
})
#: commands that run the next word as the program, and their options that take a value
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "nice": frozenset({"-n"}), "ionice": frozenset({"-c", "-n", "-p", "-t"}), "nohup": frozenset(),
    "timeout": frozenset({"-k", "-s", "--signal", "--kill-after"}), "flock": frozenset({"-w", "-E", "-c"}),
    "env": frozenset({"-u", "-C", "-S"}), "chronic": frozenset(), "exec": frozenset({"-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}), "setsid": frozenset(), "time": frozenset({"-o", "-f"}),
    "cronic": frozenset(), "setlock": frozenset(), "run-one": frozenset(), "caffeinate": frozenset(),
    "xvfb-run": frozenset({"-a", "-n", "-s", "-e", "-f"}), "su": frozenset({"-s", "-g"}),
}
_RUNNERS = {"conda": {"-n", "--name", "-p", "--prefix", "--cwd"}, "poetry": set(), "pipenv": set(), "uv": set(),
            "npm": set(), "yarn": set(), "pnpm": set(), "bundle": set(), "docker": set()}
_INTERPRETERS = frozenset({"python", "python2", "python3", "php", "php5", "php7", "php8", "perl", "ruby", "node",
                           "nodejs", "bash", "sh", "dash", "zsh", "ksh", "lua", "Rscript", "java", "deno", "bun",
                           "osascript", "pwsh", "tclsh", "awk"})
_OPERATORS = frozenset({"&&", "||", ";", "&", ";;", "|", "|&", "(", ")", "\n"})
_SEPARATORS = frozenset({"&&", "||", ";", "&", ";;", "(", ")", "\n"})
_EXTENSION = re.compile(r"\.(sh|bash|py|php|pl|rb|js|mjs|ts|lua|r|R|exe|cmd)$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+:-]*\Z")


def _words(command: str) -> list[str]:
    """Shell words and operators, as far as shlex can tell; a plain split when it cannot."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # an unterminated quote (cron cut the command at a %, say)
        plain = re.sub(r"[\"'`]", " ", command)
        return plain.replace(";", " ; ").replace("&&", " && ").replace("|", " | ").split()


def _simple_commands(words: list[str]) -> list[list[str]]:
    """The words of each simple command in the order written; within a pipeline, its first command only."""
    out: list[list[str]] = []
    current: list[str] = []
    in_pipe = False
    for word in words:
        if word in _OPERATORS:
            if current and not in_pipe:
                out.append(current)
            in_pipe = word in ("|", "|&") and (bool(current) or in_pipe)
            if word in _SEPARATORS:
                in_pipe = False
            current = []
            continue
        current.append(word)
    if current and not in_pipe:
        out.append(current)
    return out


def _arguments(words: list[str]) -> list[str]:
    """The words of a simple command up to its first redirection, without assignments before the program."""
    out: list[str] = []
    for word in words:
        if word and word[0] in "<>" or re.match(r"\d*[<>]", word) or word.startswith("&>"):
            break
        if not out and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word):
            continue
        out.append(word)
    return out


def _unwrap(args: list[str]) -> list[str]:
    """The program a command really runs, with its arguments: past sudo, nice, env, interpreters..."""
    for _ in range(8):
        if not args:
            return args
        program = os.path.basename(args[0])
        if program in _WRAPPERS:
            takes = _WRAPPERS[program]
            i = 1
            while i < len(args) and (args[i].startswith("-") or (program == "env" and "=" in args[i])):
                i += 2 if args[i] in takes else 1
            if program in ("timeout", "sleep") and i < len(args):
                i += 1  # the duration
            if program == "flock" and i < len(args):
                i += 1  # the lock file
            args = args[i:]
            continue
        if program in _RUNNERS and len(args) > 1 and args[1] in ("run", "exec"):
            takes = frozenset(_RUNNERS[program])
            i = 2
            while i < len(args) and args[i].startswith("-"):
                i += 2 if args[i] in takes else 1
            args = args[i:]
            continue
        base = re.sub(r"[0-9.]+$", "", program) or program
        if base in _INTERPRETERS or program in _INTERPRETERS:
            rest = args[1:]
            if "-c" in rest and program not in ("python", "python2", "python3"):
                inner = rest[rest.index("-c") + 1:]
                if inner:
                    found = _program_words(inner[0])
                    if found:
                        return found
                return args
            i = 0
            while i < len(rest) and rest[i].startswith("-"):
                if rest[i] in ("-m",) and i + 1 < len(rest):
                    return [rest[i + 1], *rest[i + 2:]]
                if rest[i] in ("-e", "-r", "-c"):
                    return args
                i += 1
            if i < len(rest):
                return rest[i:]
            return args
        return args
    return args


def _program_words(command: str) -> list[str]:
    """The program a command line is about and its arguments: the last simple command that does the work."""
    for words in reversed(_simple_commands(_words(command))):
        args = _arguments(words)
        while args and args[0] in ("if", "then", "else", "elif", "do", "while", "until", "!", "{", "(", "time"):
            args = args[1:]
        args = _unwrap(args)
        if args and os.path.basename(args[0]) not in _NOT_THE_JOB and not args[0].startswith(("$(", "`")):
            return args
    return []


def clean_name(text: str) -> str:
    """``text`` as a valid job name (spec.NAME_RE): lower case, other characters as '-', at most 63."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", text.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-_.")
    if len(name) > 63:
        name = name[:63].rstrip("-_.")
    return name


def _numbered(base: str, n: int) -> str:
    """``base-n``, ``base`` shortened so that the whole stays a valid name."""
    suffix = f"-{n}"
    return base[:63 - len(suffix)].rstrip("-_.") + suffix


def _name_parts(command: str) -> list[str]:
    """The name of a job from its command, then the words that may tell two such jobs apart."""
    args = _program_words(command)
    if not args:
        return []
    program = _EXTENSION.sub("", os.path.basename(args[0].rstrip("/")))
    parts = [program]
    for arg in args[1:]:
        if arg.startswith("-"):
            continue
        word = _EXTENSION.sub("", os.path.basename(arg.rstrip("/"))) if "/" in arg else arg
        if _WORD.match(word) and "$" not in arg:
            parts.append(word)
    return parts


# --- conversion -----------------------------------------------------------------------------------

@dataclass
class Job:
    name: str
    entry: Entry
    #: the job file's keys, in the order written
    keys: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"{self.name}.yaml"


@dataclass
class KeptOut:
    entry: Entry
    reason: str


@dataclass
class Conversion:
    label: str
    system: bool
    text: str
    directory: str
    jobs: list[Job]
    kept_out: list[KeptOut]
    #: keys every job shares, for _defaults.yaml (empty: none written)
    defaults: dict[str, Any]
    notes: list[str]

    def files(self) -> dict[str, str]:
        """File name -> YAML text, _defaults.yaml first when there is one."""
        out = {}
        if self.defaults:
            lines = sorted({j.entry.line for j in self.jobs})
            out["_defaults.yaml"] = render(self.defaults, [
                f"Imported by jobctl import from {self.label}: what the jobs of its lines {_list(lines)} share",
                "(a job's own keys win; env merges key by key)", *("- " + n for n in self.notes)])
        for job in self.jobs:
            out[job.file] = render(job.keys, _header(job, self.label))
        return out


def _list(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers))


def _header(job: Job, label: str) -> list[str]:
    lines = [f"Imported by jobctl import from {label}, line {job.entry.line}:", "  " + job.entry.text]
    for note in job.notes:
        lines.append("- " + note)
    return lines


def _description(comments: list[str]) -> tuple[str | None, int]:
    """The comment lines right above an entry as its description, and the index of the first one it takes.

    Only those after the last line of a crontab template (crontab(1)'s
    ``# m h  dom mon dow   command``, ``Example of job definition``, the
    ``|  |  |`` diagram) or of an entry or setting commented out: what comes
    before those explains the file, not the entry.
    """
    texts: list[str] = []
    first = len(comments)
    for index, raw in enumerate(comments):
        text = raw.strip()
        while text.startswith("#"):
            text = text[1:].strip()
        if (re.match(r"m\s+h\s+dom\s+mon\s+dow|min(ute)?\s+hour|example of job definition", text, re.IGNORECASE)
                or re.match(r"[|.+*-]", text) or crontab.cron_env(text) is not None or _looks_like_entry(text)):
            texts = []
            first = len(comments)
            continue
        if not text or not re.search(r"[A-Za-z]{2}", text):
            continue
        if not texts:
            first = index
        texts.append(text.encode("utf-8", "replace").decode("utf-8"))
    return " ".join(texts) or None, first


def _looks_like_entry(text: str) -> bool:
    if text.startswith("@"):
        return text.split()[0][1:] in SPECIALS
    tokens = text.split()
    return len(tokens) > 5 and all(_cron_field(t, i) for i, t in enumerate(tokens[:5]))


def stdin_command(command: str, data: str) -> str:
    """A command that runs ``command`` with ``data`` on its standard input, as cron ran an entry with a ``%``.

    ``exec <<'DELIM'`` makes the here-document the shell's own standard
    input, so the command line that follows is read and run exactly as
    ``sh -c`` read it (its quotes, its comment, a trailing backslash), and
    everything it starts reads ``data``.  The delimiter is quoted: nothing in
    the data is expanded.
    """
    lines = data.split("\n")
    delimiter = STDIN_DELIMITER
    n = 1
    while delimiter in lines:
        n += 1
        delimiter = f"{STDIN_DELIMITER}_{n}"
    return f"exec <<'{delimiter}'\n{data}{delimiter}\n{command}"


def _mail_list(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", value) if part]


def _emails(value: str) -> list[str] | None:
    addresses = _mail_list(value)
    if addresses and all(re.match(r"[^@\s]+@[^@\s]+\Z", a) for a in addresses):
        return addresses
    return None


def _system_zone() -> str | None:
    zone = os.environ.get("TZ", "").lstrip(":")
    if zone:
        return zone
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return None
    if "/zoneinfo/" in target:
        return target.split("/zoneinfo/", 1)[1]
    return None


def _zone_note(entry: Entry, name: str, zone: str, schedule: schedule_mod.Schedule) -> str:
    """What moving a schedule from the system's zone into ``zone`` does to when it runs, said with times."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    system = _system_zone()
    here = ZoneInfo(system) if system else None
    now = datetime.now(timezone.utc)
    try:
        before = schedule.next_runs(now.astimezone(here) if here else now.astimezone(), 3, system)
        after = schedule.next_runs(now.astimezone(ZoneInfo(zone)), 3, zone)
    except Exception:  # noqa: BLE001 - a note must never stop an import
        before = after = []
    shown = system or "the system's zone"
    head = (f"{name}={zone} (line {entry.settings[name][1]}): Debian's cron ignored it and ran this in the system's "
            f"zone ({shown}); with timezone: {zone} jobctl runs it in {zone}")
    if not before or not after:
        return head
    if [t.timestamp() for t in before] == [t.timestamp() for t in after]:
        return head + f": the same times here ({shown} and {zone} agree now; they may not at DST changes)"
    first_after = after[0].astimezone(here) if here else after[0].astimezone()
    return (head + f", so the times change: the next run was {before[0]:%Y-%m-%d %H:%M} {shown}, now "
            f"{first_after:%Y-%m-%d %H:%M} {shown} ({after[0]:%H:%M} {zone}); keep timezone only if {zone} is what "
            "you meant, or remove it to keep the old times")


@dataclass
class _Draft:
    entry: Entry
    keys: dict[str, Any]
    notes: list[str]
    parts: list[str]


def _convert_entry(entry: Entry, system: bool, block_mailto: str | None) -> _Draft | KeptOut:
    settings = {name: value for name, (value, _) in entry.settings.items()}
    notes: list[str] = []
    shell = settings.get("SHELL", CRON_SHELL)
    if not shell.startswith("/"):
        return KeptOut(entry, f"SHELL={shell} (line {entry.settings['SHELL'][1]}) is not an absolute path: cron "
                              "cannot start it (it does not search PATH for the shell) and jobctl needs one")
    bad = [n for n in settings if not spec.ENV_NAME_RE.match(n) or n in spec.RESERVED_ENV]
    if bad:
        return KeptOut(entry, f"cron gives it the variable {bad[0]!r} (line {entry.settings[bad[0]][1]}), which a "
                              f"job's env cannot hold (letters, digits and '_', not starting with a digit; not "
                              f"{', '.join(spec.RESERVED_ENV)}, which jobctl sets for every run)")
    try:
        when = schedule_mod.parse(entry.schedule)
    except schedule_mod.ScheduleError as exc:
        return KeptOut(entry, f"jobctl refuses its schedule, which cron takes: {exc}")
    keys: dict[str, Any] = {}
    description, first = _description(entry.comments)
    if description:
        keys["description"] = description
    #: the comment lines the description came from leave the crontab with the entry (adopt)
    entry.comment_lines = entry.comment_lines[first:] if description else []
    keys["schedule"] = entry.schedule
    command = entry.command.lstrip(BLANKS)
    if entry.raw != entry.command and entry.stdin is None:
        notes.append("cron ran the command with its \\% turned into % (and \\\\ into \\), as written here")
    if entry.stdin:
        if os.path.basename(shell) not in crontab.POSIX_SHELLS:
            return KeptOut(entry, f"a % feeds it input, which jobctl gives with a here-document that SHELL={shell} "
                                  "does not read")
        keys["command"] = stdin_command(command, entry.stdin)
        column = len(entry.text) - len(entry.raw) + _first_percent(entry.raw) + 1
        notes.append(f"cron ended the command at the first unescaped % (column {column}) "
                     f"and gave it the rest as input, each % a newline: the job does the same ({len(entry.stdin)} "
                     "bytes of input, written by the lines before its command)"
                     + ("; was that % meant as a character? Then write it as it is: jobctl needs no escaping"
                        if _looks_cut(command) else ""))
    else:
        keys["command"] = command
        if entry.stdin == "":
            notes.append("the line ends with a %: cron gave the command empty input, as jobctl does")
    if not command.strip(BLANKS) or command.lstrip(BLANKS).startswith("#"):
        notes.append("the command is empty or only a comment: cron ran nothing for it, and neither will the job")
    if shell != CRON_SHELL:
        keys["shell"] = shell
    env: dict[str, str] = {}
    for name, value in settings.items():
        if name == "SHELL":
            continue
        if name == "LOGNAME":
            notes.append(f"LOGNAME={value} (line {entry.settings[name][1]}) is left out: cron sets LOGNAME to the "
                         "crontab's owner whatever the crontab says, as jobctl does")
            continue
        env[name] = value
        if "$" in value and name not in ("MAILTO",):
            notes.append(f"{name}={value}: cron does not expand $ in a setting, and neither does env: the job gets "
                         "the text as written")
    if "PATH" not in env:
        env["PATH"] = CRON_PATH
    keys["env"] = env
    zone_name = next((n for n in ("CRON_TZ", "TZ") if n in settings), None)
    if zone_name and not when.is_reboot:
        zone = settings[zone_name]
        try:
            spec.FIELDS_BY_KEY["timezone"].parse(zone)
        except ValueError:
            notes.append(f"{zone_name}={zone} is not a time zone jobctl knows; Debian's cron ignored it too, so the "
                         "job keeps the system's time")
        else:
            keys["timezone"] = zone
            notes.append(_zone_note(entry, zone_name, zone, when))
    if entry.user:
        keys["user"] = entry.user
    notes.extend(_mail(entry, settings, system, block_mailto, keys))
    return _Draft(entry, keys, notes, _name_parts(command))


def _first_percent(raw: str) -> int:
    escaped = False
    for i, c in enumerate(raw):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "%":
            return i
    return -1


def _looks_cut(command: str) -> bool:
    """Whether a command cut at a % is left with an open quote or $( -- the % was likely meant literally."""
    try:
        shlex.split(command)
    except ValueError:
        return True
    return command.count("$(") > command.count(")") or command.rstrip().endswith(("+", "-", "'", '"'))


def _mail(entry: Entry, settings: dict[str, str], system: bool, block_mailto: str | None,
          keys: dict[str, Any]) -> list[str]:
    """cron_mail / notify for where cron mailed the entry's output, and a note saying what changes.

    cron mailed whatever a line printed, to MAILTO or else the crontab's
    owner (the user column's user in /etc/cron.d).  jobctl's line prints a
    failure summary (cron_mail: failure), which cron mails to the MAILTO in
    effect at jobctl's block (the crontab's last one; jobctl's own
    /etc/cron.d file has none: root).  Where that is the same recipient,
    cron keeps mailing; an empty MAILTO becomes cron_mail: never; another
    address becomes notify email (sent by jobctl on failure) with cron's
    mail off.
    """
    mailto = settings.get("MAILTO")
    if mailto == "":
        keys["cron_mail"] = "never"
        return ["MAILTO=\"\": cron mailed nothing; cron_mail: never keeps the job's line silent too (the output "
                "of every run is in the run log: jobctl logs)"]
    before = mailto or (entry.user if system and entry.user else "the crontab's owner")
    after = "no one" if block_mailto == "" else block_mailto or ("root" if system else "the crontab's owner")
    notes = []
    if mailto and "=" in mailto and " " in mailto:
        notes.append(f"MAILTO is {mailto!r}: cron reads the whole rest of a setting's line as its value, so that "
                     "line set no other variable; split it into two lines if that was meant")
    if before == after:
        return notes + [f"cron mailed everything a line printed to {before}; a job's line prints a summary and the "
                        f"output's tail only when a run fails (cron_mail: failure, the default), which cron mails "
                        f"to {after} as long as "
                        + (f"MAILTO={mailto} stays above jobctl's block" if mailto else "no MAILTO is set above "
                           "jobctl's block")
                        + "; the full output is in the run log (jobctl logs). Set cron_mail: always for mail after "
                          "every run"]
    addresses = _emails(mailto) if mailto else None
    if addresses:
        keys["cron_mail"] = "never"
        keys["notify"] = {"email": addresses, "when": ["failure"]}
        return notes + [f"cron mailed everything this line printed to {mailto}, which mail from jobctl's block would "
                        f"not reach (it goes to {after}): notify email sends {', '.join(addresses)} a message when a "
                        "run fails (through the local sendmail), and cron_mail: never keeps cron from mailing "
                        f"{after} as well"]
    if block_mailto == "":
        return notes + [f"cron mailed everything this line printed to {before}; jobctl's block stands below "
                        "MAILTO=\"\", so cron mails its lines' failure summaries to no one: move that MAILTO=\"\" "
                        "below jobctl's block, or give the job notify: {email: ADDRESS}"]
    return notes + [f"cron mailed everything this line printed to {before}; a failure summary of the job's line "
                    f"(cron_mail: failure) is mailed to {after} instead, since notify email takes addresses with an "
                    "@ only"]


def _assign_names(drafts: list[_Draft], taken: set[str]) -> tuple[list[str], list[list[str]]]:
    """A unique valid name per draft, and the notes naming jobs apart."""
    bases = [clean_name(d.parts[0]) if d.parts else "" for d in drafts]
    bases = [b if b and spec.NAME_RE.match(b) else "job" for b in bases]
    names = list(bases)
    notes: list[list[str]] = [[] for _ in drafts]
    groups: dict[str, list[int]] = {}
    for i, base in enumerate(bases):
        groups.setdefault(base, []).append(i)
    for base, members in groups.items():
        if len(members) == 1:
            continue
        same_command = _same_command_groups(drafts, members)
        distinct = [group[0] for group in same_command]
        named = _by_arguments(drafts, distinct, base) if len(distinct) > 1 else None
        if named is not None and all(len(g) == 1 for g in same_command):
            for i in members:
                names[i] = named[i]
            continue
        for n, i in enumerate(members, start=1):
            names[i] = _numbered(base, n)
        for group in same_command:
            if len(group) > 1:
                others = ", ".join(f"{names[j]} (line {drafts[j].entry.line})" for j in group)
                for j in group:
                    notes[j].append(f"the same command runs at {len(group)} times in the crontab: one job per "
                                    f"schedule, {others}{_merge_hint(drafts, group)}")
        if len(same_command) > 1:
            for i in members:
                if not any(i in g and len(g) > 1 for g in same_command):
                    notes[i].append(f"several commands would be named {base}: numbered in the order of the "
                                    "crontab; rename the file (and its name) as you like")
    # against jobs already there, and against each other after the numbering
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            n = 2
            while _numbered(name, n) in seen or _numbered(name, n) in names:
                n += 1
            names[i] = _numbered(name, n)
        seen.add(names[i])
    return names, notes


def _same_command_groups(drafts: list[_Draft], members: list[int]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i in members:
        keys = {k: v for k, v in drafts[i].keys.items() if k not in ("schedule", "description")}
        groups.setdefault(json.dumps(keys, sort_keys=True), []).append(i)
    return list(groups.values())


def _by_arguments(drafts: list[_Draft], members: list[int], base: str) -> dict[int, str] | None:
    """Names that tell apart different commands of one program by their first arguments, if any do."""
    for depth in range(1, 4):
        names = {i: clean_name("-".join([base, *drafts[i].parts[1:1 + depth]])) for i in members}
        if len(set(names.values())) == len(members) and all(spec.NAME_RE.match(n) for n in names.values()):
            return names
    return None


def _merge_hint(drafts: list[_Draft], group: list[int]) -> str:
    """When the schedules differ in one field only: the single schedule that covers them (if they never overlap)."""
    fields = [drafts[i].entry.schedule.split() for i in group]
    if any(len(f) != 5 for f in fields):
        return ""
    differ = [k for k in range(5) if len({f[k] for f in fields}) > 1]
    if len(differ) != 1:
        return ""
    k = differ[0]
    merged = list(fields[0])
    merged[k] = ",".join(f[k] for f in fields)
    try:
        sets = [schedule_mod.parse_cron(" ".join(f))[k][0] for f in fields]
        schedule_mod.parse(" ".join(merged))
    except schedule_mod.ScheduleError:
        return ""
    if any(sets[a] & sets[b] for a in range(len(sets)) for b in range(a + 1, len(sets))):
        return ""  # overlapping: cron ran the command twice at those times, one job would run it once
    return f"; one job with schedule {' '.join(merged)!r} would run it at the same times"


def _existing(directory: str) -> tuple[set[str], bool, bool]:
    """(names and file stems of jobs in the directory, whether it has _defaults.yaml, whether it has any job file)."""
    names: set[str] = set()
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return names, False, False
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {directory}: {exc.strerror}; nothing was written") from None
    files = [e for e in entries if e.endswith((".yaml", ".yml"))]
    has_defaults = any(os.path.splitext(e)[0] == "_defaults" for e in files)
    jobs = [e for e in files if not e.startswith(("_", "."))]
    names.update(os.path.splitext(e)[0] for e in jobs)
    if jobs:
        from jobctl.jobs import loader

        try:
            names.update(job.name for job in loader.load_dir(directory).jobs)
        except JobctlError:
            pass
    return names, has_defaults, bool(jobs)


def above_block(reading: Reading) -> list[tuple[str, str, int]]:
    """The settings cron gives jobctl's lines: those above its block where there is one, else all (it goes last)."""
    if reading.block_at is None:
        return reading.settings
    return [s for s in reading.settings if s[2] < reading.block_at]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def convert(text: str, label: str, directory: str, system: bool = False, user: str | None = None) -> Conversion:
    """The job files for a crontab's entries, with notes; ImportProblem when cron would refuse the crontab."""
    reading = read(text, label, system)
    taken, has_defaults, has_jobs = _existing(directory)
    block_mailto = None
    if not system:
        for name, value, _ in above_block(reading):
            if name == "MAILTO":
                block_mailto = value
    drafts: list[_Draft] = []
    kept: list[KeptOut] = []
    for entry in reading.entries:
        if system and entry.user and not _user_exists(entry.user):
            kept.append(KeptOut(entry, f"user {entry.user!r} does not exist on this host: cron skips this line "
                                       "(ORPHAN), and a job's user: must exist; create the user, then import "
                                       "this line"))
            continue
        result = _convert_entry(entry, system, block_mailto)
        if isinstance(result, KeptOut):
            kept.append(result)
        else:
            if user is not None and not system:
                result.keys["user"] = user
            drafts.append(result)
    names, name_notes = _assign_names(drafts, taken)
    clash = sorted({n for n in names if n in taken})
    if clash:
        where = ", ".join(os.path.join(directory, n + ".yaml") for n in clash[:5])
        raise ImportProblem(f"{directory} already has jobs named {', '.join(clash[:5])} ({where} or a name: key): "
                            "jobctl import never overwrites or renames a job there; import into another directory "
                            "(--out DIR) and merge by hand, or remove those jobs first; nothing was written")
    jobs = [Job(name, d.entry, d.keys, d.notes + extra) for name, d, extra in zip(names, drafts, name_notes,
                                                                                     strict=True)]
    notes = list(reading.notes)
    if len(jobs) > 1:  # a note every job has is said once
        shared = [n for n in jobs[0].notes if all(n in j.notes for j in jobs[1:])]
        for job in jobs:
            job.notes = [n for n in job.notes if n not in shared]
        notes.extend(shared)
    defaults: dict[str, Any] = {}
    if len(jobs) > 1 and not has_jobs and not has_defaults:
        defaults = _common(jobs)
    elif has_defaults and jobs:
        notes.append(f"{os.path.join(directory, '_defaults.yaml')} exists and applies to the imported jobs too "
                     "(env merges key by key): check that its keys are meant for them")
    if jobs:
        notes.append("cron started an entry even while its previous run went on; a job skips such a run "
                     "(concurrency: forbid, the default): set concurrency: allow where runs may overlap")
    return Conversion(label, system, text, directory, jobs, kept, defaults, notes)


def _common(jobs: list[Job]) -> dict[str, Any]:
    """The keys every job has alike, moved into the defaults (env pair by pair)."""
    defaults: dict[str, Any] = {}
    for key in ("shell", "timezone", "user", "cron_mail", "notify"):
        values = [json.dumps(j.keys.get(key), sort_keys=True) for j in jobs]
        if len(set(values)) == 1 and key in jobs[0].keys:
            defaults[key] = jobs[0].keys[key]
    env = dict(jobs[0].keys["env"])
    for job in jobs[1:]:
        env = {k: v for k, v in env.items() if job.keys["env"].get(k) == v}
    if env:
        defaults["env"] = env
    for job in jobs:
        for key in defaults:
            if key == "env":
                rest = {k: v for k, v in job.keys["env"].items() if k not in env}
                if rest:
                    job.keys["env"] = rest
                else:
                    del job.keys["env"]
            else:
                del job.keys[key]
    return defaults


# --- YAML, written by hand ------------------------------------------------------------------------
#
# yaml stays out of install/ (tests/test_layering.py); job files need little: every string double-quoted
# with escapes, a block literal for a command of several lines, flat mappings and lists.

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quoted(text: str) -> str:
    out = ['"']
    for c in text:
        o = ord(c)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0 or o in (0x2028, 0x2029, 0xFEFF) or 0xD800 <= o < 0xE000:
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _block_safe(text: str) -> bool:
    """Whether a multi-line string reads back the same as a ``|-`` block.

    No tab or trailing blank on any line (editors strip those), nothing a
    YAML stream cannot hold, no final newline (``|-`` drops it), and a first
    line that does not start with a blank (it sets the block's indentation).
    """
    lines = text.split("\n")
    return (not text.endswith("\n") and not lines[0].startswith(" ")
            and all(line == line.rstrip(" ") and "\t" not in line and line.isprintable() for line in lines))


def _scalar(value: Any, indent: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if "\n" in text and _block_safe(text):
        body = "\n".join((indent + "  " + line) if line else "" for line in text.split("\n"))
        return "|-\n" + body
    return _quoted(text)


def _comment(text: str) -> str:
    """One comment line: control characters (and bytes that are not UTF-8) shown escaped."""
    return "".join(c if c.isprintable() or c == "\t" else f"\\x{ord(c) % 0x100:02x}" if ord(c) < 0x100
                   or 0xDC80 <= ord(c) <= 0xDCFF else f"\\u{ord(c):04x}" for c in text)


def _wrapped(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


def render(keys: dict[str, Any], header: list[str]) -> str:
    """A job file (or _defaults.yaml): comment lines, then one key a line, mappings nested once."""
    out = []
    for line in header:
        if line.startswith("- "):
            first, *more = _wrapped(_comment(line[2:]))
            out.append(f"# - {first}")
            out.extend(f"#   {m}" for m in more)
        else:
            out.append(f"# {_comment(line)}".rstrip())
    for key, value in keys.items():
        if isinstance(value, dict):
            out.append(f"{key}:")
            for k, v in value.items():
                if isinstance(v, list):
                    out.append(f"  {_quoted(k)}: [{', '.join(_quoted(str(x)) for x in v)}]")
                else:
                    out.append(f"  {_quoted(k)}: {_scalar(v, '  ')}")
        elif isinstance(value, list):
            out.append(f"{key}: [{', '.join(_quoted(str(x)) for x in value)}]")
        else:
            out.append(f"{key}: {_scalar(value, '')}")
    return "\n".join(out) + "\n"


def write(conversion: Conversion) -> list[str]:
    """Create every file of the conversion, or none: a file that exists is never overwritten."""
    files = conversion.files()
    directory = conversion.directory
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {directory}: {exc.strerror}; nothing was written") from None
    written: list[str] = []
    try:
        for name, text in files.items():
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            written.append(path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
    except FileExistsError as exc:
        remove(written)
        raise ImportProblem(f"{exc.filename} exists: jobctl import never overwrites a file there; import into "
                            "another directory (--out DIR), or move it away first; nothing was written") from None
    except OSError as exc:
        remove(written)
        raise EnvironmentProblem(f"cannot write {exc.filename or directory}: {exc.strerror}; "
                                 "nothing was written") from None
    return written


def remove(written: list[str]) -> None:
    """Take back the files write() created (an adopt that failed after them)."""
    for path in written:
        try:
            os.unlink(path)
        except OSError:
            pass


# --- adopt and restore -----------------------------------------------------------------------------

def without_lines(text: str, numbers: set[int]) -> str:
    """``text`` without the lines of those (1-based) numbers, every other byte kept."""
    parts = text.split("\n")
    out = [part + "\n" for i, part in enumerate(parts[:-1], start=1) if i not in numbers]
    if parts[-1] and len(parts) not in numbers:
        out.append(parts[-1])
    return "".join(out)


def _outside(text: str, state: str, label: str) -> str:
    """The text as uninstall would leave it: without jobctl's block."""
    instance = crontab.instance_id(state)
    return crontab.join(crontab.split(text, instance, label), instance, state, [])


def _records_path(state: str) -> str:
    return paths.adopted_records(state)


def records(state: str) -> list[dict[str, Any]]:
    try:
        with open(_records_path(state), "rb") as fh:
            data = json.loads(fh.read().decode("utf-8", "surrogateescape"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(f"cannot read {_records_path(state)}: {exc}; nothing was changed") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise EnvironmentProblem(f"{_records_path(state)} is not a list of adopt records (edited by hand?): move it "
                                 "aside; its backups in the same directory hold what each adopt took out")
    return data


def _save(state: str, data: list[dict[str, Any]]) -> None:
    os.makedirs(paths.backups_dir(state), mode=0o700, exist_ok=True)
    if data:
        replace_atomically(_records_path(state), json.dumps(data, indent=2).encode("utf-8", "surrogateescape"),
                           0o600)
    else:
        try:
            os.unlink(_records_path(state))
        except FileNotFoundError:
            pass


def _keep(state: str, what: str, text: str) -> str:
    """A plain copy of a crontab's text in the backups directory (never overwritten)."""
    directory = paths.backups_dir(state)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        path = os.path.join(directory, f"{what}-{stamp}{f'-{n}' if n else ''}.txt")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogateescape"))
            fh.flush()
            os.fsync(fh.fileno())
        return path
    raise EnvironmentProblem(f"cannot keep a copy of the crontab in {directory}: 1000 copies this second")


class _Without(crontab.Target):
    """The crontab as apply is to see it during an adopt: the text import read, less the imported entries."""

    def __init__(self, target: crontab.Target, expected: str, lines: set[int]) -> None:
        self.target = target
        self.system = target.system
        self.label = target.label
        self.expected = expected
        self.lines = lines

    def read(self) -> str:
        text = self.target.read()
        self.absent = self.target.absent
        if text != self.expected:
            raise crontab.CrontabConflict(f"{self.label} changed since jobctl import read it; nothing was changed. "
                                          "Run jobctl import --adopt again")
        return without_lines(text, self.lines)

    def write(self, text: str) -> None:
        self.target.write(text)

    def remove(self) -> None:
        self.target.remove()


@dataclass
class Adopted:
    outcome: crontab.Outcome
    #: the crontab (or file) the entries were taken out of, and their line numbers
    source: str
    lines: list[int]
    #: a plain copy of the text before
    backup: str


def adoptable(conversion: Conversion) -> str | None:
    """Why --adopt must not go ahead (a SHELL above jobctl's block it cannot run under), or None."""
    if conversion.system:
        return None
    shell = None
    for name, value, _ in above_block(read(conversion.text, conversion.label)):
        if name == "SHELL":
            shell = value
    if shell and os.path.basename(shell) not in crontab.POSIX_SHELLS:
        return (f"the crontab ends with SHELL={shell} in effect, which would run jobctl's lines, written for a POSIX "
                "shell: add SHELL=/bin/sh as its last line first, or import without --adopt")
    return None


def adopt(conversion: Conversion, jobs: list[Any], state: str, target: crontab.Target,
          source_path: str | None = None) -> Adopted:
    """Take the imported entries out and install jobctl's block (apply), keeping the text before for restore.

    The record restore reads is saved first, marked ``pending`` until both
    the crontab and jobctl's block are written: a killed adopt leaves a
    pending record that pending()/finish() (import --adopt again) and
    restore act on.  For the user crontab the entries leave in the very
    write that installs the block.  With ``source_path`` (an
    /etc/cron.d-style file) the trimmed file is staged next to it and synced,
    apply prepares everything, and the two renames follow back to back
    (_FileThenBlock): a kill between them, a window of two system calls,
    leaves the pending record saying what to finish.
    """
    lines = {job.entry.line for job in conversion.jobs}
    lines.update(n for job in conversion.jobs for n in job.entry.comment_lines)
    adopted_text = without_lines(conversion.text, lines)
    backup = _keep(state, "import-original", conversion.text)
    data = records(state)
    record: dict[str, Any] = {
        "at": time.time(), "target": target.label, "file": source_path, "lines": sorted(lines),
        "jobs": [job.name for job in conversion.jobs], "jobs_dir": conversion.directory, "backup": backup,
        "pending": True, "text": conversion.text,
    }
    if source_path is None:
        record["original"] = _outside(conversion.text, state, target.label)
        record["adopted"] = _outside(adopted_text, state, target.label)
    else:
        record["original"], record["adopted"] = conversion.text, adopted_text
    _save(state, [*data, record])
    try:
        outcome = _carry_out(record, jobs, state, target)
    except BaseException:
        _save(state, data)
        raise
    _done(state, record)
    return Adopted(outcome, source_path or target.label, sorted(lines), backup)


def _carry_out(record: dict[str, Any], jobs: list[Any], state: str, target: crontab.Target) -> crontab.Outcome:
    """The writes of an adopt whose record is saved: the crontab less the entries with the block, or the file's."""
    lines = set(record["lines"])
    if not record.get("file"):
        without = _Without(target, record["text"], lines)
        outcome = crontab.apply(jobs, state, without, record["jobs_dir"], prune_others=False)
        if not outcome.wrote:  # the block had these jobs already (applied by hand): the entries must still go
            with crontab.apply_lock(state):
                target.write(without.read())
        return outcome
    staged = _FileThenBlock(target, record["file"], record["text"], record["adopted"])
    try:
        outcome = crontab.apply(jobs, state, staged, record["jobs_dir"], prune_others=False)
        if staged.staged is not None:  # the block had these jobs already: the entries must still go
            staged.trim_only()
        return outcome
    finally:
        staged.discard()


def _done(state: str, record: dict[str, Any]) -> None:
    """Mark an adopt's record finished (both writes done)."""
    data = records(state)
    for r in data:
        if r.get("backup") == record["backup"]:
            r.pop("pending", None)
            r.pop("text", None)
    _save(state, data)


def pending(state: str) -> list[dict[str, Any]]:
    """The adopts that were killed (or failed hard) before both their writes were done.

    For doctor and import --adopt: each holds ``target``, ``file`` (an
    /etc/cron.d-style file or None), ``jobs``, ``jobs_dir`` and ``backup``.
    """
    return [r for r in records(state) if r.get("pending")]


def _installed_all(state: str, target: crontab.Target, names: list[str]) -> bool:
    entries = crontab.installed(state, target)
    return all(n in entries for n in names)


def finish(record: dict[str, Any], jobs: list[Any], state: str, target: crontab.Target) -> str:
    """Finish a pending adopt (import --adopt again): do what it had not done, or drop it; what was done, said.

    The crontab (or file) still holding what the adopt read: the adopt again,
    with the job files it wrote.  The entries out and the jobs in the block:
    it was done, only its mark was left.  The entries out of the file but
    the block not written (killed between the two renames): apply.  Anything
    else: CrontabConflict, saying what to do.
    """
    where = record.get("file") or target.label
    if record.get("file"):
        text = _read_file(record["file"])
        if text == record["text"]:
            _carry_out(record, jobs, state, target)
            _done(state, record)
            return f"finished the adopt killed before it wrote: took its lines out of {where} and applied"
        if text == record["adopted"]:
            if _installed_all(state, target, record["jobs"]):
                _done(state, record)
                return f"the adopt of {where} had finished; its record is marked done"
            crontab.apply(jobs, state, target, record["jobs_dir"], prune_others=False)
            _done(state, record)
            return (f"finished the adopt killed between its two writes: its lines were out of {where} but not in "
                    f"{target.label}; applied them now")
    else:
        text = target.read()
        if text == record["text"]:
            _carry_out(record, jobs, state, target)
            _done(state, record)
            return f"finished the adopt killed before it wrote: took its lines out of {where} and applied"
        if _outside(text, state, target.label) == record["adopted"] and _installed_all(state, target,
                                                                                       record["jobs"]):
            _done(state, record)
            return f"the adopt of {where} had finished; its record is marked done"
    raise crontab.CrontabConflict(
        f"an earlier jobctl import --adopt of {where} was interrupted and {where} changed since; nothing was "
        f"changed. Its text before is in {record['backup']}; run jobctl uninstall"
        f"{' --system' if target.system else ''} --restore to put its entries back, then import again")


def _stage(path: str, text: str, mode: int) -> str:
    """``text`` in a synced temporary file next to ``path``, to be renamed over it."""
    return stage(path, text.encode("utf-8", "surrogateescape"), mode)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _FileThenBlock(crontab.Target):
    """The system block's target for an adopt of an /etc/cron.d-style file: both files replaced back to back.

    The trimmed file is staged (written and synced next to it) before apply
    starts; apply's write of the block stages the block the same way, then
    renames the file, then the block: nothing but two rename(2) calls lies
    between the entries leaving the file and the jobs entering cron's.
    """

    def __init__(self, target: crontab.Target, path: str, expected: str, trimmed: str) -> None:
        self.target = target
        self.system = target.system
        self.label = target.label
        self.path = path
        self.expected = expected
        try:
            self.mode = os.stat(path).st_mode & 0o7777
            self.staged: str | None = _stage(path, trimmed, self.mode)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}; nothing was changed") from None

    def discard(self) -> None:
        if self.staged:
            unlink_quietly(self.staged)
            self.staged = None

    def read(self) -> str:
        text = self.target.read()
        self.absent = self.target.absent
        return text

    def remove(self) -> None:
        self.target.remove()

    def trim_only(self) -> None:
        """The file's entries out when the block needed no write."""
        if self.staged is None or _read_file(self.path) != self.expected:
            raise crontab.CrontabConflict(f"{self.path} changed since jobctl read it; nothing was changed. Run the "
                                          "command again")
        os.replace(self.staged, self.path)
        self.staged = None
        _fsync_dir(self.path)

    def write(self, text: str) -> None:
        if not isinstance(self.target, crontab.FileCrontab) or not text or self.staged is None:
            raise JobctlError(f"cannot adopt into {self.label}: not a crontab file; nothing was changed")
        if _read_file(self.path) != self.expected:
            raise crontab.CrontabConflict(f"{self.path} changed since jobctl read it; nothing was changed. Run the "
                                          "command again")
        block = _stage(self.target.path, text, 0o644)
        try:
            os.replace(self.staged, self.path)  # the entries leave the file...
            self.staged = None
            try:
                os.replace(block, self.target.path)  # ...and the jobs enter jobctl's file, right after
                _fsync_dir(self.path)
                _fsync_dir(self.target.path)
                self.target.verify()
            except BaseException:
                _replace_file(self.path, _read_file(self.path), self.expected)
                raise
        except BaseException:
            unlink_quietly(block)
            raise


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}; nothing was changed") from None


def _replace_file(path: str, expected: str, text: str) -> None:
    """Rewrite a crontab file (mode kept) if it still holds ``expected``."""
    if _read_file(path) != expected:
        raise crontab.CrontabConflict(f"{path} changed since jobctl read it; nothing was changed. Run the command "
                                      "again")
    try:
        mode = os.stat(path).st_mode & 0o7777
        replace_atomically(path, text.encode("utf-8", "surrogateescape"), mode)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror}; nothing was changed") from None


def _text_lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _reinsert(text: str, record: dict[str, Any]) -> str | None:
    """The adopted entries put back into ``text`` where it only gained lines since the adopt; else None.

    Each entry goes right after the line that stood before it in the
    original (or first): lines added since stay where they are, every line
    of the original keeps its bytes.
    """
    import difflib

    adopted, original, current = (_text_lines(t) for t in (record["adopted"], record["original"], text))
    gained = difflib.SequenceMatcher(None, adopted, current, autojunk=False).get_opcodes()
    if any(tag not in ("equal", "insert") for tag, *_ in gained):
        return None
    where = {a0 + k: b0 + k for tag, a0, a1, b0, _ in gained if tag == "equal" for k in range(a1 - a0)}
    taken = difflib.SequenceMatcher(None, original, adopted, autojunk=False).get_opcodes()
    if any(tag not in ("equal", "delete") for tag, *_ in taken):
        return None
    before: dict[int, list[str]] = {}
    for tag, o0, o1, a0, _ in taken:
        if tag == "delete":
            position = where[a0 - 1] + 1 if a0 > 0 else 0
            before.setdefault(position, []).extend(original[o0:o1])
    out: list[str] = []
    for index in range(len(current) + 1):
        for line in before.get(index, []):
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.append(line)
        if index < len(current):
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.append(current[index])
    return "".join(out)


def _taken(record: dict[str, Any]) -> list[str]:
    """The entry lines an adopt took out (not the comments above them), without their newline."""
    import difflib

    original, adopted = _text_lines(record["original"]), _text_lines(record["adopted"])
    out: list[str] = []
    for tag, o0, o1, _, _ in difflib.SequenceMatcher(None, original, adopted, autojunk=False).get_opcodes():
        if tag in ("delete", "replace"):
            out.extend(line.rstrip("\n") for line in original[o0:o1]
                       if line.strip(BLANKS + "\n") and not line.lstrip(BLANKS).startswith("#"))
    return out


def _back_already(text: str, record: dict[str, Any]) -> bool | None:
    """Whether the entries an adopt took out stand in ``text`` again: True all, False none, None some."""
    from collections import Counter

    taken = Counter(_taken(record))
    if not taken:
        return False
    have = Counter(line.rstrip("\n") for line in _text_lines(text))
    original = Counter(line.rstrip("\n") for line in _text_lines(record["original"]))
    # an entry is back when the text holds it as often as the original did
    back = [have[line] >= original[line] for line in taken]
    return True if all(back) else False if not any(back) else None


def _undo(text: str, mine: list[dict[str, Any]], label: str, backup: str,
          already: list[dict[str, Any]] | None = None) -> str:
    """The text before the adopts ``mine``, newest first: exactly, or with lines added since kept.

    A record whose entries stand in the text already (put back by hand, or
    an adopt killed before it wrote) is not put back again: it goes into
    ``already``.
    """
    for record in reversed(mine):
        if text == record["adopted"]:
            text = record["original"]
            continue
        back = _back_already(text, record)
        if back is None:
            raise crontab.CrontabConflict(
                f"{label} holds some of the entries jobctl import --adopt took out and not others; nothing was "
                f"changed: the text before the import is in {record['backup']}, put the missing entries back by "
                "hand (crontab -e), then run jobctl uninstall without --restore")
        if back:
            if already is not None:
                already.append(record)
            continue
        merged = _reinsert(text, record)
        if merged is None:
            raise crontab.CrontabConflict(
                f"{label} changed since jobctl import --adopt took the entries out (line "
                f"{_first_difference(text, record['adopted'])} differs); nothing was changed: the text before the "
                f"import is in {record['backup']}, put its entries back by hand (crontab -e)")
        text = merged
    return text


def _first_difference(a: str, b: str) -> int:
    for number, (x, y) in enumerate(zip(a.split("\n"), b.split("\n"), strict=False), start=1):
        if x != y:
            return number
    return min(a.count("\n"), b.count("\n")) + 1


class _Restoring(crontab.Target):
    """What uninstall writes, with the adopted entries put back in the same write."""

    def __init__(self, target: crontab.Target, mine: list[dict[str, Any]]) -> None:
        self.target = target
        self.system = target.system
        self.label = target.label
        self.mine = mine
        self.already: list[dict[str, Any]] = []

    def read(self) -> str:
        text = self.target.read()
        self.absent = self.target.absent
        return text

    def write(self, text: str) -> None:
        self.already = []
        self.target.write(_undo(text, self.mine, self.label, self.mine[-1]["backup"], self.already))

    def remove(self) -> None:
        self.already = []
        original = _undo("", self.mine, self.label, self.mine[-1]["backup"], self.already)
        if original:
            self.target.write(original)
        else:
            self.target.remove()


@dataclass
class Restored:
    outcome: crontab.Outcome
    #: where entries went back: the crontab's label or the files
    places: list[str]
    lines: int
    #: where the entries of an adopt stood already (put back by hand, or an adopt killed before it wrote):
    #: not put back again, their records dropped
    already: list[str] = field(default_factory=list)


def restore(state: str, target: crontab.Target) -> Restored:
    """`uninstall --restore`: remove jobctl's block and put back what import --adopt took out, byte for byte.

    Never twice: the entries of an adopt that stand in the crontab (or file)
    already are left as they are and its record is dropped.
    """
    data = records(state)
    mine = [r for r in data if r.get("target") == target.label]
    if not mine:
        raise JobctlError(f"nothing to restore: jobctl import --adopt took no entries out for {target.label} (no "
                          f"record in {_records_path(state)}); nothing was changed")
    inline = [r for r in mine if not r.get("file")]
    files: dict[str, list[dict[str, Any]]] = {}
    for r in mine:
        if r.get("file"):
            files.setdefault(r["file"], []).append(r)
    already: list[dict[str, Any]] = []
    originals: dict[str, tuple[str, str]] = {}
    for path, recs in files.items():
        now = _read_file(path)
        originals[path] = (now, _undo(now, recs, path, recs[-1]["backup"], already))
    if inline:
        restoring = _Restoring(target, inline)
        outcome = crontab.uninstall(state, restoring)
        if not outcome.wrote:  # no block (uninstalled already): the entries alone go back
            with crontab.apply_lock(state):
                text = target.read()
                restoring.already = []
                before = _undo(text, inline, target.label, inline[-1]["backup"], restoring.already)
                if before != text:
                    _keep(state, "crontab-before-restore", text)
                    target.write(before)
                    outcome.wrote = True
        already.extend(restoring.already)
    else:
        outcome = crontab.uninstall(state, target)
    for path, (now, text) in originals.items():
        if text != now:
            try:
                _replace_file(path, now, text)
            except JobctlError as exc:
                # the block is out already: say so, rather than "nothing was changed"
                raise JobctlError(f"{exc.message.removesuffix('; nothing was changed')}; jobctl's block was "
                                  f"removed from {target.label} already, and {path} was not restored: its jobs run "
                                  "nowhere until you run the same jobctl uninstall --restore again", exc.code) from None
            except OSError as exc:
                raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}; jobctl's block was removed "
                                         f"from {target.label} already, and {path} was not restored: its jobs run "
                                         "nowhere until you run the same jobctl uninstall --restore again") from None
    _save(state, [r for r in data if r not in mine])
    back = [r for r in mine if r not in already]
    places = sorted({r.get("file") or target.label for r in back})
    return Restored(outcome, places, sum(len(r["lines"]) for r in back),
                    sorted({r.get("file") or target.label for r in already}))
