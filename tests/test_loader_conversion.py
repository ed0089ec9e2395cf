"""Conversion traps: what a crontab converted by hand leaves in a job file gets a located hint.

``\\%`` kept in a command is a warning (the job is valid and runs); a ``: `` in an
unquoted command, a tab in the indentation and a list of schedules are errors
whose message names the fix.  Warnings come from the same pass as problems, in
``LoadResult.warnings``, shaped like them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import cron_oracle as oracle
import pytest

from jobctl.errors import Problem
from jobctl.jobs import loader

WriteJob = Callable[[str, "str | bytes"], Path]


def load(jobs_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Names of the valid jobs, the problems and the warnings, as printed with relative paths."""
    result = loader.load_dir(str(jobs_dir))

    def lines(found: list[Problem]) -> list[str]:
        return [str(p).replace(f"{jobs_dir}/", "") for p in sorted(found)]

    return [j.name for j in result.jobs], lines(result.problems), lines(result.warnings)


# --- \% kept from a crontab: a warning, the job still loads ---------------------------------

SHELL_ESCAPE = ("command has \\%, a crontab escape: jobctl never writes the command into the crontab, so % needs "
                "no escaping, and the shell keeps the backslash inside quotes ('+\\%F' stays +\\%F); write % "
                "instead of \\%")
ARGV_ESCAPE = ("command argument {n} has \\%, a crontab escape: a command list runs without a shell, so the "
               "program gets the backslash as written; % needs no escaping in jobctl: write % instead of \\%")


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        # plain, as pasted from the crontab line
        ("schedule: '@daily'\ncommand: tar czf /b/etc-$(date +\\%F).tgz /etc\n", "2:33", SHELL_ESCAPE),
        # single quotes keep the text as written
        ("schedule: '@daily'\ncommand: 'date \"+\\%F\"'\n", "2:18", SHELL_ESCAPE),
        # double quotes: \\% in YAML is \% in the command
        ("schedule: '@daily'\ncommand: \"date +\\\\%F\"\n", "2:18", SHELL_ESCAPE),
        # a block scalar: located on the line of the \%, not on the line of the key
        ("schedule: '@daily'\ncommand: |\n  cd /srv\n  mysqldump db > db-$(date +\\%a).sql\n", "4:29", SHELL_ESCAPE),
        # argv: located on the argument
        ("schedule: '@daily'\ncommand: [date, '+\\%F']\n", "2:19", ARGV_ESCAPE.format(n=2)),
        ("schedule: '@daily'\ncommand:\n  - date\n  - +\\%Y-\\%m\n", "4:6", ARGV_ESCAPE.format(n=2)),
    ],
)
def test_crontab_percent_escape_is_a_located_warning(write_job: WriteJob, jobs_dir: Path, text: str, where: str,
                                                     message: str) -> None:
    write_job("backup.yaml", text)
    jobs, problems, warnings = load(jobs_dir)
    assert (jobs, problems) == (["backup"], [])  # a warning never makes the job invalid
    assert warnings == [f"backup.yaml:{where}: job backup: {message}"]


@pytest.mark.parametrize(
    "command",
    ["date +%F", "'printf \"100%%\\n\"'", "[date, +%F]", "|\n  grep -c '\\d' f\n  echo 50%", "'echo \\ %'"],
)
def test_no_warning_without_a_crontab_escape(write_job: WriteJob, jobs_dir: Path, command: str) -> None:
    write_job("backup.yaml", f"schedule: '@daily'\ncommand: {command}\n")
    assert load(jobs_dir) == (["backup"], [], [])


