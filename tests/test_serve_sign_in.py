"""`valuescope serve` on a non-local address refuses to start without sign-in configured, unless told
deliberately (--allow-anonymous); on 127.0.0.1 it needs nothing."""
from __future__ import annotations

from analytics.commands.core import anonymous_refusal


def test_local_addresses_need_no_sign_in(tmp_path):
    none = tmp_path / "missing.toml"
    for extra in ([], ["--server.address", "127.0.0.1"], ["--server.address=localhost"], ["--server.port", "9"]):
        assert anonymous_refusal(extra, False, none) is None


def test_a_shared_address_without_auth_is_refused_with_the_way_out(tmp_path):
    none = tmp_path / "missing.toml"
    msg = anonymous_refusal(["--server.address", "0.0.0.0"], False, none)
    assert "refusing to serve on 0.0.0.0 without sign-in" in msg
    assert "[auth]" in msg and "--allow-anonymous" in msg and "127.0.0.1" in msg
    assert anonymous_refusal(["--server.address", "0.0.0.0"], True, none) is None


def test_a_shared_address_with_auth_configured_starts(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "https://vs.example.com/oauth2callback"\n')
    assert anonymous_refusal(["--server.address=10.0.0.5"], False, secrets) is None
    secrets.write_text("[auth\n")  # broken TOML: say so, do not serve without sign-in
    assert "cannot be read" in anonymous_refusal(["--server.address=10.0.0.5"], False, secrets)


def test_the_command_exits_2_before_starting_anything(tmp_path, monkeypatch, capsys):
    from analytics.cli import main

    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.delenv("VALUESCOPE_SECRETS", raising=False)
    assert main(["serve", "--db", str(tmp_path / "w.duckdb"), "--server.address", "0.0.0.0"]) == 2
    assert "--allow-anonymous" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()
