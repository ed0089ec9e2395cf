"""Shell completion: `jobctl completion bash|zsh|fish`, exercised in the real shells.

bash is driven as a shell completes: the script is sourced, COMP_WORDS and
COMP_CWORD set and the completion function called (and once through an
interactive bash on a terminal, with TAB).  What it must offer is known here
independently: the job names are those of the files written and the jobs
applied, the run ids are read from the run log with sqlite3.  zsh and fish are
checked when installed (skipped otherwise).  A completion only reads and never
prints to the terminal it completes in.
"""

from __future__ import annotations

import os
import pty
import pwd
import select
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobctl.cli import completion

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.sh"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A directory with a ``jobctl`` that runs this checkout with this interpreter, for PATH."""
    path = tmp_path / "bin"
    path.mkdir()
    (path / "jobctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m jobctl "$@"\n')
    (path / "jobctl").chmod(0o755)
    return path


def env(bin_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **extra}


def jobctl(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["jobctl", *args], capture_output=True, text=True, timeout=120, env=env(bin_dir))


def script(bin_dir: Path, shell: str, tmp_path: Path) -> Path:
    done = jobctl(bin_dir, "completion", shell)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    path = tmp_path / f"jobctl.{shell}"
    path.write_text(done.stdout)
    return path


@pytest.fixture
def jobs(jobs_dir: Path, bin_dir: Path) -> dict[str, object]:
    """Three job files (one holding two jobs), one job applied whose file is gone since, and real runs."""
    (jobs_dir / "backup.yaml").write_text('schedule: "@daily"\ncommand: "echo backed up"\n')
    (jobs_dir / "report.yaml").write_text('schedule: "0 9 * * 1-5"\ncommand: "false"\n')
    (jobs_dir / "old-job.yaml").write_text('schedule: "0 1 * * *"\ncommand: "true"\n')
    assert jobctl(bin_dir, "apply").returncode == 0
    (jobs_dir / "old-job.yaml").unlink()  # applied, no file: still a name to complete
    (jobs_dir / "pair.yaml").write_text('name: db.vacuum\nschedule: "0 4 * * *"\ncommand: "true"\n---\n'
                                        'name: db_backup\nschedule: "0 5 * * *"\ncommand: "true"\n')
    for name in ("backup", "report", "backup"):
        jobctl(bin_dir, "run", name)
    log = Path(os.environ["JOBCTL_STATE_DIR"]) / "runs.db"
    with sqlite3.connect(log) as db:
        ids = [str(r[0]) for r in db.execute("SELECT id FROM runs ORDER BY id DESC")]
    assert len(ids) == 3
    return {"names": sorted(["backup", "report", "old-job", "db.vacuum", "db_backup"]), "ids": ids}


def bash_complete(bin_dir: Path, script_path: Path, line: str, **extra: str) -> list[str]:
    """What the bash script puts in COMPREPLY for the command line ``line`` (the cursor at its end)."""
    program = f"""
source {script_path}
read -ra words <<<"$LINE"
[[ $LINE == *" " ]] && words+=("")
COMP_WORDS=("${{words[@]}}")
COMP_CWORD=$(( ${{#words[@]}} - 1 ))
COMP_LINE=$LINE
COMP_POINT=${{#LINE}}
COMPREPLY=()
_jobctl_completion jobctl "${{words[-1]}}" "${{words[-2]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          timeout=120, env=env(bin_dir, LINE=line, **extra))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [w for w in done.stdout.split("\n") if w]


# --- the scripts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", completion.SHELLS)
def test_each_script_is_printed_for_the_shell_named(bin_dir: Path, tmp_path: Path, shell: str) -> None:
    text = script(bin_dir, shell, tmp_path).read_text()
    assert f"(jobctl completion {shell})" in text.splitlines()[0 if shell != "zsh" else 1]
    assert "_JOBCTL_COMPLETE=complete_" + shell in text and "2>/dev/null" in text
    if shell == "zsh":
        assert text.startswith("#compdef jobctl\n")  # a file _jobctl on fpath is found by compinit
    checker = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-config", "-n"]}[shell]
    if not shutil.which(checker[0]):
        pytest.skip(f"{shell} is not installed: the script is generated but not parsed")
    done = subprocess.run([*checker, str(tmp_path / f"jobctl.{shell}")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_unknown_shell_is_a_usage_error(bin_dir: Path) -> None:
    done = jobctl(bin_dir, "completion", "tcsh")
    assert done.returncode == 2 and done.stdout == "" and "use bash, zsh or fish" in done.stderr
    assert "Traceback" not in done.stderr


# --- bash, for real --------------------------------------------------------------------------------

def test_bash_offers_job_names_and_recent_run_ids(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    bash = script(bin_dir, "bash", tmp_path)
    names, ids = jobs["names"], jobs["ids"]
    assert bash_complete(bin_dir, bash, "jobctl run ") == names
    assert bash_complete(bin_dir, bash, "jobctl run db") == ["db.vacuum", "db_backup"]
    assert bash_complete(bin_dir, bash, "jobctl status ") == names
    assert bash_complete(bin_dir, bash, "jobctl history ") == names
    assert bash_complete(bin_dir, bash, "jobctl pause backup ") == names
    # logs takes RUN_ID|NAME: the names, then the latest runs' ids, newest first
    assert bash_complete(bin_dir, bash, "jobctl logs ") == names + ids
    assert bash_complete(bin_dir, bash, f"jobctl logs {ids[0]}") == [ids[0]]
    assert bash_complete(bin_dir, bash, "jobctl logs rep") == ["report"]
    # commands and options come from the command line itself
    assert bash_complete(bin_dir, bash, "jobctl ru") == ["run"]
    assert "--raw" in bash_complete(bin_dir, bash, "jobctl logs --")
    assert bash_complete(bin_dir, bash, "jobctl history --status fa") == ["failed"]
    assert bash_complete(bin_dir, bash, "jobctl completion ") == ["bash", "zsh", "fish"]


def test_bash_reads_the_jobs_directory_given_on_the_line(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    other = tmp_path / "other.d"
    other.mkdir()
    (other / "elsewhere.yaml").write_text('schedule: "@hourly"\ncommand: "true"\n')
    bash = script(bin_dir, "bash", tmp_path)
    # that directory's jobs, and the applied ones (whichever directory they came from)
    assert bash_complete(bin_dir, bash, f"jobctl status --jobs-dir {other} ") == ["backup", "elsewhere", "old-job",
                                                                                 "report"]


def test_interactive_bash_completes_on_tab(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    bash = script(bin_dir, "bash", tmp_path)
    master, slave = pty.openpty()
    shell = subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
                             env=env(bin_dir, PS1="$ ", TERM="dumb", INPUTRC="/dev/null"), start_new_session=True)
    os.close(slave)

    def until(text: str, timeout: float = 30) -> str:
        seen, end = b"", time.time() + timeout
        while time.time() < end and text.encode() not in seen:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        return seen.decode(errors="replace")

    try:
        os.write(master, f"source {bash}\n".encode())
        until("$ ")
        os.write(master, b"jobctl run \t\t")  # two TABs: the list of possibilities
        listed = until("old-job")
        assert all(name in listed for name in jobs["names"]), listed
        os.write(master, b"\x15jobctl logs rep\t")  # one match: completed in place
        assert "jobctl logs report " in until("report ")
    finally:
        os.write(master, b"\x15exit\n")
        try:
            shell.wait(10)
        except subprocess.TimeoutExpired:
            shell.kill()
        os.close(master)


# --- zsh and fish, when installed -------------------------------------------------------------------

def test_zsh_offers_job_names(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    zsh_script = script(bin_dir, "zsh", tmp_path)
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed")
    # compsys's _arguments and compdef stand-ins print what the script hands them
    program = f"""
compdef() {{ print -r -- "compdef $*" }}
_arguments() {{ print -r -- "$*" }}
_files() {{ print -r -- FILES }}
source {zsh_script}
words=(jobctl run ""); CURRENT=3; _jobctl_completion
words=(jobctl logs rep); CURRENT=3; _jobctl_completion
"""
    done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=120, env=env(bin_dir))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = done.stdout
    assert out.startswith("compdef _jobctl_completion jobctl\n")
    first, second = out.split("\n*: :")[1:3]
    assert [w.strip('"()\n') for w in first.split("\n")] == jobs["names"]
    assert second.strip().strip("()") == '"report"'


def test_fish_offers_job_names_and_run_ids(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    fish_script = script(bin_dir, "fish", tmp_path)
    if not shutil.which("fish"):
        pytest.skip("fish is not installed")
    done = subprocess.run(["fish", "--no-config", "-c", f"source {fish_script}; complete -C 'jobctl logs '"],
                          capture_output=True, text=True, timeout=120, env=env(bin_dir, HOME=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    offered = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert sorted(offered) == sorted(jobs["names"] + jobs["ids"])
    about = dict(line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)
    assert about[jobs["ids"][0]].startswith("backup succeeded, started ")


# --- only reads, never a traceback ------------------------------------------------------------------

def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else b"")
            for p in sorted(path.rglob("*"))} if path.exists() else {}


def ask(bin_dir: Path, line: str) -> subprocess.CompletedProcess[str]:
    """jobctl asked as the bash script asks it (stderr kept here, to see that nothing goes there)."""
    words = line.split(" ")
    return subprocess.run(["jobctl"], capture_output=True, text=True, timeout=120,
                          env=env(bin_dir, _JOBCTL_COMPLETE="complete_bash", COMP_WORDS=line,
                                  COMP_CWORD=str(len(words) - 1)))


def test_a_completion_changes_nothing(bin_dir: Path, jobs: dict, tmp_path: Path) -> None:
    state = Path(os.environ["JOBCTL_STATE_DIR"])
    with sqlite3.connect(state / "runs.db") as db:  # as a log is between runs: everything in the main file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        (state / f"runs.db{suffix}").unlink(missing_ok=True)
    before = _tree(state), _tree(Path(os.environ["JOBCTL_JOBS_DIR"]))
    for line in ("jobctl logs ", "jobctl run ", "jobctl status ", "jobctl "):
        assert ask(bin_dir, line).returncode == 0
    assert (_tree(state), _tree(Path(os.environ["JOBCTL_JOBS_DIR"]))) == before
    # no state directory at all: none is created
    fresh = tmp_path / "no-state"
    done = subprocess.run(["jobctl"], capture_output=True, text=True, timeout=120,
                          env=env(bin_dir, JOBCTL_STATE_DIR=str(fresh), _JOBCTL_COMPLETE="complete_bash",
                                  COMP_WORDS="jobctl logs ", COMP_CWORD="2"))
    assert done.returncode == 0 and not fresh.exists()
    assert done.stdout.split() == sorted(["backup", "report", "db.vacuum", "db_backup"])


def test_broken_files_and_a_corrupt_log_offer_what_they_can_and_print_nothing(bin_dir: Path, jobs: dict) -> None:
    state = Path(os.environ["JOBCTL_STATE_DIR"])
    jobs_dir = Path(os.environ["JOBCTL_JOBS_DIR"])
    (jobs_dir / "broken.yaml").write_text("schedule: [unclosed\n")
    for suffix in ("-wal", "-shm"):
        (state / f"runs.db{suffix}").unlink(missing_ok=True)
    (state / "runs.db").write_bytes(b"this is not a database" * 100)
    (state / "applied" / "old-job.json").write_text("{not json")
    done = ask(bin_dir, "jobctl logs ")
    assert done.returncode == 0 and done.stderr == ""
    # the valid files' jobs and the applied definitions' names (a name is a file name); no run ids
    assert done.stdout.split() == jobs["names"]
    # the jobs directory unreadable altogether
    done = subprocess.run(["jobctl"], capture_output=True, text=True, timeout=120,
                          env=env(bin_dir, JOBCTL_JOBS_DIR="/proc/self/nonexistent", _JOBCTL_COMPLETE="complete_bash",
                                  COMP_WORDS="jobctl run ", COMP_CWORD="2"))
    assert done.returncode == 0 and done.stderr == "" and done.stdout.split() == ["backup", "old-job", "report"]


def test_a_failure_while_completing_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        completion.respond(object(), completion.COMPLETE_VAR)  # not an app: typer fails
    assert exc.value.code == 1
    assert capsys.readouterr() == ("", "")


def test_the_scripts_and_app_agree_on_the_variable() -> None:
    from jobctl.cli import app

    assert completion.COMPLETE_VAR == app._COMPLETE_VAR
    for text in completion.SCRIPTS.values():
        assert app._COMPLETE_VAR + "=complete_" in text


# --- install.sh ------------------------------------------------------------------------------------

def install_sh(body: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source {INSTALL}; {body}"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **extra})


def test_install_sh_installs_the_bash_completion_idempotently(bin_dir: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "jobctl").symlink_to(bin_dir / "jobctl")
    target = tmp_path / "completions"
    body = f"venv={venv}; bash_completion_dir={target}; install_bash_completion"
    first = install_sh(body)
    assert first.returncode == 0, first.stderr
    assert f"installed the bash completion {target}/jobctl" in first.stdout
    assert (target / "jobctl").read_text() == jobctl(bin_dir, "completion", "bash").stdout
    assert oct((target / "jobctl").stat().st_mode & 0o777) == "0o644"
    again = install_sh(body)
    assert again.returncode == 0 and f"the bash completion {target}/jobctl is up to date" in again.stdout
    # someone else's file of that name is left alone
    (target / "jobctl").write_text("complete -W 'mine' jobctl\n")
    theirs = install_sh(body)
    assert theirs.returncode == 0 and "was not written by jobctl; left alone" in theirs.stderr
    assert (target / "jobctl").read_text() == "complete -W 'mine' jobctl\n"
    # --uninstall removes jobctl's, and only jobctl's
    (target / "jobctl").unlink()
    install_sh(body)
    gone = install_sh(f"venv={venv}; bin_dir={tmp_path / 'nobin'}; man_dir={tmp_path / 'noman'}; "
                      f"bash_completion_dir={target}; force=1; do_uninstall")
    assert gone.returncode == 0, gone.stderr
    assert f"removed {target}/jobctl" in gone.stdout and not (target / "jobctl").exists()


def test_bash_completion_loads_the_installed_file(bin_dir: Path, tmp_path: Path, jobs: dict) -> None:
    """bash-completion's on-demand loader finds the file where install.sh puts a user's."""
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.exists():
        pytest.skip("the bash-completion package is not installed")
    user_dir = tmp_path / "share"
    (user_dir / "bash-completion" / "completions").mkdir(parents=True)
    (user_dir / "bash-completion" / "completions" / "jobctl").write_text(
        jobctl(bin_dir, "completion", "bash").stdout)
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                           f"source {loader}; __load_completion jobctl && complete -p jobctl"],
                          capture_output=True, text=True, timeout=60, env=env(bin_dir, XDG_DATA_HOME=str(user_dir)))
    assert done.stdout.strip() == "complete -o default -F _jobctl_completion jobctl", done.stderr


def test_install_sh_puts_the_completion_where_bash_completion_looks(tmp_path: Path) -> None:
    as_root = install_sh('echo "$bash_completion_dir"')
    if os.geteuid() == 0:
        assert as_root.stdout.strip() == "/usr/local/share/bash-completion/completions"
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to run as a normal user")
        home = tmp_path / "home"
        home.mkdir()
        nobody = pwd.getpwnam("nobody")
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        os.chmod(tmp_path, 0o755)
        done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", "-c",
                               f'source {INSTALL}; echo "$bash_completion_dir"'], capture_output=True, text=True,
                              timeout=60, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        assert done.stdout.strip() == f"{home}/.local/share/bash-completion/completions", done.stderr


def test_root_help_lists_completion_and_stays_without_typer() -> None:
    """`jobctl --help` still answers before typer is imported (tests/test_cli_startup.py compares the text)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "jobctl", "--help"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0 and "  completion  Print the shell completion script" in done.stdout
    assert " typer" not in done.stderr
