"""A state directory edited by hand, damaged on disk or written by an older release: one line, never a traceback.

The state is set up by the real ``jobctl apply``; each applied definition is
then edited as an operator (or a bad disk) would, and the wrapper is started
exactly as cron starts it: the command of the job's own crontab line.  What
counts is what happened: the exit code the man page documents, one line naming
the file and the key on stderr and in jobctl-errors.log, and that the job's
command did not run (its marker file is absent).  Bad job files are checked
through ``jobctl validate`` and ``jobctl apply`` as a process, with the line
and column found in the text the test wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from jobctl import applied
from jobctl.errors import ExitCode
from jobctl.jobs import spec
from jobctl.runner.cmdline import EX_JOBCTL

from runhelp import crontab_command, rows, wait_for

WriteJob = Callable[[str, "str | bytes"], Path]
#: the wrapper's "jobctl failed before the job could run" (man page, EXIT STATUS; errors.ExitCode)
RUN_FAILED = int(ExitCode.RUN_FAILED)


def jobctl(*args: str) -> subprocess.CompletedProcess:
    """The real command line, in the test's isolated environment (conftest)."""
    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def state_dir() -> Path:
    return Path(os.environ["JOBCTL_STATE_DIR"])


def applied_file(name: str) -> Path:
    return state_dir() / "applied" / f"{name}.json"



