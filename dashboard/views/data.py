"""Data: load a file (upload or server path), review and edit the mapping, load with
progress, read the validation report, and manage datasets (history, export, delete).

The page only lays out widgets; reading, validating and loading are analytics.ingest.
Every error a user can cause is shown with st.error and leaves the warehouse unchanged.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from pathlib import Path

import streamlit as st

from analytics.warehouse import WarehouseError
from dashboard import cache, widgets

NONE = "(none)"
UPLOAD_TYPES = ["csv", "tsv", "txt", "gz"]
#: datasets with more events than this are exported to a server path rather than a download
BIG_EXPORT_EVENTS = 2_000_000
USER_ERRORS = (ValueError, WarehouseError, OSError)

try:
    from analytics import ingest as ing
except ImportError as exc:  # pragma: no cover - ingestion is part of every install
    st.error(f"Loading data is not available in this installation: {exc}")
    st.stop()

wh = cache.warehouse()


# -- helpers -----------------------------------------------------------------------
def _safe_file_name(name: str) -> str:
    base = os.path.basename(name or "upload.csv")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload.csv"
    return base[-120:]


def _default_dataset_name(file_name: str) -> str:
    stem = file_name
    for suffix in (".gz", ".csv", ".tsv", ".txt"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    return (stem or "dataset")[:48]


def _uploaded_to_temp(uploaded) -> str:
    """Write an upload to a temp file once per upload (kept across reruns), return its path. For an
    encrypted warehouse the "file" is held in memory (``warehouse.MemoryFile``): nothing of the
    upload is written to disk in the clear."""
    state = st.session_state.get("_upload_tmp")
    if state and state["id"] == uploaded.file_id and os.path.exists(state["path"]):
        return state["path"]
    if state:
        if state.get("memory") is not None:
            state["memory"].close()
        else:
            shutil.rmtree(state["dir"], ignore_errors=True)
    scratch = wh.scratch_file("upload")
    if hasattr(scratch, "fd"):
        with scratch.open("wb") as fh:
            shutil.copyfileobj(uploaded, fh, length=1 << 20)
        st.session_state["_upload_tmp"] = {"id": uploaded.file_id, "path": scratch.path, "memory": scratch}
        return scratch.path
    # under the warehouse's temporary folder, named with this process id: removed at the next start
    # when the app was killed before it could clean up
    tmp_dir = str(scratch)
    os.makedirs(tmp_dir)
    path = os.path.join(tmp_dir, _safe_file_name(uploaded.name))
    with open(path, "wb") as fh:
        shutil.copyfileobj(uploaded, fh, length=1 << 20)
    st.session_state["_upload_tmp"] = {"id": uploaded.file_id, "path": path, "dir": tmp_dir}
    return path


def _check_server_path(text: str) -> str:
    """The validated path typed by the user (raises ValueError with a clear message)."""
    raw = text.strip().strip('"').strip("'")
    if not raw:
        raise ValueError("type the path of a file on the server")
    p = Path(raw).expanduser()
    if not p.exists():
        raise ValueError(f"no such file on the server: {raw}")
    if p.is_dir():
        raise ValueError(f"{raw} is a folder, not a file")
    if not p.is_file():
        raise ValueError(f"{raw} is not a regular file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{raw} cannot be read (permission denied)")
    return str(p.resolve())


def _and(items: list[str]) -> str:
    """``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _size(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:,.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:,.1f} MB"
    return f"{max(n / 1e3, 0.1):,.1f} kB"


#: how the parts of a date pattern read in words
_DATE_PARTS = {"%Y": "year", "%y": "year (2 digits)", "%m": "month", "%d": "day", "%H": "hour", "%M": "minute",
               "%S": "second", "%f": "fraction of a second", "%b": "month name", "%B": "month name", "%p": "AM/PM",
               "%I": "hour (1-12)", "%j": "day of the year", "%z": "time zone"}
