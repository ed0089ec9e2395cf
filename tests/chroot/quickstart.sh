#!/usr/bin/env bash
# Step functions are called through step(); single-quoted commands expand in the chroot.
# shellcheck disable=SC2317,SC2016
# Check install.sh on a fresh Debian 12: a debootstrap minbase chroot, which
# has neither python3 nor python3-venv, cron or man.  Not run by the test
# suite; run it by hand as root:
#
#   tests/chroot/quickstart.sh [options] CHROOT_DIR
#
#   --fresh          delete CHROOT_DIR and debootstrap it anew (default: reuse
#                    it, or create it when it does not exist)
#   --head           copy `git archive HEAD` instead of the work tree
#                    (tracked and untracked files that git does not ignore)
#   --ci             also run `CI=true bash .ci/run` in another fresh copy
#   --pypi-only      ignore the host's pip config and local wheel mirrors:
#                    only PyPI (with PIP_CERT) is used
#   --stub-man-page  when man/jobctl.1 is not in the checkout yet, put a stub
#                    in the copy so the man page path is exercised
#   --no-suite       run the README's test command with pytest --collect-only
#                    (installs and collects everything, runs no test)
#
# The README's quick start is run as written: its first two ```sh blocks
# (install, plan, apply and status; the test suite), taken from the copy.
#
# Steps, each timed, all as root inside the chroot unless said:
#   0. (fresh chroot only) as a user: ./install.sh must fail, naming apt-get
#   1. the README's first command, then crontab -l, validate,
#      doctor, man -w jobctl, jobctl uninstall
#   2. ./install.sh again (idempotent) after a change in the copy that keeps
#      the version number: the change must reach the installed package
#   3. the README's second command (./install.sh --dev && .venv/bin/python -m
#      pytest), then ./install.sh --dev again
#   4. as a user whose PATH lacks ~/.local/bin (a fresh login): the README's
#      first command and man -w jobctl; ./install.sh alone
#      prints a command by absolute path that works; a login shell finds
#      jobctl and its page; jobctl uninstall; ./install.sh --uninstall names
#      only directories that exist
#   5. ./install.sh --uninstall (twice): the state directory is kept
#   6. (--ci) CI=true bash .ci/run in a fresh copy
#
# The host's network setup is mirrored in the chroot: resolv.conf, the CA
# certificates from /usr/local/share/ca-certificates (PIP_CERT points at a
# bundle of them and the host's bundle), the host's pip config files, the
# files and directories they name (bind-mounted read-only) and its PIP_*
# variables.  /usr/sbin/policy-rc.d keeps apt from starting daemons.
# Everything mounted is unmounted on exit.
set -euo pipefail

PROG=quickstart.sh
say() { printf '\n%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

fresh=0 head=0 ci=0 pypi_only=0 stub_man=0 no_suite=0 root_dir=
while [ $# -gt 0 ]; do
    case $1 in
        --fresh) fresh=1 ;;
        --no-suite) no_suite=1 ;;
        --head) head=1 ;;
        --ci) ci=1 ;;
        --pypi-only) pypi_only=1 ;;
        --stub-man-page) stub_man=1 ;;
        -h|--help) sed -n '4,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$root_dir" ] || die "one CHROOT_DIR only"; root_dir=$1 ;;
    esac
    shift
