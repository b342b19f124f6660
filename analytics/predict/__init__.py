"""Value predictors (LightGBM, LSTM) and their backtest metrics.

Submodules import their heavy dependencies (torch, lightgbm) lazily so that
``import analytics.predict`` stays cheap.

OpenMP threads (used by LightGBM and by torch on the CPU) busy-wait between
parallel regions by default. On a small shared machine (2 cores, a Streamlit
server, other jobs) that spinning made fits 5-100x slower in wall time than
one thread; passive waiting removes the penalty and costs nothing measurable
when the machine is idle. The policy is read when the OpenMP runtime loads, so
it is set here, before lightgbm/torch are imported by the model modules; a value
the user already set is left alone.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit`` (the role of scikit-learn's NotFittedError)."""


def get_params_of(estimator) -> dict:
    """The constructor arguments of ``estimator`` as currently set (scikit-learn style)."""
    import inspect

    names = [p for p in inspect.signature(type(estimator).__init__).parameters if p != "self"]
    return {name: getattr(estimator, name) for name in names}