def as_cron(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, timeout=120, cwd="/", input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def errors_log() -> str:
    path = state_dir() / "jobctl-errors.log"
    return path.read_text() if path.exists() else ""


def edit(name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = applied_file(name)
    defn = json.loads(path.read_text())
    change(defn)
    path.write_text(json.dumps(defn))


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


#: setter's value that removes the key
DELETE = _Delete()


def setter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of one key (``a.b``: key b of the mapping at a); DELETE removes it."""
    def change(defn: dict[str, Any]) -> None:
        target, _, last = key.rpartition(".")
        holder = defn[target] if target else defn
        if value is DELETE:
            del holder[last]
        else:
            holder[last] = value
    return change


@pytest.fixture
def tz_job(write_job: WriteJob, tmp_path: Path) -> Path:
    """A time-zone job due every minute, applied; returns the file its command creates when it runs."""
    marker = tmp_path / "ran"
    write_job("tz.yaml", f"schedule: '* * * * *'\ntimezone: UTC\ncommand: touch {marker}\n")
    done = jobctl("apply")
    assert done.returncode == 0, done.stderr
    return marker


def assert_one_clean_line(done: subprocess.CompletedProcess, *parts: str) -> str:
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr, stderr
    assert done.returncode == RUN_FAILED == EX_JOBCTL, (done.returncode, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert lines[0] in errors_log()  # logged as well as printed, for cron's unread mail
    return lines[0]


def test_the_applied_job_runs_as_cron_starts_it(tz_job: Path) -> None:
    """The control: unedited, the crontab line runs the command."""
    done = as_cron(crontab_command("tz"))
    assert (done.returncode, done.stderr) == (0, b"")
    assert tz_job.exists()


# key (a.b: b inside a), value written into the applied file, the key the message names
MALFORMED = [
    # the time zone and its precomputed offsets: the wake-up's gate reads them first
    ("timezone", 5, "timezone"),
    ("timezone", "", "timezone"),
    ("timezone", ["UTC"], "timezone"),
    ("tz_offsets", "x", "tz_offsets"),
    ("tz_offsets", {"0": 0}, "tz_offsets"),
    ("tz_offsets", [[1, "a"]], "tz_offsets[0]"),
    ("tz_offsets", [["a", 0]], "tz_offsets[0]"),
    ("tz_offsets", [[0, 0, 0]], "tz_offsets[0]"),
    ("tz_offsets", [[0, 10**30]], "tz_offsets[0]"),
    ("tz_offsets", [[2_000_000_000, 0], [1, 0]], "tz_offsets[1]"),
    ("tz_offsets", [[0, True]], "tz_offsets[0]"),
    ("fields", [1], "fields"),
    ("fields.fixed", DELETE, "fields.fixed"),
    ("fields.minute", "*", "fields.minute"),
    ("fields.hour", [1.5], "fields.hour"),
    # what runs, as whom, how
    ("user", 0, "user"),
    ("user", "", "user"),
    ("user", ["root"], "user"),
    ("command", [1, 2], "command[0]"),
    ("command", ["touch", None], "command[1]"),
    ("command", ["touch", ["x"]], "command[1]"),
    ("command", [], "command"),
    ("command", "", "command"),
    ("command", DELETE, "command"),
    ("command", "touch /x\u0000y", "command"),
    ("shell", None, "shell"),
    ("working_dir", 5, "working_dir"),
    ("env", {"A": 1}, "env.A"),
    ("env", {"A=B": "x"}, "env"),
    ("env", None, "env"),
    ("concurrency", "sometimes", "concurrency"),
    ("cron_mail", 5, "cron_mail"),
    ("enabled", "yes", "enabled"),
    # numbers: the type (their values are bounded by the wrapper, not refused)
    ("timeout", "1h", "timeout"),
    ("jitter", True, "jitter"),
    ("kill_grace", [10], "kill_grace"),
    ("retries", "3", "retries"),
    ("retries.attempts", "3", "retries.attempts"),
    ("history", [], "history"),
    ("history.keep", {}, "history.keep"),
    ("notify", "yes", "notify"),
    ("notify", {"email": "a@example.org"}, "notify.email"),
    ("notify", {"command": 5}, "notify.command"),
    ("notify", {"when": "failure", "ping": "https://x.example"}, "notify.when"),
    ("tags", "a,b", "tags"),
    ("source", None, "source"),
]


@pytest.mark.parametrize(("key", "value", "named"), MALFORMED, ids=[f"{k}={v!r}"[:40] for k, v, _ in MALFORMED])
def test_a_malformed_key_stops_the_wake_up_with_one_line(tz_job: Path, key: str, value: Any, named: str) -> None:
    edit("tz", setter(key, value))
    done = as_cron(crontab_command("tz"))
    assert_one_clean_line(done, f"job tz: {applied_file('tz')}: key {named}: expected ", "; re-run jobctl apply")
    assert not tz_job.exists()  # the command never ran (as root or anyone)
    assert rows(str(state_dir())) == []


def test_an_unknown_zone_outside_the_offsets_table_is_one_line(tz_job: Path) -> None:
    """Without the table the wrapper asks zoneinfo about the zone's name: a name it does not know is the key's fault."""
    for zone in ("Mars/Olympus_Mons", "/etc/passwd", "../../etc/passwd"):
        edit("tz", setter("tz_offsets", None))
        edit("tz", setter("timezone", zone))
        done = as_cron(crontab_command("tz"))
        assert_one_clean_line(done, f"{applied_file('tz')}: key timezone: expected a time zone", json.dumps(zone))
        assert not tz_job.exists()


def test_the_module_form_of_older_lines_refuses_the_same_way(tz_job: Path) -> None:
    argv = crontab_command("tz")
    # PYTHON -I -m jobctl.runner ...: apply writes it itself where start.py's path is not safe to name
    module_form = argv[:argv.index("-S")] + ["-m", "jobctl.runner"] + argv[argv.index("-S") + 2:] \
        if "-S" in argv else argv
    assert module_form[1:4] == ["-I", "-m", "jobctl.runner"]
    edit("tz", setter("tz_offsets", [[0, "x"]]))
    assert_one_clean_line(as_cron(module_form), f"{applied_file('tz')}: key tz_offsets[0]: expected ")
    assert not tz_job.exists()


def test_a_detached_runs_definition_is_checked_too(tz_job: Path) -> None:
    """`run --detach` hands the definition over on stdin: the same check, naming where it came from."""
    argv = crontab_command("tz")
    defn = json.loads(applied_file("tz").read_text())
    defn["user"] = 0
    detached = argv[:argv.index("--scheduled")] + ["--state-dir", str(state_dir()), "--definition-stdin", "--quiet",
                                                  "tz"]
    done = as_cron(detached, stdin=json.dumps(defn).encode())
    assert_one_clean_line(done, "the definition on stdin: key user: expected a user name or null, got 0")
    assert not tz_job.exists()


def test_hand_edited_numbers_keep_running_within_the_wrappers_bounds(tz_job: Path) -> None:
    """NaN, infinity and huge numbers are of the right type: the wrapper bounds them and runs, as before."""
    edit("tz", setter("timeout", 1e400))  # json.dumps writes Infinity
    edit("tz", setter("retries.attempts", float("nan")))
    edit("tz", setter("output_limit", 10**400))
    done = as_cron(crontab_command("tz"))
    assert (done.returncode, done.stderr) == (0, b"")
    assert tz_job.exists()


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"name": "tz", "command": "true", "description": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"name": "tz", "command": "true", "env": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001,
])
def test_json_nested_too_deeply_is_one_line_not_a_recursion_error(tz_job: Path, text: str) -> None:
    applied_file("tz").write_text(text)
    done = as_cron(crontab_command("tz"))
    assert_one_clean_line(done, f"cannot read the applied definition {applied_file('tz')}: ", "nested too deeply",
                          "; re-run jobctl apply")
    assert "RecursionError" not in done.stderr.decode()
    assert not tz_job.exists()


def test_json_nested_too_deeply_on_stdin_is_one_line(tz_job: Path) -> None:
    argv = crontab_command("tz")
    detached = argv[:argv.index("--scheduled")] + ["--state-dir", str(state_dir()), "--definition-stdin", "--quiet",
                                                  "tz"]
    done = as_cron(detached, stdin=b"[" * 100_000 + b"]" * 100_000)
    assert_one_clean_line(done, "the definition on stdin", "nested too deeply")


# --- the catch-up pass -------------------------------------------------------------------------

def test_the_catch_up_pass_skips_each_bad_definition_and_catches_up_the_others(write_job: WriteJob,
                                                                              tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    missed_at = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    expr = f"{missed_at.minute} {missed_at.hour} * * *"
    # sorted by name, the bad definitions come first: each must be passed over, not end the pass
    names = ["a-fields", "b-zone", "c-window", "d-deep", "e-user", "f-listing", "good"]
    for name in names:
        write_job(f"{name}.yaml", f"schedule: '{expr}'\ntimezone: UTC\ncatch_up: 1h\n"
                                  f"command: touch {tmp_path / name}\n")
    write_job("quiet.yaml", f"schedule: '{expr}'\ncommand: touch {tmp_path / 'quiet'}\n")
    done = jobctl("apply")
    assert done.returncode == 0, done.stderr
    old = time.time() - 7200  # applied before the missed minute
    for name in names:
        os.utime(applied_file(name), (old, old))
    edit("a-fields", setter("fields.fixed", DELETE))  # KeyError 'fixed' in clock.due, before
    edit("b-zone", setter("tz_offsets", None))
    edit("b-zone", setter("timezone", "Mars/Olympus_Mons"))
    edit("c-window", setter("catch_up", "1h"))
    applied_file("d-deep").write_text("[" * 100_000 + "]" * 100_000)
    edit("e-user", setter("user", 0))
    applied_file("f-listing").write_text("[]")
    for name in names:
        os.utime(applied_file(name), (old, old))
    # a job without catch_up: the pass has nothing to do with it, and its own line says what is wrong
    edit("quiet", setter("user", 0))

    done = as_cron(crontab_command("_catch-up"))
    stderr = done.stderr.decode()
    assert done.returncode == 0 and "Traceback" not in stderr, stderr
    wait_for(lambda: (tmp_path / "good").exists(), timeout=60)
    run = wait_for(lambda: [r for r in rows(str(state_dir())) if r["status"] != "running"], timeout=60)
    assert [(r["job"], r["status"], r["trigger"]) for r in run] == [("good", "succeeded", "catchup")]
    expected = {
        "a-fields": "key fields.fixed: expected true or false, got null",
        "b-zone": 'key timezone: expected a time zone of the tz database, got "Mars/Olympus_Mons"',
        "c-window": 'key catch_up: expected a number of seconds or null, got "1h"',
        "d-deep": "nested too deeply",
        "e-user": "key user: expected a user name or null, got 0",
        "f-listing": "not a JSON object naming this job",
    }
    lines = stderr.splitlines()
    assert len(lines) == len(expected), stderr
    for name, why in expected.items():
        [line] = [line for line in lines if line.startswith(f"jobctl: job {name}: ")]
        assert "catch-up skipped: " in line and str(applied_file(name)) in line and why in line, line
        assert line.endswith("; re-run jobctl apply"), line
        assert line in errors_log()
        assert not (tmp_path / name).exists()
    assert "quiet" not in errors_log()
    own = as_cron(crontab_command("quiet"))
    assert_one_clean_line(own, f"job quiet: {applied_file('quiet')}: key user: expected a user name or null, got 0")
    assert not (tmp_path / "quiet").exists()


# --- job files: user and command lists ------------------------------------------------------------

def location(text: str, line_prefix: str, token: str, after: str = "") -> tuple[int, int]:
    """(line, column), 1-based, of ``token`` on the line starting with ``line_prefix`` (after ``after`` on it)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(line_prefix):
            return number, line.index(token, line.index(after) + len(after) if after else 0) + 1
    raise AssertionError(f"no line starting {line_prefix!r}")


@pytest.mark.parametrize("value", ["null", "~", '""', "''", "0", "1.5", "true", "[]", "[root]", "{}"])
def test_a_user_that_is_no_name_is_refused_with_its_location(write_job: WriteJob, jobs_dir: Path,
                                                             value: str) -> None:
    text = f"schedule: '@daily'\ncommand: id\nuser: {value}\n"
    path = write_job("who.yaml", text)
    line, column = location(text, "user:", value, after="user:")
    done = jobctl("validate")
    assert done.returncode == ExitCode.NOT_OK, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{path}:{line}:{column}: job who: user"), done.stderr
    # and nothing is installed that would run it as whoever runs the crontab
    applied_run = jobctl("apply")
    assert applied_run.returncode == ExitCode.NOT_OK and "Traceback" not in applied_run.stderr
    assert not Path(os.environ["JOBCTL_CRONTAB"]).exists()
    assert not applied_file("who").exists()


def test_an_empty_user_says_how_to_fix_it(write_job: WriteJob) -> None:
    path = write_job("who.yaml", "schedule: '@daily'\ncommand: id\nuser: ''\n")
    done = jobctl("validate")
    assert done.stderr.startswith(f"{path}:3:7: job who: user must be a user name, not an empty string; "
                                  "remove the key"), done.stderr


@pytest.mark.parametrize(("items", "bad"), [
    ("[echo, null]", "null"),
    ("[null]", "null"),
    ("[echo, ~]", "~"),
    ("[echo, true]", "true"),
    ("[echo, [a]]", "[a]"),
    ("[echo, {a: 1}]", "{a: 1}"),
])
def test_a_command_list_item_that_is_no_string_is_refused_at_the_item(write_job: WriteJob, items: str,
                                                                      bad: str) -> None:
    text = f"schedule: '@daily'\ncommand: {items}\n"
    path = write_job("argv.yaml", text)
    line, column = location(text, "command:", bad, after="[" if bad != "[a]" else "[echo")
    done = jobctl("validate")
    assert done.returncode == ExitCode.NOT_OK, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{path}:{line}:{column}: job argv: command"), done.stderr


def test_a_number_in_a_command_list_is_not_converted_by_the_job_model() -> None:
    """The loader hands over numbers as written; a number that reaches the model (an applied definition
    read back by run and status) is refused rather than run as str() of it (0o644 would be 420)."""
    parse = spec.FIELDS_BY_KEY["command"].parse
    for items in (["chmod", 0o644, "f"], ["sleep", 1.5], [1]):
        with pytest.raises(spec.FieldError, match="must be a string, not a number") as caught:
            parse(items)
        assert caught.value.at == next(i for i, v in enumerate(items) if not isinstance(v, str))


def test_command_lists_as_written_still_run(write_job: WriteJob, tmp_path: Path) -> None:
    """Numbers stay as written ([chmod, 0644, f] runs chmod 0644) and an empty argument stays an argument."""
    target = tmp_path / "f"
    target.write_text("")
    os.chmod(target, 0o600)
    record = tmp_path / "args"
    write_job("perm.yaml", f"schedule: '* * * * *'\ncommand: [chmod, 0644, {target}]\n")
    write_job("args.yaml", f"schedule: '* * * * *'\n"
                           f"command: [/bin/sh, -c, 'for a in \"$@\"; do echo \"<$a>\"; done > {record}', sh, '', "
                           "1.10, x]\n")
    done = jobctl("apply")
    assert done.returncode == 0, done.stderr
    for name in ("perm", "args"):
        ran = as_cron(crontab_command(name))
        assert ran.returncode == 0, ran.stderr
    assert target.stat().st_mode & 0o777 == 0o644
    assert record.read_text() == "<>\n<1.10>\n<x>\n"


def test_the_wrappers_enumerations_are_the_job_files() -> None:
    """applied.py keeps its own copy (the wrapper does not import spec): they must not drift apart."""
    assert applied.CONCURRENCY == spec.CONCURRENCY
    assert applied.CRON_MAIL == spec.CRON_MAIL
