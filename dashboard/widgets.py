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
#: the Data page sets this to the dataset it has just deleted (the sidebar then says nothing more)
DELETED_HERE_KEY = "_dataset_deleted_here"
#: the pages' day pickers whose default is a day of the dataset (its last day, a cut-off before it):
#: a day picked on another dataset goes back to this one's default, even where it lies inside this
#: dataset's days (it read as this dataset's last day)
DAY_KEYS = ("value_as_of", "value_cutoff", "explorer_as_of", "explorer_from", "seg_as_of", "camp_as_of",
            "predict_cal_end", "predict_hold_end")
DAY_KEY_PREFIXES = ("reports_as_of_",)
#: the Data page's dataset pickers (currency, export), whose default is the sidebar's dataset: after a
#: switch (a load selects the new dataset) they follow it, so that a currency is not set on the old one
DATASET_PICKER_KEYS = ("currency_dataset", "export_dataset")
#: the dataset the day pickers' state belongs to
DAYS_DATASET_KEY = "_days_dataset"


def may(action: str, dataset: str | None = None) -> bool:
    """Whether the caller of this run may do ``action`` (``analytics.access.ACTIONS``): pages hide what
    the library would refuse anyway."""
    from analytics import access

    return access.may(cache.warehouse(), action, dataset)


def needs_role(action: str) -> None:
    """A one-line note where a control is hidden for the caller's role."""
    from analytics import access

    st.caption(f"🔒 This needs the {access.ACTIONS[action]} role.")


def server_files() -> bool:
    """Whether this caller may read and write files on the server by path (the local user, an admin)."""
    from analytics import access

    caller = access.current()
    return caller is not None and (caller.trusted or access.may(cache.warehouse(), "manage_people"))


def deferred(fn):
    """A download button's data callable that runs as this run's caller (it runs later, in another thread)."""
    from analytics import access

    return access.bound(fn)


def card_money(x, cur) -> str:
    """Money short enough for a KPI card five to a row in a 1280-pixel window: ``€197 K``, ``€19.7 K``,
    ``€9,999``, ``€78.59``, ``€2.62 M`` (``€196,939.26`` is cut to ``€196,93…`` there); put the exact
    figure in the card's help."""
    import pandas as pd

    from analytics import formatting as fmt

    if x is None or pd.isna(x):
        return fmt.money(x, cur)
    cur = fmt.resolve_currency(cur)
    v = float(x)
    a = abs(v)
    if a < 1e3:
        return fmt.money(v, cur)
    sign, prefix = ("-" if v < 0 else ""), (cur.prefix if cur else "")
    if a < 1e4:  # whole units, half up (1,234.50 -> 1,235)
        return sign + prefix + f"{int(a + 0.5):,}"
    if a >= 999_500:
        return fmt.money(v, cur, compact=True) if a >= 1e6 else sign + prefix + "1.00 M"
    body = f"{a / 1e3:,.1f} K" if a < 99_950 else f"{a / 1e3:,.0f} K"
    return sign + prefix + body


def select_dataset_next(name: str) -> None:
    """Make the sidebar pick ``name`` on the next run (call ``st.rerun()`` after)."""
    st.session_state[SELECT_NEXT_KEY] = name


def current_dataset() -> str | None:
    """The dataset picked in the sidebar (None when the warehouse is empty)."""
    names = cache.datasets()
    if not names:
        return None
    chosen = st.session_state.get(DATASET_KEY)
    if chosen not in names:
        return "sample" if "sample" in names else names[0]
    return chosen


