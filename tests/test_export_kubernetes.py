"""`jobctl export kubernetes`: CronJobs validated offline, every mapping, every warning.

Each exported document is validated with kubernetes-validate in strict mode
against every Kubernetes version it ships from 1.27 (timeZone is GA there) to
the newest, then checked where that schema only says "string": names and
labels, the time zone, policy names, and the schedule, which must mean under
Kubernetes' cron parser (robfig/cron, modelled below from its source) what
the job's schedule means under Debian's cron.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from export_corpus import JOB_FILES, SCHEDULES
from kubernetes_validate import utils as kv_utils
from typer.testing import CliRunner

from jobctl.cli.app import app
from jobctl.export import MARK
from jobctl.export import kubernetes as k8s
from jobctl.jobs import loader, schedule, spec

ROOT = Path(__file__).resolve().parent.parent
cli = CliRunner()


def _versions() -> list[str]:
    out = []
    for v in kv_utils.all_versions():
        minor = ".".join(v.split(".")[:2])
        if int(minor.split(".")[1]) >= 27 and minor not in out:
            out.append(minor)
    return out


#: from 1.27, where CronJob timeZone is GA, to the newest schema kubernetes-validate ships
K8S_VERSIONS = _versions()
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
QUALIFIED_KEY = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                           r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


def export(*args: str):
    return cli.invoke(app, ["export", "kubernetes", *args])


@pytest.fixture
def corpus(write_job):
    for name, text in JOB_FILES.items():
        write_job(name, text)
    return {j.name: j for j in loader.load_jobs(os.environ["JOBCTL_JOBS_DIR"])}


def documents(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return list(yaml.safe_load_all(result.stdout))


# --- robfig/cron v3 (what Kubernetes parses CronJob schedules with) -------------------------------

STAR = "star"
_ROBFIG_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}),
                  (1, 12, {m: i + 1 for i, m in enumerate(schedule.MONTHS)}),
                  (0, 6, {d: i for i, d in enumerate(schedule.DAYS)}))


def robfig_field(text: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """getField/getRange of robfig/cron v3 parser.go: values, and whether the star bit is set."""
    values: set[int] = set()
    star = False
    for expr in text.split(","):
        range_and_step = expr.split("/")
        low_and_high = range_and_step[0].split("-")
        single = len(low_and_high) == 1
        extra = False

        def number(s: str) -> int:
            if s.lower() in names:
                return names[s.lower()]
            assert s.isdigit(), f"robfig rejects {s!r}"
            return int(s)

        if low_and_high[0] in ("*", "?"):
            start, end, extra = low, high, True
        else:
            start = number(low_and_high[0])
            assert len(low_and_high) in (1, 2), f"robfig rejects {expr!r}"
            end = start if single else number(low_and_high[1])
        step = 1
        if len(range_and_step) == 2:
            step = int(range_and_step[1])
            if single:
                end = high
            if step > 1:
                extra = False
        assert low <= start <= end <= high and step > 0, f"robfig rejects {expr!r} ({start}-{end}/{step})"
        values |= set(range(start, end + 1, step))
        star = star or extra
    return values, star


def robfig_days(expr: str) -> tuple[set[int], set[int], set[int], set[int], object]:
    fields = [robfig_field(t, *f) for t, f in zip(expr.split(), _ROBFIG_FIELDS, strict=True)]
    (minute, _), (hour, _), (dom, dom_star), (month, _), (dow, dow_star) = fields

    def day(d: date) -> bool:
        dom_match, dow_match = d.day in dom, d.isoweekday() % 7 in dow
        return dom_match and dow_match if (dom_star or dow_star) else dom_match or dow_match

    return minute, hour, month, dom | dow, day


def debian_days(cron: str):
    (minute, _), (hour, _), (dom, dom_star), (month, _), (dow, dow_star) = schedule.parse_cron(cron)

    def day(d: date) -> bool:
        dom_match, dow_match = d.day in dom, d.isoweekday() % 7 in dow
        return dom_match and dow_match if (dom_star or dow_star) else dom_match or dow_match

    return minute, hour, month, day


def same_for_robfig(kube: str, cron: str) -> None:
    """robfig reads ``kube`` as Debian's cron reads ``cron``: same minutes, hours, months and days."""
    r_minute, r_hour, r_month, _, r_day = robfig_days(kube)
    d_minute, d_hour, d_month, d_day = debian_days(cron)
    assert (r_minute, r_hour, r_month) == (d_minute, d_hour, d_month)
    d = date(2026, 1, 1)
    while d < date(2034, 1, 1):  # every weekday on every date, leap years included
        assert r_day(d) == d_day(d), (kube, cron, d)
        d += timedelta(days=1)


