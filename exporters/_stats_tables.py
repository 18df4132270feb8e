"""Column labels, number formats and totals shared by the cost, statistics and explore reports.

The statistics queries return machine column names (``scans_per_hour``); reports show people's words
("Scans per hour") with one format per kind of number, the same in the PDF and the XLSX.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from exporters._xlsx import CURRENCY, INTEGER, PERCENT, Sheet

if TYPE_CHECKING:  # reportlab loads only when a PDF is drawn (see ReportTable.pdf)
    from exporters._pdf import DataTable

LABELS: dict[str, str] = {
    "period": "Period", "day": "Day", "scans": "Scans", "items": "Items", "sessions": "Sessions",
    "hours": "Hours", "scans_per_hour": "Scans per hour", "username": "Username", "display_name": "Name",
    "deleted": "Deleted", "code": "Zone", "zone_code": "Zone", "name": "Zone name", "zone_name": "Zone name",
    "area": "Area", "expected_items": "Expected items", "completion": "Completion",
    "never_scanned": "Never scanned", "last_scan": "Last scan", "bucket": "Session length",
    "min_minutes": "From (min)", "max_minutes": "To (min)",
    "share": "Share", "category": "Category", "entries": "Entries", "amount": "Amount", "labor": "Labor",
    "travel": "Travel", "equipment": "Equipment", "other": "Other", "total": "Total", "cost": "Cost",
    "cost_per_scan": "Cost per scan", "active_users": "Active users",
}

# Python format specs for the PDF, by column.
PDF_FORMATS: dict[str, str] = {
    "hours": ",.1f", "scans_per_hour": ",.1f", "completion": ".1%", "share": ".1%", "amount": ",.2f",
    "labor": ",.2f", "travel": ",.2f", "equipment": ",.2f", "other": ",.2f", "total": ",.2f", "cost": ",.2f",
    "cost_per_scan": ",.3f", "last_scan": "%Y-%m-%d",
}

# Excel number formats, by column.
XLSX_FORMATS: dict[str, str] = {
    "scans": INTEGER, "items": INTEGER, "sessions": INTEGER, "entries": INTEGER, "expected_items": INTEGER,
    "hours": "#,##0.0", "scans_per_hour": "#,##0.0", "completion": PERCENT, "share": PERCENT,
    "amount": CURRENCY, "labor": CURRENCY, "travel": CURRENCY, "equipment": CURRENCY, "other": CURRENCY,
    "total": CURRENCY, "cost": CURRENCY, "cost_per_scan": "#,##0.000", "active_users": INTEGER,
}

ADDITIVE = frozenset({"scans", "items", "sessions", "hours", "entries", "amount", "labor", "travel",
                      "equipment", "other", "total", "cost", "share"})


@dataclass(frozen=True)
class ReportTable:
    """One table of a report: a title, the data, and an optional totals row (by machine column name)."""

    title: str
    table: pa.Table
    totals: Mapping[str, object] | None = None
    pdf_omits: tuple[str, ...] = ()  # columns only the XLSX shows (the PDF page is narrow)

    def pdf(self, *, caption: str | None = None, max_rows: int = 5_000) -> DataTable:
        from exporters._pdf import DataTable

        table = self.table.drop_columns([c for c in self.pdf_omits if c in self.table.column_names])
        names = table.column_names
        total_row = None if self.totals is None else {
            label(k): v for k, v in self.totals.items() if k in names}
        return DataTable(table, header=[label(c) for c in names],
                         formats={label(c): f for c, f in PDF_FORMATS.items() if c in names},
                         totals=total_row, caption=caption, max_rows=max_rows)

    def xlsx(self, sheet_name: str | None = None) -> Sheet:
        names = [label(c) for c in self.table.column_names]
        return Sheet(
            name=sheet_name or self.title, table=self.table.rename_columns(names),
            totals=None if self.totals is None else {label(k): v for k, v in self.totals.items()},
            number_formats={label(c): f for c, f in XLSX_FORMATS.items() if c in self.table.column_names},
        )


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " ").capitalize())


def totals(
    table: pa.Table, first_column_text: str = "Total", columns: Iterable[str] | None = None
) -> dict[str, object]:
    """A totals row: ``first_column_text`` in the first column, the sum of each additive column."""
    wanted = set(columns) if columns is not None else ADDITIVE
    row: dict[str, object] = {table.column_names[0]: first_column_text}
    for name in table.column_names[1:]:
        if name in wanted:
            value = pc.sum(table.column(name)).as_py()
            row[name] = value if value is not None else 0
    return row
