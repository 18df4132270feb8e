"""A job's files as download links: the stable ``/download/<token>`` path and the HTML the hub and the
job details page show them with (the data files first, side files after)."""

from __future__ import annotations

import html
import importlib

from exporthub.settings import Settings
from exporthub.views import FileView, JobView
from ui import format as fmt


def download_path(settings: Settings, file_id: int, user_id: int) -> str | None:
    """The file's stable ``/download/<token>`` link for this user, or ``None`` while the download
    links module is not installed. The token's expiry is bucketed, so the link stays the same across
    refreshes and can be clicked."""
    try:
        links = importlib.import_module("exporthub.links")
    except ModuleNotFoundError as exc:
        if exc.name != "exporthub.links":
            raise
        return None
    return str(links.download_path(settings, file_id, user_id))


# Streamlit's own Material Symbols font (declared by its stylesheet) draws the icon from its ligature name:
# no emoji font is needed, and the icon is hidden from screen readers and from the link's text.
FILE_ICON = '<span class="eh-icon" aria-hidden="true">description</span>'


def file_link_html(settings: Settings, f: FileView, user_id: int, *, show_downloads: bool = False) -> str:
    """One file as an HTML download link (``download`` attribute: one click saves it) with its size."""
    name = html.escape(f.name)
    href = download_path(settings, f.id, user_id)
    extra = f" · {f.download_count} download{'s' if f.download_count != 1 else ''}" if show_downloads else ""
    meta = f'<span class="eh-file-meta">{html.escape(fmt.size(f.size))}{extra}</span>'
    if href is None:
        return f'<span class="eh-file">{FILE_ICON}{name}</span> {meta}'
    return (
        f'<a class="eh-file" href="{html.escape(href, quote=True)}" download="{name}" '
        f'title="Download {name}">{FILE_ICON}{name}</a> {meta}'
    )


def files_html(settings: Settings, job: JobView, user_id: int, *, show_downloads: bool = False) -> str:
    if not job.files:
        return ""
    # The data files first; side files (such as the ".about.json" description) after them.
    ordered = sorted(job.files, key=lambda f: (".about." in f.name, f.id))
    items = "".join(
        f"<li>{file_link_html(settings, f, user_id, show_downloads=show_downloads)}</li>" for f in ordered
    )
    return f'<ul class="eh-files">{items}</ul>'
