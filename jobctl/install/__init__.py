"""Specs → the installed state: applied definitions and the crontab block."""
