"""The test suite's OpenID Connect provider (tests/oidc_provider.py) behaves as a provider must, as an
Authlib client sees it: discovery, the authorization code flow, RS256-signed ID tokens checked against
its JWKS; a wrong client secret and an expired ID token are refused."""
from __future__ import annotations

import urllib.parse

import pytest
import requests

pytest.importorskip("authlib")

from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.errors import ExpiredTokenError  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError as OAuth2Error  # noqa: E402

from tests.oidc_provider import Provider  # noqa: E402

REDIRECT = "http://127.0.0.1:1/oauth2callback"


def _code(meta: dict, email: str, nonce: str = "n-1") -> str:
    q = {"client_id": "valuescope", "response_type": "code", "redirect_uri": REDIRECT, "state": "s-1",
         "nonce": nonce, "scope": "openid email"}
    form = requests.get(meta["authorization_endpoint"], params=q, timeout=10)
    assert form.status_code == 200 and 'name="login"' in form.text
    r = requests.post(meta["authorization_endpoint"], data={**q, "login": email}, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    back = urllib.parse.urlsplit(r.headers["Location"])
    params = dict(urllib.parse.parse_qsl(back.query))
    assert back.path == "/oauth2callback" and params["state"] == "s-1"
    return params["code"]


def _claims(meta: dict, id_token: str):
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": meta["issuer"]},
                          aud={"essential": True, "value": "valuescope"}).validate(token.claims)
    return token.claims


def test_discovery_code_flow_and_signed_id_token():
    with Provider(people={"ann@example.com": {"groups": ["marketing"]}}).running() as p:
        meta = requests.get(p.discovery_url, timeout=10).json()
        assert meta["issuer"] == p.issuer and meta["id_token_signing_alg_values_supported"] == ["RS256"]
        client = OAuth2Session("valuescope", p.client_secret, redirect_uri=REDIRECT)
        token = client.fetch_token(meta["token_endpoint"], code=_code(meta, "ann@example.com"))
        claims = _claims(meta, token["id_token"])
        assert claims["email"] == "ann@example.com" and claims["nonce"] == "n-1"
        assert claims["groups"] == ["marketing"]
        with pytest.raises(OAuth2Error):  # a code is good once
            client.fetch_token(meta["token_endpoint"], code="made-up")


def test_wrong_client_secret_and_expired_tokens_are_refused():
    with Provider().running() as p:
        meta = requests.get(p.discovery_url, timeout=10).json()
        bad = OAuth2Session("valuescope", "wrong secret", redirect_uri=REDIRECT)
        with pytest.raises(OAuth2Error, match="invalid_client"):
            bad.fetch_token(meta["token_endpoint"], code=_code(meta, "ann@example.com"))
        p.expired_tokens = True
        good = OAuth2Session("valuescope", p.client_secret, redirect_uri=REDIRECT)
        token = good.fetch_token(meta["token_endpoint"], code=_code(meta, "ann@example.com"))
        with pytest.raises(ExpiredTokenError):
            _claims(meta, token["id_token"])
