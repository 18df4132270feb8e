"""Exporthub domain package: jobs, permissions, export config, lake, files, audit.

This package never imports streamlit or huey (tests/test_architecture.py keeps it so).

A service is a class when it holds more than the database between calls (:class:`~exporthub.jobs.JobService`:
config, registry, dispatcher; :class:`~exporthub.stats.StatsService`: caches, clock) or groups a whole admin
surface (:class:`~exporthub.accounts.AccountService`); a few stand-alone operations (``api_tokens``,
``compaction``, ``restore``, ``links``, ``workers``) are functions taking ``db`` (and ``settings``) first. Either
way the acting user is ``actor``; ``username`` names only a user acted upon.
"""

__version__ = "0.1.0"
