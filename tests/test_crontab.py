"""The managed crontab block: byte-exact round trips, plan/apply/uninstall, real crontab(1)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jobctl import applied, paths
from jobctl.cli.app import app
from jobctl.install import crontab
from jobctl.jobs import loader
from jobctl.runner import cmdline

JOB = """\
schedule: "*/5 * * * *"
command: echo {name}
"""

cli = CliRunner()


def invoke(*args: str):
    result = cli.invoke(app, list(args))
    return result


@pytest.fixture
def jobs(write_job):
    write_job("alpha.yaml", JOB.format(name="alpha"))
    write_job("beta.yaml", JOB.format(name="beta"))
    return write_job


def crontab_path() -> Path:
    return Path(os.environ["JOBCTL_CRONTAB"])


def state_dir() -> str:
    return os.environ["JOBCTL_STATE_DIR"]


def block_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN jobctl"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# END jobctl"))
    return lines[start + 1:end]


# --- byte-exact round trips -----------------------------------------------

_line = st.one_of(
    st.just(""),
    st.from_regex(r"# [ -~\t]{0,30}", fullmatch=True),
    st.from_regex(r"[A-Z_]{1,8}=[ -~]{0,20}", fullmatch=True),
    st.from_regex(r"[0-9*/,-]{1,4} [0-9*]{1,2} \* \* \* [ -~%]{1,30}", fullmatch=True),
    st.from_regex(r"[ \t]{0,3}[ -~\t%]{0,40}[ \t]{0,3}", fullmatch=True),
)
_crontab_text = st.builds(
    lambda lines, final_newline: "\n".join(lines) + ("\n" if final_newline and lines else ""),
    st.lists(_line.filter(lambda s: "jobctl" not in s), max_size=12),
    st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(original=_crontab_text)
def test_apply_then_uninstall_restores_every_byte(jobs, original):
    path = crontab_path()
    path.write_bytes(original.encode())
    specs = loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])
    tgt = crontab.target()
    first = crontab.apply(specs, state_dir(), tgt)
    assert first.wrote
    after_apply = path.read_bytes()
    assert after_apply.startswith(original.encode()) or original.endswith("\n") is False
    assert len(block_lines(after_apply.decode())) == 2
    # apply twice: the second changes nothing and does not write
    inode, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    second = crontab.apply(specs, state_dir(), tgt)
    assert not second.wrote and not second.plan.pending
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, mtime)
    crontab.uninstall(state_dir(), tgt)
    assert path.read_bytes() == original.encode()


def test_block_stays_where_it_is_and_foreign_edits_survive(jobs):
    path = crontab_path()
    path.write_text("MAILTO=ops@example.com\n")
    assert invoke("apply").exit_code == 0
    text = path.read_text()
    path.write_text("# added above by hand\n" + text + "0 4 * * * /usr/local/bin/nightly %H\n")
    jobs("gamma.yaml", JOB.format(name="gamma"))
    assert invoke("apply").exit_code == 0
    text = path.read_text()
    assert text.startswith("# added above by hand\nMAILTO=ops@example.com\n# BEGIN jobctl")
    assert text.endswith("# END jobctl " + crontab.instance_id(state_dir()) + "\n0 4 * * * /usr/local/bin/nightly %H\n")
    assert len(block_lines(text)) == 3
    assert invoke("uninstall").exit_code == 0
    assert path.read_text() == "# added above by hand\nMAILTO=ops@example.com\n0 4 * * * /usr/local/bin/nightly %H\n"


def test_two_state_directories_own_separate_blocks(jobs, tmp_path, monkeypatch):
    path = crontab_path()
    assert invoke("apply").exit_code == 0
    mine = path.read_text()
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(tmp_path / "other-state"))
    assert invoke("apply").exit_code == 0
    both = path.read_text()
    assert both.startswith(mine) and both.count("# BEGIN jobctl") == 2
    assert invoke("uninstall").exit_code == 0
    assert path.read_text() == mine


def test_damaged_block_is_refused_untouched(jobs):
    path = crontab_path()
    assert invoke("apply").exit_code == 0
    text = path.read_text()
    damaged = "\n".join(line for line in text.splitlines() if not line.startswith("# END")) + "\n"
    path.write_text(damaged)
    result = invoke("apply")
    assert result.exit_code == 3
    assert "block" in result.output and "damaged" in result.output and "fix it by hand" in result.output
    assert path.read_text() == damaged


# --- what goes into a line ---------------------------------------------------

def test_entry_line_is_absolute_quoted_marked_and_secret_free(write_job, tmp_path, monkeypatch):
    odd_state = tmp_path / "state dir with 'quotes' and %percent"
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(odd_state))
    write_job("secret.yaml", 'schedule: "0 3 * * 1-5"\ncommand: "echo $TOKEN %d"\nenv: {TOKEN: hunter2}\n')
    assert invoke("apply").exit_code == 0, invoke("apply").output
    [line] = block_lines(crontab_path().read_text())
    assert "hunter2" not in line and "echo" not in line
    assert line.startswith("0 3 * * 1-5 /")
    assert line.endswith(" # jobctl:secret " + line.rsplit(" ", 1)[1]) and len(line.rsplit(" ", 1)[1]) == 12
    command = line.split(" ", 5)[5].rsplit(" # jobctl:", 1)[0]
    assert "%" not in command.replace("\\%", "")  # every % escaped for cron
    # The shell (after cron turns \% back into %) sees the real argv.
    argv = shlex.split(command.replace("\\%", "%"))
    assert argv[0] == cmdline.interpreter_argv()[0] and os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)
    assert argv[argv.index("--state-dir") + 1] == str(odd_state)


def test_disabled_jobs_are_not_installed_and_removed_jobs_go(jobs):
    assert invoke("apply").exit_code == 0
    jobs("beta.yaml", JOB.format(name="beta") + "enabled: false\n")
    os.unlink(Path(os.environ["JOBCTL_JOBS_DIR"]) / "alpha.yaml")
    # removing both installed jobs is more than half of them: refused without --prune-others (issue 11)
    refused = invoke("apply")
    assert refused.exit_code == 1 and "--prune-others" in refused.stderr and "nothing was changed" in refused.stderr
    assert "# BEGIN jobctl" in crontab_path().read_text()
    result = invoke("apply", "--prune-others")
    assert result.exit_code == 0, result.output
    assert "remove    alpha" in result.output and "remove    beta" in result.output
    # there was no crontab before the first apply: none is left (issue 11)
    assert not crontab_path().exists()
    assert os.listdir(os.path.join(state_dir(), "applied")) == []


def test_apply_writes_private_applied_definitions_and_a_backup(jobs):
    crontab_path().write_text("# before\n")
    result = invoke("apply")
    assert result.exit_code == 0
    applied_dir = Path(state_dir()) / "applied"
    assert sorted(os.listdir(applied_dir)) == ["alpha.json", "beta.json"]
    assert all((applied_dir / f).stat().st_mode & 0o777 == 0o600 for f in os.listdir(applied_dir))
    backups = list((Path(state_dir()) / "backups").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == "# before\n"
    assert str(backups[0]) in result.output.replace("\n", "")


# --- plan ---------------------------------------------------------------------

def test_plan_reports_each_job_and_check_exit_codes(jobs):
    result = invoke("plan", "--check")
    assert result.exit_code == 1
    assert "add       alpha" in result.output and "add       beta" in result.output
    assert "+# BEGIN jobctl" in result.output  # the unified diff
    assert not crontab_path().exists()  # plan changes nothing
    assert invoke("apply").exit_code == 0
    result = invoke("plan", "--check")
    assert result.exit_code == 0 and "in sync" in result.output
    jobs("alpha.yaml", JOB.format(name="alpha") + "timeout: 5m\n")
    result = invoke("plan", "--check")
    assert result.exit_code == 1 and "change    alpha (timeout)" in result.output
    assert "unchanged beta" in result.output


def test_dry_run_changes_nothing(jobs):
    result = invoke("apply", "--dry-run")
    assert result.exit_code == 0 and "add       alpha" in result.output
    assert not crontab_path().exists()
    assert not (Path(state_dir()) / "applied").exists()


# --- bad input changes nothing -------------------------------------------------

def test_invalid_job_file_changes_nothing_anywhere(jobs):
    assert invoke("apply").exit_code == 0
    before = crontab_path().read_bytes()
    applied_before = {f: (Path(state_dir()) / "applied" / f).read_bytes()
                      for f in os.listdir(Path(state_dir()) / "applied")}
    jobs("alpha.yaml", JOB.format(name="alpha") + "timeout: 5 minutes\n")
    jobs("gamma.yaml", JOB.format(name="gamma"))
    result = invoke("apply")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].endswith("alpha.yaml:3:10: job alpha: timeout: '5 minutes' is not a duration; "
                             "write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)")
    assert "nothing was run or changed" in lines[-1]
    assert "Traceback" not in result.output
    assert crontab_path().read_bytes() == before
    assert {f: (Path(state_dir()) / "applied" / f).read_bytes()
            for f in os.listdir(Path(state_dir()) / "applied")} == applied_before


def test_user_key_needs_the_system_target(write_job):
    write_job("other.yaml", JOB.format(name="other") + "user: nobody\n")
    result = invoke("apply")
    assert result.exit_code == 1
    assert "other.yaml:1:1: job other: user 'nobody' needs the system crontab" in result.output
    assert not crontab_path().exists()


def test_missing_crontab_command_is_an_environment_error(jobs, monkeypatch, tmp_path):
    monkeypatch.delenv("JOBCTL_CRONTAB")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = invoke("apply")
    assert result.exit_code == 3
    assert result.stderr.strip() == ("jobctl: no crontab command on this host; install cron (apt-get install cron) "
                                     "or set JOBCTL_CRONTAB to manage a crontab file")
    assert not (Path(state_dir()) / "applied").exists()


def test_unwritable_target_is_a_clear_error(jobs, monkeypatch):
    monkeypatch.setenv("JOBCTL_CRONTAB", "/proc/jobctl-test-crontab")
    result = invoke("apply")
    assert result.exit_code == 3
    assert result.stderr.startswith("jobctl: cannot write /proc/jobctl-test-crontab:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_system_format_has_a_user_field_and_cron_d_file_rules(write_job, tmp_path, monkeypatch):
    target = tmp_path / "cron.d" / "jobctl"
    target.parent.mkdir()
    monkeypatch.setenv("JOBCTL_CRONTAB", str(target))
    write_job("web.yaml", JOB.format(name="web") + "user: nobody\n")
    result = invoke("apply", "--system")
    assert result.exit_code == 0, result.output
    text = target.read_text()
    [line] = block_lines(text)
    assert line.split()[5] == "root"  # the wrapper runs as root and drops to the job's user
    assert target.stat().st_mode & 0o7777 == 0o644 and text.endswith("\n")


# --- concurrency -----------------------------------------------------------------

def test_twenty_concurrent_applies_leave_one_correct_block(jobs):
    crontab_path().write_text("MAILTO=root\n# keep me\n")
    jobctl = os.path.join(os.path.dirname(sys.executable), "jobctl")
    procs = [subprocess.Popen([jobctl, "apply"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(20)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    text = crontab_path().read_text()
    assert text.startswith("MAILTO=root\n# keep me\n# BEGIN jobctl")
    assert text.count("# BEGIN jobctl") == 1 and len(block_lines(text)) == 2
    # one apply wrote, the others found it in sync
    assert len(os.listdir(Path(state_dir()) / "backups")) == 1


def test_crontab_changed_between_read_and_write_is_detected(jobs):
    crontab_path().write_text("# v1\n")

    class Racing(crontab.FileCrontab):
        reads = 0

        def read(self) -> str:
            text = super().read()
            Racing.reads += 1
            if Racing.reads == 1:  # someone edits right after our first read
                Path(self.path).write_text("# v2 by someone else\n")
            return text

    specs = loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])
    with pytest.raises(crontab.CrontabConflict, match="changed while jobctl was applying; nothing was written"):
        crontab.apply(specs, state_dir(), Racing(str(crontab_path()), system=False))
    assert crontab_path().read_text() == "# v2 by someone else\n"


# --- the lines run the way cron runs them ----------------------------------------

def test_installed_lines_run_under_crons_bare_environment(jobs):
    assert invoke("apply").exit_code == 0
    for line in block_lines(crontab_path().read_text()):
        command = line.split(" ", 5)[5]
        # cron: split off the schedule, turn \% into %, run with sh -c from HOME in a bare environment
        command = command.replace("\\%", "%")
        result = subprocess.run(
            ["env", "-i", "HOME=/root", "LOGNAME=root", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "sh", "-c", command],
            cwd="/", capture_output=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""  # nothing for cron to mail
    db = sqlite3.connect(os.path.join(state_dir(), "runs.db"))
    got = db.execute("SELECT job, status, trigger FROM runs ORDER BY job").fetchall()
    assert got == [("alpha", "succeeded", "schedule"), ("beta", "succeeded", "schedule")]


# --- the real crontab(1) ------------------------------------------------------------

def test_real_crontab_round_trip(jobs, real_crontab):
    original = b"MAILTO=\"\"\n# a comment  with  spacing\t\n\n0 * * * * echo 100\\% > /dev/null\n"
    subprocess.run(["crontab", "-"], input=original, check=True)
    assert invoke("apply").exit_code == 0
    listed = subprocess.run(["crontab", "-l"], capture_output=True, check=True).stdout.decode()
    assert listed.startswith(original.decode()) and len(block_lines(listed)) == 2
    assert invoke("plan", "--check").exit_code == 0
    status = invoke("status", "--json")
    assert status.exit_code == 0
    assert invoke("uninstall").exit_code == 0
    assert subprocess.run(["crontab", "-l"], capture_output=True, check=True).stdout == original


# --- issue 10: every byte outside the block, whatever was edited around it ---------------------

def _insert_lines(text: str, inserts: list[tuple[int, str]]) -> tuple[str, list[int]]:
    """``text`` with each line inserted at a line boundary; also the positions they went to."""
    positions = []
    for seed, line in inserts:
        boundaries = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        pos = boundaries[seed % len(boundaries)]
        text = text[:pos] + line + "\n" + text[pos:]
        positions = [p + len(line) + 1 if p >= pos else p for p in positions] + [pos]
    return text, positions


_edits = st.lists(st.tuples(st.integers(0, 1000), _line.filter(lambda s: "jobctl" not in s)), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(original=_crontab_text, above=_edits, below=_edits, unterminated_tail=st.sampled_from(["", "0 1 * * * x"]),
       reapply=st.booleans())
def test_uninstall_never_changes_a_byte_outside_the_block(jobs, original, above, below, unterminated_tail, reapply):
    """The rule: uninstall returns the text around the block byte for byte, with one exception.

    When the crontab had no final newline, apply ended its last line with one
    before the block.  Uninstall takes that newline away again only while it
    is still the last byte before the block, nothing was added after it, and
    no text follows the block -- and it keeps it whenever it cannot be sure
    (any edit above the block), since a final newline is what cron wants.
    """
    path = crontab_path()
    path.write_bytes(original.encode())
    assert invoke("apply").exit_code == 0
    text = path.read_text()
    begin = text.index("# BEGIN jobctl")
    end = text.index("\n", text.index("# END jobctl")) + 1
    outside_above, block, outside_below = text[:begin], text[begin:end], text[end:]
    ours = len(original) if original and not original.endswith("\n") else None  # where apply's newline is
    assert outside_above == original + ("\n" if ours is not None else "") and outside_below == ""
    outside_above, positions = _insert_lines(outside_above, above)
    if ours is not None:
        ours += sum(len(line) + 1 for pos, (_, line) in zip(positions, above, strict=True) if pos <= ours)
    outside_below, _ = _insert_lines(outside_below, below)
    outside_below += unterminated_tail
    path.write_text(outside_above + block + outside_below)
    if reapply:  # a changed block in between: apply must carry the same text around it
        jobs("gamma.yaml", JOB.format(name="gamma"))
        assert invoke("apply").exit_code == 0
        jobs_dir = Path(os.environ["JOBCTL_JOBS_DIR"])
        os.unlink(jobs_dir / "gamma.yaml")
    assert invoke("uninstall").exit_code == 0
    result = path.read_bytes().decode()
    allowed = {outside_above + outside_below}
    if ours is not None and ours == len(outside_above) - 1 and not outside_below:
        allowed.add(outside_above[:-1])  # apply's own newline, still last before the block: it may go
    assert result in allowed
    if not above and not below and not unterminated_tail:
        assert result == original


def test_a_line_added_just_above_the_block_keeps_its_newline(jobs):
    path = crontab_path()
    path.write_bytes(b"MAILTO=root")  # no final newline: apply adds one
    assert invoke("apply").exit_code == 0
    text = path.read_text()
    assert text.startswith("MAILTO=root\n# BEGIN jobctl ") and " eol-added=" in text.splitlines()[1]
    path.write_text(text.replace("# BEGIN", "0 5 * * * /usr/local/bin/added-later\n# BEGIN", 1))
    assert invoke("uninstall").exit_code == 0
    # the added line keeps its newline: without it cron would drop it
    assert path.read_bytes() == b"MAILTO=root\n0 5 * * * /usr/local/bin/added-later\n"


def test_an_unchanged_crontab_without_final_newline_comes_back_exactly(jobs):
    path = crontab_path()
    path.write_bytes(b"# one\nMAILTO=root")
    assert invoke("apply").exit_code == 0
    jobs("gamma.yaml", JOB.format(name="gamma"))
    assert invoke("apply").exit_code == 0  # a second apply keeps recognising its newline
    assert invoke("plan", "--check").exit_code == 0
    assert invoke("uninstall").exit_code == 0
    assert path.read_bytes() == b"# one\nMAILTO=root"


def _lookalikes(instance: str) -> str:
    """Foreign lines that start like jobctl's markers and quote its block id, but are not markers."""
    return (f"# END jobctl {instance} -- copied from the old server\n"
            f"# BEGIN jobctl {instance}\n"
            f"# BEGIN jobctl {instance} state=/elsewhere -- managed by jobctl apply; edit the job files, "
            "not this block (a copy)\n"
            f"# END jobctl {instance} \n"
            f"#  END jobctl {instance}\n"
            f"0 3 * * * /usr/bin/true \r# END jobctl {instance}\n"  # one line to cron; two to str.splitlines
            f"# END jobctl {instance}x\n")


