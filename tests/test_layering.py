"""The layout by stage stays the layout: who may import whom, and what the hot path loads.

The tree reads like the data flow (docs/ARCHITECTURE.md): the foundations at
the top of the package, then job files → specs (``jobs/``), specs → the
installed state (``install/``), cron → run → run log (``runner/``, the hot
path), run log → operators (``read/``), other engines (``export/``) and the
command line (``cli/``).  These tests read the imports from the source
(function-level ones too, since a lazy import is still a dependency) and run
the real wrapper under ``-X importtime``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jobctl"
FOUNDATIONS = {"errors", "paths", "files", "units", "applied", "store", "retention", "pause", "clock", "inflight",
               "baseline", "params"}
#: stage -> the stages it may import from (besides itself and the foundations)
ALLOWED = {
    "foundation": set(),
    "jobs": set(),
    "runner": set(),
    "install": {"jobs", "runner"},
    "read": {"jobs", "install", "runner"},
    "export": {"jobs", "install", "runner"},
    "cli": {"jobs", "install", "runner", "read", "export"},
}
#: modules kept at their old place for a wrapper of the previous release that is
#: still running while the package is upgraded under it (it imports them when its
#: job ends); nothing in jobctl imports them
COMPAT = {"jobctl.notify"}
#: what the wrapper may import from jobctl: its own package and the foundations
#: (only cmdline and host are read by the stages above it)
THIRD_PARTY_ON_HOT_PATH = ("typer", "rich", "yaml", "croniter", "crontab", "cron_descriptor", "filelock",
                           "pydantic", "click", "shellingham")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _stage(module: str) -> str:
    parts = module.split(".")
    if module == "jobctl.__main__":  # `python -m jobctl` is the command line
        return "cli"
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in FOUNDATIONS):
        return "foundation"
    return parts[1]


def _resolve(module: str, name: str) -> str:
    """The jobctl module an imported dotted name means: a module when there is one, else its package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports(module: str) -> dict[str, set[str]]:
    """{imported top-level package or jobctl module: the line numbers} of one module, function-level imports too."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            target = _resolve(module, name) if name.split(".")[0] == "jobctl" else name.split(".")[0]
            if target and target != module:
                found.setdefault(target, set()).add(str(node.lineno))
    return found


def test_every_module_is_placed_in_a_stage() -> None:
    stages = {_stage(m) for m in set(MODULES) - COMPAT if m != "jobctl"}
    assert stages <= set(ALLOWED), stages - set(ALLOWED)


def test_each_stage_imports_only_the_stages_below_it() -> None:
    wrong = []
    for module in set(MODULES) - COMPAT:
        stage = _stage(module)
        for target, lines in imports(module).items():
            if not target.startswith("jobctl") or target in ("jobctl",):
                continue
            other = _stage(target)
            if other in (stage, "foundation") and not (stage == "foundation" and other != "foundation"):
                continue
            if other not in ALLOWED[stage]:
                wrong.append(f"{module} (line {','.join(sorted(lines))}) imports {target}: {stage} may not use {other}")
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_compatibility_modules() -> None:
    users = [f"{m} imports {t}" for m in MODULES for t in imports(m) if t in COMPAT]
    assert not users, users


def test_the_stages_above_the_wrapper_use_only_its_command_line_and_host_modules() -> None:
    """install/, read/ and export/ name the wrapper's argv and ask about processes, never load the wrapper."""
    reach = {"jobctl.runner.cmdline", "jobctl.runner.host"}
    wrong = [f"{m} imports {t}" for m in MODULES if _stage(m) in ("install", "read", "export", "jobs")
             for t in imports(m) if t.startswith("jobctl.runner") and t not in reach]
    assert not wrong, wrong


@pytest.mark.parametrize(("library", "who"), [
    ("typer", ("cli",)),
    ("rich", ("cli", "jobctl.read.render")),
    ("yaml", ("jobs", "cli", "export")),
])
def test_libraries_stay_in_their_stage(library: str, who: tuple[str, ...]) -> None:
    wrong = [m for m in MODULES if library in imports(m) and _stage(m) not in who and m not in who]
    assert not wrong, f"{library} imported by {wrong}"


def test_no_import_circles() -> None:
    graph = {m: {t for t in imports(m) if t in MODULES and t != "jobctl"} for m in MODULES}
    # a package's __init__ is imported on the way to its modules, not a dependency of them
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    graph = {m: targets - packages for m, targets in graph.items()}
    circles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "\n".join(circles)


