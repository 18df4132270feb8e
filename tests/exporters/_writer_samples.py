"""Sample data for the writer tests: the formula-injection corpus, an About block, scans in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa

from exporters._about import About

UTC = dt.UTC
UNICODE_NAME = "Zoë Łukasz Ærøskøbing 北"
# Text that a spreadsheet would run, and what each must become.
INJECTION = {
    "=1+1": "'=1+1",
    "+A1": "'+A1",
    "-2+3": "'-2+3",
    "@SUM(A1)": "'@SUM(A1)",
    "\tfoo": "'\tfoo",
    "\rbar": "'\rbar",
    "|cmd": "'|cmd",
    "normal text": "normal text",
    UNICODE_NAME: UNICODE_NAME,
    "a=b": "a=b",
}


def make_about(**overrides: object) -> About:
    values: dict[str, object] = {
        "project_slug": "harbour",
        "project_name": UNICODE_NAME,
        "export_type": "scans",
        "title": "Scans export",
        "variables": {"dateFrom": dt.date(2026, 3, 1), "zones": ["A1", "B2"], "includeDeleted": False},
        "data_cutoff": dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        "generated_at": dt.datetime(2026, 7, 1, 10, 5, 30, tzinfo=UTC),
        "timezone": "Europe/Berlin",
        "generator_version": "0.1.0",
    }
    values.update(overrides)
    return About(**values)  # type: ignore[arg-type]


CORPUS_SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("amount", pa.float64()),
        ("qty", pa.int64()),
        ("at", pa.timestamp("us")),
        ("day", pa.date32()),
        ("ok", pa.bool_()),
    ]
)


def corpus_batch() -> pa.RecordBatch:
    """One row per injection string; row 0 carries the numbers -5 and 3.14 that must stay numbers."""
    texts = list(INJECTION)
    n = len(texts)
    return pa.record_batch(
        [
            pa.array(texts),
            pa.array([3.14] + [None] * (n - 1), pa.float64()),
            pa.array([-5] + list(range(1, n)), pa.int64()),
            pa.array([dt.datetime(2026, 7, 1, 12, 30, 45, 987654)] + [None] * (n - 1), pa.timestamp("us")),
            pa.array([dt.date(2026, 7, 1)] * n, pa.date32()),
            pa.array([True, False] + [None] * (n - 2)),
        ],
        schema=CORPUS_SCHEMA,
    )


def scans(n: int, batch_rows: int = 1_000) -> Iterator[pa.RecordBatch]:
    schema = scan_schema()
    for start in range(0, n, batch_rows):
        ids = list(range(start, min(n, start + batch_rows)))
        yield pa.record_batch(
            [
                pa.array(ids, pa.int64()),
                pa.array([f"zone {i % 7}" for i in ids]),
                pa.array([i % 5 for i in ids], pa.int32()),
                pa.array([dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i) for i in ids],
                         pa.timestamp("us", tz="UTC")),
            ],
            schema=schema,
        )


def scan_schema() -> pa.Schema:
    return pa.schema(
        [("scan_id", pa.int64()), ("zone", pa.string()), ("quantity", pa.int32()),
         ("scanned_at", pa.timestamp("us", tz="UTC"))]
    )
