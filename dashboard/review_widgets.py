"""Review and new-customer views other pages embed (one call each): sentiment by segment for the
Explorer, new-customer groups for the Segments page. They lay out and call the library only."""
from __future__ import annotations

import streamlit as st

from dashboard import cache, widgets


def sentiment_by_segment(dataset: str, as_of, key: str = "sent_by") -> None:
    """Mean review sentiment and share of customers whose latest review is negative, per RFM segment
    or cluster of the dataset's customer frame at ``as_of`` (computed once per frame version)."""
    options = cache.explorer_sentiment_columns(dataset, as_of)
    if not options:
        st.info("No review sentiment for this dataset yet (it has no reviews, or they are being scored).", icon="💬")
        return
    labels = {"rfm_segment": "RFM segment", "cluster_name": "Cluster", "churn_band": "Churn risk band",
              "new_customer_segment": "New-customer group", "country": "Country"}
    column = st.selectbox("Group by", options, format_func=lambda c: labels.get(c, c), key=key)
    table = cache.explorer_sentiment(dataset, as_of, column)
    st.dataframe(widgets.as_percent(table.reset_index(), ["latest_negative_share"]), hide_index=True, column_config={
        column: labels.get(column, column),
        "customers": st.column_config.NumberColumn("Customers", format="%d"),
        "reviewers": st.column_config.NumberColumn("With a scored review", format="%d"),
        "sentiment_mean": st.column_config.NumberColumn("Mean sentiment (-1..1)", format="%.2f"),
        "latest_negative_share": widgets.percent_column("Latest review negative")})
    st.caption("Sentiment: learned from this dataset's rated reviews (or the VADER lexicon); see the Reviews page.")


def new_customer_groups(dataset: str, as_of, key: str = "new_groups") -> None:
    """The recent first-time buyers' groups (clustering on first-order features, readable names)."""
    window = st.number_input("New customers: first purchase in the last (days)", min_value=7, max_value=730,
                             value=90, step=1, key=key)
    try:
        prepared = cache.first_order(dataset, as_of, int(window))
    except ValueError as exc:
        widgets.show_error(exc, "The new customers could not be grouped")
        return
    if prepared is None:
        widgets.not_ready(dataset, "the table of new-customer groups", stop=False)
        return
    fov, groups, profile = prepared
    if fov.problem:
        st.info("The new customers cannot be grouped on these data (the first-order model could not be trained): "
                f"{widgets.md_escape(fov.problem.rstrip('.'))}.", icon="ℹ️")
        return
    if not len(profile):
        st.info(f"Too few customers with a first purchase in the last {int(window)} days to group.", icon="ℹ️")
        return
    st.caption(f"{len(groups):,} customers whose first purchase is in the last {int(window)} days, grouped by "
               "k-means on their first basket, browsing before it and what they did since; each group is named "
               "after its strongest traits.")
    st.dataframe(widgets.as_percent(profile.reset_index(), ["basket_discount", "returned_first"]), hide_index=True,
                 column_config={
        "segment": "Group", "customers": st.column_config.NumberColumn("Customers", format="%d"),
        "basket_value": st.column_config.NumberColumn("First basket", format="%.2f"),
        "basket_units": st.column_config.NumberColumn("Units", format="%.1f"),
        "basket_discount": widgets.percent_column("Discount"),
        "views_before": st.column_config.NumberColumn("Views before buying", format="%.1f"),
        "visits_since": st.column_config.NumberColumn("Visits since", format="%.1f"),
        "purchase_days_since": st.column_config.NumberColumn("Bought again (days)", format="%.2f"),
        "returned_first": widgets.percent_column("Returned")})
    values = fov.values.groupby(groups.reindex(fov.values.index)).agg(["mean", "sum"])
    st.dataframe(values.reset_index().rename(columns={"index": "segment"}), hide_index=True, column_config={
        "new_customer_segment": "Group",
        "mean": st.column_config.NumberColumn("Predicted value per customer", format="%.2f"),
        "sum": st.column_config.NumberColumn("Predicted value, group", format="%.2f")})
