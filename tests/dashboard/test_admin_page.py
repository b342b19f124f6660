"""AppTest: sign-in configured in the secrets — the sign-in page for a request without an identity, the
Admin page (people, grants, the last admin, report links, the audit trail) and what a viewer sees."""
from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from analytics import access
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 40,
        "client_id": "valuescope", "client_secret": "s3cret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
CONFIG = {"admins": ["ada@example.com"]}
ADA = {"is_logged_in": True, "email": "ada@example.com", "name": "Ada", "sub": "1"}
VIC = {"is_logged_in": True, "email": "vic@example.com", "name": "Vic", "sub": "2"}


@pytest.fixture(scope="module")
def provider():
    """The test suite's OpenID Connect provider: the sign-in page reads its discovery document."""
    from tests.oidc_provider import Provider

    with Provider().running() as p:
        AUTH["server_metadata_url"] = p.discovery_url
        yield p


@pytest.fixture
def shop(app_wh, provider):
    insert_events(app_wh, "shop", synthetic_rows(30))
    insert_events(app_wh, "secret", synthetic_rows(10, seed=2))
    yield app_wh
    access.set_default(access.LOCAL)  # the app set "nobody" as this process's default


def _app(user=None, auth=AUTH, page=None):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = dict(auth)
    at.secrets["valuescope"] = dict(CONFIG)
    if user is not None:
        at.user = dict(user)
    if page:
        at.switch_page(page)
    return at.run()


def test_without_sign_in_only_the_sign_in_page(shop):
    at = _app({"email": "someone@example.com"})  # not logged in
    assert not at.exception, at.exception
    assert [b.key for b in at.button] == ["sign_in_default"]
    assert not at.sidebar.selectbox and not at.dataframe
    at = _app(None, page="views/data.py")
    assert [b.key for b in at.button] == ["sign_in_default"] and not at.dataframe


def test_a_report_link_before_sign_in_is_kept_for_after_it(shop):
    """The sign-in page of a report link keeps the link's token in the browser tab (Streamlit's sign-in
    comes back to the root without it), and only a token-shaped one; after sign-in the app looks it up
    once per session."""
    def scripts(at):
        return [h.proto.body for h in at.get("html")]

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = dict(AUTH)
    at.secrets["valuescope"] = dict(CONFIG)
    at.query_params["report"] = "Tok3n_-abcdefgh"
    at.run()
    assert not at.exception, at.exception
    assert any("You opened a shared report" in i.value for i in at.info)
    assert any('sessionStorage.setItem("valuescope_report", "Tok3n_-abcdefgh")' in s for s in scripts(at)), scripts(at)
    at.query_params["report"] = '"); alert(1); ("'  # not a token: never written into a script
    at.run()
    assert not any("alert" in s for s in scripts(at)) and not any("You opened" in i.value for i in at.info)
    # signed in: the stored link is looked for once in the session, not on every run
    at = _app(ADA)
    assert sum("sessionStorage.getItem" in s for s in scripts(at)) == 1
    at.run()
    assert not any("sessionStorage" in s for s in scripts(at))


def test_incomplete_configuration_is_named(shop):
    at = _app({}, auth={"redirect_uri": AUTH["redirect_uri"], "client_id": "x"})
    assert "cookie_secret" in at.error[0].value and "client_secret" in at.error[0].value
    assert not at.button


def test_expired_sign_in_and_no_role(shop):
    def written():
        cur = shop.cursor()
        return (cur.execute("SELECT count(*) FROM people").fetchone()[0],
                cur.execute("SELECT count(*) FROM dataset_grants").fetchone()[0],
                cur.execute("SELECT count(*) FROM audit_log WHERE outcome = 'ok'").fetchone()[0])

    before = written()
    at = _app(dict(ADA, exp=int(time.time()) - 60))
    assert "expired" in at.warning[0].value and [b.key for b in at.button] == ["sign_in_default"]
    at = _app({"is_logged_in": True, "email": "stranger@example.com"})
    assert "has no role" in at.error[0].value
    assert [b.key for b in at.button] == ["sign_out_refused"]
    # nothing written but the refusal's own audit row
    assert written() == before
    refused = shop.cursor().execute("SELECT target, outcome FROM audit_log WHERE action = 'sign_in'").fetchall()
    assert refused == [("stranger@example.com", "denied")]


