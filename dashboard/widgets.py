"""Widgets shared by several pages."""
from __future__ import annotations

import html

import streamlit as st

from dashboard import cache

#: session-state key of the sidebar's dataset picker
DATASET_KEY = "dataset"
#: a page sets this to make the sidebar select a dataset on the next run
#: (a widget's own key cannot be changed once the widget has been drawn in a run)
SELECT_NEXT_KEY = "_select_dataset_next"


def select_dataset_next(name: str) -> None:
    """Make the sidebar pick ``name`` on the next run (call ``st.rerun()`` after)."""
    st.session_state[SELECT_NEXT_KEY] = name


def current_dataset() -> str | None:
    """The dataset picked in the sidebar (None when the warehouse is empty)."""
    names = cache.warehouse().datasets()
    if not names:
        return None
    chosen = st.session_state.get(DATASET_KEY)
    if chosen not in names:
        return "sample" if "sample" in names else names[0]
    return chosen


def sidebar() -> None:
    """Dataset picker and the compute device, on every page."""
    names = cache.warehouse().datasets()
    wanted = st.session_state.pop(SELECT_NEXT_KEY, None)
    with st.sidebar:
        if names:
            # Set the picker's state before it is drawn (never both a default and a state).
            if wanted in names:
                st.session_state[DATASET_KEY] = wanted
            elif st.session_state.get(DATASET_KEY) not in names:
                st.session_state[DATASET_KEY] = current_dataset()
            st.selectbox(
                "Dataset", names, key=DATASET_KEY,
                help="The dataset every page works on. Load more on the Data page.",
            )
        else:
            st.session_state.pop(DATASET_KEY, None)
            st.info("No dataset yet: load one on the Data page.", icon="🗂️")
        problem = cache.bootstrap_error()
        if problem:
            st.warning(problem, icon="⚠️")
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
    st.error(f"{what}: {exc}", icon="🚫")


def escape(text: object) -> str:
    """HTML-escape user text before it goes anywhere that renders markup."""
    return html.escape(str(text), quote=True)


def md_escape(text: object) -> str:
    """Escape user text for st.markdown / labels (Markdown specials, no HTML)."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|~<>$&:\"'=")


def fmt_int(n: int | float | None) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_money(x: float | None) -> str:
    if x is None:
        return "–"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 1e9:
        return f"{sign}{x / 1e9:,.2f} bn"
    if x >= 1e6:
        return f"{sign}{x / 1e6:,.2f} M"
    return f"{sign}{x:,.2f}"


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def dataset_span_or_stop() -> tuple[str, str, "datetime.date", "datetime.date"]:
    """The current dataset, its data version and first/last event days.

    Stops the page with a friendly message when the warehouse or the dataset is
    empty, so analysis pages start from data that exists.
    """
    import pandas as pd

    dataset = current_dataset()
    if dataset is None:
        st.info("The warehouse has no data yet. Load a CSV of orders or events on the Data page.", icon="👋")
        st.stop()
    version = cache.data_version(dataset)
    span = cache.query_df(
        "SELECT min(event_time) AS first_event, max(event_time) AS last_event FROM events WHERE dataset = ?",
        (dataset,), version,
    )
    first_event, last_event = span["first_event"].iloc[0], span["last_event"].iloc[0]
    if pd.isna(last_event):
        st.info(f"The dataset “{md_escape(dataset)}” has no events yet. Load a file into it on the Data page.",
                icon="📭")
        st.stop()
    return dataset, version, pd.Timestamp(first_event).date(), pd.Timestamp(last_event).date()