done
[ -n "$root_dir" ] || die "usage: $0 [--fresh] [--head] [--ci] [--pypi-only] [--stub-man-page] [--no-suite] CHROOT_DIR"
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, mount, chroot)"
case $root_dir in /*) ;; *) root_dir=$PWD/$root_dir ;; esac
root_dir=${root_dir%/}
if [ -z "$root_dir" ] || [ "$root_dir" = / ]; then die "refusing to use / as the chroot"; fi
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

# ------------------------------------------------------------------ mounts
mounts=()
chroot_pids() {  # live processes whose root is the chroot: ours, started by these steps
    local p root
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$root" = "$root_dir" ] || continue
        [ "$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || continue
        echo "${p#/proc/}"
    done
}
unmount_all() {
    local i pid tries
    for pid in $(chroot_pids); do
        echo "$PROG: stopping pid $pid left in the chroot: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        kill "$pid" 2>/dev/null || true
    done
    for ((tries = 0; tries < 50; tries++)); do
        [ -z "$(chroot_pids)" ] && break
        sleep 0.1
    done
    for pid in $(chroot_pids); do
        echo "$PROG: pid $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -R "${mounts[i]}" 2>/dev/null || umount -R -l "${mounts[i]}" || echo "$PROG: could not unmount ${mounts[i]}" >&2
    done
    mounts=()
}
trap unmount_all EXIT

bind_ro() {  # host path -> same path in the chroot, read-only
    local p=$1 t=$root_dir$1
    mkdir -p "$t"
    mountpoint -q "$t" && return 0
    mount --bind "$p" "$t"
    mount -o remount,bind,ro "$t"
    mounts+=("$t")
}

# ------------------------------------------------------------------ chroot
# The Debian mirror the host uses (deb822 .sources or sources.list).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\/.*\/debian\/?$/) {print $i; exit}}' "$f"
    done
}
mirror=${QUICKSTART_MIRROR:-$(host_mirror | head -n1)}
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list(.d); set QUICKSTART_MIRROR"

if [ "$fresh" -eq 1 ] && [ -e "$root_dir" ]; then
    awk -v r="$root_dir" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r \
        | while IFS= read -r m; do umount -R -l "$m" || true; done
    say "removing $root_dir"
    rm -rf --one-file-system "$root_dir"
fi
new_chroot=0
if [ ! -x "$root_dir/bin/sh" ]; then
    say "debootstrap --variant=minbase bookworm $root_dir $mirror"
    t0=$SECONDS
    debootstrap --variant=minbase bookworm "$root_dir" "$mirror" >"$root_dir.debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $root_dir.debootstrap.log"
    echo "debootstrap took $((SECONDS - t0))s (log: $root_dir.debootstrap.log)"
    new_chroot=1
fi

say "setting up $root_dir like the host (apt sources, DNS, CA certificates, pip config)"
# apt: the host's Debian sources (main, updates, security) if deb822, else debootstrap's.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$root_dir/etc/apt/sources.list.d/debian.sources"
    : >"$root_dir/etc/apt/sources.list"
fi
printf '#!/bin/sh\n# quickstart.sh: no daemons started by apt in this chroot\nexit 101\n' >"$root_dir/usr/sbin/policy-rc.d"
chmod 0755 "$root_dir/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root_dir/etc/resolv.conf"

# CA certificates: the host's own ones, plus the host's bundle, for pip.
mkdir -p "$root_dir/usr/local/share/ca-certificates"
bundle=/usr/local/share/ca-certificates/quickstart-bundle.pem
: >"$root_dir$bundle"
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$crt" ] || continue
    cp "$crt" "$root_dir/usr/local/share/ca-certificates/"
    cat "$crt" >>"$root_dir$bundle"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cat /etc/ssl/certs/ca-certificates.crt >>"$root_dir$bundle"
fi

if ! mountpoint -q "$root_dir/proc"; then mount -t proc proc "$root_dir/proc"; fi
mounts+=("$root_dir/proc")
if ! mountpoint -q "$root_dir/dev"; then mount --rbind /dev "$root_dir/dev"; mount --make-rslave "$root_dir/dev"; fi
mounts+=("$root_dir/dev")

chroot_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
            "PIP_CERT=$bundle" "PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-60}")
if [ "$pypi_only" -eq 1 ]; then
    chroot_env+=(PIP_CONFIG_FILE=/dev/null)
else
    # pip config files and the local paths they (and PIP_* variables) name.
    for conf in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.config/pip/pip.conf" "$HOME/.pip/pip.conf" \
                ${PIP_CONFIG_FILE:+"$PIP_CONFIG_FILE"}; do
        [ -f "$conf" ] || continue
        mkdir -p "$root_dir$(dirname "$conf")"
        cp "$conf" "$root_dir$conf"
    done
    while IFS= read -r var; do
        case $var in PIP_CERT=*|PIP_DEFAULT_TIMEOUT=*) ;; *) chroot_env+=("$var") ;; esac
    done < <(env | grep '^PIP_[A-Z_]*=' || true)
    while IFS= read -r p; do
        case $p in /etc/ssl/*|/usr/local/share/ca-certificates/*) continue ;; esac  # certs: PIP_CERT
        # A local index's pages link to files beside simple/ (../../files/x.whl).
        case ${p%/} in */simple) p=$(dirname "${p%/}") ;; esac
        if [ -d "$p" ]; then
            bind_ro "$p"
        elif [ -f "$p" ]; then
            mkdir -p "$root_dir$(dirname "$p")"
            cp "$p" "$root_dir$p"
        fi
    done < <({ python3 -m pip config list 2>/dev/null | sed -E "s/^[^=]+='(.*)'$/\1/"
               env | sed -n 's/^PIP_[A-Z_]*=//p'; } | tr ' ' '\n' | sed 's|^file://||' | grep '^/' | sort -u)
