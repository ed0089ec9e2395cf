"""apply and uninstall on a full disk: one line, exit 3, nothing half-written (a real, tiny tmpfs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runhelp import fill

JOB = 'schedule: "*/5 * * * *"\ncommand: echo {name}\n'




def jobctl(*args: str) -> subprocess.CompletedProcess:
    """The real command in a real process: a traceback would show on its stderr."""
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=120)


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes (the apply lock is empty and never deleted)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_apply_on_a_full_state_disk_is_one_line_and_changes_nothing(tiny_fs, write_job, monkeypatch, tmp_path):
    state = tiny_fs / "state"
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(state))
    crontab = Path(os.environ["JOBCTL_CRONTAB"])
    crontab.write_text("# mine\n")
    write_job("alpha.yaml", JOB.format(name="alpha"))
    write_job("beta.yaml", JOB.format(name="beta"))
    assert jobctl("apply").returncode == 0
    crontab_before, state_before = crontab.read_bytes(), snapshot(state)
    write_job("alpha.yaml", JOB.format(name="alpha") + "timeout: 5m\n")  # changed
    write_job("gamma.yaml", JOB.format(name="gamma"))  # new
    filler = fill(tiny_fs)
    result = jobctl("apply")
    assert result.returncode == 3, result.stderr
    assert result.stderr == (f"jobctl: cannot write the applied definition {state}/applied/alpha.json: "
                             "No space left on device; nothing was changed\n")
    assert crontab.read_bytes() == crontab_before
    assert snapshot(state) == state_before  # no new definition, no temporary file, no backup
    result = jobctl("uninstall")
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"jobctl: cannot back up {crontab} into {state}/backups: No space left on device")
    assert len(result.stderr.splitlines()) == 1 and result.stderr.endswith("; nothing was changed\n")
    assert crontab.read_bytes() == crontab_before and snapshot(state) == state_before
    filler.unlink()
    result = jobctl("apply")
    assert result.returncode == 0, result.stderr
    assert "add       gamma" in result.stdout and "change    alpha (timeout)" in result.stdout
    assert not [name for name in snapshot(state) if name.endswith(".tmp")]


def test_a_crontab_that_cannot_be_written_puts_the_old_definitions_back(write_job, monkeypatch, tiny_fs):
    crontab = tiny_fs / "crontab"  # the crontab on the full disk, the state directory elsewhere
    monkeypatch.setenv("JOBCTL_CRONTAB", str(crontab))
    state = Path(os.environ["JOBCTL_STATE_DIR"])
    write_job("alpha.yaml", JOB.format(name="alpha"))
    assert jobctl("apply").returncode == 0
    crontab_before, state_before = crontab.read_bytes(), snapshot(state)
    write_job("alpha.yaml", JOB.format(name="alpha") + "timeout: 5m\n")
    write_job("beta.yaml", JOB.format(name="beta"))
    fill(tiny_fs)
    result = jobctl("apply")
    assert result.returncode == 3, result.stderr
    assert result.stderr == f"jobctl: cannot write {crontab}: No space left on device; nothing was changed\n"
    assert crontab.read_bytes() == crontab_before
    # the definitions had been renamed into place before the crontab write failed: they are back as they were
    assert snapshot(state) == state_before


def test_a_crash_report_on_a_full_disk_goes_elsewhere_whole(tiny_fs, monkeypatch):
    from jobctl.cli import app as cli

    state = tiny_fs / "state"
    state.mkdir()
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(state))
    fill(tiny_fs)
    try:
        raise RuntimeError("a bug " + "x" * 20000)  # a report larger than what is left
    except RuntimeError as exc:
        report = cli._crash_report(exc)
    try:
        assert not report.startswith(str(state)) and "RuntimeError: a bug" in Path(report).read_text()
        assert list(state.iterdir()) == []  # no half report left behind
    finally:
        os.unlink(report)
