"""The README's import table gives every column of the import contract with its type."""

from __future__ import annotations

import re
from pathlib import Path

from exporthub.importer import CONTRACT

README = Path(__file__).resolve().parent.parent / "README.md"
WORDS = {"int32": "whole number", "int64": "whole number", "float": "number", "bool": "true or false",
         "timestamp": "time with offset", "date": "date", "string": "text"}


def expected_row(table: str) -> str:
    cells = []
    for column in CONTRACT[table]:
        name = "user" if column.name == "user_id" else column.name  # a username (or user_id) in the file
        kind = "username" if column.name == "user_id" else WORDS[str(column.kind)]
        notes = [n for n, on in (("optional", column.optional), ("may be empty", column.nullable)) if on]
        cells.append(f"`{name}` {kind}" + (f" ({', '.join(notes)})" if notes else ""))
    return f"| {table} | {' · '.join(cells)} |"


def test_every_column_is_listed_with_its_type():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Import files"):]
    rows = re.findall(r"^\| [a-z_]+ \| .* \|$", section, re.M)
    for table in CONTRACT:
        assert expected_row(table) in rows, expected_row(table)
