"""Segments: clustering with k guidance, a rule builder, saved segments.

The page lays out widgets and calls analytics.segments (clustering, rules, store);
the customer frame is cached in dashboard.cache. User text (segment and cluster
names, descriptions, filter values) is only ever shown escaped or as plain text.

The rule builder edits a tree of groups (AND / OR, nested up to three levels) and
conditions kept in the session state (:data:`TREE_KEY`); every condition's widgets are
keyed by its node id (``seg_rule_field_{id}``...), so the tree can be rebuilt from a saved
definition by setting those keys. Conditions on what customers did (bought a product or
a category, events in the last N days) and on their attributes (country, columns kept at
load) are answered from the events by ``analytics.segments.activity.EventSource``.
"""
from __future__ import annotations

import dataclasses
import warnings

import pandas as pd
import streamlit as st

from analytics import formatting as fmt
from analytics.glossary import term
from analytics.segments import rules, store
from analytics.segments.clustering import (
    ALGORITHMS, DEFAULT_FEATURES, SCALINGS, ClusteringWarning, CustomerClustering, available_features,
    feature_label,
    k_guidance, k_guidance_figure, profile_figure, projection_figure,
)
from dashboard import cache, review_widgets, widgets

MODEL_KEY = "seg_model"          # {"key": (dataset, as_of), "model": CustomerClustering, "run_id": int | None}
FEATURES_FOR_KEY = "_seg_features_for"  # the dataset whose customers the chosen features are for
GUIDE_KEY = "seg_guidance"       # {"key": (...), "guidance": KGuidance}
K_NEXT_KEY = "_seg_k_next"       # the suggested k, put into the k field on the next run
DELETE_KEY = "seg_delete_pending"
EDITING_KEY = "seg_editing"      # id of the saved segment loaded into the rule builder
EDIT_NOTE_KEY = "seg_edit_note"  # why a saved segment could not (fully) be loaded into the builder
FLASH_KEY = "seg_saved_flash"    # a confirmation shown once after a save and rerun (already escaped)
TREE_KEY = "seg_tree"            # {"nodes": {id: {"kind": "group"|"cond", "children": [...]}}, "next": int}
ROOT = "g"
SCALING_LABELS = {"log1p_standard": "log1p, then standard", "standard": "standard (mean 0, sd 1)",
                  "robust": "robust (median / IQR)"}
ALGO_LABELS = {"kmeans": "k-means", "minibatch_kmeans": "mini-batch k-means", "gmm": "Gaussian mixture"}
#: conditions and group depth the builder shows
MAX_ROWS = 20
MAX_DEPTH = 3
SCOPES = ("dataset", "all")
SCOPE_LABELS = {"dataset": "This dataset only", "all": "All datasets"}
BOUGHT_OP_LABELS = {"in": "bought any of", "not_in": "bought none of"}
EVENT_LABELS = {"view": "views", "search": "searches", "cart": "cart adds", "purchase": "purchases",
                "return": "returns", "review": "reviews"}
#: fields on a 0-1 scale (the value hint says so)
UNIT_FIELDS = {"p_alive", "probability_alive", "churn_risk", "churn_probability", "return_rate"}


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
    source: object = None  # analytics.segments.activity.EventSource (activity and attribute conditions)
    currency: object = None

    def title(self, name: str) -> str:
        f = self.fields.get(name)
        if f is not None and f.label:
            return f.label
        return fmt.column_title(name)

    def help(self, name: str) -> str | None:
        f = self.fields.get(name)
        return (f.help if f is not None else None) or fmt.column_help(name)


