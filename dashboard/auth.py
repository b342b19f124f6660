"""Sign-in for a shared deployment: Streamlit's own ``st.login`` / ``st.user`` (OpenID Connect).

Configured by an ``[auth]`` table in ``.streamlit/secrets.toml`` (``redirect_uri``,
``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``, or one sub-table per
provider), plus Valuescope's own ``[valuescope]`` table: ``admins`` (the first admins),
``group_claim`` and ``group_roles`` (a role from the identity token's groups), ``default_role``,
``default_datasets``. Without ``[auth]`` the app is the single-person local tool and everyone
who opens it acts as :data:`analytics.access.LOCAL`.

With sign-in, :func:`gate` runs at the top of every script run: a request without a signed-in
identity sees only the sign-in page; a signed-in identity becomes the caller of its browser session
(``analytics.access.sign_in``, once per session), whose role the library checks at every call.
"""
from __future__ import annotations

import json
import re
import time

import streamlit as st

from analytics import access, oidc

#: session-state key of the browser session's signed-in caller (and the identity it was made for)
CALLER_KEY = "_vs_caller"
REQUIRED = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def _secrets() -> dict:
    try:
        return st.secrets.to_dict()
    except Exception:  # no secrets file at all: the local single-person app
        return {}


def auth_section() -> dict | None:
    """The ``[auth]`` table of the secrets (None: sign-in is not configured)."""
    section = _secrets().get("auth")
    return dict(section) if isinstance(section, dict) and section else None


def configured() -> bool:
    return auth_section() is not None


def providers(section: dict) -> list[str | None]:
    """The providers to offer: None for a single provider configured in ``[auth]`` itself, else the
    names of its sub-tables."""
    named = [k for k, v in section.items() if isinstance(v, dict)]
    return [None] if "client_id" in section or not named else named


def config_problems(section: dict) -> list[str]:
    """What is missing from the ``[auth]`` table, in words (empty: complete)."""
    problems = [f"[auth] needs {k}" for k in REQUIRED if not section.get(k)]
    for name in providers(section):
        table = section if name is None else section[name]
        where = "[auth]" if name is None else f"[auth.{name}]"
        problems += [f"{where} needs {k}" for k in PROVIDER_KEYS if not table.get(k)]
    secret = str(section.get("cookie_secret") or "")
    if secret and len(secret) < 32:
        problems.append("[auth] cookie_secret is too short (use at least 32 random characters)")
    return problems


@st.cache_data(ttl=60, show_spinner=False)
def discovery_problem(url: str) -> str | None:
    """Why the provider's discovery document at ``url`` cannot be used (None: it can); looked up at
    most once a minute, so a wrong ``server_metadata_url`` is named on the sign-in page instead of
    failing behind the Sign in button."""
    return oidc.fetch_discovery(url)[1]


def client_problem(section: dict, name: str | None) -> str | None:
    """Why the provider ``name`` refuses Valuescope's client id/secret (None: it accepts them, or
    cannot tell); asked when the Sign in button is pressed, so a wrong secret is named in words
    instead of the browser coming back from the provider to this page with nothing said."""
    table = section if name is None else section[name]
    meta, problem = oidc.fetch_discovery(str(table["server_metadata_url"]))
    if problem:
        return None  # the page has just named a discovery URL that does not work
    return oidc.client_problem(meta, table["client_id"], table["client_secret"],
                               redirect_uri=str(section.get("redirect_uri") or ""),
                               auth_method=oidc._auth_method(table))


def policy() -> access.SignInPolicy:
    return access.SignInPolicy.from_config(_secrets().get("valuescope") or {})


def _claims() -> dict:
    try:
        return dict(st.user.to_dict())
    except Exception:
        return {}


def _expired(claims: dict) -> bool:
    exp = claims.get("exp")
    try:
        return exp is not None and float(exp) < time.time()
    except (TypeError, ValueError):
        return False


def gate(wh) -> access.Caller:
    """The caller of this script run (see the module docstring); stops the run on the sign-in page
    when nobody is signed in, or with a message when the signed-in identity may not use the app."""
    section = auth_section()
    if section is None:
        access.set_default(access.LOCAL)
        access.set_resolver(None)
        access.set_current(access.LOCAL, wh)
        return access.LOCAL
    access.set_default(None)  # shared: work started without a caller is refused
    access.set_resolver(session_caller)  # a fragment's rerun acts as its session's caller
    access.set_current(None, wh)
    claims = _claims()
    if not claims.get("is_logged_in"):
        st.session_state.pop(CALLER_KEY, None)
        sign_in_page(section)
        st.stop()
    if _expired(claims):
        st.session_state.pop(CALLER_KEY, None)
        sign_in_page(section, note="Your sign-in has expired (the identity token is past its expiry time). "
                                   "Sign in again.")
        st.stop()
    who = (claims.get("email"), claims.get("sub"))
    held = st.session_state.get(CALLER_KEY)
    if held is None or held[0] != who:
        try:
            caller = access.sign_in(wh, claims, policy())
        except access.WarehouseError as exc:
            refused(str(exc))
            st.stop()
        held = (who, caller)
        st.session_state[CALLER_KEY] = held
    caller = held[1]
    if access.role_of(wh, caller) is None:  # removed since sign-in
        st.session_state.pop(CALLER_KEY, None)
        refused(f"{caller.id} no longer has a role in Valuescope: ask an admin to add you again")
        st.stop()
    access.set_current(caller, wh)
    resume_report_link()
    return caller


