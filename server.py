"""The ASGI entry: the Streamlit app plus Exporthub's own HTTP routes, served by one server.

``streamlit run server.py`` finds ``app`` below and serves it (Streamlit's ``st.App``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = st.App(str(Path(__file__).resolve().parent / "app.py"), routes=[Route("/healthz", health)])