fi

in_chroot() {  # in_chroot COMMAND...: run a bash command line as root in the chroot
    chroot "$root_dir" /usr/bin/env -i "${chroot_env[@]}" /bin/bash -c "set -euo pipefail; $*"
}
as_user() {  # as_user COMMAND...: the same as the user "tester" (HOME=/home/tester)
    chroot "$root_dir" /usr/bin/env -i "${chroot_env[@]}" HOME=/home/tester USER=tester \
        /usr/sbin/runuser -u tester -- /bin/bash -c "set -euo pipefail; cd; $*"
}

# ------------------------------------------------------------------ steps
results=()
failed=0
step() {  # step NAME COMMAND-FUNCTION...
    local name=$1 t0 rc=0
    shift
    say "== $name"
    t0=$(date +%s.%N)
    "$@" || rc=$?
    local dt
    dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    if [ "$rc" -eq 0 ]; then results+=("ok    ${dt}s  $name"); else results+=("FAIL  ${dt}s  $name (exit $rc)"); failed=1; fi
    return 0
}

copy_repo() {  # copy_repo DEST (inside the chroot)
    rm -rf --one-file-system "${root_dir:?}$1"
    mkdir -p "$root_dir$1"
    if [ "$head" -eq 1 ]; then
        # git archive writes files 0664 (its tar.umask is 0002) and tar as root
        # keeps that; a clone on Debian is 0644, and as root jobctl refuses a
        # group-writable job file
        git -C "$src" -c tar.umask=0022 archive HEAD | tar -x -C "$root_dir$1"
    else
        (cd "$src" && git ls-files -z -co --exclude-standard \
            | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
            | tar --null -T - -cf -) | tar -x -C "$root_dir$1"
    fi
    if [ "$stub_man" -eq 1 ] && [ ! -f "$root_dir$1/man/jobctl.1" ]; then
        mkdir -p "$root_dir$1/man"
        printf '.TH JOBCTL 1\n.SH NAME\njobctl \\- stub page written by quickstart.sh\n' >"$root_dir$1/man/jobctl.1"
    fi
}

say "copying $src into $root_dir/repo ($([ "$head" -eq 1 ] && echo 'git archive HEAD' || echo 'work tree'))"
copy_repo /repo

readme_block() {  # readme_block N: the Nth ```sh block of the copy's README, one line
    awk -v n="$1" '/^```sh$/ { if (++k == n) { on = 1; next } } on && /^```$/ { exit } on' "$root_dir/repo/README.md"
}
quick_install=$(readme_block 1)
quick_apply=true  # the README's first command installs, plans and applies in one line
quick_tests=$(readme_block 2)
printf 'README quick start:\n  1: %s\n  2: %s\n' "$quick_install" "$quick_tests"
case $quick_install in ./install.sh*) ;; *) die "the README's first command does not start with ./install.sh" ;; esac
[ "$quick_tests" = "./install.sh --dev && .venv/bin/python -m pytest" ] \
    || die "the README's second command is not the test command .ci/run runs"
in_chroot 'id tester >/dev/null 2>&1 || useradd --create-home --shell /bin/bash tester'

if [ "$new_chroot" -eq 1 ] || [ ! -x "$root_dir/usr/bin/python3" ]; then
    no_python_as_user() {
        local out rc=0
        copy_repo /home/tester/jobctl || return
        chroot "$root_dir" chown -R tester: /home/tester/jobctl || return
        out=$(as_user 'cd jobctl && ./install.sh' 2>&1) || rc=$?
        printf '%s\n' "$out"
        [ "$rc" -ne 0 ] && grep -q 'apt-get install python3 python3-venv' <<<"$out"
    }
    step "no python3, as a user: ./install.sh fails naming apt-get" no_python_as_user
fi

# Step functions run where `set -e` is off (under ||): each line returns on failure.
install_and_check() {
    # the README's first two commands, exactly, in one shell as an operator types them
    in_chroot "cd /repo && $quick_install && $quick_apply" || return
    in_chroot 'crontab -l | grep -c "# jobctl:" && jobctl validate && jobctl --version && jobctl doctor; true' || return
    if [ -f "$root_dir/repo/man/jobctl.1" ]; then
        in_chroot 'man -w jobctl' || return
    else
        echo "man/jobctl.1 is not in the checkout yet: man -w jobctl not checked (try --stub-man-page)"
    fi
    in_chroot 'cd /repo && jobctl uninstall'
}
step "as root: README quick start ($quick_install; $quick_apply), man -w jobctl" install_and_check

