"""Whom to contact: value columns, the eligible selection, ranking, the cap and the control group.

Value sources (:func:`value_columns`), per customer, first available wins:

* ``expected_clv``: a published predictor's ``predicted_value`` when
  the customer has one; else the BG/NBD + Gamma-Gamma CLV ``clv_bgnbd`` of
  :func:`analytics.scores.probabilistic_clv` fitted on the frame (default CLV
  parameters; customers with no purchase get 0: they have no purchase history
  the model can project); else, when the models cannot be fitted on the data,
  the transparent formula CLV (``clv`` of the frame).
* ``churn_risk``: a published predictor's ``churn_probability``; else
  ``1 - p_alive`` (BG/NBD); NaN for customers who never bought (no risk of
  losing what was never won; their ``churn_value`` is 0).
* ``churn_value = churn_risk × expected_clv`` ("save the valuable ones slipping away").

Ranking (:func:`select_targets`): descending ``rank_score`` (expected_clv,
churn_value or the numeric column the user picked; missing scores rank last),
ties broken by ascending customer id, so the same data always give the same list.

Ranking that cannot rank (:func:`ranking_problem`): when the score is the same for every
selected customer (all 0 included), missing for all of them, or missing for at least
``MISSING_SCORE_SHARE`` of them, the list is (partly) in customer-id order, not ranked.
``select_targets`` then puts a sentence in ``attrs["score_warning"]`` (with where the score
came from, ``attrs["score_source"]``) and :func:`analytics.campaigns.expected_outcome`
withholds the ROI: a return computed for an unranked list would be a number without a basis.

Cap and control group. The contacted (treatment) count is

    cap = min(max_contacts, floor(budget / cost_per_contact), floor(eligible × (1 - control_share)))

(each term only when set; a cost of 0 puts no limit through the budget). The
control group is drawn from the SAME ranked top of the eligible customers, so
that treatment and control are comparable: the top ``N = ceil(cap / (1 -
control_share))`` customers are taken and ``N - cap`` of them are held out at
random (seeded), stratified by segment (:func:`assign_control`): each segment's
control count is its proportional share of the holdout, rounded by largest
remainder, so every segment's control share hits the target within one
customer and the treatment count is exactly ``cap``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analytics.formatting import percent
from analytics.campaigns.spec import CampaignError, CampaignSpec
from analytics.warehouse import Warehouse

ALL_CUSTOMERS = "All customers"
#: window (days before the as-of day, inclusive) of the default response rate
RESPONSE_WINDOW_DAYS = 30
#: incremental response assumed when no earlier campaign of the dataset has a read-out. A customer's
#: natural purchase rate is no estimate of what a contact *adds* (on the sample the top customers'
#: 30-day rate is 35-76 %, which would promise ROIs in the thousands of per cent); 2 % is a
#: conservative, commonly seen direct-marketing response. It is never above the natural rate.
ASSUMED_INCREMENTAL_RESPONSE = 0.02

#: at least this share of the selection without a ranking score makes the ranking untrustworthy
MISSING_SCORE_SHARE = 0.1

TARGET_COLUMNS = ["customer_id", "rank", "segment", "rfm_segment", "expected_clv", "churn_risk", "churn_value",
                  "p_alive", "rank_score", "group"]


# ----------------------------------------------------------------- value columns
def value_columns(wh: Warehouse | None, frame: pd.DataFrame, params=None, *, models=None,
                  prob: pd.DataFrame | None = None) -> pd.DataFrame:
    """A copy of ``frame`` (indexed by customer id) with the columns of :func:`value_table`
    (``expected_clv``, ``p_alive``, ``churn_risk``, ``churn_value``...; sources in the module
    docstring) and its attrs."""
    table = value_table(wh, frame, params, models=models, prob=prob)
    out = frame.copy()
    for c in table.columns:
        out[c] = table[c].to_numpy()
    out.attrs = {**dict(frame.attrs), **table.attrs}
    return out


def value_table(wh: Warehouse | None, frame: pd.DataFrame, params=None, *, models=None,
                prob: pd.DataFrame | None = None) -> pd.DataFrame:
    """The value columns of ``frame``'s customers (same index and order): ``expected_clv`` and
    ``expected_clv_source`` (:func:`analytics.valuation.expected_clv`: a published model, else
    BG/NBD + Gamma-Gamma, else the formula), ``p_alive``, ``churn_risk``, ``churn_value``, the
    BG/NBD columns ``expected_purchases``, ``expected_spend``, ``discounted_revenue``,
    ``clv_bgnbd`` (NaN when not fitted or for customers without a purchase) and, when ``wh`` adds
    them, ``predicted_value`` / ``churn_probability``.

    ``attrs["value_source"]`` / ``attrs["risk_source"]`` say where the numbers came
    from (shown to the user); ``attrs["value_note"]`` says why BG/NBD was not used
    when it could not be fitted. ``params``: ``analytics.scores.CLVParams`` for the
    BG/NBD CLV (default parameters if None); ``models``: already fitted ``(bgnbd, gamma_gamma)``
    (``analytics.scores.fit_clv_models``) to skip the fit (most of the cost: ~1 min at 1M
    customers on a 2-core machine). ``wh`` is used to find published
    predictions for ``frame.attrs["dataset"]`` when the frame does not carry them. ``prob``: the
    probabilistic table (``analytics.scores.probabilistic_clv``) already computed for the frame.
    """
    from analytics.valuation import PROB_COLUMNS, expected_clv

    n = len(frame)
    out = pd.DataFrame(index=frame.index)
    pred_value = frame["predicted_value"] if "predicted_value" in frame.columns else None
    churn_prob = frame["churn_probability"] if "churn_probability" in frame.columns else None
    if wh is not None and pred_value is None and frame.attrs.get("dataset"):
        try:
            from analytics.predict.registry import prediction_columns, published_predictions

            pred = published_predictions(wh, frame.attrs["dataset"])
        except Exception:  # no predictor tables / unreadable: fall back to the models below
            pred = None
        if pred is not None and not pred.empty:
            cols = prediction_columns(pred)
            cols.index = cols.index.astype(str)
            ids = frame.index.astype(str)
            out["predicted_value"] = pred_value = ids.map(cols["predicted_value"]).astype(float).to_numpy()
            out["churn_probability"] = churn_prob = ids.map(cols["churn_probability"]).astype(float).to_numpy()
    # the one expected-CLV policy (published model -> BG/NBD + Gamma-Gamma -> formula)
    fittable = {"frequency", "recency", "T", "monetary_value", "n_orders"} <= set(frame.columns)
    source = frame if pred_value is None or "predicted_value" in frame.columns else \
        frame.assign(predicted_value=pred_value)
    value = expected_clv(source, models=models, params=params, prob=prob, fit=fittable)
    note = value.note if n and fittable else None
    prob = value.prob
    p_alive = value.p_alive
    out["expected_clv"] = value.values
    out["expected_clv_source"] = pd.array(value.sources(), dtype="str") if n else pd.array([], dtype="str")
    out["p_alive"] = p_alive
    risk_pred = (pd.to_numeric(pd.Series(churn_prob), errors="coerce").to_numpy(float)
                 if churn_prob is not None else np.full(n, np.nan))
    has_risk = ~np.isnan(risk_pred)
    out["churn_risk"] = np.where(has_risk, risk_pred, 1.0 - p_alive)
    out["churn_value"] = np.nan_to_num(out["churn_risk"].to_numpy(float) * out["expected_clv"].to_numpy(float),
                                       nan=0.0)
    for c in PROB_COLUMNS:
        if c != "p_alive":
            out[c] = (prob[c].reindex(frame.index).to_numpy(dtype=float) if prob is not None
                      else np.full(n, np.nan))
    out.attrs["value_source"] = value.source
    if has_risk.any():
        out.attrs["risk_source"] = "published model churn probability"
    elif prob is not None or np.isfinite(p_alive).any():  # also when only the spend model failed
        out.attrs["risk_source"] = "1 - probability alive (BG/NBD)"
    else:
        out.attrs["risk_source"] = "not available (no model could be fitted)"
    if note:
        out.attrs["value_note"] = note
    return out


# ----------------------------------------------------------------- selection
def _segment_masks(wh: Warehouse, frame: pd.DataFrame, segments: list[str], dataset: str | None = None,
                   source=None) -> list[tuple[str, np.ndarray]]:
    from analytics.segments import rules, store

    out = []
    for name in segments:
        try:
            seg = store.get_segment(wh, name, dataset)
        except store.SegmentStoreError:
            known = list(store.list_segments(wh, dataset)["name"])
            shown = ", ".join(repr(k) for k in known[:10]) or "none saved yet"
            raise CampaignError(f"unknown segment {name!r} (saved segments: {shown})") from None
        try:
            fields = rules.fields_for(frame, source, definition=seg["definition"])
            mask = rules.evaluate(seg["definition"], frame, fields, source=source)
        except (ValueError, KeyError) as exc:
            raise CampaignError(f"segment {name!r} cannot be applied to this data: {exc}") from None
        out.append((name, np.asarray(mask, dtype=bool)))
    return out


def _event_source(wh: Warehouse, spec: CampaignSpec):
    from analytics.segments.activity import EventSource

    return EventSource(wh, spec.dataset, spec.as_of) if wh is not None else None


def eligible(wh: Warehouse, frame: pd.DataFrame, spec: CampaignSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(mask, segment_codes, segment_names)``: who the segments (OR) and extra rules (AND)
    select, and each customer's first matching segment as a position in ``segment_names``
    (-1 for none; ``["All customers"]`` without segments)."""
    from analytics.segments import rules

    n = len(frame)
    source = _event_source(wh, spec)  # asked only by conditions on what the frame does not hold
    if spec.segments:
        mask = np.zeros(n, dtype=bool)
        codes = np.full(n, -1, dtype=np.int64)
        names = list(spec.segments)
        for k, (name, m) in enumerate(_segment_masks(wh, frame, spec.segments, spec.dataset, source)):
            codes[m & ~mask] = k
            mask |= m
    else:
        mask = np.ones(n, dtype=bool)
        codes = np.zeros(n, dtype=np.int64)
        names = [ALL_CUSTOMERS]
    if spec.extra_rules:
        try:
            extra = rules.evaluate(spec.extra_rules, frame,
                                   rules.fields_for(frame, source, definition=spec.extra_rules), source=source)
        except (ValueError, KeyError) as exc:
            raise CampaignError(f"the extra rules are not valid: {exc}") from None
        mask &= np.asarray(extra, dtype=bool)
    return mask, codes, names


