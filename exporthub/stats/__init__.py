"""Statistics over the project lake: filters, the preview queries, ad-hoc exploration and a cache.

* :class:`StatsFilter` / :class:`Scope` — the filters, and their SQL for one project (``filters``).
* ``queries`` — one DuckDB aggregate per chart, shared by the preview and the reports.
* :class:`ExploreSpec` / :func:`explore` — measure × one or two dimensions (``explore``).
* :class:`StatsService` — permission-checked, cached access for the statistics page (``service``).
"""

from __future__ import annotations

from exporthub.lake.schemas import COST_CATEGORIES
from exporthub.stats.cache import ResultCache
from exporthub.stats.explore import DIMENSIONS, MEASURES, NO_DIMENSION, ExploreSpec, dimensions_for, explore
from exporthub.stats.filters import Scope, StatsFilter
from exporthub.stats.queries import GRANULARITIES, PREVIEW_QUERIES, QUERIES
from exporthub.stats.service import FilterOptions, Preview, StatsResult, StatsService

__all__ = [
    "COST_CATEGORIES", "DIMENSIONS", "GRANULARITIES", "MEASURES", "NO_DIMENSION", "PREVIEW_QUERIES",
    "QUERIES", "ExploreSpec", "FilterOptions", "Preview", "ResultCache", "Scope", "StatsFilter",
    "StatsResult", "StatsService", "dimensions_for", "explore",
]
