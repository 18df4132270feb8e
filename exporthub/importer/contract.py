"""The import file contract, table by table (the README documents the same), and an import's report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from exporthub.lake.schemas import COST_CATEGORIES, SESSION_KINDS

MAX_PROBLEMS = 50

class Kind(StrEnum):
    INT32 = "int32"
    INT64 = "int64"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DATE = "date"
    STRING = "string"


@dataclass(frozen=True)
class ImportColumn:
    """One column of an import file. ``name`` is the lake column; ``user_id`` is given as ``user``."""

    name: str
    kind: Kind
    nullable: bool = False
    optional: bool = False  # the file may leave the column out
    choices: tuple[str, ...] = ()
    minimum: int | None = None  # the smallest allowed value of a whole-number column



C = ImportColumn
CONTRACT: dict[str, tuple[ImportColumn, ...]] = {
    "zones": (
        C("zone_id", Kind.INT32),
        C("code", Kind.STRING),
        C("name", Kind.STRING),
        C("area", Kind.STRING, nullable=True),
        C("parent_zone_id", Kind.INT32, nullable=True),
        C("expected_items", Kind.INT32, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "zone_sessions": (
        C("session_id", Kind.INT64),
        C("zone_id", Kind.INT32),
        C("user_id", Kind.INT32),
        C("kind", Kind.STRING, choices=SESSION_KINDS),
        C("started_at", Kind.TIMESTAMP),
        C("ended_at", Kind.TIMESTAMP, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "scans": (
        C("scan_id", Kind.INT64, nullable=True, optional=True),
        C("zone_id", Kind.INT32),
        C("session_id", Kind.INT64),
        C("user_id", Kind.INT32),
        C("barcode", Kind.STRING),
        C("quantity", Kind.INT32, minimum=1),
        C("scanned_at", Kind.TIMESTAMP),
        C("device", Kind.STRING, nullable=True),
        C("deleted", Kind.BOOL, optional=True),
    ),
    "costs": (
        C("cost_id", Kind.INT64),
        C("user_id", Kind.INT32, nullable=True),
        C("zone_id", Kind.INT32, nullable=True),
        C("date", Kind.DATE),
        C("category", Kind.STRING, choices=COST_CATEGORIES),
        C("hours", Kind.FLOAT, nullable=True),
        C("rate", Kind.FLOAT, nullable=True),
        C("amount", Kind.FLOAT),
    ),
}
del C
REPLACEABLE: frozenset[str] = frozenset({"zones", "costs"})
# A scan is "the same scan" when all of these match (scan ids differ between systems).
SCAN_KEY = ("zone_id", "session_id", "user_id", "barcode", "quantity", "scanned_at", "device")


def file_columns(table: str) -> list[str]:
    """The column names an import file of ``table`` uses (``user`` standing for ``user_id``)."""
    return ["user" if c.name == "user_id" else c.name for c in CONTRACT[table]]

# ---------------------------------------------------------------------- results and refusals


@dataclass(frozen=True)
class ImportReport:
    project: str
    table: str
    files: tuple[str, ...]
    rows_read: int
    rows_imported: int
    duplicates_skipped: int
    replaced: bool
    files_replaced: int = 0
    snapshot_id: int | None = None  # the Iceberg snapshot the import committed (None: nothing to write)
    first_id: int | None = None  # of the imported rows (for scans: the scan id range)
    last_id: int | None = None
    rows_per_file: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"{self.rows_imported:,} of {self.rows_read:,} rows imported into {self.project}/{self.table}"
        if self.duplicates_skipped:
            text += f", {self.duplicates_skipped:,} duplicates skipped"
        if self.replaced:
            text += f", replacing the previous {self.table} ({self.files_replaced} data files replaced)"
        if self.first_id is not None:
            text += f"; ids {self.first_id}..{self.last_id}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "table": self.table,
            "files": list(self.files),
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "duplicates_skipped": self.duplicates_skipped,
            "replaced": self.replaced,
            "files_replaced": self.files_replaced,
            "snapshot_id": self.snapshot_id,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "rows_per_file": dict(self.rows_per_file),
        }
