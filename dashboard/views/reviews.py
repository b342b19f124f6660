"""Reviews & new customers: what customers write, who is about to leave, and the recent first-time buyers.

* Review sentiment: which source scored the reviews (learned from this dataset's rated reviews, or
  the VADER lexicon) and how well it did on held-out rated reviews; the most negative recent reviews
  of valuable customers (texts shown as plain text in table cells: never rendered as markup);
  sentiment by category.
* Churn bands: low / medium / high thresholds (shown, editable, stored for the dataset) and how many
  repeat buyers fall in each band.
* New customers: the first-order model's predicted value of recent first-time buyers, their groups,
  and recommendations for customers without a purchase (labelled with where they come from).
"""
from __future__ import annotations

import streamlit as st

from analytics import formatting
from analytics.warehouse import WarehouseError
from dashboard import cache, widgets

# ---------------------------------------------------------------- review sentiment
#: the first-order model's new-customer profile, as people read it
PROFILE_CONFIG = {
    "segment": "Group", "customers": st.column_config.NumberColumn("Customers", format="%,d"),
    "basket_units": st.column_config.NumberColumn("Units in the first basket", format="%.1f"),
    "basket_discount": widgets.percent_column("Discount"),
    "views_before": st.column_config.NumberColumn("Views before buying", format="%.1f"),
    "visits_since": st.column_config.NumberColumn("Visits since", format="%.1f"),
    "purchase_days_since": st.column_config.NumberColumn("Bought again (days)", format="%.2f"),
    "returned_first": widgets.percent_column("Returned the first order")}
#: the profile's columns of fractions, shown x 100 (widgets.as_percent)
PROFILE_RATES = ["basket_discount", "returned_first"]


def _filled(frame):
    """Text cells that are missing read as a dash (never "None")."""
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].where(out[c].notna(), formatting.MISSING)
    return out


def _tab_reviews(dataset: str, as_of, currency=None) -> None:
    """Which source scored the reviews, how well; the most negative recent reviews of valuable customers."""
    try:
        info = cache.sentiment_info(dataset)
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The review sentiment could not be computed")
        info = None
    if info is not None:
        if not info.get("n_reviews"):
            # nothing to score: no "Score the reviews again" button, and what to load to see sentiment
            st.info(f"“{widgets.md_escape(dataset)}” has no reviews, so there is no review sentiment to show. To "
                    "see it, load a file with the reviews (a review text or a star rating per row: map them to "
                    "“Review or search text” and “Rating” on the Data page).", icon="📭")
        else:
            from analytics.reviews.sentiment import describe_run

            held = (info.get("heldout") or {})
            rows = []
            for key, label in (("all", "All"), ("en", "English"), ("zh", "Chinese")):
                m = held.get(key)
                if m and m.get("n"):
                    rows.append({"Reviews": label, "Held-out rated reviews": m["n"],
                                 "Accuracy": None if m.get("accuracy") is None else 100.0 * m["accuracy"],
                                 "ROC AUC": m.get("roc_auc")})
            # one line names the source (the library's reason, e.g. "learned from 9,331 rated reviews
            # ..."); the held-out figures are in the table below, so the notes repeat neither
            reason = str(info.get("reason") or info.get("source_name") or "lexicon")
            st.markdown(f"**Sentiment source:** {widgets.md_escape(reason[:1].upper() + reason[1:])}.")
            notes = describe_run(info, source=False, heldout=not rows)
            if notes:
                st.caption(widgets.md_escape(notes))
            if rows:
                st.dataframe(rows, hide_index=True, column_config={
                    "Held-out rated reviews": st.column_config.NumberColumn(format="%,d"),
                    "Accuracy": widgets.percent_column(
                        help="The share of held-out rated reviews whose tone (positive or "
                        "negative) the sentiment source read as their stars say."),
                    "ROC AUC": st.column_config.NumberColumn(
                        format="%.3f", help="How well the sentiment tells apart the negative reviews from the "
                        "positive ones: 1 = always, 0.5 = chance.")})
            c1, c2 = st.columns(2)
            days = c1.selectbox("Reviews written in the last", [30, 90, 180, 365], index=1,
                                format_func=lambda d: f"{d} days", key="rv_days")
            share = c2.selectbox("Valuable customers: the top", [0.1, 0.2, 0.3, 0.5], index=1,
                                 format_func=lambda s: f"{formatting.percent(s, 0)} by value", key="rv_share")
            try:
                worst = cache.negative_reviews(dataset, as_of, int(days), float(share))
            except (ValueError, WarehouseError) as exc:
                widgets.show_error(exc, "The reviews could not be read")
                worst = None
            st.subheader("Most negative recent reviews of valuable customers")
            if worst is None:
                widgets.not_ready(dataset, "the customer table", stop=False)
            elif len(worst):
                st.dataframe(_filled(worst), hide_index=True, width="stretch", key="rv_worst", column_config={
                    "customer_id": "Customer",
                    "event_time": st.column_config.DatetimeColumn("Written", format=widgets.DATE_FORMAT),
                    "item_id": "Item", "category": "Category", "rating": "Stars",
                    "sentiment": st.column_config.NumberColumn("Sentiment", format="%.2f",
                                                               help=formatting.column_help("sentiment")),
                    "text": st.column_config.TextColumn("Review", width="large"),
                    "value": st.column_config.NumberColumn("Customer value", format=formatting.money_printf(currency),
                                                           help=formatting.column_help("expected_clv"))})
            elif worst is not None:
                st.info("No negative review by a valuable customer in that period.", icon="✅")
            cats = cache.category_sentiment(dataset)
            if len(cats):
                st.subheader("Sentiment by category")
                st.dataframe(widgets.as_percent(cats.reset_index(), ["sentiment_negative_share"]), hide_index=True,
                             width="stretch", column_config={
                    "category": "Category",
                    "sentiment_mean": st.column_config.NumberColumn("Mean sentiment", format="%.2f",
                                                                    help=formatting.column_help("sentiment")),
                    "sentiment_negative_share": widgets.percent_column("Negative"),
                    "n_reviews": st.column_config.NumberColumn("Reviews", format="%,d")})
            if st.button("Score the reviews again", key="rv_rescore"):
                try:
                    cache.rescore_sentiment(dataset)
                    st.rerun()
                except (ValueError, WarehouseError) as exc:
                    widgets.show_error(exc, "The reviews could not be scored")

