"""Job files → JobSpecs, with a location for every problem.

The loader composes YAML into nodes (never ``yaml.load``: no object tags, no
implicit alias expansion), checks each key's shape against ``spec.FIELDS``,
and only then converts the few scalars the schema needs.  Aliases share
nodes; since nothing here walks deeper than the schema allows, a "billion
laughs" document is never expanded, and alias use is bounded on top of that.
Every problem of every file is collected in one pass.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from . import spec
from .errors import InvalidJobs, JobctlError, Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_ALIASES = 100
#: values the aliases of one file may stand for, counted as if expanded
MAX_EXPANDED = 10_000
#: job files nest three levels (job → retries → value); deeper is not a job file
MAX_DEPTH = 20
DEFAULTS_STEMS = ("_defaults",)
NOT_IN_DEFAULTS = ("name", "description")
_BOMB = "refusing a file that expands like a 'billion laughs' bomb. Job files need few or no aliases"


class _Refused(yaml.YAMLError):
    """A file shaped like an attack: composing stops at ``mark``."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


# libyaml scans and parses about ten times faster than PyYAML's pure-Python
# reader; composition stays in Python (Composer first in the MRO) so that the
# checks below see every node.  Without libyaml the pure-Python parser does it all.
_Base: Any = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _Loader(Composer, _Base):  # type: ignore[misc]
    """A safe loader that bounds aliases and nesting while composing, and stops early.

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
        #: expanded size of each finished node, by id (the tree keeps nodes alive)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
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


class _PyLoader(_Loader, yaml.SafeLoader):  # type: ignore[misc]
    """The same checks on PyYAML's pure-Python parser, for its clearer error messages."""

    base = yaml.SafeLoader


@dataclass
class LoadResult:
    jobs: list[spec.JobSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _node_kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a value"


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, node: Node | None, message: str, job: str | None = None,
            line: int = 1, column: int = 1) -> None:
        if node is not None:
            line, column = _pos(node)
        self.problems.append(Problem(path, line, column, message, job))


