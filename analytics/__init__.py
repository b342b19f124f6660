"""Valuescope analytics: the library behind the app and the CLI (never imports streamlit)."""

__version__ = "0.1.0"
