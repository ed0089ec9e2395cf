"""install.sh as a normal user: what it says to type next works in the same shell, and it says only what is true.

A full install needs pip and the network (tests/chroot/quickstart.sh runs it on
a fresh Debian); these tests source install.sh, which then only defines its
functions, around a stub install in a scratch home.  Run as root, they drop to
the user ``nobody``, since a user's PATH, ~/.local and crontab are the point.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.sh"
README = (ROOT / "README.md").read_text()
#: a fresh Debian login's PATH for a user (/etc/profile), without ~/.local/bin
USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"
#: Debian's /etc/skel/.profile puts ~/.local/bin on PATH at login when it exists
DEBIAN_PROFILE = 'if [ -d "$HOME/.local/bin" ] ; then\n    PATH="$HOME/.local/bin:$PATH"\nfi\n'


@pytest.fixture
def home() -> Iterator[Path]:
    """A scratch home directory the test user owns (not under root's 0700 pytest tree)."""
    path = Path(tempfile.mkdtemp(prefix="jobctl-home-", dir="/tmp"))
    try:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    nobody = pwd.getpwnam("nobody")
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, nobody.pw_uid, nobody.pw_gid)


def as_user(script: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a bash script as a normal user (``nobody`` when the tests run as root), in ``home``."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to run as a normal user")
    environ = {"HOME": str(home), "PATH": USER_PATH, "SHELL": "/bin/bash", "LANG": "C.UTF-8", **env}
    argv = ["bash", "-c", script]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    return subprocess.run(argv, cwd=home, env=environ, capture_output=True, text=True, timeout=60)


def stub_install(home: Path) -> Path:
    """What ./install.sh leaves for a user: the command linked into ~/.local/bin, the man page beside it."""
    venv_bin = home / ".local/share/jobctl/bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "jobctl").write_text('#!/bin/sh\necho "jobctl ran: $*"\n')
    (venv_bin / "jobctl").chmod(0o755)
    (home / ".local/bin").mkdir(parents=True)
    (home / ".local/bin/jobctl").symlink_to(venv_bin / "jobctl")
    man1 = home / ".local/share/man/man1"
    man1.mkdir(parents=True)
    shutil.copy(ROOT / "man" / "jobctl.1", man1 / "jobctl.1")
    chown_tree(home)
    return home / ".local/bin/jobctl"


