"""The login page: the password form, or the OIDC button when Streamlit's ``[auth]`` is configured."""

from __future__ import annotations

import streamlit as st

from exporthub.auth import LoginRefused
from ui import oidc, session
from ui.format import md_escape

MESSAGES: dict[str, tuple[str, str]] = {
    # reason: (kind, sentence)
    "signed-out": ("success", "You have been logged out."),
    "idle": ("info", "Your session ended after a period of inactivity. Please log in again."),
    "expired": ("info", "Your session reached its maximum age. Please log in again."),
    "ended": ("info", "Your session has ended. Please log in again."),
    "password-changed": ("info", "Your password was changed, which ended your session. Please log in again."),
    "ended-by-admin": ("warning", "An administrator ended your session. Please log in again."),
    "disabled": ("warning", "This account can no longer log in. Ask an administrator if that is a mistake."),
    "expired-ticket": ("warning",
                       "That sign-in link has expired or was not made for this browser. Please log in again."),
    "login-required": ("info", "Log in to download the file you opened; the download starts right after."),
    "no-account": (
        "warning",
        "Your identity provider signed you in, but no active Exporthub account matches it.",
    ),
}


def page(target: str = "") -> None:
    """The whole page for visitors who are not logged in, at the address of the page ``target`` (a
    route of :data:`ui.session.PAGE_ROUTES`, or ``""`` for ``/``) they land on once logged in."""
    where = session.page_target(target)
    with st.container(key="login-card", border=True):
        st.markdown("## :material/inventory_2: Exporthub")  # Material icon: no emoji font needed
        st.caption("Reports & Exports for inventory-scanning projects")
        reason = session.ended_reason()
        if reason in MESSAGES:
            kind, sentence = MESSAGES[reason]
            getattr(st, kind)(sentence)
        if oidc.auth_mode() == "oidc":
            _oidc_buttons()
        elif session.login_nonce() is None:
            _no_nonce_yet(where)
        else:
            _password_form(where)


def _no_nonce_yet(where: str) -> None:
    """The form is bound to this browser by a nonce cookie: fetch one first (``/auth/session/begin``)."""
    if st.query_params.get("nonce") == "set":  # we were there already: the cookie did not stick
        st.error("This browser did not keep Exporthub's login cookie. Allow cookies for this site and reload.")
        return
    session.ask_for_login_nonce(where)
    st.caption("Preparing the login form…")


def _password_form(where: str) -> None:
    with st.form("login", border=False):
        username = st.text_input("Username", autocomplete="username", max_chars=64)
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary", width="stretch")
    if not submitted:
        return
    if not username.strip() or not password:
        st.error("Enter your username and password.")
        return
    try:
        with st.spinner("Checking…"):
            user = session.login(username, password, where)
    except LoginRefused as exc:
        st.error(md_escape(exc.message))
        return
    st.success(f"Welcome, {md_escape(user.display_name)}. Opening the page…")


def _oidc_buttons() -> None:
    providers = oidc.oidc_providers(oidc.streamlit_secrets() or {})
    for provider in providers:
        label = "Log in" if provider is None else f"Log in with {provider.replace('_', ' ').title()}"
        if st.button(label, key=f"oidc-{provider or 'default'}", type="primary", width="stretch"):
            st.login(provider) if provider else st.login()
    if (st.session_state.get("_auth_source") is None and st.user.is_logged_in
            and st.button("Log out of the identity provider", width="stretch")):
        st.logout()
