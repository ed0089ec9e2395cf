"""A full disk under the run log never stops a job (a real, tiny tmpfs)."""

from __future__ import annotations

import os

import pytest

from runhelp import fill, job, rows, run


@pytest.mark.parametrize("tiny_fs", ["512k"], indirect=True)
def test_disk_full_still_runs_the_job_with_its_exit_code(tiny_fs, tmp_path):
    state = str(tiny_fs / "state")
    assert run(state, job(command="true")).returncode == 0  # the log exists and works
    filler = fill(tiny_fs)  # now take every remaining byte
    flag = tmp_path / "ran"
    result = run(state, job(command=f"touch {flag}; seq 1 100000; exit 7"))
    assert flag.exists() and result.returncode == 7
    err = result.stderr.decode()
    assert err.startswith("jobctl: job t: run log unusable") and len(err.splitlines()) == 1
    os.unlink(filler)
    assert rows(state)[0]["status"] == "succeeded"  # the earlier run is intact
