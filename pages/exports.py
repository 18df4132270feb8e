"""Reports & Exports hub (placeholder until the full UI lands)."""

import streamlit as st

st.title("Reports & Exports")