#: the pattern choices for dates that are not detected, in the order people meet them
DETECT = ""
CUSTOM = "(custom)"
UNIX_WORDS = {"unix": "seconds since 1 January 1970 (a Unix timestamp), e.g. 1706708707",
              "unix_ms": "milliseconds since 1 January 1970, e.g. 1706708707000",
              "excel": "days since 30 December 1899 (an Excel serial date), e.g. 45322 or 45322.57"}


def _date_words(fmt: str) -> str:
    """A date pattern in words: ``%d/%m/%Y %H:%M`` -> ``day/month/year hour:minute``."""
    out = fmt
    for code, word in _DATE_PARTS.items():
        out = out.replace(code, word)
    return out.replace("T", " T ").replace("%%", "%")


def _date_example(fmt: str, when: dt.datetime | None = None) -> str:
    when = when or dt.datetime(2024, 1, 31, 13, 45, 7)
    try:
        return when.strftime(fmt)
    except ValueError:
        return fmt


def _date_format_label(fmt: str) -> str:
    """How a date pattern reads in the picker: an example and the order of its parts."""
    if fmt == DETECT:
        return "Detect from the file"
    if fmt == CUSTOM:
        return "Another way (type a pattern)…"
    if fmt in UNIX_WORDS:
        return UNIX_WORDS[fmt]
    return f"{_date_example(fmt)}  ({_date_words(fmt)})"


def _date_choice_label(fmt: str) -> str:
    """An ambiguous reading in words: ``02/01/2024 13:45 means 2 January 2024 (day/month/year ...)``."""
    example = dt.datetime(2024, 1, 2, 13, 45, 0)
    try:
        shown = example.strftime(fmt)
    except ValueError:
        return fmt
    return f"{shown} means 2 January 2024  ({_date_words(fmt)})"


def _date_format_field(preview, token: str) -> str | None:
    """The date format as a choice of examples (the file's detected one first); a pattern typed by
    hand only for a way of writing dates that is not listed."""
    suggested = preview.mapping.date_format or (preview.date_formats[0] if preview.date_formats else "")
    known = list(dict.fromkeys([*preview.date_formats, *ing.DATE_FORMATS, *UNIX_WORDS]))
    options = [DETECT, *known, CUSTOM]
    if suggested and suggested not in options:
        options.insert(1, suggested)
    choice = st.selectbox(
        "How the dates are written in the file", options, index=options.index(suggested) if suggested else 0,
        key=f"datefmt_{token}", format_func=_date_format_label,
        help="Each choice shows 31 January 2024, 13:45:07 written that way. Pick the one that looks like the dates "
        "in your file; 'Detect from the file' tries the usual ways.")
    if choice != CUSTOM:
        return choice or None
    typed = st.text_input(
        "Pattern of the dates", key=f"datefmt_custom_{token}", placeholder="%d %b %Y",
        help="Write a date the way the file does, with %d for the day, %m for the month (number), %b for a "
        "short month name (Jan), %Y for a 4-digit year, %y for 2 digits, %H, %M and %S for hours, minutes and "
        "seconds. Example: 31 Jan 2024 is %d %b %Y.").strip()
    if typed:
        st.caption(f"31 January 2024, 13:45:07 would be written {widgets.md_escape(_date_example(typed))}.")
    return typed or None


