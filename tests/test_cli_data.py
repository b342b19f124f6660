"""The data subcommands: ingest (JSON summary / one-line errors), export, delete-dataset."""
from __future__ import annotations

import json

from analytics.cli import main
from analytics.warehouse import Warehouse


def test_ingest_export_delete(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    src = tmp_path / "o.csv"
    src.write_text("customer_id,order_date,amount\nc1,2024-01-05,10\nc2,2024-01-06,x\n", encoding="utf-8")
    assert main(["ingest", str(src), "--dataset", "ds", "--db", db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["rows_read"], out["rows_loaded"], out["rows_rejected"], out["rows_duplicate"]) == (2, 1, 1, 0)
    assert main(["export", "--dataset", "ds", "--out", str(tmp_path / "e.csv"), "--db", db]) == 0
    assert (tmp_path / "e.csv").read_text().count("\n") == 2
    assert main(["delete-dataset", "ds", "--db", db]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["delete-dataset", "ds", "--yes", "--db", db]) == 0


def test_ingest_failure_is_one_line_and_nonzero(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert main(["ingest", str(empty), "--dataset", "ds", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty" in err and "Traceback" not in err


def test_ambiguous_dates_name_the_flag_then_load_with_it(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    src = tmp_path / "a.csv"
    src.write_text("customer_id,date,amount\na,02/01/2024,1\nb,03/04/2024,2\n", encoding="utf-8")
    assert main(["ingest", str(src), "--dataset", "ds", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "%d/%m/%Y" in err and "%m/%d/%Y" in err and "--date-format" in err
    assert main(["ingest", str(src), "--dataset", "ds", "--date-format", "%d/%m/%Y", "--db", db]) == 0
    capsys.readouterr()


def test_mapping_file_keep_pii_and_pseudonymize(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    src = tmp_path / "p.csv"
    src.write_text("who,when,paid,email\nA,2024-01-05,3,a@x.com\n", encoding="utf-8")
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"columns": {"customer_id": "who", "event_time": "when", "revenue": "paid"},
                             "date_format": "%Y-%m-%d"}))
    assert main(["ingest", str(src), "--dataset", "ds", "--mapping", str(m), "--keep-pii", "email",
                 "--pseudonymize", "--db", db]) == 0
    capsys.readouterr()
    wh = Warehouse(db)
    cid, attrs = wh.cursor().execute("SELECT customer_id, attributes FROM events").fetchone()
    wh.close()
    assert cid.startswith("p_") and json.loads(attrs) == {"email": "a@x.com"}
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["ingest", str(src), "--dataset", "d2", "--mapping", str(bad), "--db", db]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_serve_passes_project_streamlit_config_as_flags(tmp_path):
    from analytics.commands.core import streamlit_flags

    cfg = tmp_path / "config.toml"
    cfg.write_text('[browser]\ngatherUsageStats = true\n[server]\nmaxUploadSize = 123\n[theme]\nbase = "light"\n')
    flags = streamlit_flags(cfg)
    pairs = dict(zip(flags[::2], flags[1::2]))
    assert pairs["--server.maxUploadSize"] == "123"
    assert pairs["--theme.base"] == "light"
    # usage statistics are forced off even if a config turns them on (last flag wins)
    assert flags[-2:] == ["--browser.gatherUsageStats", "false"]
    fallback = dict(zip(*[iter(streamlit_flags(tmp_path / "missing.toml"))] * 2))
    assert fallback["--server.maxUploadSize"] == "200"


def test_serve_skips_streamlits_collection_after_every_run():
    """The project's config and the fallback both turn off the full garbage collection Streamlit
    runs after every script run (a third of the server's CPU per page view under load)."""
    from pathlib import Path

    import dashboard
    from analytics.commands.core import serve_command, streamlit_flags

    package = Path(dashboard.__file__).resolve().parent
    cmd = serve_command([], package)
    assert dict(zip(cmd[5::2], cmd[6::2]))["--runner.postScriptGC"] == "false"
    fallback = dict(zip(*[iter(streamlit_flags(Path("/nonexistent/config.toml")))] * 2))
    assert fallback["--runner.postScriptGC"] == "false"
