"""The Reports & Exports hub: start exports, watch them run, download the files."""

from __future__ import annotations

from ui import hub
from ui.session import page_context

ctx = page_context()
hub.header(ctx)
hub.open_requested_dialog()  # outside the refreshing fragment, so refreshes never close it
hub.live_section(ctx)
