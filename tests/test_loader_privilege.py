"""Issue 10, item 1: job files an unprivileged user controls must never run as root.

Each attack is played for real: a second Unix user (created with useradd)
writes or owns the file, root runs ``jobctl apply --system`` (into a crontab
file, $JOBCTL_CRONTAB), and the crontab line is then run as cron would run it.
Before the fix every one of them wrote ``0`` (uid 0) into the proof file;
now apply refuses with one located line per path and a fix, exits 1, writes
no crontab, and nothing runs.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.jobs import loader
from jobctl.read import doctor

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the attacks need jobctl running as root and a second real user (useradd); CI runs as root",
)

runner = CliRunner()
FIX = "chown root: {p}; chmod go-w {p}"


@pytest.fixture(scope="module")
def mallory() -> Iterator[pwd.struct_passwd]:
    """A real unprivileged user with a home directory, removed afterwards."""
    if not shutil.which("useradd"):
        pytest.skip("no useradd (apt-get install passwd)")
    name = f"jobctl-m{os.getpid()}"
    for attempt in range(5):  # /etc/passwd may be locked by a concurrent useradd
        done = subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], capture_output=True, text=True)
        if done.returncode == 0:
            break
        time.sleep(0.2 * (attempt + 1))
    else:
        pytest.fail(f"useradd {name}: {done.stderr.strip()}")
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)


@pytest.fixture
def jobs_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A root-owned jobs directory the attacker can reach (pytest's own tmp directory is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="jobctl-priv-", dir="/tmp"))
    base.chmod(0o755)
    path = base / "jobs.d"
    path.mkdir(mode=0o755)
    monkeypatch.setenv("JOBCTL_JOBS_DIR", str(path))
    try:
        yield path
    finally:
        shutil.rmtree(base)


def as_user(user: pwd.struct_passwd, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run a command as ``user`` (what the attacker can do on their own)."""
    return subprocess.run(list(argv), input=stdin, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          capture_output=True, text=True, check=True, timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "HOME": user.pw_dir})


def write_as(user: pwd.struct_passwd, path: Path, text: str) -> None:
    as_user(user, "sh", "-c", 'cat > "$1"', "sh", str(path), stdin=text)


def apply_system(jobs_dir: Path) -> CliRunner:
    return runner.invoke(app, ["apply", "--system", "--jobs-dir", str(jobs_dir)])


def run_crontab_lines(crontab: Path) -> None:
    """Run every jobctl line of the /etc/cron.d-format file as cron(8) would: sh -c, as the line's user."""
    if not crontab.exists():
        return
    for line in crontab.read_text().splitlines():
        if " --scheduled " not in line or "jobctl" not in line or line.startswith("#"):
            continue
        fields = line.split(None, 6)
        assert fields[5] == "root"  # apply --system: every line runs the wrapper as root
        subprocess.run(["/bin/sh", "-c", fields[6]], env={"PATH": "/usr/bin:/bin", "HOME": "/root",
                                                         "LOGNAME": "root", "SHELL": "/bin/sh"},
                       capture_output=True, timeout=120, check=False)


@pytest.fixture
def proof(tmp_path: Path) -> Path:
    """Where an attacker's command records the uid it ran as."""
    return tmp_path / "proof"


def attack_job(proof: Path, **extra: str) -> str:
    lines = ["schedule: '* * * * *'", f"command: id -u > {proof}"] + [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def assert_refused(jobs_dir: Path, proof: Path, tmp_path: Path, expected: list[str]) -> None:
    """apply --system refuses with exactly ``expected`` (stderr lines), installs nothing, runs nothing."""
    result = apply_system(jobs_dir)
    crontab = tmp_path / "crontab"
    run_crontab_lines(crontab)  # whatever apply installed, cron would now run
    assert not proof.exists(), f"the attacker's command ran as uid {proof.read_text().strip()}"
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[:-1] == expected
    assert lines[-1].endswith("; nothing was run or changed")
    assert not crontab.exists()


def root_file(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    os.chown(path, 0, 0)
    path.chmod(mode)
    return path


# --- the attacks ---------------------------------------------------------------------------------


def test_a_job_file_owned_by_another_user(mallory, jobs_dir: Path, tmp_path: Path, proof: Path) -> None:
    path = jobs_dir / "cleanup.yaml"
    root_file(path, "schedule: '@daily'\ncommand: 'true'\n")
    os.chown(path, mallory.pw_uid, mallory.pw_gid)  # e.g. a deploy that kept the committer's uid
    write_as(mallory, path, attack_job(proof))  # the owner rewrites it: mode 0644 does not stop her
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{path}:1:1: owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; jobctl runs as root and refuses "
        f"it, since whoever can change it could run commands as root: {FIX.format(p=path)}",
    ])


