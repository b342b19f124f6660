"""Build a report snapshot of a saved segment or a saved campaign (no streamlit).

A snapshot is a plain JSON-serializable dict: everything the HTML file and the
read-only report page show, computed once, so that a stored report shows the
same numbers later even after new data arrives. Sections:

* ``title``, ``kind`` (``segment`` | ``campaign``), ``dataset``, ``as_of``, ``created_at``;
* ``subject``: name, description, the definition as data and in words
  (:func:`analytics.segments.rules.describe`);
* ``size``: customers in the segment, all customers, share;
* ``value``: for the segment and for all customers: net revenue (purchases minus
  refunds up to the end of the as-of day) and its share, average net revenue, average
  formula CLV (``clv``), average expected CLV (a published model's ``predicted_value``
  when there is one, else the BG/NBD + Gamma-Gamma CLV; ``expected_clv_source`` says
  which), average order value (gross purchase revenue / purchase days, among buyers:
  an order is a purchase day, as in the customer summary), purchase frequency
  (purchase days per customer) and repeat rate (share with 2+ purchase days);
* ``trend``: per month (the last ``TREND_MONTHS`` months up to the as-of month, from
  the dataset's first month): active customers (any event), buyers and net revenue
  of the segment's members and of all customers, computed in DuckDB;
* ``profile``: mean of key features in the segment and among all customers, ratio;
  ``rfm_mix``: share of RFM segments in the segment and among all;
* ``concentration``: Lorenz curve (at most ``LORENZ_POINTS`` points) of the members'
  net revenue, top 10 % / 20 % share, Gini (:mod:`analytics.explorer`);
* ``top_categories`` / ``top_items``: by the members' net revenue, with the share of
  the segment's revenue and of all customers' revenue;
* ``predictor``: the published model's backtest metrics (every model of its run) and
  the segment's mean predictions, or None;
* ``campaigns``: campaign read-outs (:func:`analytics.campaigns.campaign_readout`) of
  the campaign (campaign report) or of the campaigns that targeted the segment.

Members are the customers of :func:`analytics.explorer.build_frame` at the as-of
date that the saved definition selects (a campaign: its stored target list, control
group included). SQL values are bound parameters; the member list reaches DuckDB as a
registered relation.
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import numpy as np
import pandas as pd

from analytics.dates import parse_day
from analytics.warehouse import Warehouse

SNAPSHOT_VERSION = 1
TREND_MONTHS = 24
LORENZ_POINTS = 200
TOP_N = 10

#: (column, label, unit) of the profile section, in display order
PROFILE_FEATURES = (
    ("net_revenue", "Net revenue", "money"),
    ("n_orders", "Purchase days", "count"),
    ("avg_order_value", "Avg order value (mean of customers)", "money"),
    ("time_since_purchase", "Days since last purchase", "days"),
    ("tenure", "Tenure (days)", "days"),
    ("n_views", "Views", "count"),
    ("n_carts", "Cart adds", "count"),
    ("return_rate", "Return rate", "ratio"),
    ("behaviour_score", "Behaviour score", "score"),
    ("rfm_score", "RFM score", "score"),
    ("clv", "CLV (formula)", "money"),
    ("predicted_value", "Predicted value (model)", "money"),
    ("churn_probability", "Churn probability (model)", "ratio"),
)


class ReportError(ValueError):
    """A report request the user can fix (unknown or empty segment, bad date, bad token...)."""


class ReportRevokedError(ReportError):
    """The report behind a link was revoked."""


# ----------------------------------------------------------------- small helpers
def clean_json(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, non-finite floats as None,
    timestamps as ISO text and tuples as lists (so ``json.dumps(allow_nan=False)`` works)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value if isinstance(value, str) else str(value)


def _day(value) -> pd.Timestamp:
    return parse_day(value, "the as-of date", ReportError)


def _now(now=None) -> dt.datetime:
    if now is not None:
        return pd.Timestamp(now).to_pydatetime().replace(tzinfo=None)
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _num(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in frame.columns:
        return None
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _nanmean(values: np.ndarray | None) -> float | None:
    if values is None:
        return None
    v = values[~np.isnan(values)]
    return float(v.mean()) if len(v) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


# ----------------------------------------------------------------- members
def _segment_members(wh: Warehouse, name: str, frame: pd.DataFrame) -> tuple[np.ndarray, dict]:
    from analytics.segments import rules, store
    from analytics.segments.activity import EventSource

    dataset = frame.attrs.get("dataset")
    try:
        seg = store.get_segment(wh, name, dataset)
    except store.SegmentStoreError:
        known = ", ".join(store.list_segments(wh, dataset)["name"].head(10).map(repr)) or "none saved yet"
        raise ReportError(f"no saved segment {name!r} (segments: {known})") from None
    try:
        source = EventSource(wh, dataset, frame.attrs["as_of"]) if dataset and frame.attrs.get("as_of") else None
        fields = rules.fields_for(frame, source, definition=seg["definition"])
        mask = np.asarray(rules.evaluate(seg["definition"], frame, fields, source=source), dtype=bool)
        words = rules.describe(seg["definition"], fields)
    except rules.RuleError as exc:
        raise ReportError(f"segment {seg['name']!r} cannot be evaluated on this dataset: {exc}") from None
    subject = {"name": seg["name"], "description": seg["description"] or "",
               "definition": seg["definition"], "definition_text": words}
    return mask, subject


def _campaigns_module():
    try:
        import analytics.campaigns as campaigns
    except ImportError:
        return None
    return campaigns


def _resolve_campaign(wh: Warehouse, campaign_id, dataset: str) -> tuple[dict, dict]:
    """(campaign, spec as a dict) of a saved campaign of ``dataset``; ReportError otherwise."""
    campaigns = _campaigns_module()
    if campaigns is None:
        raise ReportError("campaign reports need the campaigns module, which is not installed")
    try:
        camp = campaigns.get_campaign(wh, campaign_id)
    except ValueError as exc:
        raise ReportError(f"no saved campaign {campaign_id!r} ({exc})") from None
    spec = camp.get("spec")
    spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec or {})
    if spec.get("dataset") and spec["dataset"] != dataset:
        raise ReportError(f"campaign {spec.get('name', campaign_id)!r} was made on dataset "
                          f"{spec['dataset']!r}, not {dataset!r}")
    return camp, spec


def _campaign_members(wh: Warehouse, campaign_id, dataset: str, frame: pd.DataFrame) -> tuple[np.ndarray, dict]:
    from analytics.segments import rules

    campaigns = _campaigns_module()
    camp, spec = _resolve_campaign(wh, campaign_id, dataset)
    cid = camp.get("id", campaign_id)
    targets = campaigns.campaign_targets(wh, cid)
    ids = set(targets["customer_id"].astype(str))
    mask = np.asarray(frame.index.astype(str).isin(ids), dtype=bool)
    parts = []
    segs = list(spec.get("segments") or [])
    parts.append("saved segments " + " or ".join(segs) if segs else "every customer")
    if spec.get("extra_rules"):
        try:
            parts.append("and " + rules.describe(spec["extra_rules"]))
        except rules.RuleError:
            parts.append("and extra rules")
    ranking = campaigns.RANKINGS.get(spec.get("ranking"), spec.get("ranking")) if hasattr(campaigns, "RANKINGS") \
        else spec.get("ranking")
    if ranking:
        parts.append(f"ranked by {ranking}")
    if spec.get("max_contacts"):
        parts.append(f"at most {int(spec['max_contacts']):,} contacts")
    if spec.get("budget"):
        parts.append(f"budget {float(spec['budget']):,.2f} at {float(spec.get('cost_per_contact') or 0):,.2f} "
                     "per contact")
    if spec.get("control_share"):
        parts.append(f"{100 * float(spec['control_share']):.0f} % held out as control")
    # a list whose ranking score ranks nobody (constant, all 0, missing): said, as on the Campaigns page
    summary = camp.get("summary") or {}
    warning = summary.get("score_warning")
    if warning is None and hasattr(campaigns, "ranking_problem") and "rank_score" in targets.columns:
        warning = campaigns.ranking_problem(targets["rank_score"], summary.get("score_source"))
    subject = {"name": spec.get("name") or f"campaign {cid}", "description": spec.get("description") or "",
               "definition": spec, "definition_text": ", ".join(parts), "campaign_id": clean_json(cid),
               "targets": int(len(ids)), "campaign_as_of": clean_json(spec.get("as_of")),
               "ranking_warning": warning}
    return mask, subject


# ----------------------------------------------------------------- sections
def expected_clv(frame: pd.DataFrame, *, models=None) -> tuple[pd.Series | None, str | None, str | None]:
    """Expected CLV per customer of ``frame`` for the value section: ``(values, source, note)``,
    resolved by :func:`analytics.valuation.expected_clv` (a published model's ``predicted_value``
    where it scored the customer, else BG/NBD + Gamma-Gamma with 12 months, 10 % discount and
    30 % margin, 0 for customers without a purchase; else the formula CLV, with ``note`` saying
    why). ``models``: an already fitted ``(bgnbd, gamma_gamma)`` pair to skip the fit. The app
    passes the prepared result to :func:`build_report` instead of calling this."""
    from analytics.valuation import expected_clv as resolve_expected

    value = resolve_expected(frame, models=models)
    return value.series(), value.source, value.note


def _value_block(frame: pd.DataFrame, mask: np.ndarray, expected: np.ndarray | None) -> dict:
    net = np.nan_to_num(_num(frame, "net_revenue"), nan=0.0)
    gross = np.nan_to_num(_num(frame, "total_revenue") if "total_revenue" in frame.columns else net, nan=0.0)
    orders = np.nan_to_num(_num(frame, "n_orders"), nan=0.0)
    clv = _num(frame, "clv")
    total = float(net.sum())
    n = int(mask.sum())
    rev = float(net[mask].sum())
    buyers = mask & (orders > 0)
    return {
        "customers": n,
        "net_revenue": rev,
        "revenue_share": rev / total if total else None,
        "avg_net_revenue": rev / n if n else None,
        "avg_clv": _nanmean(clv[mask]) if clv is not None else None,
        "avg_expected_clv": _nanmean(expected[mask]) if expected is not None else None,
        "avg_order_value": float(gross[buyers].sum() / orders[buyers].sum()) if orders[buyers].sum() else None,
        "purchase_frequency": float(orders[mask].mean()) if n else None,
        "repeat_rate": float((orders[mask] >= 2).mean()) if n else None,
    }


# customers x months first (no DISTINCT over the events), then the members' flag
_TREND_SQL = """
WITH cm AS (
    SELECT customer_id, date_trunc('month', event_time) AS month,
           bool_or(event_type = 'purchase') AS bought,
           sum(CASE event_type WHEN 'purchase' THEN revenue WHEN 'return' THEN -revenue END) AS revenue
    FROM events
    WHERE dataset = ? AND event_time >= ? AND event_time < ?
    GROUP BY ALL
), j AS (
    SELECT cm.*, m.customer_id IS NOT NULL AS member
    FROM cm LEFT JOIN {members} m ON m.customer_id = cm.customer_id
)
SELECT month,
       count(*) FILTER (WHERE member) AS active,
       count(*) FILTER (WHERE member AND bought) AS buyers,
       coalesce(sum(revenue) FILTER (WHERE member), 0) AS revenue,
       count(*) AS all_active,
       count(*) FILTER (WHERE bought) AS all_buyers,
       coalesce(sum(revenue), 0) AS all_revenue
