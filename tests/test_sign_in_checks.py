"""The identity provider's verdict on Valuescope's client, asked before anyone is sent to it
(analytics.oidc): a wrong client secret or id is named in words by `valuescope serve` (which then does
not start) and by the sign-in page, instead of the browser silently coming back; checked against the
test suite's provider (tests/oidc_provider.py), which issues no token for the check."""
from __future__ import annotations

import pytest

from analytics import oidc
from analytics.commands.core import sign_in_refusal
from tests.oidc_provider import Provider


@pytest.fixture(scope="module")
def provider():
    with Provider().running() as p:
        yield p


def _meta(provider):
    meta, problem = oidc.fetch_discovery(provider.discovery_url)
    assert problem is None
    return meta


def test_the_token_endpoint_tells_a_wrong_secret_or_id_from_right_ones(provider):
    meta = _meta(provider)
    issued, codes = len(provider.issued), dict(provider.codes)
    for method in ("client_secret_basic", "client_secret_post"):
        assert oidc.client_problem(meta, provider.client_id, provider.client_secret, auth_method=method) is None
        wrong = oidc.client_problem(meta, provider.client_id, "not the secret", auth_method=method)
        assert "rejected the client id/secret" in wrong and "invalid_client" in wrong
        assert "rejected the client id/secret" in oidc.client_problem(meta, "someone-else", provider.client_secret,
                                                                     auth_method=method)
    # a secret with characters that need quoting in HTTP Basic is sent as Authlib sends it
    odd = Provider(client_secret="a:b/c d%")
    with odd.running():
        assert oidc.client_problem(_meta(odd), odd.client_id, odd.client_secret) is None
    assert len(provider.issued) == issued and provider.codes == codes  # nothing issued, nothing used up


def test_a_provider_that_cannot_be_reached_is_not_called_a_wrong_secret(provider):
    meta = dict(_meta(provider), token_endpoint="http://127.0.0.1:9/token")
    problem = oidc.client_problem(meta, provider.client_id, "whatever", timeout=2)
    assert "cannot be reached" in problem and "rejected" not in problem
    meta, problem = oidc.fetch_discovery(provider.issuer + "/nowhere")
    assert meta is None and "HTTP 404" in problem


def _secrets(tmp_path, provider, **kw):
    path = tmp_path / "secrets.toml"
    path.write_text(provider.secrets_toml("http://127.0.0.1:8501", **kw))
    return path


def test_serve_refuses_a_client_the_provider_rejects(tmp_path, provider):
    warnings = []
    assert sign_in_refusal([], _secrets(tmp_path, provider), warn=warnings.append) is None and not warnings
    msg = sign_in_refusal([], _secrets(tmp_path, provider, client_secret="rotated"), warn=warnings.append)
    assert "sign-in cannot work" in msg and "rejected the client id/secret" in msg and "secrets.toml" in msg
    # a discovery URL that does not answer is reported, but the server may still start
    path = _secrets(tmp_path, provider, discovery_url=provider.issuer + "/nowhere")
    assert sign_in_refusal([], path, warn=warnings.append) is None
    assert len(warnings) == 1 and "discovery URL" in warnings[0] and "HTTP 404" in warnings[0]
    # the file Streamlit is told to read (--secrets.files) is the one checked
    wrong = _secrets(tmp_path, provider, client_secret="rotated")
    assert "rejected" in sign_in_refusal(["--secrets.files", str(wrong)], warn=warnings.append)


def test_serve_exits_2_before_anything_is_written(tmp_path, provider, monkeypatch, capsys):
    from analytics.cli import main

    monkeypatch.chdir(tmp_path)
    wrong = _secrets(tmp_path, provider, client_secret="rotated")
    db = tmp_path / "w.duckdb"
    assert main(["serve", "--db", str(db), "--secrets.files", str(wrong)]) == 2
    assert "rejected the client id/secret" in capsys.readouterr().err
    assert not db.exists()