def test_only_exact_marker_lines_are_markers(jobs):
    path = crontab_path()
    instance = crontab.instance_id(state_dir())
    original = "MAILTO=root\n" + _lookalikes(instance)
    path.write_bytes(original.encode())
    result = invoke("apply")
    assert result.exit_code == 0, result.output
    text = path.read_bytes().decode()
    assert text.startswith(original) and len(block_lines(text[len(original):])) == 2
    assert invoke("plan", "--check").exit_code == 0
    below = "# after\n" + _lookalikes(instance)
    path.write_bytes((text + below).encode())
    assert invoke("apply").exit_code == 0 and path.read_bytes() == (text + below).encode()
    assert invoke("uninstall").exit_code == 0
    assert path.read_bytes() == (original + below).encode()


# --- issue 10: the real crontab(1), for a test user -----------------------------------------------

@pytest.fixture
def user_crontab(tmp_path, monkeypatch):
    """A fresh Unix user whose real crontab (crontab(1) -u USER) jobctl manages; removed afterwards.

    jobctl runs as root here, with a ``crontab`` first on PATH that adds
    ``-u USER``: the real command, the real spool, and root's own crontab
    untouched.
    """
    real = shutil.which("crontab")
    if os.geteuid() != 0 or not real or not shutil.which("useradd"):
        pytest.skip("needs root, crontab(1) and useradd")
    user = f"jobctl-t{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    try:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "crontab").write_text(f'#!/bin/sh\nexec {real} -u {user} "$@"\n')
        (bindir / "crontab").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.delenv("JOBCTL_CRONTAB")

        def listed() -> bytes:
            proc = subprocess.run([real, "-u", user, "-l"], capture_output=True)
            return proc.stdout if proc.returncode == 0 else b""

        def install(text: bytes) -> None:
            subprocess.run([real, "-u", user, "-"], input=text, check=True, capture_output=True)

        yield listed, install
    finally:
        subprocess.run([real, "-u", user, "-r"], capture_output=True)
        subprocess.run(["userdel", user], capture_output=True)