def _report(last: dict) -> None:
    """The validation report of the last load (kept in session state across reruns)."""
    st.subheader("Validation report")
    read, loaded = int(last["rows_read"]), int(last["rows_loaded"])
    rejected, dup = int(last["rows_rejected"]), int(last["rows_duplicate"])
    st.success(
        f"Loaded “{widgets.md_escape(last['dataset'])}” from "
        f"{widgets.md_escape(last.get('file_name') or 'the file')} "
        f"in {float(last.get('duration_s') or 0):.1f} s.",
        icon="✅",
    )
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows read", f"{read:,}")
    c2.metric("Rows loaded", f"{loaded:,}")
    c3.metric("Rows rejected", f"{rejected:,}")
    c4.metric("Duplicates skipped", f"{dup:,}")
    ok = read == loaded + rejected + dup
    st.markdown(
        f"Rows read = loaded + rejected + duplicates: **{read:,} = {loaded:,} + {rejected:,} + {dup:,}**"
        + ("" if ok else " — these do not add up; please report this file.")
    )
    for w in last.get("warnings") or []:
        st.warning(widgets.md_escape(w), icon="⚠️")
    if rejected:
        ingestion_id = int(last["ingestion_id"])
        rejects = ing.rejects_frame(wh, ingestion_id, limit=1000)
        shown = "" if rejected <= 1000 else "; the first 1,000 are shown, the download has them all"
        st.markdown(f"**Rejected rows** ({rejected:,}{shown}):")
        st.dataframe(
            rejects, hide_index=True, key="rejects_table",
            column_config={
                "line_number": st.column_config.NumberColumn("Line", format="%d"),
                "reason": st.column_config.TextColumn("Why it was rejected"),
                "raw_line": st.column_config.TextColumn("The line as written in the file"),
            },
        )

        def _all_rejects() -> bytes:
            from analytics.export import to_safe_csv

            return to_safe_csv(ing.rejects_frame(wh, ingestion_id), bom=True)

        st.download_button(
            "⬇️ Download rejected rows (CSV)", widgets.deferred(_all_rejects),
            file_name=f"rejects_{ingestion_id}.csv", mime="text/csv", key="rejects_download",
        )


def _source() -> tuple[str | None, str | None, int]:
    """1. The file: an upload (stored in a temporary file once) or a path on the server;
    (path, file name, source generation)."""
    st.subheader("1. Choose a file")
    sources = ["Upload from this computer", "File on the server (path)"]
    if not widgets.server_files():
        sources = sources[:1]  # people signed in to a shared app do not read the server's files
    source = st.radio(
        "Source", sources, horizontal=True, key="source",
        help="Uploads are limited by server.maxUploadSize; load bigger files (at least 2 GB) by path.",
    )
    path: str | None = None
    file_name: str | None = None
    gen = st.session_state.setdefault("_source_gen", 0)  # bumped after a load: empties the source widgets
    if source.startswith("Upload"):
        uploaded = st.file_uploader(
            "CSV, TSV or text file (optionally .gz compressed)", type=UPLOAD_TYPES, key=f"upload_{gen}",
        )
        if uploaded is not None:
            try:
                path = _uploaded_to_temp(uploaded)
                file_name = uploaded.name
            except OSError as exc:
                widgets.show_error(exc, "The upload could not be stored")
    else:
        typed = st.text_input(
            "Path of the file on the server", key=f"server_path_{gen}",
            placeholder="/data/exports/orders_2024.csv.gz",
        )
        if typed.strip():
            try:
                path = _check_server_path(typed)
                file_name = os.path.basename(path)
            except ValueError as exc:
                widgets.show_error(exc, "Cannot use that path")
    return path, file_name, gen


def _load_currency(preview, token: str, dataset_name: str, existing: list[str]) -> tuple[str | None, bool]:
    """The currency of the file's amounts (guessed from the file, editable): ``(code or None, ok)``."""
    from analytics.currency import CurrencyError, check_code, guess_from_preview

    stored = None
    if dataset_name in existing:
        try:
            info = cache.dataset_currency(dataset_name)
            stored = info.code if info.source == "set" else None
        except USER_ERRORS:
            stored = None
    guess, reason = (None, "")
    if stored is None:
        try:
            guess, reason = guess_from_preview(preview)
        except (ValueError, KeyError, IndexError, TypeError):
            guess, reason = None, ""
    typed = st.text_input(
        "Currency of the amounts (ISO 4217 code, e.g. EUR, USD, GBP; empty = unknown)",
        value=stored or guess or "", key=f"currency_{token}", max_chars=40,
        help="Every money figure of the dataset is shown in this currency. It can be changed later below, under "
        "Datasets › Currency.").strip()
    if stored:
        st.caption(f"“{widgets.md_escape(dataset_name)}” is kept in {stored}.")
    elif guess and typed.upper() == guess:
        st.caption(f"Guessed {guess}: {widgets.md_escape(reason)}.")
    if not typed:
        return None, True
    try:
        return check_code(typed), True
    except CurrencyError as exc:
        st.error(f"Currency: {widgets.md_escape(exc)}", icon="🚫")
        return None, False