def test_a_job_naming_user_is_still_judged_by_its_owner(mallory, jobs_dir: Path, tmp_path: Path,
                                                         proof: Path) -> None:
    # `user: mallory` would run the command as mallory, but the file could as
    # well say `user: root` tomorrow: the file's owner decides, not its user:.
    path = jobs_dir / "mine.yaml"
    root_file(path, "")
    os.chown(path, mallory.pw_uid, mallory.pw_gid)
    write_as(mallory, path, attack_job(proof, user=mallory.pw_name))
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{path}:1:1: owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; jobctl runs as root and refuses "
        f"it, since whoever can change it could run commands as root: {FIX.format(p=path)}",
    ])


def test_a_group_writable_file_with_user_root(mallory, jobs_dir: Path, tmp_path: Path, proof: Path) -> None:
    path = root_file(jobs_dir / "report.yaml", "schedule: '@daily'\ncommand: 'true'\nuser: root\n", 0o664)
    os.chown(path, 0, mallory.pw_gid)  # root's file, shared with a group mallory is in
    write_as(mallory, path, attack_job(proof, user="root"))
    assert path.stat().st_uid == 0
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{path}:1:1: writable by group {mallory.pw_name} (mode 0664); jobctl runs as root and refuses it, since "
        f"whoever can change it could run commands as root: {FIX.format(p=path)}",
    ])


def test_a_file_dropped_into_a_sticky_world_writable_jobs_directory(mallory, jobs_dir: Path, tmp_path: Path,
                                                                     proof: Path) -> None:
    root_file(jobs_dir / "backup.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    jobs_dir.chmod(0o1777)
    dropped = jobs_dir / "zz-dropped.yaml"
    write_as(mallory, dropped, attack_job(proof))  # anyone may create files in a 1777 directory
    assert dropped.stat().st_uid == mallory.pw_uid
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{jobs_dir}:1:1: jobs directory {jobs_dir} is writable by group root and others (mode 1777); being "
        "sticky, it still lets anyone add job files; jobctl runs as root and refuses it, since whoever can add or "
        f"replace files in it could run commands as root: {FIX.format(p=jobs_dir)}",
    ])


def test_a_planted_defaults_file_whose_shell_runs_roots_own_jobs(mallory, jobs_dir: Path, tmp_path: Path,
                                                                  proof: Path) -> None:
    # root's own job, root's own file: only the defaults are mallory's
    root_file(jobs_dir / "backup.yaml", "schedule: '* * * * *'\ncommand: 'true'\n")
    evil = Path(mallory.pw_dir) / "sh"
    write_as(mallory, evil, f"#!/bin/sh\nid -u > {proof}\nexec /bin/sh \"$@\"\n")
    as_user(mallory, "chmod", "755", str(evil), mallory.pw_dir)
    defaults = jobs_dir / "_defaults.yaml"
    root_file(defaults, "")
    os.chown(defaults, mallory.pw_uid, mallory.pw_gid)
    write_as(mallory, defaults, f"shell: {evil}\n")
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{defaults}:1:1: owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; jobctl runs as root and "
        f"refuses it, since whoever can change it could run commands as root: {FIX.format(p=defaults)}",
    ])


def test_a_link_from_the_jobs_directory_into_a_users_home(mallory, jobs_dir: Path, tmp_path: Path,
                                                          proof: Path) -> None:
    target = Path(mallory.pw_dir) / "report.yaml"
    write_as(mallory, target, attack_job(proof))
    link = jobs_dir / "report.yaml"
    link.symlink_to(target)
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{link}:1:1: links to {target}, which is owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; "
        f"jobctl runs as root and refuses it, since whoever can change it could run commands as root: "
        f"{FIX.format(p=target)}",
    ])


def test_a_link_to_a_root_file_in_a_directory_the_user_owns(mallory, jobs_dir: Path, tmp_path: Path,
                                                             proof: Path) -> None:
    # The file is root's, but mallory can rename her own over it at any time.
    home = Path(mallory.pw_dir)
    target = root_file(home / "report.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    link = jobs_dir / "report.yaml"
    link.symlink_to(target)
    as_user(mallory, "chmod", "755", str(home))
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{link}:1:1: links to {target}, in {home}, which is owned by {mallory.pw_name} (uid {mallory.pw_uid}), "
        "not root; whoever controls that directory could replace "
        f"the job file and run commands as root: {FIX.format(p=home)}, or keep the job file in a directory only "
        "root can change",
    ])
    write_as(mallory, home / "new.yaml", attack_job(proof))
    as_user(mallory, "mv", str(home / "new.yaml"), str(target))  # the swap the refusal prevents
    assert target.stat().st_uid == mallory.pw_uid


