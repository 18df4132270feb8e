"""The wired domain services of the app process: settings, the database, and the one
:class:`~exporthub.jobs.JobService` (with the Huey dispatcher from ``worker.py``), built once per process.
"""

from __future__ import annotations

import importlib
import threading

from exporthub import maintenance
from exporthub.db import Database, get_database
from exporthub.dispatch import Dispatcher
from exporthub.jobs import JobService
from exporthub.settings import Settings, get_settings


def settings() -> Settings:
    return get_settings()


def database() -> Database:
    return get_database(get_settings())


def make_dispatcher() -> Dispatcher:
    """The Huey dispatcher. ``worker`` is imported here, at the edge, so the domain never imports Huey."""
    return importlib.import_module("worker").HueyDispatcher()  # type: ignore[no-any-return]


_services: dict[Settings, JobService] = {}
_services_lock = threading.Lock()


def services() -> JobService:
    """The :class:`JobService` for the current settings, built once per process (it loads the config)."""
    current = get_settings()
    with _services_lock:
        service = _services.get(current)
        if service is None:
            from exporters import REGISTRY  # the edge hands the domain its plugins

            service = JobService(get_database(current), current, make_dispatcher(), registry=REGISTRY)
            _services[current] = service
        return service


def housekeeping() -> None:
    """Run the reaper and queue sweep when due (at most once per reaper interval in this process).

    Called on every script run and fragment refresh, so a job whose only worker was killed still ends
    "worker lost" while anyone has the app open. Never raises: errors are logged by the domain.
    """
    current = get_settings()
    maintenance.tick_if_due(get_database(current), current, services().dispatcher)


def use_services(service: JobService) -> None:
    """Make ``service`` the one :func:`services` returns for its settings.

    Tests use it to wire their own dispatcher.
    """
    with _services_lock:
        _services[service.settings] = service