# ---------------------------------------------------------------- churn bands
def _tab_bands(dataset: str, as_of) -> None:
    """The churn-risk band thresholds (editable) and every repeat buyer's band and next order."""
    from analytics.lifecycle import LifecycleError, describe_thresholds

    lo, hi = cache.churn_thresholds(dataset)
    said = describe_thresholds((lo, hi))
    st.caption("Every repeat buyer gets a churn-risk band and an expected next order date (BG/NBD). "
               + widgets.md_escape(said[:1].upper() + said[1:]) + ".")
    c1, c2 = st.columns(2)
    new_lo = c1.number_input("Medium from (churn risk)", min_value=0.01, max_value=0.98, value=float(lo), step=0.05,
                             key="rv_band_lo")
    new_hi = c2.number_input("High from (churn risk)", min_value=0.02, max_value=0.99, value=float(hi), step=0.05,
                             key="rv_band_hi")
    if (new_lo, new_hi) != (lo, hi) and st.button("Save the thresholds", key="rv_band_save"):
        try:
            cache.set_churn_thresholds(dataset, (new_lo, new_hi))
            st.rerun()
        except LifecycleError as exc:
            widgets.show_error(exc, "The thresholds were not saved")
    try:
        bands = cache.lifecycle_table(dataset, as_of)
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The churn bands could not be computed")
        return
    if bands is None:
        widgets.not_ready(dataset, "the table of churn bands", stop=False)
        return
    if bands is not None:
        counts = bands["churn_band"].value_counts().reindex(["low", "medium", "high"]).fillna(0).astype(int)
        m1, m2, m3 = st.columns(3)
        m1.metric("Low risk", f"{counts['low']:,}")
        m2.metric("Medium risk", f"{counts['medium']:,}")
        m3.metric("High risk", f"{counts['high']:,}")
        shown = bands.dropna(subset=["churn_band"]).reset_index().head(500)
        widgets.show_table(shown, None, key="rv_bands_table",
                           missing={"next_order_date": "no next order expected",
                                    "days_to_next_order": "no next order expected"})

