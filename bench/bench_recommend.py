"""Benchmark: item-based CF (analytics.recommend) on synthetic interactions, 100k items x 1M customers.

The interactions are drawn with NumPy: item popularity follows a power law (Zipf-like,
exponent ``--alpha``), customers belong to one of ``--clusters`` taste clusters and
draw 75% of their items from their cluster's items (by popularity within the
cluster) and the rest from the whole catalogue; 10-20 events per customer, each a
purchase (40%), cart (20%) or view (40%), weighted 1.0 / 0.3 / 0.1 as in
``load_interactions``. Timed:

* ``ItemCF().fit`` (shrunk cosine, 50 neighbours per item, computed in item blocks);
* ``recommend`` top-10 for 100k customers (excluding purchases);
* ``PopularityRecommender`` fit + recommend for the same customers (for scale);
* with ``--sql``: ``load_interactions`` from an in-memory DuckDB events table of
  ``--sql-customers`` customers (the aggregation + matrix build path);
* a naive peer: scikit-learn ``NearestNeighbors(metric="cosine", algorithm="brute")`` on
  the sparse item vectors (items x customers), queried for ``--peer-items`` items and
  extrapolated to the whole catalogue; printed as a ratio to ItemCF's fit. The
  neighbour sets of the two are compared (ItemCF with shrinkage 0 = plain cosine) as
  a correctness check.

    .venv/bin/python bench/bench_recommend.py [--customers 1000000] [--items 100000] [--seed 0]
        [--recommend-customers 100000] [--peer-items 500] [--sql] [--sql-customers 200000]

Prints each figure, peak RSS after each stage and the model's size.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp


def rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ``clear_refs`` 5), so a stage's peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def stage_peak_mb() -> float:
    """RSS high-water mark since the last ``reset_peak`` (VmHWM, MB)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def synthetic_events(n_customers: int, n_items: int, *, clusters: int = 500, alpha: float = 1.0,
                     in_cluster: float = 0.75, seed: int = 0):
    """Long arrays (customer code, item code, event type code 0=purchase 1=cart 2=view)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** alpha
    pop = pop[rng.permutation(n_items)]  # popularity rank unrelated to the item code
    item_cluster = rng.integers(0, clusters, n_items)
    by_cluster = np.argsort(item_cluster, kind="stable")
    w = pop[by_cluster]
    cum = np.cumsum(w)
    bounds = np.searchsorted(item_cluster[by_cluster], np.arange(clusters + 1))
    c_lo = np.where(bounds[:-1] > 0, cum[np.maximum(bounds[:-1] - 1, 0)], 0.0)
    c_hi = cum[np.maximum(bounds[1:] - 1, 0)]
    global_cdf = np.cumsum(pop) / pop.sum()

    per = rng.integers(10, 21, n_customers)
    cust = np.repeat(np.arange(n_customers, dtype=np.int32), per)
    taste = rng.integers(0, clusters, n_customers)[cust]
    m = cust.size
    local = rng.random(m) < in_cluster
    u = rng.random(m)
    item = np.empty(m, dtype=np.int64)
    t = taste[local]
    pos = np.searchsorted(cum, c_lo[t] + u[local] * (c_hi[t] - c_lo[t]), side="left")
    item[local] = by_cluster[np.minimum(pos, n_items - 1)]
    item[~local] = np.minimum(np.searchsorted(global_cdf, u[~local]), n_items - 1)
    etype = rng.choice(3, size=m, p=[0.4, 0.2, 0.4]).astype(np.int8)
    return cust, item.astype(np.int32), etype


def interactions_from_codes(cust, item, etype, n_customers, n_items):
    from analytics.recommend import DEFAULT_WEIGHTS, Interactions

    wt = np.array([DEFAULT_WEIGHTS["purchase"], DEFAULT_WEIGHTS["cart"], DEFAULT_WEIGHTS["view"]],
                  dtype=np.float32)
    shape = (n_customers, n_items)
    matrix = sp.csr_matrix((wt[etype], (cust, item)), shape=shape, dtype=np.float32)
    bought = etype == 0
    purchased = sp.csr_matrix((np.ones(int(bought.sum()), dtype=bool), (cust[bought], item[bought])),
                              shape=shape, dtype=bool)
    width_c, width_i = len(str(n_customers - 1)), len(str(n_items - 1))
    customer_ids = np.array([f"C{i:0{width_c}d}" for i in range(n_customers)], dtype=object)
    item_ids = np.array([f"I{i:0{width_i}d}" for i in range(n_items)], dtype=object)
    item_cat = np.array([f"cat{i % 50:02d}" for i in range(n_items)], dtype=object)
    return Interactions(matrix, purchased, customer_ids, item_ids, item_cat, dataset="synthetic")


CPU = {"last": 0.0}


def timed(fn):
    """(result, wall seconds); the process CPU seconds go to ``CPU["last"]`` (steadier on a shared box)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    CPU["last"] = time.process_time() - c0
    return out, time.perf_counter() - t0


