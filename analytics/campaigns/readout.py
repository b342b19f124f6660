"""Campaign read-out: outcomes file parsing and treatment-vs-control uplift with 95% CIs.

Statistics (per group of customers: overall and per segment):

* conversion: ``p_t - p_c`` with the Newcombe hybrid score interval (Newcombe 1998,
  "Interval estimation for the difference between independent proportions", method 10:
  Wilson score intervals of each proportion combined), which behaves well for small
  counts and proportions near 0 or 1; two-sided p-value from the pooled two-proportion
  z-test, or from Fisher's exact test (``scipy.stats.fisher_exact``) when an expected
  cell count of the 2×2 table is below 5 (``p_value_method`` says which);
* revenue per customer: difference of means with Welch's t interval (Welch–Satterthwaite
  degrees of freedom) and the Welch t-test p-value.

Conventions: campaign customers missing from the outcomes file count as not converted
with revenue 0 (``n_missing`` says how many); outcome rows whose customer is not in the
campaign are not used and are reported (``unknown_count`` and the first
``MAX_LISTED_IDS`` in ``unknown_ids``). A result is flagged ``too_small`` when either
group has fewer than ``MIN_GROUP`` (30) customers or fewer than ``MIN_CONVERSIONS`` (5)
conversions: the interval is then wide and the normal approximations unreliable.
"""
from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analytics.campaigns.spec import CampaignError

MIN_GROUP = 30
MIN_CONVERSIONS = 5
MAX_LISTED_IDS = 100
MAX_OUTCOME_ROWS = 20_000_000
Z95 = float(stats.norm.ppf(0.975))

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
_ID_ALIASES = ("customer_id", "customer", "customerid", "customer id", "client_id", "user_id")
_CONV_ALIASES = ("converted", "conversion", "responded", "response")
_REV_ALIASES = ("revenue", "value", "amount", "sales")


