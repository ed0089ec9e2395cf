"""Job specs → Kubernetes ``batch/v1`` CronJobs, one YAML document per job.

Resources are named after the job, not ``jobctl-NAME``: the namespace
already scopes them, the ``app.kubernetes.io/managed-by: jobctl`` label marks
them as ours, and a CronJob name may have only 52 characters (the Jobs it
creates append 11).  Job names that are not DNS-1123 labels of that length
('.', '_', a trailing '-', too long) get a deterministic name: the name with
'.'/'_' as '-', cut to fit, plus a hash of the original, so two jobs never
share one; a warning says so.

The schedule is what Debian's cron would run.  Kubernetes reads it with
robfig/cron, which takes the same fields and names but knows no day of week
7, and ORs day-of-month with day-of-week unless one of them is exactly ``*``
where cron ANDs them as soon as either *starts* with ``*`` (``*/2``).  An
expression that robfig would read differently is re-spelled from the value
sets; the one combination robfig cannot say at all (both day fields
restricted, one starting with ``*``) is not exported, with a warning.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from jobctl.jobs import schedule as schedule_mod
from jobctl.jobs.spec import NOTIFY_SINKS, Baseline, History, JobSpec, Notify, Requirement, Retries
from jobctl.units import format_duration

from . import Export, Output, consecutive_runs, header

#: used when --image is not given; the job's programs must exist in it
DEFAULT_IMAGE = "debian:bookworm-slim"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobctl"}
JOB_LABEL = "jobctl/job"
#: CronJob names: the Jobs it creates get an 11-character suffix, and names are DNS-1123 labels (63)
MAX_NAME = 52
#: without catch_up a missed run is not made up, as under cron.  Kubernetes'
#: default (no deadline) would start the last missed run when the controller
#: comes back; the controller looks every 10 s, so a minute is safe.
NO_CATCH_UP_DEADLINE = 60
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
POLICY = {"forbid": "Forbid", "allow": "Allow", "replace": "Replace", "wait": "Forbid"}
_DEFAULT_OUTPUT_LIMIT = JobSpec.__dataclass_fields__["output_limit"].default
_DEFAULT_HISTORY = History()
_DEFAULT_BASELINE = Baseline()
#: cron_mail is about cron's mail: only a setting other than the default is worth a warning
_DEFAULT_CRON_MAIL = JobSpec.__dataclass_fields__["cron_mail"].default


class Unexportable(ValueError):
    """A job Kubernetes cannot run as written; the message says why."""


def resource_name(job_name: str) -> str:
    """The CronJob name of a job: the job name when it is a DNS-1123 label of at most 52 characters."""
    if len(job_name) <= MAX_NAME and DNS_LABEL.match(job_name):
        return job_name
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    base = re.sub(r"[._]", "-", job_name).strip("-")
    base = base[: MAX_NAME - len(digest) - 1].rstrip("-")
    return f"{base}-{digest}" if base else f"job-{digest}"


# --- the schedule ------------------------------------------------------------------------------

def _robfig_star(text: str) -> bool:
    """Whether robfig/cron marks a field as unrestricted: an item that is ``*`` (or ``*/1``)."""
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base in ("*", "?") and (not step or int(step) == 1):
            return True
    return False


def _spell(values: set[int], low: int, high: int) -> str:
    """A cron field for a value set without a leading ``*`` unless it is every value."""
    if values == set(range(low, high + 1)):
        return "*"
    ordered = sorted(values)
    steps = {b - a for a, b in zip(ordered, ordered[1:], strict=False)}
    if len(ordered) >= 3 and len(steps) == 1 and steps != {1}:
        return f"{ordered[0]}-{ordered[-1]}/{steps.pop()}"
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ",".join(map(str, r)) for r in consecutive_runs(values))


def kube_schedule(cron: str) -> str:
    """The 5-field expression that robfig/cron reads as Debian's cron reads ``cron``.

    Raises Unexportable for the day-of-month/day-of-week combination robfig cannot express.
    """
    fields = schedule_mod.parse_cron(cron)
    texts = cron.split()
    debian_and = fields[2][1] or fields[4][1]
    robfig_and = _robfig_star(texts[2]) or _robfig_star(texts[4])
    if debian_and == robfig_and and "7" not in texts[4]:
        return cron
    (minute, _), (hour, _), (dom, _), (month, _), (dow, _) = fields
    spelled = [_spell(minute, 0, 59), _spell(hour, 0, 23), _spell(dom, 1, 31), _spell(month, 1, 12),
               _spell(dow, 0, 6)]
    if debian_and:
        if spelled[2] != "*" and spelled[4] != "*":
            raise Unexportable(
                f"schedule {cron!r}: cron runs it only on days that match both the day of month and the "
                "day of week (a day field starting with '*' makes cron require both), which a Kubernetes "
                "schedule cannot say; not exported"
            )
    elif "*" in (spelled[2], spelled[4]):
        spelled[2] = spelled[4] = "*"  # either side matches every day, so their OR does too
    return " ".join(spelled)


# --- one CronJob -------------------------------------------------------------------------------

def _retry_note(retries: Retries) -> str:
    return (f"retries: {retries.attempts} more attempts are carried (backoffLimit), their delays are not "
            f"(delay {format_duration(retries.delay)}, backoff {retries.backoff:g}, max_delay "
            f"{format_duration(retries.max_delay)}): Kubernetes waits 10s, 20s, 40s ... up to 6m between pods")


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


#: notify events judged from jobctl's run log on the host (the usual duration, the scheduled minutes)
RUN_LOG_EVENTS = ("slow", "short", "overdue", "missed")


def _notify_note(notify: Notify) -> str:
    sinks = [k for k in NOTIFY_SINKS if getattr(notify, k)]
    note = (f"notify ({', '.join(sinks)}) is not carried: Kubernetes sends no notifications; "
            "alert on failed Jobs instead (e.g. kube-state-metrics kube_job_status_failed)")
    events = [e for e in RUN_LOG_EVENTS if e in notify.when]
    if events:
        listed = events[0] if len(events) == 1 else f"{', '.join(events[:-1])} and {events[-1]}"
        note += (f"; {listed} {'is' if len(events) == 1 else 'are'} judged from jobctl's run log, which a CronJob "
                 "does not write (alert on Job durations and kube_cronjob_status_last_schedule_time instead)")
    return note


def _requirement(req: Requirement) -> str:
    return f"{req.job} {req.status}" + (f" within {format_duration(req.within)}" if req.within else "")


def rule_notes(job: JobSpec) -> list[str]:
    """One warning per job-to-job key: a CronJob knows no other CronJob, and what to use instead."""
    notes = []
    if job.then:
        notes.append(f"then: {', '.join(job.then)} is not carried: a CronJob starts no other job when it succeeds; "
                     "run the steps one after another in one CronJob's command, or use a workflow engine "
                     "(e.g. an Argo CronWorkflow with steps)")
    if job.on_failure:
        notes.append(f"on_failure: {', '.join(job.on_failure)} is not carried: a CronJob starts no other job when "
                     "it fails; run it from the command (job || handler), or use a workflow engine's exit "
                     "handler (e.g. Argo's onExit)")
    if job.requires:
        notes.append(f"requires: {', '.join(map(_requirement, job.requires))} is not carried: a CronJob cannot "
                     "check another job's latest run; run the jobs as steps of one CronJob, or use a workflow "
                     "engine's dependencies (e.g. an Argo DAG)")
    if job.lock_group:
        notes.append(f"lock_group: {job.lock_group} is not carried: concurrencyPolicy keeps only one CronJob "
                     "from overlapping itself; run the group's jobs from one CronJob, or take a lock in the "
                     "command (e.g. a coordination.k8s.io Lease)")
    if job.baseline != _DEFAULT_BASELINE:
        notes.append("baseline is not carried: the usual duration is learned from jobctl's run log, which a "
                     "CronJob does not write")
    return notes


def cronjob(job: JobSpec, image: str, namespace: str | None, paused: bool) -> tuple[dict[str, Any], list[str]]:
    """The CronJob of one job and the warnings about it (without the job name in front)."""
    notes: list[str] = []
    name = resource_name(job.name)
    if name != job.name:
        notes.append(f"named {name} in Kubernetes: CronJob names are DNS-1123 labels "
                     f"(lowercase letters, digits, '-') of at most {MAX_NAME} characters")
    schedule = kube_schedule(job.schedule.cron)
    label = job.name if len(job.name) <= 63 and LABEL_VALUE.match(job.name) else name
    labels = {**MANAGED_BY, JOB_LABEL: label}
    annotations: dict[str, str] = {}
    if label != job.name:
        annotations["jobctl/job-name"] = job.name
    if job.description:
        annotations["jobctl/description"] = job.description
    if job.tags:
        annotations["jobctl/tags"] = ",".join(job.tags)
    if job.schedule.text != schedule:
        annotations["jobctl/schedule"] = job.schedule.text

    command = list(job.command) if isinstance(job.command, tuple) else [job.shell, "-c", job.command]
    container: dict[str, Any] = {"name": name, "image": image, "command": command}
    env = [{"name": "JOBCTL_JOB", "value": job.name}]
    env += [{"name": k, "value": v} for k, v in job.env.items()]
    container["env"] = env
    if job.working_dir:
        container["workingDir"] = job.working_dir

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The job is not PID 1, so SIGTERM kills it unless it handles it (PID 1
        # ignores it by default, which would turn kill_grace into a plain
        # SIGKILL) and its orphans are reaped, as on a host.
        "shareProcessNamespace": True,
    }
    if job.timeout is not None:
        # per attempt, like jobctl's timeout (a Job-level deadline would also end the retries)
        pod_spec["activeDeadlineSeconds"] = job.timeout
    pod_spec["terminationGracePeriodSeconds"] = job.kill_grace
    pod_spec["containers"] = [container]

    job_spec: dict[str, Any] = {"backoffLimit": job.retries.attempts}
    # history is jobctl's run-log retention; only a value the job file sets
    # (not jobctl's default of 200 runs and 90 days) becomes the CronJob's,
    # else Kubernetes' defaults apply: 3 successful and 1 failed Job kept, no TTL.
    if job.history.max_age != _DEFAULT_HISTORY.max_age:
        job_spec["ttlSecondsAfterFinished"] = job.history.max_age
    job_spec["template"] = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
    spec: dict[str, Any] = {"schedule": schedule}
    if job.timezone:
        spec["timeZone"] = job.timezone
    spec.update({
        "concurrencyPolicy": POLICY[job.concurrency],
        "suspend": not job.enabled or paused,
        "startingDeadlineSeconds": job.catch_up if job.catch_up is not None else NO_CATCH_UP_DEADLINE,
    })
    if job.history.keep != _DEFAULT_HISTORY.keep:
        spec["successfulJobsHistoryLimit"] = job.history.keep
        spec["failedJobsHistoryLimit"] = job.history.keep
    spec["jobTemplate"] = {"metadata": {"labels": dict(labels)}, "spec": job_spec}
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    doc = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec}

    if not job.enabled:
        notes.append("disabled (enabled: false): exported with suspend: true")
    if paused:
        notes.append("paused on this host: exported with suspend: true")
    if job.concurrency == "wait":
        notes.append("concurrency: wait has no Kubernetes equivalent: exported as Forbid "
                     "(a run due while the previous one runs is skipped, not queued)")
    if job.retries.attempts:
        notes.append(_retry_note(job.retries))
    if job.jitter:
        notes.append(f"jitter {format_duration(job.jitter)} is not carried: Kubernetes starts runs on the minute")
    if job.notify is not None:
        notes.append(_notify_note(job.notify))
    if job.user:
        notes.append(f"user: {job.user} is not carried: set securityContext.runAsUser to its uid in the image")
    if job.output_limit != _DEFAULT_OUTPUT_LIMIT:
        notes.append(f"output_limit {_size(job.output_limit)} is not carried: the pod's log keeps all output "
                     "(the kubelet rotates it)")
    if job.cron_mail != _DEFAULT_CRON_MAIL:
        notes.append(f"cron_mail: {job.cron_mail} is not carried: Kubernetes mails nothing; the pod's log keeps "
                     "the output")
    if job.catch_up is not None and job.catch_up_mode == "each":
        notes.append("catch_up_mode: each is not carried: a CronJob starts one run for its missed schedules; "
                     "jobctl backfill makes up each of them")
    notes += rule_notes(job)
    return doc, notes


def one_off(job: JobSpec, image: str, namespace: str | None,
            values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """A batch/v1 Job for one run of the job (jobctl submit's cluster counterpart), with its parameters.

    The Job is the CronJob's jobTemplate with ``metadata.generateName`` (each
    `kubectl create` makes a new Job, as each submit makes a new request) and
    the parameters as JOBCTL_PARAM_* in the container's env: values, never
    words of a shell string.  What the CronJob cannot carry, the Job cannot
    either: the same warnings, but those about the schedule.
    """
    from jobctl import params

    doc, notes = cronjob(job, image, namespace, False)
    template = doc["spec"]["jobTemplate"]
    metadata: dict[str, Any] = {"generateName": doc["metadata"]["name"][:MAX_NAME - 6] + "-"}
    for key in ("namespace", "labels", "annotations"):
        if key in doc["metadata"]:
            metadata[key] = doc["metadata"][key]
    metadata.setdefault("annotations", {}).pop("jobctl/schedule", None)
    if not metadata["annotations"]:
        del metadata["annotations"]
    spec = dict(template["spec"])
    container = spec["template"]["spec"]["containers"][0]
    container["env"] = container["env"] + [{"name": k, "value": v} for k, v in params.environment(values).items()]
    schedule_only = ("suspend", "concurrency", "catch_up", "jitter", "disabled", "paused")
    notes = [n for n in notes if not n.startswith(schedule_only) and "named " not in n[:6]]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}, notes


#: plain scalars a YAML 1.1 or 1.2 resolver may read as something other than a string
_LOOKS_TYPED = re.compile(r"[-+.]?[0-9]|[-+]?\.(inf|nan)\Z|(y|yes|n|no|true|false|on|off|null|~)?\Z", re.I)


def _document(job: JobSpec, doc: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        # Kubernetes reads manifests with go-yaml, whose resolver takes more plain words for numbers and
        # booleans than PyYAML's (1e3, 0o17, 1_000, 0x1f, True): a string that could be one is quoted
        style = "|" if "\n" in data else "'" if _LOOKS_TYPED.match(data) or "\x85" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    body = yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1000)
    return f"{header('kubernetes', job.source)}\n{body}"


def export(jobs: list[JobSpec], image: str | None = None, namespace: str | None = None,
           paused: frozenset[str] = frozenset()) -> Export:
    """One CronJob per job (file ``NAME.yaml``); @reboot jobs and inexpressible schedules are skipped."""
    result = Export()
    if image is None:
        image = DEFAULT_IMAGE
        result.warnings.append(f"no --image: the CronJobs run in {DEFAULT_IMAGE}; every program the jobs run "
                               "must exist in that image (pass --image)")
    names: dict[str, str] = {}
    for job in sorted(jobs, key=lambda j: j.name):
        if job.schedule.is_reboot:
            result.warnings.append(f"{job.name}: @reboot has no Kubernetes equivalent; not exported")
            continue
        try:
            doc, notes = cronjob(job, image, namespace, job.name in paused)
        except Unexportable as exc:
            result.warnings.append(f"{job.name}: {exc}")
            continue
        name = doc["metadata"]["name"]
        if name in names:  # only a hash collision could do this
            raise ValueError(f"jobs {names[name]} and {job.name} both map to {name}")
        names[name] = job.name
        result.warnings.extend(f"{job.name}: {note}" for note in notes)
        result.outputs.append(Output(f"{name}.yaml", _document(job, doc)))
    return result


def export_one_off(job: JobSpec, values: dict[str, str], image: str | None = None,
                   namespace: str | None = None) -> Export:
    """One Job (file ``NAME-job.yaml``) for one run of ``job`` with parameter ``values`` (checked already)."""
    result = Export()
    if image is None:
        image = DEFAULT_IMAGE
        result.warnings.append(f"no --image: the Job runs in {DEFAULT_IMAGE}; every program the job runs "
                               "must exist in that image (pass --image)")
    try:
        doc, notes = one_off(job, image, namespace, values)
    except Unexportable as exc:
        result.warnings.append(f"{job.name}: {exc}")
        return result
    result.warnings.extend(f"{job.name}: {note}" for note in notes)
    result.outputs.append(Output(f"{doc['metadata']['generateName'].rstrip('-')}-job.yaml", _document(job, doc)))
    return result


def stream(result: Export) -> str:
    """Every CronJob as one multi-document YAML stream."""
    return "".join(f"---\n{o.text}" for o in result.outputs)