def cpu() -> str:
    return f"CPU {CPU['last']:.1f} s"


def _ids(prefix: str, codes: np.ndarray, width: int):
    """Arrow strings prefix + zero-padded code, built in C++ (no Python loop)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pc.cast(pa.array(codes), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def bench_sql(n_customers, n_items, seed):
    """Events of ``n_customers`` in an in-memory DuckDB warehouse, then ``load_interactions`` timed."""
    import pyarrow as pa

    from analytics.recommend import load_interactions
    from analytics.warehouse import Warehouse

    cust, item, etype = synthetic_events(n_customers, n_items, seed=seed + 1)
    types = pa.array(["purchase", "cart", "view"]).take(pa.array(etype.astype(np.int32)))
    t0 = pd.Timestamp("2025-01-01").value // 1000
    span = 86400 * 10**6 * 300
    events = pa.table({
        "customer_id": _ids("C", cust, 7),
        "event_time": pa.array(t0 + np.arange(cust.size, dtype=np.int64) * 7919 % span, pa.timestamp("us")),
        "event_type": types,
        "item_id": _ids("I", item, 6),
        "category": _ids("cat", item % 50, 2),
    })
    n_events = events.num_rows
    del cust, item, etype, types
    wh = Warehouse(":memory:")
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('bench')")
        tx.register("incoming", events)
        tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, item_id, category) "
                   "SELECT 'bench', customer_id, event_time, event_type, item_id, category FROM incoming")
        tx.unregister("incoming")
    del events
    base = current_rss_mb()
    reset_peak()
    X, secs = timed(lambda: load_interactions(wh, "bench"))
    peak = stage_peak_mb() - base
    wh.close()
    return n_events, X, secs, peak


def bench_implicit(X, who, todo) -> None:
    """implicit's ALS (64 factors, 15 iterations, BM25) and BM25 item-item: fit and top-10 for ``who``."""
    from analytics.recommend import ALSRecommender, ImplicitItemKNN

    for name, make in (("als", lambda: ALSRecommender(factors=64, iterations=15)),
                       ("item_knn", lambda: ImplicitItemKNN(K=100))):
        if name not in todo:
            continue
        base = current_rss_mb()
        reset_peak()
        model, fit_s = timed(lambda: make().fit(X))
        fit_cpu = CPU["last"]
        recs, rec_s = timed(lambda: model.recommend(who, n=10))
        own = float((recs["source"] != "popularity").mean())
        print(f"{name} ({model!r}): fit {fit_s:.1f} s (CPU {fit_cpu:.1f} s); recommend top-10 for {len(who):,} "
              f"customers {rec_s:.1f} s ({cpu()}, {len(who) / rec_s:,.0f} customers/s), {own:.1%} from the model; "
              f"RSS peaked at {stage_peak_mb():,.0f} MB ({stage_peak_mb() - base:+,.0f} MB)")
        del model, recs


