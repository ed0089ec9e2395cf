"""Job files → JobSpecs: directory rules, every key, every error with its exact location, hostile input."""

from __future__ import annotations

import os
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path

import pytest

from jobctl.errors import InvalidJobs, JobctlError, Problem
from jobctl.jobs import loader, spec

WriteJob = Callable[[str, "str | bytes"], Path]


def load(jobs_dir: Path) -> tuple[dict[str, spec.JobSpec], list[str]]:
    """The valid jobs by name, and every problem as printed, paths relative to the directory."""
    result = loader.load_dir(str(jobs_dir))
    problems = [str(p).replace(f"{jobs_dir}/", "") for p in sorted(result.problems)]
    return {job.name: job for job in result.jobs}, problems


BASE = {"schedule": '"@daily"', "command": '"true"'}


def job_text(snippet: str) -> str:
    """The snippet first, so its locations start on line 1, then the required keys it lacks."""
    key = snippet.split(":", 1)[0]
    return snippet + "\n" + "".join(f"{k}: {v}\n" for k, v in BASE.items() if k != key)


# --- every key: valid values --------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "attr", "expected"),
    [
        ("name: db-backup.v2_x", "name", "db-backup.v2_x"),
        ("name: " + "a" * 63, "name", "a" * 63),
        ("name: '007'", "name", "007"),
        ("description: Archive /etc", "description", "Archive /etc"),
        ("description: 'yes'", "description", "yes"),
        ('schedule: "*/15 * * * *"', "schedule.cron", "*/15 * * * *"),
        ('schedule: "0 9 * jan-mar mon-fri"', "schedule.cron", "0 9 * 1-3 1-5"),
        ("schedule: '@every 15m'", "schedule.cron", "*/15 * * * *"),
        ("schedule: '@every 2h'", "schedule.cron", "0 */2 * * *"),
        ("schedule: '@every 2h'", "schedule.text", "@every 2h"),
        ("schedule: '@weekly'", "schedule.cron", "0 0 * * 0"),
        ("schedule: '@reboot'", "schedule.cron", "@reboot"),
        ("command: tar -czf /tmp/etc.tgz /etc", "command", "tar -czf /tmp/etc.tgz /etc"),
        ("command: |\n  echo one\n  echo two", "command", "echo one\necho two\n"),
        ("command: [find, /var/tmp, -name, '*.tmp']", "command", ("find", "/var/tmp", "-name", "*.tmp")),
        ("command: [sleep, 5]", "command", ("sleep", "5")),
        # YAML 1.1 would read these as 420, 90, 1.1 and 31: arguments keep their text.
        ("command: [chmod, 0644, f, 1:30, 1.10, 0x1f]", "command", ("chmod", "0644", "f", "1:30", "1.10", "0x1f")),
        ("shell: /bin/bash", "shell", "/bin/bash"),
        ("working_dir: /srv/app", "working_dir", "/srv/app"),
        ("env:\n  PGHOST: db\n  PORT: 5432\n  MODE: 0644\n  VERSION: 1.10\n  'ON': x", "env",
         {"PGHOST": "db", "PORT": "5432", "MODE": "0644", "VERSION": "1.10", "ON": "x"}),
        ("env:\n  ON: x\n  NO: y", "env", {"ON": "x", "NO": "y"}),  # names as written, not booleans
        ("env: {}", "env", {}),
        ("timeout: 90s", "timeout", 90),
        ("timeout: 15m", "timeout", 900),
        ("timeout: 2h", "timeout", 7200),
        ("timeout: 1h30m", "timeout", 5400),
        ("timeout: 1d", "timeout", 86400),
        ("timeout: 90", "timeout", 90),
        ("kill_grace: 30s", "kill_grace", 30),
        ("kill_grace: 0", "kill_grace", 0),
        ("retries: 3", "retries", spec.Retries(attempts=3)),
        ("retries: 0", "retries", spec.Retries(attempts=0)),
        ("retries: {attempts: 2}", "retries", spec.Retries(attempts=2, delay=10, backoff=2.0, max_delay=600)),
        ("retries:\n  attempts: 3\n  delay: 1m\n  backoff: 1.5\n  max_delay: 10m", "retries",
         spec.Retries(attempts=3, delay=60, backoff=1.5, max_delay=600)),
        ("retries: {attempts: 1, delay: 30, backoff: 3}", "retries", spec.Retries(attempts=1, delay=30, backoff=3.0)),
        ("concurrency: forbid", "concurrency", "forbid"),
        ("concurrency: allow", "concurrency", "allow"),
        ("concurrency: replace", "concurrency", "replace"),
        ("concurrency: wait", "concurrency", "wait"),
        ("output_limit: 512KiB", "output_limit", 512 * 1024),
        ("output_limit: 1MiB", "output_limit", 1024 * 1024),
        ("output_limit: 10MB", "output_limit", 10_000_000),
        ("output_limit: 1GiB", "output_limit", 1024**3),
        ("output_limit: 4096", "output_limit", 4096),
        ("output_limit: 0", "output_limit", 0),
        ("enabled: false", "enabled", False),
        ("enabled: true", "enabled", True),
        ("enabled: yes", "enabled", True),  # YAML 1.1 booleans
        ("tags: [backup, nightly, backup]", "tags", ("backup", "nightly")),
        ("tags: [db:main, a.b_c-d]", "tags", ("db:main", "a.b_c-d")),
        ("tags: []", "tags", ()),
        ("user: root", "user", "root"),
        ("timezone: Europe/Berlin", "timezone", "Europe/Berlin"),
        ("timezone: UTC", "timezone", "UTC"),
        ("jitter: 5m", "jitter", 300),
        ("jitter: 0", "jitter", 0),
        ("catch_up: 6h", "catch_up", 21600),
        ("catch_up_mode: each", "catch_up_mode", "each"),
        ("catch_up_mode: latest", "catch_up_mode", "latest"),
        ("catch_up_max: 1", "catch_up_max", 1),
        ("catch_up_max: 10000", "catch_up_max", 10000),
        ("baseline: {min_runs: 10, runs: 50, slow: 4, short: 0.2}", "baseline",
         spec.Baseline(min_runs=10, runs=50, slow=4.0, short=0.2)),
        ("baseline: {slow: 1.5}", "baseline.slow", 1.5),
        ("lock_group: warehouse", "lock_group", "warehouse"),
        ("requires: other", "requires", (spec.Requirement("other"),)),
        ("requires:\n  - {job: other, status: failed, within: 2h}\n  - other", "requires",
         (spec.Requirement("other", "failed", 7200), spec.Requirement("other"))),
        ("then: other", "then", ("other",)),
        ("then: [other, other]", "then", ("other",)),
        ("on_failure: [other]", "on_failure", ("other",)),
        ("notify: {when: [slow, short, overdue, missed], ping: 'https://x.example'}", "notify.when",
         ("slow", "short", "overdue", "missed")),
        ("params: {region: {required: true, pattern: '[a-z]+', description: where}, note: null, n: {default: 05}}",
         "params", {"region": spec.Param(required=True, pattern="[a-z]+", description="where"), "note": spec.Param(),
                    "n": spec.Param(default="05")}),
        ("max_queued: 1", "max_queued", 1),
        ("max_queued: 100000", "max_queued", 100000),
        ("notify: {webhook: 'https://hooks.example.com/x'}", "notify",
         spec.Notify(webhook="https://hooks.example.com/x")),
        ("notify:\n  when: [failure, recovery]\n  after_failures: 2\n  email: ops@example.com\n"
         "  ping: https://hc-ping.com/u\n  command: /usr/local/bin/alert",
         "notify", spec.Notify(when=("failure", "recovery"), after_failures=2, email=("ops@example.com",),
                               ping="https://hc-ping.com/u", command="/usr/local/bin/alert")),
        ("history: {keep: 100, max_age: 30d}", "history", spec.History(keep=100, max_age=30 * 86400)),
        ("history: {keep: 5}", "history", spec.History(keep=5)),
        ("cron_mail: failure", "cron_mail", "failure"),
        ("cron_mail: always", "cron_mail", "always"),
        ("cron_mail: never", "cron_mail", "never"),
        ("cron_mail: 'never'", "cron_mail", "never"),
    ],
)
def test_valid_value(write_job: WriteJob, jobs_dir: Path, snippet: str, attr: str, expected: object) -> None:
    write_job("backup.yaml", job_text(snippet))
    write_job("other.yaml", 'schedule: "@daily"\ncommand: "true"\n')  # what then, on_failure and requires name
    jobs, problems = load(jobs_dir)
    assert problems == []
    (job,) = [j for name, j in jobs.items() if name != "other"]
    assert attrgetter(attr)(job) == expected