def test_new_browser_sessions_of_one_sign_in_write_one_audit_row(shop):
    """The signed-in admin opens the app in three browser sessions with the same identity token, then
    signs in again (a new token): two sign-in rows, each naming the admin role."""
    token = dict(ADA, iss="http://127.0.0.1/oidc", iat=int(time.time()), nonce="first")
    for page in (None, "views/admin.py", "views/data.py"):
        at = _app(token, page=page)
        assert not at.exception, at.exception
        at.run()
    rows = shop.cursor().execute("SELECT target, role, outcome FROM audit_log WHERE action = 'sign_in'").fetchall()
    assert rows == [("ada@example.com", "admin", "ok")]
    _app(dict(token, iat=token["iat"] + 60, nonce="second"))
    rows = shop.cursor().execute("SELECT target, role, outcome FROM audit_log WHERE action = 'sign_in'").fetchall()
    assert rows == [("ada@example.com", "admin", "ok")] * 2


def test_admin_manages_people_grants_and_reads_the_trail(shop):
    at = _app(ADA, page="views/admin.py")
    assert not at.exception, at.exception
    people = at.tabs[0].dataframe[0].value
    assert list(people["id"]) == ["ada@example.com"] and people["role"][0] == "admin"
    at.text_input(key="admin_person_id").set_value("   ")
    at.button[0].click().run()  # nobody typed: say what is missing
    assert any("Type the person's email" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="admin_person_id").set_value("vic@example.com")
    at.selectbox(key="admin_person_role").set_value("viewer")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert at.success[0].value.endswith("is now viewer") and "vic@example" in at.success[0].value
    at.selectbox(key="admin_grant_who").set_value("vic@example.com")
    at.selectbox(key="admin_grant_dataset").set_value("shop").run()
    at.button(key="admin_grant").click().run()
    assert "may now see shop" in at.success[0].value
    at.selectbox(key="admin_remove_who").set_value("ada@example.com").run()
    at.button(key="admin_remove").click().run()
    assert "last admin" in at.error[0].value
    trail = at.tabs[3].dataframe[0].value
    assert {"sign_in", "set_role", "grant"} <= set(trail["action"])
    assert "remove_person" not in set(trail["action"])  # the refused removal wrote nothing
    assert at.get("download_button")
    # the tables speak in words, what matters first (machine names such as actor_kind were shown)
    import json

    def shown(frame_el) -> list[str]:
        proto = frame_el.proto
        config = json.loads(proto.columns)
        return [config[c]["label"] for c in proto.column_order]

    assert shown(at.tabs[0].dataframe[0])[:4] == ["Person", "Name", "Role", "Datasets"]
    assert shown(at.tabs[3].dataframe[0])[:5] == ["When (UTC)", "Who", "Role", "Action", "Outcome"]
    assert not [c for t in (0, 3) for c in shown(at.tabs[t].dataframe[0]) if "_" in c]


def test_a_viewer_sees_granted_data_without_exports_or_admin(shop):
    with access.acting_as(access.SYSTEM):
        access.set_person(shop, "vic@example.com", "viewer")
        access.grant(shop, "vic@example.com", "shop")
    at = _app(VIC, page="views/data.py")
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="dataset").options == ["shop"]
    assert list(at.dataframe[0].value["dataset"]) == ["shop"]
    assert any("needs the analyst role" in i.value for i in at.info)  # no loading
    assert not [b for b in at.get("download_button")]
    captions = " ".join(c.value for c in at.caption)
    assert "needs the analyst role" in captions and "needs the admin role" in captions
    assert "Signed in as **Vic** (viewer)" in " ".join(c.value for c in at.sidebar.caption)


