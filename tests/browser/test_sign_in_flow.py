"""Real browser, real OpenID Connect provider (tests/oidc_provider.py on 127.0.0.1): a request without
sign-in shows only the sign-in page; an admin, an analyst and a viewer sign in through the provider's
form and see what their role allows; a tampered session cookie is refused."""
from __future__ import annotations

import re
import time

import pytest

from tests.browser.server import free_port, launch_chromium, require_browser_or_skip, running_app, server_log

require_browser_or_skip()

pytestmark = pytest.mark.browser

CSV = "customer_id,order_date,revenue\n" + "".join(
    f"C-{i:04d},2025-0{1 + i % 3}-1{i % 9},{10 + i}\n" for i in range(60))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app with sign-in against the test provider; datasets 'shop' and 'secret'; Ann (analyst) and
    Vic (viewer) granted 'shop'; Ada an admin from the configuration."""
    from analytics import access
    from analytics.ingest import ingest
    from analytics.warehouse import Warehouse
    from tests.oidc_provider import Provider

    tmp = tmp_path_factory.mktemp("signin")
    db = tmp / "w.duckdb"
    (tmp / "orders.csv").write_text(CSV)
    wh = Warehouse(db)
    ingest(wh, tmp / "orders.csv", "shop")
    ingest(wh, tmp / "orders.csv", "secret")
    access.set_person(wh, "ann@example.com", "analyst")
    access.set_person(wh, "vic@example.com", "viewer")
    access.grant(wh, "ann@example.com", "shop")
    access.grant(wh, "vic@example.com", "shop")
    with access.acting_as(access.Caller("vic@example.com", "person", "viewer")), access.on_warehouse(wh):
        provider_note = access.ids_for(wh, ["C-0007"])[0]  # the pseudonym the viewer will see
    from analytics.reports import build_report, create_report
    from analytics.segments import store

    store.save_segment(wh, "Every buyer", {"op": "and", "conditions": [
        {"field": "net_revenue", "operator": ">=", "value": 1}]}, dataset="shop")
    report_token = create_report(wh, build_report(wh, "shop", "2025-03-19", segment="Every buyer"))
    wh.close()
    provider = Provider()
    with provider.running():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        secrets = tmp / "secrets.toml"
        secrets.write_text(provider.secrets_toml(url))
        with running_app(db, skip_sample=True, port=port, extra=["--secrets.files", str(secrets)]) as base:
            provider.viewer_sees = provider_note
            provider.report_token = report_token
            yield base, db, provider


def _wait(page, expect):
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning",
                                                                      timeout=60_000)


def _sign_in(page, expect, base: str, email: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_selector("#login", timeout=30_000)  # the provider's own sign-in form
    page.fill("#login", email)
    page.click("#submit")
    expect(page.get_by_text(re.compile(r"Signed in as"))).to_be_visible(timeout=60_000)
    _wait(page, expect)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


def test_no_sign_in_shows_only_the_sign_in_page_then_an_admin_signs_in(app, browser):
    from playwright.sync_api import expect

    base, db, _provider = app
    page = browser.new_context().new_page()
    page.goto(base + "/data")
    expect(page.get_by_role("button", name=re.compile("Sign in"))).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0, server_log(db)
    assert page.locator('[data-testid="stDataFrame"]').count() == 0
    _sign_in(page, expect, base, "ada@example.com")
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav.get_by_text("Admin")).to_be_visible()
    expect(page.get_by_text("(admin)")).to_be_visible()
    page.goto(base + "/admin")
    expect(page.get_by_label("Email (or subject) of the person")).to_be_visible(timeout=60_000)
    for who in ("ada@example.com", "ann@example.com", "vic@example.com"):  # the People table's cells
        expect(page.locator('[role="gridcell"]', has_text=who).first).to_be_attached(timeout=30_000)
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)


def test_a_report_link_opened_before_sign_in_opens_after_it(app, browser):
    """A colleague opens a shared report link without being signed in: sign-in returns to the app's root
    (Streamlit drops the link's ?report=), and the link's token is shown only once to whoever made it;
    the report must open once they have signed in, not the Overview."""
    from playwright.sync_api import expect

    base, db, provider = app
    page = browser.new_context().new_page()
    page.goto(f"{base}/?report={provider.report_token}")
    expect(page.get_by_text("You opened a shared report")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_selector("#login", timeout=30_000)
    page.fill("#login", "vic@example.com")
    page.click("#submit")
    expect(page.get_by_role("heading", name="Segment report: Every buyer")).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert "report=" in page.url and page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)
    # once opened, the app's root is the app again (the remembered link is used once)
    page.goto(base + "/")
    expect(page.get_by_text(re.compile(r"Signed in as"))).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert page.get_by_role("heading", name="Segment report: Every buyer").count() == 0


@pytest.mark.slow
def test_a_viewer_sees_only_granted_data_and_no_export(app, browser):
    from playwright.sync_api import expect

    base, db, _provider = app
    page = browser.new_context(accept_downloads=True).new_page()
    _sign_in(page, expect, base, "vic@example.com")
    expect(page.get_by_text("(viewer)")).to_be_visible()
    assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Admin").count() == 0
    page.goto(base + "/data")
    _wait(page, expect)
    expect(page.get_by_text("Loading data needs the analyst role.")).to_be_visible(timeout=60_000)
    assert page.locator('[data-testid="stDownloadButton"]').count() == 0
    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
    box.click()
    options = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    assert options == ["shop"], options  # 'secret' is not granted
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)
    # the Explorer's timeline by the pseudonym the viewer sees (C-0007 has one order in 'shop')
    from tests.browser.ui import metric_value

    page.keyboard.press("Escape")
    page.goto(base + "/explorer")
    search = page.get_by_label("Search customer id", exact=True)
    expect(search).to_be_visible(timeout=120_000)
    search.fill(_provider.viewer_sees)
    search.press("Enter")
    expect(page.get_by_text(re.compile(r"^1 customers match"))).to_be_visible(timeout=60_000)
    _wait(page, expect)
    expect(metric_value(page, page, "Events")).to_have_text("1", timeout=60_000)
    assert not re.search(r"C-\d{4}", page.locator("body").inner_text())  # no stored id on the page
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)
    # and the Value page's lookup by the same pseudonym
    page.goto(base + "/value")
    box = page.get_by_label("Customer id", exact=True)
    expect(box).to_be_visible(timeout=120_000)
    box.fill(_provider.viewer_sees)
    box.press("Enter")
    expect(metric_value(page, page, "RFM score")).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert page.get_by_text(re.compile("No customer")).count() == 0
    assert not page.locator('[data-testid="stException"]').count(), server_log(db)


@pytest.mark.slow
def test_an_analyst_can_export_but_not_delete(app, browser):
    from playwright.sync_api import expect

    base, db, _provider = app
    page = browser.new_context().new_page()
    _sign_in(page, expect, base, "ann@example.com")
    page.goto(base + "/data")
    _wait(page, expect)
    page.get_by_role("tab", name=re.compile("Export")).click()
    expect(page.locator('[data-testid="stDownloadButton"]').first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name=re.compile("Delete")).click()
    expect(page.get_by_text(re.compile("needs the admin role"))).to_be_visible()


@pytest.mark.slow
def test_a_tampered_session_cookie_is_refused(app, browser):
    from playwright.sync_api import expect

    base, db, _provider = app
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, expect, base, "ada@example.com")
    cookies = context.cookies()
    auth = [c for c in cookies if c["name"].startswith("_streamlit_user")]
    assert auth, [c["name"] for c in cookies]
    context.clear_cookies()
    forged = []
    for c in cookies:
        if c["name"].startswith("_streamlit_user"):
            value = c["value"]
            i = len(value) // 2
            c = dict(c, value=value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:])
        forged.append(c)
    context.add_cookies(forged)
    page.goto(base + "/data")
    expect(page.get_by_role("button", name=re.compile("Sign in"))).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert page.get_by_text(re.compile("Signed in as")).count() == 0


def _sign_in_refused(page, expect, base: str, email: str) -> None:
    """The provider's form is filled but the app does not sign anyone in: back on the sign-in page."""
    page.goto(base + "/")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_selector("#login", timeout=30_000)
    page.fill("#login", email)
    page.click("#submit")
    expect(page.get_by_role("button", name=re.compile("Sign in"))).to_be_visible(timeout=60_000)
    _wait(page, expect)
    assert page.get_by_text(re.compile("Signed in as")).count() == 0


@pytest.mark.slow
def test_an_expired_id_token_or_a_wrong_client_secret_signs_nobody_in(app, browser):
    from playwright.sync_api import expect

    base, db, provider = app
    provider.expired_tokens = True
    n = len(provider.issued)
    try:
        _sign_in_refused(browser.new_context().new_page(), expect, base, "ada@example.com")
    finally:
        provider.expired_tokens = False
    assert len(provider.issued) == n + 1 and provider.issued[-1]["exp"] < time.time()  # issued, refused by the app
    right = provider.client_secret
    provider.client_secret = "rotated at the provider"  # the app's configured secret is now wrong
    try:
        page = browser.new_context().new_page()
        page.goto(base + "/")
        page.get_by_role("button", name=re.compile("Sign in")).click()
        # named on the page before the browser is sent to the provider
        expect(page.get_by_text(re.compile("rejected the client id/secret"))).to_be_visible(timeout=60_000)
        _wait(page, expect)
        assert page.locator("#login").count() == 0 and page.get_by_text(re.compile("Signed in as")).count() == 0
    finally:
        provider.client_secret = right
    assert len(provider.issued) == n + 1  # the provider refused the client: no token at all
