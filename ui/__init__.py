"""Streamlit helpers shared by ``app.py`` and the pages: session, forms, job list rendering, style.

The domain (``exporthub``) never imports from here; these modules may import Streamlit and, at the
edge only, ``worker`` for the Huey dispatcher.
"""