def bench_sequence(n_items: int, seconds: float, seed: int) -> None:
    """Training throughput of the GRU sequence model on this machine's CPU (and CUDA when present):
    the full-softmax regime (a MovieLens-sized catalogue) and the sampled softmax at ``n_items``."""
    from analytics.device import available_devices
    from analytics.recommend.sequence import throughput

    for device in [d for d in available_devices() if d in ("cuda", "cpu")]:
        for items in (1682, n_items):
            r = throughput(items, n_customers=4000, device=device, batch_size=256 if device == "cpu" else 1024,
                           seconds=seconds, random_state=seed)
            print(f"sequence model (GRU 64, embeddings 64, length 50) on {r['device']}: {items:,} items "
                  f"({'sampled softmax, 1,024 negatives' if r['sampled_softmax'] else 'full softmax'}): "
                  f"{r['tokens_per_s']:,.0f} training tokens/s over {r['seconds']:.0f} s "
                  f"({r['tokens_per_s'] * 3600 / 1e6:.1f}M tokens an hour)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--clusters", type=int, default=500)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recommend-customers", type=int, default=100_000)
    ap.add_argument("--neighbors", type=int, default=50)
    ap.add_argument("--peer-items", type=int, default=500)
    ap.add_argument("--sql", action="store_true", help="also time load_interactions through DuckDB")
    ap.add_argument("--sql-customers", type=int, default=200_000)
    ap.add_argument("--models", default="item_cf,peer,als,item_knn,sequence",
                    help="what to time (comma-separated): item_cf, peer, als, item_knn, sequence")
    ap.add_argument("--seq-seconds", type=float, default=60.0, help="sequence-model training time per catalogue")
    args = ap.parse_args()
    todo = set(args.models.split(","))

    from analytics.recommend import ItemCF, PopularityRecommender

    print(f"synthetic interactions: {args.customers:,} customers, {args.items:,} items, "
          f"{args.clusters} taste clusters, popularity exponent {args.alpha}")
    (cust, item, etype), secs = timed(lambda: synthetic_events(
        args.customers, args.items, clusters=args.clusters, alpha=args.alpha, seed=args.seed))
    X, secs2 = timed(lambda: interactions_from_codes(cust, item, etype, args.customers, args.items))
    del cust, item, etype
    row_nnz = np.diff(X.matrix.indptr)
    col_nnz = np.diff(X.matrix.tocsc().indptr)
    print(f"  generated in {secs + secs2:.1f} s: {X.matrix.nnz:,} distinct (customer, item) pairs, "
          f"{X.purchased.nnz:,} purchased; items per customer mean {row_nnz.mean():.1f}; "
          f"customers per item max {col_nnz.max():,}, median {int(np.median(col_nnz))}, "
          f"items never touched {int((col_nnz == 0).sum()):,}")
    print(f"  sum over customers of items^2 (co-occurrence work): {int((row_nnz.astype(np.int64) ** 2).sum()):,}")
    print(f"  RSS now {current_rss_mb():,.0f} MB, peak {rss_mb():,.0f} MB")

    base = current_rss_mb()
    reset_peak()
    model, fit_s = timed(lambda: ItemCF(n_neighbors=args.neighbors).fit(X))
    fit_cpu = CPU["last"]
    S = model.similarity_
    size_mb = (S.data.nbytes + S.indices.nbytes + S.indptr.nbytes) / 2**20
    print(f"ItemCF fit (shrunk cosine, {args.neighbors} neighbours/item): {fit_s:.1f} s ({cpu()}); "
          f"similarity {S.shape[0]:,} x {S.shape[1]:,} with {S.nnz:,} entries ({size_mb:.0f} MB); "
          f"RSS during fit peaked at {stage_peak_mb():,.0f} MB ({stage_peak_mb() - base:+,.0f} MB over the "
          f"{base:,.0f} MB held before: interactions, ids)")

    rng = np.random.default_rng(args.seed + 7)
    who = X.customer_ids[np.sort(rng.choice(X.n_customers, size=min(args.recommend_customers, X.n_customers),
                                            replace=False))]
    base = current_rss_mb()
    reset_peak()
    recs, rec_s = timed(lambda: model.recommend(who, n=10))
    cf_share = float((recs["source"] == "item_cf").mean())
    print(f"ItemCF recommend top-10 for {len(who):,} customers: {rec_s:.1f} s ({cpu()}) "
          f"({len(who) / rec_s:,.0f} customers/s); {len(recs):,} rows, {cf_share:.1%} from the item "
          f"neighbourhoods; RSS peaked at {stage_peak_mb():,.0f} MB ({stage_peak_mb() - base:+,.0f} MB)")
    cat = X.item_category[0]
    recs_c, rec_c_s = timed(lambda: model.recommend(who[:20_000], n=10, category=cat))
    print(f"  restricted to one category ({cat}), 20,000 customers: {rec_c_s:.1f} s ({cpu()})")

    pop, pop_fit = timed(lambda: PopularityRecommender().fit(X))
    _, pop_rec = timed(lambda: pop.recommend(who, n=10))
    print(f"Popularity fit {pop_fit:.2f} s, recommend top-10 for {len(who):,} customers {pop_rec:.1f} s ({cpu()})")

    if "als" in todo or "item_knn" in todo:
        bench_implicit(X, who, todo)
    if "sequence" in todo:
        bench_sequence(args.items, args.seq_seconds, args.seed)
    if "peer" not in todo:
        print(f"peak RSS of the whole run: {rss_mb():,.0f} MB")
        return 0
    # naive peer: brute-force cosine neighbours with scikit-learn on the item vectors
    from sklearn.neighbors import NearestNeighbors

    R = X.matrix.astype(np.float32)
    R.data = np.log1p(R.data)
    items_by_customers = R.T.tocsr()
    q = np.sort(rng.choice(X.n_items, size=min(args.peer_items, X.n_items), replace=False))
    nn = NearestNeighbors(n_neighbors=args.neighbors + 1, metric="cosine", algorithm="brute")
    _, peer_fit = timed(lambda: nn.fit(items_by_customers))
    (dist, idx), peer_q = timed(lambda: nn.kneighbors(items_by_customers[q]))
    peer_cpu = CPU["last"]
    peer_total = peer_fit + peer_q * X.n_items / len(q)
    print(f"naive peer (sklearn NearestNeighbors brute cosine, sparse item vectors): {len(q):,} items "
          f"queried in {peer_q:.1f} s ({peer_cpu:.1f} s CPU) -> {peer_total:.0f} s extrapolated to "
          f"{X.n_items:,} items; ratio peer / ItemCF fit = {peer_total / fit_s:.1f}x wall, "
          f"{peer_cpu * X.n_items / len(q) / fit_cpu:.1f}x CPU")
    plain, plain_s = timed(lambda: ItemCF(n_neighbors=args.neighbors, shrinkage=0.0).fit(X))
    overlaps = []
    for row, i in enumerate(q):
        ours = plain.similarity_[i]
        if ours.nnz == 0:
            continue
        theirs = {int(j) for j, d in zip(idx[row], dist[row]) if j != i and d < 1 - 1e-6}
        # ties at the k-th similarity may be cut differently: compare the strictly better ones
        kth = ours.data.min() if ours.nnz >= args.neighbors else -1.0
        sure = {int(j) for j, v in zip(ours.indices, ours.data) if v > kth * (1 + 1e-5)}
        if sure:
            overlaps.append(len(sure & theirs) / len(sure))
    print(f"  check: ItemCF without shrinkage (fit {plain_s:.1f} s, {cpu()}) finds {np.mean(overlaps):.1%} of the "
          f"peer's exact cosine neighbours (above the k-th tie) for {len(overlaps)} queried items")

    if args.sql:
        del model, plain, nn, items_by_customers, R, recs, recs_c, X
        n_events, Xs, sql_s, peak = bench_sql(args.sql_customers, args.items, args.seed)
        print(f"load_interactions from DuckDB: {n_events:,} events of {args.sql_customers:,} customers -> "
              f"{Xs.n_customers:,} x {Xs.n_items:,} matrix, {Xs.matrix.nnz:,} pairs in {sql_s:.1f} s "
              f"({cpu()}, DuckDB threads included; {n_events / sql_s / 1e6:.1f}M events/s); "
              f"RSS {peak:+,.0f} MB over the warehouse")
    print(f"peak RSS of the whole run: {rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
