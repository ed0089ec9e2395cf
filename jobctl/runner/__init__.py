"""The wrapper cron starts: cron → run → run log (hot path, stdlib only).

Kept empty: ``python -I -m jobctl.runner`` imports this package on every
scheduled run, and anything imported here would be paid every time.
"""
