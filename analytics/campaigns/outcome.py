"""What a campaign should return: expected revenue, cost, incremental return, ROI and the
return curve against the number contacted.

Assumptions (documented for the user):

* ``response_rate`` is the average probability that a contacted customer responds and
  ``value_per_response`` the revenue one response brings (defaults:
  :func:`analytics.campaigns.default_response`).
* The rate is not spread evenly: a customer's expected response is proportional to
  their (non-negative) rank score, scaled so that the average over the contacted list
  equals the set rate, and capped at 1 (the scale is solved exactly so that the average still
  equals the rate after capping, whenever the rate is reachable). Better-ranked
  customers are thus more likely to respond, which makes the return curve bend: the
  first contacts pay most, and beyond some point an extra contact costs more than it
  is expected to bring. When every score is 0 (or missing) the rate is uniform.
* expected revenue = Σ expected responses × value per response; cost = contacted ×
  cost per contact; incremental return = revenue − cost; ROI = incremental return / cost
  (None when the cost is 0).
* No ROI for a list that is not ranked: when the target list says its ranking score cannot
  rank (``targets.attrs["score_warning"]``, see :func:`analytics.campaigns.targeting.ranking_problem`),
  ``roi`` is None and ``roi_withheld`` says why.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.campaigns.spec import CampaignError


def _check(response_rate, value_per_response, cost_per_contact) -> tuple[float, float, float]:
    vals = []
    for x, what in ((response_rate, "the response rate"), (value_per_response, "the value per response"),
                    (cost_per_contact, "the cost per contact")):
        try:
            f = float(x)
        except (TypeError, ValueError):
            raise CampaignError(f"{what} must be a number, got {x!r}") from None
        if not math.isfinite(f):
            raise CampaignError(f"{what} must be a finite number")
        vals.append(f)
    rate, value, cost = vals
    if not 0 <= rate <= 1:
        raise CampaignError(f"the response rate must be between 0 and 1 (got {rate:g})")
    if value < 0:
        raise CampaignError(f"the value per response cannot be negative (got {value:g})")
    if cost < 0:
        raise CampaignError(f"the cost per contact cannot be negative (got {cost:g})")
    return rate, value, cost


def response_probabilities(scores, response_rate: float) -> np.ndarray:
    """Per-customer expected response: ``min(k × max(score, 0), 1)`` with ``k`` such that the
    mean equals ``response_rate`` (solved exactly after one sort; uniform when no score is positive)."""
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    s = np.clip(s, 0.0, None)
    n = len(s)
    if n == 0:
        return np.zeros(0)
    rate = float(response_rate)
    if rate <= 0:
        return np.zeros(n)
    if rate >= 1:
        return np.ones(n)
    positive = int((s > 0).sum())
    if positive == 0:
        return np.full(n, rate)
    if positive / n <= rate:  # even p = 1 for every scored customer cannot reach the rate
        return (s > 0).astype(float)
    # exact solve: with the j largest scores capped at 1, k = (rate n - j) / (sum of the other scores);
    # the right j is the first one whose k leaves the (j+1)-th score below the cap
    order = np.argsort(-s, kind="stable")
    desc = s[order]
    tail = np.cumsum(desc[::-1])[::-1]  # tail[j] = sum of desc[j:]
    j = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k = (rate * n - j) / tail
        ok = (k * desc <= 1.0 + 1e-12) & (tail > 0)
    first = int(np.flatnonzero(ok)[0])
    return np.minimum(k[first] * s, 1.0)


def _contacted(targets) -> pd.DataFrame:
    if isinstance(targets, pd.DataFrame):
        df = targets
    else:
        raise CampaignError("the target list must be a table")
    if "group" in df.columns:
        df = df[df["group"] == "treatment"]
    if "rank" in df.columns:
        df = df.sort_values("rank", kind="stable")
    return df


def _scores(df: pd.DataFrame) -> np.ndarray:
    if "rank_score" in df.columns:
        return pd.to_numeric(df["rank_score"], errors="coerce").to_numpy(float)
    return np.zeros(len(df))


def expected_outcome(targets: pd.DataFrame, response_rate: float, value_per_response: float,
                     cost_per_contact: float) -> dict:
    """``contacted`` (treatment rows; every row when there is no ``group`` column),
    ``expected_responses``, ``expected_revenue``, ``cost``, ``incremental_return`` and ``roi``
    (None when the cost is 0, or when the list is not ranked: ``roi_withheld`` then says why).
    See the module docstring for the assumptions."""
    rate, value, cost_each = _check(response_rate, value_per_response, cost_per_contact)
    df = _contacted(targets)
    p = response_probabilities(_scores(df), rate)
    n = int(len(df))
    responses = float(p.sum())
    revenue = responses * value
    cost = n * cost_each
    inc = revenue - cost
    warning = targets.attrs.get("score_warning") if isinstance(targets, pd.DataFrame) else None
    return {"contacted": n, "expected_responses": responses, "expected_revenue": revenue, "cost": cost,
            "incremental_return": inc, "roi": (inc / cost) if cost > 0 and not warning else None,
            "roi_withheld": f"no ROI: {warning}" if warning else None,
            "response_rate": rate, "value_per_response": value, "cost_per_contact": cost_each}


def return_curve(targets_or_ranked: pd.DataFrame, response_rate: float, value_per_response: float,
                 cost_per_contact: float, max_points: int = 500) -> pd.DataFrame:
    """Expected return when contacting the top ``n`` of the contacted list, for n = 1..N.

    Columns ``n_contacted, expected_revenue, cost, incremental_return, roi`` (ROI NaN at
    cost 0), at most ``max_points`` rows (evenly spaced in n; the first, the last and the
    break-even rows always kept). Customers' expected responses are fixed over the whole
    list (module docstring), so a shorter prefix never changes a customer's number.

    ``attrs["break_even"]``: the largest n whose n-th (marginal) contact still brings at
    least its cost (expected response × value ≥ cost per contact); contacting more loses
    money on every extra contact, so this n also maximizes the incremental return. None
    when even the first contact does not pay. ``attrs["zero_return_n"]``: the largest n
    at which the campaign as a whole still returns ≥ 0 (None if never). ``attrs["best_n"]``
    and ``attrs["best_return"]``: the n with the highest incremental return and that return.
    """
    rate, value, cost_each = _check(response_rate, value_per_response, cost_per_contact)
    if int(max_points) < 2:
        raise CampaignError("a return curve needs at least 2 points")
    df = _contacted(targets_or_ranked)
    p = response_probabilities(_scores(df), rate)
    n = len(p)
    cols = ["n_contacted", "expected_revenue", "cost", "incremental_return", "roi"]
    if n == 0:
        out = pd.DataFrame(columns=cols)
        out.attrs.update(break_even=None, zero_return_n=None, best_n=None, best_return=None)
        return out
    # p is non-increasing in rank order (scores sorted descending) except for NaN scores at the end
    ns = np.arange(1, n + 1)
    revenue = np.cumsum(p) * value
    cost = ns * cost_each
    inc = revenue - cost
    marginal = p * value - cost_each
    pays = np.flatnonzero(marginal >= -1e-12)
    # the last contact of the leading run that pays
    if len(pays) == 0 or pays[0] != 0:
        break_even = None
    else:
        breaks = np.flatnonzero(np.diff(pays) != 1)
        break_even = int(pays[breaks[0]] + 1) if len(breaks) else int(pays[-1] + 1)
    nonneg = np.flatnonzero(inc >= -1e-9)
    zero_n = int(nonneg[-1] + 1) if len(nonneg) else None
    best = int(np.argmax(inc))
    keep = np.unique(np.linspace(0, n - 1, min(int(max_points), n)).round().astype(np.int64))
    extra = [x - 1 for x in (break_even, zero_n, best + 1) if x is not None]
    if extra:
        keep = np.unique(np.concatenate([keep, extra]))
        while len(keep) > int(max_points):  # drop evenly spaced points other than the kept specials
            special = set(extra) | {0, n - 1}
            removable = [k for k in keep if k not in special]
            drop = removable[len(removable) // 2]
            keep = keep[keep != drop]
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(cost > 0, inc / np.where(cost > 0, cost, 1.0), np.nan)
    out = pd.DataFrame({"n_contacted": ns[keep], "expected_revenue": revenue[keep], "cost": cost[keep],
                        "incremental_return": inc[keep], "roi": roi[keep]})
    out.attrs.update(break_even=break_even, zero_return_n=zero_n, best_n=best + 1,
                     best_return=float(inc[best]))
    return out
