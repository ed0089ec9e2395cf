"""The README's "Migrating from a hand-edited crontab": its example converts what cron ran, and it covers the traps.

The crontab of the example is read by the oracle (Debian cron's own parser);
the job files it becomes are loaded by jobctl: same schedules, same commands
once cron's ``%`` handling is undone, no problem and no warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import cron_oracle as oracle

from jobctl.jobs import loader, spec

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Migrating from a hand-edited crontab\n", 1)[1].split("\n## ", 1)[0]


def test_the_section_covers_what_a_crontab_gave() -> None:
    for topic in ("MAILTO=ops@example.com", 'MAILTO=""', "`%`", "`\\%`", "SHELL=", "PATH=", "CRON_TZ=",
                  "NAME=value", "cron_mail", "notify: {email: ...}", "jobctl validate", "jobctl plan",
                  "crontab -e"):
        assert topic in SECTION, topic
    for value in spec.CRON_MAIL:
        assert f"`{value}`" in SECTION
    # the key table links here
    assert "[Migrating](#migrating-from-a-hand-edited-crontab)" in README


def test_the_example_converts_what_cron_ran(tmp_path: Path) -> None:
    (crontab,) = re.findall(r"```text\n(.*?)```", SECTION, re.S)
    entries = oracle.parse_crontab(crontab)
    schedules = [" ".join(line.split()[:5]) for line in crontab.splitlines() if re.match(r"[0-9*@]", line)]
    jobs_dir = tmp_path / "jobs.d"
    jobs_dir.mkdir()
    for block in re.findall(r"```yaml\n(.*?)```", SECTION, re.S):
        name = re.match(r"# jobs\.d/(\S+)\n", block).group(1)
        (jobs_dir / name).write_text(block, encoding="utf-8")
    result = loader.load_dir(str(jobs_dir))
    assert (result.problems, result.warnings) == ([], [])
    jobs = {j.schedule.text: j for j in result.jobs}
    assert sorted(jobs) == sorted(schedules) and len(entries) == 2
    for schedule, entry in zip(schedules, entries, strict=True):
        job = jobs[schedule]
        converted = oracle.parse_line(f"{job.schedule.cron} x")
        assert [getattr(converted, f) for f in FIELDS] == [getattr(entry, f) for f in FIELDS]
        # what cron ran: \% is a literal %; the log file's redirection is the run log's job now
        ran = re.sub(r"\s*>>\S+ 2>&1$", "", entry.command.replace("\\%", "%"))
        assert job.command == ran


FIELDS = ("minute", "hour", "dom", "month", "dow", "flags")
