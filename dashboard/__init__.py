"""Valuescope's Streamlit UI: navigation, pages, widgets and caching only.

Page files live in ``dashboard/views/``, not ``pages/``: Streamlit treats a
``pages/`` folder beside the main script as a legacy multipage app, which broke
deep links (``/data``) on a fresh server.
"""