FROM j GROUP BY month ORDER BY month
"""

# the members' events only (semi join), then everyone's revenue of the listed keys
_TOP_SQL = """
SELECT {key} AS key, {extra}
       sum(CASE e.event_type WHEN 'purchase' THEN e.revenue WHEN 'return' THEN -e.revenue END) AS revenue,
       count(DISTINCT e.customer_id) FILTER (WHERE e.event_type = 'purchase') AS buyers
FROM events e SEMI JOIN {members} m ON m.customer_id = e.customer_id
WHERE e.dataset = ? AND e.event_time < ? AND e.event_type IN ('purchase', 'return') AND {key} IS NOT NULL
GROUP BY 1 HAVING revenue IS NOT NULL
ORDER BY revenue DESC, key LIMIT ?
"""

_TOP_ALL_SQL = """
SELECT {key} AS key,
       sum(CASE e.event_type WHEN 'purchase' THEN e.revenue WHEN 'return' THEN -e.revenue END) AS all_revenue
FROM events e
WHERE e.dataset = ? AND e.event_time < ? AND e.event_type IN ('purchase', 'return') AND list_contains(?, {key})
GROUP BY 1
"""


def _currency_code(wh: Warehouse, dataset: str) -> str | None:
    """The dataset's currency (ISO 4217 code, set or guessed), None when unknown."""
    from analytics.currency import dataset_currency

    return dataset_currency(wh, dataset).code