def test_real_crontab_keeps_lookalike_markers_and_every_byte(jobs, user_crontab):
    listed, install = user_crontab
    original = ("MAILTO=\"\"\n" + _lookalikes(crontab.instance_id(state_dir())) + "0 * * * * echo 100\\% > /dev/null\n"
                ).encode()
    install(original)
    original = listed()  # as crontab(1) keeps it (it spells a carriage return \\r)
    result = invoke("apply")
    assert result.exit_code == 0, result.output
    text = listed().decode()
    assert text.startswith(original.decode()) and len(block_lines(text[len(original):])) == 2
    assert invoke("plan", "--check").exit_code == 0
    install(text.encode() + b"# added below by hand\n")
    assert invoke("uninstall").exit_code == 0
    assert listed() == original + b"# added below by hand\n"


# --- issue 10: a control character in the state directory never reaches a crontab ---------------

STATE_COMMANDS = [["apply"], ["apply", "--dry-run"], ["plan"], ["uninstall"], ["status"], ["history"],
                  ["logs", "alpha"], ["run", "alpha"], ["pause", "alpha"], ["metrics"], ["prune"], ["doctor"],
                  ["export", "systemd"], ["export", "kubernetes"]]


@pytest.mark.parametrize("command", STATE_COMMANDS, ids=" ".join)
def test_a_state_directory_with_a_control_character_is_refused(jobs, tmp_path, monkeypatch, command):
    bad = tmp_path / "state\n@reboot root touch pwned #"
    monkeypatch.setenv("JOBCTL_STATE_DIR", str(bad))
    crontab_path().write_text("# mine\n")
    before = sorted(os.listdir(tmp_path))
    result = invoke(*command)
    # `run` exits 125 when jobctl fails before the job could run (EXIT STATUS), the others 3
    assert result.exit_code == (125 if command[0] == "run" else 3), (result.output, result.exception)
    assert result.stdout == ""
    assert result.stderr == (f"jobctl: JOBCTL_STATE_DIR {str(bad)!r} contains a control character (U+000A at "
                             f"character {len(str(tmp_path)) + 7}); a state directory is written into crontab "
                             "lines, so jobctl refuses it: use a path without control characters\n")
    assert sorted(os.listdir(tmp_path)) == before  # nothing created
    assert crontab_path().read_text() == "# mine\n"


