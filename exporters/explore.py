"""Explore (hidden type): the table behind an ad-hoc view of the statistics page, as csv or xlsx.

The page's "Export this view" starts it with the view's measure, dimensions and filters, so it runs
through the same engine, permissions and audit as every other export. The table is computed by
:func:`exporthub.stats.explore`, the same function the page shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporters._tabular import write_table
from exporters.registry import BaseExporter
from exporthub.context import JobContext
from exporthub.stats import ExploreSpec, StatsFilter, explore


class ExploreExporter(BaseExporter):
    export_type = "explore"
    formats = ("csv", "xlsx")

    def check_variables(self, values: Mapping[str, Any]) -> None:
        """Refuse a measure/dimension combination that means nothing (raises ``InvalidVariable``)."""
        ExploreSpec.from_variables(dict(values))

    def run(self, ctx: JobContext) -> None:
        spec = ExploreSpec.from_variables(ctx.variables)
        scope = StatsFilter.from_variables(ctx.variables).resolve(ctx.project.timezone, ctx.started_at)
        table = explore(ctx.sql(), scope, spec)
        ctx.info(f"{table.num_rows:,} rows: {spec.measure} by {' and '.join(spec.dimensions)}")
        ctx.progress(50)
        write_table(ctx, table, sheet_name="Explore")
        ctx.progress(100)


EXPORTER = ExploreExporter()
