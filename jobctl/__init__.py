"""jobctl: declarative scheduled jobs on a Linux server.

Kept empty on purpose: the wrapper cron starts imports this package, and every
import here would be paid on every scheduled run.
"""

__version__ = "0.2.0"
