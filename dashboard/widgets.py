"""Widgets shared by several pages."""
from __future__ import annotations

import html

import streamlit as st

from dashboard import cache


def current_dataset() -> str | None:
    """The dataset picked in the sidebar (None when the warehouse is empty)."""
    names = cache.warehouse().datasets()
    if not names:
        return None
    chosen = st.session_state.get("dataset")
    if chosen not in names:
        chosen = names[0]
        st.session_state["dataset"] = chosen
    return chosen


def sidebar() -> None:
    """Dataset picker and the compute device, on every page."""
    names = cache.warehouse().datasets()
    with st.sidebar:
        if names:
            current = current_dataset()
            st.selectbox("Dataset", names, index=names.index(current), key="dataset")
        else:
            st.info("No dataset yet: load one on the Data page.")
        st.caption(f"Compute device: {device_label()}")


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    from analytics.device import describe_device, pick_device

    try:
        return describe_device(pick_device())
    except Exception as exc:  # torch missing or broken: the app still works without models
        return f"CPU (torch unavailable: {exc})"


def show_error(exc: BaseException, what: str = "That did not work") -> None:
    """A user-facing error: one clear message, never a traceback."""
    st.error(f"{what}: {exc}")


def escape(text: object) -> str:
    """HTML-escape user text before it goes anywhere that renders markup."""
    return html.escape(str(text), quote=True)
