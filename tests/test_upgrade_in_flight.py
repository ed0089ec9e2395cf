"""A run of the previous release that is still going while the package is upgraded in place.

``install.sh`` (pip) replaces the package's files under running wrappers: a
backup that runs for hours spans the upgrade.  The old wrapper imports some
modules only when its job ends (notify, and retention through the run log),
so it then finds the new release's files.  The run must still be recorded with
its exit code, notified, and end with the job's exit code.

The previous release is taken from git (the commit before the layout by
stage), unpacked next to a copy of this checkout's package, and swapped in the
way pip does it: the old tree removed, the new one written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: the last commit of the flat layout (jobctl 0.2.0 as operators installed it)
PREVIOUS = "da71d5e"


def _previous_release(into: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.fail("this test needs the git history of the checkout (a clone, not an export)")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS, "jobctl"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)


def _python(site: Path, code: str) -> list[str]:
    """An isolated interpreter that finds jobctl in ``site`` only (as a venv's site-packages)."""
    return [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"]


def test_a_run_spanning_the_upgrade_is_recorded_notified_and_keeps_its_exit_code(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _previous_release(site)
    jobs, state = tmp_path / "jobs.d", tmp_path / "state"
    jobs.mkdir()
    notified = tmp_path / "notified"
    (jobs / "long.yaml").write_text(
        "schedule: '* * * * *'\n"
        "command: 'sleep 3; echo done; exit 3'\n"
        "history: {keep: 1}\n"
        f"notify: {{when: [failure], command: 'echo \"$JOBCTL_JOB $JOBCTL_EXIT_CODE\" > {notified}'}}\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JOBCTL_JOBS_DIR": str(jobs),
           "JOBCTL_STATE_DIR": str(state), "JOBCTL_CRONTAB": str(tmp_path / "crontab"), "LANG": "C.UTF-8"}
    applied = subprocess.run(_python(site, "from jobctl.cli import main; sys.argv[0] = 'jobctl'; main()") + ["apply"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    # two earlier runs, so that retention has something to delete when the in-flight run ends
    db_path = state / "runs.db"
    wrapper = _python(site, "from jobctl.runner import main, _exit_now; _exit_now(main(sys.argv[1:]))")
    for _ in range(2):
        subprocess.run([*wrapper, "--state-dir", str(state), "--scheduled", "long"], env={**env},
                       capture_output=True, timeout=120)
    assert notified.exists()
    notified.unlink()

    old = subprocess.Popen([*wrapper, "--state-dir", str(state), "--scheduled", "long"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the job has started: the old wrapper's start-up imports are done
        with sqlite3.connect(db_path) as db:
            if db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]:
                break
        time.sleep(0.05)
    else:
        old.kill()
        pytest.fail("the old wrapper never started its job")

    # the upgrade, as pip does it: the old files go, the new release's come
    shutil.rmtree(site / "jobctl")
    shutil.copytree(REPO / "jobctl", site / "jobctl", ignore=shutil.ignore_patterns("__pycache__"))

    out, err = old.communicate(timeout=120)
    assert old.returncode == 3, err
    assert "unusable" not in err and "internal error" not in err, err
    assert notified.read_text().split() == ["long", "3"]
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT status, exit_code, failures FROM runs ORDER BY id").fetchall()
    # retention ran (keep: 1) and the failure streak was recorded on the run
    assert rows == [("failed", 3, 3)]
    assert not os.path.exists(site / "jobctl" / "runner.py")  # the new layout really was in place