def sidebar() -> None:
    """Dataset picker and the compute device, on every page."""
    names = cache.datasets()
    wanted = st.session_state.pop(SELECT_NEXT_KEY, None)
    deleted_here = st.session_state.pop(DELETED_HERE_KEY, None)
    gone = None  # the dataset this tab was showing, deleted elsewhere (another tab, the CLI)
    with st.sidebar:
        if names:
            # Set the picker's state before it is drawn (never both a default and a state).
            held = st.session_state.get(DATASET_KEY)
            if wanted in names:
                st.session_state[DATASET_KEY] = wanted
            elif held not in names:
                st.session_state[DATASET_KEY] = current_dataset()
                if isinstance(held, str) and held and held != deleted_here:
                    gone = held
            st.selectbox(
                "Dataset", names, key=DATASET_KEY,
                help="The dataset every page works on. Load more on the Data page.",
            )
        else:
            st.session_state.pop(DATASET_KEY, None)
            st.info("No dataset yet: load one on the Data page.", icon="🗂️")
        preparation_status(current_dataset() if names else None)
        problem = cache.bootstrap_error()
        if problem:
            st.warning(problem, icon="⚠️")
        st.caption(f"Compute device: {device_label()}")
    if gone is not None:
        # said on the page, above its title: its figures are now another dataset's
        st.warning(f"The dataset “{md_escape(gone)}” is no longer in the warehouse (it was deleted, in another "
                   f"browser tab or from the command line). This page now shows “{md_escape(current_dataset())}”; "
                   "pick another dataset in the sidebar.", icon="🗑️")


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    from analytics.device import describe_device, pick_device

    try:
        return describe_device(pick_device())
    except Exception as exc:  # torch missing or broken: the app still works without models
        return f"CPU (torch unavailable: {exc})"


def warehouse_problem(exc: BaseException) -> str:
    """A plain sentence for a warehouse failure (DuckDB's own errors classified by the library)."""
    from analytics.warehouse import WarehouseError, storage_error

    if isinstance(exc, WarehouseError):
        return str(exc)
    return str(storage_error(exc))


def warehouse_unavailable(exc: BaseException) -> None:
    """The app cannot open its warehouse (another process has it, or the file is unusable): say
    why; when it is only held by another process, look again every two seconds until it is free."""
    from analytics.warehouse import WarehouseLocked

    st.title("Valuescope")
    if isinstance(exc, WarehouseLocked):
        st.info(f"{exc} This page opens by itself when the warehouse is free again.", icon="⏳")
        _retry_open()
    else:
        st.error(str(exc), icon="🚫")


@st.fragment(run_every=2.0)
def _retry_open() -> None:
    from analytics.warehouse import WarehouseError

    try:
        cache.warehouse()
    except WarehouseError:
        return
    st.rerun(scope="app")


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
    """A fraction as a percentage, as :func:`analytics.formatting.percent`: ``12.3 %``."""
    from analytics import formatting

    return formatting.percent(x)


def progress_text(fraction: float, message: str = "") -> str:
    """A progress bar's text: the step in words, then how far it is, written as the product writes
    a percentage (``Writing rows… 70 %``; the step is escaped and kept short)."""
    from analytics import formatting

    done = formatting.percent(min(max(float(fraction), 0.0), 1.0), 0)
    step = md_escape(str(message or "").strip())[:300]
    return f"{step[:1].upper()}{step[1:]}… {done}" if step else done


def percent_column(title: str | None = None, help: str | None = None):
    """A table column of percentages whose values are fractions made x 100 by :func:`as_percent`:
    ``12.3 %``, as :func:`analytics.formatting.percent` writes one (Streamlit's own "percent" format
    writes ``12.35%``)."""
    from analytics import formatting

    return st.column_config.NumberColumn(title, format=formatting.PERCENT_PRINTF, help=help)


def as_percent(frame, columns):
    """A copy of ``frame`` with the fractions (0-1) of ``columns`` x 100, for :func:`percent_column`
    (columns it lacks are skipped)."""
    import pandas as pd

    out = frame.copy()
    for c in columns:
        if c in out.columns:
            out[c] = pd.to_numeric(out[c], errors="coerce") * 100.0
    return out


def column_config(frame, currency=None, kinds: dict | None = None, titles: dict | None = None) -> dict:
    """An ``st.dataframe`` column configuration for ``frame`` from ``analytics.formatting``: human
    titles, money in ``currency`` with thousands separators, rates as percentages, dates as days,
    plain-words tooltips. Values stay numbers (the table sorts them as numbers)."""
    from analytics import formatting

    out = {}
    for name, f in formatting.table_columns(frame, currency, kinds).items():
        title = (titles or {}).get(name, f.title)
        if f.kind == "percent":  # table() shows such a column x 100 (as_percent)
            out[name] = percent_column(title, help=f.help)
        elif f.kind == "date":
            out[name] = st.column_config.DateColumn(title, format="D MMM YYYY", help=f.help)
        elif f.printf:
            out[name] = st.column_config.NumberColumn(title, format=f.printf, help=f.help)
        else:
            out[name] = st.column_config.Column(title, help=f.help)
    return out