def _f(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _few(values, k: int = 5) -> str:
    vals = [repr(str(v)) for v in list(values)[:k]]
    return ", ".join(vals) + (" ..." if len(values) > k else "")


# ----------------------------------------------------------------- outcomes file
def _as_text(col: pd.Series) -> pd.Series:
    """A column as trimmed text ("" for missing); vectorized for text columns (CSV)."""
    if not (pd.api.types.is_string_dtype(col.dtype) and col.dtype != object):
        col = col.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return col.astype("str").fillna("").str.strip().reset_index(drop=True)


def _find(columns: dict[str, str], aliases) -> str | None:
    for a in aliases:
        if a in columns:
            return columns[a]
    return None


def _not_utf8(src) -> str:
    """Why a file that is not UTF-8 text cannot be read, and what to upload instead (a spreadsheet or
    a picture uploaded by mistake, or a CSV saved in a spreadsheet's older encoding)."""
    from analytics.ingest.dialect import _looks_binary

    head = b""
    try:
        if isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                head = f.read(65536)
        elif hasattr(src, "seek") and hasattr(src, "read"):
            src.seek(0)
            head = src.read(65536)
            src.seek(0)
    except (OSError, ValueError):
        pass
    if isinstance(head, bytes) and (_looks_binary(head) or head[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return ("the outcomes file is not a CSV text file (it holds binary data: a spreadsheet or a picture?): "
                "upload a CSV with the columns customer_id, converted and revenue")
    return ("the outcomes file is not UTF-8 text: save it as CSV UTF-8 (in Excel: Save as, CSV UTF-8) and "
            "upload it again")


def _separator(src) -> str:
    """The delimiter of a CSV's header line: comma, semicolon (what a spreadsheet in a
    comma-decimal locale writes), tab or bar, whichever it holds most of; comma by default."""
    try:
        if isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                head = f.readline(65536)
        elif hasattr(src, "seek") and hasattr(src, "tell") and hasattr(src, "readline"):
            pos = src.tell()
            head = src.readline(65536)
            src.seek(pos)
        else:
            return ","
    except (OSError, ValueError):  # unreadable: read_csv says why
        return ","
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    counts = {sep: head.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_outcomes(path_or_buffer) -> pd.DataFrame:
    """Outcomes as ``DataFrame[customer_id (str), converted (bool), revenue (float)]``.

    Accepts a CSV (or ``.parquet``) path, a file object / bytes of a CSV, or a DataFrame.
    Column names are matched case-insensitively (``customer_id``; ``converted``;
    ``revenue``), with a few common aliases. ``converted`` takes 0/1, true/false, yes/no
    (any case); a missing ``converted`` column is derived from revenue > 0 when revenue
    is given. ``revenue`` must be numeric (blank cells = 0); without a revenue column
    ``attrs["has_revenue"]`` is False and revenue is 0. CampaignError for missing columns,
    empty or duplicate customer ids (the message names a few), or bad values.
    """
    sep = ","
    if isinstance(path_or_buffer, pd.DataFrame):
        raw = path_or_buffer.copy()
        raw.columns = [str(c) for c in raw.columns]
        raw = raw.astype(object).where(raw.notna(), None)
    else:
        src = path_or_buffer
        name = str(src) if isinstance(src, (str, os.PathLike)) else str(getattr(src, "name", ""))
        if isinstance(src, (bytes, bytearray)):
            src = io.BytesIO(bytes(src))
        try:
            if name.lower().endswith(".parquet"):
                raw = pd.read_parquet(src)
                raw = raw.astype(object).where(raw.notna(), None)
            else:
                sep = _separator(src)
                raw = pd.read_csv(src, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True,
                                  encoding="utf-8-sig", nrows=MAX_OUTCOME_ROWS + 1)
        except FileNotFoundError:
            raise CampaignError(f"no such outcomes file: {name}") from None
        except pd.errors.EmptyDataError:
            raise CampaignError("the outcomes file is empty: it needs a header line customer_id,converted,revenue "
                                "and a row per contacted customer") from None
        except UnicodeDecodeError:
            raise CampaignError(_not_utf8(src)) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
            raise CampaignError(f"cannot read the outcomes file: {str(exc).splitlines()[0] if str(exc) else exc}") \
                from None
    if len(raw) > MAX_OUTCOME_ROWS:
        raise CampaignError(f"the outcomes file has more than {MAX_OUTCOME_ROWS:,} rows")
    cols = {str(c).strip().lower().replace("-", "_"): c for c in raw.columns}
    cols.update({k.replace("_", " "): v for k, v in list(cols.items())})
    id_col = _find(cols, _ID_ALIASES)
    conv_col = _find(cols, _CONV_ALIASES)
    rev_col = _find(cols, _REV_ALIASES)
    missing = [n for n, c in (("customer_id", id_col), ("converted", conv_col if conv_col or rev_col else None))
               if c is None]
    if missing:
        have = ", ".join(repr(str(c)) for c in list(raw.columns)[:8]) or "none"
        raise CampaignError(f"the outcomes file lacks the column(s) {', '.join(missing)} "
                            f"(it needs customer_id, converted and revenue; found: {have})")
    ids = _as_text(raw[id_col])
    blank = (ids == "").to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0]) + 2
        raise CampaignError(f"the outcomes file has an empty customer id (line {row})")
    dup_mask = ids.duplicated(keep=False).to_numpy()
    if dup_mask.any():
        firsts = list(dict.fromkeys(ids[dup_mask]))
        raise CampaignError(f"the outcomes file lists {len(firsts)} customer id(s) more than once: {_few(firsts)}")
    has_revenue = rev_col is not None
    if has_revenue:
        rev_raw = _as_text(raw[rev_col])
        rev_raw = rev_raw.where(rev_raw != "", "0")
        if sep != ",":  # a decimal comma ("12,5"), where a comma cannot be the delimiter
            comma = rev_raw.str.contains(",", regex=False) & ~rev_raw.str.contains(".", regex=False)
            rev_raw = rev_raw.where(~comma, rev_raw.str.replace(",", ".", regex=False))
        revenue = pd.to_numeric(rev_raw, errors="coerce").astype(float)
        bad = ~np.isfinite(revenue.to_numpy(float))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CampaignError(f"revenue must be a number; customer {ids.iloc[i]!r} has {str(rev_raw.iloc[i])!r}")
    else:
        revenue = pd.Series(np.zeros(len(raw)))
    if conv_col is not None:
        t = _as_text(raw[conv_col]).str.lower().str.replace(r"\.0+$", "", regex=True)
        is_true = t.isin(list(_TRUE)).to_numpy()
        bad = ~(is_true | t.isin(list(_FALSE)).to_numpy())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CampaignError(f"converted must be 0/1, true/false or yes/no; customer {ids.iloc[i]!r} has "
                                f"{str(raw[conv_col].iloc[i])[:40]!r}")
        converted = is_true
    else:
        converted = revenue.to_numpy(float) > 0
    out = pd.DataFrame({"customer_id": ids.array, "converted": converted,
                        "revenue": revenue.to_numpy(float)})
    out.attrs["has_revenue"] = has_revenue
    return out


# ----------------------------------------------------------------- statistics
def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% interval for p1 - p2 (Newcombe's hybrid score method 10)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (lo, hi)


def proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[float, str]:
    """Two-sided p-value for p1 == p2: pooled z-test, or Fisher exact when an expected
    cell count is below 5. Returns ``(p_value, method)``."""
    pooled = (k1 + k2) / (n1 + n2)
    expected = [n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)]
    if min(expected) < 5:
        _, p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided")
        return float(min(1.0, p)), "Fisher exact"
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * stats.norm.sf(abs(z))), "two-proportion z-test"


def welch(x: np.ndarray, y: np.ndarray) -> tuple[float, tuple[float | None, float | None], float | None]:
    """``(mean(x) - mean(y), 95% Welch CI, Welch t-test p-value)`` (None when undefined)."""
    n1, n2 = len(x), len(y)
    d = float(x.mean() - y.mean())
    if n1 < 2 or n2 < 2:
        return d, (None, None), None
    v1, v2 = float(x.var(ddof=1)), float(y.var(ddof=1))
    se2 = v1 / n1 + v2 / n2
    if se2 <= 0:
        return d, ((d, d) if d == 0 else (None, None)), (1.0 if d == 0 else None)
    se = math.sqrt(se2)
    df = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    t = float(stats.t.ppf(0.975, df))
    p = float(2 * stats.t.sf(abs(d / se), df))
    return d, (d - t * se, d + t * se), p


def compare(conv_t, conv_c, rev_t, rev_c) -> dict:
    """Treatment-vs-control statistics of one group of customers (JSON-friendly dict)."""
    conv_t, conv_c = np.asarray(conv_t, bool), np.asarray(conv_c, bool)
    rev_t, rev_c = np.asarray(rev_t, float), np.asarray(rev_c, float)
    n_t, n_c = len(conv_t), len(conv_c)
    k_t, k_c = int(conv_t.sum()), int(conv_c.sum())
    row: dict[str, Any] = {"n_treatment": n_t, "n_control": n_c, "conversions_t": k_t, "conversions_c": k_c}
    if n_t == 0 or n_c == 0:
        row.update(conversion_t=_f(k_t / n_t) if n_t else None, conversion_c=_f(k_c / n_c) if n_c else None,
                   revenue_per_customer_t=_f(rev_t.mean()) if n_t else None,
                   revenue_per_customer_c=_f(rev_c.mean()) if n_c else None,
                   uplift_conversion=None, relative_uplift=None, ci95=[None, None], p_value=None,
                   p_value_method=None, uplift_revenue=None, ci95_revenue=[None, None], p_value_revenue=None,
                   too_small=True, warning="one of the groups is empty: no comparison possible")
        return row
    p_t, p_c = k_t / n_t, k_c / n_c
    lo, hi = newcombe_interval(k_t, n_t, k_c, n_c)
    p, method = proportion_test(k_t, n_t, k_c, n_c)
    d_rev, (rlo, rhi), p_rev = welch(rev_t, rev_c)
    reasons = []
    if min(n_t, n_c) < MIN_GROUP:
        reasons.append(f"a group has fewer than {MIN_GROUP} customers")
    if min(k_t, k_c) < MIN_CONVERSIONS:
        reasons.append(f"a group has fewer than {MIN_CONVERSIONS} conversions")
    row.update(
        conversion_t=p_t, conversion_c=p_c,
        revenue_per_customer_t=_f(rev_t.mean()), revenue_per_customer_c=_f(rev_c.mean()),
        uplift_conversion=p_t - p_c, relative_uplift=_f((p_t - p_c) / p_c) if p_c > 0 else None,
        ci95=[_f(lo), _f(hi)], p_value=_f(p), p_value_method=method,
        uplift_revenue=_f(d_rev), ci95_revenue=[_f(rlo), _f(rhi)], p_value_revenue=_f(p_rev),
        too_small=bool(reasons),
        warning=("too small to tell: " + " and ".join(reasons) + "; the interval is wide and the test weak")
        if reasons else None,
    )
    return row


def readout(targets: pd.DataFrame, outcomes: pd.DataFrame) -> dict:
    """Uplift read-out of a campaign list (``customer_id``, ``group``, ``segment``) against
    outcomes (:func:`read_outcomes`). JSON-serializable dict:

    ``overall`` (a :func:`compare` row), ``per_segment`` (list of rows with ``segment``,
    largest first), ``n_outcomes``, ``n_matched``, ``n_missing`` (campaign customers
    without an outcome: counted as not converted, revenue 0), ``unknown_count`` and
    ``unknown_ids`` (the first ``MAX_LISTED_IDS`` outcome ids not in the campaign, in file
    order), ``revenue_given`` and ``method`` (a sentence on the statistics used).
    """
    need = {"customer_id", "group"}
    if not need <= set(targets.columns):
        raise CampaignError("the campaign list needs customer_id and group columns")
    if not {"customer_id", "converted", "revenue"} <= set(outcomes.columns):
        raise CampaignError("outcomes need customer_id, converted and revenue columns")
    ids = pd.Index(targets["customer_id"].astype(str).to_numpy(dtype=object))
    out_ids = pd.Index(outcomes["customer_id"].astype(str).to_numpy(dtype=object))
    if out_ids.has_duplicates:
        dup = list(dict.fromkeys(out_ids[out_ids.duplicated(keep=False)]))
        raise CampaignError(f"the outcomes list {len(dup)} customer id(s) more than once: {_few(dup)}")
    if len(out_ids) == 0:
        raise CampaignError("the outcomes have no rows: list the contacted customers (treatment and control) "
                            "with converted 0/1 and, if known, their revenue")
    known = ids.get_indexer(out_ids) >= 0
    if not known.any():
        raise CampaignError(f"none of the {len(out_ids):,} customer ids in the outcomes is on the campaign's list "
                            f"(outcomes: {_few(out_ids)}; the list: {_few(ids)}): write the ids as the exported "
                            "list does")
    unknown = out_ids[~known].tolist()
    pos = out_ids.get_indexer(ids)  # each campaign customer's outcome row, -1 when absent
    has = pos >= 0
    n_missing = int((~has).sum())
    conv_all = outcomes["converted"].astype(bool).to_numpy()
    rev_all = pd.to_numeric(outcomes["revenue"], errors="coerce").fillna(0.0).to_numpy(float)
    conv = np.where(has, conv_all[np.where(has, pos, 0)], False) if len(conv_all) else np.zeros(len(ids), bool)
    rev = np.where(has, rev_all[np.where(has, pos, 0)], 0.0) if len(rev_all) else np.zeros(len(ids))
    group = targets["group"].astype("str")
    bad = sorted(set(group.unique()) - {"treatment", "control"}, key=str)
    if bad:
        raise CampaignError(f"unknown group value(s) in the campaign list: {_few(bad)}")
    t = (group == "treatment").to_numpy(dtype=bool)
    c = ~t
    result: dict[str, Any] = {
        "overall": {"segment": "All", **compare(conv[t], conv[c], rev[t], rev[c])},
        "per_segment": [],
        "n_customers": int(len(ids)), "n_outcomes": int(len(outcomes)), "n_matched": int(known.sum()),
        "n_missing": n_missing, "unknown_count": len(unknown), "unknown_ids": unknown[:MAX_LISTED_IDS],
        "revenue_given": bool(outcomes.attrs.get("has_revenue", True)),
        "method": ("conversion uplift: Newcombe hybrid score 95% interval, two-proportion z-test "
                   "(Fisher exact when an expected count is below 5); revenue per customer: Welch t 95% "
                   "interval and t-test; customers without an outcome count as not converted, revenue 0"),
    }
    if "segment" in targets.columns:
        codes, names = pd.factorize(targets["segment"].astype(object).fillna("(none)"), sort=True)
        names = np.asarray(names, dtype=object).astype(str)
        counts = np.bincount(codes, minlength=len(names))
        for i in np.lexsort((names, -counts)):
            m = codes == i
            result["per_segment"].append(
                {"segment": str(names[i]), **compare(conv[m & t], conv[m & c], rev[m & t], rev[m & c])})
    return result
