"""Issue 10, item 5: fuzzing the loader and `jobctl validate`.

Valid job files (every key, defaults, several documents) are mutated at the
YAML level (a value swapped for a hostile scalar, a key added, a line
duplicated or cut), at the character level and at the byte level; random
shapes are also dumped as YAML.  Whatever comes out:

* ``loader.load_dir`` raises nothing: every problem is a located, printable,
  single-line ``Problem`` of a file it read;
* every job it accepts serialises to the applied JSON without NaN, holds no
  string the system cannot take (NUL, lone surrogates) and stays in RANGES;
* ``jobctl validate`` (cli.main, which maps any crash to 70) exits 0 or 1.

The default run is bounded (about 20 s); a campaign runs it longer:
``JOBCTL_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_loader_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobctl.cli import app as cli
from jobctl.install import compile
from jobctl.jobs import loader, spec

EXAMPLES = int(os.environ.get("JOBCTL_FUZZ_EXAMPLES", "300"))

SEEDS = [
    "schedule: '@daily'\ncommand: 'true'\n",
    """\
name: nightly-dump
description: Dump the database
schedule: '*/15 * * * *'
command: [pg_dump, -p, 5432, 0644]
shell: /bin/bash
working_dir: /srv
env:
  PGHOST: db
  PORT: 5432
timeout: 1h30m
kill_grace: 30
retries: {attempts: 3, delay: 1m, backoff: 1.5, max_delay: 10m}
concurrency: replace
output_limit: 512KiB
enabled: false
tags: [db, 'x:y']
user: root
timezone: Europe/Berlin
jitter: 2m
catch_up: 6h
notify:
  when: [failure, recovery]
  after_failures: 2
  command: /usr/local/bin/alert
  webhook: https://hooks.example.com/x
  email: [ops@example.com]
  ping: https://hc-ping.com/u
