"""Issue 10, items 2-4: ranges for every number, no internal error on odd input, bounded work per file.

Every case here was accepted (and crashed the wrapper or an export later),
crashed ``jobctl validate`` with exit 70, blocked it, or took seconds to
minutes before the fix.  Each now gets one located line and exit 1.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jobctl.cli import app as cli
from jobctl.errors import ExitCode
from jobctl.install import compile
from jobctl.jobs import loader, spec

WriteJob = Callable[[str, "str | bytes"], Path]
HEAD = "schedule: '@daily'\ncommand: 'true'\n"
#: the documented limits (loader.MAX_VALUES, loader.MAX_PROBLEMS), written out so that
#: this module also runs against the code before issue 10, to show it failing there
MAX_VALUES = 10_000
MAX_PROBLEMS = 100


def short(value: object) -> str:
    """A value as problems quote it: its repr, cut to 60 characters (spec.show)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:53] + "..." + text[-4:]


def test_the_documented_limits() -> None:
    assert (loader.MAX_VALUES, loader.MAX_PROBLEMS, loader.MAX_FILE_BYTES) == (MAX_VALUES, MAX_PROBLEMS, 1024 * 1024)
    assert short("x" * 1000) == spec.show("x" * 1000)


def load(jobs_dir: Path) -> tuple[dict[str, spec.JobSpec], list[str]]:
    result = loader.load_dir(str(jobs_dir))
    return {j.name: j for j in result.jobs}, [str(p).replace(f"{jobs_dir}/", "") for p in sorted(result.problems)]


