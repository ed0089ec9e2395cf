"""Test data for the exporters: schedules, and job files that use every key.

SCHEDULES is the corpus the systemd calendar conversion and the Kubernetes
schedule spelling are proven on: steps, ranges, lists, names, specials,
@every, and every kind of day-of-month/day-of-week combination cron's
day rule distinguishes.
"""

from __future__ import annotations

SCHEDULES: tuple[str, ...] = (
    # minutes and hours: steps, ranges with steps, lists
    "* * * * *",
    "*/5 * * * *",
    "*/7 * * * *",
    "*/15 * * * *",
    "*/30 * * * *",
    "5-55/10 * * * *",
    "0-30/15 * * * *",
    "1-59/2 * * * *",
    "15,45 * * * *",
    "0,1,2,3,10,20,30 * * * *",
    "0 */2 * * *",
    "0 */5 * * *",
    "30 9-17 * * *",
    "0 9-17/2 * * *",
    "0 0,12 * * *",
    "17 3 * * *",
    "59 23 * * *",
    "0 22-23,0-6 * * *",
    "*/10 8-18 * * 1-5",
    "0 5-5 * * *",
    # days of month
    "0 0 1 * *",
    "0 0 31 * *",
    "0 0 29 2 *",
    "0 0 30 * *",
    "0 6 1,15 * *",
    "0 6 1-7 * *",
    "0 0 */2 * *",
    "0 0 2-30/7 * *",
    "0 0 28-31 * *",
    "0 0 31 1,3 *",
    # months, by number and by name
    "0 0 1 */3 *",
    "0 0 1 jan,jul *",
    "0 0 15 feb-apr *",
    "30 4 * 12 *",
    "0 12 * 6-8 *",
    "0 0 1 jan-dec/2 *",
    # days of week: 0 and 7 are Sunday, names, ranges, steps
    "0 0 * * 0",
    "0 0 * * 7",
    "0 0 * * 1-5",
    "0 0 * * mon-fri",
    "0 0 * * sat,sun",
    "0 8 * * 5-7",
    "0 8 * * 0-7",
    "0 0 * * */2",
    "0 0 * * 1-5/2",
    "0 0 * * TUE",
    # both day fields restricted, neither starting with '*': either may match
    "0 12 13 * 5",
    "0 0 1,15 * mon",
    "0 0 1-7 * 1",
    "30 2 28-31 2 sun",
    "0 0 29 2 1",
    "0 0 1 * 0-6",
    "0 0 1-31 * 1",
    "0 0 1,* * 1",
    # a day field starting with '*' (even */2): both must match
    "0 0 */2 * 1",
    "0 0 1 * */2",
    "0 0 */3 * */2",
    "0 0 */1 * 1",
    "0 0 *,1 * 1",
    "*/20 */6 */2 */2 */3",
    # specials and @every (jobctl expands them to five fields)
    "@hourly",
    "@daily",
    "@midnight",
    "@weekly",
    "@monthly",
    "@yearly",
    "@every 15m",
    "@every 2h",
    "@every 7d",
)

#: job files (name → text) that together use every job-file key; the shipped
#: examples of jobs.d/ are exported too.
JOB_FILES: dict[str, str] = {
    "_defaults.yaml": """\
timeout: 1h
kill_grace: 20s
env:
  LC_ALL: C.UTF-8
""",
    "full.yaml": """\
name: full
description: "Every key: 50% of the disk, \\"quoted\\", back\\\\slash"
schedule: "30 2 * * 1-5"
command: |
  set -e
  echo "$GREETING %d" > /tmp/out
shell: /bin/bash
working_dir: /srv/app data
env:
  GREETING: "hello world"
  PERCENT: "100%"
  QUOTES: "say \\"hi\\" and 'bye'"
  BACKSLASH: 'C:\\path\\'
  DOLLAR: "$HOME and ${USER}"
  UNICODE: "grüße ✓"
timeout: 45m
kill_grace: 1m
retries: {attempts: 2, delay: 30s, backoff: 3, max_delay: 5m}
concurrency: replace
output_limit: 64KiB
enabled: true
tags: [demo, "team:ops"]
user: root
timezone: Europe/Berlin
jitter: 5m
catch_up: 2h
catch_up_mode: each
catch_up_max: 50
notify:
  when: [failure, recovery]
  after_failures: 2
  webhook: https://hooks.example.com/jobctl
  email: ops@example.com
history: {keep: 30, max_age: 14d}
cron_mail: always
""",
    "argv.yaml": """\
schedule: "@every 15m"
command: [rsync, -a, "--exclude=*.tmp", /srv/data/, "backup:/srv/data with space/"]
concurrency: allow
""",
    "boot.yaml": """\
schedule: "@reboot"
command: /usr/local/bin/warm-cache
""",
    "disabled.yaml": """\
schedule: "0 4 1 * *"
command: /usr/local/bin/monthly-report
enabled: false
concurrency: wait
""",
    "either-day.yaml": """\
schedule: "0 12 13 * fri"
command: echo friday or the 13th
notify: {command: "logger -t jobctl failed", ping: "https://hc.example.com/ping/abc"}
""",
    "db.nightly_vacuum.yaml": """\
schedule: "15 1 * * *"
command: vacuumdb --all --analyze
timezone: America/New_York
""",
    "pipeline.yaml": """\
schedule: "0 5 * * *"
command: /usr/local/bin/load-warehouse
requires: [{job: full, status: succeeded, within: 2h}]
lock_group: nightly
then: [argv]
on_failure: either-day
baseline: {min_runs: 10, slow: 4}
params: {region: {default: eu, pattern: '[a-z]+'}}
max_queued: 10
""",
}