def job_files(directory: str) -> tuple[list[str], str | None]:
    """The job files of a directory in sorted order, and its defaults file."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        raise JobctlError(
            f"jobs directory {directory} does not exist; create it (jobctl init {directory}) "
            "or point --jobs-dir / JOBCTL_JOBS_DIR at yours"
        ) from None
    except NotADirectoryError:
        raise JobctlError(f"jobs directory {directory} is not a directory") from None
    except PermissionError:
        raise JobctlError(f"jobs directory {directory} is not readable (permission denied)") from None
    files: list[str] = []
    defaults = None
    for name in names:
        stem, ext = os.path.splitext(name)
        if ext not in (".yaml", ".yml") or name.startswith("."):
            continue
        if stem in DEFAULTS_STEMS:
            defaults = os.path.join(directory, name)
        elif not name.startswith("_"):
            files.append(os.path.join(directory, name))
    return files, defaults


def _check_writable_by_others(path: str, out: _Collector) -> bool:
    """As root, a job file others can write is a root shell for anyone."""
    if os.geteuid() != 0:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return True
    if st.st_mode & stat.S_IWOTH:
        out.add(path, None, f"writable by others (mode {stat.S_IMODE(st.st_mode):04o}); jobctl runs "
                f"as root and refuses it, since anyone could run commands as root: chmod o-w {path}")
        return False
    return True


def _read_documents(path: str, out: _Collector) -> list[Node]:
    """Compose every YAML document of a file, or report why it cannot be read."""
    if not _check_writable_by_others(path, out):
        return []
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        out.add(path, None, f"cannot read: {exc.strerror}")
        return []
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
    try:
        return _compose(text, _Loader)
    except yaml.YAMLError:
        pass  # composed again below, for the message
    # Errors (rare) are composed again by the pure-Python parser, whose
    # messages name the offending character; libyaml's do not.
    try:
        return _compose(text, _PyLoader)
    except _Refused as exc:
        out.add(path, None, exc.message, line=exc.mark.line + 1, column=exc.mark.column + 1)
        return []
    except ReaderError as exc:
        # Raised for control characters and the like; its position indexes ``text``.
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        out.add(path, None, f"character U+{exc.character:04X} is not allowed in YAML text; remove it",
                line=line, column=col)
        return []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        hint = _syntax_hint(text, mark)
        out.add(path, None, message + hint, line=(mark.line + 1) if mark else 1,
                column=(mark.column + 1) if mark else 1)
        return []
    except yaml.YAMLError as exc:
        out.add(path, None, f"YAML error: {exc}")
        return []


def _compose(text: str, cls: type) -> list[Node]:
    loader = cls(text)
    try:
        docs = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(node)
        return docs
    finally:
        loader.dispose()


def _syntax_hint(text: str, mark: yaml.Mark | None) -> str:
    """The classic mistakes: unquoted cron values starting with * or @."""
    if mark is None:
        return ""
    lines = text.splitlines()
    if mark.line >= len(lines):
        return ""
    line = lines[mark.line]
    _, colon, value = line.partition(":")
    value = value.strip()
    if colon and value[:1] in ("*", "@", "%", "`"):
        return f"; values starting with {value[0]!r} must be quoted, e.g. {line.split(':')[0].strip()}: \"{value}\""
    return ""


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _scalar(node: ScalarNode) -> Any:
    """The value of a scalar node; a value its tag cannot build is a ConstructorError."""
    # A fresh constructor each time: SafeConstructor caches every node it
    # builds, and a shared one would keep them all (and stale state after errors).
    try:
        return SafeConstructor().construct_object(node, deep=False)
    except (ValueError, KeyError, AttributeError):
        # PyYAML's int, float, bool and timestamp constructors raise these for
        # values that do not fit the tag: !!float abc, !!bool maybe, 2024-02-30.
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise ConstructorError(None, None, f"{node.value!r} is not a valid {tag}; quote it if it is text",
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
            out.add(path, key_node, f"duplicate key {key!r} (first at line {first}); remove one", job)
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
                    out.add(path, item, f"{key}: list items must be plain values, not {_node_kind(item)}", job)
                    return False, None
                values.append(_item(item, field_))
            return True, values
        if isinstance(node, MappingNode) and "map" in field_.shapes:
            items, ok = _mapping_items(node, path, job, out, key)
            if not ok:
                return False, None
            result = {}
            for k, v in items:
                if (field_.list_values and isinstance(v, SequenceNode)
                        and all(isinstance(i, ScalarNode) for i in v.value)):
                    result[k.value] = [_item(i, field_) for i in v.value]
                    continue
                if not isinstance(v, ScalarNode):
                    what = "a plain value or a list of them" if field_.list_values else "a plain value"
                    out.add(path, v, f"{key} {k.value}: must be {what}, not {_node_kind(v)}", job)
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
    allowed = " or ".join({"scalar": "a value", "list": "a list", "map": "a mapping"}[s] for s in field_.shapes)
    out.add(path, node, f"{key} must be {allowed}, not {_node_kind(node)}", job)
    return False, None


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
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
            if key in spec.KEYS:
                hint = " here; set it in each job file instead"
            out.add(path, key_node, f"unknown key {key!r}{hint}", job)
            ok = False
            continue
        field_ = spec.FIELDS_BY_KEY[key]
        if _is_null(value_node):
            out.add(path, value_node, f"{key} is empty; give it a value or remove the key", job)
            ok = False
            continue
        shaped, raw = _shape(value_node, field_, path, job, out)
        if not shaped:
            ok = False
            continue
        try:
            values[key] = field_.parse(raw)
            nodes[key] = value_node
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
    files, defaults_path = job_files(directory)
    out = _Collector()
    result = LoadResult(files=list(files))

    defaults: dict[str, Any] = {}
    if defaults_path:
        result.files.insert(0, defaults_path)
        docs = _read_documents(defaults_path, out)
        allowed = tuple(k for k in spec.KEYS if k not in NOT_IN_DEFAULTS)
        if len(docs) > 1:
            out.add(defaults_path, docs[1], "_defaults.yaml holds one mapping of default values, not several documents")
        elif docs and _is_null(docs[0]):
            pass
        elif docs:
            if not isinstance(docs[0], MappingNode):
                out.add(defaults_path, docs[0], f"defaults must be a mapping of keys, not {_node_kind(docs[0])}")
            else:
                defaults, default_nodes, _ = _parse_keys(docs[0], defaults_path, None, out, allowed)
                _check_user(defaults.get("user"), default_nodes.get("user"), defaults_path, None, out)

    seen_names: dict[str, str] = {}
    for path in files:
        nodes = [n for n in _read_documents(path, out) if not _is_null(n)]
        if not nodes and not any(p.path == path for p in out.problems):
            out.add(path, None, "no job in this file; add a job mapping or delete the file")
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        only = len(nodes) == 1
        for node in nodes:
            _load_job(path, node, stem, only, defaults, seen_names, out, result)
    result.problems = out.problems
    return result


def _load_job(path: str, node: Node, stem: str, only: bool, defaults: dict[str, Any],
              seen_names: dict[str, str], out: _Collector, result: LoadResult) -> None:
    if not isinstance(node, MappingNode):
        out.add(path, node, f"a job must be a mapping of keys (name, schedule, command, ...), not {_node_kind(node)}")
        return
    label = _job_label(node, stem if only else None)
    values, nodes, ok = _parse_keys(node, path, label, out, spec.KEYS)
    name = values.get("name")
    if name is None and "name" not in nodes and not any(
        isinstance(k, ScalarNode) and k.value == "name" for k, _ in node.value
    ):
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
        if key.required and key.key not in values and key.key not in defaults and not any(
            isinstance(k, ScalarNode) and k.value == key.key for k, _ in node.value
        ):
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
    result.jobs.append(spec.build(merged, source=f"{path}:{_pos(node)[0]}"))


def load_jobs(directory: str) -> list[spec.JobSpec]:
    """Every job of the directory, or InvalidJobs listing every problem."""
    result = load_dir(directory)
    if result.problems:
        raise InvalidJobs(result.problems)
    return result.jobs