def rank_scores(frame: pd.DataFrame, spec: CampaignSpec) -> np.ndarray:
    """The score customers are ranked by (higher first) for ``spec.ranking``."""
    if spec.ranking == "expected_clv":
        col = "expected_clv"
    elif spec.ranking == "churn_value":
        col = "churn_value"
    else:
        col = spec.score_column
        if col not in frame.columns:
            raise CampaignError(f"unknown score column {col!r}: pick a numeric column of the customer table")
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            raise CampaignError(f"the score column {col!r} is not numeric")
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
    return values


def score_source(frame: pd.DataFrame, spec: CampaignSpec) -> str:
    """Where the ranking score of ``spec`` comes from, in words."""
    value = frame.attrs.get("value_source") or "the customer table"
    if spec.ranking == "expected_clv":
        return f"expected CLV from {value}"
    if spec.ranking == "churn_value":
        return f"churn risk ({frame.attrs.get('risk_source') or 'not available'}) x expected CLV ({value})"
    return f"the customer-table column {spec.score_column!r}"


def ranking_problem(scores, source: str | None = None) -> str | None:
    """A sentence saying why ``scores`` (one per selected customer) cannot rank them, or None:
    every score missing, every score the same (0 included), or at least ``MISSING_SCORE_SHARE``
    of them missing (those rank last, in customer-id order)."""
    s = np.asarray(scores, dtype=float)
    n = s.size
    if n == 0:
        return None
    where = f" (the score is {source})" if source else ""
    finite = np.isfinite(s)
    k = int(finite.sum())
    if k == 0:
        return (f"no selected customer has a ranking score{where}: the list is in customer-id order, "
                "not ranked by value")
    vals = s[finite]
    if vals.min() == vals.max():
        what = "0.00" if vals[0] == 0 else f"{vals[0]:,.4g}"
        return (f"the ranking score is {what} for every {'scored ' if k < n else ''}selected customer{where}: "
                "it ranks nobody above anybody, so the list is in customer-id order")
    missing = 1.0 - k / n
    if missing >= MISSING_SCORE_SHARE:
        return (f"{percent(missing, 0)} of the selected customers ({n - k:,} of {n:,}) have no ranking score{where}: "
                "they are placed last, in customer-id order")
    return None


