"""Admin: people and their roles, per-dataset grants, every report link, the audit trail."""
from __future__ import annotations

import streamlit as st

from analytics import access
from analytics.reports import store as reports
from analytics.reports.snapshot import ReportError
from dashboard import cache, widgets

wh = cache.warehouse()
st.title("🛡️ Admin")
if not access.may(wh, "manage_people"):
    st.error("This page is for admins.", icon="🚫")
    st.stop()

people_tab, grants_tab, links_tab, audit_tab = st.tabs(["People", "Dataset grants", "Report links", "Audit trail"])


#: the tables' columns in words, in the order a 1280-pixel page shows first (the machine names such as
#: actor_kind and token_hint were shown, and who made a report link sat beyond the right edge)
PEOPLE_COLUMNS = {"id": "Person", "name": "Name", "role": "Role", "datasets": "Datasets", "source": "Role from",
                  "last_seen": "Last seen (UTC)", "added_by": "Added by", "added_at": "Added (UTC)"}
LINK_COLUMNS = {"id": "Report", "title": "Title", "status": "Status", "created_by": "Made by", "dataset": "Dataset",
                "as_of": "Data as of", "created_at": "Made (UTC)", "expires_at": "Expires (UTC)",
                "revoked_at": "Revoked (UTC)", "raw_ids": "Raw ids for viewers", "token_hint": "Link starts"}
AUDIT_COLUMNS = {"at": "When (UTC)", "actor": "Who", "role": "Role", "action": "Action", "outcome": "Outcome",
                 "dataset": "Dataset", "target": "On", "n_rows": "Rows", "detail": "Detail",
                 "actor_kind": "Kind of actor", "id": "Entry"}
WHEN = "D MMM YYYY, HH:mm"


def _table(frame, columns: dict, key: str) -> None:
    """``frame`` with its columns titled and ordered by ``columns`` (others after them, as they are)."""
    order = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    config = {}
    for c in order:
        title = columns.get(c, c)
        if c in ("added_at", "last_seen", "created_at", "expires_at", "revoked_at", "at"):
            config[c] = st.column_config.DatetimeColumn(title, format=WHEN)
        elif c == "as_of":
            config[c] = st.column_config.DateColumn(title, format="D MMM YYYY")
        else:
            config[c] = st.column_config.Column(title)
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_order=order, column_config=config)


def _run(fn, *args, done: str) -> None:
    try:
        fn(*args)
    except (access.WarehouseError, ReportError) as exc:  # refused, the last admin, an unknown report...
        st.session_state["_admin_msg"] = ("error", str(exc))
    else:
        st.session_state["_admin_msg"] = ("success", done)
    st.rerun()


msg = st.session_state.pop("_admin_msg", None)
if msg:
    (st.error if msg[0] == "error" else st.success)(widgets.md_escape(msg[1]))

with people_tab:
    table = access.people(wh)
    _table(table, PEOPLE_COLUMNS, "admin_people")
    st.caption("Admins listed under `admins` in the [valuescope] section of the secrets file are admins at every "
               "sign-in; a role from the group claim follows the groups the identity provider sends.")
    with st.form("admin_person", border=True):
        c1, c2 = st.columns([3, 1])
        person = c1.text_input("Email (or subject) of the person", key="admin_person_id")
        role = c2.selectbox("Role", list(access.ROLES), index=0, key="admin_person_role")
        if st.form_submit_button("Add or change role", icon="👤"):
            if person.strip():
                _run(access.set_person, wh, person.strip(), role, done=f"{person.strip()} is now {role}")
            else:  # the press did nothing and said nothing
                st.error("Type the person's email (or the subject their identity provider sends) first.",
                         icon="✍️")
    if len(table):
        c1, c2 = st.columns([3, 1])
        who = c1.selectbox("Remove a person", list(table["id"]), index=None, key="admin_remove_who")
        if c2.button("Remove", key="admin_remove", icon="🗑️", disabled=who is None):
            _run(access.remove_person, wh, who, done=f"{who} was removed")

with grants_tab:
    ids = list(access.people(wh)["id"])
    names = [access.ALL_DATASETS] + wh.datasets()
    c1, c2 = st.columns(2)
    who = c1.selectbox("Person", ids, index=None, key="admin_grant_who")
    dataset = c2.selectbox("Dataset (* = every dataset)", names, index=None, key="admin_grant_dataset")
    b1, b2 = st.columns(2)
    if b1.button("Grant", key="admin_grant", icon="✅", disabled=not (who and dataset)):
        _run(access.grant, wh, who, dataset, done=f"{who} may now see {dataset}")
    if b2.button("Take away", key="admin_revoke_grant", icon="⛔", disabled=not (who and dataset)):
        _run(access.revoke_grant, wh, who, dataset, done=f"{who} no longer sees {dataset}")
    st.caption("Admins see every dataset. A person who loads a new dataset may see it.")

with links_tab:
    links = reports.list_reports(wh)
    _table(links.drop(columns=["kind", "subject"]), LINK_COLUMNS, "admin_links")
    active = links[links["status"] == "active"]
    if len(active):
        labels = {int(r.id): f"#{int(r.id)} {r.title} ({r.dataset}, by {r.created_by or 'local'})"
                  for r in active.itertuples()}
        rid = st.selectbox("Report link", list(labels), format_func=labels.get, index=None, key="admin_link")
        c1, c2 = st.columns(2)
        if c1.button("Revoke the link", key="admin_link_revoke", icon="🚫", disabled=rid is None):
            _run(lambda i: reports.revoke_report(wh, report_id=i), rid, done=f"report link #{rid} revoked")
        if c2.button("Let viewers see raw customer ids in it", key="admin_link_raw", disabled=rid is None):
            _run(reports.allow_raw_ids, wh, rid, done=f"viewers now see raw ids in report #{rid}")
    else:
        st.info("No active report links.", icon="🔗")

with audit_tab:
    trail = access.audit_trail(wh, limit=500)
    _table(trail, AUDIT_COLUMNS, "admin_audit")
    st.caption("The latest 500 entries. The trail cannot be edited from the app; the download has all of it "
               "(and is itself recorded).")
    st.download_button("Download the audit trail (CSV)", data=access.bound(lambda: access.export_audit(wh)),
                       file_name="valuescope_audit.csv", mime="text/csv", on_click="ignore", icon="⬇️",
                       key="admin_audit_download")
