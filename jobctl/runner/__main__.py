"""``python -I -m jobctl.runner …``: the form every installed crontab line uses."""
from jobctl.runner.wrapper import _exit_now, main

_exit_now(main())