def test_warnings_and_problems_come_from_the_same_pass(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '@daily'\ncommand: date +\\%s\n")
    write_job("b.yaml", "name: b1\nschedule: '@daily'\ncommand: [echo, '\\%']\ntimeout: soon\n---\n"
                        "name: b2\nschedule: '@hourly'\ncommand: echo \\%\n")
    write_job("c.yaml", "schedule: '@daily'\ncommand: ok\n")
    jobs, problems, warnings = load(jobs_dir)
    assert jobs == ["a", "b2", "c"]
    assert problems == ["b.yaml:4:10: job b1: timeout: 'soon' is not a duration; write e.g. 90s, 15m, 2h or 1h30m "
                        "(or whole seconds)"]
    assert warnings == [
        f"a.yaml:2:16: job a: {SHELL_ESCAPE}",
        f"b.yaml:3:18: job b1: {ARGV_ESCAPE.format(n=2)}",  # an invalid job is still warned about
        f"b.yaml:8:15: job b2: {SHELL_ESCAPE}",
    ]


def test_warnings_have_the_shape_of_problems(write_job: WriteJob, jobs_dir: Path) -> None:
    path = write_job("backup.yaml", "schedule: '@daily'\ncommand: date +\\%F\n")
    result = loader.load_dir(str(jobs_dir))
    assert result.warnings == [Problem(str(path), 2, 16, SHELL_ESCAPE, "backup")]
    # the API callers already use is unchanged
    assert [j.name for j in loader.load_jobs(str(jobs_dir))] == ["backup"]
    assert loader.LoadResult().warnings == []


def test_warnings_are_bounded_per_file(write_job: WriteJob, jobs_dir: Path) -> None:
    n = loader.MAX_PROBLEMS + 50
    write_job("many.yaml", "".join(f"---\nname: j{i}\nschedule: '@daily'\ncommand: date +\\%F\n" for i in range(n)))
    jobs, problems, warnings = load(jobs_dir)
    assert len(jobs) == n and problems == []
    assert len(warnings) == loader.MAX_PROBLEMS + 1
    assert any(f"more than {loader.MAX_PROBLEMS} warnings in this file; the rest are not listed" in w
               for w in warnings)


# --- ': ' in an unquoted command: the YAML error names the fix -------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("schedule: '@daily'\ncommand: curl -H Accept: text/plain http://localhost/\n",
         "2:24: YAML syntax error: mapping values are not allowed here; the value of command contains ': ' (a colon "
         "and a space), which YAML reads as a new key: quote the command, e.g. "
         "command: 'curl -H Accept: text/plain http://localhost/'"),
        # a single quote in the command is doubled in the example, as YAML wants it
        ("schedule: '@daily'\ncommand: echo it's: done\n",
         "2:19: YAML syntax error: mapping values are not allowed here; the value of command contains ': ' (a colon "
         "and a space), which YAML reads as a new key: quote the command, e.g. command: 'echo it''s: done'"),
        ("schedule: '@daily'\ncommand: echo ready:\n",
         "2:20: YAML syntax error: mapping values are not allowed here; the value of command ends in ':', which YAML "
         "reads as a new key: quote the command, e.g. command: 'echo ready:'"),
        # another key: "the value"
        ("schedule: '@daily'\ncommand: x\ndescription: Backup: nightly\n",
         "3:20: YAML syntax error: mapping values are not allowed here; the value of description contains ': ' (a "
         "colon and a space), which YAML reads as a new key: quote the value, e.g. "
         "description: 'Backup: nightly'"),
        # a plain value continued on the next line
        ("schedule: '@daily'\ncommand: /usr/bin/report --to ops\n  --subject Report: nightly\n",
         "3:19: YAML syntax error: mapping values are not allowed here; line 3 is indented more than command "
         "(line 2), so it continues command's value, and its ': ' (a colon and a space) reads as a new key: if it "
         "is a key of its own, indent it like command; otherwise quote the value, or write it as a block scalar "
         "(command: >- and the text on the lines below, indented)"),
    ],
)
def test_colon_in_an_unquoted_value(write_job: WriteJob, jobs_dir: Path, text: str, error: str) -> None:
    write_job("backup.yaml", text)
    assert load(jobs_dir) == ([], [f"backup.yaml:{error}"], [])


def test_the_quoted_example_is_valid(write_job: WriteJob, jobs_dir: Path) -> None:
    """Pasting the example of the fix gives the command as it was written."""
    write_job("backup.yaml", "schedule: '@daily'\ncommand: echo it's: done\n")
    message = load(jobs_dir)[1][0]
    write_job("backup.yaml", "schedule: '@daily'\n" + message.split("e.g. ", 1)[1] + "\n")
    result = loader.load_dir(str(jobs_dir))
    assert (result.problems, result.jobs[0].command) == ([], "echo it's: done")


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("[sh, -c, echo ready: go]", "2:19: job backup: command: list items must be plain values, not a mapping: the "
                                     "item contains ': ' (a colon and a space), which YAML reads as a key and its "
                                     "value; quote the item, e.g. 'echo ready: go'"),
        ("\n  - sh\n  - -c\n  - echo ready: go", "5:5: job backup: command: list items must be plain values, not a "
                                                 "mapping: the item contains ': ' (a colon and a space), which YAML "
                                                 "reads as a key and its value; quote the item, e.g. "
                                                 "'echo ready: go'"),
    ],
)
def test_colon_in_a_command_list_item(write_job: WriteJob, jobs_dir: Path, command: str, error: str) -> None:
    write_job("backup.yaml", f"schedule: '@daily'\ncommand: {command}\n")
    assert load(jobs_dir) == ([], [f"backup.yaml:{error}"], [])


# --- a tab in the indentation ---------------------------------------------------------------

TAB = "YAML indentation uses spaces, not tabs: line {n} is indented with a tab; replace it with spaces"


@pytest.mark.parametrize(
    ("text", "where", "extra"),
    [
        ("schedule: '@daily'\ncommand: x\nenv:\n\tA: b\n", "4:1", ""),
        ("schedule: '@daily'\ncommand: x\nenv:\n  A: b\n\tB: c\n", "5:1", ""),
        ("schedule: '@daily'\ncommand: |\n\techo one\n\techo two\n", "3:1", " (line 4 also starts with a tab)"),
        ("schedule: '@daily'\nretries:\n  \tattempts: 3\ncommand: x\n", "3:3", ""),
        ("\tschedule: '@daily'\n\tcommand: x\n\ttimeout: 1h\n", "1:1", " (lines 2, 3 also start with a tab)"),
    ],
)
def test_tab_in_indentation(write_job: WriteJob, jobs_dir: Path, text: str, where: str, extra: str) -> None:
    write_job("backup.yaml", text)
    line = where.split(":")[0]
    assert load(jobs_dir) == ([], [f"backup.yaml:{where}: {TAB.format(n=line)}{extra}"], [])


