"""Outcomes parsing and the uplift statistics, cross-checked against independent formulas."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import campaigns as c


def planted(n=2000, p_t=0.20, p_c=0.10, seed=0, segments=("A", "B")):
    rng = np.random.default_rng(seed)
    ids = [f"u{i:05d}" for i in range(2 * n)]
    group = np.array(["treatment"] * n + ["control"] * n)
    seg = np.resize(np.array(segments), 2 * n)
    targets = pd.DataFrame({"customer_id": ids, "rank": np.arange(1, 2 * n + 1), "segment": seg, "group": group})
    conv = np.concatenate([rng.random(n) < p_t, rng.random(n) < p_c])
    rev = np.where(conv, rng.lognormal(3.0, 0.5, 2 * n), 0.0)
    out = pd.DataFrame({"customer_id": ids, "converted": conv, "revenue": rev})
    return targets, out


def test_planted_uplift_detected():
    targets, out = planted()
    r = c.readout(targets, out)
    o = r["overall"]
    lo, hi = o["ci95"]
    assert lo < 0.10 < hi
    assert o["p_value"] < 0.001
    assert o["p_value_method"] == "two-proportion z-test"
    assert not o["too_small"]
    assert o["n_treatment"] == 2000 and o["n_control"] == 2000
    # per segment rows cover everyone
    assert sum(s["n_treatment"] + s["n_control"] for s in r["per_segment"]) == 4000
    assert {s["segment"] for s in r["per_segment"]} == {"A", "B"}
    import json

    json.dumps(r)  # JSON-serializable


def test_null_case_mostly_not_significant():
    rejections = 0
    for seed in range(40):
        targets, out = planted(n=500, p_t=0.15, p_c=0.15, seed=100 + seed)
        if c.readout(targets, out)["overall"]["p_value"] < 0.05:
            rejections += 1
    assert rejections <= 6  # ~5% expected (2 of 40); 6 allows for chance


def test_statistics_match_independent_formulas():
    targets, out = planted(n=300, p_t=0.3, p_c=0.2, seed=5)
    o = c.readout(targets, out)["overall"]
    t = targets["group"] == "treatment"
    k1, n1 = int(out["converted"][t].sum()), int(t.sum())
    k2, n2 = int(out["converted"][~t].sum()), int((~t).sum())
    p1, p2 = k1 / n1, k2 / n2
    z = 1.959963984540054

    def wilson(k, n):  # Newcombe (1998) eq. for the score interval, written out independently
        a = 2 * k + z * z
        b = z * math.sqrt(z * z + 4 * k * (1 - k / n))
        d = 2 * (n + z * z)
        return (a - b) / d, (a + b) / d

    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    lo = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    assert o["ci95"] == pytest.approx([lo, hi], abs=1e-12)
    # z-test p-value equals the chi-square test without continuity correction
    chi2, p, _, _ = stats.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    assert o["p_value"] == pytest.approx(p, rel=1e-9)
    # revenue: Welch t-test of scipy and its CI
    r1, r2 = out["revenue"][t].to_numpy(), out["revenue"][~t].to_numpy()
    res = stats.ttest_ind(r1, r2, equal_var=False)
    assert o["p_value_revenue"] == pytest.approx(res.pvalue, rel=1e-9)
    ci = res.confidence_interval(0.95)
    assert o["ci95_revenue"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    assert o["uplift_revenue"] == pytest.approx(r1.mean() - r2.mean())


def test_small_groups_use_fisher_and_warn():
    targets, out = planted(n=20, p_t=0.3, p_c=0.05, seed=2)
    o = c.readout(targets, out)["overall"]
    assert o["too_small"] and "fewer than 30" in o["warning"]
    assert o["p_value_method"] == "Fisher exact"
    t = targets["group"] == "treatment"
    k1, k2 = int(out["converted"][t].sum()), int(out["converted"][~t].sum())
    _, p = stats.fisher_exact([[k1, 20 - k1], [k2, 20 - k2]])
    assert o["p_value"] == pytest.approx(p)


def test_unknown_and_missing_ids():
    targets, out = planted(n=100, seed=1)
    extra = pd.DataFrame({"customer_id": ["zz1", "zz2", "zz3"], "converted": [True, False, True],
                          "revenue": [5.0, 0.0, 7.0]})
    dropped = out.iloc[10:]  # 10 treatment customers without an outcome
    r = c.readout(targets, pd.concat([dropped, extra], ignore_index=True))
    assert r["unknown_count"] == 3 and r["unknown_ids"] == ["zz1", "zz2", "zz3"]
    assert r["n_missing"] == 10
    o = r["overall"]
    k_t = int(out.iloc[10:100]["converted"].sum())  # missing ones count as not converted
    assert o["conversions_t"] == k_t and o["n_treatment"] == 100
    assert o["conversion_t"] == pytest.approx(k_t / 100)


def test_read_outcomes_formats_and_errors(tmp_path):
    text = ("Customer_ID,Converted,Revenue\n007,yes,12.5\n8,No,\n9,TRUE,3\n10,0,0\n")
    df = c.read_outcomes(io.StringIO(text))
    assert list(df["customer_id"]) == ["007", "8", "9", "10"]  # ids stay text
    assert list(df["converted"]) == [True, False, True, False]
    assert list(df["revenue"]) == [12.5, 0.0, 3.0, 0.0]
    p = tmp_path / "o.csv"
    p.write_text(text, encoding="utf-8-sig")
    assert c.read_outcomes(p).equals(df)
    # only conversions: revenue flagged as not given
    only = c.read_outcomes(io.StringIO("customer_id,converted\na,1\nb,0\n"))
    assert only.attrs["has_revenue"] is False and list(only["revenue"]) == [0.0, 0.0]
    bad = [
        ("customer_id,revenue_x\na,1\n", "lacks the column"),
        ("id,converted\na,1\n", "lacks the column\\(s\\) customer_id"),
        ("customer_id,converted,revenue\na,1,abc\n", "revenue must be a number"),
        ("customer_id,converted,revenue\na,maybe,1\n", "converted must be 0/1"),
        ("customer_id,converted,revenue\na,1,1\nb,0,0\na,0,0\n", "more than once: 'a'"),
        ("customer_id,converted,revenue\n,1,1\n", "empty customer id"),
        ("", "the outcomes file is empty"),
    ]
    for body, msg in bad:
        with pytest.raises(c.CampaignError, match=msg):
            c.read_outcomes(io.StringIO(body))
    with pytest.raises(c.CampaignError, match="no such outcomes file"):
        c.read_outcomes(tmp_path / "missing.csv")


def test_read_outcomes_from_frame_and_parquet(tmp_path):
    df = pd.DataFrame({"customer_id": [1, 2, 3], "converted": [True, False, True], "revenue": [5.0, np.nan, 2.5]})
    got = c.read_outcomes(df)
    assert list(got["customer_id"]) == ["1", "2", "3"]
    assert list(got["converted"]) == [True, False, True]
    assert list(got["revenue"]) == [5.0, 0.0, 2.5]
    p = tmp_path / "o.parquet"
    df.assign(converted=[1.0, 0.0, 1.0]).to_parquet(p)
    pq = c.read_outcomes(p)
    assert list(pq["converted"]) == [True, False, True] and list(pq["revenue"]) == [5.0, 0.0, 2.5]
    with pytest.raises(c.CampaignError, match="converted must be 0/1"):
        c.read_outcomes(df.assign(converted=[2, 0, 1]))


def test_outcomes_with_no_rows_or_no_known_id_are_refused():
    # a header-only file, or ids written differently from the list ("17850" for "17850.0"), would
    # read out as 0 % against 0 % for everyone; they say what is wrong instead
    targets, out = planted(n=50, seed=2)
    with pytest.raises(c.CampaignError, match="the outcomes have no rows"):
        c.readout(targets, c.read_outcomes(io.StringIO("customer_id,converted,revenue\n")))
    renamed = out.assign(customer_id="x" + out["customer_id"])
    with pytest.raises(c.CampaignError, match=r"none of the 100 customer ids in the outcomes is on the "
                                              r"campaign's list \(outcomes: 'xu00000'"):
        c.readout(targets, renamed)


def test_semicolon_outcomes_with_decimal_commas(tmp_path):
    # what a spreadsheet in a comma-decimal locale saves: semicolons, "12,5", a BOM
    p = tmp_path / "o.csv"
    p.write_text("customer_id;converted;revenue\n007;ja;12,5\n8;0;\n9;1;3.25\n10;1;1,0\n".replace("ja", "yes"),
                 encoding="utf-8-sig")
    df = c.read_outcomes(p)
    assert list(df["customer_id"]) == ["007", "8", "9", "10"]
    assert list(df["converted"]) == [True, False, True, True]
    assert list(df["revenue"]) == [12.5, 0.0, 3.25, 1.0]
    assert c.read_outcomes(io.BytesIO(p.read_bytes())).equals(df)
    tabbed = c.read_outcomes(io.StringIO("customer_id\tconverted\trevenue\na\t1\t2.5\n"))
    assert list(tabbed["revenue"]) == [2.5]


def test_outcomes_that_are_not_utf8_text_say_what_to_upload_instead():
    # a picture (or spreadsheet) named .csv, and a CSV saved by a spreadsheet in Windows-1252: the
    # message says what to upload, not Python's "'utf-8' codec can't decode byte 0x89 ..."
    picture = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    with pytest.raises(c.CampaignError) as err:
        c.read_outcomes(picture)
    said = str(err.value)
    assert "not a CSV text file" in said and "customer_id, converted and revenue" in said, said
    assert "codec" not in said
    latin = "customer_id,converted,revenue\nMüller,1,12.50\n".encode("cp1252")
    with pytest.raises(c.CampaignError) as err:
        c.read_outcomes(latin)
    said = str(err.value)
    assert "not UTF-8 text" in said and "CSV UTF-8" in said and "codec" not in said, said