def _load() -> _Page:
    dataset, version, first_day, last_day = widgets.dataset_span_or_stop()
    as_of = st.date_input("As of", min_value=first_day, max_value=last_day, key=widgets.state_default("seg_as_of", last_day),
                          help="Customers, features and scores use events up to the end of this day.")
    value_note = None
    try:
        base = cache.segments_value_frame(dataset, as_of)
    except ValueError as exc:  # the value models cannot be fitted: the builder works without their fields
        value_note = str(exc)
        base = widgets.customer_frame_or_stop(cache.segments_frame, dataset, as_of)
    else:
        if base is None:
            widgets.not_ready(dataset, "the customer table")
        if base.empty:
            st.warning(f"No customers up to {fmt.date(as_of)}. Pick a later as-of date.", icon="📭")
            st.stop()
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
    source = None
    if cache.attached(dataset) is None:  # a summary attached from Spark has no events to ask
        source = cache.event_source(dataset, as_of)
    fields = rules.fields_for(frame, source)
    st.caption(f"{len(frame):,} customers of “{widgets.md_escape(dataset)}” as of {fmt.date(as_of)}"
               + (f" · cluster fields from saved run {latest_run}" if latest_run is not None else ""))
    if value_note:
        st.caption("Predicted value, churn risk and P(alive) cannot be used as conditions on these data: "
                   + widgets.md_escape(value_note))
    return _Page(wh, dataset, first_day, last_day, as_of, base, frame, fields, latest_run,
                 (dataset, str(as_of), version), source, widgets.dataset_currency(dataset))


def _stats_line(p: _Page, stats: dict, mask) -> None:
    cols = st.columns(4 if "expected_clv" in p.frame.columns else 3)
    cols[0].metric("Customers selected", fmt.integer(stats["customers"]))
    cols[1].metric("Share of customers", fmt.percent(stats["share"]))
    # short labels: the four cards share the page's width (a longer label was cut at 1280 pixels)
    cols[2].metric("Net revenue", fmt.money(stats["value"], p.currency, compact=True),
                   help="What the selected customers spent so far, refunds taken off; share of all net revenue: "
                   + fmt.percent(stats["value_share"]))
    if len(cols) > 3:
        ev = rules.selection_stats(p.frame, mask, "expected_clv")
        cols[3].metric("Expected value", fmt.money(ev["value"], p.currency, compact=True),
                       help=f"Summed over the selected customers. {fmt.column_help('expected_clv')} "
                       "Share of all customers' expected value: "
                       f"{fmt.percent(ev['value_share'])}.")


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
    if st.session_state.get(FEATURES_FOR_KEY) != p.dataset or "seg_features" not in st.session_state:
        # another dataset's choice (kept by the widget across a switch of datasets) may name features
        # these customers lack: start from this dataset's defaults; so does a visit after another
        # page (Streamlit drops the state of a widget a run does not draw)
        st.session_state[FEATURES_FOR_KEY] = p.dataset
        st.session_state["seg_features"] = default
    feats = st.multiselect("Features", options, key="seg_features", format_func=feature_label,
                           help="Customer attributes to cluster on. Features with no variance are dropped.")
    c1, c2, c3 = st.columns(3)
    scaling = c1.selectbox("Scaling", SCALINGS, key="seg_scaling", format_func=SCALING_LABELS.get)
    algorithm = c2.selectbox("Algorithm", ALGORITHMS, key="seg_algorithm", format_func=ALGO_LABELS.get)
    if K_NEXT_KEY in st.session_state:  # the suggested k, put into the field before it is drawn
        st.session_state["seg_k"] = st.session_state.pop(K_NEXT_KEY)
    k = c3.number_input("Number of clusters k", min_value=2, max_value=12, step=1,
                        key=widgets.state_default("seg_k", 6),
                        help="How many groups to split the customers into. 'Help me choose k' puts its suggestion "
                        "here; you can still change it.")
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
                bar.empty()
                widgets.show_error(exc, "k guidance failed")
            else:
                bar.empty()
                st.session_state[K_NEXT_KEY] = int(g.suggested_k)
                st.rerun()
    guide = st.session_state.get(GUIDE_KEY)
    if guide and guide["key"] == params_key:
        g = guide["guidance"]
        for w in guide["warnings"]:
            st.warning(w, icon="⚠️")
        st.plotly_chart(k_guidance_figure(g), key="seg_guide_fig")
        st.info(f"Suggested k = {g.suggested_k}: {g.reason} It is in the k field above; change it if you like, "
                "then Train.", icon="🧭")
        has_bic = "bic" in g.table and g.table["bic"].notna().any()  # the suggestion may lean on it
        words = [term("inertia"), term("silhouette")] + ([term("bic")] if has_bic else [])
        st.caption(widgets.md_escape(" ".join(words)))

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
                    failed = exc
                else:
                    failed = None
            if failed is not None:  # under the status box: inside it, it is folded away
                widgets.show_error(failed, "Clustering failed")

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
        widgets.table(table, "seg_cluster_table", p.currency,
                      kinds={"cluster": "count", "share": "percent", "revenue share": "percent"},
                      titles={"cluster": "Cluster number", "name": "Name", "customers": "Customers",
                              "share": "Share of customers", "revenue share": "Share of net revenue"})
        st.plotly_chart(profile_figure(model, currency=p.currency), key="seg_profile_fig")
        st.plotly_chart(projection_figure(model, base, max_points=20_000), key="seg_projection_fig")

        if not (widgets.may("model", dataset) and widgets.may("segment", dataset)):
            # renaming, saving a cluster as a segment and saving the run write to the warehouse
            widgets.needs_role("segment")
            return
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