def _string_ids(index: pd.Index) -> pd.Index:
    return index if pd.api.types.is_string_dtype(index.dtype) else index.astype(str)


def _order(scores: np.ndarray, ids: pd.Index, top: int | None = None) -> np.ndarray:
    """Positions by descending score (NaN last), ties by ascending id; only the first ``top``
    when given (a partition first, so a short list of a big selection sorts only itself).
    Sorts are numeric: ids are ranked with the index's own argsort (fast for arrow strings)."""
    key = np.where(np.isnan(scores), np.inf, -scores)
    n = len(key)
    if top is not None and top < n:
        v = key[np.argpartition(key, top - 1)[top - 1]]  # the top-th smallest key
        better = np.flatnonzero(key < v)
        ties = np.flatnonzero(key == v)
        need = top - len(better)
        if need < len(ties):  # keep the ties with the smallest ids
            ties = ties[np.asarray(ids.take(ties).argsort())[:need]]
        sel = np.concatenate([better, ties])
        return sel[_order(key[sel] * -1.0, ids.take(sel))]
    id_rank = np.empty(n, dtype=np.int64)
    id_rank[np.asarray(ids.argsort())] = np.arange(n)
    return np.lexsort((id_rank, key))


def contact_cap(n_eligible: int, spec: CampaignSpec) -> tuple[int, str]:
    """``(cap, what limits it)``: the number contacted (treatment); see the module docstring."""
    limits = [(math.floor(n_eligible * (1 - spec.control_share) + 1e-9), "eligible customers less the control share")]
    if spec.max_contacts is not None:
        limits.append((int(spec.max_contacts), "maximum contacts"))
    if spec.budget is not None and spec.cost_per_contact > 0:
        limits.append((math.floor(spec.budget / spec.cost_per_contact + 1e-9), "budget / cost per contact"))
    cap, why = min(limits, key=lambda t: t[0])
    return int(cap), why


