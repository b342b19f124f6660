"""AppTest: on the Campaigns page a ranking score missing for a share of the selection is a
warning that names the score, and no ROI is shown; a score that ranks shows its ROI."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from analytics.bootstrap import ensure_default_dataset
from analytics.explorer import build_frame
from tests.dashboard.conftest import APP, TIMEOUT


def test_unranked_list_warns_and_hides_the_roi(app_wh):
    ensure_default_dataset(app_wh)
    last = app_wh.cursor().execute("SELECT max(event_time) FROM events WHERE dataset = 'sample'").fetchone()[0]
    frame = build_frame(app_wh, "sample", last.date())
    missing = frame["avg_rating"].isna().mean()  # customers who never reviewed have no rating
    assert 0.1 < missing < 0.9
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/campaigns.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ROI"].endswith("%") and not at.warning  # expected CLV ranks the default list
    at.selectbox(key="camp_ranking").set_value("score").run()
    at.selectbox(key="camp_score_col").set_value("avg_rating").run()
    assert not at.exception, at.exception
    said = [w.value for w in at.warning if "not ranked" in w.value]
    assert len(said) == 1 and "have no ranking score" in said[0] and "avg\\_rating" in said[0], said
    from analytics.formatting import percent  # "46 %", as every page writes a share

    assert f"{percent(missing, 0)} of the selected customers" in said[0], said
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["ROI"] == "not shown" and "Incremental return" not in metrics
    assert not [c for c in at.get("plotly_chart") if "Incremental return" in c.proto.spec]  # no return curve
