"""Where python-crontab reads a crontab otherwise than Debian's cron, which is why `jobctl import` does not use it.

The reference is the test suite's own reading of cron (tests/cron_oracle.py,
a port of Debian's entry.c and env.c, and do_command.c's % rule in
test_import.cron_split), over the real crontabs of tests/fixtures/crontabs.
Should python-crontab come to read these entries as cron does, these tests
fail, and import could read foreign crontabs through it again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

crontab = pytest.importorskip("crontab", reason="python-crontab is a test dependency (pip install -e '.[test]')")

from test_import import FIXTURES, cron_reading, cron_split, fixtures  # noqa: E402


def _pairs():
    """(fixture, cron's (command, input, settings), python-crontab's job) for every entry of every user crontab
    cron accepts, in order (python-crontab reads the user format only; it reads commented-out lines as disabled
    jobs)."""
    for row in fixtures():
        if row["accepts"] != "yes" or row["format"] != "user":
            continue
        data = (FIXTURES / row["file"]).read_bytes()
        ours = cron_reading(data, system=False)
        tab = crontab.CronTab(tab=data.decode("utf-8", "surrogateescape"))
        theirs = [job for job in tab if job.is_valid() and job.is_enabled()]
        assert len(theirs) == len(ours), row["file"]
        for (_, entry, settings), job in zip(ours, theirs, strict=True):
            command, stdin = cron_split(entry.command)
            yield row["file"], (command, stdin, settings), job


def test_where_an_entry_has_no_percent_and_no_hash_python_crontab_reads_the_command_cron_runs():
    checked = 0
    for name, (command, stdin, _), job in _pairs():
        if "%" in command or "#" in command or stdin is not None:
            continue
        assert job.command.strip() == command.strip(), name
        checked += 1
    assert checked >= 20


def test_python_crontab_loses_the_input_after_a_percent():
    lost = [(name, command) for name, (command, stdin, _), job in _pairs()
            if stdin is not None and job.command.strip() == command.strip()]
    assert lost, "no fixture entry feeds input through %: the edge is not exercised"


def test_python_crontab_reads_settings_as_cron_does_not(tmp_path: Path):
    """cron gives an entry the settings above it; python-crontab gives them to the entry below only."""
    text = "MAILTO=ops@example.com\nFOO=1\n0 1 * * * first\nFOO=2\n0 2 * * * second\n"
    [(_, _, first), (_, _, second)] = cron_reading(text.encode(), system=False)
    assert first == {"MAILTO": "ops@example.com", "FOO": "1"} and second == {"MAILTO": "ops@example.com", "FOO": "2"}
    jobs = list(crontab.CronTab(tab=text))
    assert dict(jobs[1].env) != second