def test_the_robfig_model_knows_its_differences():
    # the two readings jobctl has to work around
    with pytest.raises(AssertionError, match="robfig rejects"):
        robfig_days("0 0 * * 7")
    with pytest.raises(AssertionError):
        same_for_robfig("0 0 */2 * 1", "0 0 */2 * 1")
    same_for_robfig("0 0 * * 0", "0 0 * * 7")


# --- the schedule ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", SCHEDULES)
def test_kubernetes_schedule_means_what_cron_means(text):
    sched = schedule.parse(text)
    try:
        kube = k8s.kube_schedule(sched.cron)
    except k8s.Unexportable:
        # only cron's AND of two restricted day fields (one starting with '*') is refused
        (_, _), (_, _), (dom, dom_star), (_, _), (dow, dow_star) = schedule.parse_cron(sched.cron)
        assert (dom_star or dow_star) and dom != set(range(1, 32)) and dow != set(range(7))
        return
    again = schedule.parse(kube)  # jobctl's own parser accepts it, and it runs at the same times
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert again.next_runs(base, 100) == sched.next_runs(base, 100)
    same_for_robfig(kube, sched.cron)


@pytest.mark.parametrize(("cron", "kube"), [
    ("17 3 * * *", "17 3 * * *"),
    ("*/15 * * * *", "*/15 * * * *"),
    ("0 0 */2 * *", "0 0 */2 * *"),
    ("0 12 13 * fri", "0 12 13 * fri"),
    ("0 0 * * 7", "0 0 * * 0"),
    ("0 8 * * 5-7", "0 8 * * 0,5,6"),
    ("0 8 * * 0-7", "0 8 * * *"),
    ("0 0 1,* * 1", "0 0 * * *"),
    ("0 0 *,1 * 1", "0 0 *,1 * 1"),
    ("0 0 1 * 7", "0 0 1 * 0"),
    ("*/20 */6 * */2 7", "0-40/20 0-18/6 * 1-11/2 0"),
])
def test_kubernetes_schedule_spelling(cron, kube):
    assert k8s.kube_schedule(cron) == kube


def test_a_schedule_kubernetes_cannot_say_is_skipped_with_a_warning(write_job):
    write_job("odd-mondays.yaml", "schedule: '0 0 */2 * 1'\ncommand: x\n")
    write_job("ok.yaml", "schedule: '0 0 * * 1'\ncommand: x\n")
    result = export("--image", "busybox:1.36")
    docs = documents(result)
    assert [d["metadata"]["name"] for d in docs] == ["ok"]
    assert result.stderr == (
        "jobctl: warning: odd-mondays: schedule '0 0 */2 * 1': cron runs it only on days that match both the day of "
        "month and the day of week (a day field starting with '*' makes cron require both), which a Kubernetes "
        "schedule cannot say; not exported\n")


# --- names -------------------------------------------------------------------------------------

def test_resource_names():
    assert k8s.resource_name("backup") == "backup"
    assert k8s.resource_name("a" * 52) == "a" * 52
    names = {n: k8s.resource_name(n) for n in ("db.nightly", "db_nightly", "db-nightly", "backup-", "x" * 63,
                                               "x" * 62 + "y", "9lives", "a.-b", "_"[:0] + "0_")}
    assert names["db-nightly"] == "db-nightly" and names["9lives"] == "9lives"
    assert len(set(names.values())) == len(names)  # never two jobs on one name
    for original, name in names.items():
        assert DNS_LABEL.match(name) and len(name) <= 52, (original, name)
        assert k8s.resource_name(original) == name  # deterministic
    assert names["db.nightly"].startswith("db-nightly-") and names["db_nightly"].startswith("db-nightly-")
    assert names["x" * 63].startswith("x" * 40)


