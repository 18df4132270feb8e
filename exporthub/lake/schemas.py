"""The four lake tables: their typed schemas, id columns and Iceberg table properties."""

from __future__ import annotations

import pyarrow as pa

TABLES: tuple[str, ...] = ("zones", "zone_sessions", "scans", "costs")

# The typed schema of each lake table. Times are UTC; ``deleted`` is a soft delete.
SCHEMAS: dict[str, pa.Schema] = {
    "zones": pa.schema(
        [
            ("zone_id", pa.int32()),
            ("code", pa.string()),
            ("name", pa.string()),
            ("area", pa.string()),
            ("parent_zone_id", pa.int32()),
            ("expected_items", pa.int32()),
            ("deleted", pa.bool_()),
        ]
    ),
    "zone_sessions": pa.schema(
        [
            ("session_id", pa.int64()),
            ("zone_id", pa.int32()),
            ("user_id", pa.int32()),
            ("kind", pa.string()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("ended_at", pa.timestamp("us", tz="UTC")),
            ("deleted", pa.bool_()),
        ]
    ),
    "scans": pa.schema(
        [
            ("scan_id", pa.int64()),
            ("zone_id", pa.int32()),
            ("session_id", pa.int64()),
            ("user_id", pa.int32()),
            ("barcode", pa.string()),
            ("quantity", pa.int32()),
            ("scanned_at", pa.timestamp("us", tz="UTC")),
            ("device", pa.string()),
            ("deleted", pa.bool_()),
        ]
    ),
    "costs": pa.schema(
        [
            ("cost_id", pa.int64()),
            ("user_id", pa.int32()),
            ("zone_id", pa.int32()),
            ("date", pa.date32()),
            ("category", pa.string()),
            ("hours", pa.float64()),
            ("rate", pa.float64()),
            ("amount", pa.float64()),
        ]
    ),
}

# The values a text column allows (the importer checks them; the demo and the statistics use them).
SESSION_KINDS: tuple[str, ...] = ("count", "recount", "audit")
COST_CATEGORIES: tuple[str, ...] = ("labor", "travel", "equipment", "other")

# The id column of each table. Files are kept in id order (ids rise with ingestion), so a table's files
# sorted by their lowest id, read one after the other, give its rows in id order without a sort.
ID_COLUMNS: dict[str, str] = {
    "zones": "zone_id",
    "zone_sessions": "session_id",
    "scans": "scan_id",
    "costs": "cost_id",
}

# Rows per data file when we write (each file is written whole, in order; see lake.commit).
ROWS_PER_FILE = 1_000_000

TABLE_PROPERTIES: dict[str, str] = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.parquet.row-group-limit": str(256 * 1024),
    # pyiceberg would rebase a conflicting append on the new snapshot by itself; an import must be
    # validated again against that snapshot first (ids, duplicates, references), so we retry ourselves.
    "commit.retry.num-retries": "0",
    # Old metadata.json files are only needed to load the table as it was; jobs keep file lists.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}


def conform(table: str, data: pa.Table) -> pa.Table:
    """``data`` with exactly the table's columns, in order, cast to its types (raises ``ArrowInvalid``)."""
    schema = SCHEMAS[table]
    return data.select(schema.names).cast(schema)