def select_targets(wh: Warehouse, frame: pd.DataFrame, spec: CampaignSpec, *, recommender=None) -> pd.DataFrame:
    """The ranked campaign list: one row per contacted (``group = "treatment"``) or held-out
    (``"control"``) customer, columns ``customer_id, rank (1..n), segment, rfm_segment,
    expected_clv, churn_risk, churn_value, p_alive, rank_score, group`` (+ ``recommended_items``,
    text ``"a; b; c"``, when ``spec.recommendations > 0``).

    ``frame``: the customer frame (``analytics.explorer.build_frame``) indexed by
    customer id; value columns are added with :func:`value_columns` unless the frame
    already has ``expected_clv``. ``attrs``: ``eligible``, ``cap``, ``cap_reason``,
    ``n_treatment``, ``n_control``, ``value_source``, ``risk_source``, ``score_source``,
    ``score_warning`` (see :func:`ranking_problem`; None when the score ranks), ``spec`` (dict).
    CampaignError for an empty selection, unknown segments or score columns, or too few
    customers to form both groups. ``recommender``: a recommender already fitted on the dataset's
    events up to the end of the as-of day (``analytics.recommend.campaign_recommender``; a cache can keep one);
    fitted here when None and recommendations are asked for.
    """
    spec = spec.validated()
    f_day, f_set = frame.attrs.get("as_of"), frame.attrs.get("dataset")
    if f_day is not None and str(pd.Timestamp(f_day).date()) != spec.as_of:
        raise CampaignError(f"the customer table is as of {pd.Timestamp(f_day).date()}, the campaign as of "
                            f"{spec.as_of}: rebuild the table for the campaign's date")
    if f_set and f_set != spec.dataset:
        raise CampaignError(f"the customer table is of dataset {f_set!r}, the campaign of {spec.dataset!r}")
    if "expected_clv" not in frame.columns:
        frame = value_columns(wh, frame)
    mask, seg_codes, seg_names = eligible(wh, frame, spec)
    n_eligible = int(mask.sum())
    if n_eligible == 0:
        where = (f"the segment(s) {', '.join(repr(s) for s in spec.segments)}" if spec.segments
                 else "the data set")
        raise CampaignError(f"the selection is empty: no customer of {where} matches"
                            + (" the extra rules" if spec.extra_rules else "") + " as of " + spec.as_of)
    scores = rank_scores(frame, spec)
    ids = _string_ids(frame.index)
    idx = np.flatnonzero(mask)
    cap, why = contact_cap(n_eligible, spec)
    if cap < 1:
        raise CampaignError(
            f"the selection has only {n_eligible} customer(s): too few to contact some and hold out "
            f"a {percent(spec.control_share, 0)} control group")
    n_total = min(n_eligible, math.ceil(cap / (1 - spec.control_share) - 1e-9))
    if n_total <= cap:  # guards rounding; the control group needs at least one customer
        n_total = cap + 1
    chosen = idx[_order(scores[idx], ids.take(idx), n_total)]

    def num(name):
        return (pd.to_numeric(frame[name], errors="coerce").to_numpy(float)[chosen] if name in frame.columns
                else np.full(len(chosen), np.nan))

    targets = pd.DataFrame({
        "customer_id": ids.take(chosen).array,  # no per-string conversion (arrow strings stay arrow)
        "rank": np.arange(1, len(chosen) + 1, dtype=np.int64),
        "segment": pd.array(seg_names, dtype="str").take(seg_codes[chosen]),  # every chosen one has a segment
        "rfm_segment": (frame["rfm_segment"].array.take(chosen) if "rfm_segment" in frame.columns
                        else pd.array([None] * len(chosen), dtype="str")),
        "expected_clv": num("expected_clv"),
        "churn_risk": num("churn_risk"),
        "churn_value": num("churn_value"),
        "p_alive": num("p_alive"),
        "rank_score": scores[chosen],
    })
    targets = _assign(targets, n_total - cap, spec.seed, "segment")
    source = score_source(frame, spec)
    warning = ranking_problem(scores[idx], source)
    if spec.recommendations > 0:
        targets["recommended_items"] = recommended_items(wh, spec, targets["customer_id"], recommender)
    targets.attrs = {
        "eligible": n_eligible, "cap": cap, "cap_reason": why,
        "n_treatment": int((targets["group"] == "treatment").sum()),
        "n_control": int((targets["group"] == "control").sum()),
        "value_source": frame.attrs.get("value_source"), "risk_source": frame.attrs.get("risk_source"),
        "score_source": source, "score_warning": warning,
        "spec": spec.to_dict(),
    }
    return targets


