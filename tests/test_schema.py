"""The JSON Schema of job files: well-formed, true of the shipped examples, and in step with the loader."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.jobs import loader, spec
from jobctl.jobs.schema import job_schema

SHIPPED = Path(__file__).resolve().parent.parent / "jobs.d"
VALIDATOR = Draft202012Validator(job_schema())


def test_schema_is_draft_2020_12() -> None:
    schema = job_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["schedule", "command"]
    assert list(schema["properties"]) == list(spec.KEYS)
    for field in spec.FIELDS:
        assert schema["properties"][field.key]["description"] == field.doc


def test_schema_command_prints_it() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == job_schema()


def _shipped_documents() -> list[tuple[str, object]]:
    docs = []
    for path in sorted(SHIPPED.glob("*.y*ml")):
        if path.name.startswith(("_", ".")):
            continue
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc is not None:
                docs.append((f"{path.name}#{i}", doc))
    return docs


SHIPPED_DOCS = _shipped_documents()


def test_there_are_shipped_examples() -> None:
    assert [name for name, _ in SHIPPED_DOCS] == ["backup.yaml#0", "disk-usage.yaml#0", "tmp-cleanup.yaml#0"]


@pytest.mark.parametrize(("name", "doc"), SHIPPED_DOCS, ids=[name for name, _ in SHIPPED_DOCS])
def test_shipped_examples_match_the_schema(name: str, doc: object) -> None:
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []


def test_shipped_examples_point_to_where_the_readme_writes_the_schema() -> None:
    """The README's `jobctl schema > PATH` (run beside jobs.d/) and every `$schema=` name one file."""
    readme = (SHIPPED.parent / "README.md").read_text(encoding="utf-8")
    (target,) = re.findall(r"^jobctl schema > (\S+)$", readme, re.M)
    written = (SHIPPED.parent / target).resolve()
    (example,) = re.findall(r"^# yaml-language-server: \$schema=(\S+)$", readme, re.M)
    assert (SHIPPED / example).resolve() == written
    for path in sorted(SHIPPED.glob("[!_]*.yaml")):
        # relative to the job file, as yaml-language-server resolves it
        (pointer,) = re.findall(r"^# yaml-language-server: \$schema=(\S+)$", path.read_text(encoding="utf-8"), re.M)
        assert (path.parent / pointer).resolve() == written, path.name


def test_shipped_examples_load_without_problems_or_warnings() -> None:
    result = loader.load_dir(str(SHIPPED))
    assert (result.problems, result.warnings) == ([], [])
    assert [j.name for j in result.jobs] == ["backup", "disk-usage", "tmp-cleanup"]


def test_init_example_matches_the_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((tmp_path / "new" / "example.yaml").read_text(encoding="utf-8"))
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []


# --- the loader and the schema judge the same documents alike ---------------------------------

JOB = "schedule: '@daily'\ncommand: run\n"

