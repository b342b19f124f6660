"""Saved segments and clustering runs in the warehouse (migrations 20, 21 and 91).

* ``segments``: name, description, definition (the rule definition as JSON data,
  never SQL), created_at / updated_at (UTC) and ``dataset``: the dataset the segment
  belongs to, or NULL for a segment shared by **all datasets** (segments saved before
  migration 91 are shared). A dataset sees its own segments and the shared ones; a
  name is unique among what one dataset sees (two datasets may each have a "Big
  spenders"; a shared segment's name is unique everywhere). A dataset's segments are
  deleted with it; shared ones stay. Pages save per dataset by default;
* ``clustering_runs``: dataset, as-of day, features, parameters, cluster names
  and profiles (JSON), number of customers, created_at;
* ``cluster_assignments``: (run id, customer id) -> cluster number and name,
  with the run's dataset (migration 21) so that deleting a dataset (which
  clears every table with a ``dataset`` column) removes them too.

A run and all its assignments are written in one transaction, so a failure
leaves no half run. Names and descriptions are user text stored as-is
(whitespace trimmed); escaping is the job of whatever renders them.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analytics import access
from analytics.segments import rules
from analytics.warehouse import Warehouse

MAX_NAME = 200
MAX_DESCRIPTION = 5000


class SegmentStoreError(ValueError):
    """A save/load request the user can fix (duplicate name, unknown segment...)."""


def _now(now=None) -> dt.datetime:
    if now is not None:
        return pd.Timestamp(now).to_pydatetime().replace(tzinfo=None)
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SegmentStoreError("a segment needs a name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise SegmentStoreError(f"a segment name can have at most {MAX_NAME} characters")
    return name


def _clean_description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise SegmentStoreError("a segment description must be text")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise SegmentStoreError(f"a segment description can have at most {MAX_DESCRIPTION} characters")
    return description


# ----------------------------------------------------------------- segments
#: what a page shows for a segment shared by every dataset
ALL_DATASETS = "All datasets"


def _clean_scope(wh: Warehouse, dataset: Any) -> str | None:
    if dataset is None:
        return None
    if not isinstance(dataset, str) or not dataset.strip():
        raise SegmentStoreError("a segment's dataset must be a dataset name (or none, for all datasets)")
    if not wh.has_dataset(dataset):
        raise SegmentStoreError(f"no dataset named {dataset!r}")
    return dataset


def _clash(tx, name: str, dataset: str | None, exclude_id: int | None = None) -> str | None:
    """Where a segment named ``name`` would collide with one already saved (None: it would not)."""
    sql = "SELECT dataset FROM segments WHERE name = ? AND id <> ?"
    params: list = [name, -1 if exclude_id is None else int(exclude_id)]
    if dataset is not None:
        sql += " AND (dataset = ? OR dataset IS NULL)"
        params.append(dataset)
    row = tx.execute(sql + " LIMIT 1", params).fetchone()
    if row is None:
        return None
    return "shared by all datasets" if row[0] is None else f"of dataset {row[0]!r}"


def save_segment(wh: Warehouse, name: str, definition: Any, description: str = "",
                 fields: Mapping[str, rules.Field] | None = None, now=None, *, dataset: str | None = None) -> int:
    """Save a new segment (the definition is validated first); returns its id. ``dataset``: the
    dataset it belongs to (None: shared by all datasets)."""
    name = _clean_name(name)
    description = _clean_description(description)
    definition = rules.validate(definition, fields)
    dataset = _clean_scope(wh, dataset)
    access.require(wh, "segment", dataset)
    ts = _now(now)
    with wh.transaction() as tx:
        where = _clash(tx, name, dataset)
        if where:
            raise SegmentStoreError(f"a segment named {name!r} already exists ({where}); choose another name")
        seg_id = tx.execute("SELECT nextval('segment_id_seq')").fetchone()[0]
        tx.execute(
            "INSERT INTO segments (id, name, description, definition, created_at, updated_at, dataset) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [seg_id, name, description, json.dumps(definition, sort_keys=True), ts, ts, dataset],
        )
        access.audit(wh, "save_segment", dataset=dataset, target=name, cur=tx)
    return int(seg_id)


def _row_to_segment(row) -> dict:
    return {"id": int(row[0]), "name": row[1], "description": row[2] or "",
            "definition": json.loads(row[3]), "created_at": row[4], "updated_at": row[5], "dataset": row[6]}


_SEG_COLS = "id, name, description, definition, created_at, updated_at, dataset"


def get_segment(wh: Warehouse, name_or_id: str | int, dataset: str | None = None) -> dict:
    """One saved segment as a dict (definition parsed; ``dataset`` None when shared). A name is
    looked up among what ``dataset`` sees (its own and the shared segments); without a dataset a
    name must be unambiguous. SegmentStoreError if unknown."""
    cur = wh.cursor()
    if isinstance(name_or_id, (int, np.integer)) and not isinstance(name_or_id, bool):
        row = cur.execute(f"SELECT {_SEG_COLS} FROM segments WHERE id = ?", [int(name_or_id)]).fetchone()
        if row is not None and dataset is not None and row[6] not in (None, dataset):
            row = None
    else:
        name = str(name_or_id).strip()
        if dataset is None:
            rows = cur.execute(f"SELECT {_SEG_COLS} FROM segments WHERE name = ? ORDER BY id", [name]).fetchall()
            if len(rows) > 1:
                where = ", ".join(repr(r[6]) for r in rows)
                raise SegmentStoreError(f"several datasets have a segment named {name!r} ({where}): say which dataset")
            row = rows[0] if rows else None
        else:
            row = cur.execute(f"SELECT {_SEG_COLS} FROM segments WHERE name = ? AND (dataset = ? OR dataset IS NULL) "
                              "ORDER BY dataset NULLS LAST LIMIT 1", [name, dataset]).fetchone()
    if row is None:
        raise SegmentStoreError(f"no saved segment {name_or_id!r}" + (f" for dataset {dataset!r}" if dataset else ""))
    return _row_to_segment(row)


def list_segments(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """Saved segments (id, name, description, definition (dict), created_at, updated_at, dataset), by
    name: those ``dataset`` sees (its own and the shared ones), or all of them."""
    sql = f"SELECT {_SEG_COLS} FROM segments"
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ? OR dataset IS NULL"
        params.append(dataset)
    rows = wh.cursor().execute(sql + " ORDER BY lower(name), id", params).fetchall()
    cols = ["id", "name", "description", "definition", "created_at", "updated_at", "dataset"]
    return pd.DataFrame([_row_to_segment(r) for r in rows], columns=cols)


_KEEP = object()


def update_segment(wh: Warehouse, name_or_id: str | int, *, name: str | None = None,
                   description: str | None = None, definition: Any = None,
                   fields: Mapping[str, rules.Field] | None = None, now=None, dataset: Any = _KEEP,
                   scope_of: str | None = None) -> dict:
    """Change a segment's name, description, definition and/or ``dataset`` (None: share it with all
    datasets; default: keep); bumps updated_at. ``scope_of``: the dataset a name is looked up in."""
    seg = get_segment(wh, name_or_id, scope_of)
    new_name = seg["name"] if name is None else _clean_name(name)
    new_desc = seg["description"] if description is None else _clean_description(description)
    new_def = seg["definition"] if definition is None else rules.validate(definition, fields)
    new_scope = seg["dataset"] if dataset is _KEEP else _clean_scope(wh, dataset)
    access.require(wh, "segment", seg["dataset"])
    with wh.transaction() as tx:
        where = _clash(tx, new_name, new_scope, seg["id"])
        if where:
            raise SegmentStoreError(f"a segment named {new_name!r} already exists ({where}); choose another name")
        tx.execute(
            "UPDATE segments SET name = ?, description = ?, definition = ?, updated_at = ?, dataset = ? WHERE id = ?",
            [new_name, new_desc, json.dumps(new_def, sort_keys=True), _now(now), new_scope, seg["id"]],
        )
    return get_segment(wh, seg["id"])


def delete_segment(wh: Warehouse, name_or_id: str | int, dataset: str | None = None) -> None:
    """Delete a saved segment (a name looked up among what ``dataset`` sees); SegmentStoreError if none."""
    seg = get_segment(wh, name_or_id, dataset)
    access.require(wh, "segment", seg["dataset"])
    with wh.transaction() as tx:
        tx.execute("DELETE FROM segments WHERE id = ?", [seg["id"]])
        access.audit(wh, "delete_segment", dataset=seg["dataset"], target=seg["name"], cur=tx)


def evaluate_segment(wh: Warehouse, name_or_id: str | int, frame: pd.DataFrame,
                     fields: Mapping[str, rules.Field] | None = None, *, dataset: str | None = None,
                     source=None) -> pd.Series:
    """Re-evaluate a saved segment on current customer data: boolean mask over ``frame``. ``dataset``
    (default ``frame.attrs["dataset"]``) resolves the name; ``source`` (an
    :class:`analytics.segments.activity.EventSource`) answers activity conditions."""
    dataset = dataset if dataset is not None else frame.attrs.get("dataset")
    return rules.evaluate(get_segment(wh, name_or_id, dataset)["definition"], frame, fields, source=source)


# ----------------------------------------------------------------- clustering runs
def save_clustering_run(wh: Warehouse, model, dataset: str, as_of, label: str | None = None,
                        now=None) -> int:
    """Persist a fitted ``CustomerClustering`` and its assignments (one transaction).

    ``model.labels_`` must be indexed by customer id. Returns the run id.
    """
    from analytics.segments.clustering import _jsonable

    model._check_fitted()
    if not isinstance(dataset, str) or not dataset:
        raise SegmentStoreError("a clustering run needs a dataset name")
    access.require(wh, "model", dataset if wh.exists_dataset(dataset) else None)
    try:
        as_of_day = pd.Timestamp(as_of).date()
    except (ValueError, TypeError):
        raise SegmentStoreError(f"not a date: {as_of!r}") from None
    summary = model.summary()
    labels = model.labels_
    ids = labels.index.astype(str)
    if ids.has_duplicates:
        raise SegmentStoreError("customer ids must be unique to save cluster assignments")
    names = np.array(model.names_, dtype=object)
    assign = pd.DataFrame({
        "customer_id": ids.to_numpy(dtype=object),
        "cluster": labels.to_numpy().astype(np.int32),
        "name": names[labels.to_numpy()],
    })
    params = dict(summary["parameters"])
    params["dropped_features"] = summary["dropped_features"]
    profiles = {"profiles": summary["profiles"], "scaled_centers": summary["scaled_centers"],
                "center": summary["center"], "scale": summary["scale"],
                "fill_values": summary["fill_values"], "inertia": summary["inertia"]}
    with wh.transaction() as tx:
        run_id = int(tx.execute("SELECT nextval('clustering_run_id_seq')").fetchone()[0])
        tx.execute(
            "INSERT INTO clustering_runs (id, dataset, as_of, features, parameters, names, profiles, "
            "n_customers, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, dataset, as_of_day, json.dumps(summary["features"]),
             json.dumps(_jsonable(params), sort_keys=True), json.dumps(summary["names"]),
             json.dumps(_jsonable(profiles)), len(assign), label, _now(now)],
        )
        tx.register("_vs_assign", assign)
        try:
            tx.execute(
                "INSERT INTO cluster_assignments (run_id, customer_id, cluster, name, dataset) "
                "SELECT ?, customer_id, cluster, name, ? FROM _vs_assign", [run_id, dataset])
        finally:
            tx.unregister("_vs_assign")
    return run_id


def _run_row(row) -> dict:
    return {"id": int(row[0]), "dataset": row[1], "as_of": row[2], "features": json.loads(row[3]),
            "parameters": json.loads(row[4]), "names": json.loads(row[5]),
            "profiles": json.loads(row[6]) if row[6] else None, "n_customers": int(row[7]),
            "label": row[8], "created_at": row[9]}


_RUN_COLS = "id, dataset, as_of, features, parameters, names, profiles, n_customers, label, created_at"


def get_clustering_run(wh: Warehouse, run_id: int) -> dict:
    row = wh.cursor().execute(f"SELECT {_RUN_COLS} FROM clustering_runs WHERE id = ?", [int(run_id)]).fetchone()
    if row is None:
        raise SegmentStoreError(f"no clustering run {run_id}")
    return _run_row(row)


def list_clustering_runs(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """Runs (newest first), optionally of one dataset; profiles left out for brevity."""
    sql = f"SELECT {_RUN_COLS} FROM clustering_runs"
    params: list = []
    if dataset is not None:
        sql += " WHERE dataset = ?"
        params.append(dataset)
    sql += " ORDER BY created_at DESC, id DESC"
    rows = [_run_row(r) for r in wh.cursor().execute(sql, params).fetchall()]
    cols = ["id", "dataset", "as_of", "features", "parameters", "names", "n_customers", "label", "created_at"]
    return pd.DataFrame([{k: r[k] for k in cols} for r in rows], columns=cols)


def latest_clustering_run(wh: Warehouse, dataset: str, as_of=None) -> int | None:
    """Id of the newest run of ``dataset`` (for ``as_of`` if given), or None."""
    sql = "SELECT id FROM clustering_runs WHERE dataset = ?"
    params: list = [dataset]
    if as_of is not None:
        sql += " AND as_of = ?"
        params.append(pd.Timestamp(as_of).date())
    row = wh.cursor().execute(sql + " ORDER BY created_at DESC, id DESC LIMIT 1", params).fetchone()
    return None if row is None else int(row[0])


def load_assignments(wh: Warehouse, run_id: int) -> pd.DataFrame:
    """customer_id-indexed ``cluster`` and ``cluster_name`` of a run."""
    get_clustering_run(wh, run_id)
    df = wh.cursor().execute(
        "SELECT customer_id, cluster, name AS cluster_name FROM cluster_assignments "
        "WHERE run_id = ? ORDER BY customer_id", [int(run_id)]).df()
    return df.set_index("customer_id")


def assign_with_run(wh: Warehouse, run_id: int, frame: pd.DataFrame) -> pd.DataFrame:
    """Assign the customers of ``frame`` (e.g. at a later as-of date) to a saved run's
    clusters: the run's preprocessing (fill values, scaling) and the nearest cluster
    centre in scaled units. For k-means runs this is the k-means rule; for Gaussian
    mixtures it ignores the covariances (an approximation). Returns ``cluster`` and
    ``cluster_name`` indexed like ``frame``.
    """
    from analytics.segments.clustering import _Prep, _resolve_features

    run = get_clustering_run(wh, run_id)
    prof = run["profiles"] or {}
    feats = run["features"]
    try:
        prep = _Prep(features=feats, dropped=[], fill=np.asarray(prof["fill_values"], dtype=float),
                     center=np.asarray(prof["center"], dtype=float),
                     scale=np.asarray(prof["scale"], dtype=float),
                     scaling=run["parameters"]["scaling"])
        centres = np.asarray(prof["scaled_centers"], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise SegmentStoreError(f"clustering run {run_id} has no stored centres") from exc
    frame, _ = _resolve_features(frame, feats)
    x = prep.transform(frame).astype(np.float64)
    if len(x) == 0:
        labels = np.zeros(0, dtype=np.int64)
    else:
        d = (x ** 2).sum(axis=1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(axis=1)[None, :]
        labels = np.argmin(d, axis=1)
    names = np.array(run["names"], dtype=object)
    return pd.DataFrame({"cluster": labels, "cluster_name": names[labels]}, index=frame.index)


def _renamed_in(definition: dict, old: str, new: str) -> dict | None:
    """``definition`` with its ``cluster_name`` conditions on ``old`` naming ``new`` instead (None:
    no condition names ``old``)."""
    changed = False

    def walk(g: dict) -> dict:
        nonlocal changed
        out = []
        for c in g.get("conditions", []):
            if "conditions" in c:
                out.append(walk(c))
                continue
            c = dict(c)
            if c.get("field") == "cluster_name":
                v = c.get("value")
                if v == old:
                    c["value"], changed = new, True
                elif isinstance(v, list) and old in v:
                    c["value"], changed = [new if x == old else x for x in v], True
            out.append(c)
        return {**g, "conditions": out}

    renamed = walk(definition)
    return renamed if changed else None


def rename_cluster(wh: Warehouse, run_id: int, cluster: int, name: str) -> int:
    """Rename one cluster of a run (run names and assignments, one transaction).

    When the run is the newest of its dataset (for its as-of day or overall: the one segments are
    evaluated on), the dataset's saved segments that select the cluster by its old name follow the
    new one in the same transaction, instead of silently selecting nobody. Returns how many
    segments were changed."""
    run = get_clustering_run(wh, run_id)
    access.require(wh, "segment", run["dataset"])
    if not isinstance(name, str) or not name.strip():
        raise SegmentStoreError("a cluster name must be non-empty text")
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise SegmentStoreError(f"a cluster name can have at most {MAX_NAME} characters")
    names = list(run["names"])
    if not isinstance(cluster, (int, np.integer)) or not 0 <= int(cluster) < len(names):
        raise SegmentStoreError(f"run {run_id} has no cluster {cluster!r} (clusters 0..{len(names) - 1})")
    if name in [n for i, n in enumerate(names) if i != int(cluster)]:
        raise SegmentStoreError(f"another cluster of run {run_id} is already named {name!r}")
    old = names[int(cluster)]
    names[int(cluster)] = name
    followed = []
    if old != name and int(run_id) in (latest_clustering_run(wh, run["dataset"], run["as_of"]),
                                       latest_clustering_run(wh, run["dataset"])):
        rows = wh.cursor().execute("SELECT id, definition FROM segments WHERE dataset = ?",
                                   [run["dataset"]]).fetchall()
        for seg_id, definition in rows:
            renamed = _renamed_in(json.loads(definition), old, name)
            if renamed is not None:
                followed.append((int(seg_id), renamed))
    with wh.transaction() as tx:
        tx.execute("UPDATE clustering_runs SET names = ? WHERE id = ?", [json.dumps(names), int(run_id)])
        tx.execute("UPDATE cluster_assignments SET name = ? WHERE run_id = ? AND cluster = ?",
                   [name, int(run_id), int(cluster)])
        ts = _now()
        for seg_id, renamed in followed:
            tx.execute("UPDATE segments SET definition = ?, updated_at = ? WHERE id = ?",
                       [json.dumps(renamed, sort_keys=True), ts, seg_id])
    return len(followed)


def delete_clustering_run(wh: Warehouse, run_id: int) -> None:
    """Delete a run and its assignments (one transaction)."""
    run = get_clustering_run(wh, run_id)
    access.require(wh, "model", run["dataset"])
    with wh.transaction() as tx:
        tx.execute("DELETE FROM cluster_assignments WHERE run_id = ?", [int(run_id)])
        tx.execute("DELETE FROM clustering_runs WHERE id = ?", [int(run_id)])
