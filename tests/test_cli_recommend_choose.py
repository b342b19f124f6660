"""`valuescope recommend choose` in words: the chosen model and its settings, never raw JSON."""
from __future__ import annotations

import datetime as dt
import json

from analytics.cli import main
from analytics.commands.recommend import settings_text
from analytics.warehouse import Warehouse


def test_settings_in_words():
    assert settings_text({}) == "no settings"
    assert settings_text({"l2": 300.0}) == "l2 300"
    assert settings_text({"factors": 16, "half_life_days": 30.5}) == "factors 16, half_life_days 30.5"


def test_choose_without_parameters_prints_no_braces(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    wh = Warehouse(db)
    rows = [("a", dt.datetime(2024, 1, 1), "A"), ("b", dt.datetime(2024, 1, 2), "B"),
            ("c", dt.datetime(2024, 1, 3), "C"), ("a", dt.datetime(2024, 3, 1), "B")]
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('few')")
        for c, t, i in rows:
            tx.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, item_id) "
                       "VALUES ('few', ?, ?, 'purchase', ?)", [c, t, i])
    wh.close()
    assert main(["recommend", "choose", "--dataset", "few", "--as-of", "2024-04-01", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith("default: Popularity (baseline), which has no settings (popularity is the default: ")
    assert "{}" not in out
    assert main(["recommend", "choose", "--dataset", "few", "--as-of", "2024-04-01", "--db", db,
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == {}
