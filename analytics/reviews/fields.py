"""Segment-builder fields of review sentiment, churn band and next order date (registered once,
at import: ``analytics.segments`` imports this module).

The sentiment fields have a provider (:func:`analytics.reviews.features.customer_sentiment`), so a
segment can use them on any customer table; the churn band and next order date come with the
customer frame (they need the fitted purchase model)."""
from __future__ import annotations

from analytics.segments.rules import Field, register_field

_HELP = {
    "sentiment_mean": ("Review sentiment (average)", "The average tone of the customer's reviews, from -1 "
                       "(very negative) to +1 (very positive); empty for customers who wrote none."),
    "sentiment_negative_share": ("Share of negative reviews", "Which part of the customer's reviews read as "
                                 "negative, from 0 to 1."),
    "sentiment_latest": ("Latest review sentiment", "The tone of the customer's most recent review, -1 to +1."),
    "days_since_negative_review": ("Days since a negative review", "Days since the customer's last negative "
                                   "review; empty when they never wrote one."),
    "n_scored_reviews": ("Reviews with a sentiment", "How many of the customer's reviews have a sentiment score."),
}


def _provider(column: str):
    def provide(wh, dataset, as_of):
        from analytics.reviews.features import customer_sentiment

        return customer_sentiment(wh, dataset, as_of)[column]

    return provide


for _name, (_label, _help) in _HELP.items():
    register_field(Field(_name, "numeric", _label, help=_help), provider=_provider(_name))

register_field(Field("churn_band", "category", "Churn risk band",
                     help="low / medium / high: the churn risk (a published churn model's probability, else "
                          "1 - P(alive)) cut at the thresholds set on the Value page; repeat buyers only."))
register_field(Field("next_order_date", "date", "Expected next order",
                     help="When the purchase model (BG/NBD) expects the customer's next order; repeat buyers only."))
register_field(Field("days_to_next_order", "numeric", "Days to next order",
                     help="Days from the as-of day to the expected next order; repeat buyers only."))
register_field(Field("first_order_value", "numeric", "Predicted value (new customer)",
                     help="For customers whose first purchase is recent: the value the first-order model expects "
                          "over the next period."))
register_field(Field("new_customer_segment", "category", "New-customer group",
                     help="The group of a recent first-time buyer, from what their first order looked like."))