def rank_eligible(wh: Warehouse, frame: pd.DataFrame, spec: CampaignSpec) -> pd.DataFrame:
    """Every eligible customer in ranking order, without a cap or a control group:
    ``customer_id, rank, segment, rank_score``. For a return curve over the whole selection
    (``return_curve(rank_eligible(...), ...)``), to see where more contacts stop paying
    before choosing the cap. Same selection, ranking and tie rule as :func:`select_targets`."""
    spec = spec.validated()
    if "expected_clv" not in frame.columns:
        frame = value_columns(wh, frame)
    mask, seg_codes, seg_names = eligible(wh, frame, spec)
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        raise CampaignError("the selection is empty: no customer matches the segments and rules as of " + spec.as_of)
    scores = rank_scores(frame, spec)
    ids = _string_ids(frame.index)
    chosen = idx[_order(scores[idx], ids.take(idx))]
    return pd.DataFrame({
        "customer_id": ids.take(chosen).array,
        "rank": np.arange(1, len(chosen) + 1, dtype=np.int64),
        "segment": pd.array(seg_names, dtype="str").take(seg_codes[chosen]),
        "rank_score": scores[chosen],
    })


def recommended_items(wh: Warehouse, spec: CampaignSpec, customer_ids: pd.Series, recommender=None,
                      memo: "ItemsMemo | None" = None) -> np.ndarray:
    """``"item1; item2; ..."`` per customer (the recommender that wins on the 90 days before the
    as-of day, ``analytics.recommend.campaign_recommender``, over purchases, carts and views up to
    the as-of day, excluding what each customer bought; empty text when there is none).
    ``recommender``: one already fitted on the events up to the end of the as-of day (fitted here
    when None); ``memo``: an :class:`ItemsMemo` for the same
    recommender, ``n`` and category, so customers seen before are not recommended again."""
    if memo is None:
        memo = ItemsMemo(_fitted_recommender(wh, spec, recommender), spec.recommendations,
                         spec.recommendation_category)
    return memo.text(customer_ids)