rerun_picks_up_change() {
    local f=$root_dir/repo/jobctl/__init__.py marker
    marker="# quickstart.sh re-run marker $RANDOM$RANDOM"
    cp "$f" "$f.orig" || return
    printf '%s\n' "$marker" >>"$f" || return
    in_chroot 'cd /repo && ./install.sh' || { mv "$f.orig" "$f"; return 1; }
    mv "$f.orig" "$f" || return
    in_chroot "grep -q '$marker' /opt/jobctl/lib/python3*/site-packages/jobctl/__init__.py" \
        || { echo "the re-run did not reinstall the changed checkout"; return 1; }
    in_chroot 'jobctl --version'
}
step "./install.sh again (idempotent; same version, changed file is reinstalled)" rerun_picks_up_change

if [ "$no_suite" -eq 1 ]; then
    step "$quick_tests --collect-only (--no-suite)" in_chroot "cd /repo && $quick_tests --collect-only -q | tail -n 1"
else
    step "$quick_tests" in_chroot "cd /repo && $quick_tests -q"
fi
step "./install.sh --dev again (idempotent)" in_chroot 'cd /repo && ./install.sh --dev'

user_install() {
    local out by_path
    copy_repo /home/tester/jobctl || return
    chroot "$root_dir" chown -R tester: /home/tester/jobctl || return
    # a fresh login's PATH has no ~/.local/bin: the README's commands, in one shell
    as_user 'case ":$PATH:" in *":$HOME/.local/bin:"*) echo "PATH already has ~/.local/bin"; exit 1 ;; esac' || return
    as_user "cd jobctl && $quick_install && $quick_apply && man -w jobctl" || return
    as_user 'crontab -l | grep -c "# jobctl:"' || return
    # install.sh on its own says how to reach jobctl from this shell: the absolute path works
    out=$(as_user 'cd jobctl && ./install.sh') || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    by_path=$(awk '/or run it by its path:/ { getline; sub(/^ +/, ""); print; exit }' <<<"$out")
    [ -n "$by_path" ] || { echo "install.sh printed no command by absolute path"; return 1; }
    as_user "cd jobctl && $by_path" || return
    # from the next login, Debian's ~/.profile puts ~/.local/bin on PATH (and man follows PATH)
    as_user "bash --login -c 'command -v jobctl && man -w jobctl'" || return
    as_user 'cd jobctl && ~/.local/bin/jobctl uninstall' || return
    out=$(as_user 'cd jobctl && ./install.sh --uninstall') || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    # only what is true: apply made the state directory, nothing made ~/.config/jobctl/jobs.d
    grep -q 'kept the run log and state directory /home/tester/.local/state/jobctl' <<<"$out" || return
    if grep -q 'jobs directory' <<<"$out"; then echo "uninstall names a jobs directory that does not exist"; return 1; fi
    as_user '! test -e ~/.local/share/jobctl && ! test -e ~/.local/bin/jobctl'
}
step "as a user: README quick start, install.sh's advice, next login, then --uninstall" user_install

uninstall_keeps_state() {
    in_chroot 'mkdir -p /var/lib/jobctl && touch /var/lib/jobctl/runs.db' || return
    in_chroot 'cd /repo && ./install.sh --uninstall' || return
    in_chroot '! test -e /opt/jobctl && ! test -e /usr/local/bin/jobctl && ! test -e /usr/local/share/man/man1/jobctl.1' || return
    in_chroot 'test -f /var/lib/jobctl/runs.db && ! command -v jobctl' || return
    in_chroot 'cd /repo && ./install.sh --uninstall' || return
    in_chroot 'rm -rf /var/lib/jobctl'
}
step "./install.sh --uninstall (twice): removes the install, keeps /var/lib/jobctl" uninstall_keeps_state

if [ "$ci" -eq 1 ]; then
    copy_repo /repo-ci
    step "CI=true bash .ci/run (fresh copy)" in_chroot 'cd /repo-ci && CI=true bash .ci/run'
fi

unmount_all
say "summary ($root_dir)"
printf '  %s\n' "${results[@]}"
exit "$failed"