def _preview_and_load(path: str, file_name: str | None, gen: int) -> None:
    """2.-4. What was detected, the editable mapping, and the load with progress."""
    preview = None
    try:
        preview = cache.inspect(path, file_name)
    except USER_ERRORS as exc:
        st.session_state.pop("last_ingest", None)  # the previous file's report would read as this one's
        widgets.show_error(exc, "This file cannot be loaded")

    if preview is not None and preview.sample.empty:
        # nothing to map or load (a header only): say that, not a mapping with a date-format warning
        st.session_state.pop("last_ingest", None)
        rows = "a header but no data rows" if preview.dialect.has_header else "no data rows"
        st.error(f"This file cannot be loaded: it has {rows}. Nothing was changed; the datasets below "
                 "are as they were.", icon="🚫")
        preview = None

    if preview is not None:
        stat = os.stat(path)
        token = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime}".encode()).hexdigest()[:10]
        st.subheader("2. Check what was detected")
        st.markdown(
            f"**{widgets.md_escape(preview.file_name)}** ({_size(preview.size_bytes)}) · "
            f"layout: **{widgets.md_escape(ing.layout_title(preview.layout))}** · "
            f"{widgets.md_escape(preview.dialect.describe())}"
        )
        for w in preview.warnings:
            st.warning(widgets.md_escape(w), icon="⚠️")
        st.dataframe(preview.sample, hide_index=True, key=f"sample_{token}", height=250)

        st.subheader("3. Review the mapping")
        st.caption(
            "Which column of the file holds each field (* = needed for a load). The proposal comes from the "
            "column names and contents; change anything that is wrong."
        )
        options = [NONE] + list(preview.source_columns)
        proposed = dict(preview.mapping.columns)
        chosen: dict[str, str | None] = {}
        grid = st.columns(3)
        for i, (field, required, description) in enumerate(ing.CANONICAL_FIELDS):
            current = proposed.get(field)
            index = options.index(current) if current in options else 0
            label = f"{ing.field_title(field)}{' *' if required else ''}"
            value = grid[i % 3].selectbox(
                label, options, index=index, key=f"map_{token}_{field}", help=str(description),
            )
            chosen[field] = None if value == NONE else value

        date_format: str | None
        if len(preview.date_formats) > 1:
            date_format = st.radio(
                "The dates could be read two ways (day and month are ambiguous). Which is right?",
                preview.date_formats, index=None, key=f"datefmt_{token}",
                format_func=_date_choice_label,
            )
            if date_format is None:
                st.info("Choose how to read the dates before loading.", icon="📅")
        else:
            date_format = _date_format_field(preview, token)

        flags = {}
        mapping_dict = preview.mapping.to_dict()
        fc1, fc2 = st.columns(2)
        if "negative_is_return" in mapping_dict:
            flags["negative_is_return"] = fc1.checkbox(
                "Negative amounts are returns", value=bool(mapping_dict["negative_is_return"]),
                key=f"neg_{token}",
            )
        if "revenue_is_unit_price" in mapping_dict:
            flags["revenue_is_unit_price"] = fc2.checkbox(
                "The amount is a unit price (revenue = quantity × price)",
                value=bool(mapping_dict["revenue_is_unit_price"]), key=f"unit_{token}",
            )

        keep_pii: list[str] = []
        if preview.pii_columns:
            st.markdown("**Personal data** — these columns look personal and are dropped unless you keep them:")
            for col, kind in preview.pii_columns.items():
                if st.checkbox(f"Keep {widgets.md_escape(col)} ({widgets.md_escape(kind)})", value=False, key=f"pii_{token}_{col}"):
                    keep_pii.append(col)
        pseudonymize = st.checkbox(
            "Pseudonymize customer ids (keyed hash; the key stays with this warehouse)",
            value=False, key=f"pseudo_{token}",
        )

        st.subheader("4. Load")
        existing = wh.datasets()
        dataset_name = st.text_input(
            "Dataset name (a new name creates a dataset; an existing one appends, skipping exact duplicates)",
            value=_default_dataset_name(preview.file_name), key=f"dsname_{token}",
        ).strip()
        if dataset_name in existing:
            st.info(f"“{widgets.md_escape(dataset_name)}” exists: the rows will be appended; rows already loaded are skipped.", icon="➕")

        currency_code, currency_ok = _load_currency(preview, token, dataset_name, existing)

        # what the mapping lacks for a load: said here, with Load disabled, rather than after pressing it
        blockers = ing.load_blockers(chosen, revenue_is_unit_price=bool(flags.get("revenue_is_unit_price")))
        if blockers:
            st.warning(f"Load needs {widgets.md_escape(_and(blockers))}. Pick {'it' if len(blockers) == 1 else 'them'} "
                       "under “3. Review the mapping” above.", icon="🧩")
        can_load = (bool(dataset_name) and currency_ok and not blockers
                    and not (len(preview.date_formats) > 1 and date_format is None))
        if st.button("Load", type="primary", disabled=not can_load, key=f"load_{token}",
                     help=f"Load needs {_and(blockers)}." if blockers else None):
            bar = st.progress(0.0, text="Starting…")

            def _progress(fraction: float, message: str = "") -> None:
                frac = min(max(float(fraction), 0.0), 1.0)
                bar.progress(frac, text=widgets.progress_text(frac, message))

            try:
                mapping_dict = {**mapping_dict, **flags, "columns": chosen, "date_format": date_format}
                mapping = ing.Mapping.from_dict(mapping_dict)
                result = ing.ingest(
                    wh, path, dataset_name, mapping=mapping, dialect=preview.dialect,
                    keep_pii=tuple(keep_pii), pseudonymize=pseudonymize, file_name=file_name,
                    progress=_progress,
                    on_wait=lambda what: bar.progress(0.0, text=f"Waiting for {what} to finish…"),
                )
            except USER_ERRORS as exc:
                bar.empty()
                st.session_state.pop("last_ingest", None)  # the previous file's report would read as this one's
                widgets.show_error(exc, "Nothing was loaded")
            else:
                st.session_state["last_ingest"] = result.to_dict()
                if currency_code and result.rows_loaded:
                    try:
                        cache.set_currency(result.dataset, currency_code)
                    except USER_ERRORS:
                        pass  # checked before the load; a dataset deleted meanwhile has no currency to keep
                cache.clear()
                if result.rows_loaded:
                    # summarise now, so that the Overview opens at once (it is cached per data version)
                    bar.progress(1.0, text="Summarising the dataset for the Overview…")
                    try:
                        cache.overview(result.dataset)
                    except USER_ERRORS:
                        pass  # the Overview will show the problem itself
                widgets.select_dataset_next(result.dataset)
                st.session_state["_source_gen"] = gen + 1
                tmp = st.session_state.pop("_upload_tmp", None)
                if tmp and tmp.get("memory") is not None:  # the upload's copy is no longer needed
                    tmp["memory"].close()
                elif tmp:
                    shutil.rmtree(tmp["dir"], ignore_errors=True)
                st.rerun()