def test_a_tab_or_escape_in_the_state_directory_is_refused_too(jobs, tmp_path, monkeypatch):
    for char in ("\t", "\x1b", "\x7f", "\x85"):
        monkeypatch.setenv("JOBCTL_STATE_DIR", str(tmp_path / f"state{char}x"))
        result = invoke("apply")
        assert result.exit_code == 3 and "contains a control character" in result.stderr
    assert not crontab_path().exists()


# --- issue 11: an operator's first day ----------------------------------------------------------

def _crontab_l(user: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("crontab", path="/usr/bin:/bin") or "crontab", "-u", user, "-l"],
                          capture_output=True, text=True)


def _fixture_user() -> str:
    return f"jobctl-t{os.getpid()}"


def test_a_hand_edited_line_shows_edited_in_status_plan_and_doctor(jobs, user_crontab):
    """Item 4: the installed line is compared too, with the real crontab(1)."""
    listed, install = user_crontab
    assert invoke("apply").exit_code == 0
    text = listed().decode()
    alpha = next(line for line in text.splitlines() if "# jobctl:alpha " in line)
    install(text.replace(alpha, alpha.replace("*/5 * * * *", "*/7 * * * *", 1)).encode())
    rows = {r["name"]: r for r in json.loads(invoke("status", "--json").stdout)}
    assert (rows["alpha"]["state"], rows["beta"]["state"]) == ("edited", "ok")
    assert "edited" in invoke("status").stdout
    assert "  change    alpha (crontab line edited)" in invoke("plan").stdout.splitlines()
    doctor = invoke("doctor").stdout
    assert "line of alpha edited in the crontab" in doctor and "jobctl apply (it writes the edited lines back" in doctor
    assert invoke("apply").exit_code == 0
    assert listed().decode() == text
    assert {r["state"] for r in json.loads(invoke("status", "--json").stdout)} == {"ok"}


