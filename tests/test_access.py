"""Roles, per-dataset grants and the audit trail, enforced in the library (analytics.access)."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics import access
from analytics.access import AccessDenied, AccessError, Caller, SignInPolicy
from analytics.export import to_parquet, to_safe_csv
from analytics.ingest import delete_dataset, export_dataset, ingest

ADMIN = Caller("ada@example.com", "person", "admin", "Ada")
ANALYST = Caller("ann@example.com", "person", "analyst", "Ann")
VIEWER = Caller("vic@example.com", "person", "viewer", "Vic")

CSV = "customer_id,order_date,revenue\nC-1001,2025-01-03,10\nC-1002,2025-01-05,12\nC-1001,2025-02-03,9\n"


def _csv(tmp_path, name="orders.csv", text=CSV):
    p = tmp_path / name
    p.write_text(text)
    return p


def _trail(wh):
    with access.acting_as(access.SYSTEM):
        return access.audit_trail(wh)


@pytest.fixture
def shared(wh, tmp_path):
    """A warehouse with two datasets, an admin, an analyst granted 'shop' and a viewer granted 'shop'
    (the warehouse of the context, where checks without a warehouse argument look)."""
    ingest(wh, _csv(tmp_path), "shop")
    ingest(wh, _csv(tmp_path, "b.csv", CSV.replace("C-10", "K-20")), "other")
    access.set_person(wh, ADMIN.id, "admin")
    access.set_person(wh, ANALYST.id, "analyst")
    access.set_person(wh, VIEWER.id, "viewer")
    access.grant(wh, ANALYST.id, "shop")
    access.grant(wh, VIEWER.id, "shop")
    with access.on_warehouse(wh):
        yield wh


def test_local_mode_is_an_admin_with_no_configuration(wh, tmp_path):
    assert access.current() is access.LOCAL
    ingest(wh, _csv(tmp_path), "shop")
    assert wh.datasets() == ["shop"]
    trail = _trail(wh)
    assert list(trail["action"]) == ["load"] and trail["actor"][0] == "local" and trail["n_rows"][0] == 3


def test_grants_decide_which_datasets_a_person_sees(shared):
    with access.acting_as(ANALYST):
        assert shared.datasets() == ["shop"]
        assert not shared.has_dataset("other")
    with access.acting_as(ADMIN):
        assert shared.datasets() == ["other", "shop"]
    with access.acting_as(Caller("nobody@example.com")):
        assert shared.datasets() == []
    access.set_default(None)  # a shared app: work without a caller is nobody's
    try:
        assert shared.datasets() == []
        with pytest.raises(AccessDenied, match="nobody is signed in"):
            delete_dataset(shared, "shop")
    finally:
        access.set_default(access.LOCAL)


def test_viewer_is_refused_every_write_and_export_with_an_audit_row(shared, tmp_path):
    frame = pd.DataFrame({"customer_id": ["C-1001"], "value": [1.0]})
    with access.acting_as(VIEWER):
        for call in (lambda: ingest(shared, _csv(tmp_path), "shop"),
                     lambda: delete_dataset(shared, "shop"),
                     lambda: export_dataset(shared, "shop", tmp_path / "x.csv"),
                     lambda: to_safe_csv(frame),
                     lambda: to_parquet(frame)):
            with pytest.raises(AccessDenied, match="viewer"):
                call()
    assert not (tmp_path / "x.csv").exists()
    denied = _trail(shared).query("outcome == 'denied'")
    assert set(denied["action"]) == {"load", "delete_dataset", "export"}
    assert (denied["actor"] == VIEWER.id).all()
    with access.acting_as(access.SYSTEM):
        assert sorted(shared.datasets()) == ["other", "shop"]  # nothing was deleted


def test_analyst_loads_and_exports_granted_data_only(shared, tmp_path):
    with access.acting_as(ANALYST):
        r = ingest(shared, _csv(tmp_path, "more.csv", "customer_id,order_date,revenue\nC-1003,2025-03-01,5\n"), "shop")
        assert r.rows_loaded == 1
        export_dataset(shared, "shop", tmp_path / "shop.csv")
        with pytest.raises(AccessDenied, match="no access to dataset 'other'"):
            export_dataset(shared, "other", tmp_path / "other.csv")
        with pytest.raises(AccessDenied, match="no access"):
            ingest(shared, _csv(tmp_path), "other")  # not a second 'other' beside the one it cannot see
        with pytest.raises(AccessDenied, match="admin"):
            delete_dataset(shared, "shop")
        # a new dataset is the analyst's own
        ingest(shared, _csv(tmp_path), "mine")
        assert shared.datasets() == ["mine", "shop"]
        data = to_safe_csv(pd.DataFrame({"customer_id": ["C-1001", "C-1002"]}))
        assert "C-1001" in data
    trail = _trail(shared)
    exports = trail.query("action == 'export' and outcome == 'ok'")
    assert list(exports["n_rows"].dropna().astype(int)) == [2]
    loads = trail.query("action == 'load' and actor == @ANALYST.id")
    assert sorted(loads.query("outcome == 'ok'")["dataset"]) == ["mine", "shop"]
    assert list(loads.query("outcome == 'denied'")["dataset"]) == ["other"]


def test_admin_deletes_and_the_trail_keeps_the_deletion(shared):
    with access.acting_as(ADMIN):
        delete_dataset(shared, "other")
    trail = _trail(shared)
    row = trail.query("action == 'delete_dataset'").iloc[0]
    assert row["actor"] == ADMIN.id and row["dataset"] == "other" and row["role"] == "admin"
    # the trail's rows of a deleted dataset stay
    assert len(trail.query("dataset == 'other' and action == 'load'")) == 1


def test_people_and_grants_are_admin_only_and_recorded(shared):
    with access.acting_as(ANALYST):
        with pytest.raises(AccessDenied):
            access.set_person(shared, "eve@example.com", "admin")
        with pytest.raises(AccessDenied):
            access.grant(shared, ANALYST.id, "other")
        with pytest.raises(AccessDenied):
            access.audit_trail(shared)
    with access.acting_as(ADMIN):
        access.grant(shared, VIEWER.id, "other")
        access.revoke_grant(shared, VIEWER.id, "shop")
        people = access.people(shared)
        assert people.set_index("id").loc[VIEWER.id, "datasets"] == "other"
        with pytest.raises(AccessError, match="unknown role"):
            access.set_person(shared, "eve@example.com", "owner")
        with pytest.raises(AccessError, match="no dataset"):
            access.grant(shared, VIEWER.id, "nope")
    with access.acting_as(VIEWER):
        assert shared.datasets() == ["other"]
    actions = list(_trail(shared)["action"])
    assert {"grant", "revoke_grant", "set_role"} <= set(actions)


def test_the_last_admin_cannot_be_removed_or_demoted(shared):
    with access.acting_as(ADMIN):
        with pytest.raises(AccessError, match="last admin"):
            access.remove_person(shared, ADMIN.id)
        with pytest.raises(AccessError, match="last admin"):
            access.set_person(shared, ADMIN.id, "viewer")
        before = len(_trail(shared))
        access.set_person(shared, ANALYST.id, "admin")
        access.set_person(shared, ADMIN.id, "viewer")  # now someone else is an admin
    assert len(_trail(shared)) == before + 2
    with access.acting_as(access.SYSTEM):
        assert access.people(shared).set_index("id").loc[ADMIN.id, "role"] == "viewer"


def test_a_removed_person_loses_access_at_once(shared):
    with access.acting_as(ADMIN):
        access.remove_person(shared, ANALYST.id)
    with access.acting_as(ANALYST):
        assert shared.datasets() == []
        with pytest.raises(AccessDenied, match="no role"):
            to_safe_csv(pd.DataFrame({"customer_id": ["x"]}))


def test_sign_in_roles_from_configuration_group_claim_and_default(wh):
    policy = SignInPolicy(admins=("boss@example.com",), group_claim="groups",
                          group_roles=(("marketing", "analyst"), ("staff", "viewer")))
    assert access.sign_in(wh, {"email": "Boss@Example.com", "sub": "1"}, policy).role == "admin"
    assert access.sign_in(wh, {"email": "m@example.com", "groups": ["staff", "marketing"]}, policy).role == "analyst"
    assert access.sign_in(wh, {"sub": "only-a-subject", "groups": "staff"}, policy).role == "viewer"
    with pytest.raises(AccessDenied, match="no role"):
        access.sign_in(wh, {"email": "stranger@example.com"}, policy)
    with pytest.raises(AccessDenied, match="neither an email nor a subject"):
        access.sign_in(wh, {}, policy)
    assert access.sign_in(wh, {"email": "stranger@example.com"},
                          SignInPolicy(default_role="viewer")).role == "viewer"
    trail = _trail(wh).query("action == 'sign_in'")
    assert list(trail["outcome"]).count("denied") == 1
    with access.acting_as(access.SYSTEM):
        ids = set(access.people(wh)["id"])
    assert {"boss@example.com", "m@example.com", "only-a-subject", "stranger@example.com"} == ids


def test_a_sign_in_is_recorded_once_per_login_event(wh):
    """One audit row per identity and identity token (issuer, subject, issue time, nonce), however many
    browser sessions present it; a new token is a new sign-in; a config-listed admin's first sign-in is
    one row naming the role."""
    policy = SignInPolicy(admins=("boss@example.com",), default_role="viewer")
    token = {"iss": "https://id.example.com", "email": "boss@example.com", "sub": "1", "iat": 1_700_000_000,
             "nonce": "n-1"}

    def rows():
        t = _trail(wh).query("action == 'sign_in'")
        return list(zip(t["target"], t["role"], t["outcome"]))

    for _ in range(3):  # the first browser session, a new tab, a reload
        assert access.sign_in(wh, dict(token), policy).role == "admin"
    assert rows() == [("boss@example.com", "admin", "ok")]
    access.sign_in(wh, dict(token, iat=1_700_003_600, nonce="n-2"), policy)  # signed in again
    assert rows() == [("boss@example.com", "admin", "ok")] * 2
    other = {"iss": "https://id.example.com", "email": "v@example.com", "sub": "2", "iat": 1_700_000_000,
             "nonce": "n-1"}  # the same issue time and nonce, another person: their own sign-in
    access.sign_in(wh, other, policy)
    access.sign_in(wh, other, policy)
    assert sorted(rows()) == sorted([("boss@example.com", "admin", "ok")] * 2 + [("v@example.com", "viewer", "ok")])
    # claims that name no login event: every call is a sign-in
    access.sign_in(wh, {"email": "v@example.com"}, policy)
    access.sign_in(wh, {"email": "v@example.com"}, policy)
    assert rows().count(("v@example.com", "viewer", "ok")) == 3


def test_policy_from_config_validates_roles():
    p = SignInPolicy.from_config({"admins": ["A@x.org"], "group_claim": "groups",
                                  "group_roles": {"g": "Analyst"}, "default_role": "viewer"})
    assert p.admins == ("a@x.org",) and dict(p.group_roles) == {"g": "analyst"}
    with pytest.raises(AccessError, match="unknown role"):
        SignInPolicy.from_config({"default_role": "root"})


def test_viewers_see_pseudonymised_ids_and_no_personal_columns(shared):
    frame = pd.DataFrame({"customer_id": ["C-1001", "C-1002"], "email": ["a@x", "b@x"], "value": [1, 2]})
    with access.acting_as(VIEWER):
        seen = access.present(shared, frame)
    assert "email" not in seen.columns and list(seen["value"]) == [1, 2]
    assert not set(seen["customer_id"]) & {"C-1001", "C-1002"}
    with access.acting_as(VIEWER):
        assert list(access.present(shared, frame)["customer_id"]) == list(seen["customer_id"])  # stable
    with access.acting_as(ANALYST):
        assert access.present(shared, frame) is frame


def test_bound_carries_the_caller_into_another_thread(shared):
    import threading

    out = []
    with access.acting_as(VIEWER):
        fn = access.bound(lambda: out.append(access.current().id))
    t = threading.Thread(target=fn)
    t.start()
    t.join()
    assert out == [VIEWER.id]


def test_cli_records_itself_as_a_local_admin(tmp_path, capsys):
    from analytics.cli import main
    from analytics.warehouse import _WAREHOUSES, get_warehouse

    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(_csv(tmp_path)), "--dataset", "shop", "--db", str(db)]) == 0
    wh = get_warehouse(db)
    try:
        trail = _trail(wh)
        row = trail.query("action == 'load'").iloc[0]
        assert row["actor"].startswith("cli:") and row["actor_kind"] == "cli" and row["n_rows"] == 3
        assert set(trail["actor_kind"]) == {"cli"}  # whatever the load did besides, as the command line
    finally:
        wh.close()
        _WAREHOUSES.pop(str(db.resolve()), None)


def test_campaigns_segments_and_models_need_an_analyst(shared):
    from analytics import campaigns
    from analytics.predict import registry
    from analytics.segments import store

    targets = pd.DataFrame({"customer_id": ["C-1001", "C-1002"], "rank": [1, 2], "group": ["treatment", "control"]})
    spec = campaigns.CampaignSpec(name="spring", dataset="shop", as_of="2025-03-31")
    rule = {"op": "and", "conditions": [{"field": "frequency", "operator": ">=", "value": 1}]}
    with access.acting_as(VIEWER):
        with pytest.raises(AccessDenied):
            campaigns.save_campaign(shared, spec, targets)
        with pytest.raises(AccessDenied):
            store.save_segment(shared, "loyal", rule, dataset="shop")
        with pytest.raises(AccessDenied):
            registry.delete_run(shared, 1)
    with access.acting_as(ANALYST):
        cid = campaigns.save_campaign(shared, spec, targets)
        store.save_segment(shared, "loyal", rule, dataset="shop")
        with pytest.raises(AccessDenied):
            campaigns.save_campaign(shared, campaigns.CampaignSpec(name="x", dataset="other", as_of="2025-03-31"),
                                    targets)
    with access.acting_as(Caller("out@example.com", "person", "analyst")):
        with pytest.raises(campaigns.CampaignError, match="no campaign"):  # not granted: not there
            campaigns.get_campaign(shared, cid)
    trail = _trail(shared)
    assert {"save_campaign", "save_segment"} <= set(trail.query("outcome == 'ok'")["action"])
    assert trail.query("action == 'save_campaign' and outcome == 'ok'")["n_rows"].iloc[0] == 2


def test_report_links_expire_are_revoked_by_their_maker_or_an_admin(shared):
    import datetime as dt

    from analytics.reports import store
    from analytics.reports.snapshot import ReportError, ReportRevokedError

    snap = {"kind": "segment", "dataset": "shop", "title": "T", "top": [{"customer_id": "C-1001", "value": 3}]}
    with access.acting_as(VIEWER):
        with pytest.raises(AccessDenied):
            store.create_report(shared, snap)
    with access.acting_as(ANALYST):
        with pytest.raises(ReportError, match="past"):
            store.create_report(shared, snap, now="2025-06-01", expires="2025-05-01")
        soon = store.create_report(shared, snap, now="2025-06-01", expires=dt.date(2025, 6, 30))
        mine = store.create_report(shared, snap)
        assert store.get_report(shared, soon, now="2025-06-30 23:00")["top"][0]["customer_id"] == "C-1001"
        with pytest.raises(ReportRevokedError, match="expired on 2025-07-01"):
            store.get_report(shared, soon, now="2025-07-01 00:00")
    with access.acting_as(ADMIN):
        other = store.create_report(shared, snap)
        assert len(store.list_reports(shared)) == 3
        assert set(store.list_reports(shared, now="2025-07-02")["status"]) == {"expired", "active"}
    with access.acting_as(VIEWER):  # pseudonymised unless an admin allows raw ids for the report
        seen = store.get_report(shared, mine)["top"][0]["customer_id"]
        assert seen != "C-1001" and seen.startswith("c-")
    with access.acting_as(ADMIN):
        store.allow_raw_ids(shared, store.report_id(shared, mine))
    with access.acting_as(VIEWER):
        assert store.get_report(shared, mine)["top"][0]["customer_id"] == "C-1001"
    with access.acting_as(ANALYST):
        with pytest.raises(AccessDenied, match="another person"):
            store.revoke_report(shared, other)
        store.revoke_report(shared, mine)
    with access.acting_as(ADMIN):
        store.revoke_report(shared, other)
    with access.acting_as(Caller("out@example.com", "person", "analyst")):
        assert store.list_reports(shared).empty  # links of datasets the caller does not see
    actions = _trail(shared).query("outcome == 'ok'")["action"]
    assert list(actions).count("create_report_link") == 3 and list(actions).count("revoke_report_link") == 2


def test_a_viewer_names_customers_by_the_pseudonyms_they_see(shared):
    """The id a viewer sees (a pseudonym) finds the customer in the library; the stored id a viewer
    might type finds nobody; an analyst uses stored ids; a dataset without a grant is refused."""
    from analytics import explorer

    frame = pd.DataFrame({"customer_id": ["C-1001", "C-1002"]})
    with access.acting_as(VIEWER):
        seen = list(access.present(shared, frame)["customer_id"])
        assert [access.resolve_customer(shared, "shop", s) for s in seen] == ["C-1001", "C-1002"]
        assert access.resolve_customer(shared, "shop", "C-1001") is None  # no probing with stored ids
        assert access.resolve_customer(shared, "shop", "c-000000000000") is None
        # the timeline by the pseudonym: the stored customer's events, counted independently
        assert explorer.customer_event_count(shared, "shop", seen[0]) == 2
        timeline = explorer.customer_timeline(shared, "shop", seen[0])
        assert sorted(timeline["revenue"]) == [9.0, 10.0] and "customer_id" not in timeline.columns
        assert explorer.customer_timeline(shared, "shop", "C-1001").empty
        with pytest.raises(AccessDenied, match="no access to dataset 'other'"):
            access.resolve_customer(shared, "other", seen[0])
    with access.acting_as(ANALYST):
        assert access.resolve_customer(shared, "shop", "C-1001") == "C-1001"
        assert explorer.customer_event_count(shared, "shop", "C-1001") == 2
    # a stored id that already is a pseudonym is named by itself
    with access.acting_as(access.SYSTEM):
        shared.cursor().execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) "
                                "VALUES ('shop', 'c-0123456789ab', TIMESTAMP '2025-01-09', 'purchase', 5)")
    with access.acting_as(VIEWER):
        assert access.resolve_customer(shared, "shop", "c-0123456789ab") == "c-0123456789ab"


def test_a_context_without_a_caller_asks_the_resolver_before_the_default(shared):
    """The app's fragments rerun without passing the top of the script: the resolver names their
    session's caller; where it names nobody the default holds; a caller set explicitly wins."""
    access.set_default(None)
    try:
        seen = []
        access.set_resolver(lambda: seen.append(1) or VIEWER)
        assert access.current() is VIEWER and seen
        with pytest.raises(AccessDenied, match="Vic is a viewer"):
            access.require(shared, "export", "shop")
        with access.acting_as(ANALYST):
            assert access.current() is ANALYST
        access.set_resolver(lambda: None)
        assert access.current() is None
        access.set_resolver(lambda: 1 / 0)  # a resolver that fails: the default
        assert access.current() is None
    finally:
        access.set_resolver(None)
        access.set_default(access.LOCAL)
    assert access.current() is access.LOCAL