def table(frame, key: str, currency=None, *, kinds: dict | None = None, titles: dict | None = None,
          drop_empty: bool = True, **kw) -> None:
    """``frame`` as an ``st.dataframe`` for people (:func:`column_config`), without the columns that
    are empty in every row (no "None" / "nan" columns)."""
    from analytics import formatting

    shown = formatting.drop_empty_columns(frame) if drop_empty else frame
    kinds = dict(kinds or {})
    gaps = [c for c in shown.columns if shown[c].isna().any()]
    if gaps:  # a missing cell reads "–" (by its kind for numbers), never "None"
        shown = shown.copy()
        cols = formatting.table_columns(shown, currency, kinds)
        for c in gaps:
            kind = cols[str(c)].kind
            shown[c] = [formatting.format_value(v, kind, currency) for v in shown[c]]
            kinds[str(c)] = "text"
    rates = [n for n, f in formatting.table_columns(shown, currency, kinds).items() if f.kind == "percent"]
    if rates:
        shown = as_percent(shown, rates)
    kw.setdefault("hide_index", True)
    st.dataframe(shown, key=key, column_config=column_config(shown, currency, kinds, titles), **kw)


def forget_choices_of_another_dataset(dataset: str) -> None:
    """Drop the state of the day pickers and the Data page's dataset pickers when it was set on
    another dataset, so that they open on this dataset's defaults (its last day, this dataset) after
    a switch in the sidebar."""
    if st.session_state.get(DAYS_DATASET_KEY) == dataset:
        return
    for key in list(st.session_state):
        if key in DAY_KEYS or key in DATASET_PICKER_KEYS or str(key).startswith(DAY_KEY_PREFIXES):
            del st.session_state[key]
    st.session_state[DAYS_DATASET_KEY] = dataset


def dataset_span_or_stop(needs_events: bool = False) -> tuple[str, str, "datetime.date", "datetime.date"]:
    """The current dataset, its data version and first/last event days.

    Stops the page with a friendly message when the warehouse or the dataset is
    empty, so analysis pages start from data that exists. A customer summary attached
    from Spark (no events) spans its one as-of day; pages that ``needs_events`` stop
    there with a message saying so.
    """
    import pandas as pd

    dataset = current_dataset()
    if dataset is None:
        st.info("The warehouse has no data yet. Load a CSV of orders or events on the Data page.", icon="👋")
        st.stop()
    forget_choices_of_another_dataset(dataset)
    summary_only = cache.attached(dataset)
    if summary_only is not None:
        stop_if_summary_only(dataset, needs_events)
        from analytics import formatting

        day = pd.Timestamp(summary_only["as_of"]).date()
        st.caption(f"“{md_escape(dataset)}” is a customer summary computed on Spark as of {formatting.date(day)} "
                   f"({summary_only['customers']:,} customers, no events): the page works at that day.")
        return dataset, cache.version(dataset).data, day, day
    span = cache.span(dataset)
    first_event, last_event = span["first_event"], span["last_event"]
    if last_event is None or pd.isna(last_event):
        st.info(f"The dataset “{md_escape(dataset)}” has no events yet. Load a file into it on the Data page.",
                icon="📭")
        st.stop()
    return dataset, cache.version(dataset).data, pd.Timestamp(first_event).date(), pd.Timestamp(last_event).date()


def customer_frame_or_stop(read, dataset: str, as_of, what: str = "the customer table"):
    """``read(dataset, as_of)`` (a ``dashboard.cache`` frame reader); stops the page with one clear
    message when it fails (user-facing error), is still being prepared, or has no customers."""
    try:
        frame = read(dataset, as_of)
    except ValueError as exc:
        st.error(f"{what[:1].upper() + what[1:]} could not be built: {md_escape(exc)}", icon="🚫")
        st.stop()
    if frame is None:
        not_ready(dataset, what)
    if frame.empty:
        from analytics import formatting

        st.warning(f"No customers up to {formatting.date(as_of)}. Pick a later as-of date.", icon="📭")
        st.stop()
    return frame


