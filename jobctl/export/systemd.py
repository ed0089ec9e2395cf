"""Job specs → a systemd service and timer per job, run through the jobctl wrapper.

The service runs the wrapper as a crontab line does, with ``--timer``
(``python -I -S …/jobctl/runner/start.py --timer``), on the applied
definition (recorded by ``export systemd --record`` only: printing or writing
units changes no state), so locks, retries,
the timeout, the run log and notifications behave as under cron; systemd only
decides when.  The timer's ``OnCalendar=`` lines are computed from the value
sets jobctl's cron parser produces, so they mean what Debian's cron means,
including its day rule: when both day fields are restricted and neither
starts with ``*`` a day matches either of them, which one calendar expression
cannot say, so such a job gets two ``OnCalendar=`` lines.  The tests check
every conversion against ``systemd-analyze calendar``.

Job-to-job rules: ``lock_group`` and ``requires`` are the wrapper's (lock
files, the run log), so the unit carries them as cron does.  ``then`` and
``on_failure`` become ``OnSuccess=`` and ``OnFailure=``: the wrapper cannot
start them itself in a unit, since systemd kills what a oneshot service left
running when its main process ends, so every unit's wrapper gets
``--no-chain`` and systemd starts the next job's unit, once (a start of a
unit that is already running joins that run).  The unit of a job others
start that way skips a run when the unit that started it ended in a skip
(exit 75, a success to systemd), through ``$MONITOR_EXIT_STATUS`` (systemd
251 or later, and only when one unit lists it).  Systemd's ``Requires=`` and
``After=`` order units that run together; they cannot say "A's latest run
succeeded within 2h", so they are not used.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from jobctl import applied, paths
from jobctl.errors import EnvironmentProblem, JobctlError
from jobctl.install import compile
from jobctl.jobs import schedule as schedule_mod
from jobctl.jobs.spec import JobSpec
from jobctl.units import format_duration

from . import Export, Output, check_targets, consecutive_runs, header, one_line, paused_jobs

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # cron 1..6, then 0 (and 7)
#: time the wrapper needs after its own deadline to kill the job's group (≤ 2 s),
#: and record the run (the run log waits up to 15 s for a busy database)
WRAPPER_MARGIN = 30
#: the wrapper's exit status for a run skipped (concurrency: forbid, requires, a busy lock group); not a failure
EX_SKIPPED = 75
#: the wrapper flag that leaves then/on_failure to the unit's OnSuccess=/OnFailure=
NO_CHAIN = "--no-chain"
#: ExecStart= of a job that then/on_failure of another unit starts: a skipped run there
#: (exit 75, which SuccessExitStatus= makes a success) starts nothing, as under cron,
#: and the skip is passed on down the chain; started by its timer (or by more than one
#: unit, when systemd sets no MONITOR_*), the wrapper runs as usual.
CHAIN_GUARD = ("/bin/sh", "-c", f'test "${{MONITOR_EXIT_STATUS-}}" != {EX_SKIPPED} || exit {EX_SKIPPED}; exec "$@"',
               "jobctl")
_SAFE_ARG = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b",
              "\f": "\\f", "\v": "\\v"}


# --- calendar ----------------------------------------------------------------------------------

def _numbers(values: set[int], low: int, high: int) -> str:
    """One OnCalendar component: ``*``, or a list of values and ``a..b`` runs.

    Never the ``a/step`` repetition: systemd 252 mis-steps it when a step that
    does not divide the field wraps around two fields at once (``*:00/7``
    after 23:59 next elapses at 00:07, ``00/5:00`` after the last day of a
    month at 05:00), which the corpus test against systemd-analyze caught.
    """
    if values == set(range(low, high + 1)):
        return "*"
    return ",".join(f"{r[0]:02d}..{r[-1]:02d}" if len(r) >= 3 else ",".join(f"{v:02d}" for v in r)
                    for r in consecutive_runs(values))


def _weekdays(values: set[int]) -> str:
    """Cron weekdays (0 = Sunday) as systemd names in Mon..Sun order, runs of three or more as ``a..b``."""
    runs = consecutive_runs({(d - 1) % 7 for d in values})  # Mon=0 .. Sun=6
    return ",".join(f"{_WEEKDAYS[r[0]]}..{_WEEKDAYS[r[-1]]}" if len(r) >= 3 else ",".join(_WEEKDAYS[d] for d in r)
                    for r in runs)


def calendar(cron: str, timezone: str | None = None) -> list[str]:
    """The ``OnCalendar=`` values that elapse exactly when Debian's cron runs ``cron`` (5 fields)."""
    fields = schedule_mod.parse_cron(cron)
    (minute, _), (hour, _), (dom, dom_star), (month, _), (dow, dow_star) = fields
    time = f"{_numbers(hour, 0, 23)}:{_numbers(minute, 0, 59)}:00"
    months = _numbers(month, 1, 12)
    every_dom = dom == set(range(1, 32))
    every_dow = dow == set(range(7))
    zone = f" {timezone}" if timezone else ""

    def line(weekdays: str | None, days: str) -> str:
        return f"{weekdays + ' ' if weekdays else ''}*-{months}-{days} {time}{zone}"

    if dom_star or dow_star or every_dom or every_dow:
        # cron ANDs the two (or one of them is every day): one expression says it.
        if not (dom_star or dow_star):
            return [line(None, "*")]  # OR with a side that is every day: every day
        return [line(None if every_dow else _weekdays(dow), "*" if every_dom else _numbers(dom, 1, 31))]
    return [line(_weekdays(dow), "*"), line(None, _numbers(dom, 1, 31))]