PLANTED = "Arrived broken. Call me at +44 20 7946 0958 or jane.doe@example.com, photos: https://imgs.example.org/j/1"


def _plant_review(wh, customer="C-1001", text=PLANTED):
    with access.acting_as(access.SYSTEM):
        wh.cursor().execute(
            "INSERT INTO events (dataset, customer_id, event_time, event_type, item_id, rating, text, country) "
            "VALUES ('shop', ?, TIMESTAMP '2025-02-10 12:00', 'review', 'SKU1', 1, ?, 'GB')", [customer, text])


@pytest.mark.parametrize("text, shown", [
    (PLANTED, "Arrived broken. Call me at [phone] or [email], photos: [link]"),
    ("mail JANE_DOE+x@Mail.Example.co.uk!", "mail [email]!"),
    ("(phone: (555) 123-4567) or 07700900123.", "(phone: [phone]) or [phone]."),
    ("电话13800138000，谢谢", "电话[phone]，谢谢"),
    ("see www.example.com. or facebook.com/jane.doe", "see [link]. or [link]"),
    # what is not contact data stays as written
    ("5 stars! bought 2025-12-31 12:00, order 12345, SKU10001, 1,299.00 EUR, 3/4 fit, amazon.com",
     "5 stars! bought 2025-12-31 12:00, order 12345, SKU10001, 1,299.00 EUR, 3/4 fit, amazon.com"),
    ("on 12.12.2025 call +1-202-555-0143", "on 12.12.2025 call [phone]"),
])
def test_redact_text_replaces_contact_details_and_keeps_the_rest(text, shown):
    assert access.redact_text(text) == shown
    assert access.redact_text(shown) == shown  # a redacted text stays as it is
    assert access.redact_text(None) is None and access.redact_text(4.0) == 4.0


