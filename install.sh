#!/usr/bin/env bash
# Install jobctl from this checkout into its own virtual environment.
#
#   ./install.sh              install (or update) jobctl and put it on PATH
#   ./install.sh --dev        create ./.venv with the test dependencies
#   ./install.sh --uninstall  remove what ./install.sh installed
#
# Safe to run again: a re-run reuses the environment and reinstalls jobctl
# from the checkout, so local changes are picked up even when the version
# number did not change.
set -euo pipefail
umask 022

readonly PROG=install.sh
readonly MIN_PY=(3 10)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
readonly repo

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    cat <<EOF
Usage: ./install.sh [--dev | --uninstall [--force] | --help]

Install jobctl from this checkout ($repo).

  (no option)   Install or update jobctl in its own virtual environment and
                put \`jobctl\` on PATH, with its man page.
                  as root: /opt/jobctl, /usr/local/bin/jobctl,
                           /usr/local/share/man/man1/jobctl.1,
                           /usr/local/share/bash-completion/completions/jobctl
                  others:  ~/.local/share/jobctl, ~/.local/bin/jobctl,
                           ~/.local/share/man/man1/jobctl.1,
                           ~/.local/share/bash-completion/completions/jobctl
                As root on Debian it first installs what is missing with
                apt-get: python3 and python3-venv, cron (the daemon that runs
                the jobs) and man-db.
  --dev         Create ./.venv in the checkout with jobctl installed editable
                and the test dependencies; then: .venv/bin/python -m pytest
                As root on Debian it also installs python3, python3-venv and
                cron when missing (the tests need crontab and the daemon).
  --uninstall   Remove the virtual environment, the jobctl command, the
                man page and the bash completion.  The run log (state
                directory) and the jobs directory are kept.
                It refuses while jobctl's jobs are installed (a jobctl
                block in your crontab, or /etc/cron.d/jobctl as root):
                their lines run this environment's python3, so they would
                fail on every run.  Run \`jobctl uninstall\` (and
                \`jobctl uninstall --system\`) first.
  --force       With --uninstall: remove it even so.
  -h, --help    Show this help.

Environment:
  JOBCTL_PYTHON  Python (>= ${MIN_PY[0]}.${MIN_PY[1]}) to build the environment with.
  PIP_*          pip settings (index, certificates, proxies) are used as set.
EOF
}

mode=install
force=0
for arg in "$@"; do
    case $arg in
        --dev|--uninstall)
            if [ "$mode" != install ]; then
                printf '%s: error: give at most one of --dev and --uninstall (see ./install.sh --help)\n' "$PROG" >&2
                exit 2
            fi
            mode=${arg#--} ;;
        --force) force=1 ;;
        -h|--help) usage; exit 0 ;;
        *) printf '%s: error: unknown option %s (see ./install.sh --help)\n' "$PROG" "$arg" >&2; exit 2 ;;
    esac
done
if [ "$force" -eq 1 ] && [ "$mode" != uninstall ]; then
    printf '%s: error: --force goes with --uninstall (see ./install.sh --help)\n' "$PROG" >&2
    exit 2
fi

if [ "$(id -u)" -eq 0 ]; then
    is_root=1
    venv=/opt/jobctl
    bin_dir=/usr/local/bin
    man_dir=/usr/local/share/man/man1
    # bash-completion loads /usr/local/share/bash-completion/completions/NAME (XDG_DATA_DIRS) on demand
    bash_completion_dir=/usr/local/share/bash-completion/completions
    # These two mirror jobctl/paths.py; uninstall names them and leaves them alone.
    state_dir=/var/lib/jobctl
    jobs_dir=/etc/jobctl/jobs.d
else
    is_root=0
    [ -n "${HOME:-}" ] || die "HOME is not set"
    venv=$HOME/.local/share/jobctl
    bin_dir=$HOME/.local/bin
    man_dir=$HOME/.local/share/man/man1
    # where bash-completion looks for a user's own completions
    bash_completion_dir=${BASH_COMPLETION_USER_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/bash-completion}/completions
    state_dir=${XDG_STATE_HOME:-$HOME/.local/state}/jobctl
    jobs_dir=$HOME/.config/jobctl/jobs.d
fi
dev_venv=$repo/.venv
#: the system crontab `jobctl apply --system` writes (mirrors jobctl/paths.py)
cron_d=/etc/cron.d/jobctl
man_src=$repo/man/jobctl.1

have() { command -v "$1" >/dev/null 2>&1; }

has_apt=0
have apt-get && has_apt=1

# ---------------------------------------------------------------- packages

# Debian packages to install; collected first so apt-get runs (and updates
# its lists) once.
apt_pkgs=()

want_pkg() {
    local p
    for p in "$@"; do
        case " ${apt_pkgs[*]-} " in *" $p "*) ;; *) apt_pkgs+=("$p") ;; esac
    done
}

# apt-get's output goes to a log shown only when it fails.
apt_install() {
    [ "${#apt_pkgs[@]}" -gt 0 ] || return 0
    local log
    log=$(mktemp -t jobctl-install-apt.XXXXXX)
    say "installing Debian packages: ${apt_pkgs[*]} (apt-get update, then install)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${apt_pkgs[@]}"; } \
        </dev/null >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        die "apt-get install ${apt_pkgs[*]} failed (full output: $log)"
    fi
    rm -f "$log"
    hash -r
}

cron_running() {
    local comm
    for comm in /proc/[0-9]*/comm; do
        case $(cat "$comm" 2>/dev/null) in cron|crond) return 0 ;; esac
    done
    return 1
}

# ------------------------------------------------------------------ python

# Prints why "$1" cannot build jobctl's environment; prints nothing when it can.
python_problem() {
    local py=$1 out
    if ! out=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null); then
        echo "missing"
        return
    fi
    if ! "$py" -c "import sys; sys.exit(sys.version_info < (${MIN_PY[0]}, ${MIN_PY[1]}))" 2>/dev/null; then
        echo "old $out"
        return
    fi
    # Debian ships venv without ensurepip until python3-venv is installed.
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        echo "novenv $out"
    fi
}

apt_hint() {
    if [ "$has_apt" -eq 1 ]; then
        echo "as root: apt-get update && apt-get install python3 python3-venv"
    else
        echo "install Python >= ${MIN_PY[0]}.${MIN_PY[1]} with its venv module"
    fi
}

# Chooses the interpreter ($py) and asks for Debian packages when it is
# missing.  A system install as root uses Debian's /usr/bin/python3 so the
# environment never depends on a per-user Python (pyenv, ~/.local) that
# other users cannot read.
choose_python() {
    local problem
    if [ -n "${JOBCTL_PYTHON:-}" ]; then
        py=$JOBCTL_PYTHON
    elif [ "$mode" = install ] && [ "$is_root" -eq 1 ] && [ "$has_apt" -eq 1 ]; then
        py=/usr/bin/python3
    elif have python3; then
        py=$(command -v python3)
    elif [ "$is_root" -eq 1 ] && [ "$has_apt" -eq 1 ]; then
        py=/usr/bin/python3
    else
        die "python3 not found; jobctl needs Python >= ${MIN_PY[0]}.${MIN_PY[1]} with the venv module ($(apt_hint))"
    fi

    problem=$(python_problem "$py")
    case $problem in
        "") ;;
        missing)
            if [ "$py" = /usr/bin/python3 ] && [ "$is_root" -eq 1 ] && [ "$has_apt" -eq 1 ]; then
                say "python3 is not installed; installing Debian's python3 and python3-venv"
                want_pkg python3 python3-venv
            else
                die "cannot run $py; jobctl needs Python >= ${MIN_PY[0]}.${MIN_PY[1]} with the venv module ($(apt_hint))"
            fi
            ;;
        old\ *)
            die "$py is Python ${problem#old }; jobctl needs Python >= ${MIN_PY[0]}.${MIN_PY[1]}. Install a newer Python and run again with JOBCTL_PYTHON=/path/to/python3.X"
            ;;
        novenv\ *)
            if [ "$py" = /usr/bin/python3 ] && [ "$is_root" -eq 1 ] && [ "$has_apt" -eq 1 ]; then
                say "$py has no venv module; installing Debian's python3-venv"
                want_pkg python3-venv
            else
                die "$py (Python ${problem#novenv }) cannot create virtual environments ($(apt_hint))"
            fi
            ;;
    esac
}

# Run after apt_install: the packages asked for must have fixed the problem.
check_python() {
    local problem
    problem=$(python_problem "$py")
    case $problem in
        "") ;;
        missing) die "$py is still missing after installing packages" ;;
        old\ *) die "$py is Python ${problem#old }; jobctl needs Python >= ${MIN_PY[0]}.${MIN_PY[1]}" ;;
        novenv\ *) die "$py still cannot create virtual environments ($(apt_hint))" ;;
    esac
}

# Creates the virtual environment $1, or reuses a working one.  A broken one
# (no pip, its Python gone) is made anew; anything that is not a virtual
# environment is left alone.
ensure_venv() {
    local dir=$1
    if [ -e "$dir" ] && [ ! -f "$dir/pyvenv.cfg" ]; then
        if [ -d "$dir" ] && [ -z "$(ls -A "$dir")" ]; then
            rmdir "$dir"
        else
            die "$dir exists and is not a virtual environment; move it away and run again"
        fi
    fi
    if [ -f "$dir/pyvenv.cfg" ]; then
        if "$dir/bin/python" -c "import sys, pip; sys.exit(sys.version_info < (${MIN_PY[0]}, ${MIN_PY[1]}))" \
            >/dev/null 2>&1; then
            say "reusing the virtual environment $dir"
            return
        fi
        say "the virtual environment $dir is broken; creating it anew"
        rm -rf "$dir"
    fi
    say "creating the virtual environment $dir ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
    mkdir -p "$(dirname "$dir")"
    if ! "$py" -m venv "$dir"; then
        rm -rf "$dir"
        die "could not create the virtual environment $dir"
    fi
}

venv_pip() {
    "$1/bin/python" -m pip --disable-pip-version-check "${@:2}"
}

# ---------------------------------------------------------------- install

install_man_page() {
    if [ ! -f "$man_src" ]; then
        say "note: man/jobctl.1 is not in this checkout yet; skipping the man page"
        return
    fi
    mkdir -p "$man_dir"
    install -m 0644 "$man_src" "$man_dir/jobctl.1"
    say "installed the man page $man_dir/jobctl.1"
    if have mandb; then
        mandb -q >/dev/null 2>&1 || true
    fi
    if ! have man; then
        warn "the man command is missing; install man-db to read jobctl(1)"
    fi
}

# The bash completion, written by `jobctl completion bash`; its first line names that command.
readonly completion_mark='(jobctl completion bash)'

install_bash_completion() {
    local file=$bash_completion_dir/jobctl tmp
    if [ -e "$file" ] && ! grep -qF "$completion_mark" "$file"; then
        warn "$file exists and was not written by jobctl; left alone (jobctl completion bash prints the script)"
        return 0
    fi
    tmp=$(mktemp -t jobctl-completion.XXXXXX)
    if ! "$venv/bin/jobctl" completion bash >"$tmp" 2>/dev/null; then
        rm -f "$tmp"
        warn "jobctl completion bash failed; the bash completion is not installed"
        return 0
    fi
    if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        say "the bash completion $file is up to date"
    else
        mkdir -p "$bash_completion_dir"
        install -m 0644 "$tmp" "$file"
        rm -f "$tmp"
        say "installed the bash completion $file"
    fi
    if [ ! -r /usr/share/bash-completion/bash_completion ]; then
        # shellcheck disable=SC2016  # printed for the user to type, unexpanded
        say "note: bash loads it through the bash-completion package, which is missing (as root: apt-get install" \
            "bash-completion); or add this line to ~/.bashrc: source $(home_short "$file" '$HOME')"
    fi
}

link_command() {
    local link=$bin_dir/jobctl target=$venv/bin/jobctl found
    mkdir -p "$bin_dir"
    if [ -e "$link" ] && [ ! -L "$link" ]; then
        die "$link exists and is not a symlink; move it away and run again"
    fi
    if [ -L "$link" ] && [ "$(readlink "$link")" != "$target" ]; then
        say "replacing the symlink $link -> $(readlink "$link")"
    fi
    ln -sfn "$target" "$link"
    say "linked $link -> $target"

    if on_path "$bin_dir"; then
        found=$(type -P jobctl || true)
        if [ -n "$found" ] && [ "$found" != "$link" ]; then
            warn "$found comes before $link on PATH; remove it or reorder PATH"
        fi
    fi
}

# $1 with a leading $HOME written as $2 (default ~), for messages.
home_short() {
    case $1 in
        "$HOME"/*) printf '%s%s\n' "${2:-"~"}" "${1#"$HOME"}" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

on_path() {
    case ":$PATH:" in *":$1:"*) return 0 ;; esac
    return 1
}

# The file a login shell of this user reads first, where a PATH line belongs.
login_file() {
    local shell=${SHELL:-}
    [ -n "$shell" ] || shell=$(getent passwd "$(id -un)" 2>/dev/null | cut -d: -f7)
    case $shell in
        */bash)
            for f in .bash_profile .bash_login .profile; do
                [ -e "$HOME/$f" ] && { echo "$HOME/$f"; return; }
            done
            echo "$HOME/.profile"
            ;;
        */zsh) echo "$HOME/.zprofile" ;;
        *) echo "$HOME/.profile" ;;
    esac
}

# What to type next, true for the shell that ran install.sh: a shell cannot
# change its parent's PATH, so when $bin_dir is not on it yet (a non-root user
# on a fresh Debian: ~/.profile adds ~/.local/bin only once it exists, at the
# next login) say how to reach jobctl now and from the next login, and the
# same for its man page.
next_steps() {
    local link=$bin_dir/jobctl file shown
    if on_path "$bin_dir"; then
        say "next: jobctl plan  (what jobctl apply would change in your crontab; then jobctl apply)"
    elif [ "$is_root" -eq 1 ]; then
        say "$bin_dir is not on PATH; run jobctl by its path, next: $link plan"
    else
        file=$(login_file)
        shown=$(home_short "$file")
        say "$bin_dir is not on this shell's PATH yet, so \`jobctl\` alone is not found. Next, either put it on PATH for this shell:"
        # shellcheck disable=SC2016  # printed for the user to type, unexpanded
        printf '    export PATH="$HOME/.local/bin:$PATH"\n    jobctl plan\n'
        say "or run it by its path:"
        printf '    %s plan\n' "$link"
        if [ -f "$file" ] && grep -q '\.local/bin' "$file"; then
            say "from your next login $bin_dir is on PATH: $shown adds it (once it exists, as now)"
        else
            say "to have it on PATH from your next login, add the export line above to $shown"
        fi
    fi
    man_steps
}

# How `man jobctl` finds the page installed in $man_dir, checked with man itself.
man_steps() {
    local root=${man_dir%/man1} manpath
    have man || return 0
    if man -w jobctl >/dev/null 2>&1; then
        return 0
    fi
    # man-db derives a man directory from each PATH entry (~/.local/bin -> ~/.local/share/man)
    if [ -z "${MANPATH:-}" ] && PATH="$bin_dir:$PATH" man -w jobctl >/dev/null 2>&1; then
        say "man jobctl finds the page once $bin_dir is on PATH (man looks in $root beside it)"
        return 0
    fi
    # A MANPATH ending in ':' keeps the system's directories after ours.
    manpath="$root:${MANPATH:-}"
    if MANPATH=$manpath man -w jobctl >/dev/null 2>&1; then
        say "man jobctl needs $root on MANPATH; for this shell (and in $(home_short "$(login_file)") for later logins):"
        # shellcheck disable=SC2016  # printed for the user to type, unexpanded
        printf '    export MANPATH="%s:${MANPATH:-}"\n' "$(home_short "$root" '$HOME')"
    else
        say "man jobctl: read the page with: man -l $man_dir/jobctl.1"
    fi
}

do_install() {
    choose_python
    if [ "$is_root" -eq 1 ]; then
        if [ ! -x /usr/sbin/cron ]; then
            if [ "$has_apt" -eq 1 ]; then
                say "no cron daemon (/usr/sbin/cron) found; installing Debian's cron package to run the jobs"
                want_pkg cron
            else
                warn "no cron daemon (/usr/sbin/cron) found; install one to run the jobs"
            fi
        fi
        if ! have man && [ "$has_apt" -eq 1 ]; then
            say "the man command is missing; installing man-db for jobctl(1)"
            want_pkg man-db
        fi
    elif ! have crontab; then
        warn "no crontab command found; jobctl needs cron to run jobs (as root: apt-get install cron)"
    fi
    apt_install
    check_python

    ensure_venv "$venv"
    local tmp wheel
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -rf '$tmp'" EXIT
    # Build from a clean copy: setuptools reuses ./build, so a module deleted
    # from the checkout would otherwise live on in the wheel; and the
    # checkout may belong to another user.
    say "building jobctl from $repo"
    mkdir "$tmp/src"
    tar -C "$repo" -cf - \
        --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
        --exclude=.ruff_cache --exclude=.hypothesis --exclude=./bench/out . \
        | tar -C "$tmp/src" -xf - || die "copying $repo failed"
    venv_pip "$venv" wheel --quiet --no-deps --wheel-dir "$tmp/wheel" "$tmp/src" || die "building jobctl failed"
    wheel=$(echo "$tmp"/wheel/jobctl-*.whl)
    [ -f "$wheel" ] || die "building jobctl produced no wheel in $tmp"
    say "installing jobctl and its dependencies into $venv"
    venv_pip "$venv" install --quiet --upgrade "$wheel" || die "installing jobctl's dependencies failed"
    # The same version number may hide a changed checkout: replace it always.
    venv_pip "$venv" install --quiet --force-reinstall --no-deps "$wheel" || die "installing jobctl failed"
    "$venv/bin/jobctl" --version >/dev/null || die "$venv/bin/jobctl does not run"

    link_command
    install_man_page
    install_bash_completion

    if [ "$is_root" -eq 1 ] && [ -x /usr/sbin/cron ] && ! cron_running; then
        say "note: the cron daemon is not running; start it (systemctl start cron, or service cron start) for jobs to run"
    fi
    say "done: $("$venv/bin/jobctl" --version) in $venv"
    next_steps
}

do_dev() {
    choose_python
    if ! have crontab || [ ! -x /usr/sbin/cron ]; then
        if [ "$is_root" -eq 1 ] && [ "$has_apt" -eq 1 ]; then
            say "no cron found; installing Debian's cron package (the tests need crontab and the daemon)"
            want_pkg cron
        else
            warn "cron is missing; tests that need crontab will fail or skip (as root: apt-get install cron)"
        fi
    fi
    apt_install
    check_python

    ensure_venv "$dev_venv"
    say "installing jobctl (editable) and the test dependencies into $dev_venv"
    venv_pip "$dev_venv" install --quiet -e "${repo}[test]" || die "installing the test dependencies failed"
    say "done: run the tests with: .venv/bin/python -m pytest"
}

# -------------------------------------------------------------- uninstall

# jobctl's crontab lines run this environment's python3: removing it under them
# leaves lines that fail on every run.  Refuse (exit 1, nothing changed) while
# there are any, unless --force.
check_no_jobs_installed() {
    local where=() how=() text=""
    # read whole before grep: with pipefail, grep -q ending first could make the pipe fail
    if have crontab; then text=$(crontab -l 2>/dev/null) || text=""; fi
    if grep -q '^# BEGIN jobctl ' <<<"$text"; then
        where+=("your crontab (crontab -l)")
        how+=("jobctl uninstall")
    fi
    if [ "$is_root" -eq 1 ] && [ -e "$cron_d" ]; then
        where+=("$cron_d")
        how+=("jobctl uninstall --system")
    fi
    [ "${#where[@]}" -eq 0 ] && return 0
    die "jobctl's jobs are still installed in $(join_and "${where[@]}"); their lines run $venv's python3, which" \
        "--uninstall removes, so every run would fail. Run $(join_and "${how[@]}") first (or" \
        "./install.sh --uninstall --force to remove jobctl anyway); nothing was changed"
}

join_and() {
    local out=$1 x
    shift
    for x in "$@"; do out="$out and $x"; done
    printf '%s' "$out"
}

do_uninstall() {
    local link=$bin_dir/jobctl page=$man_dir/jobctl.1 removed=0
    [ "$force" -eq 1 ] || check_no_jobs_installed
    if [ -L "$link" ]; then
        if [ "$(readlink "$link")" = "$venv/bin/jobctl" ]; then
            rm -f "$link"
            say "removed $link"
            removed=1
        else
            warn "$link points to $(readlink "$link"), not to $venv; left alone"
        fi
    elif [ -e "$link" ]; then
        warn "$link is not a symlink made by install.sh; left alone"
    fi

    if [ -f "$venv/pyvenv.cfg" ]; then
        rm -rf "$venv"
        say "removed $venv"
        removed=1
    elif [ -e "$venv" ]; then
        warn "$venv is not a virtual environment; left alone"
    fi

    if [ -f "$page" ]; then
        rm -f "$page"
        say "removed $page"
        removed=1
        if have mandb; then
            mandb -q >/dev/null 2>&1 || true
        fi
    fi

    if [ -f "$bash_completion_dir/jobctl" ] && grep -qF "$completion_mark" "$bash_completion_dir/jobctl"; then
        rm -f "$bash_completion_dir/jobctl"
        say "removed $bash_completion_dir/jobctl"
        removed=1
    fi

    [ "$removed" -eq 1 ] || say "jobctl was not installed for this user; nothing to remove"

    # Name only what exists: "kept" a directory that was never made misleads.
    if [ -e "$state_dir" ]; then
        say "kept the run log and state directory $state_dir (remove it by hand if you want it gone)"
    fi
    if [ -e "$jobs_dir" ]; then
        say "kept the jobs directory $jobs_dir (remove it by hand if you want it gone)"
    fi
    if [ "$is_root" -eq 1 ] && [ -e "$cron_d" ]; then
        warn "$cron_d still exists and its jobs call jobctl; remove it"
    elif [ "$is_root" -eq 0 ] && have crontab && crontab -l 2>/dev/null | grep -q jobctl; then
        warn "your crontab still mentions jobctl; edit it with crontab -e"
    fi
    if [ -d "$dev_venv" ]; then
        say "kept the development environment $dev_venv"
    fi
    if [ "$is_root" -eq 1 ]; then  # only root's install asks apt-get for packages
        say "kept Debian packages (python3, cron, man-db) that may have been installed"
    fi
    return 0
}

# Sourced (tests call the functions above), install.sh stops here.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

case $mode in
    install) do_install ;;
    dev) do_dev ;;
    uninstall) do_uninstall ;;
esac
