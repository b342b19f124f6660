"""Colour-blind-safe colours for categories (clusters, segments, groups), the same everywhere.

The eight colours of Okabe & Ito ("Color Universal Design", 2008), which stay distinct
for the common forms of colour blindness, ordered so that the first ones also read well
as small markers on white (the yellow comes late). More categories than colours reuse
the colours with another marker symbol (:func:`marker_symbols`), so no two categories
look alike. :func:`category_colors` gives a name the same colour on both sides of a
migration (Sankey) and on every chart of a page.
"""
from __future__ import annotations

from typing import Iterable

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x")
#: a neutral grey for "none" / "not a customer yet" / "other"
NEUTRAL = "#999999"


def colors(n: int) -> list[str]:
    """``n`` colours (repeating after eight: pair them with :func:`marker_symbols`)."""
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(max(int(n), 0))]


def marker_symbols(n: int) -> list[str]:
    """A marker symbol per category: circles for the first eight, then squares, diamonds..."""
    return [SYMBOLS[(i // len(OKABE_ITO)) % len(SYMBOLS)] for i in range(max(int(n), 0))]


def category_colors(names: Iterable, neutral: Iterable = (), palette=None) -> dict:
    """``{name: colour}`` in the order given (first seen first), over ``palette`` (default
    :data:`OKABE_ITO`), repeating past its end; ``neutral`` names are grey."""
    colours = OKABE_ITO if palette is None else tuple(palette)
    grey = set(neutral)
    out: dict = {}
    k = 0
    for n in names:
        if n in out:
            continue
        if n in grey:
            out[n] = NEUTRAL
        else:
            out[n] = colours[k % len(colours)]
            k += 1
    return out


def rgba(hex_colour: str, alpha: float) -> str:
    """``#RRGGBB`` as ``rgba(r, g, b, alpha)`` (for translucent links and bands)."""
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha:g})"


#: more distinct colours for charts that cannot tell categories apart by marker (a Sankey's nodes):
#: Okabe & Ito's eight, then five of Paul Tol's colour-blind-safe "muted" scheme (2021)
DISTINCT = OKABE_ITO + ("#332288", "#117733", "#882255", "#999933", "#AA4499")


def distinct_category_colors(names: Iterable, neutral: Iterable = ()) -> dict:
    """:func:`category_colors` over :data:`DISTINCT`: thirteen categories before a colour repeats."""
    return category_colors(names, neutral, DISTINCT)
