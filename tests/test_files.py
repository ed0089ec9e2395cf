"""Temporary files of killed writers: the next apply (or write of the same file) removes them, a live writer's stay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from jobctl.cli.app import app

cli = CliRunner()

# A writer that stops for good inside files.replace_atomically, right after
# its temporary file is complete: what a SIGKILLed apply, export or metrics
# leaves behind.
HANGING_WRITER = """
import os, sys, time
from jobctl import files
real_fsync = os.fsync
def hang(fd):
    real_fsync(fd)
    print("ready", flush=True)
    time.sleep(3600)
os.fsync = hang
files.replace_atomically(sys.argv[1], b"half of a new version", 0o600)
"""


def start_writer(target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HANGING_WRITER, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_the_next_apply_removes_what_a_killed_writer_left_and_spares_a_live_one(write_job, tmp_path):
    write_job("alpha.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    write_job("beta.yaml", 'schedule: "@hourly"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    applied = Path(os.environ["JOBCTL_STATE_DIR"]) / "applied"
    crontab = Path(os.environ["JOBCTL_CRONTAB"])
    crontab_before = crontab.read_bytes()
    writers = [start_writer(applied / "alpha.json"), start_writer(crontab)]
    gone = start_writer(applied / "gone.json")  # a job no later apply writes again
    left = temps(applied) + temps(tmp_path)
    assert len(left) == 3
    try:
        # the writers are alive (and hold their files): an apply leaves their files alone
        assert cli.invoke(app, ["apply"]).exit_code == 0
        assert temps(applied) + temps(tmp_path) == left
    finally:
        for proc in [*writers, gone]:
            kill(proc)
    result = cli.invoke(app, ["apply"])  # in sync: nothing to write, the leftovers go all the same
    assert result.exit_code == 0 and "already in sync" in result.output, result.output
    assert temps(applied) == [] and temps(tmp_path) == []
    assert sorted(p.name for p in applied.iterdir()) == ["alpha.json", "beta.json"]
    assert crontab.read_bytes() == crontab_before


def test_the_next_write_of_a_metrics_textfile_removes_a_killed_writers_leftover(write_job, tmp_path):
    target = tmp_path / "textfile" / "jobctl.prom"
    target.parent.mkdir()
    target.write_text("# old\n")
    kill(start_writer(target))
    (target.parent / ".other.prom.1.abcdefgh.tmp").write_text("someone else's")
    assert len(temps(target.parent)) == 2
    assert cli.invoke(app, ["metrics", "--textfile", str(target)]).exit_code == 0
    assert sorted(p.name for p in target.parent.iterdir()) == [".other.prom.1.abcdefgh.tmp", "jobctl.prom"]


def test_remove_stale_temps_rules(tmp_path):
    from jobctl import files

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: nothing has this pid now (for the moment of this test)
    live_pid = os.getppid()
    hour_ago = time.time() - files.STALE_AFTER_S - 60
    names = {
        f".a.json.{dead_pid}.k2j3h4g5.tmp": True,  # its writer is gone
        f".a.json.{live_pid}.k2j3h4g5.tmp": False,  # its writer lives (or is between mkstemp and flock)
        f".a.json.{live_pid}.oldoldol.tmp": True,  # a live pid, an hour old: the pid is someone else's now
        ".a.json.k2j3h4g5.tmp": False,  # an older jobctl's name, young: perhaps being written
        ".a.json.oldoldol.tmp": True,  # an older jobctl's name, an hour old
        f".b.json.{dead_pid}.k2j3h4g5.tmp": False,  # another file's
        "a.json": False,
        "notes.tmp": False,
    }
    for name in names:
        (tmp_path / name).write_text("x")
        if "oldoldol" in name:
            os.utime(tmp_path / name, (hour_ago, hour_ago))
    removed = files.remove_stale_temps(str(tmp_path), "a.json")
    assert sorted(os.path.basename(p) for p in removed) == sorted(n for n, stale in names.items() if stale)
    assert sorted(os.listdir(tmp_path)) == sorted(n for n, stale in names.items() if not stale)