# (case, document, valid?) — only what JSON Schema can judge: shapes, types, patterns, enums.
AGREE = [
    ("minimal", JOB, True),
    ("every key", "name: nightly-dump\ndescription: Dump\nschedule: '*/15 * * * *'\ncommand: [pg_dump, -p, 5432]\n"
                  "shell: /bin/bash\nworking_dir: /srv\nenv: {PGHOST: db, PORT: 5432}\ntimeout: 1h30m\n"
                  "kill_grace: 30\nretries: {attempts: 3, delay: 1m, backoff: 1.5, max_delay: 10m}\n"
                  "concurrency: replace\noutput_limit: 512KiB\nenabled: false\ntags: [db, 'x:y']\nuser: root\n", True),
    ("name 63 chars", JOB + "name: " + "a" * 63 + "\n", True),
    ("timeout seconds", JOB + "timeout: 90\n", True),
    ("timeout days", JOB + "timeout: 1d\n", True),
    ("retries count", JOB + "retries: 0\n", True),
    ("output_limit bytes", JOB + "output_limit: 4096\n", True),
    ("output_limit with space", JOB + "output_limit: 1 MiB\n", True),
    ("tags empty", JOB + "tags: []\n", True),
    ("enabled yes", JOB + "enabled: yes\n", True),
    ("missing schedule", "command: run\n", False),
    ("missing command", "schedule: '@daily'\n", False),
    ("unknown key", JOB + "colour: red\n", False),
    ("name uppercase", JOB + "name: Backup\n", False),
    ("name 64 chars", JOB + "name: " + "a" * 64 + "\n", False),
    ("name number", JOB + "name: 42\n", False),
    ("description number", JOB + "description: 12\n", False),
    ("schedule number", "schedule: 5\ncommand: run\n", False),
    ("schedule list", "schedule: [a]\ncommand: run\n", False),
    ("schedule empty", "schedule: ''\ncommand: run\n", False),
    ("command empty", "schedule: '@daily'\ncommand: ''\n", False),
    ("command empty list", "schedule: '@daily'\ncommand: []\n", False),
    ("command mapping", "schedule: '@daily'\ncommand: {a: b}\n", False),
    ("command boolean item", "schedule: '@daily'\ncommand: [ls, true]\n", False),
    ("command nested list", "schedule: '@daily'\ncommand: [ls, [a]]\n", False),
    ("shell relative", JOB + "shell: bash\n", False),
    ("working_dir relative", JOB + "working_dir: srv\n", False),
    ("env list", JOB + "env: [A]\n", False),
    ("env bad name", JOB + "env: {1X: a}\n", False),
    ("env boolean", JOB + "env: {DEBUG: yes}\n", False),
    ("env null", JOB + "env: {A: ~}\n", False),
    ("env nested", JOB + "env: {A: [1]}\n", False),
    ("timeout text digits", JOB + "timeout: '90'\n", False),
    ("timeout negative", JOB + "timeout: -5\n", False),
    ("timeout zero", JOB + "timeout: 0\n", False),
    ("timeout fraction", JOB + "timeout: 1.5\n", False),
    ("timeout fraction unit", JOB + "timeout: 1.5h\n", False),
    ("timeout boolean", JOB + "timeout: true\n", False),
    ("kill_grace word", JOB + "kill_grace: soon\n", False),
    ("retries negative", JOB + "retries: -1\n", False),
    ("retries text", JOB + "retries: '3'\n", False),
    ("retries boolean", JOB + "retries: true\n", False),
    ("retries unknown key", JOB + "retries: {attempts: 3, jitter: 1}\n", False),
    ("retries no attempts", JOB + "retries: {delay: 30s}\n", False),
    ("retries backoff below 1", JOB + "retries: {attempts: 3, backoff: 0.5}\n", False),
    ("retries attempts negative", JOB + "retries: {attempts: -1}\n", False),
    ("retries delay word", JOB + "retries: {attempts: 1, delay: soon}\n", False),
    ("concurrency unknown", JOB + "concurrency: sometimes\n", False),
    ("output_limit fraction", JOB + "output_limit: 1.5MiB\n", False),
    ("output_limit lowercase unit", JOB + "output_limit: 1mb\n", False),
    ("output_limit negative", JOB + "output_limit: -1\n", False),
    ("enabled text", JOB + "enabled: 'true'\n", False),
    ("enabled number", JOB + "enabled: 1\n", False),
    ("tags scalar", JOB + "tags: backup\n", False),
    ("tags bad", JOB + "tags: [-bad]\n", False),
    ("tags number", JOB + "tags: [1]\n", False),
    ("user number", JOB + "user: 0\n", False),
    ("timezone number", JOB + "timezone: 1\n", False),
    ("jitter words", JOB + "jitter: soon\n", False),
    ("catch_up list", JOB + "catch_up: [6h]\n", False),
    ("notify no sink", JOB + "notify: {when: [failure]}\n", False),
    ("notify bad when", JOB + "notify: {when: [sometimes], ping: 'https://x.example'}\n", False),
    ("history keep 0", JOB + "history: {keep: 0}\n", False),
    # the ranges (spec.RANGES), in whole seconds or counts: JSON Schema can bound those
    ("timeout a week", JOB + "timeout: 604800\n", True),
    ("timeout over a week", JOB + "timeout: 604801\n", False),
    ("kill_grace over an hour", JOB + "kill_grace: 3601\n", False),
    ("retries over 100", JOB + "retries: 101\n", False),
    ("retries attempts over 100", JOB + "retries: {attempts: 101}\n", False),
    ("retries backoff 10", JOB + "retries: {attempts: 1, backoff: 10}\n", True),
    ("retries backoff over 10", JOB + "retries: {attempts: 1, backoff: 10.5}\n", False),
    ("retries backoff infinite", JOB + "retries: {attempts: 1, backoff: .inf}\n", False),
    ("retries delay over a day", JOB + "retries: {attempts: 1, delay: 86401}\n", False),
    ("output_limit over 1GiB", JOB + "output_limit: 1073741825\n", False),
    ("jitter over a day", JOB + "jitter: 86401\n", False),
    ("catch_up 0", JOB + "catch_up: 0\n", False),
    ("catch_up_mode unknown", JOB + "catch_up_mode: all\n", False),
    ("catch_up_max over 10000", JOB + "catch_up_max: 10001\n", False),
    ("baseline min_runs under 5", JOB + "baseline: {min_runs: 4}\n", False),
    ("baseline slow 1.5", JOB + "baseline: {slow: 1.5}\n", True),
    ("baseline short over 0.9", JOB + "baseline: {short: 0.95}\n", False),
    ("baseline unknown key", JOB + "baseline: {fast: 2}\n", False),
    ("lock_group uppercase", JOB + "lock_group: DB\n", False),
    ("requires a bad status", JOB + "requires: [{job: backup, status: ok}]\n", False),
    ("requires within over a year", JOB + "requires: [{job: backup, within: 31622401}]\n", False),
    ("then an empty list", JOB + "then: []\n", False),
    ("on_failure a bad name", JOB + "on_failure: [Backup]\n", False),
    ("params declared", JOB + "params: {region: {required: true}, note: null}\n", True),
    ("params an uppercase name", JOB + "params: {Region: {}}\n", False),
    ("params an unknown key", JOB + "params: {region: {requird: true}}\n", False),
    ("max_queued 0", JOB + "max_queued: 0\n", False),
    ("notify after_failures over 10000", JOB + "notify: {after_failures: 10001, ping: 'https://x.example'}\n", False),
    ("history keep over a million", JOB + "history: {keep: 1000001}\n", False),
    ("history max_age over ten years", JOB + "history: {max_age: 315360001}\n", False),
    ("timezone too long", JOB + "timezone: " + "A" * 256 + "\n", False),
    ("history unknown key", JOB + "history: {keepp: 3}\n", False),
    ("cron_mail always", JOB + "cron_mail: always\n", True),
    ("cron_mail never", JOB + "cron_mail: never\n", True),
    ("cron_mail unknown", JOB + "cron_mail: errors\n", False),
    ("cron_mail boolean", JOB + "cron_mail: no\n", False),
]

