"""Reports page: a saved segment or campaign as a shareable report.

Pick what to report on and the as-of day, preview the report, download it as one
self-contained HTML file, create a permalink (``?report=TOKEN``, shown once: only its
hash is stored), list the reports and revoke them. The library does the work
(``analytics.reports``); this page lays it out.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from analytics import access, formatting
from analytics.reports import build_report, create_report, list_reports, report_id, revoke_report
from analytics.segments.store import list_segments
from dashboard import cache, report_render, widgets

SNAPSHOT_KEY = "reports_snapshot"
TOKENS_KEY = "reports_tokens"  # report id -> token, for the reports made in this browser session
LAST_TOKEN_KEY = "reports_last_token"
BUILT_FOR_KEY = "reports_built_for"  # (dataset, segment, campaign id, as-of day) of the report held

def _campaigns(wh, dataset: str) -> pd.DataFrame | None:
    try:
        from analytics.campaigns import list_campaigns
    except ImportError:
        return None
    return list_campaigns(wh, dataset)


def _full_url(token: str) -> str | None:
    url = getattr(st.context, "url", None)
    if not url:
        return None
    base = str(url).split("?", 1)[0].split("#", 1)[0]
    # the permalink opens the app's root with ?report=: drop the page's own path (/reports)
    if base.rstrip("/").endswith("/reports"):
        base = base.rstrip("/")[: -len("/reports")]
    return base.rstrip("/") + "/?report=" + token


def _show_link(token: str) -> None:
    st.success("Permalink created. Copy it now: only a hash of the token is stored, so the link cannot be "
               "shown again later (you can still revoke it).", icon="🔗")
    st.caption("Relative link (append to the app's address):")
    st.code(f"?report={token}", language=None)
    full = _full_url(token)
    if full:
        st.caption("Full link:")
        st.code(full, language=None)
        st.link_button("Open the shared view", full, icon="↗️")


def _make_report(wh, dataset: str, first_day, last_day, tokens: dict) -> None:
    """Pick a saved segment or campaign and the day, build, download, create a permalink."""
    kind = st.radio("Report on", ["Saved segment", "Saved campaign"], horizontal=True, key="reports_kind")
    segment = campaign_id = None
    default_day = last_day
    if kind == "Saved segment":
        names = list_segments(wh, dataset)["name"].tolist()
        if not names:
            st.info("No saved segment yet: build and save one on the Segments page.", icon="🧩")
            return
        segment = st.selectbox("Segment", names, key="reports_segment")
    else:
        camps = _campaigns(wh, dataset)
        if camps is None:
            st.info("Campaigns are not available in this installation.", icon="🎯")
            return
        if camps.empty:
            st.info("No saved campaign on this dataset yet: make one on the Campaigns page.", icon="🎯")
            return
        labels = {int(r.id): f"#{int(r.id)} · {r.name} (as of {formatting.date(r.as_of)})"
                  for r in camps.itertuples()}
        campaign_id = st.selectbox("Campaign", list(labels), format_func=labels.get, key="reports_campaign")
        row = camps[camps["id"] == campaign_id].iloc[0]
        default_day = min(max(pd.Timestamp(row["as_of"]).date(), first_day), last_day)
    as_of = st.date_input("Data as of", min_value=first_day, max_value=last_day,
                          key=widgets.state_default(f"reports_as_of_{kind}_{campaign_id}", default_day),
                          help="The report shows the customers and numbers of this day (the last event day by "
                               "default; a campaign: its own as-of day).")
    if st.button("Build the report", type="primary", icon="🛠️", key="reports_build"):
        try:
            frame = cache.explorer_frame(dataset, as_of)
            expected = cache.reports_expected_clv(dataset, as_of) if frame is not None else None
            if frame is None or expected is None:
                widgets.not_ready(dataset, "the customer table with expected values")
            snapshot = build_report(wh, dataset, as_of, segment=segment, campaign_id=campaign_id, frame=frame,
                                    expected=expected)
        except ValueError as exc:
            st.session_state.pop(SNAPSHOT_KEY, None)
            widgets.show_error(widgets.md_escape(exc), "No report")
        else:
            st.session_state[SNAPSHOT_KEY] = snapshot
            st.session_state[BUILT_FOR_KEY] = (dataset, segment, campaign_id, str(as_of))
            st.session_state.pop(LAST_TOKEN_KEY, None)

    snapshot = st.session_state.get(SNAPSHOT_KEY)
    if snapshot is None or snapshot["dataset"] != dataset:
        return
    if st.session_state.get(BUILT_FOR_KEY) != (dataset, segment, campaign_id, str(as_of)):
        # another segment, campaign or day is picked: the report held is not of it, and its download
        # and permalink buttons would share the earlier one under the new choice
        st.info(f"The report built last is “{widgets.md_escape(snapshot['subject']['name'])}” as of "
                f"{formatting.date(snapshot['as_of'])}. Press Build the report for what is picked now.", icon="🛠️")
        return
    file_name = report_render.html_file_name(snapshot)
    c1, c2 = st.columns(2)
    c1.download_button("Download the HTML file", data=report_render.html_download(snapshot), file_name=file_name,
                       mime="text/html", icon="⬇️", on_click="ignore", key="reports_download",
                       help="One self-contained file (charts included) that opens offline in any browser.")
    may_link = widgets.may("report", dataset)
    never = c2.checkbox("The link never expires", value=True, key="reports_never_expires", disabled=not may_link)
    expires = None if never else c2.date_input(
        "The link works through", value=dt.date.today() + dt.timedelta(days=30), min_value=dt.date.today(),
        key="reports_expires")
    if not may_link:
        widgets.needs_role("report")
    elif c2.button("Create a permalink", icon="🔗", key="reports_permalink"):
        try:
            token = create_report(wh, snapshot, expires=expires)
        except (ValueError, access.WarehouseError) as exc:
            widgets.show_error(widgets.md_escape(exc), "No permalink")
        else:
            tokens[report_id(wh, token)] = token
            st.session_state[LAST_TOKEN_KEY] = token
    if st.session_state.get(LAST_TOKEN_KEY):
        _show_link(st.session_state[LAST_TOKEN_KEY])
    st.divider()
    report_render.show_report(snapshot)


def _list_reports(wh, tokens: dict) -> None:
    """The stored reports with their links (those made in this browser tab) and revocation."""
    reports = list_reports(wh)
    if reports.empty:
        st.info("No stored report yet: build one and create a permalink.", icon="📭")
    else:
        view = reports.copy()
        view["link"] = [f"?report={tokens[int(i)]}" if int(i) in tokens else f"{h}… (shown once)"
                        for i, h in zip(view["id"], view["token_hint"])]
        view["as_of"] = [formatting.date(d) if pd.notna(d) else "–" for d in view["as_of"]]
        # the status and the link first after the title: at 1280 pixels the columns past the seventh were
        # cut off ("revokec", "b3vFVv…"); the title already says segment or campaign report
        titles = {"id": "Report", "title": "Title", "status": "Status", "link": "Link", "dataset": "Dataset",
                  "as_of": "Data as of", "created_at": "Created (UTC)", "expires_at": "Expires (UTC)"}
        st.dataframe(view[list(titles)].rename(columns=titles), hide_index=True, width="stretch",
                     column_config={"Created (UTC)": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                                    "Expires (UTC)": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                                    "Report": st.column_config.NumberColumn(width="small"),
                                    "Link": st.column_config.TextColumn(width="medium")})
        active = reports[reports["status"] == "active"]
        if active.empty:
            st.caption("Every report link is revoked.")
        else:
            titles = {int(r.id): f"#{int(r.id)} · {r.title}" for r in active.itertuples()}
            rid = st.selectbox("Report to revoke", list(titles), format_func=titles.get, key="reports_revoke_id")
            if st.button("Revoke its link", icon="🚫", key="reports_revoke"):
                try:
                    revoke_report(wh, report_id=rid, now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
                except (ValueError, access.WarehouseError) as exc:
                    widgets.show_error(widgets.md_escape(exc), "Not revoked")
                else:
                    st.toast(f"Report #{rid} revoked: its link now says so.", icon="🚫")
                    st.rerun()


def main() -> None:
    st.title("📤 Reports")
    st.caption("Share a saved segment or campaign with colleagues: as a self-contained HTML file that opens "
               "offline anywhere, or as a read-only link into this app. A report records the numbers of the day "
               "it is made.")
    dataset, _version, first_day, last_day = widgets.dataset_span_or_stop()
    wh = cache.warehouse()
    tokens: dict[int, str] = st.session_state.setdefault(TOKENS_KEY, {})
    make_tab, list_tab = st.tabs(["📝 Make a report", "📋 Reports"])
    with make_tab:
        _make_report(wh, dataset, first_day, last_day, tokens)
    with list_tab:
        _list_reports(wh, tokens)


main()