def _tree() -> dict:
    ss = st.session_state
    if TREE_KEY not in ss:
        ss[TREE_KEY] = {"nodes": {ROOT: {"kind": "group", "children": ["0"]}, "0": {"kind": "cond"}}, "next": 1}
    return ss[TREE_KEY]


def _n_conditions(tree: dict) -> int:
    return sum(1 for n in tree["nodes"].values() if n["kind"] == "cond")


def _add(group_id: str, kind: str) -> None:
    """on_click: a new condition, or a new group holding one condition, at the end of ``group_id``."""
    t = _tree()

    def new(node: dict) -> str:
        nid = str(t["next"])
        t["next"] += 1
        t["nodes"][nid] = node
        return nid

    if kind == "group":
        gid = new({"kind": "group", "children": []})
        t["nodes"][gid]["children"].append(new({"kind": "cond"}))
        t["nodes"][group_id]["children"].append(gid)
    else:
        t["nodes"][group_id]["children"].append(new({"kind": "cond"}))


def _remove(node_id: str) -> None:
    """on_click: remove a condition or a group (with everything in it)."""
    t = _tree()
    for n in t["nodes"].values():
        if n["kind"] == "group" and node_id in n["children"]:
            n["children"].remove(node_id)
    stack = [node_id]
    while stack:
        nid = stack.pop()
        node = t["nodes"].pop(nid, None)
        if node and node["kind"] == "group":
            stack += node["children"]


def _choices(p: _Page, name: str) -> list[str] | None:
    """The values a category field can take (None when absent or too many to list)."""
    if name in p.frame.columns:
        return widgets.category_choices(p.frame, name)
    f = p.fields.get(name)
    if p.source is not None and f is not None and f.kind in ("attribute", "activity") and f.type == "category":
        try:
            return p.source.values(name)
        except (ValueError, KeyError):
            return None
    return None


def _value_widget(p: _Page, cid: str, name: str, field, op: str):
    k = "seg_rule"
    if op == "is_null":
        return st.checkbox("missing (untick: present)", key=widgets.state_default(f"{k}_null_{cid}", True))
    if field.type == "date":
        if op == "between":
            return [str(d) for d in (st.date_input("From", key=widgets.state_default(f"{k}_d1_{cid}", p.first_day)),
                                     st.date_input("To", key=widgets.state_default(f"{k}_d2_{cid}", p.last_day)))]
        return str(st.date_input("Date", key=widgets.state_default(f"{k}_d_{cid}", p.last_day)))
    if op == "between":
        a, b = st.columns(2)
        return [a.text_input("From", key=f"{k}_v1_{cid}"), b.text_input("To", key=f"{k}_v2_{cid}")]
    if field.type in ("category", "text") and op in ("=", "!=", "in", "not_in") and (choices := _choices(p, name)):
        if op in ("in", "not_in"):
            return st.multiselect("Values", choices, key=f"{k}_cm_{cid}_{name}")
        return st.selectbox("Value", choices, key=f"{k}_cs_{cid}_{name}")
    if op in ("in", "not_in"):
        raw = st.text_input("Values (comma-separated)", key=f"{k}_vl_{cid}")
        return [v.strip() for v in raw.split(",") if v.strip()]
    if name in UNIT_FIELDS:
        hint = "e.g. 70 % (or 0.7)"
    elif field.type == "numeric":
        hint = "a number, e.g. 500"
    else:
        hint = "text"
    return st.text_input("Value", key=f"{k}_v_{cid}", placeholder=hint)


def _percent_value(value):
    """A 0-1 field's value typed as a percentage (``70 %``) as the fraction the rule compares (0.7)."""
    if isinstance(value, list):
        return [_percent_value(v) for v in value]
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1].strip().replace(",", "")) / 100.0
        except ValueError:
            return value
    return value