# Documents the loader refuses for reasons beyond JSON Schema: cron semantics, the host, reserved names.
LOADER_STRICTER = [
    ("schedule out of range", "schedule: '61 * * * *'\ncommand: run\n"),
    ("schedule never fires", "schedule: '0 0 31 2 *'\ncommand: run\n"),
    ("schedule inexact @every", "schedule: '@every 7m'\ncommand: run\n"),
    ("schedule nonsense", "schedule: 'whenever'\ncommand: run\n"),
    ("timeout zero seconds", JOB + "timeout: 0s\n"),
    ("env reserved", JOB + "env: {JOBCTL_JOB: x}\n"),
    ("command blank", "schedule: '@daily'\ncommand: '   '\n"),
    ("command empty program", "schedule: '@daily'\ncommand: ['', x]\n"),
    ("output_limit over cap", JOB + "output_limit: 2GiB\n"),
    # ranges of values written with units: a pattern cannot compare numbers
    ("timeout 25d", JOB + "timeout: 25d\n"),
    ("history max_age 99999d", JOB + "history: {max_age: 99999d}\n"),
    ("retries backoff nan", JOB + "retries: {attempts: 1, backoff: .nan}\n"),
    ("timezone a region", JOB + "timezone: Europe\n"),
    ("user unknown", JOB + "user: no-such-user-jobctl\n"),
    ("user malformed", JOB + "user: 'bad user'\n"),
]


def _loader_accepts(jobs_dir: Path, write_job: Callable[[str, str], Path], text: str) -> bool:
    write_job("job.yaml", text)
    result = loader.load_dir(str(jobs_dir))
    return not result.problems and len(result.jobs) == 1


@pytest.mark.parametrize(("case", "text", "valid"), AGREE, ids=[c for c, _, _ in AGREE])
def test_schema_and_loader_agree(jobs_dir: Path, write_job: Callable[[str, str], Path],
                                 case: str, text: str, valid: bool) -> None:
    schema_says = VALIDATOR.is_valid(yaml.safe_load(text))
    loader_says = _loader_accepts(jobs_dir, write_job, text)
    assert (schema_says, loader_says) == (valid, valid)


@pytest.mark.parametrize(("case", "text"), LOADER_STRICTER, ids=[c for c, _ in LOADER_STRICTER])
def test_loader_is_stricter(jobs_dir: Path, write_job: Callable[[str, str], Path], case: str, text: str) -> None:
    assert VALIDATOR.is_valid(yaml.safe_load(text))
    assert not _loader_accepts(jobs_dir, write_job, text)


def _integer_branch(schema: dict) -> dict:
    return next(b for b in schema.get("oneOf", [schema]) if b.get("type") in ("integer", "number"))


def test_the_schema_bounds_are_the_ranges() -> None:
    """Every range of spec.RANGES is the schema's minimum/maximum of the key's number form."""
    props = job_schema()["properties"]
    for r in spec.RANGES:
        key, _, sub = r.key.partition(".")
        schema = props[key]
        if sub:
            if key == "requires":  # a list of items, each a name or an object
                schema = next(b for b in schema["oneOf"] if b.get("type") == "array")["items"]
            obj = next(b for b in schema.get("oneOf", [schema]) if b.get("type") == "object")
            schema = obj["properties"][sub]
        number = _integer_branch(schema)
        assert (number["minimum"], number["maximum"]) == (r.minimum, r.maximum), r.key
    assert _integer_branch(props["retries"])["maximum"] == spec.RANGE["retries.attempts"].maximum


def test_every_key_has_an_invalid_value_in_the_agreement_table() -> None:
    base = yaml.safe_load(JOB)
    keys = set()
    for _, text, valid in AGREE:
        if not valid:
            keys.update(k for k, v in yaml.safe_load(text).items() if k in spec.KEYS and base.get(k) != v)
    assert keys == set(spec.KEYS)