def test_a_wrong_discovery_url_is_named_on_the_sign_in_page(shop, provider):
    at = _app({}, auth=dict(AUTH, server_metadata_url=provider.issuer + "/nowhere"))
    assert "discovery URL" in at.error[0].value and "HTTP 404" in at.error[0].value
    assert not at.button


def test_a_viewer_sees_pseudonymised_customer_ids(shop):
    with access.acting_as(access.SYSTEM):
        access.set_person(shop, "vic@example.com", "viewer")
        access.grant(shop, "vic@example.com", "shop")
    raw = {r[0] for r in shop.cursor().execute("SELECT DISTINCT customer_id FROM events").fetchall()}
    at = _app(VIC, page="views/explorer.py")
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe if "Customer" in d.value.columns]
    assert tables, [list(d.value.columns) for d in at.dataframe]
    shown = set(tables[0]["Customer"].astype(str))
    assert shown and not shown & raw and all(c.startswith("c-") for c in shown)


def _metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_viewer_opens_timelines_and_looks_up_customers_by_pseudonym(shop):
    """The Explorer's timeline and the Value page's lookup take the pseudonym a viewer sees: the same
    customer as the stored id gives an admin, counted in the warehouse; no stored id is shown."""
    with access.acting_as(access.SYSTEM):
        access.set_person(shop, "vic@example.com", "viewer")
        access.grant(shop, "vic@example.com", "shop")
    raw = {r[0] for r in shop.cursor().execute("SELECT DISTINCT customer_id FROM events").fetchall()}
    stored = "cust00007"
    with access.acting_as(access.Caller("vic@example.com", "person", "viewer")), access.on_warehouse(shop):
        seen = access.ids_for(shop, [stored])[0]
    n_events = shop.cursor().execute("SELECT count(*) FROM events WHERE dataset = 'shop' AND customer_id = ?",
                                     [stored]).fetchone()[0]
    at = _app(VIC, page="views/explorer.py")
    at.text_input(key="explorer_search").input(seen).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="explorer_customer").options == [seen]
    at.selectbox(key="explorer_customer").set_value(seen).run()
    assert not at.exception, at.exception
    assert _metric_values(at)["Events"] == f"{n_events:,}"
    timeline = [d.value for d in at.dataframe if "Event" in d.value.columns]
    assert timeline and len(timeline[0]) == n_events
    shown = " ".join(str(d.value.to_csv()) for d in at.dataframe) + " ".join(m.value for m in at.metric)
    assert not any(r in shown for r in raw)

    def lookup(user, who):
        at = _app(user, page="views/value.py")
        at.text_input(key="value_lookup").input(who).run()
        assert not at.exception, at.exception
        return {k: v for k, v in _metric_values(at).items() if k in ("RFM score", "Segment", "CLV by formula")}

    as_viewer = lookup(VIC, seen)
    with access.acting_as(access.SYSTEM):  # an analyst of the same dataset, who sees stored ids
        access.set_person(shop, "ann@example.com", "analyst")
        access.grant(shop, "ann@example.com", "shop")
    ann = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann", "sub": "3"}
    assert len(as_viewer) == 3 and as_viewer == lookup(ann, stored)
    at = _app(VIC, page="views/value.py")
    at.text_input(key="value_lookup").input(stored).run()  # a stored id finds nobody for a viewer
    assert not at.exception and "RFM score" not in _metric_values(at)
    assert any("No customer" in i.value for i in at.info)


def test_a_rejected_client_secret_is_named_when_sign_in_is_pressed(shop, provider):
    """Pressing Sign in asks the provider whether it accepts Valuescope's client first: a wrong secret
    is named on the page (the provider is not visited, no token is issued)."""
    issued = len(provider.issued)
    at = _app({}, auth=dict(AUTH, client_secret="not the registered secret"))
    at.button(key="sign_in_default").click().run()
    assert not at.exception, at.exception
    assert any("rejected the client id/secret" in e.value and "client_secret" in e.value for e in at.error)
    assert len(provider.issued) == issued
    at = _app({}, auth=dict(AUTH, client_secret=provider.client_secret))
    at.button(key="sign_in_default").click().run()
    assert not any("rejected" in e.value for e in at.error)
