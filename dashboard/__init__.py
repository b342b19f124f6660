"""Valuescope's Streamlit UI: navigation, pages, widgets and caching only."""
