"""Campaigns in the warehouse (migration 40).

* ``campaigns``: id, name (unique), dataset, as-of day, description, the validated
  spec (JSON), a summary (eligible count, cap and what limits it, value sources,
  expected outcome assumptions; JSON), counts, created_at (UTC);
* ``campaign_targets``: the exact list: customer id, rank, segment, scores,
  group (``grp``: treatment / control), recommended items;
* ``campaign_outcomes``: uploaded outcomes (customer id, converted, revenue,
  uploaded_at), unknown ids included so a stored read-out reports them too.

Every table has a ``dataset`` column, so deleting a dataset removes its campaigns.
A campaign (spec, list and assignment) is written in one transaction; so are
outcomes (replacing earlier ones). Names and descriptions are user text stored
as-is (trimmed, length-limited); escaping is the job of whatever renders them.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from analytics import access
from analytics.campaigns.readout import readout
from analytics.campaigns.spec import CampaignError, CampaignSpec
from analytics.warehouse import Warehouse

_TARGET_DB_COLS = ["customer_id", "rank", "segment", "rfm_segment", "grp", "expected_clv", "churn_risk",
                   "churn_value", "p_alive", "rank_score", "recommended_items"]


def _now(now=None) -> dt.datetime:
    if now is not None:
        return pd.Timestamp(now).to_pydatetime().replace(tzinfo=None)
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (pd.Timestamp, dt.date)):
        return str(v)
    return v


def _json(obj) -> str:
    return json.dumps(_clean(obj), sort_keys=True, default=str)


def save_campaign(wh: Warehouse, spec: CampaignSpec, targets: pd.DataFrame, now=None,
                  summary: dict | None = None) -> int:
    """Store a campaign: its spec, the exact ranked list and the treatment/control
    assignment, in one transaction. Returns the new id.

    ``summary``: extra facts to keep (e.g. the expected outcome shown to the user);
    ``targets.attrs`` (eligible, cap, sources) are kept too. CampaignError when the name
    exists, the list is empty, ids repeat, or the groups are not treatment/control.
    """
    spec = spec.validated()
    access.require(wh, "campaign", spec.dataset if wh.exists_dataset(spec.dataset) else None)
    need = {"customer_id", "rank", "group"}
    if not isinstance(targets, pd.DataFrame) or not need <= set(targets.columns):
        raise CampaignError("the target list needs customer_id, rank and group columns")
    if targets.empty:
        raise CampaignError("the target list is empty: nothing to save")
    df = pd.DataFrame({"customer_id": targets["customer_id"].astype(str).to_numpy()})
    if df["customer_id"].duplicated().any():
        dup = list(dict.fromkeys(df["customer_id"][df["customer_id"].duplicated()]))
        raise CampaignError(f"the target list repeats customer id(s): {', '.join(map(repr, dup[:5]))}")
    groups = targets["group"].astype(str)
    if not groups.isin(["treatment", "control"]).all():
        raise CampaignError("every target must be in the treatment or the control group")
    n_t = int((groups == "treatment").sum())
    n_c = int((groups == "control").sum())
    if n_t == 0 or n_c == 0:
        raise CampaignError("a campaign needs both a treatment and a control group")
    df["rank"] = pd.to_numeric(targets["rank"]).astype(np.int64).to_numpy()
    df["grp"] = groups.to_numpy()
    for c in ("segment", "rfm_segment", "recommended_items"):  # text; missing stays missing (NULL)
        df[c] = (targets[c].astype("str").array if c in targets.columns
                 else pd.array([None] * len(df), dtype="str"))
    for c in ("expected_clv", "churn_risk", "churn_value", "p_alive", "rank_score"):
        df[c] = pd.to_numeric(targets[c], errors="coerce").astype(float).to_numpy() if c in targets.columns \
            else np.nan
    df = df[_TARGET_DB_COLS]
    info = {k: v for k, v in dict(targets.attrs).items() if k != "spec"}
    info.update(summary or {})
    ts = _now(now)
    with wh.transaction() as tx:
        if tx.execute("SELECT count(*) FROM campaigns WHERE name = ?", [spec.name]).fetchone()[0]:
            raise CampaignError(f"a campaign named {spec.name!r} already exists; choose another name")
        cid = int(tx.execute("SELECT nextval('campaign_id_seq')").fetchone()[0])
        tx.execute(
            "INSERT INTO campaigns (id, name, dataset, as_of, description, spec, summary, n_eligible, n_targets, "
            "n_treatment, n_control, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [cid, spec.name, spec.dataset, pd.Timestamp(spec.as_of).date(), spec.description,
             _json(spec.to_dict()), _json(info), int(info.get("eligible") or len(df)), len(df), n_t, n_c, ts],
        )
        tx.register("_vs_campaign_targets", df)
        try:
            tx.execute(
                "INSERT INTO campaign_targets (campaign_id, dataset, customer_id, rank, segment, rfm_segment, grp, "
                "expected_clv, churn_risk, churn_value, p_alive, rank_score, recommended_items) "
                "SELECT ?, ?, customer_id, rank, segment, rfm_segment, grp, expected_clv, churn_risk, churn_value, "
                "p_alive, rank_score, recommended_items FROM _vs_campaign_targets", [cid, spec.dataset])
        finally:
            tx.unregister("_vs_campaign_targets")
        access.audit(wh, "save_campaign", dataset=spec.dataset, target=spec.name, rows=len(df),
                     detail={"id": cid, "treatment": n_t, "control": n_c}, cur=tx)
    return cid


_COLS = "id, name, dataset, as_of, description, spec, summary, n_eligible, n_targets, n_treatment, n_control, created_at"


def _row(row) -> dict:
    return {"id": int(row[0]), "name": row[1], "dataset": row[2], "as_of": str(row[3]),
            "description": row[4] or "", "spec": json.loads(row[5]), "summary": json.loads(row[6] or "{}"),
            "n_eligible": int(row[7] or 0), "n": int(row[8]), "n_targets": int(row[8]),
            "n_treatment": int(row[9]), "n_control": int(row[10]), "created_at": row[11]}


def _resolve(wh: Warehouse, id_or_name) -> dict:
    cur = wh.cursor()
    row = None
    if isinstance(id_or_name, (int, np.integer)) and not isinstance(id_or_name, bool):
        row = cur.execute(f"SELECT {_COLS} FROM campaigns WHERE id = ?", [int(id_or_name)]).fetchone()
    elif isinstance(id_or_name, str):
        text = id_or_name.strip()
        row = cur.execute(f"SELECT {_COLS} FROM campaigns WHERE name = ?", [text]).fetchone()
        if row is None and text.isdigit():
            row = cur.execute(f"SELECT {_COLS} FROM campaigns WHERE id = ?", [int(text)]).fetchone()
    if row is None or not wh.has_dataset(row[2]):  # a campaign of a dataset the caller cannot see: none
        raise CampaignError(f"no campaign {id_or_name!r}")
    return _row(row)


def get_campaign(wh: Warehouse, id_or_name) -> dict:
    """One campaign: id, name, dataset, as_of (ISO day), description, spec (dict), summary
    (dict), n_eligible, n (= n_targets), n_treatment, n_control, created_at, and
    outcomes_uploaded_at / n_outcomes (None / 0 before any upload). A numeric text is
    taken as an id when no campaign has that name. CampaignError if unknown."""
    c = _resolve(wh, id_or_name)
    row = wh.cursor().execute(
        "SELECT count(*), max(uploaded_at) FROM campaign_outcomes WHERE campaign_id = ?", [c["id"]]).fetchone()
    c["n_outcomes"] = int(row[0])
    c["outcomes_uploaded_at"] = row[1]
    return c


def list_campaigns(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """Campaigns, newest first: id, name, dataset, as_of, description, ranking, n_eligible,
    n_targets, n_treatment, n_control, created_at, has_outcomes."""
    sql = (f"SELECT {_COLS}, EXISTS (SELECT 1 FROM campaign_outcomes o WHERE o.campaign_id = c.id) "
           "FROM campaigns c")
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    rows = wh.cursor().execute(sql + " ORDER BY created_at DESC, id DESC", params).fetchall()
    cols = ["id", "name", "dataset", "as_of", "description", "ranking", "n_eligible", "n_targets", "n_treatment",
            "n_control", "created_at", "has_outcomes"]
    out = []
    visible = access.visible_datasets(wh)
    for r in rows:
        if visible is not None and r[2] not in visible:
            continue
        c = _row(r)
        out.append([c["id"], c["name"], c["dataset"], c["as_of"], c["description"], c["spec"].get("ranking"),
                    c["n_eligible"], c["n_targets"], c["n_treatment"], c["n_control"], c["created_at"], bool(r[12])])
    return pd.DataFrame(out, columns=cols)


def campaign_targets(wh: Warehouse, id_or_name) -> pd.DataFrame:
    """The stored list, by rank: customer_id, rank, segment, rfm_segment, expected_clv,
    churn_risk, churn_value, p_alive, rank_score, group (+ recommended_items when the
    campaign asked for recommendations)."""
    c = _resolve(wh, id_or_name)
    df = wh.cursor().execute(
        "SELECT customer_id, rank, segment, rfm_segment, expected_clv, churn_risk, churn_value, p_alive, "
        "rank_score, grp AS \"group\", recommended_items FROM campaign_targets WHERE campaign_id = ? "
        "ORDER BY rank, customer_id", [c["id"]]).df()
    if not int(c["spec"].get("recommendations") or 0):
        df = df.drop(columns=["recommended_items"])
    else:
        df["recommended_items"] = df["recommended_items"].fillna("")
    df["rank"] = df["rank"].astype(np.int64)
    df.attrs = {"campaign_id": c["id"], "name": c["name"], "dataset": c["dataset"], "as_of": c["as_of"]}
    return df


def delete_campaign(wh: Warehouse, id_or_name) -> None:
    """Delete a campaign, its list and its outcomes (one transaction)."""
    c = _resolve(wh, id_or_name)
    access.require(wh, "campaign", c["dataset"])
    with wh.transaction() as tx:
        tx.execute("DELETE FROM campaign_outcomes WHERE campaign_id = ?", [c["id"]])
        tx.execute("DELETE FROM campaign_targets WHERE campaign_id = ?", [c["id"]])
        tx.execute("DELETE FROM campaigns WHERE id = ?", [c["id"]])
        access.audit(wh, "delete_campaign", dataset=c["dataset"], target=c["name"], cur=tx)


def save_outcomes(wh: Warehouse, campaign_id, outcomes: pd.DataFrame, now=None) -> dict:
    """Store (replace) a campaign's outcomes in one transaction and return the read-out
    (:func:`analytics.campaigns.readout`). Unknown ids are kept in the table, so the
    stored read-out reports them too."""
    c = _resolve(wh, campaign_id)
    access.require(wh, "campaign", c["dataset"])
    targets = campaign_targets(wh, c["id"])
    result = readout(targets, outcomes)  # validates (duplicates...) before anything is written
    df = pd.DataFrame({"customer_id": outcomes["customer_id"].astype(str).to_numpy(),
                       "converted": outcomes["converted"].astype(bool).to_numpy(),
                       "revenue": pd.to_numeric(outcomes["revenue"], errors="coerce").fillna(0.0).to_numpy(float)})
    has_rev = bool(outcomes.attrs.get("has_revenue", True))
    ts = _now(now)
    with wh.transaction() as tx:
        tx.execute("DELETE FROM campaign_outcomes WHERE campaign_id = ?", [c["id"]])
        tx.register("_vs_campaign_outcomes", df)
        try:
            tx.execute(
                "INSERT INTO campaign_outcomes (campaign_id, dataset, customer_id, converted, revenue, "
                "revenue_given, uploaded_at) SELECT ?, ?, customer_id, converted, revenue, ?, ? "
                "FROM _vs_campaign_outcomes", [c["id"], c["dataset"], has_rev, ts])
        finally:
            tx.unregister("_vs_campaign_outcomes")
        access.audit(wh, "upload_outcomes", dataset=c["dataset"], target=c["name"], rows=len(df), cur=tx)
    return result


def campaign_outcomes(wh: Warehouse, campaign_id) -> pd.DataFrame:
    """The stored outcomes (customer_id, converted, revenue) in upload order of ids."""
    c = _resolve(wh, campaign_id)
    df = wh.cursor().execute(
        "SELECT customer_id, converted, revenue, revenue_given FROM campaign_outcomes WHERE campaign_id = ? "
        "ORDER BY customer_id", [c["id"]]).df()
    has_rev = bool(df["revenue_given"].all()) if len(df) else True
    df = df.drop(columns=["revenue_given"])
    df["converted"] = df["converted"].astype(bool)
    df.attrs["has_revenue"] = has_rev
    return df


def campaign_readout(wh: Warehouse, campaign_id) -> dict | None:
    """The read-out of a campaign's stored outcomes, or None before any upload."""
    out = campaign_outcomes(wh, campaign_id)
    if out.empty:
        return None
    res = readout(campaign_targets(wh, campaign_id), out)
    c = get_campaign(wh, campaign_id)
    res["uploaded_at"] = str(c["outcomes_uploaded_at"]) if c["outcomes_uploaded_at"] is not None else None
    return res