def not_ready(dataset: str, what: str, *, stop: bool = True) -> None:
    """Say that ``what`` (e.g. "the customer table") is still being prepared, with the progress of
    the preparation; the part reappears by itself when it is ready. Stops the page unless ``stop``
    is False (then only this part is replaced by the message)."""
    job = cache.preparation(dataset)
    if job is not None and job.state == "failed":
        st.error(f"{what[:1].upper() + what[1:]} could not be prepared: {md_escape(job.error)}", icon="🚫")
        if st.button("Prepare again", key=f"prepare_again_{what}"):
            cache.changed(dataset)
    else:
        text = job.text() if job is not None else "preparing…"
        st.info(f"{what[:1].upper() + what[1:]} is being prepared for “{md_escape(dataset)}” "
                f"({md_escape(text)}). This part appears by itself when it is ready.", icon="⏳")
        _wait_for_preparation(dataset)
    if stop:
        st.stop()


@st.fragment(run_every=1.0)
def _wait_for_preparation(dataset: str) -> None:
    """Polls (once a second, this fragment only) until the dataset's preparation ends, then reruns
    the page so that it draws what is now ready."""
    from analytics import prepare

    job = prepare.job(cache.warehouse(), dataset)
    if job is None or not job.running:
        st.rerun(scope="app")


def preparation_status(dataset: str | None) -> None:
    """The sidebar's line about the dataset's preparation: a progress bar while it runs ("preparing
    3/6: fitting models…"), the reason when it failed; nothing once the dataset is prepared."""
    job = cache.preparation(dataset) if dataset else None
    if job is None:
        return
    if job.state == "failed":
        st.error(f"Preparing “{md_escape(dataset)}” failed: {md_escape(job.error)}", icon="🚫")
        if st.button("Prepare again", key="sidebar_prepare_again"):
            cache.changed(dataset)
            st.rerun()
        return
    _sidebar_progress(dataset)


@st.fragment(run_every=1.0)
def _sidebar_progress(dataset: str) -> None:
    from analytics import prepare

    job = prepare.job(cache.warehouse(), dataset)
    if job is None or not job.running:
        st.rerun(scope="app")  # done: redraw the page with what is ready
    st.progress(job.fraction, text=job.text())


def stop_if_summary_only(dataset: str | None, needs_events: bool = True) -> None:
    """Stop a page that needs raw events, with a message, when ``dataset`` is a summary attached from Spark."""
    info = cache.attached(dataset) if needs_events else None
    if info is not None:
        import pandas as pd

        from analytics.spark.attach import events_needed_message

        st.info(events_needed_message(dataset, pd.Timestamp(info["as_of"]).date()), icon="🧮")
        st.stop()


# ---- rule builder rows (Segments page, Campaigns page's extra conditions)
#: how rule operators read in the builders
RULE_OP_LABELS = {"=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥", "between": "between",
                  "in": "is one of", "not_in": "is none of", "contains": "contains", "is_null": "is missing"}


def category_choices(frame, column: str, limit: int = 300) -> list[str] | None:
    """The distinct values of a category column (None when absent or too many to list)."""
    if column not in frame.columns:
        return None
    vals = frame[column].dropna().astype(str).unique()
    return sorted(vals) if 0 < len(vals) <= limit else None


def state_default(key: str, default) -> str:
    """Give a widget its default through the session state (so that code loading saved values
    can set the same keys without Streamlit's 'default and state' warning); returns ``key``.

    A default set this way also reaches the browser: after :func:`forget_choices_of_another_dataset`
    drops a picker's state, the widget (same key, so the same widget to the browser) shows the new
    default. A default given as ``value=`` would change only the server's value, and the browser
    would go on showing, and sending back, the day picked on the other dataset."""
    st.session_state.setdefault(key, default)
    return key


def dataset_picker_key(key: str, names: list[str], current: str | None) -> str:
    """:func:`state_default` for a picker of one of ``names`` that opens on ``current`` (a choice no
    longer among them, a deleted dataset, is dropped first)."""
    if st.session_state.get(key) not in names:
        st.session_state.pop(key, None)
    return state_default(key, current if current in names else names[0])