def validate(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             jobs_dir: Path) -> tuple[int, list[str]]:
    """`jobctl validate` through the real entry point (cli.main maps any crash to exit 70), in-process."""
    monkeypatch.setattr(sys, "argv", ["jobctl", "validate", "--jobs-dir", str(jobs_dir)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    out, err = capsys.readouterr()
    return exit_.value.code, [line.replace(f"{jobs_dir}/", "") for line in err.splitlines()]


# --- item 2: a documented range for every number -----------------------------------------------

#: how each range's key is written in a job file
SNIPPETS = {
    "timeout": "timeout: {}",
    "kill_grace": "kill_grace: {}",
    "retries.attempts": "retries: {{attempts: {}}}",
    "retries.delay": "retries: {{attempts: 1, delay: {}}}",
    "retries.backoff": "retries: {{attempts: 1, backoff: {}}}",
    "retries.max_delay": "retries: {{attempts: 1, max_delay: {}}}",
    "output_limit": "output_limit: {}",
    "jitter": "jitter: {}",
    "catch_up": "catch_up: {}",
    "catch_up_max": "catch_up_max: {}",
    "notify.after_failures": "notify: {{after_failures: {}, ping: 'https://hc.example/x'}}",
    "history.keep": "history: {{keep: {}}}",
    "history.max_age": "history: {{max_age: {}}}",
    "baseline.min_runs": "baseline: {{min_runs: {}, runs: 1000}}",
    "baseline.runs": "baseline: {{runs: {}}}",
    "baseline.slow": "baseline: {{slow: {}}}",
    "baseline.short": "baseline: {{short: {}}}",
    "requires.within": "requires: [{{job: backup-dep, within: {}}}]",  # backup-dep.yaml is written too
    "max_queued": "max_queued: {}",
}


def test_every_range_has_a_snippet() -> None:
    assert set(SNIPPETS) == set(spec.RANGE)


def test_every_numeric_key_has_a_range() -> None:
    """A key whose JSON Schema takes an integer or number is in RANGES (so the man page can list it)."""
    def numeric(schema: object, path: str) -> set[str]:
        found = set()
        if isinstance(schema, dict):
            if schema.get("type") in ("integer", "number"):
                found.add(path)
            for branch in schema.get("oneOf", []):
                found |= numeric(branch, path)
            if isinstance(schema.get("items"), dict):  # requires: a list of {job, status, within}
                found |= numeric(schema["items"], path)
            for key, sub in schema.get("properties", {}).items():
                found |= numeric(sub, f"{path}.{key}")
        return found

    keys = set()
    for f in spec.FIELDS:
        keys |= numeric(f.schema, f.key)
    keys = {"retries.attempts" if k == "retries" else k for k in keys}
    assert keys == set(spec.RANGE)


@pytest.mark.parametrize("key", list(SNIPPETS))
def test_both_ends_of_a_range_are_accepted_and_one_past_the_maximum_is_refused(
        write_job: WriteJob, jobs_dir: Path, key: str) -> None:
    r = spec.RANGE[key]
    write_job("backup-dep.yaml", HEAD)  # what requires names
    for value in (r.minimum, r.maximum):
        write_job("backup.yaml", HEAD + SNIPPETS[key].format(value) + "\n")
        assert load(jobs_dir)[1] == [], value
    write_job("backup.yaml", HEAD + SNIPPETS[key].format(r.maximum + 1) + "\n")
    (problem,) = load(jobs_dir)[1]
    label = key.replace(".", " ")
    assert problem.endswith(f"job backup: {label} {r.show(r.maximum + 1)} is out of range ({r.text}); "
                            f"use {r.show(r.maximum)} or less"), problem


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        # the values of the issue: each crashed the wrapper or overflowed before
        ("timeout: 25d", "3:10: job backup: timeout 25d is out of range (1s to 7d); use 7d or less"),
        ("timeout: 2160000", "3:10: job backup: timeout 25d is out of range (1s to 7d); use 7d or less"),
        ("kill_grace: 25d", "3:13: job backup: kill_grace 25d is out of range (0s to 1h); use 1h or less"),
        ("retries: {attempts: 1, backoff: .nan}",
         "3:33: job backup: retries backoff nan is not a number; use one from 1 to 10"),
        ("retries: {attempts: 1, backoff: .inf}",
         "3:33: job backup: retries backoff inf is out of range (1 to 10); use 10 or less"),
        ("retries: {attempts: 1, backoff: -.inf}",
         "3:33: job backup: retries backoff must be a number 1 or more, not -inf"),
        ("retries: {attempts: 400, delay: 0s, backoff: 10}",
         "3:21: job backup: retries attempts 400 is out of range (0 to 100); use 100 or less"),
        ("retries: 400", "3:10: job backup: retries 400 is out of range (0 to 100); use 100 or less"),
        ("retries: {attempts: 1, delay: 2d}",
         "3:31: job backup: retries delay 2d is out of range (0s to 1d); use 1d or less"),
        ("history: {max_age: 99999999d}",
         "3:20: job backup: history max_age 99999999d is out of range (1s to 3650d); use 3650d or less"),
        ("history: {keep: 1000000000}",
         "3:17: job backup: history keep 1000000000 is out of range (1 to 1000000); use 1000000 or less"),
        ("catch_up: 400d", "3:11: job backup: catch_up 400d is out of range (1s to 366d); use 366d or less"),
        ("jitter: 2d", "3:9: job backup: jitter 2d is out of range (0s to 1d); use 1d or less"),
        ("output_limit: 5GiB", "3:15: job backup: output_limit 5GiB is out of range (0 to 1GiB); use 1GiB or less"),
        ("notify: {after_failures: 20000, ping: 'https://hc.example/x'}",
         "3:26: job backup: notify after_failures 20000 is out of range (1 to 10000); use 10000 or less"),
        # numbers too large for a float, or written with thousands of digits
        ("retries: {attempts: 1, backoff: " + "9" * 99 + "}",
         "3:33: job backup: retries backoff 9.99e+98 is out of range (1 to 10); use 10 or less"),
        ("timeout: " + "9" * 60 + "d",
         "3:10: job backup: timeout 8.63e+64s is out of range (1s to 7d); use 7d or less"),
        ("timeout: " + "9" * 70 + "d", f"3:10: job backup: timeout: {short('9' * 70 + 'd')} is not a duration; "
                                       "write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"),
        ("timeout: " + "9" * 5000, f"3:10: job backup: timeout: {short('9' * 5000)} is too long for a number "
                                   "(5000 characters, at most 100); quote it if it is text"),
        ("timeout: 1" + ":00" * 20000, f"3:10: job backup: timeout: {short('1' + ':00' * 20000)} is too long "
                                       "for a number (60001 characters, at most 100); quote it if it is text"),
    ],
)
def test_out_of_range_values_are_refused(write_job: WriteJob, jobs_dir: Path, snippet: str, error: str) -> None:
    write_job("backup.yaml", HEAD + snippet + "\n")
    assert load(jobs_dir) == ({}, [f"backup.yaml:{error}"])


