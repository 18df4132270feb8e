"""Small text formatters for the pages: user text as Markdown text, project-local times, durations,
sizes, variable values."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

_UNITS = ("bytes", "KB", "MB", "GB", "TB")

# Human labels for option values the shipped config uses; anything else is shown as is.
OPTION_LABELS: dict[str, dict[str, str]] = {
    "dateRange": {
        "all": "All time",
        "last7days": "Last 7 days",
        "last30days": "Last 30 days",
        "custom": "Custom range",
    },
    "format": {"csv": "CSV", "xlsx": "Excel (xlsx)", "parquet": "Parquet", "pdf": "PDF", "zip": "ZIP"},
    "csvDialect": {"standard": "Standard (comma)", "excel": "Excel (semicolon, BOM)"},
}


# Every ASCII punctuation character may be backslash-escaped in (GitHub-flavoured) Markdown.
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
# GFM turns bare "http://…", "www.…" and "name@host.tld" into links after parsing, whatever the escapes
# (remark-gfm finds them in the text): a zero-width space keeps them plain text.
_AUTOLINK_START = re.compile(r"(?i)(https?|ftp|mailto|xmpp|www)(?=[:.])|(?=@)")
_ZWSP = "\u200b"


def md_escape(text: object) -> str:
    """User-controlled text (names, usernames, zone names, messages, job errors) as Markdown that shows
    exactly that text: no link, image, heading, emphasis, badge, icon or formula can come out of it.

    Every Markdown-significant character is backslash-escaped, line breaks become spaces, and bare
    URLs and e-mail addresses get a zero-width space so GFM's autolinking leaves them alone. Use it for
    every value interpolated into ``st.markdown``, ``st.caption``, ``st.error`` and the like, and into
    widget labels.
    """
    plain = _LINE_BREAKS.sub(" ", str(text))
    plain = _AUTOLINK_START.sub(lambda m: (m.group(1) or "") + _ZWSP, plain)
    return _MD_PUNCTUATION.sub(r"\\\1", plain)


def local_time(value: datetime | None, timezone: str, *, with_date: bool = True) -> str:
    """``20 Nov 2026, 14:02`` in the project's timezone; an em dash for no time."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(timezone))
    return local.strftime("%d %b %Y, %H:%M:%S" if with_date else "%H:%M:%S")


def duration(start: datetime | None, end: datetime | None) -> str:
    """``2 min 05 s``, ``14 s``, ``< 1 s`` (a job that ran, briefly: not ``0 s``) or an em dash."""
    if start is None or end is None:
        return "—"
    seconds = max(0, int((end - start).total_seconds()))
    if seconds == 0:
        return "< 1 s"
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def size(num_bytes: int | float | None) -> str:
    """``1.4 MB``; exact bytes below 1 KB."""
    if num_bytes is None:
        return "—"
    value = float(num_bytes)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{int(value):,} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"  # pragma: no cover - the loop always returns


def option_label(key: str, value: Any) -> str:
    return OPTION_LABELS.get(key, {}).get(str(value), str(value))


def variable_value(key: str, value: Any) -> str:
    """A variable's value as a person reads it (lists joined, booleans as Yes/No, empty as "—")."""
    if value is None or value == "" or value == []:
        return "all" if key == "zones" else "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(option_label(key, v) for v in value)
    return option_label(key, value)

