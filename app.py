"""Exporthub web app (placeholder until the full UI lands)."""

from __future__ import annotations

import streamlit as st

from exporthub.settings import get_settings

st.set_page_config(page_title="Exporthub", page_icon="📦")
st.title("Exporthub")
st.write("Reports & Exports hub. The worker is running; use the `exporthub` CLI to start exports.")
st.caption(f"Data folder: {get_settings().data_dir}")