def recommendations_possible(wh: Warehouse, spec: CampaignSpec) -> tuple[CampaignSpec, str | None]:
    """``(spec, None)`` when the dataset has item events (purchases, carts or views of an item) up to
    the as-of day or no recommendations are asked for; else the spec without recommendations and a
    note saying why. A campaign over an order log without item ids is still a campaign: it is made
    without items rather than refused."""
    import dataclasses

    spec = spec.validated()
    if spec.recommendations <= 0:
        return spec, None
    end = (pd.Timestamp(spec.as_of) + pd.Timedelta(days=1)).to_pydatetime()
    cur = wh.cursor()
    try:
        found = cur.execute(
            "SELECT 1 FROM events WHERE dataset = ? AND item_id IS NOT NULL AND event_time < ? "
            "AND event_type IN ('purchase', 'cart', 'view') LIMIT 1", [spec.dataset, end]).fetchone()
    finally:
        cur.close()
    if found:
        return spec, None
    note = (f"no recommendations: dataset {spec.dataset!r} has no item ids on its purchases, carts or views up to "
            f"{spec.as_of} (load a file with an item, product or SKU column to recommend items); the campaign "
            "is made without them")
    return dataclasses.replace(spec, recommendations=0, recommendation_category=None), note


def _fitted_recommender(wh: Warehouse, spec: CampaignSpec, recommender=None):
    try:
        from analytics import recommend
    except ImportError:
        raise CampaignError("product recommendations are not available in this installation") from None
    if recommender is not None:
        return recommender
    try:
        end = pd.Timestamp(spec.as_of) + pd.Timedelta(days=1)  # events up to the end of the as-of day
        return recommend.campaign_recommender(wh, spec.dataset, end)  # the validation winner
    except recommend.RecommendError as exc:
        raise CampaignError(f"recommendations: {exc}") from None


class ItemsMemo:
    """Recommended-items text per customer for one fitted recommender, ``n`` and category,
    remembered per customer: a customer's items do not depend on the campaign around them, so a
    changed cap or control share only recommends for customers not seen before. Thread-safe."""

    def __init__(self, recommender, n: int, category: str | None = None):
        import threading

        self.recommender, self.n, self.category = recommender, int(n), category or None
        self._lock = threading.Lock()
        self._text = pd.Series([], dtype=object, index=pd.Index([], dtype=object))

    def text(self, customer_ids) -> np.ndarray:
        """The items text of each of ``customer_ids`` (in that order; "" when there is none)."""
        from analytics import recommend

        ids = pd.Series(customer_ids).astype(str)
        with self._lock:
            missing = ids[~ids.isin(self._text.index)].drop_duplicates()
            if len(missing):
                try:
                    recs = self.recommender.recommend(list(missing), n=self.n, exclude_purchased=True,
                                                      category=self.category)
                except recommend.RecommendError as exc:
                    raise CampaignError(f"recommendations: {exc}") from None
                new = recommend.recommendations_text(recs)
                new.index = new.index.astype(str)
                new = new.reindex(pd.Index(missing.to_numpy())).fillna("")
                self._text = pd.concat([self._text, new.astype(object)])
            text = self._text
        return ids.map(text).fillna("").to_numpy(dtype=object)


def with_recommendations(targets: pd.DataFrame, spec: CampaignSpec, memo: ItemsMemo) -> pd.DataFrame:
    """A copy of a target list of :func:`select_targets` (made without recommendations) with the
    ``recommended_items`` ``spec`` asks for, from ``memo``."""
    spec = spec.validated()
    out = targets.copy()
    if spec.recommendations > 0:
        out["recommended_items"] = memo.text(targets["customer_id"])
    out.attrs = {**targets.attrs, "spec": spec.to_dict()}
    return out


def target_response_defaults(wh: Warehouse | None, frame: pd.DataFrame, targets: pd.DataFrame,
                             spec: CampaignSpec) -> dict:
    """:func:`response_defaults` over the rows of ``frame`` that ``targets`` lists (only the columns
    it reads, taken by position: a ``.loc`` of a million ids on the whole wide frame costs seconds)."""
    cols = [c for c in ("last_purchase", "n_orders", "total_revenue") if c in frame.columns]
    rows = frame[cols].iloc[frame.index.get_indexer(targets["customer_id"].to_numpy())]
    rows.attrs = dict(frame.attrs)
    return response_defaults(rows, spec, wh=wh)