def _datasets() -> None:
    """The datasets: their sizes, ingestion history, export and delete."""
    st.subheader("Datasets")
    names = wh.datasets()
    if not names:
        st.info("No datasets yet.", icon="📭")
        st.stop()

    summary = cache.datasets_table()[["dataset", "events", "customers", "first_event", "last_event", "pseudonymized",
                                       "created_at"]]
    shown = summary.assign(currency=[_currency_text(n) for n in summary["dataset"]])
    widgets.table(shown, "datasets_table", kinds={"created_at": "date", "pseudonymized": "text"},
                  titles={"dataset": "Dataset", "pseudonymized": "Pseudonymized ids", "created_at": "Created",
                          "currency": "Currency"}, drop_empty=False)
    current = widgets.current_dataset()
    if current is not None:
        widgets.forget_choices_of_another_dataset(current)  # the pickers below follow the sidebar
    tab_cur, tab_hist, tab_export, tab_delete = st.tabs(["💱 Currency", "🕘 Ingestion history", "⬇️ Export",
                                                         "🗑️ Delete"])
    with tab_cur:
        _tab_currency(names)
    with tab_hist:
        _tab_history()
    with tab_export:
        _tab_export(names, summary)
    with tab_delete:
        _tab_delete(names)


def _currency_text(name: str) -> str:
    try:
        info = cache.dataset_currency(name)
    except USER_ERRORS:
        return "–"
    if info.code is None:
        return "not set"
    return info.code + ("" if info.source == "set" else " (guessed)")