def test_the_layering_rules_can_fail() -> None:
    """The walk sees lazy imports: the wrapper importing the loader inside a function is found."""
    source = "def f():\n    from jobctl.jobs import loader\n"
    tree = ast.parse(source)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert found and _resolve("jobctl.runner.wrapper", "jobctl.jobs.loader") == "jobctl.jobs.loader"
    assert _stage("jobctl.jobs.loader") not in ALLOWED["runner"]


# -- the hot path, measured on the real wrapper --------------------------------------------------

def _imported(stderr: str) -> list[str]:
    names = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2 and "imported package" not in line:
            names.append(line.rsplit("|", 1)[1].strip())
    return names


def _wrapper_imports(state: Path, name: str, line: str = "start.py") -> list[str]:
    """What one scheduled wake-up imports: with the command a crontab line has now, or an older line's (-m)."""
    from jobctl.runner import cmdline

    argv = cmdline.wrapper_argv(str(state), name)
    if line == "start.py" and cmdline.is_module_form(argv):
        pytest.skip(f"{cmdline.start_script()} is where others could replace it: lines use the module form")
    if line == "-m":
        argv = [argv[0], *cmdline.MODULE_FORM, *argv[argv.index("--scheduled"):]]
    assert ("-S" in argv) == (line == "start.py")  # the form asked for, not the other
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    return _imported(done.stderr)


def _forbidden(loaded: list[str]) -> list[str]:
    bad = []
    for mod in loaded:
        top = mod.split(".")[0]
        ours = top == "jobctl" and mod not in ("jobctl", "jobctl.runner")
        if top in THIRD_PARTY_ON_HOT_PATH or (ours and not mod.startswith("jobctl.runner.")
                                              and _stage(mod) != "foundation"):
            bad.append(mod)
    return bad


@pytest.fixture
def applied_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two jobs applied through the real CLI: one due every minute, one never due in this minute."""
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    minute = (time.localtime().tm_min + 30) % 60
    (jobs / "every.yaml").write_text("name: every\nschedule: '* * * * *'\ncommand: 'echo hi'\n"
                                     "notify:\n  when: [success]\n  command: 'true'\n")
    (jobs / "later.yaml").write_text(f"name: later\nschedule: '{minute} 3 * * *'\ncommand: 'true'\n")
    state = tmp_path / "state"
    env = {**os.environ, "JOBCTL_JOBS_DIR": str(jobs), "JOBCTL_STATE_DIR": str(state),
           "JOBCTL_CRONTAB": str(tmp_path / "crontab")}
    done = subprocess.run([sys.executable, "-m", "jobctl", "apply"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return state


@pytest.mark.parametrize("line", ["start.py", "-m"])
def test_a_scheduled_wake_up_that_is_not_due_imports_only_the_hot_path(applied_state: Path, line: str) -> None:
    loaded = _wrapper_imports(applied_state, "later", line)
    assert "jobctl.runner" in loaded  # the measurement saw the wrapper at all
    assert not _forbidden(loaded), _forbidden(loaded)


@pytest.mark.parametrize("line", ["start.py", "-m"])
def test_a_full_run_imports_only_the_hot_path(applied_state: Path, line: str) -> None:
    loaded = _wrapper_imports(applied_state, "every", line)
    rows = subprocess.run([sys.executable, "-m", "jobctl", "history", "every", "--json"], capture_output=True,
                          text=True, env={**os.environ, "JOBCTL_STATE_DIR": str(applied_state),
                                          "JOBCTL_JOBS_DIR": str(applied_state.parent / "jobs.d")}, timeout=120)
    assert [r["status"] for r in json.loads(rows.stdout)] == ["succeeded"], rows.stdout + rows.stderr
    assert "jobctl.store" in loaded and "jobctl.runner.notify" in loaded  # recorded and notified by this process
    assert not _forbidden(loaded), _forbidden(loaded)


def test_the_hot_path_check_can_fail() -> None:
    assert _forbidden(["jobctl.runner.wrapper", "jobctl.store", "yaml"]) == ["yaml"]
    assert _forbidden(["jobctl.jobs.loader", "jobctl.read.render", "jobctl.runner.notify"]) == [
        "jobctl.jobs.loader", "jobctl.read.render"]
