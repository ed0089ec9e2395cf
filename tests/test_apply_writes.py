"""Issue 13: how apply writes the applied definitions, and what plan compares, at 1,000 jobs.

* the definitions are one line of JSON each (json's C encoder), read back unchanged;
* a Batch syncs all its files in one pass before the first rename, then each
  directory once after the last: a rename never reaches the disk before the
  data it points to, and an error while syncing changes nothing;
* apply compares with the definitions its plan read (no second read), rewrites
  only what differs, and keeps the apply lock (flock) that export and the
  wrapper's lock files also use;
* plan tells a line written by hand from one whose definition changed without
  hashing a definition twice.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl import applied, files, paths
from jobctl.cli.app import app
from jobctl.install import crontab

JOB = 'schedule: "*/5 * * * *"\ncommand: echo {name}\n'
cli = CliRunner()


def invoke(*args: str):
    return cli.invoke(app, list(args))


def state() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


@pytest.fixture
def three(write_job):
    for name in ("alpha", "beta", "gamma"):
        write_job(f"{name}.yaml", JOB.format(name=name))
    return write_job


def test_definitions_are_one_line_of_json_read_back_unchanged(three) -> None:
    assert invoke("apply").exit_code == 0
    for name in ("alpha", "beta", "gamma"):
        data = Path(paths.applied_file(state(), name)).read_bytes()
        assert data.count(b"\n") == 1 and data.endswith(b"}\n")
        defn = applied.read(state(), name)
        assert defn is not None and defn["command"] == f"echo {name}"
        assert data == (json.dumps(defn, sort_keys=True, separators=(",", ":")) + "\n").encode()
        assert applied.parse(data) == json.loads(data) == defn  # the wrapper's reader agrees


class Recorder:
    """What a Batch does to the disk, in order: ("fsync", path) and ("replace", target)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_fsync: str | None = None) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            with self.lock:
                self.events.append(("fsync", path))
            if fail_fsync and os.path.basename(path).startswith(fail_fsync):
                raise OSError(errno.EIO, "Input/output error")
            real_fsync(fd)

        def replace(src, dst) -> None:
            with self.lock:
                self.events.append(("replace", str(dst)))
            real_replace(src, dst)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


def test_a_batch_syncs_every_file_before_the_first_rename_and_the_directory_after_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "applied"
    directory.mkdir()
    (directory / "old.json").write_text("old\n")
    targets = [directory / f"job-{i:02d}.json" for i in range(20)] + [directory / "old.json"]
    rec = Recorder(monkeypatch)
    batch = files.Batch()
    for i, target in enumerate(targets):
        batch.add(str(target), f"new {i}\n".encode(), 0o600)
    assert rec.events == []  # nothing synced file by file while writing
    batch.commit()
    batch.finish()
    kinds = [kind for kind, _ in rec.events]
    first_rename = kinds.index("replace")
    synced = {path for kind, path in rec.events[:first_rename] if kind == "fsync"}
    assert len(synced) == len(targets) and all(".tmp" in p for p in synced)  # every temporary file, before
    assert kinds[first_rename:] == ["replace"] * len(targets) + ["fsync"]
    assert rec.events[-1] == ("fsync", str(directory))  # the renames made durable, once
    assert [t.read_text() for t in targets] == [f"new {i}\n" for i in range(len(targets))]
    assert sorted(p.name for p in directory.iterdir()) == sorted(t.name for t in targets)
    assert all(oct(t.stat().st_mode & 0o777) == "0o600" for t in targets)


def test_an_error_while_syncing_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "applied"
    directory.mkdir()
    (directory / "a.json").write_text("old a\n")
    Recorder(monkeypatch, fail_fsync=".c.json")
    batch = files.Batch()
    for name in ("a", "b", "c", "d"):
        batch.add(str(directory / f"{name}.json"), b"new\n", 0o600)
    with pytest.raises(OSError) as exc:
        batch.commit()
    assert exc.value.errno == errno.EIO
    assert sorted(p.name for p in directory.iterdir()) == ["a.json"] and (directory / "a.json").read_text() == "old a\n"


def test_apply_stops_on_an_error_while_syncing_and_changes_nothing(three, monkeypatch) -> None:
    assert invoke("apply").exit_code == 0
    crontab_before = Path(os.environ["JOBCTL_CRONTAB"]).read_bytes()
    applied_dir = Path(paths.applied_dir(state()))
    before = {p.name: p.read_bytes() for p in applied_dir.iterdir()}
    three("alpha.yaml", JOB.format(name="alpha") + "timeout: 5m\n")
    three("delta.yaml", JOB.format(name="delta"))
    Recorder(monkeypatch, fail_fsync=".delta.json")
    result = invoke("apply")
    assert result.exit_code == 3
    assert result.stderr == (f"jobctl: cannot write the applied definitions in {applied_dir}: Input/output error; "
                             "nothing was changed\n")
    assert {p.name: p.read_bytes() for p in applied_dir.iterdir()} == before
    assert Path(os.environ["JOBCTL_CRONTAB"]).read_bytes() == crontab_before


def test_apply_rewrites_only_what_differs_and_reads_each_definition_once(three, monkeypatch) -> None:
    assert invoke("apply").exit_code == 0
    three("beta.yaml", JOB.format(name="beta") + "timeout: 5m\n")
    reads: list[str] = []
    real_read = applied.read

    def read(state_: str, name: str):
        reads.append(name)
        return real_read(state_, name)

    monkeypatch.setattr(applied, "read", read)
    rec = Recorder(monkeypatch)
    result = invoke("apply")
    assert result.exit_code == 0, result.output
    assert "change    beta (timeout)" in result.stdout
    assert sorted(reads) == ["alpha", "beta", "gamma"]  # by the plan; apply compares with what it read
    replaced = [Path(p).name for kind, p in rec.events if kind == "replace"]
    assert replaced[0] == "beta.json" and "alpha.json" not in replaced and "gamma.json" not in replaced


def test_the_apply_lock_is_an_flock_others_wait_for(three) -> None:
    assert invoke("apply").exit_code == 0
    lock = paths.apply_lock(state())
    with crontab.apply_lock(state()):
        assert oct(os.stat(lock).st_mode & 0o777) == "0o600"
        fd = os.open(lock, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: another apply would wait
        finally:
            os.close(fd)
        # a second apply, in another process, waits for this one
        child = subprocess.Popen([sys.executable, "-m", "jobctl", "apply"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(1.5)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and "already in sync" in out, err
    assert os.path.exists(lock) and os.path.getsize(lock) == 0  # never deleted, never written


def test_plan_tells_an_edited_line_from_a_changed_definition(three) -> None:
    assert invoke("apply").exit_code == 0
    path = Path(os.environ["JOBCTL_CRONTAB"])
    text = path.read_text()
    alpha = next(line for line in text.splitlines() if "# jobctl:alpha " in line)
    beta = next(line for line in text.splitlines() if "# jobctl:beta " in line)
    marker = beta.rsplit(" ", 1)
    # alpha's line edited (its marker intact); beta's marker hash changed (its line otherwise as written)
    edited = text.replace(alpha, alpha.replace("*/5 * * * *", "*/7 * * * *", 1))
    edited = edited.replace(beta, f"{marker[0]} {'0' * 12}")
    path.write_text(edited)
    lines = invoke("plan").stdout.splitlines()
    assert "  change    alpha (crontab line edited)" in lines
    assert "  change    beta (crontab line)" in lines
    assert "  unchanged gamma" in lines