def test_a_viewer_reads_customer_texts_without_contact_details(shared):
    """A review with an e-mail address, a phone number and a link: a viewer reads it with placeholders in
    the customer's timeline and in a customer-level table (the Reviews page's); an analyst and an admin
    read it as written; the country stays for everyone."""
    from analytics import explorer

    _plant_review(shared)
    reviews = pd.DataFrame({"customer_id": ["C-1001", "C-1002"], "text": [PLANTED, "fine"],
                            "attr_notes": ["vip, jane.doe@example.com", None], "rating": [1, 4]})
    with access.acting_as(VIEWER):
        who = access.ids_for(shared, ["C-1001"])[0]
        timeline = explorer.customer_timeline(shared, "shop", who)
        seen = access.present(shared, reviews)
        again = access.present(shared, seen)
    text = timeline.loc[timeline["event_type"] == "review", "text"].iloc[0]
    assert text.startswith("Arrived broken. Call me at [phone] or [email]") and text.endswith("[link]")
    shown = timeline.astype(str).to_csv() + seen.astype(str).to_csv()
    for secret in ("jane.doe", "7946", "0958", "imgs.example.org"):
        assert secret not in shown
    assert list(timeline["country"].dropna()) == ["GB"]
    assert list(seen["text"]) == ["Arrived broken. Call me at [phone] or [email], photos: [link]", "fine"]
    assert list(seen["attr_notes"].iloc[:1]) == ["vip, [email]"] and pd.isna(seen["attr_notes"].iloc[1])
    assert list(seen["rating"]) == [1, 4] and again["text"].equals(seen["text"])
    assert list(reviews["text"]) == [PLANTED, "fine"]  # the caller's frame is not changed
    for caller in (ANALYST, ADMIN):
        with access.acting_as(caller):
            timeline = explorer.customer_timeline(shared, "shop", "C-1001")
            assert list(timeline.loc[timeline["event_type"] == "review", "text"]) == [PLANTED]
            assert access.present(shared, reviews) is reviews


def test_a_report_shows_a_viewer_review_snippets_without_contact_details(shared):
    from analytics.reports import store

    snap = {"kind": "segment", "dataset": "shop", "title": "T",
            "reviews": [{"customer_id": "C-1001", "text": PLANTED, "rating": 1}]}
    with access.acting_as(ANALYST):
        token = store.create_report(shared, snap)
        assert store.get_report(shared, token)["reviews"][0]["text"] == PLANTED
    with access.acting_as(VIEWER):
        row = store.get_report(shared, token)["reviews"][0]
    assert row["text"] == "Arrived broken. Call me at [phone] or [email], photos: [link]" and row["rating"] == 1
