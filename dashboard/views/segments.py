"""Segments: clustering with k guidance, a rule builder, saved segments.

The page lays out widgets and calls analytics.segments (clustering, rules, store);
the customer frame is cached in dashboard.cache. User text (segment and cluster
names, descriptions, filter values) is only ever shown escaped or as plain text.
"""
from __future__ import annotations

import dataclasses
import warnings

import pandas as pd
import streamlit as st

from analytics.segments import rules, store
from analytics.segments.clustering import (
    ALGORITHMS, DEFAULT_FEATURES, SCALINGS, ClusteringWarning, CustomerClustering, available_features,
    feature_label,
    k_guidance, k_guidance_figure, profile_figure, projection_figure,
)
from dashboard import cache, widgets

MODEL_KEY = "seg_model"          # {"key": (dataset, as_of), "model": CustomerClustering, "run_id": int | None}
GUIDE_KEY = "seg_guidance"       # {"key": (...), "guidance": KGuidance}
DELETE_KEY = "seg_delete_pending"
EDITING_KEY = "seg_editing"      # id of the saved segment loaded into the rule builder
EDIT_NOTE_KEY = "seg_edit_note"  # why a saved segment could not (fully) be loaded into the builder
FLASH_KEY = "seg_saved_flash"    # a confirmation shown once after a save and rerun (already escaped)
SCALING_LABELS = {"log1p_standard": "log1p, then standard", "standard": "standard (mean 0, sd 1)",
                  "robust": "robust (median / IQR)"}
ALGO_LABELS = {"kmeans": "k-means", "minibatch_kmeans": "mini-batch k-means", "gmm": "Gaussian mixture"}
MAX_ROWS = 8

@dataclasses.dataclass
class _Page:
    """What every tab of this page works on (read once per run)."""

    wh: object
    dataset: str
    first_day: object
    last_day: object
    as_of: object
    base: pd.DataFrame     # the prepared customer frame (read-only)
    frame: pd.DataFrame    # + the newest saved clustering run's assignment (what rules filter on)
    fields: dict
    latest_run: int | None
    state_key: tuple


def _load() -> _Page:
    dataset, version, first_day, last_day = widgets.dataset_span_or_stop()
    as_of = st.date_input("As of", value=last_day, min_value=first_day, max_value=last_day, key="seg_as_of",
                          help="Customers, features and scores use events up to the end of this day.")
    base = widgets.customer_frame_or_stop(cache.segments_frame, dataset, as_of)
    wh = cache.warehouse()
    # The customer frame rules filter on: the cached frame plus the cluster assignment of the
    # newest saved run for this dataset and as-of date (so cluster segments re-evaluate).
    frame = base
    try:
        latest_run = store.latest_clustering_run(wh, dataset, as_of)
    except ValueError:
        latest_run = None
    if latest_run is not None:
        # a shallow copy (copy-on-write) with two new columns: no copy of the wide cached frame
        assigned = cache.segments_assignments(dataset, latest_run).reindex(base.index)
        frame = base.assign(cluster=assigned["cluster"].to_numpy(), cluster_name=assigned["cluster_name"].to_numpy())
    fields = rules.fields_from_frame(frame)
    st.caption(f"{len(frame):,} customers of “{widgets.md_escape(dataset)}” as of {as_of}"
               + (f" · cluster fields from saved run {latest_run}" if latest_run is not None else ""))
    return _Page(wh, dataset, first_day, last_day, as_of, base, frame, fields, latest_run,
                 (dataset, str(as_of), version))