def test_a_renamed_job_keeps_its_name_in_labels_or_annotations(write_job):
    write_job("a.yaml", "name: backup-\nschedule: '@daily'\ncommand: x\n")
    write_job("b.yaml", "name: db.nightly_vacuum\nschedule: '@daily'\ncommand: x\n")
    result = export("--image", "busybox:1.36")
    trailing, dotted = documents(result)
    assert trailing["metadata"]["name"] == k8s.resource_name("backup-")
    assert trailing["metadata"]["labels"]["jobctl/job"] == k8s.resource_name("backup-")
    assert trailing["metadata"]["annotations"]["jobctl/job-name"] == "backup-"
    assert dotted["metadata"]["labels"]["jobctl/job"] == "db.nightly_vacuum"  # a valid label value
    assert "jobctl/job-name" not in dotted["metadata"].get("annotations", {})
    assert result.stderr.splitlines() == [
        f"jobctl: warning: {job}: named {k8s.resource_name(job)} in Kubernetes: CronJob names are DNS-1123 labels "
        "(lowercase letters, digits, '-') of at most 52 characters" for job in ("backup-", "db.nightly_vacuum")
    ]


# --- validation of everything exported -----------------------------------------------------------

def check_cronjob(doc: dict) -> None:
    """What the schema leaves as plain strings (or unbounded numbers)."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)
    meta, spec = doc["metadata"], doc["spec"]
    assert DNS_LABEL.match(meta["name"]) and len(meta["name"]) <= 52
    if "namespace" in meta:
        assert DNS_LABEL.match(meta["namespace"]) and len(meta["namespace"]) <= 63
    for labels in (meta["labels"], spec["jobTemplate"]["metadata"]["labels"],
                   spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/managed-by"] == "jobctl"
        for key, value in labels.items():
            assert QUALIFIED_KEY.match(key) and LABEL_VALUE.match(value) and len(value) <= 63
    for key in meta.get("annotations", {}):
        assert QUALIFIED_KEY.match(key)
    sched = schedule.parse(spec["schedule"])
    robfig_days(spec["schedule"])
    if "timeZone" in spec:
        assert spec["timeZone"] in zoneinfo.available_timezones()
    assert spec["concurrencyPolicy"] in ("Allow", "Forbid", "Replace")
    assert spec["startingDeadlineSeconds"] >= 10  # the controller looks every 10 s
    assert spec.get("successfulJobsHistoryLimit", 0) >= 0 and spec.get("failedJobsHistoryLimit", 0) >= 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job.get("ttlSecondsAfterFinished", 0) >= 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod.get("activeDeadlineSeconds", 1) >= 1 and pod["terminationGracePeriodSeconds"] >= 0
    [container] = pod["containers"]
    assert DNS_LABEL.match(container["name"]) and container["image"] and not re.search(r"\s", container["image"])
    assert container["command"] and all(isinstance(a, str) for a in container["command"])
    assert all(ENV_NAME.match(e["name"]) for e in container["env"])
    assert not sched.is_reboot


def test_the_job_corpus_uses_every_key():
    """A new job-file key fails here until both exporters decide what to do with it."""
    used = set()
    for text in JOB_FILES.values():
        for document in yaml.safe_load_all(text):
            used |= set(document)
    assert used >= set(spec.KEYS) - {"name"} and "name" in used


def test_every_exported_cronjob_is_valid(corpus):
    docs = documents(export("--image", "registry.example.com/tools:1.4", "--namespace", "batch-jobs"))
    assert len(docs) == len(corpus) - 1  # @reboot is not exported
    for doc in docs:
        check_cronjob(doc)
        assert doc["metadata"]["namespace"] == "batch-jobs"


def test_the_shipped_examples_export_valid_cronjobs():
    result = export("--jobs-dir", str(ROOT / "jobs.d"))
    docs = documents(result)
    assert [d["metadata"]["name"] for d in docs] == ["backup", "disk-usage", "tmp-cleanup"]
    for doc in docs:
        check_cronjob(doc)


def test_versions_checked_include_a_current_kubernetes():
    assert K8S_VERSIONS[0] == "1.27"
    assert K8S_VERSIONS[-1] == ".".join(kubernetes_validate.latest_version().split(".")[:2])
    assert len(K8S_VERSIONS) >= 5


# --- every mapping -----------------------------------------------------------------------------

def test_every_mapping_of_a_job_with_every_key(corpus):
    docs = {d["metadata"]["name"]: d for d in documents(export("--image", "tools:1"))}
    labels = {"app.kubernetes.io/managed-by": "jobctl", "jobctl/job": "full"}
    assert docs["full"] == {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "full",
            "labels": labels,
            "annotations": {"jobctl/description": 'Every key: 50% of the disk, "quoted", back\\slash',
                            "jobctl/tags": "demo,team:ops"},
        },
        "spec": {
            "schedule": "30 2 * * 1-5",
            "timeZone": "Europe/Berlin",
            "concurrencyPolicy": "Replace",
            "suspend": False,
            "startingDeadlineSeconds": 7200,  # catch_up: 2h
            "successfulJobsHistoryLimit": 30,  # history.keep
            "failedJobsHistoryLimit": 30,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,  # retries.attempts
                    "ttlSecondsAfterFinished": 14 * 86400,  # history.max_age
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "shareProcessNamespace": True,
                            "activeDeadlineSeconds": 45 * 60,  # timeout, per attempt
                            "terminationGracePeriodSeconds": 60,  # kill_grace
                            "containers": [{
                                "name": "full",
                                "image": "tools:1",
                                "command": ["/bin/bash", "-c", 'set -e\necho "$GREETING %d" > /tmp/out\n'],
                                "env": [
                                    {"name": "JOBCTL_JOB", "value": "full"},
                                    {"name": "LC_ALL", "value": "C.UTF-8"},
                                    {"name": "GREETING", "value": "hello world"},
                                    {"name": "PERCENT", "value": "100%"},
                                    {"name": "QUOTES", "value": "say \"hi\" and 'bye'"},
                                    {"name": "BACKSLASH", "value": "C:\\path\\"},
                                    {"name": "DOLLAR", "value": "$HOME and ${USER}"},
                                    {"name": "UNICODE", "value": "grüße ✓"},
                                ],
                                "workingDir": "/srv/app data",
                            }],
                        },
                    },
                },
            },
        },
    }


def test_argv_every_disabled_and_defaults(corpus):
    docs = {d["metadata"]["name"]: d for d in documents(export("--image", "tools:1"))}
    argv = docs["argv"]
    assert argv["spec"]["schedule"] == "*/15 * * * *"  # @every 15m, expanded
    assert argv["metadata"]["annotations"] == {"jobctl/schedule": "@every 15m"}
    assert argv["spec"]["concurrencyPolicy"] == "Allow"
    assert argv["spec"]["startingDeadlineSeconds"] == k8s.NO_CATCH_UP_DEADLINE
    # no history in the job file: Kubernetes' own defaults, not jobctl's run-log retention (issue 11)
    assert "successfulJobsHistoryLimit" not in argv["spec"] and "failedJobsHistoryLimit" not in argv["spec"]
    assert "ttlSecondsAfterFinished" not in argv["spec"]["jobTemplate"]["spec"]
    pod = argv["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["rsync", "-a", "--exclude=*.tmp", "/srv/data/",
                                               "backup:/srv/data with space/"]
    assert pod["activeDeadlineSeconds"] == 3600  # timeout from _defaults.yaml
    assert pod["terminationGracePeriodSeconds"] == 20
    assert "workingDir" not in pod["containers"][0]
    assert argv["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0  # not Kubernetes' default of 6
    disabled = docs["disabled"]
    assert disabled["spec"]["suspend"] is True
    assert disabled["spec"]["concurrencyPolicy"] == "Forbid"  # concurrency: wait
    assert "boot" not in docs
    assert docs[k8s.resource_name("db.nightly_vacuum")]["spec"]["timeZone"] == "America/New_York"


def test_paused_job_is_suspended(write_job):
    from jobctl import pause

    write_job("p.yaml", "schedule: '0 3 * * *'\ncommand: x\n")
    pause.pause(os.environ["JOBCTL_STATE_DIR"], "p")
    result = export("--image", "tools:1")
    [doc] = documents(result)
    assert doc["spec"]["suspend"] is True
    assert result.stderr == "jobctl: warning: p: paused on this host: exported with suspend: true\n"


def test_warnings_name_everything_kubernetes_does_not_carry(corpus):
    result = export()
    assert result.exit_code == 0, result.output
    vacuum = k8s.resource_name("db.nightly_vacuum")
    assert result.stderr.splitlines() == [
        "jobctl: warning: no --image: the CronJobs run in debian:bookworm-slim; every program the jobs run must "
        "exist in that image (pass --image)",
        "jobctl: warning: boot: @reboot has no Kubernetes equivalent; not exported",
        f"jobctl: warning: db.nightly_vacuum: named {vacuum} in Kubernetes: CronJob names are DNS-1123 labels "
        "(lowercase letters, digits, '-') of at most 52 characters",
        "jobctl: warning: disabled: disabled (enabled: false): exported with suspend: true",
        "jobctl: warning: disabled: concurrency: wait has no Kubernetes equivalent: exported as Forbid (a run due "
        "while the previous one runs is skipped, not queued)",
        "jobctl: warning: either-day: notify (command, ping) is not carried: Kubernetes sends no notifications; "
        "alert on failed Jobs instead (e.g. kube-state-metrics kube_job_status_failed)",
        "jobctl: warning: full: retries: 2 more attempts are carried (backoffLimit), their delays are not (delay "
        "30s, backoff 3, max_delay 5m): Kubernetes waits 10s, 20s, 40s ... up to 6m between pods",
        "jobctl: warning: full: jitter 5m is not carried: Kubernetes starts runs on the minute",
        "jobctl: warning: full: notify (webhook, email) is not carried: Kubernetes sends no notifications; alert on "
        "failed Jobs instead (e.g. kube-state-metrics kube_job_status_failed)",
        "jobctl: warning: full: user: root is not carried: set securityContext.runAsUser to its uid in the image",
        "jobctl: warning: full: output_limit 64KiB is not carried: the pod's log keeps all output (the kubelet "
        "rotates it)",
        "jobctl: warning: full: cron_mail: always is not carried: Kubernetes mails nothing; the pod's log keeps the "
        "output",
        "jobctl: warning: full: catch_up_mode: each is not carried: a CronJob starts one run for its missed "
        "schedules; jobctl backfill makes up each of them",
        "jobctl: warning: pipeline: then: argv is not carried: a CronJob starts no other job when it succeeds; run "
        "the steps one after another in one CronJob's command, or use a workflow engine (e.g. an Argo CronWorkflow "
        "with steps)",
        "jobctl: warning: pipeline: on_failure: either-day is not carried: a CronJob starts no other job when it "
        "fails; run it from the command (job || handler), or use a workflow engine's exit handler (e.g. Argo's "
        "onExit)",
        "jobctl: warning: pipeline: requires: full succeeded within 2h is not carried: a CronJob cannot check "
        "another job's latest run; run the jobs as steps of one CronJob, or use a workflow engine's dependencies "
        "(e.g. an Argo DAG)",
        "jobctl: warning: pipeline: lock_group: nightly is not carried: concurrencyPolicy keeps only one CronJob "
        "from overlapping itself; run the group's jobs from one CronJob, or take a lock in the command (e.g. a "
        "coordination.k8s.io Lease)",
        "jobctl: warning: pipeline: baseline is not carried: the usual duration is learned from jobctl's run log, "
        "which a CronJob does not write",
    ]
    images = {d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
              for d in yaml.safe_load_all(result.stdout)}
    assert images == {k8s.DEFAULT_IMAGE}


# --- output ------------------------------------------------------------------------------------

def test_stream_and_files_hold_the_same_documents(corpus, tmp_path, jobs_dir):
    streamed = documents(export("--image", "tools:1"))
    out = tmp_path / "k8s"
    result = export("--image", "tools:1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {len(streamed)} files to {out}\nnext: kubectl apply -f {out}\n"
    files = sorted(out.iterdir())
    assert [f.name for f in files] == sorted(f"{d['metadata']['name']}.yaml" for d in streamed)
    by_name = {d["metadata"]["name"]: d for d in streamed}
    for f in files:
        text = f.read_text()
        assert text.startswith(f"{MARK} kubernetes from {jobs_dir}/")
        assert yaml.safe_load(text) == by_name[f.name[:-5]]
        assert oct(f.stat().st_mode & 0o777) == "0o644"


def test_out_overwrites_only_what_an_export_wrote(write_job, tmp_path):
    out = tmp_path / "k8s"
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert export("--image", "t:1", "--out", str(out)).exit_code == 0
    write_job("a.yaml", "schedule: '@hourly'\ncommand: x\n")
    assert export("--image", "t:1", "--out", str(out)).exit_code == 0
    assert yaml.safe_load((out / "a.yaml").read_text())["spec"]["schedule"] == "0 * * * *"
    (out / "a.yaml").write_text("kind: ConfigMap\n")
    result = export("--image", "t:1", "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr == (f"jobctl: not overwriting {out}/a.yaml: not written by jobctl export (the first line "
                             f"is not {MARK!r}); move it away or choose another --out\n")
    assert (out / "a.yaml").read_text() == "kind: ConfigMap\n"


def test_exit_codes(write_job):
    write_job("a.yaml", "schedule: '@daily'\ncommand: x\n")
    assert export("--namespace", "Not_Valid").exit_code == 2
    assert export("--namespace", "n" * 64).exit_code == 2
    assert export("--image", "has space").exit_code == 2
    assert export("--image", "").exit_code == 2
    write_job("b.yaml", "schedule: '@dialy'\ncommand: x\n")
    result = export()
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "did you mean @daily?" in result.stderr.splitlines()[0]
    assert result.stderr.splitlines()[-1].startswith("jobctl: 1 problem in ")


def test_export_help_has_examples():
    for args in (["export", "--help"], ["export", "kubernetes", "--help"], ["export", "systemd", "--help"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 0
        assert "Examples:" in result.output and f"jobctl {' '.join(args[:-1])}" in result.output


def test_the_cluster_docs_show_what_the_export_prints(write_job, tmp_path):
    """The README's "From one server to a cluster": its job, excerpts and warnings are real."""
    readme = (ROOT / "README.md").read_text()
    doc = readme[readme.index("## From one server to a cluster"):readme.index("## Where state lives")]
    job = re.search(r"```yaml\n# jobs.d/report.yaml\n(.*?)```", doc, re.S).group(1)
    write_job("report.yaml", job)
    result = export("--image", "registry.example.com/tools:1.4", "--namespace", "batch")
    assert result.exit_code == 0, result.output
    warnings = re.search(r"```text\n(.*?)```", doc, re.S).group(1)
    assert result.stderr == warnings
    excerpt = yaml.safe_load(re.search(r"```yaml\n# CronJob report \(excerpt\)\n(.*?)```", doc, re.S).group(1))

    def contains(big, small) -> bool:
        if isinstance(small, dict):
            return all(k in big and contains(big[k], v) for k, v in small.items())
        if isinstance(small, list):
            return len(big) == len(small) and all(contains(b, s) for b, s in zip(big, small, strict=True))
        return big == small

    [cronjob] = documents(result)
    assert contains(cronjob, {"spec": excerpt["spec"]})
    systemd = cli.invoke(app, ["export", "systemd", "--out", str(tmp_path / "u")])
    assert systemd.exit_code == 0, systemd.output
    timer = re.search(r"```ini\n# jobctl-report.timer \(excerpt\)\n(.*?)```", doc, re.S).group(1)
    real = iter((tmp_path / "u" / "jobctl-report.timer").read_text().splitlines())
    assert all(line in real for line in timer.splitlines())  # in order, comments left out
    renamed = k8s.resource_name("db.nightly_vacuum")
    assert f"(`{renamed}`)" in doc


