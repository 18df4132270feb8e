"""The statistics service for the pages: one per process and settings, like ``ui.session.services``."""

from __future__ import annotations

import threading

from exporthub.settings import Settings, get_settings
from exporthub.stats import StatsService
from ui import session

_services: dict[Settings, StatsService] = {}
_lock = threading.Lock()


def stats_service() -> StatsService:
    """The :class:`StatsService` for the current settings (its result cache is process-wide)."""
    current = get_settings()
    with _lock:
        service = _services.get(current)
        if service is None:
            service = StatsService(session.database(), current)
            _services[current] = service
        return service
