"""HTTP route handlers served next to the Streamlit app by ``server.py`` (Starlette, via ``st.App``).

Handlers stay thin, like the pages: they read the request, call the domain (``exporthub``) and
answer. They never import Streamlit.
"""
