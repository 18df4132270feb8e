"""The ASGI entry: the Streamlit app plus Exporthub's own HTTP routes, served by one server.

``streamlit run server.py`` finds ``app`` below and serves it (Streamlit's ``st.App``). Our routes
are matched before Streamlit's own; paths under ``/_stcore/``, ``/media/``, ``/component/`` and
``/static/`` are reserved by Streamlit, and ``/auth/login``, ``/auth/logout`` and
``/oauth2callback`` belong to its OIDC login.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.routing import BaseRoute
from streamlit.runtime.pages_manager import PagesManager

from web import auth_routes, downloads, ops_routes

# ---- Exporthub's HTTP routes: add one line per route (or route list) here. ----
ROUTES: list[BaseRoute] = [
    *ops_routes.ROUTES,  # /healthz (200, or 503 naming the failing part) and /metrics (Prometheus)
    *auth_routes.ROUTES,  # /auth/session/begin (login nonce), /auth/session (ticket), /auth/session/end (POST)
    *downloads.ROUTES,  # /download/{token}: user-bound, expiring file links (exporthub.links)
]

# app.py always calls st.navigation. Without this, the first visit after a start would run a deep link's
# page (/statistics) straight from the pages/ folder, without the login check (Streamlit's legacy
# multipage mode, which it leaves only on the first st.navigation call: streamlit/streamlit#9446).
PagesManager.uses_pages_directory = False

# Files leave as stored: Streamlit's gzip layer would recompress them and drop their Content-Length.
app = st.App(str(Path(__file__).resolve().parent / "app.py"), routes=ROUTES, middleware=downloads.MIDDLEWARE)
