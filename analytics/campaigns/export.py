"""Send-ready campaign files: the treatment list to upload to an email or ads tool, the control
list to keep aside, and the full list (both groups) for analysis.

:func:`send_list` turns a target list (``select_targets`` or a stored campaign's
``campaign_targets``) into one group's rows, in rank order, with

* **tool-friendly headers** (``headers="tool"``: lower-case, no spaces or units —
  ``customer_id, email, segment, rfm_segment, expected_value, churn_risk, value_at_risk,
  probability_active, recommended_items, rank`` — which Klaviyo, Mailchimp and ad
  platforms map without help; ``"people"``: human titles with the currency code, such as
  ``Expected value (EUR)``; ``"machine"``: the library's own names);
* **rounded money** (the currency's minor units, see :mod:`analytics.formatting`) and rates
  rounded to three decimals (fractions 0-1); the value at risk is left empty where the churn
  risk is unknown (customers who never bought), never a 0 beside a blank;
* **chosen customer attributes passed through** (country and the columns kept at load time,
  as :class:`analytics.segments.activity.EventSource` reads them up to the campaign's day);
* an **email column only when** the dataset kept an email column at load time *and* the
  caller says that the user may see personal data (``may_see_personal_data``); otherwise
  the file has no email and says why in ``attrs["email_note"]``;
* **recommended items by name** (``analytics.recommend.names.item_labels`` when the
  recommender provides it: the loaded item names, else "id (category)"), in rank order.

:func:`campaign_files` writes the three CSV files (formula cells neutralized by
:func:`analytics.export.to_safe_csv`). A list without treatment rows is refused with a
message: there is nobody to contact.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from analytics import formatting
from analytics.campaigns.spec import CampaignError
from analytics.warehouse import Warehouse

HEADER_STYLES = ("tool", "people", "machine")
#: machine name -> tool-friendly header
TOOL_HEADERS = {
    "customer_id": "customer_id", "email": "email", "segment": "segment", "rfm_segment": "rfm_segment",
    "expected_clv": "expected_value", "churn_risk": "churn_risk", "churn_value": "value_at_risk",
    "p_alive": "probability_active", "recommended_items": "recommended_items", "rank": "rank", "group": "group",
    "rank_score": "rank_score",
}
#: machine name -> title for people (money titles get the currency code)
PEOPLE_HEADERS = {
    "customer_id": "Customer", "email": "Email", "segment": "Segment", "rfm_segment": "RFM segment",
    "expected_clv": "Expected value", "churn_risk": "Churn risk", "churn_value": "Value at risk",
    "p_alive": "Probability still active", "recommended_items": "Recommended items", "rank": "Rank",
    "group": "Group", "rank_score": "Ranking score",
}
MONEY = ("expected_clv", "churn_value")
RATES = ("churn_risk", "p_alive")
#: the columns of a send file, in order (attributes go after the segment columns)
SEND_COLUMNS = ("customer_id", "email", "segment", "rfm_segment", "expected_clv", "churn_risk", "churn_value",
                "p_alive", "recommended_items", "rank")
EMAIL_KEYS = ("email", "emailaddress", "mail", "email1", "e_mail")


def _norm(key: str) -> str:
    return "".join(ch for ch in str(key).lower() if ch.isalnum() or ch == "_").replace("_", "")


def email_column_key(wh: Warehouse, dataset: str) -> str | None:
    """The attribute key of an email column kept at load time (None when none was kept)."""
    rows = wh.cursor().execute(
        "SELECT k FROM (SELECT unnest(json_keys(attributes)) AS k FROM "
        "(SELECT attributes FROM events WHERE dataset = ? AND attributes IS NOT NULL LIMIT 10000)) GROUP BY k "
        "ORDER BY min(k)", [dataset]).fetchall()
    for (k,) in rows:
        if isinstance(k, str) and _norm(k) in {_norm(e) for e in EMAIL_KEYS}:
            return k
    return None


def customer_emails(wh: Warehouse, dataset: str, as_of=None) -> pd.Series:
    """customer_id -> the latest email kept at load time (up to the end of ``as_of``); empty if none."""
    key = email_column_key(wh, dataset)
    if key is None:
        return pd.Series([], dtype=object, index=pd.Index([], dtype=object), name="email")
    path = "$." + json.dumps(key)
    sql = ("SELECT customer_id, arg_max(json_extract_string(attributes, ?), event_time) "
           "FILTER (WHERE json_extract_string(attributes, ?) IS NOT NULL) AS email "
           "FROM events WHERE dataset = ? AND attributes IS NOT NULL")
    params: list = [path, path, dataset]
    if as_of is not None:
        sql += " AND event_time < ?"
        params.append(pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1))
    df = wh.cursor().execute(sql + " GROUP BY customer_id", params).df()
    return pd.Series(df["email"].to_numpy(dtype=object), index=df["customer_id"].astype(str), name="email")


def _items_by_name(wh: Warehouse, dataset: str, text: pd.Series) -> tuple[pd.Series, bool]:
    """The ``"id1; id2"`` texts with each item id replaced by its name (when the recommender can name
    items); the second value says whether names were used."""
    try:
        from analytics.recommend.names import item_labels
    except ImportError:
        return text, False
    parts = text.fillna("").astype(str).str.split("; ")
    ids = sorted({i for p in parts for i in p if i})
    if not ids:
        return text.fillna(""), True
    labels = item_labels(wh, dataset, ids)
    mapping = {str(k): str(v) for k, v in labels.items()}
    return parts.map(lambda p: "; ".join(mapping.get(i, i) for i in p if i)), True


def send_list(wh: Warehouse | None, targets: pd.DataFrame, *, dataset: str | None = None, as_of=None,
              group: str | None = "treatment", currency=None, attributes: Iterable[str] = (),
              include_email: bool = False, may_see_personal_data: bool = False, headers: str = "tool",
              items_by_name: bool = True) -> pd.DataFrame:
    """One group's rows of ``targets`` ready to send (see the module docstring). ``group``:
    ``"treatment"``, ``"control"`` or None (both, with a ``group`` column: the file for analysis).
    ``attributes``: field names of ``EventSource.fields()`` (``country``, ``attr_...``) to pass
    through. ``attrs``: ``n`` (rows), ``email_note`` (why there is no email column, or None)."""
    if headers not in HEADER_STYLES:
        raise CampaignError(f"unknown header style {headers!r} (choose one of: {', '.join(HEADER_STYLES)})")
    need = {"customer_id", "rank", "group"}
    if not isinstance(targets, pd.DataFrame) or not need <= set(targets.columns):
        raise CampaignError("a campaign list needs customer_id, rank and group columns")
    dataset = dataset or targets.attrs.get("dataset") or (targets.attrs.get("spec") or {}).get("dataset")
    as_of = as_of or targets.attrs.get("as_of") or (targets.attrs.get("spec") or {}).get("as_of")
    if group not in (None, "treatment", "control"):
        raise CampaignError(f"unknown group {group!r}: treatment, control or None for both")
    groups = targets["group"].astype(str)
    if (groups == "treatment").sum() == 0:
        raise CampaignError("the treatment group is empty: nobody would be contacted. Widen the segments or raise "
                            "the budget or the maximum number of contacts, or lower the control share")
    rows = targets if group is None else targets[groups.to_numpy() == group]
    rows = rows.sort_values(["rank", "customer_id"], kind="stable")
    ids = rows["customer_id"].astype(str).to_numpy()
    out = pd.DataFrame({"customer_id": ids})
    note = None
    if include_email:
        if wh is not None and may_see_personal_data:
            from analytics import access

            # the caller's word is not enough: the library checks the role too (analyst or admin)
            may_see_personal_data = access.may(wh, "raw_ids")
        if not may_see_personal_data:
            note = "no email column: your role may not see personal data"
        elif wh is None or not dataset:
            note = "no email column: the list does not say its dataset"
        else:
            emails = customer_emails(wh, dataset, as_of)
            if emails.empty:
                note = ("no email column: none was kept when the data were loaded (keep it on the Data page, "
                        "or with --keep-pii)")
            else:
                out["email"] = pd.Series(ids).map(emails).to_numpy(dtype=object)
    for c in ("segment", "rfm_segment"):
        if c in rows.columns:
            out[c] = rows[c].astype(object).where(rows[c].notna(), None).to_numpy()
    attrs = [a for a in attributes]
    if attrs:
        if wh is None or not dataset or as_of is None:
            raise CampaignError("customer attributes need the list's dataset and day")
        from analytics.segments.activity import EventSource

        table = EventSource(wh, dataset, as_of).attributes()
        for a in attrs:
            if a not in table.columns:
                raise CampaignError(f"this dataset has no customer attribute {a!r} "
                                    f"(attributes: {', '.join(table.columns) or 'none'})")
            out[a] = table[a].reindex(ids).to_numpy()
    for c in MONEY:
        if c in rows.columns:
            out[c] = formatting.round_money(pd.to_numeric(rows[c], errors="coerce").reset_index(drop=True), currency)
    for c in RATES:
        if c in rows.columns:
            out[c] = (pd.to_numeric(rows[c], errors="coerce").round(3) + 0.0).to_numpy()
    if "churn_value" in out.columns and "churn_risk" in out.columns:
        out.loc[out["churn_risk"].isna(), "churn_value"] = np.nan  # no risk known, no value at risk
    if "recommended_items" in rows.columns:
        text = rows["recommended_items"].astype(object).fillna("").reset_index(drop=True)
        if items_by_name and wh is not None and dataset:
            text, _ = _items_by_name(wh, dataset, text)
        out["recommended_items"] = text.to_numpy(dtype=object)
    out["rank"] = rows["rank"].astype(np.int64).to_numpy()
    if group is None:
        out["group"] = rows["group"].astype(str).to_numpy()
        if "rank_score" in rows.columns:
            out["rank_score"] = pd.to_numeric(rows["rank_score"], errors="coerce").to_numpy()
    order = [c for c in SEND_COLUMNS if c in out.columns and c not in ("recommended_items", "rank")]
    order += [a for a in attrs if a not in order]
    order += [c for c in ("recommended_items", "rank", "group", "rank_score") if c in out.columns]
    out = out[order]
    out = _rename(out, headers, currency, attrs, wh, dataset, as_of)
    out.attrs = {"n": len(out), "email_note": note, "group": group, "dataset": dataset, "as_of": as_of}
    return out


def _rename(out: pd.DataFrame, headers: str, currency, attrs, wh, dataset, as_of) -> pd.DataFrame:
    if headers == "machine":
        return out
    labels: Mapping[str, str] = {}
    if attrs and wh is not None and dataset:
        from analytics.segments.activity import EventSource

        fields = EventSource(wh, dataset, as_of).fields()
        labels = {a: fields[a].title if a in fields else a for a in attrs}
    code = getattr(formatting.resolve_currency(currency), "code", None)
    names = {}
    for c in out.columns:
        if headers == "tool":
            names[c] = TOOL_HEADERS.get(c, c)
        else:
            title = PEOPLE_HEADERS.get(c) or labels.get(c) or formatting.column_title(c)
            if c in MONEY and code:
                title = f"{title} ({code})"
            if c in RATES:
                title = f"{title} (0-1)"
            names[c] = title
    return out.rename(columns=names)


def campaign_files(wh: Warehouse | None, targets: pd.DataFrame, *, name: str = "campaign", bom: bool = False,
                   **options) -> dict[str, bytes | str]:
    """``{file name: CSV}`` for the treatment list (to upload), the control list (to keep aside) and
    the full list with both groups (for analysis), file names from the campaign ``name``.
    ``options`` go to :func:`send_list` (currency, attributes, include_email, headers...)."""
    from analytics.export import to_safe_csv

    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name).strip().lower())[:60] or "campaign"
    out = {}
    for group, suffix in (("treatment", "treatment"), ("control", "control"), (None, "full")):
        frame = send_list(wh, targets, group=group, **options)
        out[f"{stem}_{suffix}.csv"] = to_safe_csv(frame, bom=bom)
    return out
