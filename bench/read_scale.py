"""The CLI at scale: read commands, apply, plan and validate over N jobs and M runs, in the aged state.

Issue 13's benchmark.  Every command is a whole process, started as an
operator starts it (the target's own `jobctl` console script), timed from
spawn to reap, CPU (user+sys) and peak RSS from wait4 through a minimal
spawner (common.run_small).  Targets are interleaved: every round runs every
(command, target) pair once, the starting pair rotating each round; medians
are reported.

The state ("aged", as it is in real use): N job files with 7 distinct
schedules (job i has SCHEDULES[i % 7]), applied by the target's own
`jobctl apply`; the run log created by the target's own jobctl (`jobctl run`
of one job) and then filled with M runs by direct SQL in one transaction
(M / N per job, interleaved in time as wrappers write them, on each job's
schedule, several statuses); then every file of the state directory except
the run log is dated AGE_DAYS back, so every job is past its first scheduled
time since it was applied and status runs its late/missed query for every job
(status reads "applied at" from the applied definitions' mtime).  Each
command on that state gets it re-aged first (apply rewrites what changed).
Every 50th job (i % 50 == 9) is a canary whose runs stop AGE_DAYS before the
log was generated: status must call it missed, which proves the state is aged
(a warning is printed otherwise).  The other jobs' runs end when the log was
generated: status measured later calls those missed whose next scheduled
time has come since (the query costs the same either way).

Filled logs are cached in bench/out/read_scale/cache/ by (schema of the
target's log, N, M) and copied into each target's state, so reruns are fast
and every target reads its own copy (a migration or a write by one target
never reaches another).  Nothing touches the machine's crontab: the crontab
is a file (JOBCTL_CRONTAB), the jobs directory and state directory are under
bench/out (JOBCTL_JOBS_DIR, JOBCTL_STATE_DIR).  The one exception is the
floor `crontab -l`, which only reads the invoking user's crontab.

Measured (keys for --commands):

  status     jobctl status                      (COLUMNS=160, stdout /dev/null)
  json       jobctl status --json
  apply-new  jobctl apply of N new jobs          (a fresh state and crontab file each round)
  apply-same jobctl apply, nothing changed       (on the aged state)
  plan       jobctl plan --check                 (in sync: exits 0)
  validate   jobctl validate
  help       jobctl --help
  version    jobctl --version
  history    jobctl history job-0000 --limit 20 --json
  floors     sqlite3 running status's queries for every job on the target's log
             (latest run, latest started run, failure streak head, the late/missed
             window); the same on a copy with an index on (job, scheduled_for);
             crontab -l; python -I -c pass of each target

Growth mode (--growth) measures the same way at several sizes: jobs
10, 100, 1,000, 5,000 with runs fixed (--runs), and runs 10k, 100k, 1M, 10M
with jobs fixed (--jobs), and prints, per command and target, the medians and
the exponent fitted by least squares on log(size) vs log(wall) (also net of
start-up: the same target's `--version` at that size subtracted).

    nice -n 10 .venv/bin/python bench/read_scale.py --targets rev=da71d5e,rev=HEAD [--jobs 1000]
        [--runs 1000000] [--rounds 10] [--commands status,json,...] [--quick]
    nice -n 10 .venv/bin/python bench/read_scale.py --growth [jobs|runs|both] --targets rev=HEAD
        [--jobs-sizes 10,100,1000,5000] [--runs-sizes 10000,100000,1000000,10000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import heapq
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import time

import common

OUT = os.path.join(common.OUT, "read_scale")
CACHE = os.path.join(OUT, "cache")
SCHEDULES = ["*/5 * * * *", "*/15 * * * *", "@hourly", "0 */2 * * *", "17 3 * * *", "30 4 * * 1-5", "0 6 * * 0"]
AGE_DAYS = 8  # past the weekly schedule's first time (7 days) with a day to spare
SPAN = 730 * 86400.0  # runs on each job's schedule go back at most two years; older ones are spread evenly
GENERATOR = "2"  # bump when the generated log changes: cached logs are keyed by it
HISTORY_JOB = "job-0000"

# (key, label, argv after jobctl, which state, the target in seconds)
COMMANDS = [
    ("status", "status", ["status"], "aged", 0.4),
    ("json", "status --json", ["status", "--json"], "aged", 0.4),
    ("apply-new", "apply, {jobs} new jobs", ["apply"], "fresh", 1.0),
    ("apply-same", "apply, nothing changed", ["apply"], "aged", 0.4),
    ("plan", "plan --check", ["plan", "--check"], "aged", 0.4),
    ("validate", "validate", ["validate"], "aged", 0.4),
    ("help", "--help", ["--help"], "aged", 0.1),
    ("version", "--version", ["--version"], "aged", 0.1),
    ("history", f"history {HISTORY_JOB} --limit 20 --json", ["history", HISTORY_JOB, "--limit", "20", "--json"],
     "aged", 0.12),
]
BY_KEY = {c[0]: c for c in COMMANDS}
FLOOR_SQL = "floor: sqlite3, status's queries"
FLOOR_IDX = "floor: the same + index (job, scheduled_for)"
FLOOR_CRONTAB = "floor: crontab -l (read only)"
YARDSTICK = "yardstick: python -I -c pass"


def log(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# --- schedules: previous times of a 5-field cron expression (local time, cron's day rule)

ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def _fields(expr: str) -> tuple[list[set[int]], bool, bool]:
    parts = ALIASES.get(expr, expr).split()
    out = []
    for part, (lo, hi) in zip(parts, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)], strict=True):
        values: set[int] = set()
        for item in part.split(","):
            rng, _, step = item.partition("/")
            if rng == "*":
                a, b = lo, hi
            elif "-" in rng:
                a, b = (int(x) for x in rng.split("-"))
            else:
                a = int(rng)
                b = hi if step else a
            values.update(range(a, b + 1, int(step or 1)))
        out.append(values)
    out[4] = {d % 7 for d in out[4]}
    return out, parts[2] == "*", parts[4] == "*"


def previous(expr: str, before: float, count: int, not_before: float) -> list[float]:
    """Up to count scheduled times <= before and >= not_before, newest first."""
    (minutes, hours, doms, months, dows), any_dom, any_dow = _fields(expr)
    hs, ms = sorted(hours, reverse=True), sorted(minutes, reverse=True)
    day = datetime.date.fromtimestamp(before)
    found: list[float] = []
    while len(found) < count:
        if time.mktime(day.timetuple()) + 86400 * 1.1 < not_before:
            break
        dom_ok, dow_ok = day.day in doms, (day.weekday() + 1) % 7 in dows
        # cron(8): when both day fields are restricted, either matches
        ok = (dom_ok and dow_ok) if any_dom or any_dow else (dom_ok or dow_ok)
        if ok and day.month in months:
            for h in hs:
                for m in ms:
                    t = time.mktime((day.year, day.month, day.day, h, m, 0, 0, 0, -1))
                    if not_before <= t <= before:
                        found.append(t)
                        if len(found) == count:
                            return found
        day -= datetime.timedelta(days=1)
    return found


# --- job files

def canary(i: int) -> bool:
    return i % 50 == 9


def job_name(i: int) -> str:
    return f"job-{i:04d}"


def jobs_dir(n: int) -> str:
    """N job files (cached: the same bytes every time)."""
    path = os.path.join(OUT, "jobs", str(n))
    stamp = os.path.join(OUT, "jobs", f"{n}.done")
    if os.path.exists(stamp):
        return path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for i in range(n):
        with open(os.path.join(path, job_name(i) + ".yaml"), "w") as fh:
            fh.write(f"description: bench job {i}, {'canary, no runs lately' if canary(i) else 'runs as scheduled'}\n"
                     f'schedule: "{SCHEDULES[i % len(SCHEDULES)]}"\n'
                     f"command: echo {i}\ntimeout: 5m\nretries: {{attempts: 2, delay: 30s}}\n"
                     f'env: {{N: "{i}"}}\ntags: [bench, group-{i % 7}]\n')
    open(stamp, "w").close()
    return path


# --- the run log

def fingerprint(db_path: str) -> str:
    """The run log's schema as the target's jobctl made it, plus the generator's version."""
    db = sqlite3.connect(db_path)
    try:
        parts = [GENERATOR]
        for pragma in ("user_version", "page_size", "auto_vacuum"):
            parts.append(f"{pragma}={db.execute(f'PRAGMA {pragma}').fetchone()[0]}")
        parts += [repr(r) for r in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")]
    finally:
        db.close()
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def _streams(n_jobs: int, n_runs: int, t0: float) -> list[tuple[list[float], list[tuple[int, bool]]]]:
    """Per (schedule, canary): ascending scheduled times, and the jobs on them (index, has the oldest)."""
    per_job, extra = divmod(n_runs, n_jobs)
    need = per_job + (1 if extra else 0)
    groups: dict[tuple[int, bool], list[tuple[int, bool]]] = {}
    for i in range(n_jobs):
        groups.setdefault((i % len(SCHEDULES), canary(i)), []).append((i, i < extra))
    streams = []
    for (s, is_canary), members in sorted(groups.items()):
        end = t0 - AGE_DAYS * 86400.0 if is_canary else t0
        times = previous(SCHEDULES[s], end, need, end - SPAN)
        if len(times) < need:
            rest = need - len(times)
            oldest = times[-1] if times else end
            gap = SPAN / rest
            times += [oldest - gap * (k + 1) for k in range(rest)]
        times.reverse()
        streams.append((times, members))
    return streams


STATUS_CUTS = [(0.900, "succeeded"), (0.950, "failed"), (0.975, "skipped"), (0.985, "timeout"), (0.990, "killed"),
               (0.993, "lost"), (1.001, "succeeded")]


def generate(n_jobs: int, n_runs: int, t0: float, host: str, boot: str):
    """Rows of runs (dicts) in the order wrappers write them, and run_output rows for some."""
    rng = random.Random(13)
    streak = [0] * n_jobs
    streams = _streams(n_jobs, n_runs, t0)
    def stream(k: int, times: list[float]):
        for idx, t in enumerate(times):
            yield t, k, idx

    heads = heapq.merge(*[stream(k, times) for k, (times, _) in enumerate(streams)])
    run_id = 0
    extra = n_runs % n_jobs
    for t, k, idx in heads:
        for i, has_oldest in streams[k][1]:
            if extra and idx == 0 and not has_oldest:
                continue  # only the first (n_runs % n_jobs) jobs have the oldest time
            run_id += 1
            r = rng.random()
            status = next(s for cut, s in STATUS_CUTS if r < cut)
            manual = rng.random() < 0.01
            late = rng.random() < 0.005
            started = t + (rng.uniform(90, 600) if late else rng.uniform(0.02, 1.5)) + (45 if manual else 0)
            duration = {"timeout": 300.0, "skipped": 0.0}.get(status, rng.expovariate(1 / 8.0))
            exit_code = {"succeeded": 0, "failed": 1}.get(status)
            sig = {"timeout": 15, "killed": 9}.get(status)
            reason = {"succeeded": "exit status 0", "failed": "exit status 1",
                      "skipped": f"skipped: previous run {run_id - 1} still running",
                      "timeout": "timed out after 5m", "killed": "killed by SIGKILL",
                      "lost": "lost: machine rebooted before recording the end"}[status]
            if status != "skipped":
                streak[i] = streak[i] + 1 if status in ("failed", "timeout", "killed", "lost") else 0
            out_bytes = 0 if status == "skipped" else len(str(i)) + 1
            row = {
                "id": run_id, "job": job_name(i), "status": status, "exit_code": exit_code, "signal": sig,
                "trigger": "manual" if manual else "schedule", "attempt": 1,
                "scheduled_for": None if manual else t, "started_at": started,
                "finished_at": started + duration, "duration_s": duration,
                "pid": None if status == "skipped" else 10000 + run_id % 30000,
                "wrapper_pid": 9000 + run_id % 30000, "host": host, "boot_id": boot,
                "output_bytes": out_bytes, "output_truncated": 0, "reason": reason, "jitter_s": None,
                "notify": None, "retried": 0, "failures": None if status == "skipped" else streak[i],
            }
            output = (run_id, f"{i}\n".encode(), b"", 0) if out_bytes and run_id % 10 == 0 else None
            yield row, output


def fill(template: str, dest: str, n_jobs: int, n_runs: int) -> dict[str, object]:
    """A copy of the target's (empty) run log with n_runs runs, written atomically to dest."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + ".tmp"
    shutil.copyfile(template, tmp)
    t0 = time.time()
    host = os.uname().nodename
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
    except OSError:
        boot = "bench"
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    db.execute("BEGIN")
    db.execute("DELETE FROM run_output")
    db.execute("DELETE FROM runs")
    names = None
    insert = None
    batch: list[tuple] = []
    outputs: list[tuple] = []
    done = 0
    for row, output in generate(n_jobs, n_runs, t0, host, boot):
        if names is None:
            missing = set(row) - set(cols)
            names = [c for c in row if c in cols]
            if missing:
                log(f"the target's runs table has no {sorted(missing)}: left out")
            insert = f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        batch.append(tuple(row[c] for c in names))
        if output:
            outputs.append(output)
        if len(batch) == 100_000:
            db.executemany(insert, batch)
            db.executemany("INSERT INTO run_output (run_id, head, tail, dropped) VALUES (?, ?, ?, ?)", outputs)
            done += len(batch)
            batch.clear()
            outputs.clear()
            if done % 1_000_000 == 0:
                log(f"  {done:,} runs written")
    if batch:
        db.executemany(insert, batch)
        db.executemany("INSERT INTO run_output (run_id, head, tail, dropped) VALUES (?, ?, ?, ?)", outputs)
    db.execute("COMMIT")
    count = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    db.execute("PRAGMA journal_mode=WAL")  # as jobctl made it
    db.close()
    if count != n_runs:
        sys.exit(f"generated {count} runs, expected {n_runs}")
    os.replace(tmp, dest)
    meta = {"jobs": n_jobs, "runs": n_runs, "generated_at": t0, "fill_s": round(time.time() - t0, 1),
            "bytes": os.path.getsize(dest)}
    with open(dest + ".json", "w") as fh:
        json.dump(meta, fh)
    return meta


# --- states

def base_env(jobs: str, state: str, crontab: str) -> dict[str, str]:
    env = common.cron_env()
    env.update({"LANG": "C.UTF-8", "COLUMNS": "160", "LINES": "50", "JOBCTL_JOBS_DIR": jobs,
                "JOBCTL_STATE_DIR": state, "JOBCTL_CRONTAB": crontab})
    return env


def age(state: str, crontab: str, when: float) -> None:
    """Every file of the state directory but the run log, and the crontab file, dated back to `when`."""
    for top, _, files in os.walk(state):
        for n in files:
            if not n.startswith("runs.db"):
                os.utime(os.path.join(top, n), (when, when))
    if os.path.exists(crontab):
        os.utime(crontab, (when, when))


def checked(argv: list[str], env: dict[str, str], what: str, ok: tuple[int, ...] = (0,)) -> None:
    res = common.run_small(argv, env, stdout=os.path.join(OUT, "setup.out"), stderr=os.path.join(OUT, "setup.err"))
    if res.code not in ok:
        with open(os.path.join(OUT, "setup.err"), errors="replace") as fh:
            tail = fh.read()[-1500:]
        sys.exit(f"{what}: {' '.join(argv)} exited {res.code}\n{tail}")


class State:
    """One target's aged state at one size, and its fresh-apply directory."""

    def __init__(self, target: str, n_jobs: int, n_runs: int, indexed_floor: bool) -> None:
        self.target = target
        self.jobctl = common.jobctl_command(target, refresh=False)
        self.python = os.path.join(os.path.dirname(self.jobctl), "python")
        self.jobs = jobs_dir(n_jobs)
        root = os.path.join(OUT, common.slug(target))
        self.dir = os.path.join(root, "aged")
        self.state = os.path.join(self.dir, "state")
        self.crontab = os.path.join(self.dir, "crontab")
        self.fresh = os.path.join(root, "fresh")
        self.env = base_env(self.jobs, self.state, self.crontab)
        self.fresh_env = base_env(self.jobs, os.path.join(self.fresh, "state"), os.path.join(self.fresh, "crontab"))
        self.aged_at = time.time() - AGE_DAYS * 86400
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(self.dir)
        t = time.perf_counter()
        checked([self.jobctl, "apply"], self.env, f"{target}: apply")
        checked([self.jobctl, "run", job_name(0), "--quiet"], self.env, f"{target}: the first run (creates the log)")
        db_path = os.path.join(self.state, "runs.db")
        con = sqlite3.connect(db_path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        fp = fingerprint(db_path)
        cached = os.path.join(CACHE, f"runs-{fp}-{n_jobs}j-{n_runs}r.db")
        if not os.path.exists(cached):
            log(f"{target}: generating {n_runs:,} runs of {n_jobs:,} jobs (schema {fp}) into {cached}")
            meta = fill(db_path, cached, n_jobs, n_runs)
            log(f"  done in {meta['fill_s']} s, {meta['bytes'] / 2**20:.0f} MiB")
        with open(cached + ".json") as fh:
            self.meta = json.load(fh)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(db_path + suffix)
            except FileNotFoundError:
                pass
        shutil.copyfile(cached, db_path)
        self.db = db_path
        self.age()
        self.floor_sql = os.path.join(self.dir, "floor.sql")
        write_floor_sql(self.floor_sql, n_jobs)
        self.indexed_db = None
        if indexed_floor:
            self.indexed_db = os.path.join(self.dir, "floor-indexed.db")
            shutil.copyfile(cached, self.indexed_db)
            con = sqlite3.connect(self.indexed_db)
            con.execute("CREATE INDEX IF NOT EXISTS bench_job_scheduled ON runs (job, scheduled_for)")
            con.close()
        log(f"{target}: state ready in {time.perf_counter() - t:.1f} s ({self.jobctl})")

    def age(self) -> None:
        age(self.state, self.crontab, self.aged_at)

    def reset_fresh(self) -> None:
        shutil.rmtree(self.fresh, ignore_errors=True)
        os.makedirs(self.fresh)

    def drop(self) -> None:
        shutil.rmtree(os.path.dirname(self.dir), ignore_errors=True)


def write_floor_sql(path: str, n_jobs: int) -> None:
    """status's queries for every job, in one statement, for the sqlite3 shell (written when measuring starts)."""
    now = time.time()
    dues = []
    for i in range(n_jobs):
        expr = SCHEDULES[i % len(SCHEDULES)]
        prev = previous(expr, now - 60, 1, now - 40 * 86400)
        dues.append(f"('{job_name(i)}', {prev[0] if prev else 0!r})")
    with open(path, "w") as fh:
        fh.write(f"WITH due(job, ts) AS (VALUES {', '.join(dues)})\n"
                 "SELECT due.job,\n"
                 " (SELECT id || ' ' || status || ' ' || started_at FROM runs WHERE job = due.job"
                 " ORDER BY id DESC LIMIT 1),\n"
                 " (SELECT id FROM runs WHERE job = due.job AND status != 'skipped' ORDER BY id DESC LIMIT 1),\n"
                 " (SELECT status || ' ' || coalesce(failures, '') FROM runs WHERE job = due.job"
                 " AND status NOT IN ('skipped', 'running') AND retried = 0 ORDER BY id DESC LIMIT 1),\n"
                 " (SELECT min(started_at) FROM runs WHERE job = due.job AND scheduled_for >= due.ts - 1"
                 " AND scheduled_for < due.ts + 60)\n"
                 "FROM due ORDER BY due.job;\n")


# --- measuring

class Item:
    def __init__(self, label: str, target: str, argv: list[str], env: dict[str, str], prep=None,
                 ok: tuple[int, ...] = (0,), goal: float | None = None, key: str = "") -> None:
        self.label, self.target, self.argv, self.env, self.prep, self.ok = label, target, argv, env, prep, ok
        self.goal, self.key = goal, key
        self.results: list[common.Result] = []
        self.out = os.devnull
        self.err = os.devnull


def items_for(states: list[State], keys: list[str], n_jobs: int) -> list[Item]:
    items = []
    for key in keys:
        if key == "floors":
            continue
        _, label, args, kind, goal = BY_KEY[key]
        for s in states:
            if kind == "fresh":
                items.append(Item(label.format(jobs=f"{n_jobs:,}"), s.target, [s.jobctl, *args], s.fresh_env,
                                  s.reset_fresh, goal=goal, key=key))
            else:
                items.append(Item(label, s.target, [s.jobctl, *args], s.env, s.age, goal=goal, key=key))
    if "floors" in keys:
        sqlite = shutil.which("sqlite3")
        for s in states:
            if sqlite:
                items.append(Item(FLOOR_SQL, s.target, [sqlite, "-readonly", s.db, f".read {s.floor_sql}"], s.env,
                                  key="floor"))
        if sqlite and states[0].indexed_db:
            s = states[0]
            items.append(Item(FLOOR_IDX, "-", [sqlite, "-readonly", s.indexed_db, f".read {s.floor_sql}"], s.env,
                              key="floor"))
        if shutil.which("crontab"):
            items.append(Item(FLOOR_CRONTAB, "-", [shutil.which("crontab"), "-l"], states[0].env, ok=(0, 1),
                              key="floor"))
        for s in states:
            items.append(Item(YARDSTICK, s.target, [s.python, "-I", "-c", "pass"], s.env, key="floor"))
    return items


def check_outputs(items: list[Item], n_jobs: int, problems: list[str]) -> dict[str, str]:
    """What the warm-up printed: status --json has every job and names the canaries missed; history 20 runs."""
    notes = {}
    for it in items:
        if it.key == "json":
            try:
                with open(it.out) as fh:
                    rows = json.load(fh)
            except (OSError, ValueError) as exc:
                problems.append(f"{it.target}: status --json printed no JSON ({exc})")
                continue
            missed = sum(1 for r in rows if r.get("missed"))
            late = sum(1 for r in rows if r.get("late"))
            canaries = sum(1 for i in range(n_jobs) if canary(i))
            notes[it.target] = f"{it.target}: status --json lists {len(rows)} jobs, {missed} missed, {late} late"
            if len(rows) != n_jobs:
                problems.append(f"{it.target}: status --json listed {len(rows)} jobs, expected {n_jobs}")
            if "missed" not in (rows[0] if rows else {}):
                problems.append(f"{it.target}: status --json has no 'missed' field: cannot tell if the state is aged")
            elif missed < canaries:
                problems.append(f"{it.target}: NOT AGED? status calls {missed} jobs missed, fewer than the "
                                f"{canaries} canaries (does this revision record the apply time elsewhere?)")
        if it.key == "history":
            try:
                with open(it.out) as fh:
                    rows = json.load(fh)
                if len(rows) != 20:
                    problems.append(f"{it.target}: history printed {len(rows)} runs, expected 20")
            except (OSError, ValueError) as exc:
                problems.append(f"{it.target}: history --json printed no JSON ({exc})")
    return notes


def measure(items: list[Item], rounds: int, tag: str) -> None:
    """One warm-up each (its output kept and checked), then `rounds` interleaved rounds."""
    logs = os.path.join(OUT, "logs")
    os.makedirs(logs, exist_ok=True)
    for k, it in enumerate(items):
        it.out = os.path.join(logs, f"{tag}-{k}.out")
        it.err = os.path.join(logs, f"{tag}-{k}.err")
        for path in (it.out, it.err):
            open(path, "w").close()
        if it.prep:
            it.prep()
        res = common.run_small(it.argv, it.env, stdout=it.out, stderr=it.err)
        if res.code not in it.ok:
            with open(it.err, errors="replace") as fh:
                sys.exit(f"{it.label} ({it.target}) exited {res.code}: {fh.read()[-1500:]}")
    t0 = time.perf_counter()
    for r in range(rounds):
        k = r % len(items)
        for it in items[k:] + items[:k]:
            if it.prep:
                it.prep()
            res = common.run_small(it.argv, it.env, stderr=it.err)
            if res.code not in it.ok:
                with open(it.err, errors="replace") as fh:
                    sys.exit(f"{it.label} ({it.target}) exited {res.code} in round {r + 1}: {fh.read()[-1500:]}")
            it.results.append(res)
        log(f"{tag}: round {r + 1}/{rounds} done, {time.perf_counter() - t0:.0f} s")


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def med(it: Item, field: str) -> float:
    return common.median([getattr(r, field) for r in it.results])


def paired_ratio(a: Item, b: Item) -> float:
    """Median over rounds of b's wall / a's wall (same round)."""
    return common.median([y.wall / x.wall for x, y in zip(a.results, b.results, strict=False)])


def report(items: list[Item], targets: list[str], rounds: int) -> None:
    rows = []
    for it in items:
        walls = [r.wall for r in it.results]
        met = "" if it.goal is None else ("yes" if med(it, "wall") <= it.goal else "NO")
        rows.append([it.label, it.target, fmt_s(med(it, "wall")), f"{fmt_s(min(walls))}–{fmt_s(max(walls))}",
                     fmt_s(med(it, "cpu")), f"{med(it, 'maxrss_kib') / 1024:.0f}",
                     "" if it.goal is None else f"≤ {fmt_s(it.goal)}", met])
    print(f"\n{rounds} interleaved rounds; medians (wall min–max); peak RSS of the process tree's largest "
          "process, MiB\n")
    print(common.table(["command", "target", "wall", "wall range", "CPU", "peak RSS", "issue's target", "met"],
                       rows))
    if len(targets) > 1:
        by = {(it.label, it.target): it for it in items}
        labels = list(dict.fromkeys(it.label for it in items if it.target != "-"))
        head = ["command"] + [f"wall {t}" for t in targets] + [f"{t} / {targets[0]}" for t in targets[1:]]
        rows = []
        for label in labels:
            its = [by.get((label, t)) for t in targets]
            if any(x is None for x in its):
                continue
            rows.append([label] + [fmt_s(med(x, "wall")) for x in its]
                        + [f"{paired_ratio(its[0], x):.2f}" for x in its[1:]])
        print(f"\nBefore/after (ratios: median of the per-round ratios, {targets[0]} first)\n")
        print(common.table(head, rows))


def fit(sizes: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) on log(size)."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
    if len(pts) < 2:
        return float("nan")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / den if den else float("nan")


def human(n: int) -> str:
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return f"{n:,}"


def growth_table(axis: str, sizes: list[int], fixed: str, data: dict, targets: list[str], keys: list[str]) -> str:
    """data[(size, label, target)] = median wall; exponents over all sizes, and net of --version."""
    labels = [FLOOR_SQL if key == "floors" else BY_KEY[key][1] for key in keys if key != "version"]
    labels.append("--version")
    rows = []
    for label in labels:
        for t in targets:
            vals = [data.get((n, label.format(jobs=human(n)), t)) for n in sizes]
            if any(v is None for v in vals):
                continue
            startup = [data.get((n, "--version", t)) for n in sizes]
            jobctl_row = label not in ("--version", FLOOR_SQL)
            net = [v - s for v, s in zip(vals, startup, strict=True)] if None not in startup and jobctl_row else None
            last = math.log(vals[-1] / vals[-2]) / math.log(sizes[-1] / sizes[-2]) if len(sizes) > 1 else float("nan")
            rows.append([label.format(jobs="N"), t, *[fmt_s(v) for v in vals], f"{fit(sizes, vals):.2f}",
                         "" if net is None else f"{fit(sizes, net):.2f}", f"{last:.2f}",
                         f"{vals[-1] / vals[-2]:.2f}" if len(vals) > 1 else ""])
    head = ["command", "target", *[human(n) for n in sizes], "exponent", "exponent net of start-up",
            f"exponent {human(sizes[-2])}→{human(sizes[-1])}", f"{human(sizes[-1])} / {human(sizes[-2])}"]
    return (f"Growth in {axis} ({fixed}); median wall; exponent: least squares on log-log over all sizes "
            f"(net of start-up: the target's `--version` at the same size subtracted first)\n\n"
            + common.table(head, rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="installed", type=common.targets_arg,
                        help="comma-separated: rev=GITREV (e.g. rev=da71d5e,rev=HEAD), worktree, dev, a venv path")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs (fixed size in --growth runs)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the log (fixed size in --growth jobs)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 10; 3 with --growth or --quick)")
    parser.add_argument("--commands", default=",".join([c[0] for c in COMMANDS] + ["floors"]),
                        help="which, comma-separated: " + ", ".join(c[0] for c in COMMANDS) + ", floors")
    parser.add_argument("--quick", action="store_true", help="100 jobs, 100,000 runs, 3 rounds")
    parser.add_argument("--no-indexed-floor", action="store_true", help="skip the floor on a copy with the index")
    parser.add_argument("--growth", nargs="?", const="both", choices=["jobs", "runs", "both"],
                        help="measure at several sizes and fit the exponent")
    parser.add_argument("--jobs-sizes", default="10,100,1000,5000")
    parser.add_argument("--runs-sizes", default="10000,100000,1000000,10000000")
    parser.add_argument("--keep-states", action="store_true", help="leave the per-target states in bench/out")
    opts = parser.parse_args()
    if opts.quick:
        opts.jobs, opts.runs = 100, 100_000
    rounds = opts.rounds or (3 if opts.growth or opts.quick else 10)
    keys = [k.strip() for k in opts.commands.split(",") if k.strip()]
    for k in keys:
        if k not in BY_KEY and k != "floors":
            sys.exit(f"unknown command key {k!r}")
    os.makedirs(OUT, exist_ok=True)
    os.chdir(OUT)  # never a ./jobs.d of the caller's
    for t in opts.targets:
        common.python(t)  # build or refresh every venv before measuring
    started = time.perf_counter()
    load, cpu_busy = common.loadavg(), common.busy()
    others = common.Others()
    problems: list[str] = []
    notes: dict[str, str] = {}

    if not opts.growth:
        states = [State(t, opts.jobs, opts.runs, not opts.no_indexed_floor) for t in opts.targets]
        items = items_for(states, keys, opts.jobs)
        measure(items, rounds, "main")
        notes = check_outputs(items, opts.jobs, problems)
        common.print_machine(load, cpu_busy, others)
        meta = states[0].meta
        print(f"{opts.jobs:,} jobs ({len(SCHEDULES)} schedules), {opts.runs:,} runs in the log (generated "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(meta['generated_at']))} UTC, "
              f"{meta['bytes'] / 2**20:.0f} MiB); applied {AGE_DAYS} days ago (aged); wall "
              f"{time.perf_counter() - started:.0f} s in all")
        for t in opts.targets:
            print(f"{t}: {common.jobctl_command(t, refresh=False)}")
        for n in notes.values():
            print(n)
        report(items, opts.targets, rounds)
        raw = os.path.join(OUT, f"results-{time.strftime('%Y%m%dT%H%M%S')}.json")
        with open(raw, "w") as fh:
            json.dump({"targets": opts.targets, "jobs": opts.jobs, "runs": opts.runs,
                       "items": [{"label": it.label, "target": it.target,
                                  "runs": [[r.wall, r.cpu, r.maxrss_kib] for r in it.results]} for it in items]}, fh)
        print(f"\nraw figures: {raw}")
        if not opts.keep_states:
            for s in states:
                s.drop()
    else:
        tables = []
        data_all: dict = {}
        axes = ["jobs", "runs"] if opts.growth == "both" else [opts.growth]
        for axis in axes:
            if axis == "jobs":
                sizes = [int(x) for x in opts.jobs_sizes.split(",")]
                gkeys = [k for k in keys if k in ("status", "json", "apply-new", "plan", "validate", "floors")]
                points = [(n, opts.runs) for n in sizes]
                fixed = f"{opts.runs:,} runs"
            else:
                sizes = [int(x) for x in opts.runs_sizes.split(",")]
                gkeys = [k for k in keys if k in ("status", "json", "history", "floors")]
                points = [(opts.jobs, m) for m in sizes]
                fixed = f"{opts.jobs:,} jobs"
            data: dict = {}
            for size, (n_jobs, n_runs) in zip(sizes, points, strict=True):
                log(f"growth in {axis}: {n_jobs:,} jobs, {n_runs:,} runs")
                states = [State(t, n_jobs, n_runs, False) for t in opts.targets]
                items = items_for(states, [*gkeys, "version"], n_jobs)
                items = [it for it in items if it.label in (FLOOR_SQL, "--version") or it.key != "floor"]
                measure(items, rounds, f"{axis}-{size}")
                for n in check_outputs(items, n_jobs, problems).values():
                    notes[f"{axis}-{size}-{n}"] = f"{n_jobs:,} jobs, {n_runs:,} runs: {n}"
                for it in items:
                    label = it.label
                    if it.key == "apply-new":
                        label = BY_KEY["apply-new"][1].format(jobs=human(size))
                    data[(size, label, it.target)] = med(it, "wall")
                if not opts.keep_states:
                    for s in states:
                        s.drop()
            tables.append(growth_table(axis, sizes, fixed, data, opts.targets, gkeys))
            data_all.update({(f"{axis}={size}", label, t): v for (size, label, t), v in data.items()})
        common.print_machine(load, cpu_busy, others)
        print(f"{rounds} interleaved rounds at each size; applied {AGE_DAYS} days ago (aged); wall "
              f"{time.perf_counter() - started:.0f} s in all")
        for t in opts.targets:
            print(f"{t}: {common.jobctl_command(t, refresh=False)}")
        for n in notes.values():
            print(n)
        for table in tables:
            print("\n" + table)
        raw = os.path.join(OUT, f"growth-{time.strftime('%Y%m%dT%H%M%S')}.json")
        with open(raw, "w") as fh:
            json.dump([[size, label, t, wall] for (size, label, t), wall in data_all.items()], fh)
        print(f"\nraw figures (medians): {raw}")
    for p in problems:
        print(f"PROBLEM: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
