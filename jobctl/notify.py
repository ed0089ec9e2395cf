"""Where the notification sinks were before the layout by stage: now jobctl.runner.notify.

Only for a wrapper of the previous release still running while the package is
upgraded in place (jobctl.inflight): it imports ``jobctl.notify`` when its job
ends and calls event, wanted, budget, ping and after_run, whose signatures are
unchanged.  Nothing in this release imports this module.
"""

from jobctl import inflight

if inflight.previous_release_running():
    _sinks = inflight.current("runner/notify.py")
else:
    from jobctl.runner import notify as _sinks

after_run, budget, event, ping, wanted = _sinks.after_run, _sinks.budget, _sinks.event, _sinks.ping, _sinks.wanted

__all__ = ["after_run", "budget", "event", "ping", "wanted"]