def _tab_currency(names: list[str]) -> None:
    """The dataset's currency: what it is and why, and a field to set it (ISO 4217, checked)."""
    from analytics.currency import CurrencyError, label

    current = widgets.current_dataset()
    name = st.selectbox("Dataset", names, key=widgets.dataset_picker_key("currency_dataset", names, current))
    try:
        info = cache.dataset_currency(name)
    except USER_ERRORS as exc:
        widgets.show_error(exc, "The currency could not be read")
        return
    if info.code:
        st.markdown(f"Money of “{widgets.md_escape(name)}” is shown in **{widgets.md_escape(label(info.code))}** "
                    f"({widgets.md_escape(info.reason)}).")
    else:
        st.markdown(f"“{widgets.md_escape(name)}” has no currency yet ({widgets.md_escape(info.reason)}): money is "
                    "shown without a sign.")
    flash = st.session_state.pop("_currency_flash", None)
    if flash:
        st.success(flash, icon="✅")
    typed = st.text_input("Currency code (ISO 4217)", key=f"currency_code_{name}", max_chars=40,
                          placeholder="EUR, USD, GBP, CHF, JPY…",
                          help="The three-letter code of the currency the amounts of this dataset are in.")
    c1, c2 = st.columns(2)
    if c1.button("Set the currency", key="currency_set", type="primary"):
        try:
            code = cache.set_currency(name, typed)
        except CurrencyError as exc:
            st.error(f"The currency was not changed: {widgets.md_escape(exc)}", icon="🚫")
        except USER_ERRORS as exc:
            widgets.show_error(exc, "The currency was not changed")
        else:
            st.session_state["_currency_flash"] = f"Money of “{widgets.md_escape(name)}” is now shown in {code}."
            st.session_state.pop(f"currency_code_{name}", None)
            st.rerun()
    if info.source == "set" and c2.button("Forget it (use the guess)", key="currency_forget"):
        try:
            cache.set_currency(name, None)
        except USER_ERRORS as exc:
            widgets.show_error(exc, "The currency was not changed")
        else:
            st.rerun()


def _tab_history() -> None:
    try:
        history = ing.ingestion_history(wh)
    except USER_ERRORS as exc:
        widgets.show_error(exc, "The history could not be read")
    else:
        history = history.drop(columns=["content_hash"], errors="ignore")  # an engineer's fingerprint
        if "layout" in history.columns:
            history = history.assign(layout=history["layout"].map(lambda v: v if v is None else ing.layout_title(v)))
        widgets.table(history, "history_table", kinds={"created_at": "date", "duration_s": "number",
                                                       "ingestion_id": "text"},
                      titles={"ingestion_id": "Load", "dataset": "Dataset", "file_name": "File", "layout": "Layout",
                              "rows_read": "Rows read", "rows_loaded": "Rows loaded", "rows_rejected": "Rows rejected",
                              "rows_duplicate": "Duplicates skipped", "duration_s": "Seconds", "created_at": "Loaded on"})

