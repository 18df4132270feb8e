"""Formula-injection neutralisation for files that spreadsheets open (CSV and XLSX).

A text cell that begins with ``= + - @``, tab, CR or ``|`` can be run as a formula (or a DDE command) by
Excel, LibreOffice or Google Sheets. Following OWASP, such text gets a leading ``'``. Only text is
touched: numeric columns stay numbers, so ``-5`` in an integer column is still ``-5``. Parquet is typed
data, not a spreadsheet, and is never neutralised.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "|")
_PATTERN = r"^([=+\-@\t\r|])"
_CODE_POINTS = ", ".join(str(ord(c)) for c in DANGEROUS_PREFIXES)


def neutralise_text(text: str) -> str:
    """Return ``text`` with a leading ``'`` if a spreadsheet could read it as a formula."""
    return "'" + text if text.startswith(DANGEROUS_PREFIXES) else text


def sql_neutralise(expression: str) -> str:
    """A DuckDB SQL expression: ``expression`` (text) neutralised by the rule of :func:`neutralise_text`.

    NULL stays NULL. Only the first character's code point is tested, so it costs little per row.
    """
    text = f"CAST({expression} AS VARCHAR)"
    return f"(CASE WHEN ascii({text}) IN ({_CODE_POINTS}) THEN '''' || {text} ELSE {text} END)"


def neutralise_header(names: Iterable[str]) -> list[str]:
    """Neutralise column names: a header row is text that spreadsheets evaluate like any other cell."""
    return [neutralise_text(name) for name in names]


def _is_text(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def neutralise_array(array: pa.Array) -> pa.Array:
    """Neutralise one string array (dictionary-encoded text too); any other type is returned as is."""
    if pa.types.is_dictionary(array.type) and _is_text(array.type.value_type):
        # Dictionary columns (e.g. DuckDB ENUMs) only need their few distinct values rewritten.
        return pa.DictionaryArray.from_arrays(array.indices, neutralise_array(array.dictionary))
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    if not _is_text(array.type):
        return array
    # Matching is cheaper than replacing (no new buffers), and most real columns contain no match.
    if not pc.any(pc.match_substring_regex(array, _PATTERN)).as_py():
        return array
    return pc.replace_substring_regex(array, pattern=_PATTERN, replacement=r"'\1")


def neutralise_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Neutralise every text column of ``batch``, vectorised; numbers, dates and nulls are untouched.

    Column names are left alone (use :func:`neutralise_header` for the header row). ``string_view``
    columns come back as ``large_string``.
    """
    columns = batch.columns
    arrays = [neutralise_array(column) for column in columns]
    if all(new is old for new, old in zip(arrays, columns, strict=True)):
        return batch
    fields = [f.with_type(a.type) for f, a in zip(batch.schema, arrays, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=batch.schema.metadata))