def test_the_largest_retries_stay_finite() -> None:
    """attempts 100 × backoff 10 from a 1d delay: every delay the wrapper computes is a finite float."""
    r = spec.Retries(attempts=spec.RANGE["retries.attempts"].maximum, delay=spec.RANGE["retries.delay"].maximum,
                     backoff=float(spec.RANGE["retries.backoff"].maximum),
                     max_delay=spec.RANGE["retries.max_delay"].maximum)
    delays = [r.delay_before(n) for n in range(1, r.attempts + 1)]
    # the wrapper's own formula (runner.py): delay * backoff ** (attempt - 2), capped
    delays += [min(float(r.delay) * r.backoff ** (a - 2), r.max_delay) for a in range(2, r.attempts + 2)]
    assert all(math.isfinite(d) and 0 <= d <= spec.DAY for d in delays)


def test_an_accepted_job_serialises_without_nan(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", HEAD + "retries: {attempts: 100, delay: 1d, backoff: 10, max_delay: 1d}\n"
              "timeout: 7d\nkill_grace: 1h\nhistory: {keep: 1000000, max_age: 3650d}\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    json.dumps(compile.definition(jobs["backup"]), allow_nan=False)


# --- item 3: located problems where validate crashed with exit 70 --------------------------------

NUL = "contains a NUL byte (\\0), which no path, argument or environment variable can hold; remove it"
NOT_A_ZONE = "is not a known time zone; use an IANA name such as Europe/Berlin or UTC"


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        ("timeout: !!int ''", "3:10: job backup: timeout: '' is not a valid !!int; quote it if it is text"),
        ("timeout: !!int '-'", "3:10: job backup: timeout: '-' is not a valid !!int; quote it if it is text"),
        ("timeout: !!int +", "3:10: job backup: timeout: '+' is not a valid !!int; quote it if it is text"),
        ("timeout: !!int _", "3:10: job backup: timeout: '_' is not a valid !!int; quote it if it is text"),
        ("description: !!float ''", "3:14: job backup: description: '' is not a valid !!float; quote it if it is text"),
        ("description: !!float '-'",
         "3:14: job backup: description: '-' is not a valid !!float; quote it if it is text"),
        ("description: !!float +", "3:14: job backup: description: '+' is not a valid !!float; quote it if it is text"),
        ("retries: {attempts: 1, backoff: !!float _}",
         "3:33: job backup: retries: '_' is not a valid !!float; quote it if it is text"),
        ("tags: [!!int '']", "3:8: job backup: tags: '' is not a valid !!int; quote it if it is text"),
        ("timezone: Europe", "3:11: job backup: timezone: 'Europe' is a region of the tz database, not a time zone; "
                             "name a zone in it, e.g. 'Europe/Amsterdam'"),
        ("timezone: Etc", "3:11: job backup: timezone: 'Etc' is a region of the tz database, not a time zone; "
                          "name a zone in it, e.g. 'Etc/GMT'"),
        ("timezone: " + "A" * 256, "3:11: job backup: timezone is 256 characters long; time zone names have at "
                                   "most 255: use an IANA name such as Europe/Berlin or UTC"),
        ("timezone: " + "A/" * 2000 + "B", "3:11: job backup: timezone is 4001 characters long; time zone names "
                                           "have at most 255: use an IANA name such as Europe/Berlin or UTC"),
        ("timezone: " + "a" * 255, f"3:11: job backup: timezone: {short('a' * 255)} {NOT_A_ZONE}"),
        ("timezone: ../../../etc/passwd", f"3:11: job backup: timezone: '../../../etc/passwd' {NOT_A_ZONE}"),
        ("retries: {attempts: 1, backoff: " + "9" * 400 + "}",
         f"3:33: job backup: retries: {short('9' * 400)} is too long for a number (400 characters, at most "
         "100); quote it if it is text"),
        ('working_dir: "/srv\\0x"', f"3:14: job backup: working_dir: {NUL}"),
        ('shell: "/bin/sh\\0"', f"3:8: job backup: shell: {NUL}"),
        ('description: "a\\0b"', f"3:14: job backup: description: {NUL}"),
        ('notify: {command: "alert\\0x"}', f"3:19: job backup: notify command {NUL}"),
        ('env: {A: "x\\0"}', f"3:10: job backup: env A: {NUL}"),
        ('env: {"A\\0": x}', "3:7: job backup: 'A\\x00' is not a valid environment variable name"),
        ('notify: {email: "ops\\0@example.com"}',
         "3:17: job backup: notify email: 'ops\\x00@example.com' is not an e-mail address"),
        # libyaml refuses \ud800-\udfff escapes; PyYAML's own parser (used to word errors) took them
        ('description: "a\\ud800b"', "3:18: YAML syntax error: found invalid Unicode character escape code"),
        ('env: {A: "\\udfff"}', "3:13: YAML syntax error: found invalid Unicode character escape code"),
    ],
)
def test_no_internal_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           write_job: WriteJob, jobs_dir: Path, snippet: str, error: str) -> None:
    write_job("backup.yaml", HEAD + snippet + "\n")
    code, lines = validate(monkeypatch, capsys, jobs_dir)
    assert (code, lines) == (ExitCode.NOT_OK, [f"backup.yaml:{error}",
                                               f"jobctl: 1 problem in {jobs_dir}; nothing was changed"])


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        ('description: "a\\ud800b"', "2:14: job backup: description: contains U+D800"),
        ('working_dir: "/srv/\\udc80"', "2:14: job backup: working_dir: contains U+DC80"),
        ('shell: "/bin/\\ud83d"', "2:8: job backup: shell: contains U+D83D"),
        ('notify: {command: "\\udfff"}', "2:19: job backup: notify command contains U+DFFF"),
        ('env: {A: "\\ud800"}', "2:10: job backup: env A: contains U+D800"),
        ('env: {"\\ud800": x}', "2:7: job backup: '\\ud800' is not a valid environment variable name"),
        ('command: "echo \\ud800"', "2:10: job backup: command: contains U+D800"),
        ('command: [echo, "\\ud800"]', "2:17: job backup: command argument contains U+D800"),
        ('notify: {email: "\\ud800@example.com"}',
         "2:17: job backup: notify email: '\\ud800@example.com' is not an e-mail address"),
    ],
)
def test_lone_surrogates_without_libyaml(monkeypatch: pytest.MonkeyPatch, write_job: WriteJob, jobs_dir: Path,
                                         snippet: str, error: str) -> None:
    """Where PyYAML has no libyaml, its parser builds lone surrogates: the key parsers refuse them."""
    monkeypatch.setattr(loader, "_Loader", loader._PyLoader)
    write_job("backup.yaml", HEAD.replace("command: 'true'\n", "") + snippet + "\n"
              + ("command: 'true'\n" if not snippet.startswith("command") else ""))
    _, problems = load(jobs_dir)
    assert len(problems) == 1 and problems[0].startswith(f"backup.yaml:{error}"), problems


