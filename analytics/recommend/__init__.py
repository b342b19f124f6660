"""Product recommendations: interactions, recommenders, one honest evaluation, the campaign default.

Public API (everything a page, the CLI or the preparation step needs):

* data: ``load_interactions(wh, dataset, start, end, weights, sequences=False)`` ->
  ``Interactions``;
* recommenders (one API: ``fit(interactions)``, ``recommend(customer_ids, n,
  exclude_purchased, category)`` -> DataFrame[customer_id, rank, item_id, category, score,
  source]): ``PopularityRecommender``, ``RecentPopularity``, ``ItemCF``, ``ImplicitItemKNN``,
  ``ALSRecommender``, ``BPRRecommender``, ``EASERecommender`` (Steck 2019),
  ``RecencyBlend`` (item neighbours x recent
  popularity) and ``SequenceRecommender`` (PyTorch; imported on
  first use); ``make_model(family, params)`` builds one by name (``FAMILIES``);
* evaluation: ``evaluate_holdout`` (every model, same holdout and rules; precision@k,
  recall@k, F1@k, NDCG@k, coverage), ``validate_models`` (settings and winner chosen on
  validation windows before the split), ``ranking_metrics``;
* the campaign default: ``choose_default(wh, dataset, end)`` (JSON-serialisable choice:
  validation winner and how much it beat popularity) and ``fit_default(wh, dataset, end,
  choice)``; ``campaign_recommender(wh, dataset, end)`` (the fitted winner among the quick
  ``CAMPAIGN_FAMILIES``, its choice on ``.choice_``: what campaign lists use);
* output: ``recommendations_text`` (one "a; b; c" string per customer),
  ``item_labels`` / ``recommendations_named`` (items by name, for exports).
"""
from analytics.recommend.core import (  # noqa: F401
    DEFAULT_WEIGHTS, TRANSFORMS, Interactions, ItemCF, NotFittedError, PopularityRecommender, RecommendError,
    data_range, holdout_window, load_interactions, recommendations_text,
)
from analytics.recommend.evaluate import (  # noqa: F401
    BASELINES, CAMPAIGN_FAMILIES, DEFAULT_GRID, FAMILIES, LABELS, Validation, campaign_recommender,
    check_families, choose_default, evaluate_holdout,
    fit_default, holdout_relevant, make_model, ranking_metrics, ratio_summary, validate_models,
)
from analytics.recommend.models import (  # noqa: F401
    ALSRecommender, BPRRecommender, EASERecommender, ImplicitItemKNN, RecencyBlend, RecentPopularity,
)
from analytics.recommend.names import item_labels, recommendations_named  # noqa: F401


def __getattr__(name):
    # torch is imported only when the sequence model is asked for
    if name in ("SequenceRecommender", "sequence_throughput"):
        from analytics.recommend import sequence

        return sequence.SequenceRecommender if name == "SequenceRecommender" else sequence.throughput
    raise AttributeError(f"module 'analytics.recommend' has no attribute {name!r}")