def test_no_crontab_before_apply_means_none_after_uninstall(jobs, user_crontab):
    """Item 5: crontab -r, not an empty crontab, when the user had none (real crontab(1), a test user)."""
    listed, install = user_crontab
    user = _fixture_user()
    before = _crontab_l(user)
    assert before.returncode == 1 and "no crontab for" in before.stderr
    assert invoke("apply").exit_code == 0
    assert " crontab-created state=" in listed().decode().splitlines()[0]
    result = invoke("uninstall")
    assert result.exit_code == 0, result.output
    assert "there was none before jobctl, so it is removed (crontab -r)" in result.stdout
    after = _crontab_l(user)
    assert (after.returncode, after.stdout) == (1, "") and "no crontab for" in after.stderr
    # a line the user added meanwhile is theirs: the crontab stays, with exactly that line
    assert invoke("apply").exit_code == 0
    install(listed() + b"0 4 * * * /usr/local/bin/mine\n")
    assert invoke("uninstall").exit_code == 0
    assert listed() == b"0 4 * * * /usr/local/bin/mine\n"
    # an empty crontab that existed before stays an (existing) empty crontab: byte for byte what it was
    install(b"")
    assert invoke("apply").exit_code == 0 and invoke("uninstall").exit_code == 0
    kept = _crontab_l(user)
    assert (kept.returncode, kept.stdout) == (0, "")


