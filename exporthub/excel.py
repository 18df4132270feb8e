"""Excel's limits, once: the xlsx writer splits at them, the estimate and the export form warn about them."""

from __future__ import annotations

EXCEL_MAX_ROWS = 1_048_576
"""Rows per worksheet, the header row included."""

EXCEL_MAX_DATA_ROWS = EXCEL_MAX_ROWS - 1
"""Data rows that fit on one sheet under a header row."""


def split_warning(rows: int) -> str | None:
    """What to tell someone about to export ``rows`` rows as xlsx, or ``None`` when they fit one sheet."""
    if rows <= EXCEL_MAX_DATA_ROWS:
        return None
    return (f"{rows:,} rows pass Excel's limit of {EXCEL_MAX_DATA_ROWS:,} rows per sheet, so the workbook will be "
            "split across sheets. Choose CSV or Parquet to keep one table.")
