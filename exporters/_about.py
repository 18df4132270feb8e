"""``About``: the provenance every exported file carries (sheet, sidecar, metadata or title block).

Also home of :func:`local_naive`, because the project timezone that ``About`` names is what governs
how timestamps appear in spreadsheet-like files.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from exporthub.lake.snapshot import snapshot_label

_EMPTY = "—"


@dataclass(frozen=True)
class About:
    """Who and what an export is for, and when it was made.

    ``data_cutoff`` and ``generated_at`` must be timezone-aware (they are normalised to UTC);
    ``timezone`` must be an IANA name. Both are checked on construction and raise ``ValueError``.
    """

    project_slug: str
    project_name: str
    export_type: str
    title: str
    variables: Mapping[str, object]
    data_cutoff: dt.datetime
    generated_at: dt.datetime
    timezone: str
    generator_version: str
    # The Iceberg snapshot id of each lake table the export read: exactly the data it saw.
    lake_snapshot: Mapping[str, int | None] | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        for name in ("data_cutoff", "generated_at"):
            value: dt.datetime = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"About.{name} must be timezone-aware, got {value!r}")
            object.__setattr__(self, name, value.astimezone(dt.UTC))
        # A private copy: the caller's dict may keep changing after the export started.
        object.__setattr__(self, "variables", dict(self.variables))
        if self.lake_snapshot is not None:
            object.__setattr__(self, "lake_snapshot", dict(self.lake_snapshot))

    def local(self, moment: dt.datetime) -> str:
        """``moment`` as ``YYYY-MM-DD HH:MM:SS (Zone/Name)`` in the project timezone."""
        if moment.tzinfo is None:
            raise ValueError("local() needs a timezone-aware datetime")
        return f"{moment.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M:%S} ({self.timezone})"

    def rows(self) -> list[tuple[str, str]]:
        """Label/value pairs for an About sheet or a PDF title block, in display order."""
        rows = [
            ("Project", f"{self.project_name} ({self.project_slug})"),
            ("Export type", self.export_type),
            ("Title", self.title),
        ]
        rows += [(f"Variable: {key}", self._render(value)) for key, value in self.variables.items()]
        rows += [
            ("Data cut-off", self.local(self.data_cutoff)),
        ]
        if self.lake_snapshot is not None:
            rows.append(("Lake snapshot", snapshot_label(self.lake_snapshot)))
        rows += [
            ("Generated at", self.local(self.generated_at)),
            ("Generator version", self.generator_version),
        ]
        return rows

    def to_json(self) -> str:
        """Machine-readable form: times as UTC ISO 8601, variables JSON-encoded (dates as ISO strings)."""
        payload = {
            "project_slug": self.project_slug,
            "project_name": self.project_name,
            "export_type": self.export_type,
            "title": self.title,
            "variables": self.variables,
            "data_cutoff": _utc_iso(self.data_cutoff),
            "lake_snapshot": self.lake_snapshot,
            "generated_at": _utc_iso(self.generated_at),
            "timezone": self.timezone,
            "generator_version": self.generator_version,
        }
        return json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default)

    def _render(self, value: object) -> str:
        if value is None or (isinstance(value, str | list | tuple | set | frozenset) and not value):
            return _EMPTY
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, dt.datetime):
            return self.local(value) if value.tzinfo else f"{value:%Y-%m-%d %H:%M:%S}"
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, list | tuple):
            return ", ".join(self._render(v) for v in value)
        if isinstance(value, set | frozenset):
            return ", ".join(sorted(self._render(v) for v in value))
        return str(value)


def _utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _utc_iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def local_naive(batch: pa.RecordBatch, timezone: str) -> pa.RecordBatch:
    """Turn every timezone-aware timestamp column into naive wall-clock time in ``timezone``.

    CSV and XLSX cannot carry an offset, and analysts read them in the project's time. Naive columns
    are assumed to be project-local already and are left alone, as is every other type.
    """
    if not any(pa.types.is_timestamp(f.type) and f.type.tz for f in batch.schema):
        return batch
    arrays, fields = [], []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.tz:
            column = pc.local_timestamp(column.cast(pa.timestamp(field.type.unit, tz=timezone)))
            field = field.with_type(column.type)
        arrays.append(column)
        fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))
