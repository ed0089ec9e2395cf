"""What a wrapper of the previous release needs when the package is upgraded under it.

``install.sh`` (pip) replaces the package's files while wrappers run: a job
that runs for hours spans the upgrade.  Such a wrapper imports some modules
only when its job ends, and then finds this release's files; the names it
asks for stay where it looks (``jobctl.notify``, ``retention.prune_job`` and
``vacuum``).  Its own modules still hold their names in ``sys.modules``
(``jobctl.runner`` is its wrapper module, not this release's package,
``jobctl.store`` its run log), so this release's module that does the work is
loaded from its file under a private name.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType


def current(relative: str) -> ModuleType:
    """This release's module at ``relative`` (e.g. ``runner/notify.py``), loaded once from its file."""
    import importlib.util

    name = "jobctl._current_" + relative.removesuffix(".py").replace("/", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), relative))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def previous_release_running() -> bool:
    """Whether this process is a wrapper of the flat layout (``jobctl.runner`` a module, not a package)."""
    runner = sys.modules.get("jobctl.runner")
    return runner is not None and not hasattr(runner, "__path__")