def test_tab_in_indentation_far_into_a_big_file(write_job: WriteJob, jobs_dir: Path) -> None:
    """Past what the pure-Python parser re-reads, libyaml's own error is reworded the same way."""
    filler = "# " + "x" * 77 + "\n"
    count = loader._REPARSE_CHARS // len(filler) + 10
    write_job("backup.yaml", "schedule: '@daily'\ncommand: x\n" + filler * count + "env:\n\tA: b\n")
    n = count + 4
    assert load(jobs_dir) == ([], [f"backup.yaml:{n}:1: {TAB.format(n=n)}"], [])


def test_tab_inside_a_value_is_not_indentation(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: \"0\t3 * * *\"\ncommand: |\n  printf 'a\\tb'\n  \techo indented\n")
    jobs, problems, _ = load(jobs_dir)
    assert (jobs, problems) == (["backup"], [])


# --- a schedule given as a list: one job per schedule -----------------------------------------

ONE_PER_SCHEDULE = ("schedule is a list, but a job has one schedule: one job per schedule. Give each schedule its own "
                    "job (a file each, or jobs separated by --- in one file, each with its own name:)")


@pytest.mark.parametrize(
    ("schedule", "where", "fix"),
    [
        ("\n  - '0 1 * * *'\n  - '0 13 * * *'", "2:3",
         "; these differ only in the hour, so one schedule runs when any of them does: schedule: '0 1,13 * * *'"),
        ("['15 3 * * mon', '15 3 * * thu', '15 3 * * sat']", "1:11",
         "; these differ only in the day of week, so one schedule runs when any of them does: "
         "schedule: '15 3 * * mon,thu,sat'"),
        ("['0 0 1 * *', '0 0 15 * *']", "1:11",
         "; these differ only in the day of month, so one schedule runs when any of them does: "
         "schedule: '0 0 1,15 * *'"),
        ("['@daily']", "1:11", "; for one schedule, write it without the list: schedule: '@daily'"),
        # no merged schedule when it would not mean the same
        ("['0 1 * * *', '30 13 * * *']", "1:11", ""),  # two fields differ
        ("['*/15 1 * * *', '0 1 * * *']", "1:11", ""),  # a * in the minute changes the DST rule
        ("['0 1 * * 1', '0 1 1 * 1']", "1:11", ""),  # a * in the day of month changes the day rule
        ("['@daily', '@hourly']", "1:11", ""),
        ("['0 1 * * *', '0 25 * * *']", "1:11", ""),  # one of them is invalid
        ("[x]", "1:11", ""),
    ],
)
def test_schedule_list(write_job: WriteJob, jobs_dir: Path, schedule: str, where: str, fix: str) -> None:
    write_job("backup.yaml", f"schedule: {schedule}\ncommand: x\n")
    assert load(jobs_dir) == ([], [f"backup.yaml:{where}: job backup: {ONE_PER_SCHEDULE}{fix}"], [])


@pytest.mark.parametrize(
    "items",
    [
        ["0 1 * * *", "0 13 * * *", "0 22 * * *"],
        ["15 3 * * mon", "15 3 * * thu"],
        ["0 0 1 * *", "0 0 15 * *"],
        ["0 0 1 * mon", "0 0 15 * mon"],  # neither day field starts with *: the day rule ORs them
        ["0 0 1 * mon", "0 0 1 * fri"],
        ["0 0 */2 * mon", "0 0 */2 * fri"],  # day of month starts with *: the day rule ANDs them
        ["0 0 * jan mon", "0 0 * jul mon"],
        ["5 */2 * * *", "10 */2 * * *"],
        ["0-10/5 4 * * *", "30 4 * * *"],
    ],
)
def test_a_merged_schedule_runs_exactly_when_one_of_the_list_does(items: list[str]) -> None:
    """Checked against Debian cron's own matcher (the oracle), minute by minute over a whole year's days."""
    merged, _ = loader._merge_schedules(items)
    entries = [oracle.parse_line(f"{t} true") for t in items]
    union = oracle.parse_line(f"{merged} true")
    minutes = sorted(set().union(*(e.minute for e in entries), union.minute))
    hours = sorted(set().union(*(e.hour for e in entries), union.hour))
    for minute, hour, mday, month, wday in itertools.product(minutes, hours, range(1, 32), range(1, 13), range(7)):
        expected = any(oracle.matches(e, minute, hour, mday, month, wday) for e in entries)
        assert oracle.matches(union, minute, hour, mday, month, wday) == expected, (minute, hour, mday, month, wday)
    # the DST class (cron's "wild" minute or hour) is the one of every item
    assert {oracle.is_wild(e) for e in entries} == {oracle.is_wild(union)}