def next_steps(home: Path, **env: str) -> str:
    result = as_user(f"source {INSTALL} && next_steps", home, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def indented(output: str, after: str) -> list[str]:
    """The indented command lines that follow the line containing ``after``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line.strip())
    return block


def test_a_user_without_local_bin_on_path_is_told_commands_that_work_in_this_shell(home: Path) -> None:
    link = stub_install(home)
    out = next_steps(home)
    assert f"{link.parent} is not on this shell's PATH yet" in out
    # the two ways given both run jobctl, in a shell whose PATH is still the login's
    on_path = indented(out, "put it on PATH for this shell")
    assert on_path == ['export PATH="$HOME/.local/bin:$PATH"', "jobctl plan"]
    by_path = indented(out, "or run it by its path")
    assert by_path == [f"{link} plan"]
    for commands in (on_path, by_path):
        ran = as_user("\n".join(commands), home)
        assert (ran.returncode, ran.stdout) == (0, "jobctl ran: plan\n"), ran.stderr


def test_the_next_login_advice_is_true_of_the_profile(home: Path) -> None:
    stub_install(home)
    out = next_steps(home)
    assert "to have it on PATH from your next login, add the export line above to ~/.profile" in out
    (home / ".profile").write_text(DEBIAN_PROFILE)
    chown_tree(home)
    out = next_steps(home)
    assert f"from your next login {home}/.local/bin is on PATH: ~/.profile adds it" in out
    # and it does: a login shell of the user finds jobctl by name
    ran = as_user("exec bash --login -c 'jobctl plan'", home)
    assert ran.stdout == "jobctl ran: plan\n", ran.stderr
    # bash reads ~/.bash_profile instead of ~/.profile when there is one
    (home / ".bash_profile").write_text("# nothing about PATH\n")
    chown_tree(home)
    assert "add the export line above to ~/.bash_profile" in next_steps(home)
    assert "add the export line above to ~/.zprofile" in next_steps(home, SHELL="/bin/zsh")


def test_with_local_bin_on_path_the_next_command_is_just_jobctl(home: Path) -> None:
    stub_install(home)
    out = next_steps(home, PATH=f"{home}/.local/bin:{USER_PATH}")
    assert out.startswith("install.sh: next: jobctl plan")
    assert "not on this shell's PATH" not in out and "MANPATH" not in out


@pytest.mark.skipif(not shutil.which("man"), reason="man-db not installed (apt-get install man-db)")
def test_man_finds_the_page_the_way_install_sh_says(home: Path) -> None:
    stub_install(home)
    out = next_steps(home)
    # man-db derives ~/.local/share/man from ~/.local/bin on PATH: the PATH line is all it takes
    assert f"man jobctl finds the page once {home}/.local/bin is on PATH" in out
    found = as_user('export PATH="$HOME/.local/bin:$PATH"; man -w jobctl', home)
    assert found.stdout.strip() == f"{home}/.local/share/man/man1/jobctl.1", found.stderr
    # a MANPATH of the user's own turns that off: install.sh gives the line that works
    out = next_steps(home, MANPATH="/usr/share/man")
    (line,) = indented(out, "needs")
    assert line == 'export MANPATH="$HOME/.local/share/man:${MANPATH:-}"'
    found = as_user(f"{line}; man -w jobctl", home, MANPATH="/usr/share/man")
    assert found.stdout.strip() == f"{home}/.local/share/man/man1/jobctl.1", found.stderr


def test_readme_quick_start_finds_jobctl_in_the_same_shell_for_a_user(home: Path) -> None:
    """The README's first command, with install.sh's part already done, on a fresh login's PATH."""
    first = re.findall(r"```sh\n(.*?)```", README, re.S)[0].strip()
    assert first.startswith("./install.sh && ")
    stub_install(home)
    ran = as_user("true" + first[len("./install.sh"):], home)
    assert (ran.returncode, ran.stdout) == (0, "jobctl ran: plan\njobctl ran: apply\njobctl ran: status\n"), \
        ran.stderr


def test_uninstall_as_a_user_says_only_what_is_true(home: Path) -> None:
    # a checkout of its own: this one's .venv would (truly) be named as kept
    checkout = home / "checkout"
    checkout.mkdir()
    shutil.copy(INSTALL, checkout / "install.sh")
    chown_tree(home)
    uninstall = f"bash {checkout}/install.sh --uninstall"
    result = as_user(uninstall, home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "install.sh: jobctl was not installed for this user; nothing to remove\n"
    (home / ".local/state/jobctl").mkdir(parents=True)
    chown_tree(home)
    result = as_user(uninstall, home)
    assert result.stdout.splitlines()[1:] == [
        f"install.sh: kept the run log and state directory {home}/.local/state/jobctl (remove it by hand if you "
        "want it gone)",
    ]
    (home / ".config/jobctl/jobs.d").mkdir(parents=True)
    chown_tree(home)
    result = as_user(uninstall, home, XDG_STATE_HOME=f"{home}/elsewhere")
    assert result.stdout.splitlines()[1:] == [
        f"install.sh: kept the jobs directory {home}/.config/jobctl/jobs.d (remove it by hand if you want it gone)",
    ]


BLOCK = ("# BEGIN jobctl a1b2c3d4 (managed by jobctl; edit with jobctl apply)\n"
         "0 * * * * /venv/bin/python3 -I -m jobctl.runner --scheduled --state-dir /s x # jobctl:x 0123\n"
         "# END jobctl a1b2c3d4\n")


def fake_crontab(directory: Path, text: str | None) -> str:
    """A directory holding a ``crontab`` whose -l prints ``text`` (None: "no crontab for user", exit 1)."""
    directory.mkdir(exist_ok=True)
    script = directory / "crontab"
    if text is None:
        script.write_text('#!/bin/sh\necho "no crontab for $(id -un)" >&2\nexit 1\n')
    else:
        (directory / "crontab.txt").write_text(text)
        script.write_text(f'#!/bin/sh\n[ "$1" = -l ] || exit 2\ncat {directory}/crontab.txt\n')
    script.chmod(0o755)
    chown_tree(directory)
    return str(directory)


def test_uninstall_refuses_while_the_users_crontab_has_a_jobctl_block(home: Path) -> None:
    """The block's lines run the venv's python3: removing it under them would fail every run."""
    link = stub_install(home)
    checkout = home / "checkout"
    checkout.mkdir()
    shutil.copy(INSTALL, checkout / "install.sh")
    chown_tree(home)
    path = fake_crontab(home / "fake", "MAILTO=me\n" + BLOCK) + ":" + USER_PATH
    result = as_user(f"bash {checkout}/install.sh --uninstall", home, PATH=path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        "install.sh: error: jobctl's jobs are still installed in your crontab (crontab -l)")
    assert "Run jobctl uninstall first" in result.stderr and "--uninstall --force" in result.stderr
    assert "nothing was changed" in result.stderr
    assert link.is_symlink() and (home / ".local/share/jobctl/bin/jobctl").exists()
    assert (home / ".local/share/man/man1/jobctl.1").exists()
    # a mention of jobctl outside a block (a comment, a user's own line) is no block
    path = fake_crontab(home / "fake", "# jobctl was here\n#  BEGIN jobctl x\n") + ":" + USER_PATH
    result = as_user(f"bash {checkout}/install.sh --uninstall", home, PATH=path)
    assert result.returncode == 0 and f"removed {link}" in result.stdout, result.stderr


def test_uninstall_force_removes_it_anyway_and_no_crontab_is_fine(home: Path) -> None:
    link = stub_install(home)
    (home / ".local/share/jobctl/pyvenv.cfg").write_text("home = /usr/bin\n")
    chown_tree(home)
    path = f"{fake_crontab(home / 'fake', BLOCK)}:{USER_PATH}"
    result = as_user(f"bash {INSTALL} --uninstall --force", home, PATH=path)
    assert result.returncode == 0, result.stderr
    assert not link.exists() and not (home / ".local/share/jobctl").exists()
    assert "your crontab still mentions jobctl" in result.stderr
    shutil.rmtree(home / ".local")
    stub_install(home)
    result = as_user(f"bash {INSTALL} --uninstall", home, PATH=f"{fake_crontab(home / 'none', None)}:{USER_PATH}")
    assert result.returncode == 0 and not link.exists(), result.stderr
    for bad in ("--force", "--dev --force", "--dev --uninstall"):
        result = as_user(f"bash {INSTALL} {bad}", home)
        assert result.returncode == 2 and result.stderr.startswith("install.sh: error: "), (bad, result.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="root's uninstall: /etc/cron.d/jobctl")
def test_uninstall_as_root_refuses_while_the_system_crontab_exists(home: Path) -> None:
    """As root: /etc/cron.d/jobctl (here a scratch file in its place) and root's crontab both count."""
    venv = home / "opt-jobctl"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    cron_d = home / "cron.d-jobctl"
    cron_d.write_text(BLOCK)
    script = (f"source {INSTALL}; is_root=1; venv={venv}; bin_dir={home}/bin; man_dir={home}/man; "
              f"cron_d={cron_d}; force=${{FORCE:-0}}; do_uninstall")

    def uninstall(crontab: str | None, force: str = "0") -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{fake_crontab(home / 'fake', crontab)}:{USER_PATH}", "HOME": str(home), "FORCE": force}
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)

    result = uninstall(None)
    assert result.returncode == 1 and venv.exists()
    assert f"still installed in {cron_d};" in result.stderr and "Run jobctl uninstall --system first" in result.stderr
    result = uninstall(BLOCK)
    assert result.returncode == 1 and venv.exists()
    assert (f"still installed in your crontab (crontab -l) and {cron_d};" in result.stderr
            and "Run jobctl uninstall and jobctl uninstall --system first" in result.stderr)
    result = uninstall(BLOCK, force="1")
    assert result.returncode == 0 and not venv.exists(), result.stderr
    assert f"{cron_d} still exists" in result.stderr