def _tab_export(names: list[str], summary) -> None:
    if not widgets.may("export"):
        widgets.needs_role("export")
        return
    current = widgets.current_dataset()
    exp_name = st.selectbox("Dataset to export", names,
                            key=widgets.dataset_picker_key("export_dataset", names, current))
    exp_fmt = st.radio("Format", ["csv", "parquet"], horizontal=True, key="export_fmt",
                       format_func=lambda f: {"csv": "CSV", "parquet": "Parquet"}[f])
    n_events = int(summary.loc[summary["dataset"] == exp_name, "events"].iloc[0])
    big = n_events > BIG_EXPORT_EVENTS
    destinations = ["Download in the browser", "Write to a file on the server"]
    if not widgets.server_files():
        destinations = destinations[:1]
    where = st.radio(
        "Destination", destinations,
        index=1 if big and len(destinations) > 1 else 0, key="export_where", horizontal=True,
        help=f"Datasets above {BIG_EXPORT_EVENTS:,} events are best written to a file on the server.",
    )
    if where.startswith("Download"):
        def _export_bytes(name=exp_name, fmt=exp_fmt) -> bytes:
            scratch = wh.scratch_file("export", f".{fmt}")
            if hasattr(scratch, "fd"):  # an encrypted warehouse: the file is made in memory
                try:
                    ing.export_dataset(wh, name, scratch, fmt)
                    return scratch.read_bytes()
                finally:
                    scratch.close()
            tmp_dir = str(scratch)
            os.makedirs(tmp_dir)
            try:
                out = ing.export_dataset(wh, name, os.path.join(tmp_dir, f"{name}.{fmt}"), fmt)
                with open(out, "rb") as fh:
                    return fh.read()
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)

        st.download_button(
            f"⬇️ Download {exp_name}.{exp_fmt} ({n_events:,} events)", widgets.deferred(_export_bytes),
            file_name=f"{exp_name}.{exp_fmt}",
            mime="text/csv" if exp_fmt == "csv" else "application/octet-stream",
            key="export_download",
        )
    else:
        out_path = st.text_input("Write to (path on the server)", key="export_path",
                                 placeholder=f"/tmp/{exp_name}.{exp_fmt}")
        if st.button("Export", key="export_button", disabled=not out_path.strip()):
            try:
                target = Path(out_path.strip()).expanduser()
                if target.is_dir():
                    target = target / f"{exp_name}.{exp_fmt}"
                with st.spinner("Exporting…"):
                    written = ing.export_dataset(wh, exp_name, str(target), exp_fmt)
            except USER_ERRORS as exc:
                widgets.show_error(exc, "The export failed")
            else:
                st.success(f"Wrote {n_events:,} events to {widgets.md_escape(written)}", icon="✅")

def _tab_delete(names: list[str]) -> None:
    if not widgets.may("delete_dataset"):
        widgets.needs_role("delete_dataset")
        return
    del_name = st.selectbox("Dataset to delete", names, index=None, key="delete_dataset",
                            placeholder="Choose a dataset")
    if del_name:
        st.warning(
            f"Deleting “{widgets.md_escape(del_name)}” removes its events, ingestion history and rejected rows. This cannot be undone.",
            icon="⚠️",
        )
        confirm = st.text_input("Type the dataset name to confirm", key="delete_confirm")
        if st.button("Delete dataset", type="primary", disabled=confirm.strip() != del_name, key="delete_button"):
            try:
                ing.delete_dataset(wh, del_name)
            except USER_ERRORS as exc:
                widgets.show_error(exc, "The dataset was not deleted")
            else:
                cache.changed()
                st.session_state.pop("delete_confirm", None)
                st.session_state.pop("delete_dataset", None)
                if (st.session_state.get("last_ingest") or {}).get("dataset") == del_name:
                    st.session_state.pop("last_ingest", None)
                st.session_state["_deleted_message"] = f"Deleted the dataset “{widgets.md_escape(del_name)}”."
                st.session_state[widgets.DELETED_HERE_KEY] = del_name  # said here: no notice in the sidebar
                st.rerun()


def main() -> None:
    st.title("🗂️ Data")
    deleted = st.session_state.pop("_deleted_message", None)
    if deleted:
        st.success(deleted, icon="🗑️")
    if widgets.may("load"):
        path, file_name, gen = _source()
        if path is not None:
            _preview_and_load(path, file_name, gen)
    else:
        st.info("Loading data needs the analyst role.", icon="🔒")
    last = st.session_state.get("last_ingest")
    if last:
        _report(last)
    st.divider()
    _datasets()


main()
