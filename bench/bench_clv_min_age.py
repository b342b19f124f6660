"""Choose the formula CLV's minimum customer age on validation windows (never a reported holdout).

For each data set and validation window, the formula CLV with margin 1, no discounting and a
horizon equal to the window predicts each customer's net revenue in the window; we report,
per minimum age, the RMSE over buyers, the RMSE over customers younger than 3 months at the
window start (the ones the annualisation blows up), and the top-decile revenue capture.

    python bench/bench_clv_min_age.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.bootstrap import SAMPLE_FILE  # noqa: E402
from analytics.ingest import ingest  # noqa: E402
from analytics.scores import CLVParams, clv_formula  # noqa: E402
from analytics.summary import customer_summary  # noqa: E402
from analytics.warehouse import Warehouse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: (data set, file, validation windows: (calibration end, window end)) — all before the README's holdouts
CASES = [
    ("sample", SAMPLE_FILE, [("2025-03-31", "2025-06-30"), ("2025-06-30", "2025-09-30")]),
    ("cdnow", ROOT / "tests" / "data" / "CDNOW_sample.txt", [("1997-06-30", "1997-09-30"), ("1997-04-30", "1997-07-31")]),
]
AGES = (0.0, 1.0, 2.0, 3.0, 6.0, 9.0, 12.0)


def holdout_revenue(wh, dataset, start, end) -> pd.Series:
    return wh.cursor().execute(
        "SELECT customer_id, coalesce(sum(revenue) FILTER (WHERE event_type='purchase'),0) - "
        "coalesce(sum(revenue) FILTER (WHERE event_type='return'),0) AS rev FROM events WHERE dataset = ? "
        "AND event_time >= ? AND event_time < ? GROUP BY customer_id",
        [dataset, pd.Timestamp(start) + pd.Timedelta(days=1), pd.Timestamp(end) + pd.Timedelta(days=1)],
    ).df().set_index("customer_id")["rev"]


def main() -> None:
    wh = Warehouse(":memory:")
    rows = []
    for name, path, windows in CASES:
        ingest(wh, path, name)
        for cal_end, end in windows:
            s = customer_summary(wh, name, cal_end)
            s = s[s["n_orders"] > 0]
            actual = holdout_revenue(wh, name, cal_end, end).reindex(s.index).fillna(0.0).to_numpy()
            months = (pd.Timestamp(end) - pd.Timestamp(cal_end)).days / 30.4375
            age_days = (pd.Timestamp(cal_end) + pd.Timedelta(days=1) - pd.to_datetime(s["first_purchase"])).dt.days
            young = (age_days < 91).to_numpy()
            for a in AGES:
                p = CLVParams(margin=1.0, horizon_months=months, discount_rate=0.0, expected_lifetime_years=50,
                              min_age_months=a)
                pred = clv_formula(s, p, as_of=cal_end).to_numpy()
                top = np.argsort(-pred, kind="stable")[: max(1, len(pred) // 10)]
                rows.append({"data": name, "window": f"{cal_end}..{end}", "min_age": a,
                             "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
                             "rmse_young": float(np.sqrt(np.mean((pred[young] - actual[young]) ** 2))) if young.any() else np.nan,
                             "n_young": int(young.sum()),
                             "top_decile": float(actual[top].sum() / actual.sum()) if actual.sum() else np.nan})
    t = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(t.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print("\nmean over windows (each window's RMSE divided by its RMSE at min_age 1):")
    t["rel_rmse"] = t["rmse"] / t.groupby(["data", "window"])["rmse"].transform(lambda v: v[t.loc[v.index, "min_age"] == 1.0].iloc[0])
    print(t.groupby("min_age")[["rel_rmse", "top_decile"]].mean().to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
