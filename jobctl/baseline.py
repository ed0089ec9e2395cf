"""A job's usual duration, learned from its run log, and the judgement of one run against it.

The usual duration is the median of the job's last ``runs`` successful runs
(``baseline.runs``, default 20), with the median absolute deviation (MAD, not
scaled) as its spread; with fewer than ``min_runs`` (default 5) nothing is
judged.  A run is

* **slow** when it took longer than ``slow`` times the median (default 3×)
  *and* longer than the median plus ``MADS`` MADs, and at least
  ``MIN_DELTA`` seconds longer than the median;
* **short** when it succeeded in less than ``short`` times the median
  (default 0.1) *and* less than the median minus ``MADS`` MADs, and at least
  ``MIN_DELTA`` seconds less than the median (the backup that did nothing);
* **overdue** while it is still running past the slow threshold (the
  catch-up pass alerts once and never kills it).

Both conditions, not one: a job whose durations vary widely (a MAD of half
its median) is not slow at 3× its median, and a job that never varies
(MAD 0) is not slow at median + 1 s.  ``MIN_DELTA`` keeps a 0.1 s job that
took 0.4 s from paging anyone.  One function for the wrapper (which judges a
finished run when the job notifies on slow or short), the pass (overdue) and
the read commands (history's marks, status's USUAL), so all three say the
same.  Standard library only: the wrapper imports it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

#: what a job without ``baseline:`` gets (applied.FORMATS and the job-file keys use these)
DEFAULT: dict[str, Any] = {"min_runs": 5, "runs": 20, "slow": 3.0, "short": 0.1}
#: how many MADs from the median a run must also be to be judged slow or short
MADS = 5
#: seconds a run must differ from the median by, at least, to be judged slow or short
MIN_DELTA = 1.0


class Usual:
    """The median and MAD of ``n`` successful runs' durations, in seconds."""

    __slots__ = ("mad", "median", "n")

    def __init__(self, median: float, mad: float, n: int) -> None:
        self.median = median
        self.mad = mad
        self.n = n

    def describe(self) -> str:
        """``12.0s (median of 20 runs, MAD 0.4s)``: what every alert and view says the usual is."""
        return f"{_fmt(self.median)} (median of {self.n} successful runs, MAD {_fmt(self.mad)})"


def _fmt(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """A job's ``baseline`` mapping with every key (an older or hand-written definition may lack some)."""
    out = dict(DEFAULT)
    if cfg:
        for key in DEFAULT:
            value = cfg.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:  # not NaN
                out[key] = value
    out["min_runs"] = max(1, int(min(out["min_runs"], 10_000)))
    out["runs"] = max(out["min_runs"], int(min(out["runs"], 10_000)))
    return out


def usual(durations: Sequence[float], cfg: Mapping[str, Any] | None = None) -> Usual | None:
    """The usual duration of the durations given (the latest successful runs, at most ``runs`` of them).

    None below ``min_runs``: too few runs to judge anything by.
    """
    s = settings(cfg)
    values = [float(d) for d in durations[: s["runs"]] if d is not None and d >= 0]
    if len(values) < s["min_runs"]:
        return None
    median = _median(values)
    return Usual(median, _median([abs(v - median) for v in values]), len(values))


def slow_after(u: Usual, cfg: Mapping[str, Any] | None = None) -> float:
    """The duration beyond which a run is slow (and a running one overdue)."""
    s = settings(cfg)
    return max(u.median * s["slow"], u.median + MADS * u.mad, u.median + MIN_DELTA)


def short_before(u: Usual, cfg: Mapping[str, Any] | None = None) -> float:
    """The duration below which a successful run is short (0 or less: no run can be)."""
    s = settings(cfg)
    return min(u.median * s["short"], u.median - MADS * u.mad, u.median - MIN_DELTA)


def judge(status: str, duration: float | None, u: Usual | None, cfg: Mapping[str, Any] | None = None) -> str | None:
    """"slow", "short" or None for a finished run of ``status`` that took ``duration`` seconds."""
    # a lost run's duration is when it was found lost, not how long it ran
    if u is None or duration is None or status in ("skipped", "running", "lost"):
        return None
    if duration > slow_after(u, cfg):
        return "slow"
    if status == "succeeded" and duration < short_before(u, cfg):
        return "short"
    return None


def explain(verdict: str, duration: float, u: Usual, cfg: Mapping[str, Any] | None = None) -> str:
    """One line an alert carries: this run's figure, the usual one, and the threshold it crossed."""
    if verdict == "short":
        return f"took {_fmt(duration)}; usually {u.describe()}; short below {_fmt(max(0.0, short_before(u, cfg)))}"
    what = "running for" if verdict == "overdue" else "took"
    return f"{what} {_fmt(duration)}; usually {u.describe()}; slow beyond {_fmt(slow_after(u, cfg))}"