def test_a_jobs_directory_that_links_into_a_users_home(mallory, tmp_path: Path, proof: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path(mallory.pw_dir) / "jobs.d"
    as_user(mallory, "mkdir", str(real))
    write_as(mallory, real / "job.yaml", attack_job(proof))
    jobs_dir = tmp_path / "jobs.d"
    jobs_dir.symlink_to(real)
    monkeypatch.setenv("JOBCTL_JOBS_DIR", str(jobs_dir))
    home = Path(mallory.pw_dir)
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{home}:1:1: owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; it holds the jobs directory "
        f"{real}, so whoever controls it could replace the job files and run commands as root: "
        f"{FIX.format(p=home)}, or move the jobs directory under a directory only root can change "
        "(e.g. /etc/jobctl/jobs.d)",
        f"{jobs_dir}:1:1: jobs directory {jobs_dir} (a link to {real}) is owned by {mallory.pw_name} "
        f"(uid {mallory.pw_uid}), not root; jobctl runs as root and refuses it, since whoever can add or replace "
        f"files in it could run commands as root: {FIX.format(p=real)}",
    ])


def test_a_root_jobs_directory_inside_a_directory_the_user_owns(mallory, tmp_path: Path, proof: Path) -> None:
    # Every file and the jobs directory are root's, but mallory can rename the
    # jobs directory away and put her own in its place.
    parent = Path(mallory.pw_dir) / "ops"
    as_user(mallory, "mkdir", str(parent))
    jobs_dir = parent / "jobs.d"
    jobs_dir.mkdir()
    root_file(jobs_dir / "backup.yaml", attack_job(proof))
    home = Path(mallory.pw_dir)
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{p}:1:1: owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root; it holds the jobs directory "
        f"{jobs_dir}, so whoever controls it could replace the job files and run commands as root: "
        f"{FIX.format(p=p)}, or move the jobs directory under a directory only root can change "
        "(e.g. /etc/jobctl/jobs.d)"
        for p in (home, parent)
    ])


def test_a_jobs_directory_owned_by_the_user(mallory, jobs_dir: Path, tmp_path: Path, proof: Path) -> None:
    root_file(jobs_dir / "backup.yaml", attack_job(proof))
    os.chown(jobs_dir, mallory.pw_uid, mallory.pw_gid)
    assert_refused(jobs_dir, proof, tmp_path, [
        f"{jobs_dir}:1:1: jobs directory {jobs_dir} is owned by {mallory.pw_name} (uid {mallory.pw_uid}), not "
        "root; jobctl runs as root and refuses it, since whoever can add or replace files in it could run "
        f"commands as root: {FIX.format(p=jobs_dir)}",
    ])


# --- what stays allowed ----------------------------------------------------------------------------


def test_root_files_in_root_directories_are_applied_and_run_as_root(jobs_dir: Path, tmp_path: Path,
                                                                    proof: Path) -> None:
    """The control: the same apply and cron run do run a root-owned job (so the tests above prove a refusal)."""
    root_file(jobs_dir / "fine.yaml", attack_job(proof))
    result = apply_system(jobs_dir)
    assert result.exit_code == 0, result.output
    run_crontab_lines(tmp_path / "crontab")
    assert proof.read_text() == "0\n"