def _condition_row(p: _Page, cid: str, names: list[str], default_field: str) -> dict:
    """One condition: field, operator, value, and for activity fields the event type and the window."""
    k = "seg_rule"
    ss = st.session_state
    if ss.get(f"{k}_field_{cid}") not in p.fields:
        ss[f"{k}_field_{cid}"] = default_field
    c1, c2, c3, c4 = st.columns([2, 1.4, 2.6, 0.5], vertical_alignment="bottom")
    name = c1.selectbox("Field", names, key=f"{k}_field_{cid}", format_func=p.title)
    field = p.fields[name]
    activity = field.kind == "activity"
    labels = BOUGHT_OP_LABELS if name in ("bought_product", "bought_category") else widgets.RULE_OP_LABELS
    op = c2.selectbox("Operator", field.operators, key=f"{k}_op_{cid}_{name if activity else field.type}",
                      format_func=lambda o: labels.get(o, o))
    cond: dict = {"field": name, "operator": op}
    with c3:
        if name == "event_count":
            types = (p.source.info()["event_types"] if p.source is not None else []) or ["purchase"]
            cond["event"] = st.selectbox("Event type", types, key=f"{k}_ev_{cid}",
                                         format_func=lambda t: EVENT_LABELS.get(t, t))
        cond["value"] = _percent_value(_value_widget(p, cid, name, field, op)) if name in UNIT_FIELDS else \
            _value_widget(p, cid, name, field, op)
        if "days" in field.params:
            w1, w2 = st.columns(2)
            when = w1.selectbox("When", ["ever", "last"], key=widgets.state_default(f"{k}_when_{cid}", "ever"),
                                format_func=lambda w: "ever" if w == "ever" else "in the last … days")
            if when == "last":
                cond["days"] = int(w2.number_input("Days", min_value=1, max_value=rules.MAX_DAYS, step=1,
                                                   key=widgets.state_default(f"{k}_days_{cid}", 30)))
    c4.button("✖", key=f"seg_del_{cid}", on_click=_remove, args=(cid,), help="Remove this condition")
    help_text = p.help(name)
    if help_text:
        st.caption(widgets.md_escape(help_text))
    return cond


def _group(p: _Page, gid: str, depth: int, names: list[str], default_field: str) -> dict:
    """A group's combine choice, its conditions and groups (drawn in a box), and its add/remove buttons."""
    t = _tree()
    node = t["nodes"][gid]
    op_key = "seg_rule_op" if gid == ROOT else f"seg_grp_op_{gid}"
    op = st.radio("Combine with" if gid == ROOT else "Inside this group", ["and", "or"], horizontal=True,
                  key=widgets.state_default(op_key, "and"),
                  format_func=lambda o: "all conditions (AND)" if o == "and" else "any condition (OR)")
    items = []
    for child in list(node["children"]):
        if t["nodes"][child]["kind"] == "cond":
            items.append(_condition_row(p, child, names, default_field))
        else:
            with st.container(border=True):
                items.append(_group(p, child, depth + 1, names, default_field))
    full = _n_conditions(t) >= MAX_ROWS
    b1, b2, b3 = st.columns([1, 1.4, 1.6])
    b1.button("➕ Condition", key=f"seg_add_c_{gid}", on_click=_add, args=(gid, "cond"), disabled=full)
    if depth < MAX_DEPTH:
        b2.button("➕ Group of conditions", key=f"seg_add_g_{gid}", on_click=_add, args=(gid, "group"),
                  disabled=full, help="A group inside this one, combined with its own AND / OR: e.g. "
                  "“net revenue ≥ 500 AND (bought from Books OR 3+ views in the last 7 days)”.")
    if gid != ROOT:
        b3.button("Remove this group", key=f"seg_del_{gid}", on_click=_remove, args=(gid,))
    return {"op": op, "conditions": items}


def _blank(definition: dict) -> int:
    """The number of conditions still waiting for a value."""
    return sum(1 for c in rules.iter_conditions(definition)
               if c["value"] == "" or c["value"] == [] or (isinstance(c["value"], list) and "" in c["value"]))


