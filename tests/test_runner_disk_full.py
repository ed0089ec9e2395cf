"""A full disk under the run log never stops a job (a real, tiny tmpfs)."""

from __future__ import annotations

import os
import subprocess

import pytest

from runhelp import job, rows, run


@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_disk_full_still_runs_the_job_with_its_exit_code(tiny_fs, tmp_path):
    state = str(tiny_fs / "state")
    assert run(state, job(command="true")).returncode == 0  # the log exists and works
    fd = os.open(tiny_fs / "filler", os.O_WRONLY | os.O_CREAT)  # now fill every remaining byte
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    flag = tmp_path / "ran"
    result = run(state, job(command=f"touch {flag}; seq 1 100000; exit 7"))
    assert flag.exists() and result.returncode == 7
    err = result.stderr.decode()
    assert err.startswith("jobctl: job t: run log unusable") and len(err.splitlines()) == 1
    os.unlink(tiny_fs / "filler")
    assert rows(state)[0]["status"] == "succeeded"  # the earlier run is intact
