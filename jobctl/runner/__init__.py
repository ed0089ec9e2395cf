"""The wrapper cron starts: cron → run → run log (hot path, stdlib only).

Nothing is imported here: ``python -I -m jobctl.runner`` and the stages above
import this package, and whatever it imported would be paid every time.
fast_imports() is start.py's alone.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import CodeType, ModuleType


def fast_imports(package: str) -> None:
    """From now on, load jobctl's modules straight from their current .pyc, past the import system's search.

    Finding and checking a module the standard way is Python code in
    importlib (directory caches, stats, path joins, a file object per .pyc):
    about 0.1 ms for each of the ten modules a scheduled run loads.  A
    module under ``package`` (the jobctl directory) whose .pyc passes
    importlib's own test -- this interpreter's magic number, a timestamp
    .pyc recording the source's current mtime and size -- is loaded from it
    here, by the standard SourceFileLoader, with the same spec and module
    attributes.  Anything else (no .pyc, a stale or hash-based one, a name
    outside the package) is left to the import system, which compiles and
    caches it as always.
    """
    import marshal
    import os
    import sys

    if TYPE_CHECKING:
        from importlib.machinery import ModuleSpec, SourceFileLoader
    else:  # importlib.machinery's classes, without importing importlib
        SourceFileLoader = sys.modules["_frozen_importlib_external"].SourceFileLoader
        ModuleSpec = sys.modules["_frozen_importlib"].ModuleSpec
    magic, tag = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER, sys.implementation.cache_tag
    root = os.path.dirname(package)

    class Loader(SourceFileLoader):
        """SourceFileLoader, handed the .pyc its finder read and checked."""

        pyc = b""

        def get_code(self, fullname: str) -> CodeType | None:
            data, self.pyc = self.pyc, b""
            if not data:  # loaded again (importlib.reload): the standard way
                return super().get_code(fullname)
            return marshal.loads(memoryview(data)[16:])

    class Finder:
        @staticmethod
        def find_spec(name: str, path: Sequence[str] | None = None,
                      target: ModuleType | None = None) -> ModuleSpec | None:
            if not name.startswith("jobctl."):
                return None
            base = os.path.join(root, *name.split("."))
            directory, _, stem = base.rpartition("/")
            try:
                try:
                    st = os.stat(f"{base}.py")
                    source, cached = f"{base}.py", f"{directory}/__pycache__/{stem}.{tag}.pyc"
                except FileNotFoundError:
                    st = os.stat(f"{base}/__init__.py")
                    source, cached = f"{base}/__init__.py", f"{base}/__pycache__/__init__.{tag}.pyc"
                fd = os.open(cached, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    data = os.read(fd, os.fstat(fd).st_size)
                finally:
                    os.close(fd)
            except OSError:
                return None
            # importlib's _classify_pyc and _validate_timestamp_pyc, as plain comparisons
            if (len(data) < 16 or data[:4] != magic or data[4:8] != b"\0\0\0\0"
                    or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                    or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
                return None
            loader = Loader(name, source)
            loader.pyc = data
            spec = ModuleSpec(name, loader, origin=source, is_package=source.endswith("/__init__.py"))
            spec.cached, spec.has_location = cached, True
            if spec.submodule_search_locations is not None:
                spec.submodule_search_locations.append(base)
            return spec

    sys.meta_path.insert(0, Finder)
