"""Checks of an OpenID Connect provider's configuration before anyone is sent to it.

Streamlit's sign-in callback hides what the provider answered: a provider that refuses the
client's id or secret only sends the browser back to the sign-in page (the server log says
why). These checks ask the provider themselves, so the problem can be named in words:

* :func:`fetch_discovery`: the discovery document at ``server_metadata_url`` answers and names
  the endpoints a sign-in needs;
* :func:`client_problem`: the token endpoint accepts the client's credentials. It is asked to
  exchange an authorization code that does not exist, with the client id and secret sent as
  Streamlit's sign-in sends them (HTTP Basic, or in the form with ``client_secret_post``); by the
  OAuth 2.0 standard (RFC 6749, section 5.2) a provider answers ``invalid_client`` (HTTP 401)
  when it does not know the client or its secret, and ``invalid_grant`` when it does and only
  the code is wrong. Nothing is signed in and no token is issued.

Used by ``valuescope serve`` when it starts with sign-in configured and by the sign-in page when
the Sign in button is pressed. Standard library only (no Streamlit).
"""
from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

#: the keys of a provider's table that a sign-in needs
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
#: the code sent to the token endpoint: no provider has issued it
PROBE_CODE = "valuescope-credentials-check"
#: OAuth error codes that mean the provider refuses the client itself
CLIENT_ERRORS = ("invalid_client", "unauthorized_client")


def provider_tables(section: dict) -> list[tuple[str | None, dict]]:
    """The providers of an ``[auth]`` table: ``(None, section)`` for a single provider configured in
    ``[auth]`` itself, else ``(name, sub-table)`` for each sub-table."""
    named = [(k, dict(v)) for k, v in section.items() if isinstance(v, dict)]
    return [(None, dict(section))] if "client_id" in section or not named else named


def where(name: str | None) -> str:
    return "[auth]" if name is None else f"[auth.{name}]"


def fetch_discovery(url: str, timeout: float = 5.0) -> tuple[dict | None, str | None]:
    """(the discovery document, None), or (None, why it cannot be used)."""
    try:
        with urllib.request.urlopen(str(url), timeout=timeout) as r:
            meta = json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return None, f"it answers HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return None, f"it cannot be reached ({getattr(exc, 'reason', exc)})"
    except ValueError:
        return None, "it is not a JSON discovery document"
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
               if not isinstance(meta, dict) or not meta.get(k)]
    if missing:
        return None, f"the discovery document lacks {', '.join(missing)}"
    return meta, None


def _auth_method(table: dict) -> str:
    kwargs = table.get("client_kwargs") or {}
    method = str(kwargs.get("token_endpoint_auth_method") or "client_secret_basic") if isinstance(kwargs, dict) \
        else "client_secret_basic"
    return method


def client_problem(meta: dict, client_id: str, client_secret: str, *, redirect_uri: str = "",
                   auth_method: str = "client_secret_basic", timeout: float = 5.0) -> str | None:
    """Why the provider refuses the client (None: it accepts the client id and secret, or its answer
    says nothing about them). See the module docstring for how it is asked."""
    endpoint = str(meta.get("token_endpoint") or "")
    if not endpoint:
        return None
    form = {"grant_type": "authorization_code", "code": PROBE_CODE, "redirect_uri": str(redirect_uri or "")}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if auth_method == "client_secret_post":
        form.update(client_id=str(client_id), client_secret=str(client_secret))
    else:  # as Authlib sends it: both parts URL-quoted, then Base64
        pair = f"{urllib.parse.quote(str(client_id), safe='')}:{urllib.parse.quote(str(client_secret), safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    request = urllib.request.Request(endpoint, data=urllib.parse.urlencode(form).encode("utf-8"),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return f"its token endpoint {endpoint} cannot be reached ({getattr(exc, 'reason', exc)})"
    try:
        answer = json.loads(body.decode("utf-8")) if body else {}
    except ValueError:
        answer = {}
    error = str(answer.get("error") or "") if isinstance(answer, dict) else ""
    if status == 401 or error in CLIENT_ERRORS:
        described = answer.get("error_description") if isinstance(answer, dict) else None
        said = error or f"HTTP {status}"
        if described:
            said += f": {str(described)[:200]}"
        return (f"the identity provider rejected the client id/secret (client_id = {client_id!r}; its token "
                f"endpoint answered {said})")
    return None


def provider_problems(section: dict, timeout: float = 5.0) -> list[tuple[str, bool]]:
    """What is wrong with each provider of an ``[auth]`` table, as (sentence, certain) pairs:
    ``certain`` when nobody can sign in until the configuration is changed (the provider refused
    the client), not when the provider could merely not be reached now."""
    out = []
    for name, table in provider_tables(section):
        if any(not table.get(k) for k in PROVIDER_KEYS):
            continue  # incomplete: named by the sign-in page's configuration check
        meta, problem = fetch_discovery(str(table["server_metadata_url"]), timeout)
        if problem:
            out.append((f"the discovery URL in {where(name)} ({table['server_metadata_url']}) does not work: "
                        f"{problem}", False))
            continue
        problem = client_problem(meta, table["client_id"], table["client_secret"],
                                 redirect_uri=str(section.get("redirect_uri") or ""),
                                 auth_method=_auth_method(table), timeout=timeout)
        if problem:
            out.append((f"{where(name)}: {problem}", "rejected" in problem))
    return out