def session_caller() -> access.Caller | None:
    """The caller this browser session signed in as (None outside a script run, or before sign-in).
    A fragment's rerun does not pass through :func:`gate`; the library finds its caller here, and
    still reads the role from the warehouse at every check."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    held = st.session_state.get(CALLER_KEY)
    return None if held is None else held[1]


#: a shared report's token as the link carries it (``secrets.token_urlsafe``): only such text is kept
_REPORT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
#: the browser tab's storage key for a report link opened before signing in
REPORT_RESUME_KEY = "valuescope_report"
RESUMED_KEY = "_report_resume_checked"


def _report_link_token() -> str | None:
    """The token of the shared report link this request opened (None: none, or not token-shaped)."""
    token = st.query_params.get("report")
    return token if isinstance(token, str) and _REPORT_TOKEN.match(token) else None


def _remember_report_link(token: str) -> None:
    """Keep a report link opened before sign-in in this browser tab: Streamlit's sign-in returns to the
    app's root without the link's ``?report=``, and the link's token is shown only once to whoever made
    it. Only token-shaped text reaches the script."""
    st.html(f"<script>try {{ window.sessionStorage.setItem({json.dumps(REPORT_RESUME_KEY)}, "
            f"{json.dumps(token)}); }} catch (e) {{}}</script>", unsafe_allow_javascript=True)
    st.info("You opened a shared report: it opens as soon as you have signed in.", icon="📄")


def resume_report_link() -> None:
    """Once per browser session after sign-in: a report link this tab opened before signing in is
    opened again (see :func:`_remember_report_link`)."""
    if st.session_state.get(RESUMED_KEY) or "report" in st.query_params:
        return
    st.session_state[RESUMED_KEY] = True
    key = json.dumps(REPORT_RESUME_KEY)
    with st.sidebar:
        st.html("<script>try { var t = window.sessionStorage.getItem(" + key + "); if (t) { "
                "window.sessionStorage.removeItem(" + key + "); if (/^[A-Za-z0-9_-]{8,128}$/.test(t)) { "
                "var u = new URL(window.location.href); u.search = '?report=' + t; u.hash = ''; "
                "window.location.replace(u.toString()); } } } catch (e) {}</script>",
                unsafe_allow_javascript=True)


def sign_in_page(section: dict, note: str | None = None) -> None:
    """The only thing a request without a signed-in identity sees."""
    st.title("Valuescope")
    st.subheader("Sign in")
    token = _report_link_token()
    if token:
        _remember_report_link(token)
    problems = config_problems(section)
    if problems:
        st.error("Sign-in is configured in .streamlit/secrets.toml but incomplete: " + "; ".join(problems)
                 + ". Nobody can sign in until it is fixed.", icon="🚫")
        return
    for name in providers(section):
        table = section if name is None else section[name]
        problem = discovery_problem(str(table["server_metadata_url"]))
        if problem:
            where = "[auth]" if name is None else f"[auth.{name}]"
            st.error(f"The identity provider's discovery URL in {where} (server_metadata_url = "
                     f"{widgets_escape(table['server_metadata_url'])}) does not work: {widgets_escape(problem)}. "
                     "Check the URL in .streamlit/secrets.toml; nobody can sign in until it works.", icon="🚫")
            return
    if note:
        st.warning(note, icon="⏱️")
    st.write("Valuescope holds customer-level data: sign in with your company account to continue.")
    for name in providers(section):
        label = "Sign in" if name is None else f"Sign in with {name}"
        if st.button(label, key=f"sign_in_{name or 'default'}", type="primary", icon="🔑"):
            problem = client_problem(section, name)
            if problem:
                st.error(f"Signing in cannot work: {widgets_escape(problem)}. Nobody can sign in until the "
                         f"client_id and client_secret in {oidc.where(name)} of .streamlit/secrets.toml match "
                         "the ones registered at the identity provider: tell whoever runs Valuescope.", icon="🚫")
                continue
            st.login() if name is None else st.login(name)
    st.caption("If signing in brings you back to this page, the identity provider refused Valuescope's "
               "client (check client_id, client_secret and server_metadata_url in [auth]); the server log "
               "says why.")


def widgets_escape(text) -> str:
    from dashboard.widgets import md_escape

    return md_escape(text)


def refused(message: str) -> None:
    st.title("Valuescope")
    st.error(message, icon="🚫")
    if st.button("Sign out", key="sign_out_refused"):
        st.logout()


def account_box(caller: access.Caller, wh) -> None:
    """Who is signed in, their role, and a sign-out button (sidebar, shared mode only)."""
    if caller.trusted:
        return
    role = access.role_of(wh, caller) or "no role"
    with st.sidebar:
        st.caption(f"Signed in as **{caller.label()}** ({role})")
        if st.button("Sign out", key="sign_out", icon="🚪"):
            st.session_state.pop(CALLER_KEY, None)
            st.logout()