def test_apply_removing_every_job_removes_a_crontab_it_created(jobs, user_crontab):
    _, _ = user_crontab
    assert invoke("apply").exit_code == 0
    os.unlink(Path(os.environ["JOBCTL_JOBS_DIR"]) / "alpha.yaml")
    os.unlink(Path(os.environ["JOBCTL_JOBS_DIR"]) / "beta.yaml")
    assert invoke("apply", "--prune-others").exit_code == 0
    assert _crontab_l(_fixture_user()).returncode == 1


INHERITED = '''\
# my old crontab
MAILTO=""
SHELL=/bin/bash
CRON_TZ=Europe/Paris
PATH=/usr/bin:/bin
 GREETING = "hello world"
0 * * * * echo not a setting
'''


def test_plan_and_doctor_say_once_what_each_setting_above_the_block_means(jobs):
    """Item 8."""
    crontab_path().write_text(INHERITED)
    out = invoke("plan").stdout
    assert out.count("settings above jobctl's block") == 1
    lines = [line for line in out.splitlines() if line.startswith("  line ")]
    assert [line.split(":")[0] for line in lines] == ["  line 2", "  line 3", "  line 4", "  line 5", "  line 6"]
    assert lines[0].startswith('  line 2: MAILTO="": cron mails nothing, so the failure summary')
    assert "SHELL=/bin/bash: cron starts jobctl's lines with it; jobs run with their own shell: key" in lines[1]
    assert "CRON_TZ=Europe/Paris: ignored by Debian's cron" in lines[2] and "timezone: Europe/Paris" in lines[2]
    assert "PATH=/usr/bin:/bin: no effect on jobctl's lines" in lines[3]
    assert "GREETING=hello world: cron sets it for jobctl's lines, but jobs do not see it" in lines[4]
    assert invoke("apply").exit_code == 0
    doctor = invoke("doctor")
    assert doctor.exit_code == 1
    assert '\nnote  crontab line 2: MAILTO="": cron mails nothing' in doctor.stdout
    assert "\nFAIL  crontab line 4: CRON_TZ=Europe/Paris: ignored by Debian's cron" in doctor.stdout
    assert "fix: remove the CRON_TZ= line (Debian's cron ignores it) and set timezone:" in doctor.stdout
    # below the block they do not reach jobctl's lines: not mentioned
    crontab_path().write_text(crontab_path().read_text().replace(INHERITED, "") + "MAILTO=\"\"\n")
    assert "settings above" not in invoke("plan").stdout