def _month_start(ts: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


def _name_items(wh: Warehouse, dataset: str, top_items: list[dict]) -> bool:
    """Give each top item its name (or description) loaded with the data (``name``: None where
    there is none); True when at least one has a name, False when the dataset has codes only."""
    from analytics.recommend.names import stored_names

    names = stored_names(wh, dataset, [r["item_id"] for r in top_items]) if top_items else {}
    for r in top_items:
        r["name"] = names.get(r["item_id"])
    return bool(names)


def _sql_sections(wh: Warehouse, dataset: str, day: pd.Timestamp, members: np.ndarray,
                  months: int, top_n: int, seg_total: float, all_total: float) -> tuple[dict, list, list]:
    """Monthly trend and top categories / items of ``members`` (customer ids) in DuckDB.
    ``seg_total`` / ``all_total``: the members' and everyone's net revenue up to the end of
    ``day`` (the shares' denominators, from the customer frame)."""
    end = (day + pd.Timedelta(days=1)).to_pydatetime()
    start = (_month_start(day) - pd.DateOffset(months=months - 1)).to_pydatetime()
    rel = f"_vs_report_members_{uuid.uuid4().hex}"
    cur = wh.cursor()
    cur.register(rel, pd.DataFrame({"customer_id": pd.Series(members, dtype=object).astype(str)}))
    try:
        # `rel` is generated here (a fixed prefix and hex digits), never user text
        trend = cur.execute(_TREND_SQL.format(members=rel), [dataset, start, end]).df()
        tops = []
        for key, extra in (("e.category", ""), ("e.item_id", "any_value(e.category) AS category,")):
            top = cur.execute(_TOP_SQL.format(members=rel, key=key, extra=extra), [dataset, end, int(top_n)]).df()
            everyone = cur.execute(_TOP_ALL_SQL.format(key=key),
                                   [dataset, end, [str(k) for k in top["key"]]]).df()
            tops.append(top.merge(everyone, on="key", how="left"))
        cats, items = tops
        first = cur.execute("SELECT min(event_time) FROM events WHERE dataset = ?", [dataset]).fetchall()[0][0]
    finally:
        cur.unregister(rel)
        cur.close()
    # every month of the window, from the dataset's first active month on
    all_months = pd.date_range(start, _month_start(day), freq="MS")
    trend["month"] = pd.to_datetime(trend["month"])
    trend = trend.set_index("month").reindex(all_months, fill_value=0)
    active_months = trend.index[trend["all_active"] > 0]
    if len(active_months):
        trend = trend.loc[active_months[0]:]
    trend_out = {
        "months": [m.strftime("%Y-%m") for m in trend.index],
        "active_customers": trend["active"].astype(int).tolist(),
        "buyers": trend["buyers"].astype(int).tolist(),
        "revenue": trend["revenue"].astype(float).round(2).tolist(),
        "all_active_customers": trend["all_active"].astype(int).tolist(),
        "all_buyers": trend["all_buyers"].astype(int).tolist(),
        "all_revenue": trend["all_revenue"].astype(float).round(2).tolist(),
        "partial_last_month": bool(day.to_period("M").end_time.normalize() != day),
    }
    # days of each month the data cover (first event day .. as-of day): partial months are marked in charts
    from analytics.periods import period_coverage

    cov = period_coverage(trend.index, "month", first if first is not None else trend.index.min(), day)
    trend_out["days"] = cov["days"].astype(int).tolist()
    trend_out["covered_days"] = cov["covered_days"].astype(int).tolist()

    def rows(df: pd.DataFrame, key: str) -> list[dict]:
        out = []
        for r in df.itertuples(index=False):
            row = {key: str(r.key), "revenue": float(r.revenue), "buyers": int(r.buyers),
                   "share": float(r.revenue) / float(seg_total) if seg_total else None,
                   "all_share": float(r.all_revenue or 0) / float(all_total) if all_total else None}
            if key == "item_id":
                row["category"] = None if pd.isna(r.category) else str(r.category)
            out.append(row)
        return out

    return trend_out, rows(cats, "category"), rows(items, "item_id")


def _profile(frame: pd.DataFrame, mask: np.ndarray) -> list[dict]:
    out = []
    for col, label, unit in PROFILE_FEATURES:
        v = _num(frame, col)
        if v is None or np.isnan(v).all():
            continue
        seg, all_ = _nanmean(v[mask]), _nanmean(v)
        out.append({"feature": col, "label": label, "unit": unit, "segment": seg, "all": all_,
                    "ratio": _ratio(seg, all_)})
    return out


def _rfm_mix(frame: pd.DataFrame, mask: np.ndarray) -> list[dict]:
    if "rfm_segment" not in frame.columns:
        return []
    s = frame["rfm_segment"].astype(object)
    all_counts = s.value_counts(dropna=True)
    seg_counts = s[mask].value_counts(dropna=True)
    n_seg, n_all = int(mask.sum()), len(frame)
    out = [{"rfm_segment": str(k), "segment_share": int(seg_counts.get(k, 0)) / n_seg if n_seg else None,
            "all_share": int(c) / n_all if n_all else None} for k, c in all_counts.items()]
    return sorted(out, key=lambda r: -(r["segment_share"] or 0))


def _concentration(frame: pd.DataFrame, mask: np.ndarray) -> dict:
    from analytics import explorer

    v = np.nan_to_num(_num(frame, "net_revenue"), nan=0.0)[mask]
    curve = explorer.lorenz_curve(v, max_points=LORENZ_POINTS)
    return {
        "lorenz": {"customer_share": curve["customer_share"].round(5).tolist(),
                   "value_share": curve["value_share"].round(5).tolist()},
        "top10_share": explorer.top_share(v, 0.1),
        "top20_share": explorer.top_share(v, 0.2),
        "gini": explorer.gini(v),
    }


def _predictor(wh: Warehouse, dataset: str, frame: pd.DataFrame, mask: np.ndarray) -> dict | None:
    from analytics.predict.registry import model_title, prediction_info, published_predictions, run_models

    pred = published_predictions(wh, dataset)
    info = prediction_info(pred)
    if info is None:
        return None
    models = []
    try:
        metrics = run_models(wh, info["run_id"])
    except ValueError:
        metrics = pd.DataFrame()
    for model, row in metrics.iterrows():
        values = {k: v for k, v in row.items() if k not in ("device", "path", "error")
                  and isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}
        models.append({"model": str(model), "title": model_title(model), "published": str(model) == info["model"],
                       "metrics": values})
    pv, churn = _num(frame, "predicted_value"), _num(frame, "churn_probability")
    return {**info, "models": models,
            "segment_predicted_value": _nanmean(pv[mask]) if pv is not None else None,
            "all_predicted_value": _nanmean(pv) if pv is not None else None,
            "segment_churn_probability": _nanmean(churn[mask]) if churn is not None else None,
            "all_churn_probability": _nanmean(churn) if churn is not None else None}


def _campaign_results(wh: Warehouse, dataset: str, subject: dict, kind: str, notes: list[str]) -> list[dict]:
    campaigns = _campaigns_module()
    if campaigns is None:
        return []
    out = []
    try:
        if kind == "campaign":
            wanted = [(subject.get("campaign_id"), subject["name"])]
        else:
            listing = campaigns.list_campaigns(wh, dataset)
            wanted = []
            for r in listing.to_dict("records"):
                cid = r.get("id")
                spec = campaigns.get_campaign(wh, cid).get("spec")
                spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec or {})
                if subject["name"] in (spec.get("segments") or []):
                    wanted.append((cid, spec.get("name") or r.get("name")))
        for cid, name in wanted[:5]:
            readout = campaigns.campaign_readout(wh, cid)
            if readout is not None:
                out.append({"campaign_id": clean_json(cid), "name": str(name), "readout": clean_json(readout)})
    except Exception as exc:  # another area's module: never let it break a report
        notes.append(f"campaign results could not be read: {exc}")
    return out


