"""`jobctl import`: a hand-edited crontab -> job files that run what cron ran; --adopt and uninstall --restore.

The proof on real crontabs (tests/fixtures/crontabs, sources in its README):
import (with --adopt, which applies) -> for every entry, the installed line's
schedule equals the original's under the cron oracle (tests/cron_oracle.py, a
port of Debian's entry.c), and the real wrapper, running the job's command
with the input part swapped for a probe, gives it the command cron ran, the
input cron wrote, cron's shell and cron's environment -- the original read
by the oracle and this file's own reading of cron's % rule (checked against
the real daemon in test_the_reference_reading_is_debians_cron) -> uninstall
--restore gives back the original bytes.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import cron_oracle as oracle
import pytest
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.install import importer
from jobctl.jobs import loader

from runhelp import run as run_wrapper

FIXTURES = Path(__file__).parent / "fixtures" / "crontabs"
cli = CliRunner()


def invoke(*args: str, stdin: bytes | None = None):
    return cli.invoke(app, list(args), input=stdin)


def fixtures() -> list[dict[str, str]]:
    """The table of tests/fixtures/crontabs/README.md: one row per fixture, with its source."""
    rows = []
    text = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].endswith(".crontab"):
            rows.append(dict(zip(("file", "format", "accepts", "repository", "path", "commit", "what"), cells,
                                 strict=True)))
    return rows


def test_every_fixture_is_listed_with_its_source():
    listed = {row["file"] for row in fixtures()}
    assert listed == {p.name for p in FIXTURES.glob("*.crontab")}
    assert sum(row["accepts"] == "yes" for row in fixtures()) >= 10
    for row in fixtures():
        assert re.fullmatch(r"[0-9a-f]{40}", row["commit"]) and "/" in row["repository"]
        data = (FIXTURES / row["file"]).read_bytes()
        system = row["format"] == "system"
        try:  # the oracle agrees with the table about which ones Debian's cron takes
            oracle.parse_crontab(data, system=system, user_exists=lambda user: True)
            accepted = "yes"
        except oracle.Reject:
            accepted = "no"
        assert accepted == row["accepts"], row["file"]


# --- the reference reading: the oracle for lines, and cron's % rule written out here ---------------------

def cron_split(raw: str) -> tuple[str, bytes | None]:
    """(command, input) as Debian's do_command.c makes them from an entry's command part.

    The command ends at the first % no backslash escapes; before it \\% and
    \\\\ lose their backslash (any other backslash stays).  After it, \\% is
    a %, % a newline, everything else as it is; a newline ends the input
    when it has none.
    """
    command = []
    tokens = re.finditer(r"\\\\|\\%|%|[^%]", raw, re.S)
    rest = None
    for m in tokens:
        t = m.group()
        if t == "%":
            rest = raw[m.end():]
            break
        command.append(t[1] if t in ("\\\\", "\\%") else t)
    if rest is None:
        return "".join(command), None
    data = "".join("%" if t == "\\%" else "\n" if t == "%" else t for t in re.findall(r"\\%|%|[^%]", rest, re.S))
    if data and not data.endswith("\n"):
        data += "\n"
    return "".join(command), data.encode("utf-8", "surrogateescape")


def cron_reading(data: bytes, system: bool) -> list[tuple[int, oracle.Entry, dict[str, str]]]:
    """(line, entry, settings in effect) for every entry, read by the oracle's load_env / load_entry loop."""
    f = oracle._Stream(data, line=1)
    settings: dict[str, str] = {}
    out = []
    while True:
        status, envstr = oracle._load_env(f)
        if status == oracle.ERR:
            break
        if status == oracle.TRUE:
            name, _, value = envstr.partition(b"=")
            settings[name.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            continue
        oracle._skip_comments(f)
        line = f.line
        entry = oracle._load_entry(f, system, lambda user: True)
        assert entry is not None
        out.append((line, entry, dict(settings)))
    return out


def cron_environment(settings: dict[str, str], user: str) -> dict[str, str]:
    """What cron's load_entry gives a job: the settings, SHELL, HOME and PATH where unset, LOGNAME always."""
    pw = pwd.getpwnam(user)
    env = dict(settings)
    env.setdefault("SHELL", "/bin/sh")
    env.setdefault("HOME", pw.pw_dir)
    env.setdefault("PATH", "/usr/bin:/bin")
    env["LOGNAME"] = pw.pw_name
    return env


#: what a job's environment has beyond cron's: LANG and USER set by the wrapper (cron sets neither on Debian;
#: PAM may add LANG from /etc/default/locale), the run's own JOBCTL_* variables, and what the shell exports
WRAPPER_ADDS = {"LANG", "USER", "JOBCTL_JOB", "JOBCTL_RUN_ID", "JOBCTL_ATTEMPT", "JOBCTL_SCHEDULED_FOR",
                "JOBCTL_SLOT_START", "JOBCTL_SLOT_END", "JOBCTL_PARENT_RUN_ID", "JOBCTL_PARENT_JOB",
                "JOBCTL_PARENT_STATUS", "JOBCTL_PARENT_OUTPUT"}
SHELL_ADDS = {"PWD", "SHLVL", "_", "OLDPWD"}


def same_schedule(installed: oracle.Entry, original: oracle.Entry) -> None:
    for name in ("minute", "hour", "dom", "month", "dow"):
        assert getattr(installed, name) == getattr(original, name), name
    for flag in ("MIN_STAR", "HR_STAR", "WHEN_REBOOT"):
        assert (flag in installed.flags) == (flag in original.flags), flag
    # the day rule (either field starting with *: AND, else OR) decides nothing when both sets are full (@daily)
    if not (len(original.dom) == 31 and len(original.dow) == 8):
        day_rule = {"DOM_STAR", "DOW_STAR"}
        assert bool(installed.flags & day_rule) == bool(original.flags & day_rule)


def block(text: str) -> dict[str, str]:
    """The lines of jobctl's block by job name (from their marker)."""
    found = {}
    for line in text.splitlines():
        m = re.search(r"# jobctl:([a-z0-9_.-]+) [0-9a-f]{12}$", line)
        if m:
            found[m.group(1)] = line
    return found


@pytest.fixture
def world_dir():
    """A directory every user can write into (for probes run as a job's user)."""
    path = tempfile.mkdtemp(prefix="jobctl-import-")
    os.chmod(path, 0o777)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fixture_users():
    """The users the system fixtures name, created for these tests when this machine lacks them."""
    if os.geteuid() != 0:
        pytest.skip("system crontabs need root")
    wanted = {entry.user for row in fixtures() if row["format"] == "system" and row["accepts"] == "yes"
              for _, entry, _ in cron_reading((FIXTURES / row["file"]).read_bytes(), True)}
    made = []
    for user in sorted(wanted):
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", user], check=True)
            made.append(user)
    yield
    for user in made:
        subprocess.run(["userdel", "--remove", user], capture_output=True)


def probe(defn: dict, state: str, where: Path, name: str) -> dict[str, bytes | dict[str, str]]:
    """Run the real wrapper on ``defn`` with its command's last line (what cron ran) swapped for a probe.

    A job's command is cron's command line, after the lines that give it
    cron's input when there are any (import puts the command last); the
    probe records what that command would have got: argv[0] of the shell,
    its directory, its environment and its standard input.
    """
    head, sep, _ = defn["command"].rpartition("\n")
    out = where / name
    record = (f"printf %s \"$0\" > {out}.shell; pwd > {out}.pwd; /usr/bin/env -0 > {out}.env; "
              f"/bin/cat > {out}.in")
    result = run_wrapper(state, dict(defn, name="probe", command=head + sep + record))
    assert result.returncode == 0, result.stderr
    env = dict(item.split("=", 1) for item in (Path(f"{out}.env").read_bytes().decode().split("\0")) if item)
    return {"shell": Path(f"{out}.shell").read_bytes(), "pwd": Path(f"{out}.pwd").read_bytes(),
            "env": env, "stdin": Path(f"{out}.in").read_bytes()}


ACCEPTED = [row for row in fixtures() if row["accepts"] == "yes"]


@pytest.mark.parametrize("row", ACCEPTED, ids=[row["file"] for row in ACCEPTED])
def test_imported_jobs_run_what_cron_ran(row, tmp_path, world_dir, fixture_users):
    original = (FIXTURES / row["file"]).read_bytes()
    system = row["format"] == "system"
    target = Path(os.environ["JOBCTL_CRONTAB"])
    state = os.environ["JOBCTL_STATE_DIR"]
    if system:
        source = tmp_path / "cron.d" / row["file"].removesuffix(".crontab")
        source.parent.mkdir()
        source.write_bytes(original)
        os.chmod(source, 0o644)
        result = invoke("import", "--system-file", str(source), "--adopt", "--json")
    else:
        target.write_bytes(original)
        result = invoke("import", "--adopt", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept_out"] == [] and report["written"] and report["adopted"]
    jobs = {job["line"]: job for job in report["jobs"]}
    reading = cron_reading(original, system)
    assert sorted(jobs) == [line for line, _, _ in reading]  # every entry, one job each

    installed = block(target.read_text())
    assert sorted(installed) == sorted(job["name"] for job in jobs.values())
    for line, entry, settings in reading:
        name = jobs[line]["name"]
        defn = json.loads((Path(state) / "applied" / f"{name}.json").read_text())
        # the schedule cron reads on the installed line is the original's (a job with a zone is read in it)
        if defn.get("timezone"):
            zone = settings.get("CRON_TZ") or settings.get("TZ")
            assert defn["timezone"] == zone
            fields = defn["fields"]
            for key, values in (("minute", entry.minute), ("hour", entry.hour), ("dom", entry.dom),
                                ("month", entry.month)):
                assert set(fields[key]) == values, key
            assert set(fields["dow"]) | ({7} if 0 in fields["dow"] else set()) == entry.dow
            assert (fields["dom_star"] or fields["dow_star"]) == bool(entry.flags & {"DOM_STAR", "DOW_STAR"})
        else:
            same_schedule(oracle.parse_line(installed[name], system=system), entry)
        # the command: exactly the line cron handed to sh -c (less the blanks sh skips first) ...
        command, stdin = cron_split(entry.command)
        assert defn["command"].rpartition("\n")[2] == command.lstrip(" \t")
        # ... and what it gets, from the real wrapper: cron's shell, directory, environment and input
        user = entry.user or pwd.getpwuid(os.geteuid()).pw_name
        want = cron_environment(settings, user)
        got = probe(defn, state, world_dir, name)
        assert got["shell"] == want["SHELL"].encode()
        assert got["pwd"] == want["HOME"].encode() + b"\n"
        assert got["stdin"] == (stdin or b"")
        env = {k: v for k, v in got["env"].items() if k not in SHELL_ADDS}
        extra = set(env) - set(want)
        assert extra <= WRAPPER_ADDS, extra
        assert {k: env[k] for k in want} == want

    result = invoke("uninstall", *(("--system",) if system else ()), "--restore")
    assert result.exit_code == 0, result.output
    if system:
        assert source.read_bytes() == original
        assert not target.exists() or block(target.read_text()) == {}
    else:
        assert target.read_bytes() == original
    assert not list((Path(state) / "applied").glob("*.json"))


REFUSED = [row for row in fixtures() if row["accepts"] == "no"]


@pytest.mark.parametrize("row", REFUSED, ids=[row["file"] for row in REFUSED])
def test_a_crontab_cron_refuses_is_refused_at_its_line(row, jobs_dir):
    path = FIXTURES / row["file"]
    with pytest.raises(oracle.Reject) as refused:
        oracle.parse_crontab(path.read_bytes(), system=row["format"] == "system")
    result = invoke("import", str(path))
    assert result.exit_code == 1
    assert f"{path}:{refused.value.line}: " in result.stderr
    assert "nothing was written" in result.stderr and "Traceback" not in result.output
    assert list(jobs_dir.iterdir()) == []


# --- each conversion case ---------------------------------------------------------------------------

def imported(text: str, tmp_path: Path, *args: str) -> tuple[dict, Path]:
    source = tmp_path / "in.crontab"
    source.write_bytes(text.encode())
    out = tmp_path / "out"
    result = invoke("import", str(source), "--out", str(out), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def loaded(out: Path) -> dict:
    result = loader.load_dir(str(out))
    assert result.problems == []
    return {job.name: job for job in result.jobs}


def test_comment_lines_right_above_become_the_description(tmp_path):
    text = ("# Edit this file to introduce tasks to be run by cron.\n#\n# m h  dom mon dow   command\n"
            "0 1 * * * /usr/bin/true\n"
            "\n# Nightly backup of /etc\n#   to the NAS\n0 2 * * * tar czf /nas/etc.tgz /etc\n"
            "# 0 3 * * * old-job\n# (disabled)\n\n0 4 * * * /usr/local/bin/report\n")
    report, out = imported(text, tmp_path)
    jobs = loaded(out)
    by_line = {j["line"]: jobs[j["name"]] for j in report["jobs"]}
    assert by_line[4].description is None  # crontab(1)'s template is no description
    assert by_line[8].description == "Nightly backup of /etc to the NAS"
    assert by_line[12].description is None  # a blank line parts it from the comment


def test_settings_apply_to_the_entries_below_them_as_cron_applies_them(tmp_path):
    text = ("PATH=/opt/a:/usr/bin:/bin\n0 1 * * * a\nSHELL=/bin/bash\nGREETING = 'hello world'\n0 2 * * * b\n"
            "PATH=/opt/c\n0 3 * * * c\n")
    report, out = imported(text, tmp_path)
    jobs = loaded(out)
    a, b, c = (jobs[n] for n in ("a", "b", "c"))
    assert (a.shell, dict(a.env)) == ("/bin/sh", {"PATH": "/opt/a:/usr/bin:/bin"})
    assert (b.shell, dict(b.env)) == ("/bin/bash", {"PATH": "/opt/a:/usr/bin:/bin", "GREETING": "hello world"})
    assert (c.shell, dict(c.env)) == ("/bin/bash", {"PATH": "/opt/c", "GREETING": "hello world"})
    assert not (out / "_defaults.yaml").exists() or "PATH" not in (out / "_defaults.yaml").read_text()


def test_settings_all_jobs_share_go_into_defaults_and_the_loader_merges_them(tmp_path):
    text = "SHELL=/bin/bash\nMAILTO=\"\"\nFOO=1\n0 1 * * * a\nBAR=2\n0 2 * * * b\n"
    report, out = imported(text, tmp_path)
    assert report["defaults"] == {"shell": "/bin/bash", "cron_mail": "never",
                                  "env": {"MAILTO": "", "FOO": "1", "PATH": "/usr/bin:/bin"}}
    jobs = loaded(out)
    assert dict(jobs["a"].env) == {"MAILTO": "", "FOO": "1", "PATH": "/usr/bin:/bin"}
    assert dict(jobs["b"].env) == {"MAILTO": "", "FOO": "1", "BAR": "2", "PATH": "/usr/bin:/bin"}
    assert {j.shell for j in jobs.values()} == {"/bin/bash"} and {j.cron_mail for j in jobs.values()} == {"never"}


def test_an_existing_defaults_file_is_left_alone_and_named(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "_defaults.yaml").write_text("env: {FROM_DEFAULTS: '1'}\n")
    report, _ = imported("0 1 * * * a\n0 2 * * * b\n", tmp_path)
    assert report["defaults"] is None and (out / "_defaults.yaml").read_text() == "env: {FROM_DEFAULTS: '1'}\n"
    assert any("_defaults.yaml exists and applies to the imported jobs too" in n for n in report["notes"])
    assert loaded(out)["a"].env["FROM_DEFAULTS"] == "1"


def test_no_defaults_file_where_jobs_exist_already(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.yaml").write_text('schedule: "@daily"\ncommand: "true"\n')
    report, _ = imported("SHELL=/bin/bash\n0 1 * * * a\n0 2 * * * b\n", tmp_path)
    assert report["defaults"] is None  # _defaults.yaml would change mine.yaml too
    jobs = loaded(out)
    assert jobs["mine"].shell == "/bin/sh" and jobs["a"].shell == jobs["b"].shell == "/bin/bash"


@pytest.mark.parametrize(("text", "cron_mail", "notify", "says"), [
    ('MAILTO=""\n0 1 * * * a\n', "never", None, 'MAILTO="": cron mailed nothing'),
    ("MAILTO=ops@example.com\n0 1 * * * a\n", "failure", None, "as long as MAILTO=ops@example.com stays"),
    ("0 1 * * * a\n", "failure", None, "to the crontab's owner"),
    # the address in effect for the entry is not the one above jobctl's block: jobctl mails it itself
    ("MAILTO=dev@example.com, oncall@example.com\n0 1 * * * a\nMAILTO=ops@example.com\n0 2 * * * b\n",
     "never", ["dev@example.com", "oncall@example.com"], "notify email sends dev@example.com, oncall@example.com"),
    ("MAILTO=root\n0 1 * * * a\nMAILTO=ops@example.com\n0 2 * * * b\n", "failure", None,
     "is mailed to ops@example.com instead"),
    # an empty MAILTO further down silences jobctl's block, which stands below it
    ("0 1 * * * a\nMAILTO=\"\"\n0 2 * * * b\n", "failure", None, "cron mails its lines' failure summaries to no one"),
])
def test_mailto_becomes_cron_mail_or_notify_email(tmp_path, text, cron_mail, notify, says):
    report, out = imported(text, tmp_path)
    a = loaded(out)["a"]
    assert a.cron_mail == cron_mail
    assert (list(a.notify.email) if a.notify else None) == notify
    notes = [n for j in report["jobs"] if j["name"] == "a" for n in j["notes"]] + report["notes"]
    assert any(says in n for n in notes), notes


@pytest.mark.parametrize("setting", ["CRON_TZ", "TZ"])
def test_a_zone_setting_becomes_timezone_with_a_note_on_the_times(tmp_path, setting):
    report, out = imported(f"{setting}=Asia/Kolkata\n30 2 * * * a\n@reboot b\n", tmp_path)
    jobs = loaded(out)
    assert jobs["a"].timezone == "Asia/Kolkata"
    assert jobs["b"].timezone is None  # @reboot has no time to read in a zone
    assert jobs["a"].env[setting] == "Asia/Kolkata"  # the job's environment is still cron's
    [note] = [n for j in report["jobs"] if j["name"] == "a" for n in j["notes"] if n.startswith(setting)]
    assert "Debian's cron ignored it" in note
    if importer._system_zone() in ("Etc/UTC", "UTC"):
        assert "the times change" in note and "(02:30 Asia/Kolkata)" in note and " 21:00 " in note


def test_percent_feeds_input_and_backslash_percent_is_a_percent(tmp_path):
    text = ("0 22 * * 1-5 mail -s \"It's 10pm\" joe%Joe,%%Where are your kids?%\n"
            "0 1 * * * date +\\%F > /tmp/x\n")
    report, out = imported(text, tmp_path)
    jobs = loaded(out)
    assert jobs["date"].command == "date +%F > /tmp/x"
    mail = jobs["mail"].command
    assert mail.endswith("\nmail -s \"It's 10pm\" joe")
    head = mail.rpartition("\n")[0]
    ran = subprocess.run(["/bin/sh", "-c", head + "\ncat"], capture_output=True, check=True)
    assert ran.stdout == b"Joe,\n\nWhere are your kids?\n"  # what cron wrote to mail's input


def test_input_that_holds_the_delimiter_still_arrives_whole(tmp_path):
    report, out = imported("* * * * * cat%JOBCTL_STDIN%x'$(id)`\\\\%\n", tmp_path)
    command = loaded(out)["cat"].command
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=True)
    assert ran.stdout == b"JOBCTL_STDIN\nx'$(id)`\\%\n"  # \\% in the input part: a backslash and a %


def test_the_same_command_at_several_times_is_one_job_per_schedule(tmp_path):
    text = "0 1 * * * /usr/local/bin/sync.sh\n0 13 * * * /usr/local/bin/sync.sh\n5 * * * * other\n"
    report, _ = imported(text, tmp_path)
    names = {j["line"]: j["name"] for j in report["jobs"]}
    assert (names[1], names[2]) == ("sync-1", "sync-2")
    [note] = [n for n in report["jobs"][0]["notes"] if "same command" in n]
    assert "sync-1 (line 1), sync-2 (line 2)" in note and "'0 1,13 * * *'" in note


def test_names_come_from_the_program_and_are_valid_and_unique(tmp_path):
    text = ("0 1 * * * cd /srv && ./Backup\\ DB.sh --full > /dev/null\n"
            "0 2 * * * sudo -u www-data /usr/bin/php /var/www/artisan schedule:run\n"
            "0 3 * * * /usr/bin/php /var/www/artisan queue:restart\n"
            "0 4 * * * test -x /usr/sbin/anacron || run-parts /etc/cron.daily\n"
            "0 5 * * * %only input\n"
            "0 6 * * * \"$HOME/bin/x\"\n"
            f"0 7 * * * /opt/{'very-long-' * 10}tool --one\n"
            f"0 8 * * * /opt/{'very-long-' * 10}tool --two\n")
    report, out = imported(text, tmp_path)
    names = [j["name"] for j in sorted(report["jobs"], key=lambda j: j["line"])]
    assert names[:4] == ["backup-db", "artisan-schedule-run", "artisan-queue-restart", "run-parts"]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", n) for n in names)
    assert set(loaded(out)) == set(names)


def test_reboot_and_descriptors_are_kept_and_a_capitalised_one_is_refused(tmp_path, jobs_dir):
    report, out = imported("@reboot a\n@daily b\n@annually c\n@midnight d\n", tmp_path)
    jobs = loaded(out)
    assert {n: j.schedule.text for n, j in jobs.items()} == {"a": "@reboot", "b": "@daily", "c": "@annually",
                                                             "d": "@midnight"}
    source = tmp_path / "bad"
    source.write_text("@Daily e\n")
    result = invoke("import", str(source))
    assert result.exit_code == 1 and f"{source}:1: bad time specifier '@Daily' (write @daily" in result.stderr


@pytest.mark.parametrize(("text", "reason"), [
    ("5-1 * * * * backwards\n", "range runs backwards"),
    ("SHELL=bash\n* * * * * relative\n", "is not an absolute path"),
    ("MY-VAR=1\n* * * * * dashed\n", "'MY-VAR'"),
    ("SHELL=/usr/bin/fish\n* * * * * cat % input\n", "here-document"),
])
def test_what_jobctl_cannot_express_stays_in_the_crontab_with_the_reason(tmp_path, text, reason):
    report, out = imported("0 1 * * * fine\n" + text, tmp_path)
    [kept] = report["kept_out"]
    assert kept["line"] == text.count("\n") + 1 and reason in kept["reason"]
    assert [j["name"] for j in report["jobs"]] == ["fine"]


def test_never_overwrites_a_job_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "backup.yaml").write_text("# mine\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    source = tmp_path / "in"
    source.write_text("0 1 * * * backup\n0 2 * * * other\n")
    result = invoke("import", str(source), "--out", str(out))
    assert result.exit_code == 1
    assert "already has jobs named backup" in result.stderr and "nothing was written" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_file_that_appears_meanwhile_is_not_overwritten(tmp_path):
    conversion = importer.convert("0 1 * * * a\n0 2 * * * b\n", "in", str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.yaml").write_text("# theirs\n")
    with pytest.raises(importer.ImportProblem, match="exists: jobctl import never overwrites"):
        importer.write(conversion)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.yaml"]  # a.yaml taken back


@pytest.mark.parametrize(("content", "code", "says"), [
    (None, 3, "cannot read"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00garbage\n", 1, ":1: a NUL byte at column 8"),
    (b"# ok\n0 5 * * 1\n", 1, ":2: a schedule with no command"),
    (b"MAILTO=x\n0 5 * *\n", 1, ":2: 4 time fields and no command"),
    (b"0 5 * * * ok\r\n", 1, ":1: the line ends in a carriage return"),
    (b"0 5 * * * caf\xe9\n", 1, ":1: byte 0xe9 at column 14 is not UTF-8"),
])
def test_bad_input_is_one_message_with_its_line_and_nothing_written(tmp_path, jobs_dir, content, code, says):
    source = tmp_path / "input"
    if content is not None:
        source.write_bytes(content)
    result = invoke("import", str(source))
    assert result.exit_code == code, result.output
    assert says in result.stderr and result.stderr.startswith("jobctl: ") and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    assert list(jobs_dir.iterdir()) == []


def test_standard_input_and_the_default_crontab(tmp_path):
    result = invoke("import", "-", "--dry-run", "--json", stdin=b"0 1 * * * a\n")
    assert result.exit_code == 0 and json.loads(result.stdout)["source"] == "standard input"
    result = invoke("import", "--json")  # no crontab yet (JOBCTL_CRONTAB names no file)
    assert result.exit_code == 0 and json.loads(result.stdout)["jobs"] == []
    assert invoke("import", "a", "--system-file", "b").exit_code == 2
    assert invoke("import", "a", "--adopt").exit_code == 2


def test_plain_output_names_every_entry_file_and_note(tmp_path):
    source = tmp_path / "in"
    source.write_text("MAILTO=\"\"\n0 1 * * * a\n5-1 * * * * b\n")
    result = invoke("import", str(source), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0
    text = result.stdout
    assert "line 2: 0 1 * * * a" in text and "a.yaml" in text and "line 3: 5-1 * * * * b" in text
    assert "(kept in the crontab)" in text and "MAILTO=\"\"" in text and "\x1b[" not in text
    assert "take line 2 out of the crontab" in text


# --- adopt and restore -----------------------------------------------------------------------------

def test_adopt_then_restore_gives_back_every_byte(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    original = b"# keep\nMAILTO=ops@example.com\n0 1 * * * a\n5-1 * * * * kept\n@reboot b\nno newline at the end"
    target.write_bytes(original.replace(b"no newline at the end", b"# no newline at the end"))
    original = target.read_bytes()
    result = invoke("import", "--adopt")
    assert result.exit_code == 0, result.output
    after = target.read_text()
    assert "0 1 * * * a\n" not in after and "@reboot b\n" not in after and "5-1 * * * * kept\n" in after
    assert sorted(block(after)) == ["a", "b"]
    assert invoke("plan", "--check").exit_code == 0
    result = invoke("uninstall", "--restore")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == original
    assert invoke("uninstall", "--restore").exit_code == 1  # nothing more to restore


def test_restore_refuses_when_the_crontab_changed_around_the_entries(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("0 1 * * * a\n# end\n")
    assert invoke("import", "--adopt").exit_code == 0
    edited = target.read_text().replace("# end\n", "# end, edited\n")
    target.write_text(edited)
    result = invoke("uninstall", "--restore")
    assert result.exit_code == 1 and "changed since jobctl import --adopt" in result.stderr
    assert target.read_text() == edited  # nothing changed


def test_adopt_stops_when_the_crontab_changes_before_it_writes(jobs_dir, monkeypatch):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("0 1 * * * a\n")
    real = importer.adopt

    def racing(*args, **kwargs):
        target.write_text("0 1 * * * a\n0 2 * * * b\n")  # someone edits between import's read and adopt's write
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "adopt", racing)
    result = invoke("import", "--adopt")
    assert result.exit_code == 1 and "changed since jobctl import read it" in result.stderr
    assert target.read_text() == "0 1 * * * a\n0 2 * * * b\n"
    assert list(jobs_dir.iterdir()) == []  # the job files were taken back
    assert importer.records(os.environ["JOBCTL_STATE_DIR"]) == []


def test_two_adopts_are_restored_together(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("0 1 * * * a\n")
    assert invoke("import", "--adopt").exit_code == 0
    with_b = target.read_text() + "0 2 * * * b\n"
    target.write_text(with_b)
    assert invoke("import", "--adopt").exit_code == 0
    assert sorted(block(target.read_text())) == ["a", "b"]
    assert invoke("uninstall", "--restore").exit_code == 0
    assert target.read_text() == "0 1 * * * a\n0 2 * * * b\n"


# --- the reference reading is Debian's cron ----------------------------------------------------------

TRICKY = r"""MAILTO=""
FOO = " spaced value "
PATH=$HOME/bin:/usr/bin:/bin
* * * * * @P@ 1; : 'x\y' 'x\\y' 'x\\\y' 'x\%y' 'x\\\%y' q<BLANKS>
* * * * * @P@ 2 %
* * * * * @P@ 3 %%
* * * * * @P@ 4 %a\b%c\\d%e\\\%f%\g
* * * * * @P@ 5; : 'a\' \\\\ \
* * * * * @P@ 6 %  x<BLANKS>
SHELL=/bin/bash
TZ=Asia/Tokyo
LOGNAME=someone
USER=other
HOME=/tmp
* * * * * @P@ 7; cat /proc/$$/environ > @D@/7.environ
"""


@pytest.mark.cron
def test_the_reference_reading_is_debians_cron(tmp_path, world_dir):
    """Debian's real cron daemon, in a private mount namespace, runs lines this file's reading must predict.

    Each line records the command string its shell got (/proc/$$/cmdline)
    and its standard input; the reading above (cron_split, cron_environment)
    must predict both, and the environment.  Takes a minute: cron runs
    entries on the minute.
    """
    cron = shutil.which("cron", path="/usr/sbin:/sbin") or ""
    unshare = shutil.which("unshare") or ""
    if os.geteuid() != 0 or not cron or not unshare:
        pytest.skip("needs root, /usr/sbin/cron and unshare")
    record = f"cat /proc/$$/cmdline > {world_dir}/$N.cmd; cat > {world_dir}/$N.in"
    tricky = TRICKY.replace("<BLANKS>", "  \t")  # trailing blanks: part of the command, and of the input

    def recording(line: str) -> str:
        if "@P@ " not in line:
            return line
        n = line.split("@P@ ")[1].split()[0].rstrip(";")
        return line.replace("@P@ ", f"N={n}; {record}; : ").replace("@D@", str(world_dir))

    text = "".join(recording(line) + "\n" for line in tricky.splitlines())
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "root").write_text(text)
    os.chmod(spool / "root", 0o600)
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "crontab").write_text("")
    script = (f"set -e; mount --make-rprivate /; mount --bind {spool} /var/spool/cron/crontabs; "
              f"mount --bind {empty} /etc/cron.d; mount --bind {tmp_path / 'crontab'} /etc/crontab; "
              f"mount -t tmpfs tmpfs /run; exec {cron} -f")
    daemon = subprocess.Popen([unshare, "--mount", "/bin/sh", "-c", script], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 130
        while time.monotonic() < deadline and (len(list(world_dir.glob("*.in"))) < 7
                                               or not (world_dir / "7.environ").exists()):
            if daemon.poll() is not None:
                pytest.skip(f"cannot run cron in a mount namespace here: {daemon.stderr.read().decode()[-300:]}")
            time.sleep(1)
        time.sleep(2)
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=30)
    reading = cron_reading(text.encode(), False)
    assert len(reading) == 7
    for (line, entry, settings), mine in zip(reading, importer.read(text, "tricky").entries, strict=True):
        n = re.search(r"N=(\d+)", entry.command).group(1)
        command, stdin = cron_split(entry.command)
        argv = (world_dir / f"{n}.cmd").read_bytes().split(b"\0")
        want = cron_environment(settings, "root")
        assert argv[:2] == [want["SHELL"].encode(), b"-c"] and argv[2].decode() == command, line
        if n != "7":
            assert (world_dir / f"{n}.in").read_bytes() == (stdin or b""), line
        else:
            environ = (world_dir / "7.environ").read_bytes().decode().split("\0")
            got = dict(item.split("=", 1) for item in environ if item)
            assert {k: got[k] for k in want} == want
            assert set(got) - set(want) <= {"LANG", "LANGUAGE", "LC_ALL"}  # PAM may add the system's locale
        # and what import makes of the same line runs the same command with the same input
        job = importer._convert_entry(mine, False, "")
        assert isinstance(job, importer._Draft)
        assert job.keys["command"].rpartition("\n")[2] == command
        if stdin:
            head = job.keys["command"].rpartition("\n")[0]
            assert subprocess.run(["/bin/sh", "-c", head + "\ncat"], capture_output=True).stdout == stdin


@pytest.mark.parametrize("raw", [
    "a", "%", "%%", "\\", "\\%", "\\\\%", "\\\\\\%x", "a\\b%c\\\\d%e\\\\\\%f%\\g", "x % y", "\\%\\%%\\%%",
    "'x\\%y' q %  in \t", "\\\\", "a%\\", "a%b\\", "%\n"[:1], "100% sure \\% of it%%%",
])
def test_the_importers_percent_rule_is_the_reference_one(raw):
    command, stdin = importer.split_command(raw)
    assert (command, None if stdin is None else stdin.encode()) == cron_split(raw)


def test_random_command_parts_split_as_the_reference_splits():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="%\\ a'\t", max_size=24))
    def check(raw: str) -> None:
        command, stdin = importer.split_command(raw)
        assert (command, None if stdin is None else stdin.encode()) == cron_split(raw)

    check()


def test_on_a_terminal_a_table_and_without_utf8_ascii_only(tmp_path, monkeypatch):
    source = tmp_path / "in"
    source.write_text("0 1 * * * a\n")
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(app, ["import", str(source), "--dry-run"])
    assert result.exit_code == 0
    assert "\u2192 job file" in result.stdout and "\u2502" in result.stdout  # rich's table
    assert "\x1b[3" not in result.stdout  # NO_COLOR: no colours
    result = CliRunner(charset="ascii").invoke(app, ["import", str(source), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "-> job file" in result.stdout and result.stdout.isascii()


def test_restore_keeps_lines_added_since_and_puts_the_entries_back_in_place(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("# the first\n0 1 * * * a\n\n# untouched\n\n0 2 * * * b\n")
    assert invoke("import", "--adopt").exit_code == 0
    adopted = target.read_text()
    assert adopted.startswith("\n# untouched\n\n# BEGIN jobctl")  # the entries and a's description left
    target.write_text(adopted.replace("# untouched\n", "# untouched\n0 3 * * * added-since\n"))
    result = invoke("uninstall", "--restore")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "# the first\n0 1 * * * a\n\n# untouched\n0 3 * * * added-since\n\n0 2 * * * b\n"


def test_adopt_refuses_a_shell_jobctls_lines_cannot_run_under(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("SHELL=/usr/bin/fish\n0 1 * * * a\n")
    result = invoke("import", "--adopt")
    assert result.exit_code == 1 and "SHELL=/usr/bin/fish" in result.stderr
    assert target.read_text() == "SHELL=/usr/bin/fish\n0 1 * * * a\n" and list(jobs_dir.iterdir()) == []


def test_any_command_and_input_read_back_from_the_job_file_as_cron_ran_them(tmp_path):
    """The job files are YAML written by hand: whatever a line holds, the loader reads back cron's command."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    out = tmp_path / "out"
    out.mkdir()

    @settings(max_examples=150, deadline=None)
    @given(st.text(alphabet="a #%\\'\":-|>{}*&!\t\u00e9$`", min_size=1, max_size=30))
    def check(raw: str) -> None:
        conversion = importer.convert(f"* * * * * cat {raw}\n", "in", str(tmp_path / "elsewhere"))
        [job] = conversion.jobs
        (out / "job.yaml").write_text(importer.render(job.keys, ["probe"]), encoding="utf-8")
        [spec] = loaded(out).values()
        command, stdin = cron_split(f"cat {raw}")
        if stdin:
            assert spec.command.rpartition("\n")[2] == command
            ran = subprocess.run(["/bin/sh", "-c", spec.command.rpartition("\n")[0] + "\ncat"],
                                 capture_output=True, check=True)
            assert ran.stdout == stdin
        else:
            assert spec.command == command

    check()


# --- never twice, never lost: restore over entries already back, adopts killed half way ---------------------

KILL = r"""
import os, signal, sys
what = sys.argv[1]
if what == "apply":  # the adopt's record is saved, the crontab not yet written
    from jobctl.install import crontab
    crontab.apply = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
else:  # between the two renames: the entries are out of the file, jobctl's block not yet written
    real = os.replace
    def replace(src, dst, *a, **k):
        if dst == os.environ["JOBCTL_CRONTAB"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **k)
    os.replace = replace
from jobctl.cli.app import main
sys.argv = ["jobctl", *sys.argv[2:]]
main()
"""


def killed_adopt(when: str, *args: str) -> None:
    """A real jobctl import --adopt process, SIGKILLed at ``when``."""
    import sys

    done = subprocess.run([sys.executable, "-c", KILL, when, "import", "--adopt", *args], capture_output=True)
    assert done.returncode == -9, done.stderr


def jobctl(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "jobctl", *args], capture_output=True, text=True, cwd=cwd)


def test_restore_does_not_put_back_entries_that_stand_in_the_crontab_again(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_bytes(b'MAILTO=""\n0 1 * * * /usr/bin/backup.sh\n')
    original = target.read_bytes()
    assert jobctl("import", "--adopt").returncode == 0
    [backup] = (Path(os.environ["JOBCTL_STATE_DIR"]) / "backups").glob("import-original-*.txt")
    shutil.copy(backup, target)  # the operator restored it by hand
    done = jobctl("uninstall", "--restore")
    assert done.returncode == 0, done.stderr
    assert "not put back twice" in done.stdout
    assert target.read_bytes() == original
    assert importer.records(os.environ["JOBCTL_STATE_DIR"]) == []


def test_an_adopt_killed_before_it_wrote_the_crontab_is_restored_as_it_is(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_bytes(b"# nightly\n0 1 * * * /usr/bin/backup.sh\n")
    original = target.read_bytes()
    killed_adopt("apply")
    assert target.read_bytes() == original and importer.pending(os.environ["JOBCTL_STATE_DIR"])
    done = jobctl("uninstall", "--restore")
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == original  # not twice
    assert importer.records(os.environ["JOBCTL_STATE_DIR"]) == []


def test_adopt_again_after_a_killed_one_finishes_it_and_imports_nothing_twice(jobs_dir):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_bytes(b"# nightly\n0 1 * * * /usr/bin/backup.sh\n")
    original = target.read_bytes()
    killed_adopt("apply")
    files = sorted(p.name for p in jobs_dir.iterdir())
    doctor = jobctl("doctor")
    assert "import --adopt of" in doctor.stdout and "was interrupted" in doctor.stdout and doctor.returncode == 1
    done = jobctl("import", "--adopt")
    assert done.returncode == 0, done.stderr
    assert "finished the adopt killed before it wrote" in done.stderr
    assert sorted(p.name for p in jobs_dir.iterdir()) == files  # no second file for the same entry
    text = target.read_text()
    assert "/usr/bin/backup.sh\n" not in text and list(block(text)) == ["backup"]
    assert importer.pending(os.environ["JOBCTL_STATE_DIR"]) == []
    assert "ok    import --adopt: no adopt left half done" in jobctl("doctor").stdout
    assert jobctl("uninstall", "--restore").returncode == 0
    assert target.read_bytes() == original


def test_a_system_file_adopt_killed_between_its_renames_is_finished_or_restored(jobs_dir, tmp_path):
    state = os.environ["JOBCTL_STATE_DIR"]
    block_file = Path(os.environ["JOBCTL_CRONTAB"])
    sub = tmp_path / "sub"
    sub.mkdir()
    source = sub / "backup"
    source.write_bytes(b"SHELL=/bin/sh\n0 1 * * * root /usr/bin/backup.sh\n")
    original = source.read_bytes()
    import sys

    done = subprocess.run([sys.executable, "-c", KILL, "rename", "import", "--adopt", "--system-file", "backup"],
                          capture_output=True, cwd=sub)
    assert done.returncode == -9, done.stderr
    assert b"backup.sh" not in source.read_bytes() and not block_file.exists()  # the window: in neither
    [record] = importer.pending(state)
    assert record["file"] == str(source)  # absolute, whatever the directory it was typed in
    # doctor's view of it: pending says which adopt and where
    again = jobctl("import", "--adopt", "--system-file", str(source))
    assert again.returncode == 0, again.stderr
    assert "killed between its two writes" in again.stderr
    assert list(block(block_file.read_text())) == ["backup"] and importer.pending(state) == []
    restored = jobctl("uninstall", "--system", "--restore", cwd="/")  # from another directory
    assert restored.returncode == 0, restored.stderr
    assert source.read_bytes() == original and not block_file.exists()
    assert [p.name for p in sub.iterdir()] == ["backup"]  # no staged file left behind


def test_a_system_file_adopt_killed_between_its_renames_can_be_restored_directly(jobs_dir, tmp_path):
    source = tmp_path / "backup.cron"
    source.write_bytes(b"0 1 * * * root /usr/bin/backup.sh\n")
    original = source.read_bytes()
    import sys

    done = subprocess.run([sys.executable, "-c", KILL, "rename", "import", "--adopt", "--system-file",
                           str(source)], capture_output=True)
    assert done.returncode == -9
    restored = jobctl("uninstall", "--system", "--restore")
    assert restored.returncode == 0, restored.stderr
    assert source.read_bytes() == original


def test_mail_notes_follow_the_block_where_it_stands(jobs_dir, write_job):
    target = Path(os.environ["JOBCTL_CRONTAB"])
    target.write_text("MAILTO=root\n")
    write_job("other.yaml", 'schedule: "0 3 * * *"\ncommand: "true"\n')
    assert invoke("apply").exit_code == 0
    target.write_text(target.read_text() + "MAILTO=ops@example.com\n0 1 * * * a\n")
    result = invoke("import", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    [job] = json.loads(result.stdout)["jobs"]
    # the block stands below MAILTO=root, so its lines' mail goes to root, not to ops@example.com
    assert any("would not reach (it goes to root)" in n for n in job["notes"]), job["notes"]


def test_a_system_file_line_of_a_user_that_does_not_exist_is_kept_out(tmp_path):
    source = tmp_path / "f"
    source.write_text("0 1 * * * root /bin/true\n0 2 * * * no-such-user-x9 /bin/false\n")
    pwd_missing = "no-such-user-x9"
    with pytest.raises(KeyError):
        pwd.getpwnam(pwd_missing)
    for args in (["--dry-run"], []):
        result = invoke("import", "--system-file", str(source), "--out", str(tmp_path / "out"), "--json", *args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert [j["line"] for j in report["jobs"]] == [1]
        assert [k["line"] for k in report["kept_out"]] == [2] and pwd_missing in report["kept_out"][0]["reason"]


def test_a_jobs_directory_the_loader_refuses_is_said_before_writing(tmp_path):
    out = tmp_path / "theirs"
    out.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(out, nobody.pw_uid, nobody.pw_gid)
    source = tmp_path / "in.crontab"
    source.write_text("0 1 * * * a\n")
    result = invoke("import", str(source), "--out", str(out))
    assert result.exit_code not in (0, 70) and "nobody" in result.stderr and "a bug" not in result.stderr
    assert list(out.iterdir()) == []


def test_user_sets_user_on_every_job_and_root_is_warned_without_it(tmp_path):
    report, out = imported("0 1 * * * a\n0 2 * * * b\n", tmp_path, "--user", "nobody")
    assert {j.user for j in loaded(out).values()} == {"nobody"}
    assert not any("RUN AS ROOT" in n for n in report["notes"])
    source = tmp_path / "in.crontab"
    result = invoke("import", str(source), "--dry-run")
    assert result.exit_code == 0
    if os.geteuid() == 0:
        assert "THESE JOBS WILL RUN AS ROOT" in result.stdout and "--user NAME" in result.stdout
    assert invoke("import", str(source), "--user", "no-such-user-x9", "--dry-run").exit_code == 2


def test_env_names_are_kept_out_exactly_when_the_loader_refuses_them(tmp_path):
    from jobctl.jobs import spec

    report, out = imported("JOBCTL_X=1\n0 1 * * * a\n", tmp_path)
    assert loaded(out)["a"].env["JOBCTL_X"] == "1"
    reserved = spec.RESERVED_ENV[0]
    (tmp_path / "again").mkdir()
    report, _ = imported(f"{reserved}=1\n0 1 * * * a\n", tmp_path / "again")
    [kept] = report["kept_out"]
    assert reserved in kept["reason"] and "not starting with a digit or JOBCTL_" not in kept["reason"]


@pytest.mark.parametrize("content", [b"[1", b"[1]", b'{"a": 1}'])
def test_a_damaged_adopt_record_is_one_message_never_a_crash(jobs_dir, content):
    from jobctl import paths

    state = os.environ["JOBCTL_STATE_DIR"]
    os.makedirs(paths.backups_dir(state), mode=0o700, exist_ok=True)
    Path(paths.adopted_records(state)).write_bytes(content)
    Path(os.environ["JOBCTL_CRONTAB"]).write_bytes(b"0 1 * * * /usr/bin/backup.sh\n")
    for args in (["doctor"], ["import", "--adopt"], ["uninstall", "--restore"]):
        done = jobctl(*args)
        assert done.returncode in (1, 3), (args, done.stdout, done.stderr)
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr
        assert "import-adopted.json" in done.stdout + done.stderr
    assert Path(os.environ["JOBCTL_CRONTAB"]).read_bytes() == b"0 1 * * * /usr/bin/backup.sh\n"
    assert not list(jobs_dir.glob("*.yaml"))


def test_adopt_refuses_a_system_file_cron_does_not_read(jobs_dir, tmp_path):
    """A backup or copy of a cron.d file: its entries never ran, and adopting would start them."""
    import sys

    copy = tmp_path / "cron.d-backup"
    copy.write_bytes(b"0 3 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n")
    env = {k: v for k, v in os.environ.items() if k != "JOBCTL_CRONTAB"}
    done = subprocess.run([sys.executable, "-m", "jobctl", "import", "--system-file", str(copy), "--adopt"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "cron does not read" in done.stderr
    assert copy.read_bytes() == b"0 3 * * * root /usr/sbin/logrotate /etc/logrotate.conf\n"
    assert not list(jobs_dir.glob("*.yaml"))