# ----------------------------------------------------------------- control group
def _quotas(sizes: np.ndarray, n_control: int) -> np.ndarray:
    """Largest-remainder split of ``n_control`` over strata proportional to ``sizes``."""
    total = sizes.sum()
    exact = sizes * (n_control / total)
    base = np.floor(exact + 1e-9).astype(np.int64)
    base = np.minimum(base, sizes)
    left = n_control - base.sum()
    if left > 0:
        rem = exact - base
        rem[base >= sizes] = -1.0
        # ties: larger stratum first, then stratum order (already sorted by name)
        order = np.lexsort((np.arange(len(sizes)), -sizes, -rem))
        for i in order:
            if left == 0:
                break
            if base[i] < sizes[i]:
                base[i] += 1
                left -= 1
    return base


def _assign(targets: pd.DataFrame, n_control: int, seed: int, strata: str | None) -> pd.DataFrame:
    n = len(targets)
    if not 0 < n_control < n:
        raise CampaignError(f"cannot hold out {n_control} of {n} customers: both groups need customers")
    out = targets.copy()
    if strata is None or strata not in out.columns:
        keys = np.zeros(n, dtype=np.int64)
        names = [""]
    else:
        keys, names = pd.factorize(out[strata].astype(object).fillna(""), sort=True)  # by name: deterministic
        keys = np.asarray(keys, dtype=np.int64)
    # process each stratum in its rank order (or id order) so that row order does not matter
    pos = (out["rank"].to_numpy() if "rank" in out.columns
           else np.argsort(np.argsort(out["customer_id"].astype(str).to_numpy(), kind="stable")))
    sizes = np.bincount(keys, minlength=len(names))
    quotas = _quotas(sizes, n_control)
    rng = np.random.default_rng(seed)
    control = np.zeros(n, dtype=bool)
    for k in range(len(names)):
        members = np.flatnonzero(keys == k)
        members = members[np.argsort(pos[members], kind="stable")]
        if quotas[k]:
            pick = rng.choice(len(members), size=int(quotas[k]), replace=False)
            control[members[pick]] = True
    out["group"] = pd.array(["treatment", "control"], dtype="str").take(control.astype(np.int64))
    return out


def assign_control(targets: pd.DataFrame, control_share: float, seed: int = 42,
                   strata: str | None = "segment") -> pd.DataFrame:
    """``targets`` with a ``group`` column: ``round(n × control_share)`` customers (at least 1,
    at most n - 1) held out as ``"control"``, the rest ``"treatment"``.

    Stratified by ``strata`` (a column; None = no strata): the holdout is split over the
    strata in proportion to their sizes by largest remainder (so each stratum's control
    share is the target within one customer), then drawn uniformly at random inside each
    stratum with ``numpy.random.default_rng(seed)`` (strata in name order, members in
    rank order: the same seed on the same list gives the same assignment).
    """
    try:
        share = float(control_share)
    except (TypeError, ValueError):
        raise CampaignError(f"the control share must be a number, got {control_share!r}") from None
    if not 0 < share < 1:
        raise CampaignError(f"the control share must be strictly between 0 % and 100 % (got {percent(share, 0)})")
    n = len(targets)
    if n < 2:
        raise CampaignError("at least 2 customers are needed to hold out a control group")
    n_control = min(max(int(round(n * share)), 1), n - 1)
    return _assign(targets, n_control, int(seed), strata)