@pytest.mark.parametrize(("line", "setting"), [
    ('MAILTO=""', ("MAILTO", "")),
    ("MAILTO=ops@example.com", ("MAILTO", "ops@example.com")),
    ("  SHELL = /bin/bash  ", ("SHELL", "/bin/bash")),
    ("'A B'=c", ("A B", "c")),
    ("X='quoted value'", ("X", "quoted value")),
    ("0 * * * * FOO=bar cmd", None),
    ("@daily A=b", None),
    ("# MAILTO=x", None),
    ("", None),
    ("SHELL /bin/sh", None),
])
def test_settings_are_read_as_debians_cron_reads_them(line, setting):
    assert crontab.cron_env(line) == setting


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t=\"'#ABx0*/@-", max_size=16))
def test_setting_parser_agrees_with_the_debian_oracle(line):
    import cron_oracle

    status, text = cron_oracle._load_env(cron_oracle._Stream(line.encode() + b"\n"))
    ours = crontab.cron_env(line)
    if status == cron_oracle.TRUE and not text.startswith(b"="):
        assert ours is not None and f"{ours[0]}={ours[1]}".encode() == text
    elif status != cron_oracle.TRUE:
        assert ours is None


def _copy_jobs(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_apply_refuses_to_replace_jobs_applied_from_another_directory(jobs, tmp_path, monkeypatch):
    """Item 9: a stray ./jobs.d (jobctl init) must not replace the block."""
    home = Path(os.environ["JOBCTL_JOBS_DIR"])
    jobs("gamma.yaml", JOB.format(name="gamma"))
    assert invoke("apply").exit_code == 0
    before = crontab_path().read_bytes()
    assert applied.read(state_dir(), "alpha")["jobs_dir"] == str(home)
    stray = tmp_path / "elsewhere" / "jobs.d"
    stray.mkdir(parents=True)
    (stray / "example.yaml").write_text(JOB.format(name="example"))
    monkeypatch.delenv("JOBCTL_JOBS_DIR")
    monkeypatch.chdir(stray.parent)
    planned = invoke("plan")
    lines = planned.stdout.splitlines()
    assert lines[0] == f"jobs directory: {stray} (./jobs.d of the current directory; 1 job)"
    assert f"  remove    alpha: last applied from {home}" in lines
    assert any(line.startswith("apply will refuse: apply would remove alpha, beta, gamma, last applied from")
               for line in lines)
    result = invoke("apply")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == lines[0]
    assert result.stderr == (f"jobctl: apply would remove alpha, beta, gamma, last applied from {home}; this apply "
                             f"reads {stray}. Run it with --jobs-dir {home} (or from that directory), or pass "
                             "--prune-others to remove them; nothing was changed\n")
    assert crontab_path().read_bytes() == before
    assert sorted(applied.names(state_dir())) == ["alpha", "beta", "gamma"]
    # status, run and logs still work from here, from the applied definitions
    rows = {r["name"]: r for r in json.loads(invoke("status", "--json").stdout)}
    assert rows["alpha"]["state"] == "ok" and rows["alpha"]["jobs_dir"] == str(home)
    assert rows["example"]["state"] == "not applied"
    ran = invoke("run", "alpha")
    assert ran.exit_code == 0 and ran.stdout == "alpha\n"
    assert f"has no job alpha; running the applied definition of alpha (applied from {home})" in ran.stderr
    assert invoke("logs", "alpha").stdout == "alpha\n"
    # asked for explicitly, it goes
    assert invoke("apply", "--prune-others").exit_code == 0
    assert sorted(applied.names(state_dir())) == ["example"]


def test_status_and_run_work_where_no_jobs_directory_is(jobs, tmp_path, monkeypatch):
    """Item 9: from a directory without job files, status and run use the applied definitions."""
    assert invoke("apply").exit_code == 0
    monkeypatch.setenv("JOBCTL_JOBS_DIR", str(tmp_path / "nowhere"))
    status = invoke("status", "--json")
    assert status.exit_code == 0, status.output
    assert [(r["name"], r["state"]) for r in json.loads(status.stdout)] == [("alpha", "ok"), ("beta", "ok")]
    assert "does not exist" in status.stderr and "showing the applied jobs" in status.stderr
    ran = invoke("run", "beta")
    assert ran.exit_code == 0 and ran.stdout == "beta\n" and "cannot be read; running the applied" in ran.stderr
    unknown = invoke("run", "alpah")
    assert unknown.exit_code == 125 and "does not exist" in unknown.stderr


def test_apply_refuses_to_remove_more_than_half_of_the_installed_jobs(jobs):
    for name in ("gamma", "delta"):
        jobs(f"{name}.yaml", JOB.format(name=name))
    assert invoke("apply").exit_code == 0
    directory = Path(os.environ["JOBCTL_JOBS_DIR"])
    for name in ("alpha", "beta", "gamma"):
        os.unlink(directory / f"{name}.yaml")
    result = invoke("apply")
    assert result.exit_code == 1
    assert "apply would remove 3 of the 4 installed jobs (alpha, beta, gamma)" in result.stderr
    jobs("gamma.yaml", JOB.format(name="gamma"))
    result = invoke("apply")  # 2 of 4 is not more than half
    assert result.exit_code == 0, result.output
    assert sorted(applied.names(state_dir())) == ["delta", "gamma"]


def test_the_jobs_directory_is_recorded_outside_the_definition_hash(jobs, tmp_path, monkeypatch):
    assert invoke("apply").exit_code == 0
    before = crontab_path().read_bytes()
    applied_at = os.stat(paths.applied_file(state_dir(), "alpha")).st_mtime_ns
    copy = _copy_jobs(Path(os.environ["JOBCTL_JOBS_DIR"]), tmp_path / "checkout" / "jobs.d")
    result = invoke("apply", "--jobs-dir", str(copy))
    assert result.exit_code == 0, result.output
    assert f"{crontab_path()} already in sync" in result.stdout  # the same lines: nothing written
    assert crontab_path().read_bytes() == before
    assert applied.read(state_dir(), "alpha")["jobs_dir"] == str(copy)
    # where a job came from is not a new definition: missed-run detection keeps counting from the apply
    assert os.stat(paths.applied_file(state_dir(), "alpha")).st_mtime_ns == applied_at


def test_a_copied_retargeted_or_foreign_line_in_the_block_is_never_ok(write_job, isolated_env) -> None:
    """From the attack review: a duplicated line ran the job twice while status said ok."""
    import json

    from typer.testing import CliRunner

    from jobctl.cli.app import app

    cli = CliRunner()
    for name in ("a", "b", "c"):
        write_job(f"{name}.yaml", 'schedule: "0 3 * * *"\ncommand: "true"\n')
    assert cli.invoke(app, ["apply"]).exit_code == 0
    tab = isolated_env / "crontab"
    original = tab.read_text()

    def states() -> dict[str, str]:
        result = cli.invoke(app, ["status", "--json"])
        return {r["name"]: r["state"] for r in json.loads(result.stdout)}

    line_b = next(line for line in original.splitlines() if "# jobctl:b " in line)
    tab.write_text(original.replace(line_b, line_b + "\n" + line_b))  # b twice: cron runs it twice
    assert states() == {"a": "ok", "b": "edited", "c": "ok"}
    plan = cli.invoke(app, ["plan"])
    assert "crontab line edited" in plan.stdout and plan.exit_code == 0
    line_a = next(line for line in original.splitlines() if "# jobctl:a " in line)
    retargeted = line_a.replace(" a # jobctl:a ", " b # jobctl:a ")
    assert retargeted != line_a
    tab.write_text(original.replace(line_a, retargeted))  # a's line runs b: a never runs, b runs twice
    assert states() == {"a": "edited", "b": "edited", "c": "ok"}
    tab.write_text(original.replace(line_b, line_b + "\n15 * * * * echo my-own-line"))
    assert "block holds 1 line jobctl did not write" in cli.invoke(app, ["status"]).stderr
    plan = cli.invoke(app, ["plan"])
    assert "(1 line in the block jobctl did not write)" in plan.stdout
    assert cli.invoke(app, ["apply"]).exit_code == 0
    assert tab.read_text() == original