# --- a one-off Job (export kubernetes --job NAME -p ...) -------------------------------------------

def test_a_one_off_job_is_a_valid_job_with_its_parameters_as_values(write_job):
    write_job("report.yaml", 'schedule: "0 6 * * *"\ncommand: ["/usr/bin/report", "--customer"]\n'
                             'params:\n  customer: {required: true}\n  format: {default: pdf, pattern: "pdf|csv"}\n')
    evil = "$(rm -rf /); `id`"
    result = export("--job", "report", "-p", f"customer={evil}", "--image", "debian:12", "--namespace", "batch")
    [doc] = documents(result)
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)
    assert (doc["kind"], doc["metadata"]["generateName"], doc["metadata"]["namespace"]) == ("Job", "report-", "batch")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/usr/bin/report", "--customer"]  # the value is no word of the command
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["JOBCTL_PARAM_CUSTOMER"] == evil and env["JOBCTL_PARAM_FORMAT"] == "pdf"
    # the CronJob's pod, retries and limits, without the schedule's fields
    [cron] = documents(export("--image", "debian:12", "--namespace", "batch"))
    assert doc["spec"]["template"]["spec"] == {**cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                                               "containers": [container]}
    assert "schedule" not in doc["spec"] and "suspend" not in doc["spec"]
    # refused as submit refuses them
    missing = export("--job", "report")
    assert missing.exit_code == 2 and "job report: customer: required; give -p customer=VALUE" in missing.stderr
    assert export("--job", "nosuch").exit_code == 1
    assert export("-p", "customer=1").exit_code == 2


def test_env_values_go_yaml_would_read_as_numbers_or_booleans_are_quoted(write_job):
    write_job("n.yaml", 'schedule: "@daily"\ncommand: "true"\nparams:\n  v: {}\n')
    for value in ("1e3", "0o17", "1_000", "0x1f", "True", "off", "5", ".inf"):
        result = export("--job", "n", "-p", f"v={value}")
        assert result.exit_code == 0, result.output
        assert f"value: '{value}'" in result.stdout, value