# ----------------------------------------------------------------- default assumptions
def response_defaults(frame: pd.DataFrame, spec: CampaignSpec | None = None, *, as_of=None,
                      wh: Warehouse | None = None) -> dict:
    """Default expected-outcome assumptions with where they come from:
    ``{"response_rate", "value_per_response", "source"}`` (``source``: a sentence for the user).

    1. With ``wh``, when an earlier campaign of the same dataset has outcomes whose read-out
       shows a positive conversion uplift and is not flagged too small, its measured
       uplift (treatment minus control conversion) is the response rate and its
       treatment revenue per converted customer the value per response: what contacting
       actually added last time.
    2. Otherwise the response rate is an assumption, said as such: ``ASSUMED_INCREMENTAL_RESPONSE``
       (2 %), capped at the selection's natural purchase rate — the share of the rows of
       ``frame`` (pass the selected customers' rows) who bought in the ``RESPONSE_WINDOW_DAYS``
       (30) days up to the as-of day (``last_purchase``), or, when nobody bought in that window,
       the repeat-purchase rate (share of buyers with 2+ purchase days); 0 if neither exists.
       The natural rate is returned as ``natural_rate`` and named in ``source``: it includes
       purchases a campaign does not cause, so it is an upper bound, not an estimate, of the
       uplift. Value per response: the median order value of these customers' buyers
       (``total_revenue / n_orders`` per buyer), 0 when nobody bought.

    ``as_of``: default ``spec.as_of`` or ``frame.attrs["as_of"]``. The user can override both numbers.
    """
    dataset = spec.dataset if spec is not None else frame.attrs.get("dataset")
    if wh is not None and dataset:
        past = _past_uplift(wh, dataset)
        if past is not None:
            return past
    day = as_of if as_of is not None else (spec.as_of if spec is not None else frame.attrs.get("as_of"))
    n = len(frame)
    natural = 0.0
    basis = f"{RESPONSE_WINDOW_DAYS}-day purchase rate"
    if n and day is not None and "last_purchase" in frame.columns:
        end = pd.Timestamp(day).normalize()
        last = pd.to_datetime(frame["last_purchase"])
        age = (end - last.dt.normalize()).dt.days
        natural = float(((age >= 0) & (age < RESPONSE_WINDOW_DAYS)).sum() / n)
    orders = (pd.to_numeric(frame["n_orders"], errors="coerce").fillna(0).to_numpy(float)
              if "n_orders" in frame.columns else np.zeros(n))
    buyers = orders > 0
    if natural == 0.0 and buyers.any():
        natural = float((orders[buyers] >= 2).mean())
        basis = "repeat-purchase rate (nobody bought in the last 30 days)"
    rate = min(ASSUMED_INCREMENTAL_RESPONSE, natural)
    value = 0.0
    if buyers.any() and "total_revenue" in frame.columns:
        rev = pd.to_numeric(frame["total_revenue"], errors="coerce").to_numpy(float)[buyers]
        aov = rev / orders[buyers]
        aov = aov[np.isfinite(aov)]
        if len(aov):
            value = float(max(np.median(aov), 0.0))

    source = (f"no earlier campaign read-out on this dataset: an incremental response of "
              f"{percent(ASSUMED_INCREMENTAL_RESPONSE)} is assumed (capped at the selection's {basis}, "
              f"{percent(natural)}, which includes purchases a campaign does not cause); value per response: "
              "their median order value. A stored read-out replaces the assumption with a measured uplift")
    return {"response_rate": rate, "value_per_response": value, "source": source, "natural_rate": natural}


def _past_uplift(wh: Warehouse, dataset: str) -> dict | None:
    from analytics.campaigns.store import campaign_readout, list_campaigns

    try:
        past = list_campaigns(wh, dataset)
    except Exception:  # no campaign tables: no history
        return None
    for row in past[past["has_outcomes"]].itertuples():  # newest first
        r = campaign_readout(wh, int(row.id))
        o = (r or {}).get("overall") or {}
        up, conv_t, rev_t = o.get("uplift_conversion"), o.get("conversion_t"), o.get("revenue_per_customer_t")
        if r is None or o.get("too_small") or up is None or up <= 0 or not conv_t or not r.get("revenue_given"):
            continue
        return {"response_rate": float(up), "value_per_response": float(max(rev_t or 0.0, 0.0) / conv_t),
                "source": f"measured uplift of the earlier campaign {row.name!r} (treatment minus control "
                          "conversion) and its revenue per converted customer"}
    return None


def default_response(frame: pd.DataFrame, spec: CampaignSpec | None = None, *, as_of=None,
                     wh: Warehouse | None = None) -> tuple[float, float]:
    """``(response_rate, value_per_response)`` derived from the data: see :func:`response_defaults`
    (the measured uplift of an earlier campaign when ``wh`` is given and one exists, else an assumed
    2 % incremental response capped at the selection's natural purchase rate, and the median order value)."""
    d = response_defaults(frame, spec, as_of=as_of, wh=wh)
    return d["response_rate"], d["value_per_response"]


def as_float(x: Any) -> float | None:
    """JSON-friendly float (None for NaN/inf)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
