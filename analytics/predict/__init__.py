"""Value predictors (LightGBM, LSTM) and their backtest metrics.

Submodules import their heavy dependencies (torch, lightgbm) lazily so that
``import analytics.predict`` stays cheap.
"""


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (the role of scikit-learn's NotFittedError)."""


def get_params_of(estimator) -> dict:
    """The constructor arguments of ``estimator`` as currently set (scikit-learn style)."""
    import inspect

    names = [p for p in inspect.signature(type(estimator).__init__).parameters if p != "self"]
    return {name: getattr(estimator, name) for name in names}
