"""Segments: clustering with k guidance and readable clusters, rule-based filters, persistence.

* ``analytics.segments.clustering``: ``CustomerClustering``, ``k_guidance`` and figure builders;
* ``analytics.segments.rules``: segment filters as data (validate, evaluate, compile to SQL);
* ``analytics.segments.store``: saved segments and clustering runs in the warehouse.
"""
from analytics.segments.clustering import (  # noqa: F401
    DEFAULT_FEATURES, ClusteringError, ClusteringWarning, CustomerClustering, KGuidance,
    add_derived_features, cluster_names, k_guidance, k_guidance_figure, profile_figure,
    projection_figure, silhouettes,
)

# fields other areas register with the segment builder (review sentiment, churn band, next order)
from analytics.reviews import fields as _review_fields  # noqa: E402,F401