def rule_condition_row(prefix: str, i: int, frame, fields, default_field: str, first_day, last_day) -> dict:
    """One field / operator / value row of a rule builder as a condition dict. Widget keys are
    ``{prefix}_rule_field_{i}``, ``{prefix}_rule_op_{i}_{type}``, ``{prefix}_rule_null_{i}``,
    ``_d1/_d2/_d`` (dates), ``_v1/_v2`` (between), ``_cm_{i}_{field}`` / ``_cs_{i}_{field}``
    (listed categories), ``_vl`` (comma list), ``_v`` (one value); defaults go through the
    session state, so a saved definition can be loaded by setting those keys."""
    names = sorted(fields, key=lambda f: fields[f].title.lower())
    k = f"{prefix}_rule"
    c1, c2, c3 = st.columns([2, 1, 2])
    if st.session_state.get(f"{k}_field_{i}") not in fields:
        st.session_state[f"{k}_field_{i}"] = default_field
    fname = c1.selectbox("Field", names, key=f"{k}_field_{i}", format_func=lambda f: fields[f].title)
    field = fields[fname]
    op = c2.selectbox("Operator", field.operators, key=f"{k}_op_{i}_{field.type}", format_func=RULE_OP_LABELS.get)
    value: object
    with c3:
        if op == "is_null":
            value = st.checkbox("missing (untick: present)", key=state_default(f"{k}_null_{i}", True))
        elif field.type == "date":
            if op == "between":
                value = [str(d) for d in (st.date_input("From", key=state_default(f"{k}_d1_{i}", first_day)),
                                          st.date_input("To", key=state_default(f"{k}_d2_{i}", last_day)))]
            else:
                value = str(st.date_input("Date", key=state_default(f"{k}_d_{i}", last_day)))
        elif op == "between":
            value = [st.text_input("From", key=f"{k}_v1_{i}"), st.text_input("To", key=f"{k}_v2_{i}")]
        elif field.type == "category" and op in ("=", "!=", "in", "not_in") and (
                choices := category_choices(frame, fname)):
            if op in ("in", "not_in"):
                value = st.multiselect("Values", choices, key=f"{k}_cm_{i}_{fname}")
            else:
                value = st.selectbox("Value", choices, key=f"{k}_cs_{i}_{fname}")
        elif op in ("in", "not_in"):
            raw = st.text_input("Values (comma-separated)", key=f"{k}_vl_{i}")
            value = [v.strip() for v in raw.split(",") if v.strip()]
        else:
            hint = "a number, e.g. 500" if field.type == "numeric" else "text"
            value = st.text_input("Value", key=f"{k}_v_{i}", placeholder=hint)
    return {"field": fname, "operator": op, "value": value}


def blank_conditions(conditions: list[dict]) -> list[int]:
    """1-based numbers of the conditions still waiting for a value."""
    return [i + 1 for i, c in enumerate(conditions)
            if c["value"] == "" or c["value"] == [] or (isinstance(c["value"], list) and "" in c["value"])]


# ---- numbers as people read them (analytics.formatting on the screen)
#: momentjs format of a day in tables, as analytics.formatting.date writes it ("31 Dec 2025")
DATE_FORMAT = "D MMM YYYY"


def dataset_currency(dataset: str | None):
    """The :class:`analytics.currency.Currency` money of ``dataset`` is shown in (None when unknown:
    figures then carry no sign): the stored choice, else the guess from the data (cached per data
    version)."""
    if not dataset:
        return None
    try:
        return cache.dataset_currency(dataset).currency
    except Exception:  # a dataset deleted meanwhile, a busy warehouse: show bare numbers
        return None