def test_a_problem_is_always_one_printable_line(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", 'name: "evil\\n/etc/passwd:1:1: \\u202efake"\nschedule: "@daily"\ncommand: x\n')
    (problem,) = load(jobs_dir)[1]
    assert problem.isprintable()
    assert problem.startswith("backup.yaml:1:7: job evil\\n/etc/passwd:1:1: \\u202efake: name: ")


def test_unreadable_names_in_a_file_name(jobs_dir: Path) -> None:
    (jobs_dir / "a\nb.yaml").write_text(HEAD)
    assert load(jobs_dir)[1] == [
        "a\\nb.yaml:1:1: the file name 'a\\nb' is not a valid job name; add a name: key "
        "(lowercase letters, digits, '_', '.', '-') or rename the file"]


# --- item 4: no file is opened unless it is a regular file ----------------------------------------

NOT_REGULAR = ("not a regular file; job files are regular files: move it out of the jobs directory or rename it so "
               "that its name does not end in .yaml or .yml")


def test_a_fifo_is_refused_without_being_opened(write_job: WriteJob, jobs_dir: Path, tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: validate used to hang forever."""
    write_job("ok.yaml", HEAD)
    os.mkfifo(jobs_dir / "pipe.yaml")
    os.mkfifo(jobs_dir / "_defaults.yaml")
    (jobs_dir / "link.yaml").symlink_to(jobs_dir / "pipe.yaml")
    try:
        done = subprocess.run([sys.executable, "-m", "jobctl", "validate", "--jobs-dir", str(jobs_dir)],
                              capture_output=True, text=True, timeout=30, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("jobctl validate blocked on a FIFO")
    assert done.returncode == ExitCode.NOT_OK
    assert [line.replace(f"{jobs_dir}/", "") for line in done.stderr.splitlines()] == [
        f"_defaults.yaml:1:1: a named pipe (FIFO), {NOT_REGULAR}",
        f"link.yaml:1:1: a symbolic link to a named pipe (FIFO), {NOT_REGULAR}",
        f"pipe.yaml:1:1: a named pipe (FIFO), {NOT_REGULAR}",
        f"jobctl: 3 problems in {jobs_dir}; nothing was changed",
    ]


def test_devices_and_sockets_are_refused(jobs_dir: Path) -> None:
    (jobs_dir / "null.yaml").symlink_to("/dev/null")  # read, it looked like an empty file
    (jobs_dir / "zero.yaml").symlink_to("/dev/zero")  # read, 1 MiB of NUL bytes
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(jobs_dir / "sock.yaml"))
        assert load(jobs_dir) == ({}, [
            f"null.yaml:1:1: a symbolic link to a character device, {NOT_REGULAR}",
            f"sock.yaml:1:1: a socket, {NOT_REGULAR}",
            f"zero.yaml:1:1: a symbolic link to a character device, {NOT_REGULAR}",
        ])
    finally:
        sock.close()


def test_a_dangling_link(jobs_dir: Path) -> None:
    (jobs_dir / "gone.yaml").symlink_to(jobs_dir / "nowhere.yaml")
    assert load(jobs_dir)[1] == ["gone.yaml:1:1: cannot read: No such file or directory"]


# --- item 4: bounded work; the results (docs/benchmarks.md has the times) ----------------------

CAP = f"more than {MAX_VALUES} values (keys, values and list items) in one file; job files are small: " \
      "split it into several files"


def one_mib(head: str, unit: str) -> str:
    return head + unit * ((loader.MAX_FILE_BYTES - len(head)) // len(unit))


def test_duplicate_tags_are_removed_in_order(write_job: WriteJob, jobs_dir: Path) -> None:
    # 40,000 tags took 14 s: a list was searched for every tag
    tags = [f"t{i % 5000}" for i in range(MAX_VALUES - 10)]
    write_job("backup.yaml", HEAD + f"tags: [{', '.join(tags)}]\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert jobs["backup"].tags == tuple(f"t{i}" for i in range(5000))


@pytest.mark.parametrize(
    ("case", "text", "where"),
    [
        # 120,000 tags in 1 MiB took 370 s
        ("tags", one_mib(HEAD + "tags: [", "t0001234,")[:-1] + "]", "3:"),
        ("unknown keys", one_mib(HEAD, "k: 1\n"), None),
        ("env", one_mib(HEAD + "env:\n", "  V: x\n"), None),
        ("documents", one_mib("", "---\nschedule: '@daily'\ncommand: x\n"), None),
        ("empty documents", one_mib("", "---\n"), None),
        ("command list", one_mib("schedule: '@daily'\ncommand:\n", "- a\n"), None),
    ],
)
def test_a_file_of_many_values_is_refused_once(write_job: WriteJob, jobs_dir: Path, case: str, text: str,
                                               where: str | None) -> None:
    assert len(text.encode()) <= loader.MAX_FILE_BYTES
    write_job("big.yaml", text)
    jobs, problems = load(jobs_dir)
    assert jobs == {}
    assert len(problems) == 1 and problems[0].endswith(f": {CAP}"), problems
    if where:
        assert problems[0].startswith(f"big.yaml:{where}")


def test_many_jobs_in_one_file_load(write_job: WriteJob, jobs_dir: Path) -> None:
    n = (MAX_VALUES - 1) // 7  # a mapping, three keys, three values per job
    write_job("many.yaml", "".join(f"---\nname: j{i}\nschedule: '*/5 * * * *'\ncommand: x\n" for i in range(n)))
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert len(jobs) == n == 1428


def test_problems_per_file_are_capped(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", HEAD + "".join(f"timout{i}: 1\n" for i in range(500)))
    write_job("b.yaml", HEAD + "timout: 1\n")
    problems = load(jobs_dir)[1]
    assert len(problems) == MAX_PROBLEMS + 2
    assert problems[MAX_PROBLEMS - 1].startswith("a.yaml:102:1: job a: unknown key 'timout99'")
    assert f"a.yaml:103:1: more than {MAX_PROBLEMS} problems in this file; stopped here: fix these and " \
           "validate again" in problems
    assert problems[-1] == "b.yaml:3:1: job b: unknown key 'timout'; did you mean 'timeout'?"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # a syntax error at the end of a large file: libyaml's words (the slow parser is not run on 1 MiB)
        (one_mib("schedule: '@daily'\ncommand: x\ndescription: |\n", "  " + "x" * 77 + "\n") + "a: [\n",
         "YAML syntax error: did not find expected node content"),
        # a small file: PyYAML's words, which name the character
        ("schedule: '@daily'\ncommand: [a, b\ntimeout: 5m\n", "YAML syntax error: expected ',' or ']', but got ':'"),
    ],
)
def test_syntax_errors_in_large_and_small_files(write_job: WriteJob, jobs_dir: Path, text: str, error: str) -> None:
    write_job("big.yaml", text)
    (problem,) = load(jobs_dir)[1]
    assert problem.endswith(error)


def test_a_long_schedule_is_refused_before_parsing(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '" + "1," * 400_000 + "1 * * * *'\ncommand: x\n")
    assert load(jobs_dir)[1] == [
        "backup.yaml:1:11: job backup: schedule is 800009 characters long; a cron expression needs at most 1000: "
        "use ranges and steps (1-5, */10) instead of long lists"]


def test_a_value_just_past_a_float_maximum_is_shown_as_written() -> None:
    """From the attack review: 10.000001 was reported as "backoff 10 is out of range (1 to 10)"."""
    with pytest.raises(ValueError, match=r"^retries backoff 10\.000001 is out of range \(1 to 10\)"):
        spec.check_range("retries.backoff", 10.000001)
