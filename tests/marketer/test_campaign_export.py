"""Send-ready campaign files: treatment-only and control lists, rounded money, tool headers,
attributes and email passed through only when kept and allowed."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from analytics.campaigns import CampaignError, CampaignSpec, select_targets, value_columns
from analytics.campaigns.export import campaign_files, send_list
from analytics.warehouse import Warehouse
from tests.campaigns.conftest import AS_OF, load, make_events


@pytest.fixture(scope="module")
def shop():
    from analytics.explorer import build_frame

    wh = Warehouse(":memory:")
    load(wh, "shop", make_events(200, seed=11))
    # countries and attributes as a load would have kept them (email kept as personal data)
    wh.cursor().execute(
        "UPDATE events SET country = CASE WHEN hash(customer_id) % 2 = 0 THEN 'DE' ELSE 'FR' END, "
        "attributes = json_object('Email', customer_id || '@example.com', 'Tier', "
        "CASE WHEN hash(customer_id) % 3 = 0 THEN 'gold' ELSE 'silver' END)::VARCHAR")
    frame = value_columns(wh, build_frame(wh, "shop", AS_OF))
    spec = CampaignSpec(name="Win back", dataset="shop", as_of=AS_OF, max_contacts=40, control_share=0.2)
    targets = select_targets(wh, frame, spec)
    yield wh, targets
    wh.close()


def test_treatment_file_is_the_library_treatment_list_rounded(shop):
    wh, targets = shop
    t = send_list(wh, targets, currency="EUR")
    lib = targets[targets["group"] == "treatment"].sort_values("rank")
    assert t["customer_id"].tolist() == lib["customer_id"].astype(str).tolist()
    assert len(t) == 40 and "group" not in t.columns
    assert np.allclose(t["expected_value"], np.round(lib["expected_clv"].to_numpy(), 2))
    assert np.allclose(t["expected_value"] * 100, (t["expected_value"] * 100).round(), rtol=0, atol=1e-6)  # 2 decimals
    assert list(t.columns[:2]) == ["customer_id", "segment"] and "email" not in t.columns
    c = send_list(wh, targets, group="control")
    assert set(c["customer_id"]) == set(targets.loc[targets["group"] == "control", "customer_id"].astype(str))
    assert not set(c["customer_id"]) & set(t["customer_id"])
    full = send_list(wh, targets, group=None)
    assert len(full) == len(targets) and set(full["group"]) == {"treatment", "control"}


def test_value_at_risk_is_blank_where_risk_is_unknown(shop):
    wh, targets = shop
    t = targets.copy()
    t.loc[t.index[:3], "churn_risk"] = np.nan
    t.loc[t.index[:3], "churn_value"] = 0.0
    out = send_list(wh, t, group=None, headers="machine")
    assert out["churn_value"].iloc[:3].isna().all() and out["churn_value"].iloc[3:].notna().all()


def test_email_only_when_kept_and_allowed_and_attributes_pass_through(shop):
    wh, targets = shop
    hidden = send_list(wh, targets, include_email=True, may_see_personal_data=False)
    assert "email" not in hidden.columns and "personal data" in hidden.attrs["email_note"]
    shown = send_list(wh, targets, include_email=True, may_see_personal_data=True, attributes=["country", "attr_tier"])
    assert (shown["email"] == shown["customer_id"] + "@example.com").all()
    assert set(shown["country"]) <= {"DE", "FR"} and set(shown["attr_tier"]) <= {"gold", "silver"}
    people = send_list(wh, targets, currency="GBP", headers="people", attributes=["attr_tier"])
    assert {"Customer", "Expected value (GBP)", "Churn risk (0-1)", "Tier"} <= set(people.columns)
    with pytest.raises(CampaignError, match="no customer attribute 'attr_size'"):
        send_list(wh, targets, attributes=["attr_size"])


def test_email_note_when_none_was_kept(shop):
    w = Warehouse(":memory:")
    load(w, "plain", make_events(30, seed=2))
    t = pd.DataFrame({"customer_id": ["c0001", "c0002"], "rank": [1, 2], "group": ["treatment", "control"]})
    out = send_list(w, t, dataset="plain", as_of=AS_OF, include_email=True, may_see_personal_data=True)
    assert "email" not in out.columns and "none was kept" in out.attrs["email_note"]


def test_three_files_and_an_empty_treatment_group(shop):
    wh, targets = shop
    files = campaign_files(wh, targets, name="Win back!", currency="EUR")
    assert sorted(files) == ["win_back__control.csv", "win_back__full.csv", "win_back__treatment.csv"]
    treat = pd.read_csv(io.StringIO(files["win_back__treatment.csv"]), dtype={"customer_id": str})
    assert treat["customer_id"].tolist() == send_list(wh, targets)["customer_id"].tolist()
    empty = targets.assign(group="control")
    with pytest.raises(CampaignError, match="the treatment group is empty"):
        send_list(wh, empty)


def test_cli_exports_the_treatment_file(tmp_path, capsys):
    from analytics.campaigns import save_campaign
    from analytics.cli import main
    from analytics.currency import set_dataset_currency
    from analytics.explorer import build_frame

    path = tmp_path / "w.duckdb"
    wh = Warehouse(path)
    load(wh, "shop", make_events(60, seed=5))
    set_dataset_currency(wh, "shop", "JPY")  # no minor units: whole yen in the file
    spec = CampaignSpec(name="Yen", dataset="shop", as_of=AS_OF, max_contacts=10)
    targets = select_targets(wh, build_frame(wh, "shop", AS_OF), spec)
    cid = save_campaign(wh, spec, targets)
    wh.close()
    out = tmp_path / "t.csv"
    assert main(["campaign", "export", str(cid), "--db", str(path), "--out", str(out), "--group", "treatment",
                 "--email"]) == 0
    printed = capsys.readouterr()
    assert "wrote 10 treatment rows" in printed.out and "none was kept" in printed.err
    got = pd.read_csv(out, dtype={"customer_id": str})
    want = targets[targets["group"] == "treatment"].sort_values("rank")
    assert got["customer_id"].tolist() == want["customer_id"].astype(str).tolist()
    assert np.allclose(got["expected_value"], np.round(want["expected_clv"].to_numpy(), 0))
