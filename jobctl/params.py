"""Run parameters: what a job declares (``params:``) and the values a run is given (``-p KEY=VALUE``).

One checker for every place values arrive: ``jobctl run -p``, ``jobctl
submit -p`` (before the request is recorded) and the wrapper (again, when
the run starts: the job may have been applied anew since the submit).  A
value reaches the job only as an environment variable, ``JOBCTL_PARAM_<KEY>``
(the key in capitals), never inside a shell string jobctl builds.

Standard library only: the wrapper imports it for a run that has parameters.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds the wrapper need not pay
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

#: a parameter's name: lowercase, so that JOBCTL_PARAM_<NAME> names one parameter only
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_NAME = 63
#: the longest value a parameter takes (an environment variable, not a payload: pass a path for more)
MAX_VALUE = 4096
#: the most parameters a job declares (and a run is given)
MAX_PARAMS = 100
#: all of a run's values together: JOBCTL_PARAMS (a notify command's variable) holds them as one
#: environment string, which Linux bounds at 128 KiB
MAX_TOTAL = 64 * 1024
ENV_PREFIX = "JOBCTL_PARAM_"


class BadParams(ValueError):
    """Values a job does not accept; the message says which and why, in the declaration's words."""


def valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and name[0].isalpha() and name.isascii() and NAME_CHARS.issuperset(name)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as given on a command line; BadParams for one without ``=`` or given twice."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadParams(f"-p {pair!r}: write KEY=VALUE, e.g. -p region=eu")
        if key in out:
            raise BadParams(f"-p {key}: given twice; give each parameter once")
        out[key] = value
    return out


def value_problem(value: str) -> str | None:
    """Why a value cannot reach a job as an environment variable, or None."""
    if "\0" in value:
        return "contains a NUL byte, which no environment variable can hold"
    if len(value) > MAX_VALUE:
        return f"is {len(value)} characters long; at most {MAX_VALUE} (pass a file's path for more)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    return None


def resolve(job: str, declared: Mapping[str, Mapping[str, Any]] | None, given: Mapping[str, str]) -> dict[str, str]:
    """The values a run of ``job`` gets: ``given`` checked against ``declared``, defaults filled in.

    BadParams names every problem at once: an undeclared key (with the
    declared ones), a missing required one, a value that does not match its
    pattern (with the parameter's description, as the declaration says it).
    """
    declared = declared or {}
    problems: list[str] = []
    for key in given:
        if key not in declared:
            known = ", ".join(sorted(declared)) if declared else "none: it declares no params"
            problems.append(f"{key}: job {job} declares no parameter {key!r} (it accepts {known})")
    out: dict[str, str] = {}
    for key, decl in declared.items():
        if key in given:
            value = given[key]
        elif decl.get("default") is not None:
            value = str(decl["default"])
        else:
            if decl.get("required"):
                about = f" ({decl['description']})" if decl.get("description") else ""
                problems.append(f"{key}: required{about}; give -p {key}=VALUE")
            continue
        problem = value_problem(value)
        if problem is None and decl.get("pattern"):
            import re

            if re.fullmatch(decl["pattern"], value) is None:
                about = f" ({decl['description']})" if decl.get("description") else ""
                problem = f"{value!r} does not match {decl['pattern']!r}{about}"
        if problem is not None:
            problems.append(f"{key}: {problem}")
            continue
        out[key] = value
    total = sum(len(k) + len(v.encode("utf-8", "replace")) + 8 for k, v in out.items())
    if total > MAX_TOTAL:
        problems.append(f"the values take {total} bytes together; at most {MAX_TOTAL} (pass a file's path for more)")
    if problems:
        raise BadParams("; ".join(problems))
    return out


def environment(values: Mapping[str, str]) -> dict[str, str]:
    """JOBCTL_PARAM_<KEY> for each value."""
    return {env_name(k): v for k, v in values.items()}