def _set_condition_keys(p: _Page, cid: str, c: dict, dropped: list[str]) -> None:
    ss = st.session_state
    k = "seg_rule"
    name, op, value = c["field"], c["operator"], c["value"]
    field = p.fields[name]
    ss[f"{k}_field_{cid}"] = name
    ss[f"{k}_op_{cid}_{name if field.kind == 'activity' else field.type}"] = op
    if "event" in c:
        ss[f"{k}_ev_{cid}"] = c["event"]
    if "days" in field.params:
        ss[f"{k}_when_{cid}"] = "ever" if c.get("days") is None else "last"
        if c.get("days") is not None:
            ss[f"{k}_days_{cid}"] = int(c["days"])
    if op == "is_null":
        ss[f"{k}_null_{cid}"] = bool(value)
    elif field.type == "date":
        if op == "between":
            ss[f"{k}_d1_{cid}"], ss[f"{k}_d2_{cid}"] = (pd.Timestamp(v).date() for v in value)
        else:
            ss[f"{k}_d_{cid}"] = pd.Timestamp(value).date()
    elif op == "between":
        ss[f"{k}_v1_{cid}"], ss[f"{k}_v2_{cid}"] = (_value_text(v) for v in value)
    elif field.type in ("category", "text") and op in ("=", "!=", "in", "not_in") and (choices := _choices(p, name)):
        if op in ("in", "not_in"):
            ss[f"{k}_cm_{cid}_{name}"] = [str(v) for v in value if str(v) in choices]
            dropped += [str(v) for v in value if str(v) not in choices]
        elif str(value) in choices:
            ss[f"{k}_cs_{cid}_{name}"] = str(value)
        else:
            dropped.append(str(value))
    elif op in ("in", "not_in"):
        ss[f"{k}_vl_{cid}"] = ", ".join(_value_text(v) for v in value)
    else:
        ss[f"{k}_v_{cid}"] = _value_text(value)


def _load_into_builder(seg_id: int, p: _Page) -> None:
    """on_click: put a saved segment's definition (nested groups included) into the rule builder."""
    ss = st.session_state
    ss.pop(EDIT_NOTE_KEY, None)
    try:
        seg = store.get_segment(cache.warehouse(), int(seg_id))
        definition = rules.validate(seg["definition"], p.fields)
    except ValueError as exc:
        ss[EDIT_NOTE_KEY] = f"This segment cannot be edited on the current data: {exc}"
        return

    def depth(g) -> int:
        return 1 + max([depth(c) for c in g["conditions"] if "conditions" in c] or [0])

    n = sum(1 for _ in rules.iter_conditions(definition))
    if depth(definition) > MAX_DEPTH or n > MAX_ROWS:
        ss[EDIT_NOTE_KEY] = (f"The rule builder shows up to {MAX_ROWS} conditions in groups nested {MAX_DEPTH} "
                             "levels deep; this segment has more. Its name and description can still be changed.")
        return
    for key in [k for k in ss if str(k).startswith(("seg_rule_", "seg_grp_op_")) and k not in (
            "seg_rule_name", "seg_rule_desc")]:
        del ss[key]
    nodes: dict = {}
    counter = [0]
    dropped: list[str] = []

    def build(g, gid: str) -> None:
        nodes[gid] = {"kind": "group", "children": []}
        ss["seg_rule_op" if gid == ROOT else f"seg_grp_op_{gid}"] = g["op"]
        for c in g["conditions"]:
            nid = str(counter[0])
            counter[0] += 1
            nodes[gid]["children"].append(nid)
            if "conditions" in c:
                build(c, nid)
            else:
                nodes[nid] = {"kind": "cond"}
                _set_condition_keys(p, nid, c, dropped)

    build(definition, ROOT)
    ss[TREE_KEY] = {"nodes": nodes, "next": counter[0]}
    ss[EDITING_KEY] = int(seg_id)
    ss["seg_rule_name"] = seg["name"]
    ss["seg_rule_desc"] = seg["description"]
    ss["seg_rule_scope"] = "all" if seg["dataset"] is None else "dataset"
    if dropped:
        ss[EDIT_NOTE_KEY] = ("Values no customer has today were left out of the builder: " + ", ".join(dropped))


def _stop_editing() -> None:
    st.session_state.pop(EDITING_KEY, None)
    st.session_state.pop(EDIT_NOTE_KEY, None)


