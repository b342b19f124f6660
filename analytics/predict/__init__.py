"""Value predictors (LightGBM, LSTM) and their backtest metrics.

Submodules import their heavy dependencies (torch, lightgbm) lazily so that
``import analytics.predict`` stays cheap.
"""