def test_defaults_of_every_optional_key(write_job: WriteJob, jobs_dir: Path) -> None:
    path = write_job("backup.yaml", 'schedule: "@daily"\ncommand: "true"\n')
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert jobs["backup"] == spec.JobSpec(
        name="backup", schedule=spec.schedule_mod.parse("@daily"), command="true", description=None,
        shell="/bin/sh", working_dir=None, env={}, timeout=None, kill_grace=10, retries=spec.Retries(),
        concurrency="forbid", output_limit=1024 * 1024, enabled=True, tags=(), user=None, source=f"{path}:1",
    )


def test_source_is_the_line_of_each_document(write_job: WriteJob, jobs_dir: Path) -> None:
    path = write_job("two.yaml", "name: a\nschedule: '@daily'\ncommand: x\n---\n"
                                 "name: b\nschedule: '@daily'\ncommand: y\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert jobs["a"].source == f"{path}:1"
    assert jobs["b"].source == f"{path}:5"


# --- every key: invalid values, with line and column ---------------------------------

NAME_RULE = ("is not a valid job name; use 1-63 lowercase letters, digits, '_', '.' or '-', "
             "starting with a letter or digit")
NOT_A_DURATION = "is not a duration; write e.g. 90s, 15m, 2h or 1h30m (or whole seconds)"
NOT_A_SIZE = "is not a size; write e.g. 512KiB, 1MiB or 10MB (or whole bytes)"
TAG_RULE = "is not valid; use letters, digits, '_', '.', ':' or '-'"
NUL = "contains a NUL byte (\\0), which no path, argument or environment variable can hold; remove it"


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        # name
        ("name: Backup", f"1:7: job Backup: name: 'Backup' {NAME_RULE}"),
        ("name: -backup", f"1:7: job -backup: name: '-backup' {NAME_RULE}"),
        ("name: back up", f"1:7: job back up: name: 'back up' {NAME_RULE}"),
        ("name: " + "a" * 64, f"1:7: job {'a' * 64}: name: '{'a' * 64}' {NAME_RULE}"),
        ("name: 42", "1:7: job 42: name must be a string, not a number (quote it)"),
        ("name: [a, b]", "1:7: job backup: name must be a value, not a list"),
        ("name:", "1:6: job backup: name is empty; give it a value or remove the key"),
        # description
        ("description: 12", "1:14: job backup: description must be a string, not a number (quote it)"),
        ("description: [a]", "1:14: job backup: description must be a value, not a list"),
        ("description: {a: b}", "1:14: job backup: description must be a value, not a mapping"),
        ("description: 2024-02-30",
         "1:14: job backup: description: '2024-02-30' is not a valid !!timestamp; quote it if it is text"),
        ("description: !!float abc",
         "1:14: job backup: description: 'abc' is not a valid !!float; quote it if it is text"),
        ("description: !custom x",
         "1:14: job backup: description: could not determine a constructor for the tag '!custom'"),
        # schedule (the parser's messages are covered in test_schedule)
        ('schedule: "61 * * * *"',
         "1:11: job backup: schedule '61 * * * *': minute field: 61 is out of range; use 0-59"),
        ('schedule: "* * * *"', "1:11: job backup: schedule '* * * *': expected 5 fields (minute hour day-of-month "
                                "month day-of-week), got 4"),
        ('schedule: "*/0 * * * *"', "1:11: job backup: schedule '*/0 * * * *': minute field '*/0': a step of 0 never "
                                    "advances; use 1 or more"),
        ('schedule: "0 0 31 2 *"', "1:11: job backup: schedule '0 0 31 2 *': never fires: no month in this "
                                   "expression has those days (31 of feb)"),
        ("schedule: '@every 7m'", "1:11: job backup: schedule: @every 7m: cron cannot run exactly every 7m (its steps "
                                  "restart every hour, day and month); use @every 6m or @every 10m, or write a cron "
                                  "expression for the times you want"),
        ("schedule: '@dayly'", "1:11: job backup: schedule '@dayly': unknown schedule '@dayly'; did you mean "
                               "@daily? use a 5-field cron expression, @every <duration>, or one of @yearly, "
                               "@annually, @monthly, @weekly, @daily, @midnight, @hourly, @reboot"),
        ("schedule: ''", "1:11: job backup: schedule is empty; write a cron expression such as '*/15 * * * *'"),
        ("schedule: 5", "1:11: job backup: schedule must be a cron expression in quotes, e.g. '*/15 * * * *', "
                        "not a number (quote it)"),
        ("schedule: [a]", "1:11: job backup: schedule is a list, but a job has one schedule: one job per schedule. "
                          "Give each schedule its own job (a file each, or jobs separated by --- in one file, each "
                          "with its own name:)"),
        ("schedule:", "1:10: job backup: schedule is empty; give it a value or remove the key"),
        # command
        ("command: ''", "1:10: job backup: command is empty"),
        ("command: '   '", "1:10: job backup: command is empty"),
        ('command: "a\\0b"', f"1:10: job backup: command: {NUL}"),
        ("command: []", "1:10: job backup: command list is empty; give the program and its arguments"),
        ("command: [ls, [a]]", "1:15: job backup: command: list items must be plain values, not a list"),
        ("command: [ls, true]", "1:15: job backup: command argument must be a string, not a boolean"),
        ("command: [ls, ~]", "1:15: job backup: command argument must be a string, not empty"),
        ('command: [echo, "a\\0b"]', f"1:17: job backup: command argument {NUL}"),
        ("command: ['', x]", "1:11: job backup: the program (first element) is empty"),
        ("command: {a: b}", "1:10: job backup: command must be a value or a list, not a mapping"),
        ("command: 5", "1:10: job backup: command must be a string (run by the shell) or a list of strings (argv), "
                       "not a number (quote it)"),
        ("command:", "1:9: job backup: command is empty; give it a value or remove the key"),
        # shell, working_dir
        ("shell: bash", "1:8: job backup: shell: 'bash' is not an absolute path; start it with /"),
        ("shell: 1", "1:8: job backup: shell must be a string, not a number (quote it)"),
        ("shell: [/bin/sh]", "1:8: job backup: shell must be a value, not a list"),
        ("working_dir: srv/app", "1:14: job backup: working_dir: 'srv/app' is not an absolute path; start it with /"),
        ("working_dir: {a: b}", "1:14: job backup: working_dir must be a value, not a mapping"),
        # env
        ("env: [A, B]", "1:6: job backup: env must be a mapping, not a list"),
        ("env: A=1", "1:6: job backup: env must be a mapping, not a value"),
        ("env:\n  1X: a", "2:3: job backup: '1X' is not a valid environment variable name"),
        ("env:\n  MY-VAR: a", "2:3: job backup: 'MY-VAR' is not a valid environment variable name"),
        ("env:\n  JOBCTL_RUN_ID: x",
         "2:3: job backup: JOBCTL_RUN_ID is set by jobctl for every run; choose another name"),
        ("env:\n  DEBUG: yes", "2:10: job backup: env DEBUG: a boolean is not a string; quote it "
                               "(YAML reads yes/no/on/off as booleans)"),
        ("env:\n  A: ~",
         "2:6: job backup: env A: empty is not a string; quote it (YAML reads yes/no/on/off as booleans)"),
        ("env:\n  A: [1]", "2:6: job backup: env A: must be a plain value, not a list"),
        ('env:\n  A: "a\\0b"', f"2:6: job backup: env A: {NUL}"),
        ("env:\n  ? [A]\n  : 1", "2:5: job backup: env keys must be plain names, not a list"),
        # timeout, kill_grace
        ("timeout: 0", "1:10: job backup: timeout 0 would kill the job at once; remove the key for no timeout"),
        ("timeout: 0s", "1:10: job backup: timeout 0 would kill the job at once; remove the key for no timeout"),
        ("timeout: -5", "1:10: job backup: timeout: -5 is negative; durations are 0 or more"),
        ("timeout: 1.5", f"1:10: job backup: timeout: 1.5 {NOT_A_DURATION}"),
        ("timeout: '90'", f"1:10: job backup: timeout: '90' {NOT_A_DURATION}"),
        ("timeout: 15 min", f"1:10: job backup: timeout: '15 min' {NOT_A_DURATION}"),
        ("timeout: 1h 30m", f"1:10: job backup: timeout: '1h 30m' {NOT_A_DURATION}"),
        ("timeout: true", "1:10: job backup: timeout: True is not a duration; write e.g. 90s, 15m, 2h or 1h30m"),
        ("timeout: [1m]", "1:10: job backup: timeout must be a value, not a list"),
        ("kill_grace: soon", f"1:13: job backup: kill_grace: 'soon' {NOT_A_DURATION}"),
        ("kill_grace: -1", "1:13: job backup: kill_grace: -1 is negative; durations are 0 or more"),
        # retries
        ("retries: -1", "1:10: job backup: retries must be a whole number 0 or more, not -1"),
        ("retries: '3'", "1:10: job backup: retries must be a whole number 0 or more, not '3'"),
        ("retries: true", "1:10: job backup: retries must be a whole number 0 or more, not True"),
        ("retries: 1.5", "1:10: job backup: retries must be a whole number 0 or more, not 1.5"),
        ("retries: [3]", "1:10: job backup: retries must be a value or a mapping, not a list"),
        ("retries: {}", "1:10: job backup: retries needs attempts, e.g. {attempts: 3, delay: 30s}"),
        ("retries: {delay: 30s}", "1:10: job backup: retries needs attempts, e.g. {attempts: 3, delay: 30s}"),
        ("retries: {attemps: 3}", "1:11: job backup: unknown retries key 'attemps'; did you mean 'attempts'?"),
        ("retries: {attempts: 3, jitter: 1}",
         "1:24: job backup: unknown retries key 'jitter'; use attempts, delay, backoff, max_delay"),
        ("retries: {attempts: -1}", "1:21: job backup: retries must be a whole number 0 or more, not -1"),
        ("retries: {attempts: 3, backoff: 0.5}",
         "1:33: job backup: retries backoff must be a number 1 or more, not 0.5"),
        ("retries: {attempts: 3, backoff: yes}",
         "1:33: job backup: retries backoff must be a number 1 or more, not True"),
        ("retries: {attempts: 3, delay: soon}", f"1:31: job backup: retries delay: 'soon' {NOT_A_DURATION}"),
        ("retries: {attempts: 3, max_delay: -1}",
         "1:35: job backup: retries max_delay: -1 is negative; durations are 0 or more"),
        ("retries: {attempts: 3, attempts: 4}",
         "1:24: job backup: duplicate key 'attempts' (first at line 1); remove one"),
        ("retries: {attempts: [3]}", "1:21: job backup: retries attempts: must be a plain value, not a list"),
        ("retries:\n  attempts: 3\n  delay: !!int zz", "3:10: job backup: retries: 'zz' is not a valid !!int; "
                                                      "quote it if it is text"),
        # concurrency
        ("concurrency: sometimes", "1:14: job backup: concurrency: 'sometimes' is not a concurrency policy; "
                                   "use one of forbid, allow, replace, wait"),
        ("concurrency: Forbid", "1:14: job backup: concurrency: 'Forbid' is not a concurrency policy; "
                                "use one of forbid, allow, replace, wait"),
        ("concurrency: 1", "1:14: job backup: concurrency must be a string, not a number (quote it)"),
        # output_limit
        ("output_limit: 1.5MiB", f"1:15: job backup: output_limit: '1.5MiB' {NOT_A_SIZE}"),
        ("output_limit: 1mb", f"1:15: job backup: output_limit: '1mb' {NOT_A_SIZE}"),
        ("output_limit: 2GiB", "1:15: job backup: output_limit 2GiB is out of range (0 to 1GiB); use 1GiB or less"),
        ("output_limit: -1", "1:15: job backup: output_limit: -1 is negative; sizes are 0 or more"),
        ("output_limit: false", "1:15: job backup: output_limit: False is not a size; write e.g. 512KiB or 1MiB"),
        # enabled
        ("enabled: 'true'", "1:10: job backup: enabled must be true or false, not 'true'"),
        ("enabled: 1", "1:10: job backup: enabled must be true or false, not 1"),
        ("enabled: !!bool maybe", "1:10: job backup: enabled: 'maybe' is not a valid !!bool; quote it if it is text"),
        # tags
        ("tags: backup", "1:7: job backup: tags must be a list, not a value"),
        ("tags: {a: b}", "1:7: job backup: tags must be a list, not a mapping"),
        ("tags: [ok, -bad]", f"1:12: job backup: tag '-bad' {TAG_RULE}"),
        ("tags: [ok, two words]", f"1:12: job backup: tag 'two words' {TAG_RULE}"),
        ("tags: [1]", f"1:8: job backup: tag 1 {TAG_RULE}"),
        ("tags: [[a]]", "1:8: job backup: tags: list items must be plain values, not a list"),
        # user
        ("user: no-such-user-jobctl", "1:7: job backup: user 'no-such-user-jobctl' does not exist on this host; "
                                      "create it or fix the name"),
        ("user: 'bad user'", "1:7: job backup: user: 'bad user' is not a valid user name"),
        ("user: 0", "1:7: job backup: user must be a string, not a number (quote it)"),
        # timezone
        ("timezone: Europe/Berln", "1:11: job backup: timezone: 'Europe/Berln' is not a known time zone; "
                                   "did you mean 'Europe/Berlin'?"),
        ("timezone: CEST", "1:11: job backup: timezone: 'CEST' is not a known time zone; "
                           "use an IANA name such as Europe/Berlin or UTC"),
        ("timezone: 1", "1:11: job backup: timezone must be a string, not a number (quote it)"),
        # jitter, catch_up
        ("jitter: soon", f"1:9: job backup: jitter: 'soon' {NOT_A_DURATION}"),
        ("catch_up: 0", "1:11: job backup: catch_up must be longer than 0s; remove the key to turn it off"),
        ("catch_up: [6h]", "1:11: job backup: catch_up must be a value, not a list"),
        ("catch_up_mode: every", "1:16: job backup: catch_up_mode: 'every' is not a catch_up_mode; use one of "
                                 "latest, each"),
        ("catch_up_mode: yes", "1:16: job backup: catch_up_mode must be one of latest, each, not a boolean"),
        ("catch_up_max: 0", "1:15: job backup: catch_up_max 0 is out of range (1 to 10000); use 1 or more"),
        ("catch_up_max: 1.5", "1:15: job backup: catch_up_max must be a whole number of runs, not a number"),
        # baseline, lock_group, requires, then, on_failure
        ("baseline: {min_runs: 3}", "1:22: job backup: baseline min_runs 3 is out of range (5 to 1000); use 5 or more"),
        ("baseline: {slow: 1}", "1:18: job backup: baseline slow 1 is out of range (1.5 to 100); use 1.5 or more"),
        ("baseline: {runs: 5, min_runs: 10}", "1:18: job backup: baseline runs 5 is fewer than min_runs 10: nothing "
                                              "would ever be judged; use runs: 10 or more"),
        ("baseline: {sloww: 2}", "1:12: job backup: unknown baseline key 'sloww'; did you mean 'slow'?"),
        ("lock_group: DB!", "1:13: job backup: lock_group: 'DB!' is not a valid lock group name; use 1-63 lowercase "
                            "letters, digits, '_', '.' or '-', starting with a letter or digit"),
        ("requires: [{job: nosuch, status: ok}]", "1:12: job backup: requires: 'ok' is not a required status; use one "
                                                  "of succeeded, failed, finished"),
        ("requires: [{job: nosuch, within: 0}]", "1:12: job backup: requires within must be longer than 0s; remove "
                                                 "the key to turn it off"),
        ("requires: [{status: failed}]", "1:12: job backup: requires: each item names a job, e.g. {job: extract, "
                                         "status: succeeded, within: 2h}"),
        ("requires: [{job: backup}]", "1:12: job backup: requires: 'backup' is this job itself; a job cannot wait "
                                      "for its own runs"),
        ("requires: [[x]]", "1:12: job backup: requires: list items must be plain values or mappings, not a list"),
        ("then: [Other]", "1:8: job backup: then: 'Other' is not a valid job name; use 1-63 lowercase letters, "
                          "digits, '_', '.' or '-', starting with a letter or digit"),
        ("then: []", "1:7: job backup: then is an empty list; name at least one job, or remove the key"),
        ("then: [nosuch]", "1:8: job backup: then: no job named 'nosuch'; name a job of this directory"),
        ("on_failure: [backup]", "1:14: job backup: on_failure: backup -> backup is a cycle: a run would start "
                                 "itself again without end; remove one of these links"),
        # params, max_queued
        ("params: {Region: {}}", "1:10: job backup: params: 'Region' is not a valid parameter name; use 1-63 "
                                 "lowercase letters, digits or '_', starting with a letter (the job gets it as "
                                 "JOBCTL_PARAM_<NAME>)"),
        ("params: {r: {pattern: '[a-z'}}", "1:13: job backup: params r: pattern '[a-z' is not a regular expression: "
                                           "unterminated character set at position 0"),
        ("params: {r: {default: EU, pattern: '[a-z]+'}}", "1:13: job backup: params r: default 'EU' does not match "
                                                          "its pattern '[a-z]+'"),
        ("params: {r: {required: true, default: x}}", "1:13: job backup: params r: required with a default is never "
                                                      "missing; remove one of them"),
        ("params: {r: {requird: true}}", "1:13: job backup: params r: unknown key 'requird'; use required, default, "
                                         "pattern, description"),
        ("params: {r: [1]}", "1:13: job backup: params r: must be a mapping of plain values, not a list"),
        ("params: {r: {required: maybe}}", "1:13: job backup: params r: must be true or false, not 'maybe'"),
        ("max_queued: 0", "1:13: job backup: max_queued 0 is out of range (1 to 100000); use 1 or more"),
        ("max_queued: 1.5", "1:13: job backup: max_queued must be a whole number of requests, not a number"),
        # notify
        ("notify: {on: [failure], webhook: 'https://x.example'}",
         "1:10: job backup: unknown notify key 'on'; the key is 'when' (YAML 1.1 reads 'on' as true)"),
        ("notify: {when: [failure]}",
         "1:9: job backup: notify needs at least one of command, webhook, email, ping"),
        ("notify: {when: [sometimes], ping: 'https://x.example'}",
         "1:16: job backup: notify when: 'sometimes' is not an event; use a list of failure, recovery, success, "
         "slow, short, overdue, missed, e.g. [failure, recovery]"),
        ("notify: {webhook: 'ftp://x'}",
         "1:19: job backup: notify webhook: 'ftp://x' is not an http:// or https:// URL"),
        ("notify: {email: not-an-address}",
         "1:17: job backup: notify email: 'not-an-address' is not an e-mail address"),
        ("notify: {after_failures: 0, ping: 'https://x.example'}",
         "1:26: job backup: notify after_failures: a whole number 1 or more"),
        ("notify: yes", "1:9: job backup: notify must be a mapping, not a value"),
        # history
        ("history: {keep: 0}", "1:17: job backup: history keep: a whole number of runs, 1 or more"),
        ("history: {max_age: forever}",
         f"1:20: job backup: history max_age: 'forever' {NOT_A_DURATION}"),
        ("history: {keepp: 3}", "1:11: job backup: unknown history key 'keepp'; use keep and max_age"),
        # cron_mail: YAML 1.1 reads no/off and yes/on as booleans
        ("cron_mail: no", "1:12: job backup: cron_mail must be one of failure, always, never, not a boolean (YAML "
                          "reads no, off and false as one); write never"),
        ("cron_mail: on", "1:12: job backup: cron_mail must be one of failure, always, never, not a boolean (YAML "
                          "reads yes, on and true as one); write always"),
        ("cron_mail: Failure", "1:12: job backup: cron_mail: 'Failure' is not a cron_mail setting; use one of "
                               "failure, always, never; did you mean 'failure'?"),
        ("cron_mail: errors", "1:12: job backup: cron_mail: 'errors' is not a cron_mail setting; use one of "
                              "failure, always, never"),
        ("cron_mail: [failure]", "1:12: job backup: cron_mail must be a value, not a list"),
        ("cron_mail: 1", "1:12: job backup: cron_mail must be one of failure, always, never, not a number"),
    ],
)
def test_invalid_value(write_job: WriteJob, jobs_dir: Path, snippet: str, error: str) -> None:
    write_job("backup.yaml", job_text(snippet))
    jobs, problems = load(jobs_dir)
    assert problems == [f"backup.yaml:{error}"]
    assert jobs == {}