def dst_notes(cron: str, zone_name: str, start: datetime, days: int = 366) -> list[str]:
    """Where systemd's handling of the zone's clock changes differs from cron's, within ``days``.

    Both run a fixed-time job once in a repeated hour and skip nonexistent
    times of a job with ``*`` in its minute or hour field.  But a fixed-time
    job whose time is skipped runs right after the jump under cron and not at
    all under systemd, and a ``*`` job runs in both passes of a repeated hour
    under cron and in the first only under systemd (checked against
    ``systemd-analyze calendar`` in the tests).
    """
    from zoneinfo import ZoneInfo

    from jobctl import clock

    fields = schedule_mod.compile_fields(cron)
    if fields is None:  # @reboot
        return []
    zone = ZoneInfo(zone_name)
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    skipped = repeated = False
    t = start.astimezone(dt_timezone.utc).replace(minute=0, second=0, microsecond=0)
    end = t + timedelta(days=days)
    before = t.astimezone(zone).utcoffset()
    while t < end:
        after = (t + hour).astimezone(zone).utcoffset()
        if after != before and before is not None and after is not None:
            m = t
            while m.astimezone(zone).utcoffset() == before:
                m += minute
            naive = m.replace(tzinfo=None)
            low, high = sorted((naive + before, naive + after))
            walls = [low + k * minute for k in range((high - low) // minute)]
            hit = any(clock.matches(fields, w) for w in walls)
            if after > before and fields["fixed"]:
                skipped = skipped or hit
            if after < before and not fields["fixed"]:
                repeated = repeated or hit
        before = after
        t += hour
    notes = []
    if skipped:
        notes.append(f"clock change in {zone_name}: a run due in the time the clocks skip is not made up by "
                     "systemd (cron runs it right after the jump)")
    if repeated:
        notes.append(f"clock change in {zone_name}: in the time the clocks repeat systemd runs it once "
                     "(cron runs it in both passes)")
    return notes


# --- unit-file syntax --------------------------------------------------------------------------

def _c_escape(text: str) -> str:
    out = []
    for c in text:
        if c in _C_ESCAPES:
            out.append(_C_ESCAPES[c])
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "".join(out)


def exec_arg(arg: str) -> str:
    """One word of ``ExecStart=``: ``%`` and ``$`` doubled (specifiers, variables), quoted when needed."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE_ARG.match(escaped) and escaped != ";":
        return escaped
    return f'"{_c_escape(escaped)}"'


def env_assignment(name: str, value: str) -> str | None:
    """``"NAME=value"`` for ``Environment=``, or None when systemd would reject the value.

    ``$`` means nothing there; ``%`` starts a specifier.  systemd rejects values
    with non-printable characters (systemd.exec(5)).
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    return f'"{_c_escape(f"{name}={value}".replace("%", "%%"))}"'


def _plain_path(path: str) -> bool:
    """Whether WorkingDirectory= takes the path as is: it is not unquoted, so nothing may need escaping."""
    return (not any(ord(c) < 32 or ord(c) == 127 for c in path) and path == path.strip()
            and not path.endswith("\\") and "/../" not in f"{path}/" and "/./" not in f"{path}/")


def timespan(seconds: int) -> str:
    """Seconds as a systemd time span (1h30m); systemd reads jobctl's duration form."""
    return format_duration(seconds)


# --- one job -----------------------------------------------------------------------------------

def wrapper_argv(state: str, name: str) -> list[str]:
    """The crontab line's wrapper command, with --timer (systemd already decided the run is due) and --no-chain.

    --no-chain in every unit, not only those with then/on_failure: OnSuccess=
    and OnFailure= start those, and chain runs the wrapper started itself
    would be killed with the unit when its main process ends (a definition
    recorded with then after the units were written starts nothing, rather
    than runs cut short).
    """
    from jobctl.runner import cmdline

    argv = cmdline.wrapper_argv(state, name, timer=True)
    at = argv.index("--timer") + 1
    return [*argv[:at], NO_CHAIN, *argv[at:]]


def chain_units(names: tuple[str, ...]) -> str:
    """The units OnSuccess=/OnFailure= start for ``then``/``on_failure``: the jobs' services."""
    return " ".join(f"jobctl-{n}.service" for n in names)


def started_by(jobs: list[JobSpec]) -> dict[str, list[str]]:
    """{job: the jobs whose then or on_failure name it}, each list sorted."""
    out: dict[str, set[str]] = {}
    for job in jobs:
        for name in (*job.then, *job.on_failure):
            out.setdefault(name, set()).add(job.name)
    return {name: sorted(parents) for name, parents in out.items()}


def start_bound(job: JobSpec) -> int | None:
    """TimeoutStartSec= for a job with a timeout: every attempt, every retry delay, and a margin.

    The wrapper enforces ``timeout`` per attempt and records "timed out"; systemd's
    limit is only a backstop above it (for Type=oneshot, RuntimeMaxSec= has no effect).
    """
    if job.timeout is None:
        return None
    attempts = 1 + job.retries.attempts
    delays = sum(job.retries.delay_before(r) for r in range(1, attempts))
    return int(attempts * (job.timeout + job.kill_grace) + delays) + WRAPPER_MARGIN


def _chain_notes(job: JobSpec, parents: list[str]) -> list[str]:
    """What OnSuccess=/OnFailure= do not carry of then/on_failure: the parent's run, and a skip's meaning."""
    notes = []
    lost = ("which starts their units as their timers do: JOBCTL_PARENT_RUN_ID, _JOB, _STATUS and _OUTPUT stay "
            "empty and history shows no chain")
    if job.then:
        notes.append(f"then: {', '.join(job.then)}: carried as OnSuccess= (systemd 249 or later; older versions "
                     f"ignore it), {lost}")
    if job.on_failure:
        notes.append(f"on_failure: {', '.join(job.on_failure)}: carried as OnFailure=, {lost}; a run ended by "
                     "systemctl stop starts them too (the stopped wrapper exits 143, a failure to systemd)")
    if len(parents) > 1:
        notes.append(f"started by then/on_failure of {', '.join(parents)}: systemd tells a unit which unit started "
                     "it only when one unit lists it, so it also runs after a run of theirs that was skipped "
                     "(a skip is a success to systemd)")
    return notes


#: notify events jobctl's every-minute pass raises (the wrapper raises the others, in the unit)
PASS_EVENTS = applied.PASS_EVENTS


def _notify_notes(job: JobSpec) -> list[str]:
    events = [e for e in PASS_EVENTS if job.notify is not None and e in job.notify.when]
    if not events:
        return []
    return [f"notify when {', '.join(events)}: jobctl's every-minute pass notices "
            f"{'them' if len(events) > 1 else 'it'}, and only jobctl apply installs it (in a crontab); "
            "the timers do not run it"]


def service_unit(job: JobSpec, state: str, user_mode: bool,
                 parents: list[str] | None = None, disabled: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """``jobctl-NAME.service``; ``parents``: the jobs whose then/on_failure start this one (started_by).

    ``disabled``: jobs with enabled: false, which cron never starts from a chain; their units are not named
    in OnSuccess=/OnFailure= either.
    """
    parents = parents or []
    dropped = [n for n in (*job.then, *job.on_failure) if n in disabled]
    if dropped:
        import dataclasses

        job = dataclasses.replace(job, then=tuple(n for n in job.then if n not in disabled),
                                  on_failure=tuple(n for n in job.on_failure if n not in disabled))
    notes = _chain_notes(job, parents) + _notify_notes(job)
    if dropped:
        notes.append(f"then/on_failure: {', '.join(dict.fromkeys(dropped))} disabled (enabled: false): not started "
                     "from here, as under cron (no OnSuccess=/OnFailure= for it)")
    description = f"jobctl job {job.name}" + (f": {one_line(job.description)}" if job.description else "")
    lines = [
        header("systemd", job.source),
        "[Unit]",
        "Description=" + description.rstrip("\\").replace("%", "%%"),
        "Documentation=man:jobctl(1)",
    ]
    if not user_mode:
        lines.append("# as cron.service: a run at boot (@reboot, a catch-up) waits for these")
        lines.append("After=remote-fs.target nss-user-lookup.target")
    if job.then:
        lines.append("# then: started when a run succeeds (systemd 249 or later; older versions ignore OnSuccess=)")
        lines.append(f"OnSuccess={chain_units(job.then)}")
    if job.on_failure:
        lines.append("# on_failure: started when a run fails, times out or is killed")
        lines.append(f"OnFailure={chain_units(job.on_failure)}")
    argv = wrapper_argv(state, job.name)
    lines += [
        "",
        "[Service]",
        "Type=oneshot",
        f"# The wrapper runs the job as defined in {one_line(paths.applied_file(state, job.name))} (recorded by "
        "jobctl export systemd --record):",
        "# lock, retries, timeout, run log and notifications as under cron.",
    ]
    if job.lock_group:
        lines.append(f"# lock_group: the wrapper takes the lock of group {job.lock_group}, as under cron")
    if job.requires:
        lines.append("# requires: the wrapper checks the run log, as under cron (systemd's Requires= and After= "
                     "order units that run together; they say nothing of a run's result)")
    if len(parents) == 1:
        lines.append(f"# Also started by OnSuccess=/OnFailure= of {chain_units(tuple(parents))}: after a run there "
                     f"that was skipped (exit {EX_SKIPPED}) this one is skipped too, as under cron.")
    elif parents:
        lines.append(f"# Also started by OnSuccess=/OnFailure= of {chain_units(tuple(parents))}; systemd tells a "
                     "unit which one started it only when one unit lists it, so a skip there is not seen here.")
    if parents:
        argv = [*CHAIN_GUARD, *argv]
    lines.append("ExecStart=" + " ".join(exec_arg(a) for a in argv))
    if job.user and not user_mode:
        lines.append(f"# user: {job.user}: the wrapper starts the job as {job.user}, as under /etc/cron.d/jobctl; "
                     "no User= here, or the wrapper could not use the state directory")
    if job.working_dir:
        if _plain_path(job.working_dir):
            # '-': a missing directory is reported by the wrapper in the run log, not as a unit failure
            lines.append("WorkingDirectory=-" + job.working_dir.replace("%", "%%"))
        else:
            notes.append(f"working_dir {job.working_dir!r} cannot be written as WorkingDirectory=; "
                         "the wrapper still runs the job there")
    if job.env:
        lines.append("# The wrapper gives the job exactly these variables; they are shown by systemctl show "
                     "to every user, so keep secrets out of env.")
    for key, value in job.env.items():
        assignment = env_assignment(key, value)
        if assignment is None:
            notes.append(f"env {key}: systemd rejects non-printable characters in Environment=; "
                         "not in the unit, the wrapper still sets it for the job")
        else:
            lines.append(f"Environment={assignment}")
    lines += [
        "# SIGTERM to the wrapper only: it forwards it to the job's process group, kills it after",
        "# kill_grace and records the run; systemd kills what is left after TimeoutStopSec=.",
        "KillMode=mixed",
        f"TimeoutStopSec={timespan(job.kill_grace + WRAPPER_MARGIN)}",
    ]
    bound = start_bound(job)
    if bound is not None:
        lines.append(f"TimeoutStartSec={timespan(bound)}")
    lines.append(f"SuccessExitStatus={EX_SKIPPED}")
    return "\n".join(lines) + "\n", notes


def timer_unit(job: JobSpec, paused: bool, now: datetime) -> tuple[str, list[str]]:
    notes: list[str] = []
    lines = [
        header("systemd", job.source),
        "[Unit]",
        "Description=" + f"Schedule of jobctl job {job.name} ({job.schedule.text})".replace("%", "%%"),
        "",
        "[Timer]",
    ]
    if job.schedule.is_reboot:
        lines.append("OnBootSec=0")
        notes.append("@reboot: OnBootSec=0 also runs it when the timer is first started on a running machine "
                     "(systemctl enable --now), not only at the next boot")
    else:
        lines += [f"OnCalendar={value}" for value in calendar(job.schedule.cron, job.timezone)]
        if job.timezone:
            notes += dst_notes(job.schedule.cron, job.timezone, now)
    lines.append("# cron starts jobs on the minute; systemd's default would be up to a minute late")
    lines.append("AccuracySec=1s")
    if job.jitter:
        lines.append(f"RandomizedDelaySec={timespan(job.jitter)}")
    if job.catch_up is not None and not job.schedule.is_reboot:
        lines.append("Persistent=true")
        notes.append(f"catch_up {format_duration(job.catch_up)}: Persistent=true makes up a missed run however "
                     "long ago it was due; the window is not carried")
        if job.catch_up_mode == "each":
            notes.append("catch_up_mode: each is not carried: Persistent=true makes up one run for the missed "
                         "ones; jobctl backfill makes up each of them")
    if job.enabled:
        lines += ["", "[Install]", "WantedBy=timers.target"]
    else:
        lines.append("# enabled: false: no [Install] section, so systemctl enable refuses this timer")
        notes.append("disabled (enabled: false): its timer has no [Install] section, so systemctl enable "
                     "refuses it")
    if paused:
        notes.append("paused: the timer starts it and the wrapper skips the run until jobctl resume")
    if job.concurrency != "forbid":
        note = (f"concurrency: {job.concurrency} is not carried: systemd does not start a service that "
                "is still running, so a run due meanwhile is skipped (as forbid)")
        if job.lock_group:  # the group's lock is the wrapper's, across units
            note += f"; the wrapper still applies it to the runs of the other jobs of lock group {job.lock_group}"
        notes.append(note)
    if job.cron_mail != JobSpec.__dataclass_fields__["cron_mail"].default:
        notes.append(f"cron_mail: {job.cron_mail} is not carried: systemd mails nothing; the run log (jobctl logs) "
                     "and the journal keep the output")
    return "\n".join(lines) + "\n", notes


def check_users(jobs: list[JobSpec], user_mode: bool) -> None:
    """The user manager runs everything as the invoking user; ``user:`` may only name that user."""
    if user_mode:
        from jobctl.install.crontab import refuse_other_users

        refuse_other_users(jobs, "needs system units (jobctl export systemd without --user, as root); "
                                 "your user manager runs as {me}")


def installed_in_cron(state: str) -> tuple[dict[str, tuple[str, bool]], list[str]]:
    """Jobs of this state directory in jobctl's crontab blocks, {name: (where, system)},
    and notes on crontabs that could not be read.

    Both the user's crontab and the system file are looked at; a host
    without a crontab command has nothing installed there.
    """
    from jobctl.install import crontab

    found: dict[str, tuple[str, bool]] = {}
    notes: list[str] = []
    for system in (False, True):
        try:
            tgt = crontab.target(system)
        except JobctlError:
            # --system needs root to write; reading the file does not
            tgt = crontab.FileCrontab(paths.SYSTEM_CRONTAB, system=True)
        if isinstance(tgt, crontab.UserCrontab) and not tgt.command:
            continue
        if isinstance(tgt, crontab.FileCrontab) and not os.path.exists(tgt.path):
            continue
        try:
            entries = crontab.installed(state, tgt)
        except JobctlError as exc:
            notes.append(f"could not check {tgt.label} for jobs cron also runs: {exc.message}")
            continue
        for name in entries:
            found.setdefault(name, (tgt.label, system))
    return found, notes


def export(jobs: list[JobSpec], state: str, user_mode: bool, paused: frozenset[str] = frozenset(),
           in_cron: dict[str, tuple[str, bool]] | None = None, now: datetime | None = None) -> Export:
    """``jobctl-NAME.service`` and ``jobctl-NAME.timer`` per job; clock changes are looked at from ``now``."""
    now = now or datetime.now(dt_timezone.utc)
    result = Export()
    if user_mode:
        result.warnings.append("--user: the timers run only while your user manager runs; "
                               "loginctl enable-linger keeps it running when you are logged out")
    elif os.geteuid() != 0:
        result.warnings.append(f"system units start the wrapper as root with your state directory {state}; "
                               "export them as root (state in /var/lib/jobctl), or use --user")
    twice: dict[tuple[str, bool], list[str]] = {}
    parents = started_by(jobs)
    for job in sorted(jobs, key=lambda j: j.name):
        service, notes = service_unit(job, state, user_mode, parents.get(job.name),
                                      frozenset(j.name for j in jobs if not j.enabled))
        timer, timer_notes = timer_unit(job, job.name in paused, now)
        if in_cron and job.name in in_cron:
            twice.setdefault(in_cron[job.name], []).append(job.name)
        result.warnings.extend(f"{job.name}: {n}" for n in notes + timer_notes)
        result.outputs.append(Output(f"jobctl-{job.name}.service", service))
        result.outputs.append(Output(f"jobctl-{job.name}.timer", timer))
    # one warning per crontab, however many jobs: the same fix for all of them
    for (where, system), names in twice.items():
        fix = f"jobctl uninstall{' --system' if system else ''} removes jobctl's block there"
        if len(names) == 1:
            result.warnings.append(f"{names[0]}: also installed in {where} by jobctl apply: it would run twice, "
                                   f"from cron and from the timer; {fix}")
        else:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            result.warnings.append(f"{len(names)} jobs ({shown}) are also installed in {where} by jobctl apply: "
                                   f"they would run twice, from cron and from their timers; {fix}")
    return result


@dataclass
class Record:
    """What ``export systemd --record`` writes: the definitions the timers' wrapper reads."""

    #: {name: definition to write}
    write: dict[str, dict]
    #: names whose definition is unchanged (nothing written)
    unchanged: list[str]
    #: names rewritten only for their metadata: they keep the time they were applied
    meta_only: list[str]
    #: "NAME: why not" for jobs cron also runs with another definition: nothing is recorded then
    conflicts: list[str]


def plan_record(jobs: list[JobSpec], state: str, in_cron: dict[str, tuple[str, bool]],
                jobs_dir: str | None) -> Record:
    """The applied definitions the timers need, and the jobs cron runs differently (refused).

    A definition cron also runs (a line in jobctl's block) is the one apply
    wrote; recording another one for the timer would change what cron runs
    behind the crontab's back, so that is refused until apply (or uninstall)
    has been run.
    """
    from jobctl import applied

    rec = Record({}, [], [], [])
    for job in sorted(jobs, key=lambda j: j.name):
        old = applied.read(state, job.name)
        cron = job.name in in_cron
        users = [applied.SYSTEMD] + ([applied.CRON] if cron else [])
        where = (applied.jobs_dir_of(old) if cron else None) or jobs_dir
        new = applied.with_meta(compile.definition(job), where, users)
        if cron and (old is None or applied.differs(old, new)):
            fields = ", ".join(applied.differs(old, new)) if old is not None else "no applied definition"
            label, system = in_cron[job.name]
            rec.conflicts.append(
                f"{job.name}: cron runs it from {label} with another definition ({fields}); recording this one "
                f"for its timer would change what cron runs. Run jobctl apply{' --system' if system else ''} first "
                f"(cron and timer then run the same definition), or jobctl uninstall{' --system' if system else ''} "
                "to leave it to the timer")
        elif old == new:
            rec.unchanged.append(job.name)
        else:
            rec.write[job.name] = new
            if old is not None and not applied.differs(old, new):
                rec.meta_only.append(job.name)
    return rec


def outdated(jobs: list[JobSpec], state: str) -> list[str]:
    """Enabled jobs whose timer would find no definition recorded for it, or one that differs from the job file.

    A definition apply wrote for cron alone serves the timer only until
    uninstall removes it with the crontab block.
    """
    from jobctl import applied

    out = []
    for job in sorted(jobs, key=lambda j: j.name):
        current = applied.read(state, job.name)
        if job.enabled and (applied.SYSTEMD not in applied.recorded_for(current)
                            or applied.differs(current, compile.definition(job))):
            out.append(job.name)
    return out


def record_applied(rec: Record, state: str) -> None:
    """Write the recorded definitions, all or none, under apply's lock; no crontab is touched."""
    from jobctl import applied
    from jobctl.files import Batch
    from jobctl.install import crontab

    with crontab.apply_lock(state):
        applied.sweep(state)
        times = {name: applied.mtime(state, name) for name in rec.meta_only}
        batch = Batch()
        try:
            for defn in rec.write.values():
                applied.stage(batch, state, defn)
            batch.commit()
        except BaseException:
            batch.discard()
            raise
        batch.finish()
        for name, when in times.items():
            applied.keep_mtime(state, name, when)


class RecordRefused(JobctlError):
    """``--record`` refused: cron runs another definition of these jobs (Record.conflicts)."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        n = len(conflicts)
        super().__init__(f"{n} definition{'s' if n != 1 else ''} not recorded; nothing was recorded or written")


def units(jobs: list[JobSpec], state: str, user_mode: bool, jobs_dir: str, out: str | None = None,
          record: bool = False, record_with: str = "") -> tuple[Export, Record | None]:
    """Everything ``jobctl export systemd`` does before the units are printed or written into ``out``.

    The units, their warnings led by the crontabs that could not be checked;
    with ``out``, its files checked before anything is written; with
    ``record``, the definitions the timers need recorded (RecordRefused, and
    nothing recorded, when cron runs one of them with another definition);
    written into ``out`` without ``record``, a warning naming the timers that
    would find no current definition, and the command (``record_with``) that
    records them.  An OSError while recording is an EnvironmentProblem.
    """
    in_cron, notes = installed_in_cron(state)
    result = export(jobs, state, user_mode, paused_jobs(jobs, state), in_cron)
    result.warnings[:0] = notes
    rec = None
    try:
        if out is not None:
            check_targets(out, result.outputs)  # before anything is written
        if record:
            rec = plan_record(jobs, state, in_cron, os.path.abspath(jobs_dir))
            if rec.conflicts:
                raise RecordRefused(rec.conflicts)
            record_applied(rec, state)
        elif out is not None:
            missing = outdated(jobs, state)
            if missing:
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                result.warnings.append(
                    f"not recorded: the timers run {paths.applied_file(state, 'NAME')}, which --record keeps for "
                    f"them; it is missing, differs from the job file or is kept for cron only for "
                    f"{', '.join(missing[:5])}{more}; record them with {record_with}")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the applied definitions in {state}: {exc.strerror}; "
                                 "nothing was recorded") from None
    return result, rec


def stream(result: Export) -> str:
    """Every unit, each under a ``# NAME`` line as ``systemctl cat`` shows them."""
    return "\n".join(f"# {o.name}\n{o.text}" for o in result.outputs)