history: {keep: 30, max_age: 30d}
""",
    "name: a\nschedule: '@hourly'\ncommand: x\n---\nname: b\nschedule: '@every 15m'\ncommand: [y]\n"
    "retries: 2\n---\n",
    "description: &d Backup\nschedule: \"0 3 * * 1-5\"\ncommand: |\n  tar -czf /tmp/x.tgz /etc\n"
    "tags: [*d]\n",
]
DEFAULTS = ["timeout: 1h\nenv: {LC_ALL: C.UTF-8}\n", "shell: /bin/bash\nretries: {attempts: 1}\n", ""]

#: scalars that broke something once, or might
NASTY = [
    "", "~", "null", "-", "+", "_", ".", "0", "-0", "1", "-1", "7d", "25d", "8d", "1h", "3601", "99999999999d",
    "9" * 20, "9" * 120, "1" + ":00" * 30, "0x1f", "0o17", "0b101", "1_000", "1e400", "-1e400", ".nan", ".NaN",
    ".inf", "-.inf", "1.5", "2.5e3", "yes", "no", "on", "off", "true", "2024-02-30", "2024-02-29T25:61:00Z",
    "!!int ''", "!!int '-'", "!!int +", "!!int _", "!!float ''", "!!float _", "!!float '-'", "!!bool maybe",
    "!!binary aGk=", "!!binary '%%%'", "!!timestamp x", "!!str 5", "!!null x", "!!set {a}", "!!omap [a: 1]",
    "!!seq x", "!!map x", "!custom x", "!!python/object:os.system x", "!!merge x",
    '"\\0"', '"a\\0b"', '"\\ud800"', '"\\udfff x"', '"\\U0010FFFF"', '"\\u202e"', '"\\x85"', '"\\n"', '"a\\tb"',
    "Europe", "Etc", "Europe/Berlin", "Europe/Berln", "America/New_Yrok", "UTC", "CEST", "../../etc/passwd",
    "/etc/localtime", "A" * 300, "Europe/" + "x" * 300, "posixrules", "Factory",
    "'@daily'", "'@every 7m'", "'@every 99999d'", "'* * * * *'", "'61 * * * *'", "'0 0 31 2 *'", "'@reboot'",
    "'*/0 * * * *'", "'1-5/0 * * * *'", "'' ", "'" + "1," * 600 + "1 * * * *'", "'@every 0s'", "'@every 1'",
    "root", "no-such-user-jobctl", "'bad user'", "https://x.example", "ftp://x", "a@b", "[]", "{}", "[a, b]",
    "{a: 1}", "[[a]]", "{a: {b: c}}", "[1, 2, 3]", "&x a", "*x", "<<", "'<<'", "? a", "|\n  text", ">-\n  text",
    "%", "@x", "`x`", "*", "[" * 30, "{" * 30, "'" + "x" * 2000 + "'",
]
KEYS = [*spec.KEYS, "retries", "notify", "history", "<<", "timout", "'on'", "on", "name", "? [a]", "1", "~"]
NESTED = ["attempts", "delay", "backoff", "max_delay", "when", "after_failures", "command", "webhook", "email",
          "ping", "keep", "max_age", "on", "PATH", "JOBCTL_JOB", "A-B"]
YAML_CHARS = ":-[]{},&*!|>'\"%@`#? \n\t\\0123456789abcxyzAZ_./~éẞ\u2028\ufeff\x85\x07"

value = st.one_of(st.sampled_from(NASTY), st.text(YAML_CHARS, max_size=12), st.integers().map(str),
                  st.floats().map(repr))
mutation = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 60), value),
    st.tuples(st.just("key"), st.integers(0, 60), st.sampled_from(KEYS), value),
    st.tuples(st.just("nested"), st.integers(0, 60), st.sampled_from(["retries", "notify", "history", "env"]),
              st.sampled_from(NESTED), value),
    st.tuples(st.just("dup"), st.integers(0, 60)),
    st.tuples(st.just("cut"), st.integers(0, 3000), st.integers(1, 40)),
    st.tuples(st.just("chars"), st.integers(0, 3000), st.text(YAML_CHARS, min_size=1, max_size=8)),
    st.tuples(st.just("bytes"), st.integers(0, 3000), st.binary(min_size=1, max_size=4)),
)
shapes = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
              st.sampled_from(["@daily", "x", "/bin/sh", "1h", "Europe/Berlin"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS + NESTED), inner, max_size=5),
    max_leaves=12,
)


def mutate(text: str, mutations: list[tuple]) -> bytes:
    data = text
    raw: list[tuple[int, bytes]] = []
    for m in mutations:
        lines = data.split("\n")
        kind = m[0]
        if kind == "value":
            i = m[1] % len(lines)
            key = lines[i].split(":", 1)[0] if ":" in lines[i] else "command"
            lines[i] = f"{key}: {m[2]}"
        elif kind == "key":
            lines.insert(m[1] % (len(lines) + 1), f"{m[2]}: {m[3]}")
        elif kind == "nested":
            lines.insert(m[1] % (len(lines) + 1), f"{m[2]}: {{{m[3]}: {m[4]}}}")
        elif kind == "dup":
            i = m[1] % len(lines)
            lines.insert(i, lines[i])
        elif kind == "cut":
            start = m[1] % (len(data) + 1)
            data = data[:start] + data[start + m[2]:]
            continue
        elif kind == "chars":
            start = m[1] % (len(data) + 1)
            data = data[:start] + m[2] + data[start:]
            continue
        elif kind == "bytes":
            raw.append((m[1], m[2]))
            continue
        data = "\n".join(lines)
    out = data.encode("utf-8", "surrogatepass")
    for at, b in raw:
        at %= len(out) + 1
        out = out[:at] + b + out[at:]
    return out


def check(files: dict[str, bytes]) -> None:
    """Write ``files`` into a fresh jobs directory and assert every property of the module docstring."""
    base = tempfile.mkdtemp(prefix="jobctl-fuzz-")
    try:
        jobs_dir = Path(base, "jobs.d")
        jobs_dir.mkdir()
        for name, data in files.items():
            (jobs_dir / name).write_bytes(data)
        result = loader.load_dir(str(jobs_dir))  # raises nothing
        for p in result.problems:
            assert p.line >= 1 and p.column >= 1 and p.message, p
            assert str(p).isprintable(), p
            assert p.path in result.files, p
        for job in result.jobs:
            check_job(job)
        code, err = validate(jobs_dir)
        assert code == (1 if result.problems else 0), err
        assert "internal error" not in err and "Traceback" not in err, err
    finally:
        shutil.rmtree(base)


def check_job(job: spec.JobSpec) -> None:
    applied = compile.definition(job)
    json.dumps(applied, allow_nan=False)
    texts = [job.shell, job.working_dir or "", job.description or "", *job.env, *job.env.values(),
             *(job.command if isinstance(job.command, tuple) else [job.command]), *job.tags]
    if job.notify:
        texts += [job.notify.command or "", *job.notify.email]
    for text in texts:
        assert "\0" not in text, text
        text.encode("utf-8")  # raises on a lone surrogate
    numbers = {"timeout": job.timeout, "kill_grace": job.kill_grace, "retries.attempts": job.retries.attempts,
               "retries.delay": job.retries.delay, "retries.backoff": job.retries.backoff,
               "retries.max_delay": job.retries.max_delay, "output_limit": job.output_limit, "jitter": job.jitter,
               "catch_up": job.catch_up, "history.keep": job.history.keep, "history.max_age": job.history.max_age,
               "notify.after_failures": job.notify.after_failures if job.notify else None}
    for key, number in numbers.items():
        if number is None or (key in ("retries.delay", "retries.backoff", "retries.max_delay") and
                              not job.retries.attempts):
            continue
        r = spec.RANGE[key]
        assert math.isfinite(number) and r.minimum <= number <= r.maximum, (key, number)


def validate(jobs_dir: Path) -> tuple[int, str]:
    """`jobctl validate` through cli.main, in-process: (exit code, stderr)."""
    err = io.StringIO()
    with mock.patch.object(sys, "argv", ["jobctl", "validate", "--jobs-dir", str(jobs_dir)]), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(mutation, min_size=1, max_size=6),
       defaults=st.one_of(st.none(), st.tuples(st.sampled_from(DEFAULTS), st.lists(mutation, max_size=3))))
def test_mutated_job_files(seed: str, mutations: list[tuple], defaults: tuple[str, list[tuple]] | None) -> None:
    files = {"job.yaml": mutate(seed, mutations), "ok.yaml": SEEDS[0].encode()}
    if defaults is not None:
        files["_defaults.yaml"] = mutate(*defaults) if defaults[1] else defaults[0].encode()
    check(files)


@FUZZ
@given(docs=st.lists(shapes, min_size=1, max_size=3))
def test_random_shapes(docs: list[object]) -> None:
    text = yaml.safe_dump_all(docs, allow_unicode=True)
    check({"job.yaml": text.encode("utf-8", "surrogatepass")})
