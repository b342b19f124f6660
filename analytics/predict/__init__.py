"""Value predictors (LightGBM, LSTM), their backtest and its metrics.

Submodules import their heavy dependencies (torch, lightgbm) lazily so that
``import analytics.predict`` stays cheap. The OpenMP wait policy that keeps
their CPU threads from spinning is set by ``analytics/__init__.py``.
"""
from sklearn.exceptions import NotFittedError  # one class for every model: scikit-learn's

__all__ = ["NotFittedError"]