def _stats_line(stats: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Customers selected", widgets.fmt_int(stats["customers"]))
    c2.metric("Share of customers", widgets.fmt_pct(stats["share"]))
    c3.metric("Net revenue of the selection", widgets.fmt_money(stats["value"]),
              help="Share of all net revenue: " + widgets.fmt_pct(stats["value_share"]))



# ---------------------------------------------------------------- clustering
def _tab_cluster(p: _Page) -> None:
    """Clustering with k guidance: train, inspect, rename, save."""
    wh, dataset, as_of, base, state_key = p.wh, p.dataset, p.as_of, p.base, p.state_key
    options = [f for f in available_features(base) if f in base.columns or f in DEFAULT_FEATURES]
    default = [f for f in DEFAULT_FEATURES if f in options]
    # a default feature missing for every customer (e.g. ratings when nobody reviews) is left out
    all_missing = [f for f in default if f in base.columns and not base[f].notna().any()]
    default = [f for f in default if f not in all_missing]
    if all_missing:
        st.caption("Left out of the default features (missing for every customer): "
                   + ", ".join(feature_label(f) for f in all_missing))
    feats = st.multiselect("Features", options, default=default, key="seg_features", format_func=feature_label,
                           help="Customer attributes to cluster on. Features with no variance are dropped.")
    c1, c2, c3 = st.columns(3)
    scaling = c1.selectbox("Scaling", SCALINGS, key="seg_scaling", format_func=SCALING_LABELS.get)
    algorithm = c2.selectbox("Algorithm", ALGORITHMS, key="seg_algorithm", format_func=ALGO_LABELS.get)
    k = c3.number_input("Number of clusters k", min_value=2, max_value=12, value=6, step=1, key="seg_k")
    params_key = state_key + (tuple(feats), scaling, algorithm)

    if st.button("🧭 Help me choose k (k = 2..12)", key="seg_guide"):
        if not feats:
            st.error("Pick at least one feature.", icon="🚫")
        else:
            bar = st.progress(0.0, text="Fitting k = 2..12…")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    g = k_guidance(base, features=list(feats), scaling=scaling, algorithm=algorithm,
                                   k_values=range(2, 13),
                                   progress=lambda done, total: bar.progress(done / total,
                                                                             text=f"Fitted {done} of {total} values of k"))
                st.session_state[GUIDE_KEY] = {"key": params_key, "guidance": g,
                                               "warnings": [str(w.message) for w in caught
                                                            if issubclass(w.category, ClusteringWarning)]}
            except ValueError as exc:
                st.session_state.pop(GUIDE_KEY, None)
                widgets.show_error(exc, "k guidance failed")
            bar.empty()
    guide = st.session_state.get(GUIDE_KEY)
    if guide and guide["key"] == params_key:
        g = guide["guidance"]
        for w in guide["warnings"]:
            st.warning(w, icon="⚠️")
        st.plotly_chart(k_guidance_figure(g), key="seg_guide_fig")
        st.info(f"Suggested k = {g.suggested_k}: {g.reason}", icon="🧭")

    if st.button("▶️ Train", key="seg_train", type="primary"):
        if not feats:
            st.error("Pick at least one feature.", icon="🚫")
        else:
            with st.status(f"Clustering {len(base):,} customers into {int(k)} clusters…", expanded=False) as status:
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        model = CustomerClustering(features=list(feats), scaling=scaling, algorithm=algorithm,
                                                   n_clusters=int(k), random_state=0).fit(base)
                    st.session_state[MODEL_KEY] = {"key": state_key, "model": model, "run_id": None,
                                                   "warnings": [str(w.message) for w in caught
                                                                if issubclass(w.category, ClusteringWarning)]}
                    status.update(label=f"Trained: {model.n_clusters_} clusters", state="complete")
                except ValueError as exc:
                    st.session_state.pop(MODEL_KEY, None)
                    status.update(label="Training failed", state="error")
                    widgets.show_error(exc, "Clustering failed")

    held = st.session_state.get(MODEL_KEY)
    if held and held["key"] == state_key:
        model = held["model"]
        for w in held.get("warnings", []):
            st.warning(w, icon="⚠️")
        prof = model.cluster_profiles_
        st.subheader(f"{model.n_clusters_} clusters")
        table = pd.DataFrame({
            "cluster": prof.index, "name": prof["name"].astype(str), "customers": prof["size"].astype(int),
            "share": prof["size_share"].astype(float), "revenue share": prof["revenue_share"].astype(float),
        })
        st.dataframe(table, hide_index=True, key="seg_cluster_table", column_config={
            "share": st.column_config.NumberColumn(format="percent"),
            "revenue share": st.column_config.NumberColumn(format="percent"),
        })
        st.plotly_chart(profile_figure(model), key="seg_profile_fig")
        st.plotly_chart(projection_figure(model, base, max_points=20_000), key="seg_projection_fig")

        cluster_names = list(model.names_)
        cl = st.selectbox("Cluster", range(model.n_clusters_), key="seg_cluster_pick",
                          format_func=lambda i, _names=cluster_names: f"{i}: {_names[i]}")
        r1, r2 = st.columns(2)
        with r1:
            new_name = st.text_input("New name for this cluster", key="seg_rename_text", max_chars=200)
            if st.button("✏️ Rename", key="seg_rename"):
                try:
                    model.rename(int(cl), new_name)
                    if held["run_id"] is not None:
                        store.rename_cluster(wh, held["run_id"], int(cl), model.names_[int(cl)])
                    st.rerun()
                except ValueError as exc:
                    widgets.show_error(exc, "Could not rename")
        with r2:
            seg_name = st.text_input("Save this cluster as a segment named", key="seg_cluster_seg_name",
                                     max_chars=200)
            if st.button("💾 Save cluster as segment", key="seg_cluster_save"):
                try:
                    if held["run_id"] is None:
                        held["run_id"] = store.save_clustering_run(wh, model, dataset, as_of)
                    store.save_segment(wh, seg_name, rules.cluster_definition(model.names_[int(cl)]),
                                       f"Cluster {int(cl)} of clustering run {held['run_id']}", dataset=dataset)
                    st.success(f"Saved the segment “{widgets.md_escape(seg_name.strip())}” "
                               f"(clustering run {held['run_id']} saved too).", icon="✅")
                except ValueError as exc:
                    widgets.show_error(exc, "Could not save the segment")
        label = st.text_input("Run label (optional)", key="seg_run_label", max_chars=200)
        if held["run_id"] is not None:
            st.caption(f"Saved as clustering run {held['run_id']}.")
        elif st.button("💾 Save run", key="seg_save_run"):
            try:
                held["run_id"] = store.save_clustering_run(wh, model, dataset, as_of, label=label.strip() or None)
                st.rerun()
            except ValueError as exc:
                widgets.show_error(exc, "Could not save the run")

# ---------------------------------------------------------------- rule builder
def _value_text(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _load_into_builder(seg_id: int, fields: dict, frame: pd.DataFrame) -> None:
    """on_click: put a saved segment's definition into the rule builder's widgets."""
    ss = st.session_state
    ss.pop(EDIT_NOTE_KEY, None)
    try:
        seg = store.get_segment(cache.warehouse(), int(seg_id))
        definition = rules.validate(seg["definition"], fields)
    except ValueError as exc:
        ss[EDIT_NOTE_KEY] = f"This segment cannot be edited on the current data: {exc}"
        return
    conds = definition["conditions"]
    if any("conditions" in c for c in conds):
        ss[EDIT_NOTE_KEY] = ("This segment has nested groups of conditions, which the rule builder cannot show; "
                             "its name and description can still be changed.")
        return
    if not conds or len(conds) > MAX_ROWS:
        ss[EDIT_NOTE_KEY] = (f"The rule builder shows 1 to {MAX_ROWS} conditions; this segment has {len(conds)}; "
                             "its name and description can still be changed.")
        return
    dropped = []
    ss["seg_rule_n"] = len(conds)
    ss["seg_rule_op"] = definition["op"]
    for i, c in enumerate(conds):
        fname, op, value = c["field"], c["operator"], c["value"]
        field = fields[fname]
        ss[f"seg_rule_field_{i}"] = fname
        ss[f"seg_rule_op_{i}_{field.type}"] = op
        if op == "is_null":
            ss[f"seg_rule_null_{i}"] = bool(value)
        elif field.type == "date":
            if op == "between":
                ss[f"seg_rule_d1_{i}"], ss[f"seg_rule_d2_{i}"] = (pd.Timestamp(v).date() for v in value)
            else:
                ss[f"seg_rule_d_{i}"] = pd.Timestamp(value).date()
        elif op == "between":
            ss[f"seg_rule_v1_{i}"], ss[f"seg_rule_v2_{i}"] = (_value_text(v) for v in value)
        elif field.type == "category" and op in ("=", "!=", "in", "not_in") and (
                choices := widgets.category_choices(frame, fname)):
            if op in ("in", "not_in"):
                ss[f"seg_rule_cm_{i}_{fname}"] = [str(v) for v in value if str(v) in choices]
                dropped += [str(v) for v in value if str(v) not in choices]
            elif str(value) in choices:
                ss[f"seg_rule_cs_{i}_{fname}"] = str(value)
            else:
                dropped.append(str(value))
        elif op in ("in", "not_in"):
            ss[f"seg_rule_vl_{i}"] = ", ".join(_value_text(v) for v in value)
        else:
            ss[f"seg_rule_v_{i}"] = _value_text(value)
    ss[EDITING_KEY] = int(seg_id)
    ss["seg_rule_name"] = seg["name"]
    ss["seg_rule_desc"] = seg["description"]
    if dropped:
        ss[EDIT_NOTE_KEY] = ("Values no customer has today were left out of the builder: " + ", ".join(dropped))


def _stop_editing() -> None:
    st.session_state.pop(EDITING_KEY, None)
    st.session_state.pop(EDIT_NOTE_KEY, None)


def _tab_rules(p: _Page) -> None:
    """The rule builder: conditions, live selection, save (or save changes to an edited segment)."""
    wh, dataset, frame, fields, first_day, last_day = p.wh, p.dataset, p.frame, p.fields, p.first_day, p.last_day
    field_names = sorted(fields, key=lambda f: fields[f].title.lower())
    editing = st.session_state.get(EDITING_KEY)
    editing_seg = None
    if editing is not None:
        try:
            editing_seg = store.get_segment(wh, int(editing))
        except ValueError:
            st.session_state.pop(EDITING_KEY, None)
    if editing_seg is not None:
        st.info(f"Editing the saved segment “{widgets.md_escape(editing_seg['name'])}”: change the conditions, "
                "then save the changes below.", icon="📝")
    if st.session_state.get(EDIT_NOTE_KEY):
        st.warning(widgets.md_escape(st.session_state[EDIT_NOTE_KEY]), icon="⚠️")
    n_rows = st.number_input("Conditions", min_value=1, max_value=MAX_ROWS, step=1, key=widgets.state_default("seg_rule_n", 1))
    combine = st.radio("Combine with", ["and", "or"], horizontal=True, key=widgets.state_default("seg_rule_op", "and"),
                       format_func=lambda o: "all conditions (AND)" if o == "and" else "any condition (OR)")
    conditions: list[dict] = []
    default_field = "net_revenue" if "net_revenue" in field_names else field_names[0]
    for i in range(int(n_rows)):
        conditions.append(widgets.rule_condition_row("seg", i, frame, fields, default_field, first_day, last_day))
    definition = {"op": combine, "conditions": conditions}
    valid = None
    blank = widgets.blank_conditions(conditions)
    if blank:
        st.info("Enter a value for condition " + ", ".join(map(str, blank)) + " to see the selection.", icon="✍️")
    try:
        if not blank:
            valid = rules.validate(definition, fields)
            mask = rules.evaluate(valid, frame, fields)
    except ValueError as exc:
        valid = None
        widgets.show_error(exc, "Check the conditions")
    if valid is not None:
        st.caption("Selection: " + widgets.md_escape(rules.describe(valid, fields)))
        stats = rules.selection_stats(frame, mask)
        _stats_line(stats)
        if stats["customers"] == 0:
            st.warning("No customer matches these conditions today. You can still save the segment: "
                       "it is re-evaluated on the current data every time.", icon="📭")
        name = st.text_input("Segment name", key="seg_rule_name", max_chars=200)
        desc = st.text_area("Description", key="seg_rule_desc", max_chars=5000)
        b1, b2, b3 = st.columns(3)
        if editing_seg is not None and b1.button(f"💾 Save changes to “{widgets.md_escape(editing_seg['name'])}”",
                                                 key="seg_edit_def_save", type="primary"):
            try:
                seg = store.update_segment(wh, editing_seg["id"], name=name, description=desc, definition=valid,
                                           fields=fields)
                st.session_state.pop(EDITING_KEY, None)
                st.success(f"Saved the changes to the segment “{widgets.md_escape(seg['name'])}”.", icon="✅")
            except ValueError as exc:
                widgets.show_error(exc, "Could not save the changes")
        if b2.button("💾 Save as a new segment" if editing_seg is not None else "💾 Save segment",
                     key="seg_rule_save", type="secondary" if editing_seg is not None else "primary"):
            try:
                store.save_segment(wh, name, valid, desc, fields=fields, dataset=dataset)
                st.success(f"Saved the segment “{widgets.md_escape(name.strip())}”.", icon="✅")
            except ValueError as exc:
                widgets.show_error(exc, "Could not save the segment")
        if editing_seg is not None:
            b3.button("Stop editing", key="seg_edit_stop", on_click=_stop_editing)

# ---------------------------------------------------------------- saved segments
def _tab_saved(p: _Page) -> None:
    """The saved segments: list with live sizes, edit, delete."""
    wh, dataset, frame, fields = p.wh, p.dataset, p.frame, p.fields
    if st.session_state.get(FLASH_KEY):
        st.success(st.session_state.pop(FLASH_KEY), icon="✅")
    segs = store.list_segments(wh, dataset)
    if segs.empty:
        st.info("No saved segments yet: build one in the Rule builder or save a cluster.", icon="🗂️")
    else:
        rows = []
        for _, s in segs.iterrows():
            try:
                words = rules.describe(s["definition"], fields)
                m = rules.evaluate(s["definition"], frame, fields)
                stt = rules.selection_stats(frame, m)
                size, value, note = stt["customers"], stt["value"], ""
            except ValueError as exc:
                try:
                    words = rules.describe(s["definition"])
                except ValueError:
                    words = "(definition no longer valid)"
                size, value, note = None, None, f"cannot evaluate on current data: {exc}"
            rows.append({"name": s["name"], "description": s["description"], "definition": words,
                         "customers": size, "net revenue": value, "note": note,
                         "created": s["created_at"], "updated": s["updated_at"]})
        listing = pd.DataFrame(rows)
        # st.dataframe shows every cell as plain text (no markup is rendered)
        st.dataframe(listing, hide_index=True, key="seg_saved_table")
        for r in rows:
            st.markdown(f"**{widgets.md_escape(r['name'])}** · "
                        + (f"{r['customers']:,} customers" if r["customers"] is not None else "not evaluated")
                        + f" · {widgets.md_escape(r['definition'])}")
        seg_names = segs["name"].tolist()

        st.markdown("##### Edit a saved segment")
        by_id = {int(r["id"]): r for _, r in segs.iterrows()}
        edit_id = st.selectbox("Segment to edit", list(by_id), key="seg_edit_pick",
                               format_func=lambda i: str(by_id[i]["name"]))
        if edit_id is not None:
            seg = by_id[edit_id]
            # keyed by the segment and its last change, so the fields show the stored text again after a save
            stamp = f"{edit_id}_{pd.Timestamp(seg['updated_at']).value}"
            new_name = st.text_input("Name", value=str(seg["name"]), key=f"seg_edit_name_{stamp}", max_chars=200)
            new_desc = st.text_area("Description", value=str(seg["description"] or ""),
                                    key=f"seg_edit_desc_{stamp}", max_chars=5000)
            e1, e2 = st.columns(2)
            if e1.button("💾 Save name and description", key="seg_edit_save"):
                try:
                    saved_seg = store.update_segment(wh, edit_id, name=new_name, description=new_desc)
                    st.session_state[FLASH_KEY] = f"Saved the segment “{widgets.md_escape(saved_seg['name'])}”."
                    st.rerun()
                except ValueError as exc:
                    widgets.show_error(exc, "Could not save the segment")
            e2.button("📝 Edit the conditions in the Rule builder", key="seg_edit_load",
                      on_click=_load_into_builder, args=(edit_id, fields, frame),
                      help="Loads this segment's conditions into the Rule builder tab; save them there.")
            if st.session_state.get(EDITING_KEY) == edit_id:
                st.caption("Loaded into the Rule builder tab: change the conditions there and save the changes.")

        st.markdown("##### Delete a saved segment")
        target = st.selectbox("Segment to delete", seg_names, key="seg_delete_pick")
        if st.button("🗑️ Delete…", key="seg_delete"):
            st.session_state[DELETE_KEY] = target
        pending = st.session_state.get(DELETE_KEY)
        if pending is not None and pending in seg_names:
            st.warning(f"Delete the segment “{widgets.md_escape(pending)}”? This cannot be undone.", icon="⚠️")
            y, n = st.columns(2)
            if y.button("Yes, delete", key="seg_delete_yes", type="primary"):
                try:
                    store.delete_segment(wh, pending)
                except ValueError as exc:
                    widgets.show_error(exc, "Could not delete")
                st.session_state.pop(DELETE_KEY, None)
                st.rerun()
            if n.button("Cancel", key="seg_delete_no"):
                st.session_state.pop(DELETE_KEY, None)
                st.rerun()


def main() -> None:
    st.title("🧩 Segments")
    p = _load()
    tab_cluster, tab_rules, tab_saved = st.tabs(["Clustering", "Rule builder", "Saved segments"])
    with tab_cluster:
        _tab_cluster(p)
    with tab_rules:
        _tab_rules(p)
    with tab_saved:
        _tab_saved(p)


main()