# ----------------------------------------------------------------- the snapshot
def build_report(wh: Warehouse, dataset: str, as_of, *, segment: str | None = None, campaign_id=None,
                 frame: pd.DataFrame | None = None, expected: tuple | None = None, now=None,
                 trend_months: int = TREND_MONTHS, top_n: int = TOP_N) -> dict:
    """The JSON-serializable snapshot of a saved segment (``segment``: its name) or a saved
    campaign (``campaign_id``) in ``dataset`` as of ``as_of`` (see the module docstring).

    ``frame``: the customer frame of ``dataset`` at ``as_of`` when the caller has it
    (:func:`analytics.explorer.build_frame`; read, never changed), else it is built.
    ``expected``: :func:`expected_clv` of that frame when the caller has it cached.
    ``now``: the creation time to record (default: the current UTC time).
    Raises :class:`ReportError` for an unknown dataset, segment or campaign and for a
    segment without customers on that day.
    """
    from analytics.explorer import build_frame

    if (segment is None) == (campaign_id is None):
        raise ReportError("pick either a saved segment or a saved campaign for the report")
    if not isinstance(dataset, str) or not wh.has_dataset(dataset):
        known = ", ".join(wh.datasets()) or "none yet"
        raise ReportError(f"no dataset named {dataset!r} (datasets: {known})")
    day = _day(as_of)
    if int(trend_months) < 1 or int(top_n) < 1:
        raise ReportError("the trend needs at least 1 month and the top lists at least 1 row")
    if campaign_id is not None:
        _resolve_campaign(wh, campaign_id, dataset)  # unknown / other dataset: say so before any work
    if frame is None:
        frame = build_frame(wh, dataset, day)
    if frame.empty:
        raise ReportError(f"dataset {dataset!r} has no customers as of {day.date()}")
    kind = "segment" if segment is not None else "campaign"
    if kind == "segment":
        mask, subject = _segment_members(wh, str(segment), frame)
    else:
        mask, subject = _campaign_members(wh, campaign_id, dataset, frame)
    n = int(mask.sum())
    if n == 0:
        what = "segment" if kind == "segment" else "campaign"
        raise ReportError(f"{what} {subject['name']} has no customers as of {day.date()}")
    notes: list[str] = []
    members = frame.index[mask].astype(str).to_numpy(dtype=object)
    if expected is None:
        expected = expected_clv(frame)
    exp_values, expected_source, why = expected
    if why:
        notes.append(why)
    if exp_values is None:
        expected = None
    elif isinstance(exp_values, pd.Series):
        expected = exp_values.reindex(frame.index).to_numpy(dtype=float)
    else:  # an array in the frame's order
        expected = np.asarray(exp_values, dtype=float)
        if expected.shape != (len(frame),):
            raise ReportError("the expected CLV values do not match the customer frame")
    if expected is not None:
        finite = expected[np.isfinite(expected)]
        if finite.size == 0 or finite.min() == finite.max():
            what = "missing" if finite.size == 0 else f"{finite[0]:,.2f} for every customer"
            notes.append(f"expected CLV ({expected_source}) is {what}: it says nothing about who is worth more")
    seg_value = _value_block(frame, mask, expected)
    all_value = _value_block(frame, np.ones(len(frame), dtype=bool), expected)
    trend, top_categories, top_items = _sql_sections(wh, dataset, day, members, int(trend_months), int(top_n),
                                                     seg_value["net_revenue"], all_value["net_revenue"])
    items_named = _name_items(wh, dataset, top_items)
    title = ("Segment report: " if kind == "segment" else "Campaign report: ") + subject["name"]
    snapshot = {
        "version": SNAPSHOT_VERSION,
        "title": title,
        "kind": kind,
        "dataset": dataset,
        "currency": _currency_code(wh, dataset),
        "as_of": str(day.date()),
        "created_at": _now(now).isoformat(timespec="seconds"),
        "subject": subject,
        "size": {"customers": n, "all_customers": int(len(frame)), "share": n / len(frame)},
        "value": {"segment": seg_value, "all": all_value, "expected_clv_source": expected_source},
        "trend": trend,
        "profile": _profile(frame, mask),
        "rfm_mix": _rfm_mix(frame, mask),
        "concentration": _concentration(frame, mask),
        "top_categories": top_categories,
        "top_items": top_items,
        "items_named": items_named,
        "predictor": _predictor(wh, dataset, frame, mask),
        "campaigns": _campaign_results(wh, dataset, subject, kind, notes),
        "notes": notes,
    }
    return clean_json(snapshot)
