"""Shared parts of the administration tabs: a message shown once after a rerun, where the admin is
looking, and domain calls whose refusal is shown in plain words."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import streamlit as st

from exporthub.errors import ExporthubError
from ui.format import md_escape

P = ParamSpec("P")
T = TypeVar("T")

_FLASH = "_admin_flash"  # (place, kind, message, secret) shown once after a rerun
TOP = "top"


def flash(message: str, *, kind: str = "success", secret: str | None = None, where: str = TOP) -> None:
    """Rerun and show ``message`` once, at ``where`` (a :func:`show_flash` call with that place)."""
    st.session_state[_FLASH] = (where, kind, message, secret)
    st.rerun()


def show_flash(where: str = TOP) -> None:
    """The message noted for this place, once (a secret such as a temporary password under it)."""
    pending = st.session_state.get(_FLASH)
    if not pending or pending[0] != where:
        return
    del st.session_state[_FLASH]
    _, kind, message, secret = pending
    if kind == "success":
        st.success(md_escape(message), icon=":material/check_circle:")
    else:
        st.error(md_escape(message))
    if secret:
        st.code(secret, language=None)
        st.caption('Shown once: pass it on privately. "Set a temporary password" makes a new one.')


def attempt(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """Call a domain action; show a refusal in plain words and return None."""
    try:
        return action(*args, **kwargs)
    except ExporthubError as exc:
        st.error(md_escape(exc.message))
        return None
