"""Shared fixtures: every test gets its own jobs directory, state directory and crontab file."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every path jobctl resolves into tmp_path, never at the real ones.

    The working directory moves too, so the ``./jobs.d`` fallback cannot find
    the repository's own examples by accident.
    """
    monkeypatch.setenv("JOBCTL_JOBS_DIR", str(tmp_path / "jobs.d"))
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JOBCTL_CRONTAB", str(tmp_path / "crontab"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def jobs_dir(isolated_env: Path) -> Path:
    """The (empty) jobs directory $JOBCTL_JOBS_DIR points at."""
    path = isolated_env / "jobs.d"
    path.mkdir()
    return path


@pytest.fixture
def write_job(jobs_dir: Path) -> Callable[[str, str | bytes], Path]:
    """Write one file into the jobs directory: ``write_job("backup.yaml", text)``."""

    def write(name: str, content: str | bytes) -> Path:
        path = jobs_dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


@pytest.fixture
def real_crontab(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Root's real crontab through crontab(1), restored exactly afterwards."""
    if not shutil.which("crontab"):
        pytest.skip("no crontab command (apt-get install cron)")
    monkeypatch.delenv("JOBCTL_CRONTAB")
    saved = subprocess.run(["crontab", "-l"], capture_output=True)
    try:
        yield
    finally:
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True)
    after = subprocess.run(["crontab", "-l"], capture_output=True)
    assert (after.returncode, after.stdout) == (saved.returncode, saved.stdout)


@pytest.fixture
def tiny_fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A real, small tmpfs (256 KiB, or the size given with indirect parametrisation) to fill up: root only."""
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    size = getattr(request, "param", "256k")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)
