"""Shell completion: `jobctl completion bash|zsh|fish` prints the script, and the answers to a shell asking.

The scripts call jobctl itself with ``_JOBCTL_COMPLETE`` set (typer's
protocol: ``complete_bash`` with COMP_WORDS and COMP_CWORD, ``complete_zsh``
and ``complete_fish`` with ``_TYPER_COMPLETE_ARGS``); app.main then hands
the request to ``respond``, which answers through typer's completion classes
after attaching the completions of job names and run ids (cli/options.py)
to the arguments that take them.  typer's own --install-completion and
--show-completion stay off: they guess the shell from the parent process and
edit ~/.bashrc, where printing the script for a named shell does neither.

A completion only reads (the jobs directory, the applied definitions' names,
the run log opened read-only) and never prints to the terminal it completes
in: stderr goes to /dev/null, and whatever fails offers nothing.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, NoReturn

import typer

from jobctl.cli import common, options

app = common.commands()

#: the variable the scripts set; app.py's _COMPLETE_VAR (the name typer derives from the program's)
COMPLETE_VAR = "_JOBCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

# The scripts.  Each asks the jobctl it completes for (bash: the word typed, so ./jobctl or a path
# works too), throws its stderr away, and needs nothing but the shell.
BASH = """\
# bash completion for jobctl: commands, options, job names, run ids (jobctl completion bash)
_jobctl_completion() {
    local _jobctl_words="${COMP_WORDS[*]}"
    mapfile -t COMPREPLY < <(env COMP_WORDS="$_jobctl_words" COMP_CWORD="$COMP_CWORD" \\
        _JOBCTL_COMPLETE=complete_bash "$1" 2>/dev/null)
    return 0
}
complete -o default -F _jobctl_completion jobctl
"""

ZSH = """\
#compdef jobctl
# zsh completion for jobctl: commands, options, job names, run ids (jobctl completion zsh)
_jobctl_completion() {
    eval "$(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _JOBCTL_COMPLETE=complete_zsh jobctl 2>/dev/null)"
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    # loaded from a file _jobctl on fpath (compinit): complete now
    _jobctl_completion "$@"
else
    # sourced: register for later
    compdef _jobctl_completion jobctl
fi
"""

FISH = (
    "# fish completion for jobctl: commands, options, job names, run ids (jobctl completion fish)\n"
    "complete --command jobctl --no-files"
    " --condition \"env _JOBCTL_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args"
    " _TYPER_COMPLETE_ARGS=(commandline -cp) jobctl 2>/dev/null\""
    " --arguments \"(env _JOBCTL_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args"
    " _TYPER_COMPLETE_ARGS=(commandline -cp) jobctl 2>/dev/null)\"\n"
)

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def script(shell: str) -> str:
    return SCRIPTS[shell]


@app.command(epilog="Examples:\n\n  source <(jobctl completion bash)   # this bash; ./install.sh installs it\n\n"
             "  jobctl completion zsh > ~/.zfunc/_jobctl   # on fpath: see jobctl(1)\n\n"
             "  jobctl completion fish > ~/.config/fish/completions/jobctl.fish")
def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    It completes commands, options, job names (those of the jobs directory
    and the applied ones) and, for logs, the latest run ids.  The shell is
    named, never guessed.  ./install.sh installs the bash script where
    bash-completion loads it; jobctl(1) says how to load the others.
    """
    if shell not in SCRIPTS:
        raise typer.BadParameter(f"{common.printable(shell)!r}: use bash, zsh or fish")
    sys.stdout.write(SCRIPTS[shell])


# --- answering a shell -----------------------------------------------------------------------------

def _choices(values: tuple[str, ...]) -> Any:
    def complete(ctx: Any, param: Any, incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete


def _completers() -> dict[tuple[str | None, str], Any]:
    """{(command or None for any, parameter name): its completion}."""
    from jobctl import store

    names = options.complete_job_names
    return {
        (None, "name"): names,       # run, history, status, show, why, ...
        (None, "names"): names,      # pause, resume
        ("logs", "target"): options.complete_run_targets,
        ("history", "status"): _choices(tuple(store.STATUSES)),
        ("logs", "which"): _choices(("output", "latest")),
        ("completion", "shell"): _choices(SHELLS),
    }


def attach(command: Any) -> None:
    """Give the parameters of every command under ``command`` (click's) their completions, where they have none."""
    completers = _completers()
    todo = [command]
    while todo:
        cmd = todo.pop()
        todo.extend(getattr(cmd, "commands", {}).values())
        for param in getattr(cmd, "params", []):
            found = completers.get((cmd.name, param.name)) or completers.get((None, param.name))
            is_name = param.param_type_name == "argument" or (cmd.name, param.name) in completers
            if found is not None and is_name and getattr(param, "_custom_shell_complete", None) is None:
                param._custom_shell_complete = found


def respond(app: Any, complete_var: str) -> NoReturn:
    """Answer the shell's request (``complete_var`` is set) and exit: completions on stdout, nothing on stderr.

    stderr is the terminal being completed in: whatever typer or a failure
    would say there goes to /dev/null (the scripts also send the process's
    stderr there).
    """
    import contextlib

    code = 1
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
        try:
            from typer.completion import completion_init
            from typer.main import get_command

            completion_init()  # typer registers its bash, zsh and fish classes only with add_completion
            command = get_command(app)
            attach(command)
            command.main(prog_name="jobctl", complete_var=complete_var)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - a completion never prints a traceback
            code = 1
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - the shell went away
            pass
    raise SystemExit(code)