def test_every_key_has_valid_and_invalid_cases() -> None:
    """The two tables above cover every key of spec.FIELDS."""
    for table in (test_valid_value, test_invalid_value):
        (mark,) = table.pytestmark
        keys = {case[0].split(":", 1)[0] for case in mark.args[1]}
        assert keys == set(spec.KEYS), table.__name__


# --- unknown keys, duplicate keys, missing keys ------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "error"),
    [
        ("timout: 5m", "1:1: job backup: unknown key 'timout'; did you mean 'timeout'?"),
        ("Command: x", "1:1: job backup: unknown key 'Command'; did you mean 'command'?"),
        ("workdir: /srv", "1:1: job backup: unknown key 'workdir'; did you mean 'working_dir'?"),
        ("colour: red", "1:1: job backup: unknown key 'colour'; known keys: name, description, schedule, command, "
                        "shell, working_dir, env, timeout, kill_grace, retries, concurrency, output_limit, enabled, "
                        "tags, user, timezone, jitter, catch_up, catch_up_mode, catch_up_max, notify, history, "
                        "cron_mail, baseline, lock_group, requires, then, on_failure, params, max_queued"),
        ("[a]: 1", "1:1: job backup: job keys must be plain names, not a list"),
        ("<<: {timeout: 5m}", "1:1: job backup: YAML merge keys (<<) are not supported; put shared values in "
                              "_defaults.yaml"),
    ],
)
def test_unknown_key(write_job: WriteJob, jobs_dir: Path, snippet: str, error: str) -> None:
    write_job("backup.yaml", job_text(snippet))
    jobs, problems = load(jobs_dir)
    assert problems == [f"backup.yaml:{error}"]
    assert jobs == {}


