"""The wrapper's entry, run by its path: ``PYTHON -I -S …/jobctl/runner/start.py --scheduled --state-dir DIR NAME``.

Every crontab line, systemd unit, catch-up run and ``run --detach`` starts
the wrapper this way (cmdline.interpreter_argv); ``python -I -m
jobctl.runner`` (``__main__``) is the same wrapper for lines written before.
-S skips ``site`` and running a file skips runpy (~5 ms of a scheduled run
together), so the directory holding the jobctl package goes on sys.path
here, after the standard library, where site would have put it.  -I keeps
this file's own directory off sys.path.  Python compiles a script at every
start (no .pyc), so the code lives in ``__main__`` and this file stays small.
"""

if __name__ == "__main__":
    import gc

    # Collections while the wrapper loads find nothing to free (a twentieth
    # of a run); the wrapper turns the collector back on once its job runs.
    gc.disable()
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the jobctl directory
    sys.path.append(os.path.dirname(package))
    from jobctl.runner import fast_imports

    fast_imports(package)
    from jobctl.runner.__main__ import run

    run()