# ---------------------------------------------------------------- new customers
def _tab_new(dataset: str, as_of, currency=None) -> None:
    """Recent first-time buyers' predicted value and groups; recommendations without history."""
    window = st.number_input("A customer is new when the first purchase is in the last (days)", min_value=7,
                             max_value=730, value=90, step=1, key="rv_window")
    try:
        new = cache.first_order(dataset, as_of, int(window))
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The first-order model could not be fitted")
        new = None
    if new is not None:
        fov, groups, profile = new
        if fov.problem:
            # the library's reason in a sentence that says what is missing and what stands in for it
            st.info("The new customers' value cannot be predicted on these data (the first-order model could not "
                    f"be trained): {widgets.md_escape(fov.problem.rstrip('.'))}. Their CLV by formula stands in "
                    "for it.", icon="ℹ️")
        elif len(fov.values) == 0:
            st.info(f"No customer's first purchase is in the last {int(window)} days.", icon="📭")
        else:
            st.caption(f"{len(fov.values):,} new customers. Their value over the next {fov.horizon_days} days comes "
                       "from the first-order model (first basket, browsing before buying, what they did since, "
                       "country, acquisition month), trained on every earlier first-time buyer; it replaces the "
                       "formula CLV's annualisation of a single order for them.")
            money = formatting.money_printf(currency)
            st.metric("Predicted value of the new customers", formatting.money(float(fov.values.sum()), currency),
                      help=formatting.column_help("first_order_value"))
            st.caption(f"On average {formatting.money(float(fov.values.mean()), currency)} per new customer over "
                       f"the next {fov.horizon_days} days.")
            st.subheader("New-customer groups")
            st.dataframe(widgets.as_percent(profile.reset_index(), PROFILE_RATES), hide_index=True, width="stretch",
                         column_config={
                **PROFILE_CONFIG, "basket_value": st.column_config.NumberColumn("First basket", format=money)})
            table = fov.features[["first_category", "basket_value", "age_days"]].join(
                fov.values.rename("first_order_value")).join(groups)
            st.dataframe(_filled(table.sort_values("first_order_value", ascending=False).reset_index().head(500)),
                         hide_index=True, width="stretch", key="rv_new_table", column_config={
                             "customer_id": "Customer", "first_category": "First category",
                             "basket_value": st.column_config.NumberColumn("First basket", format=money),
                             "age_days": st.column_config.NumberColumn("Days since first purchase", format="%,d"),
                             "first_order_value": st.column_config.NumberColumn(
                                 "Predicted value", format=money, help=formatting.column_help("first_order_value")),
                             "new_customer_segment": "Group"})
    st.subheader("Recommendations for customers without a purchase")
    try:
        recs = cache.cold_start(dataset, as_of)
    except (ValueError, WarehouseError) as exc:
        widgets.show_error(exc, "The recommendations could not be made")
        recs = None
    if recs is not None and len(recs):
        st.caption("Popular items of the category the customer first looked at, else of their country, else "
                   "overall; the label says which.")
        st.dataframe(_filled(recs.head(500)), hide_index=True, width="stretch", column_config={
            "customer_id": "Customer", "rank": "Rank", "item_id": "Item", "reason": "Why"})
    elif recs is not None and recs.attrs.get("without_purchase"):
        n = int(recs.attrs["without_purchase"])
        st.info(f"{n:,} {'customer has' if n == 1 else 'customers have'} not bought anything up to "
                f"{formatting.date(as_of)}, but there is nothing to recommend to them: no purchase names an "
                "item (map a product id column at load to get recommendations).", icon="📭")
    elif recs is not None:
        st.info("Every customer has bought something: no cold-start recommendations needed.", icon="✅")


def main() -> None:
    st.title("💬 Reviews & new customers")
    dataset, _version, _first_day, last_day = widgets.dataset_span_or_stop()
    as_of = last_day
    currency = widgets.dataset_currency(dataset)
    st.caption(f"Dataset **{widgets.md_escape(dataset)}**, as of {formatting.date(as_of)} (its last day).")
    tab_reviews, tab_bands, tab_new = st.tabs(["Review sentiment", "Churn bands", "New customers"])
    with tab_reviews:
        _tab_reviews(dataset, as_of, currency)
    with tab_bands:
        _tab_bands(dataset, as_of)
    with tab_new:
        _tab_new(dataset, as_of, currency)


main()