def _tab_rules(p: _Page) -> None:
    """The rule builder: nested groups of conditions, live selection, save (or save changes)."""
    wh, dataset, frame, fields = p.wh, p.dataset, p.frame, p.fields
    names = sorted(fields, key=lambda f: p.title(f).lower())
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
    st.caption("Conditions on the customer table, on what customers did (bought a product or a category, events "
               "in the last N days) and on who they are (country and the columns kept at load).")
    default_field = "net_revenue" if "net_revenue" in names else names[0]
    definition = _group(p, ROOT, 1, names, default_field)
    valid = mask = None
    blank = _blank(definition)
    if blank:
        st.info(f"Enter a value for {'the condition' if blank == 1 else f'{blank} conditions'} still empty to see "
                "the selection.", icon="✍️")
    else:
        try:
            valid = rules.validate(definition, fields)
            mask = rules.evaluate(valid, frame, fields, source=p.source)
        except ValueError as exc:
            valid = None
            widgets.show_error(widgets.md_escape(exc), "Check the conditions")
    if valid is None:
        return
    st.caption("Selection: " + widgets.md_escape(rules.describe(valid, fields)))
    stats = rules.selection_stats(frame, mask)
    _stats_line(p, stats, mask)
    if stats["customers"] == 0:
        st.warning("No customer matches these conditions today. You can still save the segment: "
                   "it is re-evaluated on the current data every time.", icon="📭")
    if not widgets.may("segment", dataset):
        widgets.needs_role("segment")
        return
    name = st.text_input("Segment name", key="seg_rule_name", max_chars=200)
    desc = st.text_area("Description", key="seg_rule_desc", max_chars=5000)
    scope = st.radio("Who uses this segment", SCOPES, horizontal=True, key=widgets.state_default("seg_rule_scope",
                                                                                                 "dataset"),
                     format_func=lambda sc: (f"This dataset only (“{dataset}”)" if sc == "dataset"
                                             else SCOPE_LABELS[sc]),
                     help="A segment belongs to this dataset unless it is shared with all datasets; a shared one "
                     "counts the customers of whichever dataset it is used on.")
    target = dataset if scope == "dataset" else None
    b1, b2, b3 = st.columns(3)
    if editing_seg is not None and b1.button(f"💾 Save changes to “{widgets.md_escape(editing_seg['name'])}”",
                                             key="seg_edit_def_save", type="primary"):
        try:
            seg = store.update_segment(wh, editing_seg["id"], name=name, description=desc, definition=valid,
                                       fields=fields, dataset=target)
            st.session_state.pop(EDITING_KEY, None)
            st.success(f"Saved the changes to the segment “{widgets.md_escape(seg['name'])}”.", icon="✅")
        except ValueError as exc:
            widgets.show_error(exc, "Could not save the changes")
    if b2.button("💾 Save as a new segment" if editing_seg is not None else "💾 Save segment",
                 key="seg_rule_save", type="secondary" if editing_seg is not None else "primary"):
        try:
            store.save_segment(wh, name, valid, desc, fields=fields, dataset=target)
            where = f"for “{widgets.md_escape(dataset)}”" if target else "for all datasets"
            st.success(f"Saved the segment “{widgets.md_escape(name.strip())}” {where}.", icon="✅")
        except ValueError as exc:
            widgets.show_error(exc, "Could not save the segment")
    if editing_seg is not None:
        b3.button("Stop editing", key="seg_edit_stop", on_click=_stop_editing)

# ---------------------------------------------------------------- saved segments
def _gone_clusters_note(definition: dict, frame: pd.DataFrame, latest_run: int | None) -> str:
    """Why a segment on clusters selects nobody, when its clusters are not in the run it is counted on
    (a newer clustering run, or none saved for this day): '' otherwise."""
    names = rules.cluster_names_in(definition)
    if not names:
        return ""
    if latest_run is None or "cluster_name" not in frame.columns:
        return "no clustering run is saved for this as-of day: save one on the Clustering tab"
    present = set(frame["cluster_name"].dropna().astype(str))
    gone = [n for n in names if n not in present]
    if not gone:
        return ""
    return (f"clustering run {latest_run}, the one counted on, has no cluster named "
            + ", ".join(f"“{n}”" for n in gone) + ": edit the conditions or save the cluster again")