def test_duplicate_top_level_key(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", 'schedule: "@daily"\ncommand: a\ntimeout: 5m\ncommand: b\n')
    assert load(jobs_dir) == ({}, [
        "backup.yaml:4:1: job backup: duplicate key 'command' (first at line 2); remove one",
    ])


def test_duplicate_key_inside_env(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", 'schedule: "@daily"\ncommand: a\nenv:\n  A: "1"\n  B: "2"\n  A: "3"\n')
    assert load(jobs_dir) == ({}, ["backup.yaml:6:3: job backup: duplicate key 'A' (first at line 4); remove one"])


def test_missing_required_keys(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "# a comment\ndescription: nothing to run\n")
    assert load(jobs_dir)[1] == [
        "backup.yaml:2:1: job backup: missing required key 'command'",
        "backup.yaml:2:1: job backup: missing required key 'schedule'",
    ]


def test_every_error_of_a_job_is_reported(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", 'schedule: "61 * * * *"\ncommand: x\nshell: sh\ntimeout: 0\ncolor: red\n')
    assert load(jobs_dir)[1] == [
        "backup.yaml:1:11: job backup: schedule '61 * * * *': minute field: 61 is out of range; use 0-59",
        "backup.yaml:3:8: job backup: shell: 'sh' is not an absolute path; start it with /",
        "backup.yaml:4:10: job backup: timeout 0 would kill the job at once; remove the key for no timeout",
        "backup.yaml:5:1: job backup: unknown key 'color'; known keys: name, description, schedule, command, "
        "shell, working_dir, env, timeout, kill_grace, retries, concurrency, output_limit, enabled, tags, user, "
        "timezone, jitter, catch_up, catch_up_mode, catch_up_max, notify, history, cron_mail, baseline, "
        "lock_group, requires, then, on_failure, params, max_queued",
    ]


def test_every_error_of_every_file_is_reported(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", 'schedule: "@daily"\ncommand: x\ntimeout: soon\n')
    write_job("b.yaml", "schedule: @daily\ncommand: x\n")
    write_job("c.yaml", "")
    write_job("d.yaml", 'schedule: "@daily"\ncommand: ok\n')
    jobs, problems = load(jobs_dir)
    assert problems == [
        f"a.yaml:3:10: job a: timeout: 'soon' {NOT_A_DURATION}",
        "b.yaml:1:11: YAML syntax error: found character '@' that cannot start any token; "
        "values starting with '@' must be quoted, e.g. schedule: \"@daily\"",
        "c.yaml:1:1: no job in this file; add a job mapping or delete the file",
    ]
    assert list(jobs) == ["d"]


def test_load_jobs_raises_with_every_problem(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '@daily'\n")
    write_job("b.yaml", "command: x\n")
    with pytest.raises(InvalidJobs) as err:
        loader.load_jobs(str(jobs_dir))
    assert err.value.message == "2 problems in job files"
    assert err.value.lines() == [
        f"{jobs_dir}/a.yaml:1:1: job a: missing required key 'command'",
        f"{jobs_dir}/b.yaml:1:1: job b: missing required key 'schedule'",
    ]


def test_load_jobs_returns_specs(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert [j.name for j in loader.load_jobs(str(jobs_dir))] == ["a"]


def test_problem_format() -> None:
    assert str(Problem("/j/a.yaml", 3, 9, "bad", "backup")) == "/j/a.yaml:3:9: job backup: bad"
    assert str(Problem("/j/a.yaml", 1, 1, "binary file")) == "/j/a.yaml:1:1: binary file"


# --- the directory -----------------------------------------------------------------------


def test_files_read_in_sorted_order(write_job: WriteJob, jobs_dir: Path) -> None:
    for name in ("c.yml", "a.yaml", "b.yaml"):
        write_job(name, "schedule: '@daily'\ncommand: x\n")
    result = loader.load_dir(str(jobs_dir))
    assert [j.name for j in result.jobs] == ["a", "b", "c"]
    assert result.files == [str(jobs_dir / n) for n in ("a.yaml", "b.yaml", "c.yml")]


def test_ignored_files(write_job: WriteJob, jobs_dir: Path) -> None:
    broken = "this: is: not: yaml: [\n"
    write_job(".hidden.yaml", broken)
    write_job("_other.yaml", broken)
    write_job("_other.yml", broken)
    write_job("notes.txt", broken)
    write_job("backup.yaml.orig", broken)
    write_job("job.yaml", "schedule: '@daily'\ncommand: x\n")
    result = loader.load_dir(str(jobs_dir))
    assert result.problems == []
    assert [j.name for j in result.jobs] == ["job"]
    assert result.files == [str(jobs_dir / "job.yaml")]


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(JobctlError) as err:
        loader.load_dir(str(missing))
    assert err.value.message == (f"jobs directory {missing} does not exist; create it (jobctl init {missing}) "
                                 "or point --jobs-dir / JOBCTL_JOBS_DIR at yours")


def test_directory_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(JobctlError) as err:
        loader.load_dir(str(path))
    assert err.value.message == f"jobs directory {path} is not a directory"


def test_empty_directory(jobs_dir: Path) -> None:
    result = loader.load_dir(str(jobs_dir))
    assert (result.jobs, result.problems, result.files) == ([], [], [])


def test_a_subdirectory_named_like_a_job_file(jobs_dir: Path) -> None:
    (jobs_dir / "sub.yaml").mkdir()
    assert load(jobs_dir)[1] == ["sub.yaml:1:1: a directory, not a regular file; job files are regular files: move it "
                                 "out of the jobs directory or rename it so that its name does not end in .yaml or "
                                 ".yml"]


# --- documents and names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "# only a comment\n", "---\n", "---\n---\n...\n", "~\n"],
)
def test_a_file_without_a_job(write_job: WriteJob, jobs_dir: Path, text: str) -> None:
    write_job("empty.yaml", text)
    assert load(jobs_dir) == ({}, ["empty.yaml:1:1: no job in this file; add a job mapping or delete the file"])


def test_several_jobs_in_one_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("db.yaml", "name: dump\nschedule: '@daily'\ncommand: x\n---\n---\nname: vacuum\nschedule: '@weekly'\n"
              "command: y\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert list(jobs) == ["dump", "vacuum"]


def test_several_jobs_need_names(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("db.yaml", "schedule: '@daily'\ncommand: x\n---\nname: vacuum\nschedule: '@weekly'\ncommand: y\n"
              "---\ncommand: z\nschedule: '@hourly'\n")
    jobs, problems = load(jobs_dir)
    assert problems == [
        "db.yaml:1:1: name is required when a file holds several jobs; add name: <job-name>",
        "db.yaml:8:1: name is required when a file holds several jobs; add name: <job-name>",
    ]
    assert list(jobs) == ["vacuum"]


def test_empty_documents_do_not_count_as_jobs(write_job: WriteJob, jobs_dir: Path) -> None:
    # One job and an empty document: the file holds one job, so it is named after the file.
    write_job("backup.yaml", "---\nschedule: '@daily'\ncommand: x\n---\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert list(jobs) == ["backup"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- schedule: '@daily'\n", "a list"), ("just text\n", "a value")],
)
def test_a_document_that_is_not_a_mapping(write_job: WriteJob, jobs_dir: Path, text: str, kind: str) -> None:
    write_job("backup.yaml", "name: backup\nschedule: '@daily'\ncommand: x\n---\n" + text)
    assert load(jobs_dir)[1] == [
        f"backup.yaml:5:1: a job must be a mapping of keys (name, schedule, command, ...), not {kind}",
    ]


def test_file_stem_is_not_a_valid_name(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("Backup Etc.yaml", "schedule: '@daily'\ncommand: x\n")
    write_job("Other.yaml", "name: other\nschedule: '@daily'\ncommand: x\n")
    jobs, problems = load(jobs_dir)
    assert problems == [
        "Backup Etc.yaml:1:1: the file name 'Backup Etc' is not a valid job name; add a name: key "
        "(lowercase letters, digits, '_', '.', '-') or rename the file",
    ]
    assert list(jobs) == ["other"]


def test_duplicate_names_across_files(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\nname: backup\n")
    write_job("backup.yaml", "schedule: '@daily'\ncommand: y\n")
    write_job("c.yaml", "# the third\nname: backup\nschedule: '@daily'\ncommand: z\n")
    jobs, problems = load(jobs_dir)
    assert problems == [
        "backup.yaml:1:1: job backup: duplicate job name 'backup' (also defined at a.yaml:1); job names must be unique",
        "c.yaml:2:7: job backup: duplicate job name 'backup' (also defined at a.yaml:1); job names must be unique",
    ]
    assert jobs["backup"].command == "x"


def test_duplicate_names_in_one_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("db.yaml", "name: dump\nschedule: '@daily'\ncommand: x\n---\nname: dump\nschedule: '@daily'\n"
              "command: y\n")
    assert load(jobs_dir)[1] == [
        "db.yaml:5:7: job dump: duplicate job name 'dump' (also defined at db.yaml:1); job names must be unique",
    ]


# --- _defaults.yaml -------------------------------------------------------------------------


def test_defaults_merge_under_every_job(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("_defaults.yaml", "timeout: 1h\nkill_grace: 30s\nconcurrency: wait\n"
              "env:\n  LC_ALL: C.UTF-8\n  TZ: UTC\ntags: [default]\n")
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\ntimeout: 5m\nenv:\n  TZ: Europe/Paris\n  EXTRA: '1'\n")
    write_job("b.yaml", "schedule: '@daily'\ncommand: y\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    a, b = jobs["a"], jobs["b"]
    assert (a.timeout, a.kill_grace, a.concurrency, a.tags) == (300, 30, "wait", ("default",))
    assert a.env == {"LC_ALL": "C.UTF-8", "TZ": "Europe/Paris", "EXTRA": "1"}  # key by key; the job's value wins
    assert (b.timeout, b.kill_grace, b.env) == (3600, 30, {"LC_ALL": "C.UTF-8", "TZ": "UTC"})


def test_defaults_can_supply_required_keys(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("_defaults.yaml", "schedule: '@hourly'\ncommand: run-parts /etc/jobs\n")
    write_job("a.yaml", "description: only a description\n")
    write_job("b.yaml", "schedule: '@daily'\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert (jobs["a"].schedule.cron, jobs["a"].command) == ("0 * * * *", "run-parts /etc/jobs")
    assert jobs["b"].schedule.cron == "0 0 * * *"


def test_defaults_yml_and_counted_as_a_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("_defaults.yml", "timeout: 2m\n")
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    result = loader.load_dir(str(jobs_dir))
    assert result.problems == []
    assert result.jobs[0].timeout == 120
    assert result.files == [str(jobs_dir / "_defaults.yml"), str(jobs_dir / "a.yaml")]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: shared\n", "1:1: unknown key 'name' here; set it in each job file instead"),
        ("description: x\n", "1:1: unknown key 'description' here; set it in each job file instead"),
        ("timout: 1h\n", "1:1: unknown key 'timout'; did you mean 'timeout'?"),
        ("timeout: soon\n", f"1:10: timeout: 'soon' {NOT_A_DURATION}"),
        ("- timeout: 1h\n", "1:1: defaults must be a mapping of keys, not a list"),
        ("timeout: 1h\n---\nkill_grace: 5s\n",
         "3:1: _defaults.yaml holds one mapping of default values, not several documents"),
        ("timeout: 1h\ntimeout: 2h\n", "2:1: duplicate key 'timeout' (first at line 1); remove one"),
        ("user: no-such-user-jobctl\n", "1:7: user 'no-such-user-jobctl' does not exist on this host; "
                                         "create it or fix the name"),
    ],
)
def test_invalid_defaults(write_job: WriteJob, jobs_dir: Path, text: str, error: str) -> None:
    write_job("_defaults.yaml", text)
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert load(jobs_dir)[1] == [f"_defaults.yaml:{error}"]


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "---\n"])
def test_empty_defaults(write_job: WriteJob, jobs_dir: Path, text: str) -> None:
    write_job("_defaults.yaml", text)
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert load(jobs_dir)[1] == []


# --- YAML mistakes and hostile input ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("schedule: */5 * * * *", "1:12: YAML syntax error: expected alphabetic or numeric character, but found '/'; "
                                  "values starting with '*' must be quoted, e.g. schedule: \"*/5 * * * *\""),
        ("schedule: * * * * *", "1:12: YAML syntax error: expected alphabetic or numeric character, but found ' '; "
                                "values starting with '*' must be quoted, e.g. schedule: \"* * * * *\""),
        ("schedule: @daily", "1:11: YAML syntax error: found character '@' that cannot start any token; "
                             "values starting with '@' must be quoted, e.g. schedule: \"@daily\""),
        ("schedule: *x", "1:11: YAML syntax error: found undefined alias 'x'; "
                         "values starting with '*' must be quoted, e.g. schedule: \"*x\""),
    ],
)
def test_unquoted_schedule_hint(write_job: WriteJob, jobs_dir: Path, line: str, error: str) -> None:
    write_job("backup.yaml", line + "\ncommand: x\n")
    assert load(jobs_dir) == ({}, [f"backup.yaml:{error}"])


def test_yaml_syntax_error(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '@daily'\ncommand: [a, b\ntimeout: 5m\n")
    assert load(jobs_dir)[1] == ["backup.yaml:3:8: YAML syntax error: expected ',' or ']', but got ':'"]


def test_tab_indentation(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '@daily'\ncommand: x\nenv:\n\tA: b\n")
    assert load(jobs_dir)[1] == [
        "backup.yaml:4:1: YAML indentation uses spaces, not tabs: line 4 is indented with a tab; replace it with "
        "spaces",
    ]


def test_file_over_one_mib_is_refused(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("big.yaml", "schedule: '@daily'\ncommand: x\n" + ("#" * 79 + "\n") * (2 * 1024 * 1024 // 80))
    write_job("big2.yaml", b"x" * (loader.MAX_FILE_BYTES + 1))
    assert load(jobs_dir) == ({}, [
        "big.yaml:1:1: file is larger than 1 MiB; job files are small text files, split it up",
        "big2.yaml:1:1: file is larger than 1 MiB; job files are small text files, split it up",
    ])


def test_file_of_exactly_one_mib_is_read(write_job: WriteJob, jobs_dir: Path) -> None:
    head = "schedule: '@daily'\ncommand: x\n#"
    write_job("big.yaml", head + "x" * (loader.MAX_FILE_BYTES - len(head) - 1) + "\n")
    assert os.path.getsize(jobs_dir / "big.yaml") == loader.MAX_FILE_BYTES
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert list(jobs) == ["big"]


def test_binary_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", b"schedule: '@daily'\ncommand: ab\x00cd\n")
    assert load(jobs_dir) == ({}, ["backup.yaml:2:12: binary file (NUL byte); job files are UTF-8 YAML text"])


def test_utf16_file_reads_as_binary(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '@daily'\n".encode("utf-16"))
    assert load(jobs_dir)[1] == ["backup.yaml:1:4: binary file (NUL byte); job files are UTF-8 YAML text"]


def test_latin1_file(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '@daily'\ncommand: x\ndescription: Sauvegarde de l'été\n".encode("latin-1"))
    assert load(jobs_dir) == ({}, ["backup.yaml:3:30: not UTF-8 text (byte 0xe9); save the file as UTF-8"])


def test_utf8_with_bom_and_non_ascii(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "\ufeffschedule: '@daily'\ncommand: echo été ✓\n".encode())
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert jobs["backup"].command == "echo été ✓"


def test_control_character(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "schedule: '@daily'\ncommand: a\x07b\n")
    assert load(jobs_dir) == ({}, ["backup.yaml:2:11: character U+0007 is not allowed in YAML text; remove it"])


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
schedule: "@daily"
command: *i
"""
BOMB = "refusing a file that expands like a 'billion laughs' bomb. Job files need few or no aliases"


def test_billion_laughs(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("lol.yaml", BILLION_LAUGHS)
    write_job("ok.yaml", "schedule: '@daily'\ncommand: x\n")
    jobs, problems = load(jobs_dir)
    assert problems == [f"lol.yaml:5:8: YAML aliases would expand to more than 10000 values; {BOMB}"]
    assert list(jobs) == ["ok"]


def test_too_many_aliases(write_job: WriteJob, jobs_dir: Path) -> None:
    items = ", ".join(["*x"] * 101)
    write_job("lol.yaml", f"description: &x hi\nschedule: '@daily'\ncommand: [{items}]\n")
    assert load(jobs_dir)[1] == [f"lol.yaml:3:{11 + 4 * 100}: more than 100 YAML aliases; {BOMB}"]


def test_alias_into_itself(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("loop.yaml", "schedule: '@daily'\ncommand: &c [x, *c]\n")
    assert load(jobs_dir)[1] == [f"loop.yaml:2:17: YAML aliases would expand to more than 10000 values; {BOMB}"]


def test_a_few_aliases_are_fine(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("backup.yaml", "description: &d Nightly dump\nschedule: '@daily'\ncommand: x\ntags: [*d]\n")
    # An aliased value is reported where it is written out, at its anchor.
    assert load(jobs_dir)[1] == ["backup.yaml:1:14: job backup: tag 'Nightly dump' is not valid; use letters, digits, "
                                 "'_', '.', ':' or '-'"]
    write_job("backup.yaml", "description: &d nightly\nschedule: '@daily'\ncommand: [echo, *d]\ntags: [*d]\n")
    jobs, problems = load(jobs_dir)
    assert problems == []
    assert (jobs["backup"].command, jobs["backup"].tags) == (("echo", "nightly"), ("nightly",))


def test_deep_nesting(write_job: WriteJob, jobs_dir: Path) -> None:
    write_job("deep.yaml", "schedule: '@daily'\ncommand: " + "[" * 1000 + "]" * 1000 + "\n")
    assert load(jobs_dir)[1] == ["deep.yaml:2:29: nested more than 20 levels deep; job files need three at most"]


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="jobctl refuses files writable by others only when run as root")
def test_root_refuses_files_writable_by_others(write_job: WriteJob, jobs_dir: Path) -> None:
    path = write_job("backup.yaml", "schedule: '@daily'\ncommand: x\n")
    defaults = write_job("_defaults.yaml", "timeout: 1h\n")
    write_job("ok.yaml", "schedule: '@daily'\ncommand: x\n")
    path.chmod(0o666)
    defaults.chmod(0o646)
    jobs, problems = load(jobs_dir)
    assert problems == [
        "_defaults.yaml:1:1: writable by others (mode 0646); jobctl runs as root and refuses it, since whoever can "
        "change it could run commands as root: chown root: _defaults.yaml; chmod go-w _defaults.yaml",
        "backup.yaml:1:1: writable by group root and others (mode 0666); jobctl runs as root and refuses it, since "
        "whoever can change it could run commands as root: chown root: backup.yaml; chmod go-w backup.yaml",
    ]
    assert list(jobs) == ["ok"]
    path.chmod(0o664)  # group-writable is refused too: the group's members are not root (issue 10)
    assert load(jobs_dir)[1] == [
        problems[0],
        "backup.yaml:1:1: writable by group root (mode 0664); jobctl runs as root and refuses it, since whoever can "
        "change it could run commands as root: chown root: backup.yaml; chmod go-w backup.yaml",
    ]
