"""`jobctl logs NAME --follow` against real runs started as cron starts them (the crontab line's command).

The truth each test checks against is outside the code under test: what the
job printed (its own commands, re-run here where the bytes matter), the
wrapper's own summary line (what it prints under cron for cron's mail, the
same line `jobctl run` ends with), the run log's row, the file system (the
spool's mode, size and removal) and /proc (the job's descriptors).
"""

from __future__ import annotations

import os
import re
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobctl import applied
from jobctl.jobs import schedule
from jobctl.runner import cmdline

from runhelp import job, rows, wait_for

WriteJob = Callable[[str, "str | bytes"], Path]
#: cron's environment for the commands it starts (Debian: /usr/bin:/bin, the user's HOME and SHELL=/bin/sh)
CRON_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LOGNAME": "root", "SHELL": "/bin/sh", "LANG": "C"}


def jobctl(*args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL, **popen)


def follow(*args: str) -> subprocess.Popen:
    """`jobctl logs ... --follow` as a process whose output the test reads as it comes."""
    return subprocess.Popen([sys.executable, "-m", "jobctl", "logs", *args, "--follow"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def state_dir() -> Path:
    return Path(os.environ["JOBCTL_STATE_DIR"])


def spool_dir() -> Path:
    return state_dir() / "spool"


def crontab_command(name: str) -> str:
    """The command part of the crontab line `apply` wrote for ``name``: what cron hands to /bin/sh -c."""
    for line in Path(os.environ["JOBCTL_CRONTAB"]).read_text().splitlines():
        body, sep, tail = line.partition(" # jobctl:")
        if sep and tail.split()[0] == name:
            assert "%" not in body  # cron would cut the command at a %: not the case here
            return body.split(None, 5)[5]
    raise AssertionError(f"no crontab line for {name}")


def as_cron(name: str) -> subprocess.Popen:
    """Start the job's crontab line as cron does: /bin/sh -c COMMAND, cwd /, cron's environment, no terminal."""
    return subprocess.Popen(["/bin/sh", "-c", crontab_command(name)], cwd="/", env=CRON_ENV,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def apply(write_job: WriteJob, name: str, text: str) -> None:
    write_job(f"{name}.yaml", "schedule: '* * * * *'\n" + text)
    done = jobctl("apply")
    assert done.returncode == 0, done.stderr


def running_row(name: str) -> dict:
    return wait_for(lambda: next((r for r in rows(str(state_dir()), name) if r["status"] == "running"), None),
                    timeout=30)


def read_line(stream, timeout: float) -> bytes:
    """One line from a pipe within ``timeout`` seconds (select, then one byte at a time: no buffering ahead)."""
    end = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = end - time.monotonic()
        assert left > 0, f"no complete line within {timeout}s (got {line!r})"
        if select.select([stream], [], [], left)[0]:
            byte = os.read(stream.fileno(), 1)
            assert byte, f"end of file after {line!r}"
            line += byte
    return line


def members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def summary_of(mail: bytes) -> str:
    """The wrapper's own summary line from what it printed for cron's mail."""
    first = mail.decode().splitlines()[0]
    assert first.startswith("jobctl: job "), mail
    return first


def test_follow_shows_a_cron_started_run_live_then_its_result_line(write_job, tmp_path):
    done_flag = tmp_path / "done"
    apply(write_job, "ticker", f"command: 'for i in 1 2 3 4 5 6; do echo \"line $i\"; sleep 0.5; done; "
                               f"touch {done_flag}; exit 3'\n")
    wrapper = as_cron("ticker")
    row = running_row("ticker")
    follower = follow("ticker")
    assert read_line(follower.stdout, 20) == b"line 1\n"
    # seen live: the job has not finished (its last command has not run) and its wrapper still runs
    assert not done_flag.exists() and wrapper.poll() is None
    mode = os.stat(spool_dir() / str(row["id"])).st_mode
    assert (stat.S_IMODE(mode), stat.S_IMODE(os.stat(spool_dir()).st_mode)) == (0o600, 0o700)
    rest, err = follower.communicate(timeout=60)
    mail, _ = wrapper.communicate(timeout=60)
    assert done_flag.exists()
    assert rest == b"".join(f"line {i}\n".encode() for i in range(2, 7))
    # the result line is the line the wrapper itself printed for cron's mail (as `jobctl run` ends)
    assert err.decode().splitlines()[-1] == summary_of(mail)
    assert (follower.returncode, wrapper.returncode) == (3, 3)
    [ended] = rows(str(state_dir()), "ticker")
    assert (ended["id"], ended["status"], ended["exit_code"]) == (row["id"], "failed", 3)
    assert not (spool_dir() / str(row["id"])).exists()  # removed once the run was recorded


def test_without_a_live_run_follow_prints_the_latest_run_and_its_result_and_exits(write_job):
    apply(write_job, "once", "command: 'echo hello; echo world; exit 4'\ncron_mail: always\n")
    wrapper = as_cron("once")
    mail, _ = wrapper.communicate(timeout=60)
    started = time.monotonic()
    done = jobctl("logs", "once", "--follow")
    assert time.monotonic() - started < 30
    assert done.stdout == b"hello\nworld\n"
    assert done.stderr.decode().splitlines()[-1] == summary_of(mail)
    assert done.returncode == wrapper.returncode == 4
    ok = jobctl("logs", "once")  # without --follow: the output only, exit 0, as before
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"hello\nworld\n", b"")


def test_follow_goes_through_retries_to_the_runs_result(write_job, tmp_path):
    count = tmp_path / "count"
    apply(write_job, "flaky", f"command: 'echo try; sleep 1; [ -e {count} ] && exit 0; touch {count}; exit 1'\n"
                              "retries: {attempts: 1, delay: 1s}\ncron_mail: always\n")
    wrapper = as_cron("flaky")
    first = running_row("flaky")
    follower = follow("flaky")
    out, err = follower.communicate(timeout=60)
    mail, _ = wrapper.communicate(timeout=60)
    assert out == b"try\ntry\n"
    lines = err.decode().splitlines()
    assert lines[-1] == summary_of(mail) and "attempt 2 of 2" in lines[-1]
    assert any(line.startswith("jobctl: job flaky: attempt 2/2 after ") and "(attempt 1: exit status 1)" in line
               for line in lines[:-1]), lines
    assert follower.returncode == wrapper.returncode == 0
    attempts = rows(str(state_dir()), "flaky")
    assert [(r["id"], r["attempt"], r["status"]) for r in attempts] == [(first["id"], 1, "failed"),
                                                                       (attempts[1]["id"], 2, "succeeded")]


_MARKER = re.compile(rb"(?m)^\[\.\.\. (\d+) bytes of output dropped \(output_limit\) \.\.\.\]\n")


def _check_against(out: bytes, truth: bytes) -> int:
    """Every piece follow showed is the true output at the position its markers put it; returns the drops seen.

    A marker stands on a line of its own: where the output was cut mid-line,
    follow ended that line first, so a piece before a marker may carry one
    newline the job did not print.
    """
    parts = _MARKER.split(out)
    pieces = [(0, parts[0])] + [(int(n), data) for n, data in zip(parts[1::2], parts[2::2], strict=True)]
    pos = drops = 0
    for i, (n, data) in enumerate(pieces):
        drops += n > 0
        pos += n
        if truth[pos:pos + len(data)] != data:
            assert i + 1 < len(pieces) and data.endswith(b"\n") and truth[pos:pos + len(data) - 1] == data[:-1], pos
            data = data[:-1]
        pos += len(data)
    assert pos == len(truth)
    return drops


BIG = "seq 1 2000000"  # 14.9 MB of lines


def test_a_big_output_stays_bounded_in_the_spool_and_follow_shows_it_in_order(write_job):
    limit = 256 * 1024
    apply(write_job, "big", f"command: '{BIG}; sleep 2; echo END; sleep 1'\noutput_limit: 256KiB\n")
    truth = subprocess.run(["/bin/sh", "-c", BIG], capture_output=True, check=True).stdout + b"END\n"
    wrapper = as_cron("big")
    row = running_row("big")
    follower = follow("big")
    spool = spool_dir() / str(row["id"])
    largest = 0
    while wrapper.poll() is None:  # the spool's size, sampled for the whole run
        try:
            largest = max(largest, os.stat(spool).st_size)
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    out, err = follower.communicate(timeout=120)
    # the bound the docs give: the header, the head (half the limit) and a segment of twice that
    assert 0 < largest <= 24 + limit // 2 + limit
    assert follower.returncode == 0, err
    assert out.endswith(b"END\n") and out.startswith(truth[: limit // 2])
    _check_against(out, truth)
    assert not spool.exists()


def test_follow_attaching_late_shows_the_head_a_marker_and_the_newest_output(write_job, tmp_path):
    go = tmp_path / "go"
    apply(write_job, "late", f"command: '{BIG}; while [ ! -e {go} ]; do sleep 0.1; done; echo END'\n"
                             "output_limit: 256KiB\n")
    truth = subprocess.run(["/bin/sh", "-c", BIG], capture_output=True, check=True).stdout + b"END\n"
    wrapper = as_cron("late")
    row = running_row("late")
    spool = spool_dir() / str(row["id"])
    # all of seq's output is through the wrapper once the spool's tail is seq's last line
    wait_for(lambda: spool.exists() and spool.read_bytes().endswith(truth[:-4][-8:]), timeout=60)
    follower = follow("late")
    first = read_line(follower.stdout, 20)
    go.touch()
    out, err = follower.communicate(timeout=60)
    wrapper.communicate(timeout=60)
    out = first + out
    assert follower.returncode == 0, err
    assert _check_against(out, truth) >= 1  # the middle was dropped, and said so
    assert len(out) < 24 + 3 * 128 * 1024 + 200  # what the spool held, and the markers


def test_sigkill_of_the_wrapper_ends_follow_and_the_run_becomes_lost(write_job):
    apply(write_job, "victim", "command: 'echo started; sleep 60'\n")
    wrapper = as_cron("victim")
    row = running_row("victim")
    follower = follow("victim")
    assert read_line(follower.stdout, 20) == b"started\n"
    [row] = rows(str(state_dir()), "victim")  # the job runs: its process group is on the row now
    os.kill(row["wrapper_pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    out, err = follower.communicate(timeout=30)
    assert time.monotonic() - killed_at < 5  # polls every 0.2 s: ends promptly, never waits for the job
    assert follower.returncode == 125
    assert f"its wrapper (pid {row['wrapper_pid']}) is gone" in err.decode()
    # the job's processes live on (the lock's rule: no second run while they do); once they end, the run is lost
    os.killpg(row["pid"], signal.SIGKILL)
    wrapper.communicate(timeout=30)
    wait_for(lambda: not members(row["pid"]), timeout=10)
    assert (spool_dir() / str(row["id"])).exists()  # stale: nobody removed it
    again = jobctl("logs", "victim", "--follow")
    assert again.returncode == 125
    [lost] = rows(str(state_dir()), "victim")
    assert lost["status"] == "lost"
    # as `logs` prints it: the output the run log has (none: the wrapper never recorded it), and how it ended
    assert again.stdout == f"[... {lost['reason']} ...]\n".encode()
    assert again.stderr.decode().splitlines()[-1].startswith("jobctl: job victim: lost, no exit code, ")
    assert not (spool_dir() / str(row["id"])).exists()  # removed with the run marked lost


def test_ctrl_c_stops_following_not_the_run(write_job, tmp_path):
    flag = tmp_path / "finished"
    apply(write_job, "long", f"command: 'echo one; sleep 2; echo two; touch {flag}'\n")
    wrapper = as_cron("long")
    running_row("long")
    follower = follow("long")
    assert read_line(follower.stdout, 20) == b"one\n"
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=20)
    assert follower.returncode == 130
    assert "the run goes on" in err.decode()
    assert wrapper.wait(timeout=60) == 0 and flag.exists()
    assert rows(str(state_dir()), "long")[0]["status"] == "succeeded"


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a job as another user needs root")
def test_the_job_of_another_user_gets_no_descriptor_of_the_spool_and_cannot_open_it(tmp_path):
    state = str(state_dir())
    probe = ("echo first; sleep 1; ls -l /proc/self/fd/; "
             "cat \"$SPOOL\" >/dev/null 2>&1 && echo READ || echo no-read; "
             "echo x 2>/dev/null >>\"$SPOOL\" && echo WROTE || echo no-write")
    expr = "* * * * *"
    defn = job(name="other", command=probe, user="nobody", working_dir="/", cron=expr,
               fields=schedule.compile_fields(expr), env={"SPOOL": os.path.join(state, "spool", "1")})
    applied.write(state, defn)
    wrapper = subprocess.Popen(cmdline.wrapper_argv(state, "other"), cwd="/", env=CRON_ENV,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    row = running_row("other")
    assert row["id"] == 1
    follower = follow("other")
    out, err = follower.communicate(timeout=60)
    wrapper.communicate(timeout=60)
    assert follower.returncode == 0, err
    text = out.decode()
    assert text.startswith("first\n") and "no-read\nno-write\n" in text
    assert "/spool" not in text  # no descriptor of it among the job's


@pytest.mark.parametrize("limit", [0, 1, 100, 4096, 300_000])
def test_the_spool_reader_sees_the_written_output_in_order_at_every_limit(tmp_path, limit):
    """Output and SpoolReader in one process, reads interleaved with writes of random sizes (seeded)."""
    import random

    from jobctl.runner.process import SPOOL_HEADER, Output, SpoolReader, spool_segment

    rnd = random.Random(limit)
    truth = b"".join(b"%d\n" % i for i in range(400_000))
    out = Output(limit)
    path = str(tmp_path / "spool" / "7")
    out.spool_to(path)
    reader = None
    shown = bytearray()
    fed = 0
    bound = SPOOL_HEADER + limit // 2 + spool_segment(limit // 2)
    while fed < len(truth) or reader is None:
        n = rnd.choice((1, 7, 100, 5000, 70_000, 1 << 20))
        out.feed(truth[fed:fed + n])
        fed = min(fed + n, len(truth))
        assert os.stat(path).st_size <= bound
        if reader is None:
            reader = SpoolReader.open(path)
            assert reader is not None
        if rnd.random() < 0.3:
            continue  # let the writer run ahead: cuts drop what the reader has not read
        while True:
            dropped, data = reader.read(rnd.choice((10, 4096, 1 << 20)))
            if not dropped and not data:
                break
            assert truth[len(shown) + dropped:len(shown) + dropped + len(data)] == data
            shown += bytes(dropped) + data  # placeholders keep positions
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out.close_spool()
    assert not os.path.exists(path)
    while True:  # the open descriptor still reads what was written
        dropped, data = reader.read()
        if not dropped and not data:
            break
        assert truth[len(shown) + dropped:len(shown) + dropped + len(data)] == data
        shown += bytes(dropped) + data
    reader.close()
    assert len(shown) == len(truth)
    assert out.finish()[0] == truth[:limit // 2]
