"""AppTest: with background preparation a page says what is not ready yet and the sidebar shows
the progress ("preparing 1/6: …"); once the job ends the page draws from the prepared results."""
from __future__ import annotations

import contextlib
import re
import threading

from streamlit.testing.v1 import AppTest

from analytics import prepare
from tests.dashboard.conftest import APP, TIMEOUT, insert_events, synthetic_rows


def test_a_page_waits_for_background_preparation_then_reads_it(app_wh, monkeypatch):
    monkeypatch.setenv("VALUESCOPE_PREPARE", "background")
    insert_events(app_wh, "shop", synthetic_rows(50, seed=4))
    gate, reached = threading.Event(), threading.Event()
    real = prepare._STAGE_FUNCS["overview"]

    def held(*args):  # the job waits in its first stage until the page has been drawn
        reached.set()
        assert gate.wait(TIMEOUT)
        return real(*args)

    monkeypatch.setitem(prepare._STAGE_FUNCS, "overview", held)
    try:
        _check(app_wh, gate, reached)
    finally:
        gate.set()


def _check(app_wh, gate, reached) -> None:
    started = prepare.start(app_wh, "shop")  # as the app does after a load
    assert reached.wait(TIMEOUT)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert any("The overview is being prepared" in i.value for i in at.info), [i.value for i in at.info]
    texts = [p.proto.text for p in at.get("progress")]
    assert any(t.startswith("preparing 1/6: summarising the dataset") for t in texts), texts
    job = prepare.job(app_wh, "shop")
    assert job is started and job.running  # the page found the running job, started no other
    assert not at.metric  # nothing computed by the page itself
    gate.set()
    assert job.wait(TIMEOUT) and job.state == "done", job.error
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Customers"] == "50"
    assert not at.get("progress")  # prepared: no progress bar any more


@contextlib.contextmanager
def _preparing(app_wh, monkeypatch):
    """Background preparation of a 50-customer dataset, held in its first stage while the block runs;
    on leaving, the job is let go and waited for."""
    monkeypatch.setenv("VALUESCOPE_PREPARE", "background")
    insert_events(app_wh, "shop", synthetic_rows(50, seed=4))
    gate, reached = threading.Event(), threading.Event()
    real = prepare._STAGE_FUNCS["overview"]

    def held(*args):
        reached.set()
        assert gate.wait(TIMEOUT)
        return real(*args)

    monkeypatch.setitem(prepare._STAGE_FUNCS, "overview", held)
    try:
        prepare.start(app_wh, "shop")
        assert reached.wait(TIMEOUT)
        yield
    finally:
        gate.set()
        job = prepare.job(app_wh, "shop")
        assert job is not None and job.wait(TIMEOUT)


def test_the_value_page_says_in_a_sentence_that_its_scores_are_being_prepared(app_wh, monkeypatch):
    with _preparing(app_wh, monkeypatch):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.switch_page("views/value.py").run()
        assert not at.exception, at.exception
        infos = [i.value for i in at.info]
        assert any(i.startswith("The table of customer scores is being prepared for") for i in infos), infos


def test_the_reviews_page_says_in_a_grammatical_sentence_what_is_being_prepared(app_wh, monkeypatch):
    # 'The churn bands is being prepared' read wrong: each part still being prepared is named so that
    # 'is being prepared' fits it
    with _preparing(app_wh, monkeypatch):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.switch_page("views/reviews.py").run()
        assert not at.exception, at.exception
        infos = [i.value for i in at.info if "is being prepared" in i.value]
        assert any(i.startswith("The table of churn bands is being prepared for") for i in infos), infos
        assert not any(re.match(r"The (churn bands|new-customer groups) is", i) for i in infos), infos
