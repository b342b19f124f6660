"""AppTest: a review text with an e-mail address, a phone number and a link, signed in as a viewer and as
an analyst of the same dataset: the viewer's Explorer timeline and Reviews page show the review with
placeholders and the contact details nowhere on the page; the analyst (whose page views run first and
fill the shared caches) reads the text as written."""
from __future__ import annotations

import pandas as pd
import pytest

from analytics import access
from analytics.ingest import ingest
from sample_data.generator import SampleConfig, generate
from tests.dashboard.test_admin_page import VIC, _app, provider  # noqa: F401 (the sign-in fixture)

ANN = {"is_logged_in": True, "email": "ann@example.com", "name": "Ann", "sub": "3"}
PLANTED = ("Terrible, arrived broken and nobody answers. Call me at +44 20 7946 0958 or jane.doe@example.com, "
           "photos at https://imgs.example.org/jane/1")
REDACTED = ("Terrible, arrived broken and nobody answers. Call me at [phone] or [email], "
            "photos at [link]")
SECRETS = ("jane.doe", "7946 0958", "+44 20", "imgs.example.org")


@pytest.fixture
def gen(app_wh, tmp_path, provider):  # noqa: F811
    """A generated dataset whose biggest spender wrote the planted 1-star review on its last day; Vic a
    viewer and Ann an analyst of it."""
    ev = tmp_path / "events.csv.gz"
    generate(ev, None, SampleConfig(customers=700, seed=3))
    events = pd.read_csv(ev, dtype={"customer_id": str, "text": str})
    top = events[events["event_type"] == "purchase"].groupby("customer_id")["revenue"].sum().idxmax()
    extra = tmp_path / "extra.csv"
    pd.DataFrame([{"customer_id": top, "event_time": "2025-12-31 12:00:00", "event_type": "review",
                   "item_id": "SKU10001", "category": "electronics", "rating": 1, "text": PLANTED,
                   "country": "DE"}]).to_csv(extra, index=False)
    ingest(app_wh, ev, "gen")
    ingest(app_wh, extra, "gen")
    with access.acting_as(access.SYSTEM):
        for who, role in (("vic@example.com", "viewer"), ("ann@example.com", "analyst")):
            access.set_person(app_wh, who, role)
            access.grant(app_wh, who, "gen")
    yield app_wh, top
    access.set_default(access.LOCAL)  # the app set "nobody" as this process's default


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _rendered(at) -> str:
    """Everything the page shows: every element's message (texts, labels, options, help) and every
    table's cells."""
    parts = []
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        if getattr(node, "type", None) in ("arrow_data_frame", "dataframe", "table"):
            parts.append(node.value.to_csv())
    return "\n".join(parts)


def _timeline(user, who):
    at = _app(user, page="views/explorer.py")
    assert not at.exception, at.exception
    at.text_input(key="explorer_search").input(who).run()
    at.selectbox(key="explorer_customer").set_value(who).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "Event" in d.value.columns)
    return at, list(table.loc[table["Event"] == "review", "Text"])


def _reviews(user):
    at = _app(user, page="views/reviews.py")
    assert not at.exception, at.exception
    worst = next(d.value for d in at.dataframe if "text" in d.value.columns and "sentiment" in d.value.columns)
    return at, worst


def test_a_viewer_sees_customer_texts_without_contact_details(gen):
    wh, top = gen
    with access.acting_as(access.Caller("vic@example.com", "person", "viewer")), access.on_warehouse(wh):
        seen = access.ids_for(wh, [top])[0]
    # the analyst first: the texts as written, and the shared caches hold them
    at, texts = _timeline(ANN, top)
    assert PLANTED in texts
    assert "jane.doe@example.com" in _rendered(at)
    at, worst = _reviews(ANN)
    assert PLANTED in set(worst["text"]) and top in set(worst["customer_id"])
    assert "jane.doe@example.com" in _rendered(at)
    # the viewer: the same review, placeholders instead of the contact details, anywhere on the page
    at, texts = _timeline(VIC, seen)
    assert REDACTED in texts
    page = _rendered(at)
    assert "[email]" in page and not [s for s in SECRETS if s in page] and top not in page
    at, worst = _reviews(VIC)
    row = worst[worst["customer_id"] == seen]
    assert REDACTED in set(row["text"]) and (row["sentiment"] < 0).all()
    page = _rendered(at)
    assert "[phone]" in page and not [s for s in SECRETS if s in page]
