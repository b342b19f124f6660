"""Plain words for the terms the app shows: one sentence each, for tooltips and help texts.

Pages put these in ``help=`` of metrics, sliders and column headers (column tooltips
come from :data:`analytics.formatting.COLUMNS`); reports may quote them. Keep each a
sentence a marketer reads without a statistics course.
"""
from __future__ import annotations

TERMS: dict[str, str] = {
    "p_alive": "P(alive): the chance that a customer has not quietly stopped buying, from their purchase rhythm "
               "(BG/NBD model). 90 % = almost surely still a customer; 10 % = most likely gone.",
    "bgnbd": "BG/NBD: a model of how often each customer buys and how likely they are to have stopped, learnt "
             "from everyone's purchase days (Fader, Hardie & Lee 2005).",
    "gamma_gamma": "Gamma-Gamma: a model of how much a customer spends per order, which pulls customers with few "
                   "orders towards the average (Fader, Hardie & Lee 2005).",
    "clv": "Customer lifetime value (CLV): the profit a customer is expected to bring over the horizon, "
           "discounted to today's money.",
    "clv_formula": "CLV by formula: average order value × orders per year × margin × the discounted months of the "
                   "horizon; new customers count as at least the minimum age old, so their first orders are not "
                   "blown up to a year's worth.",
    "expected_purchases": "Expected orders: how many orders the BG/NBD model expects from the customer over the "
                          "horizon.",
    "rfm": "RFM: scores of 1-5 for how recently (R), how often (F) and how much (M) a customer bought, "
           "5 being the best fifth of customers.",
    "behaviour_score": "Behaviour score: 0-100 for how active a customer is on the site (views, searches, cart "
                       "adds, purchases, reviews), weighted as you choose.",
    "churn_risk": "Churn risk: the chance that the customer has stopped buying (1 - P(alive), or a published "
                  "model's churn probability).",
    "normalized_gini": "Normalized Gini: how well a model puts next period's big spenders first, from 0 (no better "
                       "than chance) to 1 (a perfect order).",
    "top_decile_capture": "Top-decile capture: the share of next period's revenue that came from the 10 % of "
                          "customers the model ranked highest.",
    "ziln": "ZILN loss: how the neural model learns that many customers spend nothing and a few spend a lot "
            "(zero-inflated lognormal; Wang et al. 2019).",
    "silhouette": "Silhouette: how clearly customers sit in their own cluster rather than the next one, from -1 to 1 "
                  "(higher is clearer).",
    "inertia": "Inertia: how spread out customers are inside their clusters; it always falls as k grows, and the "
               "bend of the curve (the elbow) suggests a k.",
    "bic": "BIC: a score for mixture models that rewards fit and punishes extra clusters; lower is better.",
    "control_group": "Control group: customers picked at random from the same list and not contacted, so the "
                     "difference to the contacted ones measures what the campaign added.",
    "uplift": "Uplift: the conversion (or revenue per customer) of the contacted group minus that of the control "
              "group: what the campaign caused.",
    "ci95": "95 % interval: the range the true effect lies in with 95 % confidence; an interval that includes 0 "
            "means the campaign's effect is not proven.",
    "partial_period": "Partial period: the first or last period of the data holds fewer days than the others, so "
                      "its totals look low; it is drawn hatched or dashed with its day count.",
    "min_age": "Minimum age: customers younger than this are counted as this old when their orders are turned into "
               "orders per year.",
    # backtest figures (Predict page, CLI)
    "rmse": "RMSE: the typical size of a miss for one customer, in money (root mean squared error); lower is better.",
    "mae": "MAE: the average miss for one customer, in money, whatever its direction; lower is better.",
    "spearman": "Spearman: how well the order of the predicted values follows the order of what customers spent "
                "(1 = the same order).",
    "total_ratio": "Predicted / actual: the total the model expected divided by what customers spent; 1.00 is "
                   "right, 0.90 is 10 % too low.",
    "churn_auc": "Churn ROC AUC: how well the churn risk tells apart the customers who did not buy again from those "
                 "who did (1 = always, 0.5 = chance).",
    "pr_auc": "Churn PR AUC: how many of the customers flagged as riskiest really did not buy again.",
    "brier": "Churn Brier score: the mean squared error of the churn probability; lower is better.",
    "fit_seconds": "Fit time: seconds spent fitting the model on this machine (its validation and final fit).",
    "validation_gini": "Validation Gini: the normalized Gini on the last weeks of the calibration data, where the "
                       "models' settings were checked; the holdout is never used for that.",
}


def term(key: str) -> str:
    """The plain-words sentence for ``key`` (KeyError for an unknown term: add it here)."""
    return TERMS[key]
