"""`valuescope report`: the file, the permalink, list and revoke, and one-line errors."""
from __future__ import annotations

import re

import pytest

from analytics import warehouse as warehouse_mod
from analytics.cli import main
from analytics.reports import ReportError, get_report
from analytics.segments import store
from tests.reports.conftest import BIG, HTML_NAME


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    from analytics.bootstrap import ensure_default_dataset

    path = tmp_path_factory.mktemp("cli") / "cli.duckdb"
    wh = warehouse_mod.get_warehouse(path)
    if ensure_default_dataset(wh) is None:
        pytest.skip("the bundled sample is missing")
    store.save_segment(wh, HTML_NAME, BIG)
    yield path
    with warehouse_mod._WAREHOUSES_LOCK:
        w = warehouse_mod._WAREHOUSES.pop(str(path.resolve()), None)
    if w is not None:
        w.close()


def test_report_file_permalink_list_revoke(db, tmp_path, capsys):
    out = tmp_path / "sub" / "big.html"
    assert main(["report", "--segment", HTML_NAME, "--out", str(out), "--permalink", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "dataset: sample (default)" in text and "as of: 2025-12-31 (default: the last event day)" in text
    doc = out.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>") and "&lt;img src=x onerror=alert(1)&gt;" in doc
    assert "<img src=x" not in doc
    token = re.search(r"^token: (\S+)$", text, re.M).group(1)
    assert f"?report={token}" in text
    wh = warehouse_mod.get_warehouse(db)
    assert get_report(wh, token)["subject"]["name"] == HTML_NAME

    assert main(["report", "list", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert token[:6] + "…" in listing and "active" in listing and token not in listing

    assert main(["report", "revoke", token, "--db", str(db)]) == 0
    assert "revoked report" in capsys.readouterr().out
    with pytest.raises(ReportError, match="revoked"):
        get_report(wh, token)
    assert main(["report", "list", "--json", "--db", str(db)]) == 0
    assert '"status": "revoked"' in capsys.readouterr().out


def test_report_with_explicit_dataset_and_day(db, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--segment", HTML_NAME, "--out", str(out), "--dataset", "sample", "--as-of",
                 "2025-06-30", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "dataset: sample\n" in text and "as of: 2025-06-30\n" in text
    assert "data as of 30 Jun 2025" in out.read_text(encoding="utf-8")


def test_campaign_report_defaults_to_the_campaigns_day(db, tmp_path, capsys):
    campaigns = pytest.importorskip("analytics.campaigns")
    from analytics.explorer import build_frame

    wh = warehouse_mod.get_warehouse(db)
    frame = build_frame(wh, "sample", "2025-09-30")
    spec = campaigns.CampaignSpec(name="cli <campaign>", dataset="sample", as_of="2025-09-30",
                                  segments=[HTML_NAME], max_contacts=50, control_share=0.2)
    targets = campaigns.select_targets(wh, frame, spec)
    cid = campaigns.save_campaign(wh, spec, targets)
    out = tmp_path / "c.html"
    assert main(["report", "--campaign", str(cid), "--out", str(out), "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "as of: 2025-09-30 (default: the campaign's as-of day)" in text
    assert f"Campaign report: cli <campaign>: {len(targets):,} of" in text
    assert "Campaign report: cli &lt;campaign&gt;" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, message", [
    (["report", "--segment", "ghost", "--out", "x.html"], "no saved segment 'ghost'"),
    (["report", "--out", "x.html"], "--segment NAME or --campaign ID"),
    (["report", "--segment", HTML_NAME], "--out FILE.html and/or --permalink"),
    (["report", "--segment", HTML_NAME, "--out", "x.html", "--dataset", "nope"], "no dataset named 'nope'"),
    (["report", "--segment", HTML_NAME, "--out", "x.html", "--as-of", "2019-01-01"], "no customers as of 2019-01-01"),
    (["report", "revoke", "made-up-token-made-up-token"], "no such report"),
])
def test_errors_are_one_line(db, tmp_path, capsys, argv, message):
    assert main(argv + ["--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.html").exists()


def test_a_token_that_starts_with_a_dash_is_revoked_after_double_dash(db, capsys, monkeypatch):
    """Links made before tokens started with a letter or digit can still be revoked."""
    from analytics.reports import create_report, store as report_store

    snapshot = get_report(warehouse_mod.get_warehouse(db), _any_token(db, capsys))
    monkeypatch.setattr(report_store, "new_token", lambda: "-" + "x" * 31)
    wh = warehouse_mod.get_warehouse(db)
    token = create_report(wh, snapshot)
    assert token.startswith("-")
    assert main(["report", "revoke", "--db", str(db), "--", token]) == 0
    with pytest.raises(ReportError, match="revoked"):
        get_report(wh, token)


def _any_token(db, capsys) -> str:
    assert main(["report", "--segment", HTML_NAME, "--permalink", "--db", str(db)]) == 0
    return re.search(r"^token: (\S+)$", capsys.readouterr().out, re.M).group(1)
