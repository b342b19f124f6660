"""Values a real export holds that loaded without a word or could not be loaded at all:
purchases with an empty amount, Excel serial day numbers as dates, integer ids written
with a trailing '.0'."""
from __future__ import annotations

import random

from analytics.ingest import inspect_source, ingest

from tests.test_ingest_direct import attempts, line_by_line, write  # noqa: F401 (fixture)


def _order_rows(n, empty_at, seed=3):
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        amount = "" if i in empty_at else f"{rng.uniform(1, 300):.2f}"
        lines.append(f"c{rng.randint(1, 40)},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},{amount}\n")
    return lines


def test_purchases_without_amount_are_kept_counted_and_named(wh, tmp_path, attempts):
    empty_at = {4, 17, 150, 2100, 2201}  # three in the previewed rows, two after them
    p = write(tmp_path, "customer_id,order_date,amount\n" + "".join(_order_rows(2300, empty_at)))
    pv = inspect_source(p)
    assert "3 of the first 2,000 rows are purchases with no amount: they will load as orders with no revenue" \
        " (fill in the amounts to count their revenue)" in pv.warnings
    r = ingest(wh, p, "d")
    assert attempts == [True]  # the direct read kept the load
    assert r.rows_loaded == 2300 and r.rows_rejected == 0
    assert r.purchases_without_amount == 5
    assert "5 purchases have no amount; they count as orders with no revenue" in r.warnings
    assert not [w for w in r.warnings if "first 2,000" in w]  # the preview's partial count is not repeated
    n = wh.cursor().execute("SELECT count(*) FROM events WHERE dataset = 'd' AND event_type = 'purchase' "
                            "AND revenue IS NULL").fetchone()[0]
    assert n == 5
    assert r.to_dict()["purchases_without_amount"] == 5
    # the line-by-line path says the same
    _, r2, err = line_by_line(p)
    assert err is None and r2.purchases_without_amount == 5 and r2.warnings == r.warnings


def test_one_purchase_without_amount_and_views_without_amount(wh, tmp_path):
    p = write(tmp_path, "user_id,timestamp,event,amount\n"
                        "u1,2024-01-02 10:00:00,view,\n"
                        "u1,2024-01-02 10:05:00,purchase,\n"
                        "u2,2024-01-03 11:00:00,view,\n"
                        "u2,2024-01-03 11:02:00,purchase,12.50\n")
    r = ingest(wh, p, "d")
    assert r.rows_loaded == 4
    assert r.purchases_without_amount == 1  # views never have an amount: not counted
    assert "1 purchase has no amount; it counts as an order with no revenue" in r.warnings


def test_amounts_all_present_say_nothing(wh, tmp_path):
    p = write(tmp_path, "customer_id,order_date,amount\n" + "".join(_order_rows(50, set())))
    r = ingest(wh, p, "d")
    assert r.purchases_without_amount == 0
    assert not [w for w in r.warnings + inspect_source(p).warnings if "no amount" in w]
