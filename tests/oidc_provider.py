"""A small, real OpenID Connect provider for the test suite, on 127.0.0.1 (a random port).

Discovery (``/.well-known/openid-configuration``), the authorization code flow (``/authorize`` shows
a sign-in form: the person types an email; ``/token`` exchanges the code after checking the client's
id and secret), ID tokens signed with RS256 by joserfc (the Authlib project's JOSE library, which
Streamlit's sign-in uses too), and the signing key at ``/jwks``. People are configured by the test (email -> claims, e.g. ``groups``); a code is good once.

Knobs for the bad-input tests: ``expired_tokens`` (ID tokens whose ``exp`` is already past).
"""
from __future__ import annotations

import contextlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class Provider:
    def __init__(self, client_id: str = "valuescope", client_secret: str = "test-client-secret",
                 people: dict[str, dict] | None = None):
        from joserfc.jwk import RSAKey

        self.client_id = client_id
        self.client_secret = client_secret
        self.people = dict(people or {})
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.expired_tokens = False
        self.issued: list[dict] = []
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ urls
    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    def metadata(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "name", "groups"],
        }

    # ------------------------------------------------------------------ tokens
    def id_token(self, email: str, nonce: str | None) -> str:
        from joserfc import jwt

        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "sub": "sub-" + email, "email": email,
                  "email_verified": True, "name": email.split("@")[0].title(),
                  "iat": now - (7200 if self.expired_tokens else 0),
                  "exp": now - 3600 if self.expired_tokens else now + 3600}
        claims.update(self.people.get(email, {}))
        if nonce:
            claims["nonce"] = nonce
        self.issued.append(claims)
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    # ------------------------------------------------------------------ server
    @contextlib.contextmanager
    def running(self) -> Iterator["Provider"]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body, content_type="application/json", headers=None):
                data = body if isinstance(body, bytes) else (
                    json.dumps(body) if content_type == "application/json" else body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/.well-known/openid-configuration":
                    return self._send(200, provider.metadata())
                if url.path == "/jwks":
                    return self._send(200, provider.jwks())
                if url.path == "/authorize":
                    if q.get("client_id") != provider.client_id or q.get("response_type") != "code":
                        return self._send(400, {"error": "invalid_request"})
                    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                     for k, v in q.items())
                    page = ("<!doctype html><title>Test identity provider</title><h1>Test identity provider</h1>"
                            f'<form method="post" action="/authorize">{fields}'
                            '<label>Email <input name="login" id="login" type="email"></label>'
                            '<button type="submit" id="submit">Sign in</button></form>')
                    return self._send(200, page, "text/html; charset=utf-8")
                return self._send(404, {"error": "not_found"})

            def _form(self) -> dict:
                n = int(self.headers.get("Content-Length") or 0)
                return dict(urllib.parse.parse_qsl(self.rfile.read(n).decode("utf-8")))

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                form = self._form()
                if url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"email": form.get("login", ""), "nonce": form.get("nonce"),
                                            "redirect_uri": form.get("redirect_uri")}
                    target = form["redirect_uri"] + "?" + urllib.parse.urlencode(
                        {"code": code, "state": form.get("state", "")})
                    return self._send(302, b"", "text/plain", {"Location": target})
                if url.path == "/token":
                    cid, secret = form.get("client_id"), form.get("client_secret")
                    auth = self.headers.get("Authorization", "")
                    if auth.startswith("Basic "):
                        cid, _, secret = b64decode(auth[6:]).decode("utf-8").partition(":")
                        cid, secret = urllib.parse.unquote(cid), urllib.parse.unquote(secret)
                    if cid != provider.client_id or secret != provider.client_secret:
                        return self._send(401, {"error": "invalid_client"})
                    grant = provider.codes.pop(form.get("code", ""), None)
                    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                        return self._send(400, {"error": "invalid_grant"})
                    return self._send(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                            "expires_in": 3600,
                                            "id_token": provider.id_token(grant["email"], grant["nonce"])})
                return self._send(404, {"error": "not_found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def secrets_toml(self, app_url: str, *, admins=("ada@example.com",), extra: str = "",
                     client_secret: str | None = None, discovery_url: str | None = None) -> str:
        """The ``.streamlit/secrets.toml`` of an app at ``app_url`` signing in with this provider."""
        return (
            "[auth]\n"
            f'redirect_uri = "{app_url}/oauth2callback"\n'
            f'cookie_secret = "{"c" * 48}"\n'
            f'client_id = "{self.client_id}"\n'
            f'client_secret = "{client_secret or self.client_secret}"\n'
            f'server_metadata_url = "{discovery_url or self.discovery_url}"\n'
            "[valuescope]\n"
            f"admins = {json.dumps(list(admins))}\n" + extra
        )