def _tab_saved(p: _Page) -> None:
    """The saved segments this dataset sees (its own and the shared ones): live sizes, edit, delete."""
    wh, dataset, frame, fields = p.wh, p.dataset, p.frame, p.fields
    if st.session_state.get(FLASH_KEY):
        st.success(st.session_state.pop(FLASH_KEY), icon="✅")
    segs = store.list_segments(wh, dataset)
    if segs.empty:
        st.info("No saved segments yet: build one in the Rule builder or save a cluster.", icon="🗂️")
    else:
        st.caption(f"The segments of “{widgets.md_escape(dataset)}” and those shared by all datasets, counted on "
                   f"the customers of “{widgets.md_escape(dataset)}” as of {fmt.date(p.as_of)}.")
        rows = []
        for _, s in segs.iterrows():
            try:
                words = rules.describe(s["definition"], fields)
                m = rules.evaluate(s["definition"], frame, fields, source=p.source)
                stt = rules.selection_stats(frame, m)
                ev = rules.selection_stats(frame, m, "expected_clv")
                size, value, expected, note = stt["customers"], stt["value"], ev["value"], ""
                note = _gone_clusters_note(s["definition"], frame, p.latest_run) if size == 0 else ""
            except ValueError as exc:
                try:
                    words = rules.describe(s["definition"])
                except ValueError:
                    words = "(definition no longer valid)"
                size, value, expected, note = None, None, None, f"cannot be counted on these data: {exc}"
            rows.append({"name": s["name"], "description": s["description"], "definition": words,
                         "scope": "This dataset" if s["dataset"] is not None else store.ALL_DATASETS,
                         "customers": size, "net_revenue": value, "expected_clv": expected, "note": note,
                         "created": s["created_at"], "updated": s["updated_at"]})
        listing = pd.DataFrame(rows)
        listing["note"] = listing["note"].replace("", None)
        kinds = {"customers": "count", "created": "date", "updated": "date"}
        counted = listing["customers"].notna()
        if not counted.all():  # a segment not counted on these data: its cells say so, not "None"
            shows = {"customers": fmt.integer, "net_revenue": lambda v: fmt.money(v, p.currency),
                     "expected_clv": lambda v: fmt.money(v, p.currency)}
            for col, show in shows.items():
                if listing[col].notna().any() or col == "customers":
                    listing[col] = [show(v) if c else "not counted" for v, c in zip(listing[col], counted)]
                    kinds[col] = "text"
        # st.dataframe shows every cell as plain text (no markup is rendered)
        widgets.table(listing, "seg_saved_table", p.currency, kinds=kinds,
                      titles={"name": "Name", "description": "Description", "definition": "Conditions",
                              "scope": "Used by", "net_revenue": "Net revenue", "expected_clv": "Expected value",
                              "note": "Note", "created": "Created", "updated": "Changed"})
        for r in rows:
            st.markdown(f"**{widgets.md_escape(r['name'])}** · "
                        + (f"{r['customers']:,} customers" if r["customers"] is not None
                           else "not counted: " + widgets.md_escape(r["note"]))
                        + (f" ({widgets.md_escape(r['note'])})" if r["customers"] is not None and r["note"] else "")
                        + f" · {widgets.md_escape(r['definition'])}"
                        + (" · shared by all datasets" if r["scope"] == store.ALL_DATASETS else ""))
        seg_names = segs["name"].tolist()
        if not widgets.may("segment", dataset):
            widgets.needs_role("segment")
            return

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
                      on_click=_load_into_builder, args=(edit_id, p),
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
                    store.delete_segment(wh, pending, dataset)
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
    tab_cluster, tab_rules, tab_saved, tab_new = st.tabs(["Clustering", "Rule builder", "Saved segments",
                                                          "New customers"])
    with tab_cluster:
        _tab_cluster(p)
    with tab_rules:
        _tab_rules(p)
    with tab_saved:
        _tab_saved(p)
    with tab_new:
        st.caption("Customers whose first purchase is recent, grouped by what their first order and first days "
                   "show; their value comes from the first-order model instead of the formula's annualisation.")
        # on request: the groups come with the first-order model and the review scores it reads
        if st.toggle("Show the new-customer groups", key="segments_new_show"):
            review_widgets.new_customer_groups(p.dataset, p.as_of, key="segments_new_window")


main()
