"""Single sign-on: whether Streamlit's ``[auth]`` secrets configure an OIDC provider for ``st.login``.

With one configured, the login page offers "Log in" through the provider instead of the password
form (see :mod:`ui.session`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import streamlit as st

AuthMode = Literal["password", "oidc"]


def oidc_configured(secrets: Mapping[str, Any] | None) -> bool:
    """True when Streamlit's ``[auth]`` secrets configure an OIDC provider (so ``st.login`` works).

    Streamlit needs ``redirect_uri`` and ``cookie_secret`` plus a provider with ``client_id``,
    either directly under ``[auth]`` or in a named section such as ``[auth.google]``.
    """
    if not isinstance(secrets, Mapping):
        return False
    section = secrets.get("auth")
    if (
        not isinstance(section, Mapping)
        or not section.get("redirect_uri")
        or not section.get("cookie_secret")
    ):
        return False
    if section.get("client_id"):
        return True
    return any(isinstance(v, Mapping) and v.get("client_id") for v in section.values())


def oidc_providers(secrets: Mapping[str, Any]) -> list[str | None]:
    """The provider names to pass to ``st.login`` (``[None]`` for the unnamed default provider)."""
    section = secrets.get("auth") or {}
    if section.get("client_id"):
        return [None]
    return [k for k, v in section.items() if isinstance(v, Mapping) and v.get("client_id")]


def streamlit_secrets() -> Mapping[str, Any] | None:
    """Streamlit's secrets as a plain mapping, or ``None`` when there are none."""
    try:
        return st.secrets.to_dict() if len(st.secrets) else None
    except Exception:  # no secrets.toml at all: Streamlit raises instead of returning empty
        return None


def auth_mode() -> AuthMode:
    return "oidc" if oidc_configured(streamlit_secrets()) else "password"
