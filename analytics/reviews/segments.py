"""Ready-made segments of the reviews area: "Unhappy valuable customers"."""
from __future__ import annotations

from analytics.segments import store

UNHAPPY_VALUABLE = "Unhappy valuable customers"
#: valuable = in the top two fifths by spend (M score 4-5) with at least two orders; unhappy = their
#: latest review reads negative or most of their reviews do
UNHAPPY_VALUABLE_DEFINITION = {"op": "and", "conditions": [
    {"field": "m_score", "operator": ">=", "value": 4},
    {"field": "n_orders", "operator": ">=", "value": 2},
    {"op": "or", "conditions": [
        {"field": "sentiment_latest", "operator": "<", "value": -0.05},
        {"field": "sentiment_negative_share", "operator": ">=", "value": 0.5},
    ]},
]}
UNHAPPY_VALUABLE_DESCRIPTION = ("Big spenders (top 40% by spend, 2+ orders) whose latest review is negative or "
                                "most of whose reviews are: call them before they leave.")


def ensure_ready_made_segments(wh, dataset: str) -> list[str]:
    """Save the ready-made segments for ``dataset`` unless one of that name is already visible to
    it (a user's own segment of the same name is kept). Returns the names it saved."""
    from analytics.reviews import fields  # noqa: F401  (the sentiment fields must be known)

    names = set(store.list_segments(wh, dataset)["name"]) if wh.has_dataset(dataset) else {UNHAPPY_VALUABLE}
    saved = []
    if UNHAPPY_VALUABLE not in names:
        store.save_segment(wh, UNHAPPY_VALUABLE, UNHAPPY_VALUABLE_DEFINITION, UNHAPPY_VALUABLE_DESCRIPTION,
                           dataset=dataset)
        saved.append(UNHAPPY_VALUABLE)
    return saved