def people_table(frame, currency=None, *, kinds: dict | None = None, titles: dict | None = None,
                 helps: dict | None = None, missing: dict | None = None, drop_empty: bool = True):
    """``(display frame, column_config)`` for ``st.dataframe``: human titles and tooltips
    (:data:`analytics.formatting.COLUMNS`, or ``titles``/``helps``), money in ``currency`` with
    thousands separators and its minor units, rates as percentages with one decimal, dates as
    days, counts with separators; columns missing in every row are left out. A number column
    missing in some rows is shown as text, its gaps saying why (``missing``: column -> phrase,
    default "not enough history"), so no cell reads "None" or "nan". The machine names stay in
    exports; this is only what the screen shows."""
    import pandas as pd

    from analytics import formatting

    cols = formatting.table_columns(frame, currency, kinds)
    data, config = {}, {}
    for col in frame.columns:
        name = str(col)
        f = cols[name]
        s = frame[col]
        if drop_empty and len(frame) and (s.isna().all() or (s.dtype == object and s.map(
                lambda v: v is None or (isinstance(v, str) and not v.strip())).all())):
            continue
        title = (titles or {}).get(name, f.title)
        help_ = (helps or {}).get(name, f.help)
        numeric = f.kind in ("money", "percent", "count", "number", "score", "days") and (
            pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
        if numeric and s.isna().any():
            reason = (missing or {}).get(name, formatting.NOT_ENOUGH_HISTORY)
            s = pd.Series([reason if pd.isna(v) else formatting.format_value(v, f.kind, currency) for v in s],
                          index=s.index, dtype=object)
            config[title] = st.column_config.TextColumn(title, help=help_)
        elif numeric and f.kind == "percent":
            s = pd.to_numeric(s) * 100.0
            config[title] = st.column_config.NumberColumn(title, help=help_, format="%.1f %%")
        elif numeric:
            config[title] = st.column_config.NumberColumn(title, help=help_, format=f.printf or "%,.2f")
        elif f.kind == "date" or pd.api.types.is_datetime64_any_dtype(s):
            s = pd.to_datetime(s, errors="coerce")
            if s.isna().any():
                s = pd.Series([formatting.date(v, missing=(missing or {}).get(name, formatting.MISSING))
                               for v in s], index=s.index, dtype=object)
                config[title] = st.column_config.TextColumn(title, help=help_)
            else:
                config[title] = st.column_config.DateColumn(title, help=help_, format=DATE_FORMAT)
        else:
            if s.dtype == object or pd.api.types.is_string_dtype(s):
                s = s.astype(object).where(s.notna(), (missing or {}).get(name, formatting.MISSING))
            config[title] = st.column_config.Column(title, help=help_)
        data[title] = s.to_numpy() if hasattr(s, "to_numpy") else s
    return pd.DataFrame(data, index=frame.index), config


def show_table(frame, currency=None, *, kinds: dict | None = None, titles: dict | None = None,
               helps: dict | None = None, missing: dict | None = None, key: str | None = None,
               height=None, hide_index: bool = True, drop_empty: bool = True, once_per: tuple | None = None) -> None:
    """``frame`` as a table people read (see :func:`people_table`), as wide as the page; a customer-level
    table as the caller may see it (``analytics.access.present``: pseudonymised ids for a viewer).

    ``once_per``: ``(dataset, name, *key)`` when ``frame`` is fixed by the dataset's data version and
    ``key`` (e.g. a table of prepared results at a given day): the table people read is then made once
    and shared by every session with the same view (``dashboard.cache.shared``)."""
    from analytics import access

    def build():
        seen = access.present(cache.warehouse(), frame)
        return people_table(seen, currency, kinds=kinds, titles=titles, helps=helps, missing=missing,
                            drop_empty=drop_empty)

    if once_per is None:
        shown, config = build()
    else:
        shown, config = cache.shared(once_per[0], f"table:{once_per[1]}", build, currency, *once_per[2:])
    kw = {} if height is None else {"height": height}
    st.dataframe(shown, hide_index=hide_index, width="stretch", column_config=config, key=key, **kw)


def money_text(currency):
    """A one-argument formatter of money in ``currency`` (for captions, metrics and plain-words help)."""
    from analytics import formatting

    return lambda x: formatting.money(x, currency)


def may_see_personal_data() -> bool:
    """Whether the person using the app may see personal data (an email column in a campaign file):
    the local user without sign-in (who can read the warehouse file, as with the command line), or a
    signed-in analyst or admin (``analytics.access``: ``raw_ids``)."""
    return may("raw_ids")