def test_a_sticky_root_directory_may_hold_the_jobs_directory(tmp_path: Path) -> None:
    # /tmp is root's and 1777: a jobs directory inside it is fine (no one can rename it away)
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    jobs_dir = sticky / "jobs.d"
    jobs_dir.mkdir()
    root_file(jobs_dir / "a.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    result = loader.load_dir(str(jobs_dir))
    assert (result.problems, [j.name for j in result.jobs]) == ([], ["a"])


def test_a_link_to_a_root_file_in_a_root_directory_is_fine(jobs_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = root_file(shared / "report.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    (jobs_dir / "report.yaml").symlink_to(target)
    result = loader.load_dir(str(jobs_dir))
    assert (result.problems, [j.name for j in result.jobs]) == ([], ["report"])


def load_as(user: pwd.struct_passwd, directory: Path) -> dict:
    """loader.load_dir run by ``user``: a forked child drops to the user's ids (this Python may be in /root)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            result = loader.load_dir(str(directory))
            os.write(w, json.dumps({"jobs": [j.name for j in result.jobs],
                                    "problems": [str(p) for p in result.problems]}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(data)


def test_non_root_users_keep_their_own_files(mallory) -> None:
    """Run as mallory, the loader takes mallory's own files, even group-writable ones (today's behaviour)."""
    jobs = Path(mallory.pw_dir) / "mine.d"
    as_user(mallory, "mkdir", "-p", str(jobs))
    write_as(mallory, jobs / "a.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    write_as(mallory, jobs / "_defaults.yaml", "timeout: 1h\n")
    as_user(mallory, "chmod", "664", str(jobs / "a.yaml"))
    as_user(mallory, "chmod", "775", str(jobs))
    assert load_as(mallory, jobs) == {"jobs": ["a"], "problems": []}


# --- checked on what was opened, not on a path looked up again --------------------------------------


def test_the_checks_are_made_on_the_open_file_not_a_second_lookup(mallory, jobs_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap a root file for mallory's between the loader's lstat and its open: the fstat catches it."""
    good = root_file(jobs_dir / "job.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    evil = root_file(jobs_dir / ".evil", "schedule: '@daily'\ncommand: 'id'\n")  # hidden: not listed
    os.chown(evil, mallory.pw_uid, mallory.pw_gid)
    real_open = os.open

    def racing_open(path, flags, *args, **kwargs):
        if path == "job.yaml":
            os.replace(evil, good)  # the attacker wins the race
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(loader.os, "open", racing_open)
    result = loader.load_dir(str(jobs_dir))
    assert result.jobs == []
    assert [p.message.split(";")[0] for p in result.problems] == [
        f"owned by {mallory.pw_name} (uid {mallory.pw_uid}), not root"]


# --- doctor ----------------------------------------------------------------------------------------


def test_doctor_reports_each_unsafe_path_with_a_fix(mallory, jobs_dir: Path) -> None:
    ok = doctor.job_files_safe(str(jobs_dir))
    assert ok.ok, ok.detail
    owned = root_file(jobs_dir / "a.yaml", "schedule: '@daily'\ncommand: 'true'\n")
    os.chown(owned, mallory.pw_uid, mallory.pw_gid)
    shared = root_file(jobs_dir / "b.yaml", "schedule: '@daily'\ncommand: 'true'\n", 0o664)
    check = doctor.job_files_safe(str(jobs_dir))
    assert not check.ok
    assert check.detail == (f"writable by others, a root shell for anyone: {owned} (owned by {mallory.pw_name}), "
                            f"{shared} (0664)")
    assert check.fix == (f"chown root: {owned} {shared}; chmod go-w {owned} {shared} "
                         "(or move the jobs directory under a directory only root can change)")
    result = runner.invoke(app, ["doctor", "--jobs-dir", str(jobs_dir)])
    assert result.exit_code == 1
    assert f"FAIL  job file permissions: {check.detail}" in result.stdout
    assert f"      fix: {check.fix}" in result.stdout


def test_a_link_the_user_owns_decides_nothing_even_to_root_files(mallory, jobs_dir: Path, tmp_path: Path,
                                                                   proof: Path) -> None:
    """From the attack review: a user-owned link in sticky /tmp chosen as the jobs directory, or in a job file's
    chain, let the user pick which root-owned tree root installs.  Every link on the way must be root's."""
    sticky = Path(tempfile.mkdtemp(prefix="jobctl-sticky-", dir="/tmp"))
    sticky.chmod(0o1777)
    try:
        root_file(jobs_dir / "a.yaml", attack_job(proof))
        link = sticky / "evelink"
        as_user(mallory, "ln", "-s", str(jobs_dir), str(link))
        result = runner.invoke(app, ["apply", "--system", "--jobs-dir", str(link)])
        assert result.exit_code == 1, result.output
        assert f"reached through {link}, a symbolic link owned by {mallory.pw_name}" in result.stderr
        # a job file whose chain passes through the user's link
        other = Path(tempfile.mkdtemp(prefix="jobctl-priv2-", dir="/tmp"))
        other.chmod(0o755)
        try:
            target = root_file(other / "b.yaml", attack_job(proof))
            hop = sticky / "hop"
            as_user(mallory, "ln", "-s", str(target), str(hop))
            (jobs_dir / "a.yaml").unlink()
            (jobs_dir / "b.yaml").symlink_to(hop)
            result = apply_system(jobs_dir)
            assert result.exit_code == 1, result.output
            assert f"reached through {hop}, a symbolic link owned by {mallory.pw_name}" in result.stderr
            assert not proof.exists()
        finally:
            shutil.rmtree(other)
    finally:
        shutil.rmtree(sticky)
