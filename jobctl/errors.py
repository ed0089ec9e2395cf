"""The one error family and the one exit-code table.

Every failure jobctl reports to an operator is a JobctlError carrying the
exit code it maps to; the CLI turns it into one line on stderr.  Core modules
raise these and never print.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in the man page (EXIT STATUS); scripts rely on these."""

    OK = 0
    #: the thing asked for is not OK: invalid job files, pending changes
    #: under --check, unknown job or run.
    NOT_OK = 1
    #: command-line usage error (click's own code, kept).
    USAGE = 2
    #: environment error: no crontab command, state directory not writable,
    #: run log unreadable.
    ENVIRONMENT = 3
    #: `jobctl run`: the run was skipped (concurrency: forbid), as EX_TEMPFAIL.
    SKIPPED = 75
    #: `jobctl run`: the job timed out, as timeout(1).
    TIMEOUT = 124
    #: `jobctl run`: jobctl itself failed before the job could run, as
    #: timeout(1) and env(1) do.
    RUN_FAILED = 125
    #: a bug in jobctl: one line on stderr, the full report in a file.
    INTERNAL = 70


class JobctlError(Exception):
    """A failure to report as one line; ``code`` is the process exit code."""

    code: ExitCode = ExitCode.NOT_OK

    def __init__(self, message: str, code: ExitCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class EnvironmentProblem(JobctlError):
    """The host is not as jobctl needs it (state dir, crontab command, ...)."""

    code = ExitCode.ENVIRONMENT


class UnknownJob(JobctlError):
    code = ExitCode.NOT_OK


@dataclass(frozen=True, order=True)
class Problem:
    """One validation finding, with where it is."""

    path: str
    line: int  # 1-based
    column: int  # 1-based
    message: str
    job: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        if self.job:
            return f"{where}: job {self.job}: {self.message}"
        return f"{where}: {self.message}"


class InvalidJobs(JobctlError):
    """Job files failed validation; carries every problem found in one pass."""

    code = ExitCode.NOT_OK

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column, p.message))
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in job files")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]
