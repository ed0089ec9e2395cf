"""`jobctl export kubernetes|systemd`: the job files as CronJobs or as systemd timers.

Thin like the rest of the CLI: load and validate (every problem printed, exit
1), call jobctl.export, print the warnings, then print or write the files.
The exporters are imported inside the commands so ``jobctl --help`` stays fast.
The group is registered by cli.app as ``jobctl export``.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl.cli import common
from jobctl.cli.options import JobsDir
from jobctl.errors import ExitCode, JobctlError

if TYPE_CHECKING:
    from jobctl.export import Export

app = typer.Typer(
    help="Turn the job files into Kubernetes CronJobs or systemd timers.",
    epilog=(
        "Examples:\n\n"
        "  jobctl export kubernetes --image registry.example.com/tools:1.4 | kubectl apply -f -\n\n"
        "  sudo jobctl export systemd --out /etc/systemd/system\n\n"
        "Everything the target cannot carry is named in a warning on stderr."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def _namespace(value: str | None) -> str | None:
    if value is not None and (len(value) > 63 or not _DNS_LABEL.match(value)):
        raise typer.BadParameter(f"{value!r} is not a namespace name (a DNS-1123 label: lowercase letters, "
                                 "digits and '-', at most 63 characters)")
    return value


def _image(value: str | None) -> str | None:
    if value is not None and (not value or any(c.isspace() for c in value)):
        raise typer.BadParameter(f"{value!r} is not an image reference")
    return value


def _emit(result: Export, out: str | None, stream: str, next_step: str) -> None:
    """Warnings to stderr; the files to stdout, or into ``out``."""
    from jobctl.errors import JobctlError
    from jobctl.export import write_files

    for warning in result.warnings:
        print(f"jobctl: warning: {warning}", file=sys.stderr)
    if out is None:
        sys.stdout.write(stream)
        return
    try:
        written = write_files(out, result.outputs)
    except JobctlError as exc:
        common.fail(exc)
    n = len(written)
    print(f"wrote {n} file{'s' if n != 1 else ''} to {out}")
    if written:
        print(f"next: {next_step}")


@app.command(epilog=(
    "Examples:\n\n"
    "  jobctl export kubernetes --image registry.example.com/tools:1.4 --namespace batch | kubectl apply -f -\n\n"
    "  jobctl export kubernetes --out k8s/   # k8s/NAME.yaml, one CronJob per file\n\n"
    "  jobctl export kubernetes --job report -p customer=42 | kubectl create -f -   # one run, as a Job\n\n"
    "With --out, files NAME.yaml that an earlier export wrote are overwritten; any other file of that\n"
    "name is left alone and the export stops before writing anything."
))
def kubernetes(
    jobs_dir: JobsDir = None,
    image: Annotated[str | None, typer.Option(
        metavar="IMAGE", callback=_image,
        help="Container image the jobs run in (default debian:bookworm-slim, with a warning).")] = None,
    namespace: Annotated[str | None, typer.Option(
        metavar="NS", callback=_namespace, help="metadata.namespace of every CronJob (default: none set).")] = None,
    out: Annotated[str | None, typer.Option(
        metavar="DIR", help="Write one NAME.yaml per job into DIR (created) instead of one stream to stdout.")] = None,
    job: Annotated[str | None, typer.Option(
        "--job", metavar="NAME", help="Instead of the CronJobs: one batch/v1 Job for a single run of NAME "
                                      "(kubectl create -f -), with its -p parameters.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="KEY=VALUE",
        help="With --job: a parameter the job declares (params:); the container gets JOBCTL_PARAM_KEY.")] = None,
) -> None:
    """One batch/v1 CronJob per job, as multi-document YAML.

    Disabled and paused jobs are exported with suspend: true; @reboot jobs are
    skipped.  What Kubernetes cannot carry (jitter, notify, user, retry
    delays, then, on_failure, requires, lock_group, ...) is named in a
    warning, with what to use instead.  A job's history: keep becomes
    successfulJobsHistoryLimit and failedJobsHistoryLimit and max_age
    ttlSecondsAfterFinished only when the job file sets them; otherwise
    Kubernetes' own defaults apply (3 and 1 Jobs kept, no TTL).  Exit 0 when
    exported, 1 when a job file is invalid (every problem is printed), 2 on a
    usage error.
    """
    from jobctl.export import kubernetes as k8s
    from jobctl.export import paused_jobs

    _, jobs = common.load(jobs_dir)
    if job is not None or param:
        from jobctl import params

        if job is None:
            common.fail(JobctlError("-p needs --job NAME: parameters belong to one run", ExitCode.USAGE))
        the_job = next((j for j in jobs if j.name == job), None)
        if the_job is None:
            common.fail(JobctlError(f"no job named {job!r} in the jobs directory", ExitCode.NOT_OK))
        try:
            values = params.resolve(job, {k: p.to_dict() for k, p in the_job.params.items()},
                                    params.parse_pairs(param or []))
        except params.BadParams as exc:
            common.fail(JobctlError(f"job {job}: {exc}", ExitCode.USAGE))
        result = k8s.export_one_off(the_job, values, image=image, namespace=namespace)
        _emit(result, out, k8s.stream(result), f"kubectl create -f {out}")
        return
    result = k8s.export(jobs, image=image, namespace=namespace, paused=paused_jobs(jobs, common.state_path()))
    _emit(result, out, k8s.stream(result), f"kubectl apply -f {out}")


@app.command(epilog=(
    "Examples:\n\n"
    "  jobctl export systemd | less   # every unit, as systemctl cat shows them; changes nothing\n\n"
    "  sudo jobctl export systemd --out /etc/systemd/system --record && sudo systemctl daemon-reload\n\n"
    "  jobctl export systemd --user --out ~/.config/systemd/user --record\n\n"
    "With --out, files jobctl-NAME.service and jobctl-NAME.timer that an earlier export wrote are\n"
    "overwritten; any other file of that name is left alone and the export stops before writing anything."
))
def systemd(
    jobs_dir: JobsDir = None,
    out: Annotated[str | None, typer.Option(
        metavar="DIR", help="Write the units into DIR (created) instead of printing them.")] = None,
    user: Annotated[bool, typer.Option(
        "--user", help="Units for your user manager (systemctl --user); no job may run as another user.")] = False,
    record: Annotated[bool, typer.Option(
        "--record", help="Also record the job definitions the timers' wrapper runs (STATE/applied/NAME.json), "
                         "as apply does for cron; refused for a job cron runs with another definition. "
                         "jobctl plan shows timers whose record is out of date.")] = False,
) -> None:
    """A jobctl-NAME.service and jobctl-NAME.timer per job.

    The service runs the job through the jobctl wrapper, so locks, retries,
    the run log, notifications, lock_group and requires work as under cron;
    then and on_failure become OnSuccess= and OnFailure= (systemd 249 or
    later), which start the next job's service.  The wrapper runs the
    definition recorded in the state directory, which only --record writes:
    printing or writing units changes no state and touches no crontab.
    --record refuses (exit 1, nothing recorded) a job that jobctl apply
    installed in a crontab with another definition, since cron runs the same
    record.  The export warns, once per crontab, about jobs jobctl also
    installed there (they would run twice) and about what systemd cannot
    carry.  Exit 0 when exported, 1 when a job file is invalid or a record is
    refused, 2 on a usage error.
    """
    from jobctl import paths
    from jobctl.errors import JobctlError
    from jobctl.export import systemd as sd

    directory, jobs = common.load(jobs_dir)
    try:
        sd.check_users(jobs, user)
    except JobctlError as exc:
        common.fail_problems(exc)
    # printing (or writing units) never creates or changes the state directory
    state = common.state() if record else common.state_path()
    flags = (f" --jobs-dir {jobs_dir}" if jobs_dir else "") + (" --user" if user else "")
    try:
        result, rec = sd.units(jobs, state, user, directory, out, record,
                               record_with=f"jobctl export systemd{flags} --out {out} --record")
    except sd.RecordRefused as exc:
        for line in exc.conflicts:
            print(f"jobctl: {line}", file=sys.stderr)
        common.fail(exc)
    except JobctlError as exc:
        common.fail(exc)
    timers = " ".join(f"jobctl-{j.name}.timer" for j in sorted(jobs, key=lambda j: j.name) if j.enabled)
    flag = " --user" if user else ""
    _emit(result, out, sd.stream(result),
          f"systemctl{flag} daemon-reload" + (f" && systemctl{flag} enable --now {timers}" if timers else ""))
    if rec is not None:
        n = len(rec.write)
        print(f"recorded {n} definition{'s' if n != 1 else ''} for the timers in {paths.applied_dir(state)} "
              f"({len(rec.unchanged)} unchanged)", file=sys.stdout if out is not None else sys.stderr)
