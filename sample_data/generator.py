"""Seeded generator of realistic e-commerce behaviour events with planted truth.

Every customer belongs to one of six planted personas (``PERSONAS``) and follows
a weekly stochastic process:

* **Purchases** follow a Poisson process whose rate is gamma-distributed across
  customers (as in the Pareto/NBD and BG/NBD models) with a **dropout** after
  each purchase with a beta-distributed probability ``p`` (the BG/NBD story:
  Fader, Hardie and Lee 2005, "Counting your customers the easy way"). On top
  of that, signals that BG/NBD cannot see, so richer models can do better:

  - a slowly varying latent interest (log-AR(1)) that drives both browsing and
    buying; browsing reacts one week *ahead* of buying, so recent views and
    cart adds are leading indicators of purchases;
  - trends: promising newcomers ramp up after their first visit; at-risk
    former big spenders decay (their rate falls over time instead of a
    memoryless dropout);
  - browsing nearly stops once a customer has dropped out, so recent activity
    reveals who is still alive;
  - weekly (weekend uplift) and yearly (November/December peak, Black Friday)
    seasonality.

* **Funnels**: every order is preceded by product views, often a search, and a
  cart add per line; browse-only sessions produce views, searches and some
  abandoned carts.
* **Catalogue**: items in categories with lognormal prices per category;
  personas prefer different categories and price levels (bargain hunters buy
  cheap, discounted items in several units).
* **Returns** (persona-dependent rate, full refund, stored as a positive
  amount on a ``return`` row with the order and item of the purchase) and
  **reviews** (rating 1-5 and a text in English or Chinese whose tone follows the rating:
  ``sample_data.review_text``);
* **bad experiences**: an order can go wrong (broken item, late delivery...); the customer
  then usually writes a negative review and often drops out right after, so negative
  reviews are an early warning of churn that the purchase history alone does not show
  (truth column ``bad_experiences``).

Output is the canonical events CSV layout (``HEADER``), written per batch of
customers so that memory stays bounded (1M customers stream to disk). The
future period after ``end`` is simulated by the same process and summarized in
a separate truth file (never in the events file).

The same arguments always give byte-identical output.
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sample_data.review_text import review_texts

HEADER = (
    "customer_id", "event_time", "event_type", "order_id", "item_id", "category",
    "quantity", "revenue", "rating", "text", "country",
)
TRUTH_HEADER = (
    "customer_id", "persona", "country", "first_seen", "true_purchase_rate", "current_purchase_rate",
    "dropout_prob", "history_purchases", "history_revenue", "alive_at_history_end",
    "future_purchases", "future_revenue", "future_returns", "future_net_revenue",
    "alive_at_future_end", "churned", "bad_experiences",
)
EVENT_TYPES = ("search", "view", "cart", "purchase", "return", "review")  # order = tie-break order in output
_SEARCH, _VIEW, _CART, _PURCHASE, _RETURN, _REVIEW = range(6)

DEFAULT_START = dt.date(2024, 1, 1)
DEFAULT_END = dt.date(2025, 12, 31)
DEFAULT_FUTURE_DAYS = 182
DEFAULT_CUSTOMERS = 4000
DEFAULT_SEED = 42
BATCH_SIZE = 20_000
EARLIEST = dt.date(1990, 1, 1)


class SampleError(ValueError):
    """Bad generator arguments (user-facing, one line)."""


# --------------------------------------------------------------------------- personas
PERSONAS = (
    "loyal_high_spender",
    "promising_newcomer",
    "at_risk_big_spender",
    "bargain_hunter",
    "window_shopper",
    "one_time_buyer",
)
LOYAL, NEWCOMER, AT_RISK, BARGAIN, WINDOW, ONE_TIME = range(6)

CATEGORIES = (
    "electronics", "jewelry", "home", "fashion", "sports", "garden",
    "toys", "beauty", "books", "pets", "office", "grocery",
)
# median list price per category (lognormal around it)
_CAT_PRICE = np.array([140.0, 110.0, 48.0, 38.0, 42.0, 30.0, 24.0, 17.0, 12.0, 14.0, 9.0, 5.0])
_CAT_SIGMA = np.array([0.55, 0.6, 0.5, 0.45, 0.5, 0.5, 0.45, 0.4, 0.35, 0.4, 0.4, 0.35])
_CAT_ITEMS = np.array([160, 90, 200, 260, 140, 90, 120, 150, 220, 80, 110, 180])

# Persona parameters. Rates are per week.
#   share, rate mean, rate shape (gamma), dropout beta (a, b), lines per order (1+Poisson),
#   extra quantity (Poisson), browse sessions/week, views per session (1+Poisson),
#   search prob per session, abandoned-cart prob per browse session, return prob per line,
#   review prob per line, mean rating, discount (mean), price skew (<1 expensive, >1 cheap)
_P = {
    #             share  rate  shape  pa   pb    lines qty   brw   vps  srch  aband ret   rev   rat  disc  skew
    LOYAL:       (0.15, 0.24, 10.0, 1.0, 250.0, 0.2, 0.1, 0.04, 1.0, 0.10, 0.04, 0.03, 0.40, 4.7, 0.02, 0.4),
    NEWCOMER:    (0.15, 0.28, 10.0, 1.0, 120.0, 0.3, 0.15, 0.25, 1.2, 0.40, 0.10, 0.06, 0.30, 4.2, 0.05, 1.0),
    AT_RISK:     (0.15, 0.28, 10.0, 1.0, 40.0, 0.4, 0.1, 0.08, 1.0, 0.20, 0.05, 0.22, 0.40, 2.2, 0.02, 0.45),
    BARGAIN:     (0.17, 0.20, 10.0, 1.0, 150.0, 0.3, 1.3, 0.08, 0.8, 1.80, 0.10, 0.02, 0.20, 3.6, 0.40, 4.0),
    WINDOW:      (0.18, 0.002, 4.0, 2.0, 8.0, 0.2, 0.1, 0.14, 2.0, 0.80, 0.12, 0.20, 0.02, 3.4, 0.05, 1.0),
    ONE_TIME:    (0.20, 0.0, 1.0, 1.0, 1.0, 0.4, 0.2, 0.01, 1.0, 0.20, 0.0, 0.08, 0.03, 3.1, 0.08, 1.0),
}
_PARAMS = np.array([_P[i] for i in range(len(PERSONAS))])
(_SHARE, _RATE, _SHAPE, _PA, _PB, _LINES, _QTY, _BROWSE, _VPS, _SRCH, _ABAND,
 _RET, _REV, _RATING, _DISC, _SKEW) = range(_PARAMS.shape[1])

# category preferences per persona (rows sum to 1 after normalization)
_CAT_PREF = np.array([
    # elec jewel home fash sport gard toys beau book pets offi groc
    [0.22, 0.14, 0.16, 0.16, 0.10, 0.06, 0.04, 0.05, 0.03, 0.02, 0.01, 0.01],  # loyal
    [0.08, 0.04, 0.14, 0.18, 0.12, 0.06, 0.10, 0.10, 0.08, 0.05, 0.03, 0.02],  # newcomer
    [0.24, 0.16, 0.16, 0.14, 0.10, 0.06, 0.04, 0.04, 0.03, 0.01, 0.01, 0.01],  # at risk
    [0.01, 0.00, 0.03, 0.05, 0.03, 0.03, 0.06, 0.12, 0.16, 0.12, 0.16, 0.23],  # bargain
    [0.16, 0.10, 0.12, 0.22, 0.10, 0.06, 0.06, 0.08, 0.04, 0.03, 0.02, 0.01],  # window
    [0.10, 0.06, 0.14, 0.16, 0.10, 0.08, 0.10, 0.08, 0.08, 0.04, 0.03, 0.03],  # one-time
])
_CAT_PREF = _CAT_PREF / _CAT_PREF.sum(axis=1, keepdims=True)

COUNTRIES = ("DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "AT", "BE", "US", "DK")
_COUNTRY_P = np.array([0.24, 0.14, 0.14, 0.08, 0.08, 0.08, 0.06, 0.04, 0.04, 0.04, 0.04, 0.02])

_MONTH_FACTOR = np.array([0.85, 0.88, 0.97, 1.0, 1.0, 0.95, 0.9, 0.92, 1.0, 1.05, 1.4, 1.6])
_WEEKDAY_W = np.array([0.92, 0.92, 0.95, 1.0, 1.06, 1.3, 1.25])  # Mon..Sun
_HOUR_W = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1,
                    1.2, 1.1, 1.0, 1.0, 1.1, 1.3, 1.6, 1.9, 2.1, 2.0, 1.4, 0.8])

# Reviews and bad experiences (their own random stream, spawn key (batch, 2)).
#: share of customers who write their reviews in Chinese (the others in English)
ZH_SHARE = 0.3
#: per persona: chance that a week's order goes wrong (broken, late, not as described)
_BAD_EXPERIENCE = np.array([0.012, 0.03, 0.04, 0.015, 0.05, 0.05])
#: chance that a customer drops out right after a bad experience (on top of the BG/NBD dropout)
BAD_DROPOUT = 0.5
#: chance that a bad experience gets a review (one line of the order), and its rating's mean
BAD_REVIEW_PROB, BAD_RATING = 0.7, 1.4
_SEARCH_TEMPLATES = ("{c}", "cheap {c}", "best {c}", "{c} sale", "{c} deals", "new {c}", "{c} gift ideas")

_SEARCH_TEXTS = [tmpl.format(c=c) for c in CATEGORIES for tmpl in _SEARCH_TEMPLATES]
_TEXTS = _SEARCH_TEXTS
_SEARCH_TEXT_START = 0


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SampleConfig:
    """What to generate. Dates are the history window (inclusive); the future
    (truth) period is the ``future_days`` days after ``end``."""

    customers: int = DEFAULT_CUSTOMERS
    seed: int = DEFAULT_SEED
    start: dt.date = DEFAULT_START
    end: dt.date = DEFAULT_END
    future_days: int = DEFAULT_FUTURE_DAYS
    batch_size: int = BATCH_SIZE

    def validate(self) -> "SampleConfig":
        if not isinstance(self.customers, (int, np.integer)) or self.customers < 1:
            raise SampleError(f"--customers must be a positive whole number, got {self.customers!r}")
        if self.customers > 50_000_000:
            raise SampleError("--customers is limited to 50,000,000")
        if not 0 <= int(self.seed) < 2**63:
            raise SampleError("--seed must be a non-negative whole number")
        if self.start < EARLIEST:
            raise SampleError(f"--start must be on or after {EARLIEST} (ingestion rejects older dates)")
        if (self.end - self.start).days < 56:
            raise SampleError("--end must be at least 8 weeks after --start")
        if not 7 <= self.future_days <= 3660:
            raise SampleError("--future-days must be between 7 and 3660")
        if self.batch_size < 1:
            raise SampleError("batch size must be positive")
        return self

    @property
    def history_days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class _Grid:
    """Weekly grid aligned so that a week boundary falls exactly at the end of the history."""

    origin: np.datetime64  # first day of week 0 (may be before start)
    offset_days: int  # days from origin to start
    hist_weeks: int
    weeks: int
    hist_end_s: int  # seconds from origin: first second after the history
    start_s: int
    total_end_s: int
    season: np.ndarray  # per week multiplier
    weekday_p: np.ndarray  # 7 probabilities by day offset within a week (weekend uplift)


def _grid(cfg: SampleConfig) -> _Grid:
    hist_weeks = math.ceil(cfg.history_days / 7)
    fut_weeks = math.ceil(cfg.future_days / 7)
    hist_end = np.datetime64(cfg.end, "D") + np.timedelta64(1, "D")
    origin = hist_end - np.timedelta64(7 * hist_weeks, "D")
    weeks = hist_weeks + fut_weeks
    mids = origin + np.arange(weeks) * 7 + 3
    months = (mids.astype("datetime64[M]").astype(int) % 12)
    season = _MONTH_FACTOR[months].copy()
    # Black Friday week: the week holding the fourth Friday of November
    days = mids.astype("datetime64[D]")
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    season[(months == 10) & (dom >= 22) & (dom <= 28)] *= 1.5
    wd0 = (origin.astype(int) + 3) % 7  # 1970-01-01 was a Thursday (Mon=0)
    weekday_p = _WEEKDAY_W[(wd0 + np.arange(7)) % 7]
    weekday_p = weekday_p / weekday_p.sum()
    offset_days = int((np.datetime64(cfg.start, "D") - origin).astype(int))
    return _Grid(
        origin=origin, offset_days=offset_days, hist_weeks=hist_weeks, weeks=weeks,
        hist_end_s=7 * hist_weeks * 86400, start_s=offset_days * 86400,
        total_end_s=(7 * hist_weeks + cfg.future_days) * 86400,
        season=season, weekday_p=weekday_p,
    )


# --------------------------------------------------------------------------- catalogue
@dataclass
class Catalogue:
    item_ids: list[str]
    item_cat: np.ndarray
    price: np.ndarray  # list price, sorted ascending within category
    cat_start: np.ndarray
    cat_count: np.ndarray
    # item-choice structure (see ``_ItemChooser``)
    style: np.ndarray | None = None  # style (brand / line) of each item, 0.._N_STYLES-1
    appeal: np.ndarray | None = None  # base popularity weight (lognormal: a few hits, a long tail)
    launch_frac: np.ndarray | None = None  # launch point as a share of the simulated weeks (< 0: always there)
    successor: np.ndarray | None = None  # the next item of the item's series (-1: none)


# item choice: styles, series and launches
_N_STYLES = 4
_N_BANDS = 10  # price bands per category: every choice stays in the band of the persona's price level
_APPEAL_SIGMA = 1.1  # lognormal spread of item appeal: the top 10% of items get about half the weight
_LAUNCHED_SHARE = 0.22  # items launched during the simulated weeks (the rest exist from the start)
_LAUNCH_BOOST, _LAUNCH_WEEKS = 3.0, 8.0  # a new item's appeal is (1 + 3 e^(-weeks since launch / 8)) x base
_FOLLOW_PROB = 0.35  # a purchase line is the follow-up (next in series / accessory) of the previous one
_STYLE_SHARE = 0.5  # of the other lines: from the customer's current style (within the category)
_POPULAR_SHARE = 0.25  # ... from the category's currently popular items; the rest by price level as before
_BARGAIN_PRICE_SHARE = 0.6  # bargain hunters keep choosing by price more often
_DRIFT_WEEKS = 40.0  # mean weeks between taste (style) changes


def make_catalogue(seed: int) -> Catalogue:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31 - 1,)))
    cats, prices = [], []
    for c, n in enumerate(_CAT_ITEMS):
        p = np.exp(np.log(_CAT_PRICE[c]) + _CAT_SIGMA[c] * rng.standard_normal(n))
        p = np.maximum(np.round(p, 0) - 0.01, 0.99)  # shop prices: 19.99
        cats.append(np.full(n, c))
        prices.append(np.sort(p))
    item_cat = np.concatenate(cats)
    price = np.concatenate(prices)
    cat_count = _CAT_ITEMS.copy()
    cat_start = np.concatenate([[0], np.cumsum(cat_count)[:-1]])
    item_ids = [f"SKU{10000 + i}" for i in range(len(price))]
    # the item-choice structure has its own stream, so prices stay what they were
    srng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31 - 2,)))
    m = len(price)
    style = srng.integers(0, _N_STYLES, m)
    appeal = srng.lognormal(0.0, _APPEAL_SIGMA, m)
    launch_frac = np.where(srng.random(m) < _LAUNCHED_SHARE, srng.uniform(0.05, 1.1, m), -1.0)
    # series: the items of one (category, price band, style) are cut into runs of 1-4, each run
    # ordered from the dearest (the main item) to the cheapest (accessories, later volumes)
    successor = np.full(m, -1, dtype=np.int64)
    band = _price_band(item_cat, cat_start, cat_count)
    for c in range(len(_CAT_ITEMS)):
        lo, hi = cat_start[c], cat_start[c] + cat_count[c]
        for s in range(_N_STYLES * _N_BANDS):
            members = lo + np.flatnonzero(style[lo:hi] * _N_BANDS + band[lo:hi] == s)
            members = members[srng.permutation(members.size)]
            i = 0
            while i < members.size:
                run = members[i:i + int(srng.integers(1, 5))]
                run = run[np.argsort(-price[run], kind="stable")]
                successor[run[:-1]] = run[1:]
                i += run.size
    return Catalogue(item_ids, item_cat, price, cat_start, cat_count, style, appeal, launch_frac, successor)


def _price_band(item_cat, cat_start, cat_count) -> np.ndarray:
    """0.._N_BANDS-1: the item's price band (tenth) within its category (items are price-sorted)."""
    pos = np.arange(len(item_cat)) - cat_start[item_cat]
    return np.minimum(pos * _N_BANDS // cat_count[item_cat], _N_BANDS - 1)


class _ItemChooser:
    """Which item a customer picks, given the category: tastes, series and launches.

    * every item has a style (brand, product line); a customer has a current style
      that changes at random times (exponential, mean ``_DRIFT_WEEKS`` weeks after
      arrival and after each change): tastes drift;
    * items have a lognormal appeal (a few hits, a long tail); about a fifth are
      launched during the simulated weeks and cannot be bought before, with a
      burst of interest after launch that fades over ~8 weeks: what is popular moves;
    * items come in series (a main item, then its accessories or later volumes);
      a purchase line is, with probability ``_FOLLOW_PROB``, the next item of the
      series of the customer's previous purchase line: the next item depends on
      the previous one;
    * otherwise the item is from the customer's current style in the category, or
      one of the category's currently popular items, or (as before) drawn by the
      price level that suits the persona; style and popular choices stay in the
      price band (tenth of the category by price) of that price-level draw, so the value structure of the
      personas (what they spend) is kept.

    Draws come from its own random stream so that everything else the generator
    draws (counts, times, quantities, categories) is unchanged by the item choice.
    """

    def __init__(self, rng, cat: Catalogue, grid: "_Grid", n: int, arrival: np.ndarray, first_week: int):
        self.rng, self.cat = rng, cat
        W = grid.weeks
        launch = np.where(cat.launch_frac < 0, -np.inf, first_week + cat.launch_frac * (W - first_week))
        self.launch_s = launch * 7 * 86400
        age = np.arange(W)[:, None] - launch[None, :]
        weight = np.where(age >= 0, cat.appeal[None, :] * (1 + _LAUNCH_BOOST * np.exp(-np.maximum(age, 0)
                                                                                     / _LAUNCH_WEEKS)), 0.0)
        self.weeks = W
        # flat cumulative weights per week for (category, band) blocks and (category, band, style)
        # blocks: rows offset by the week so that one searchsorted serves every (week, block)
        self.band = _price_band(cat.item_cat, cat.cat_start, cat.cat_count)
        cb = cat.item_cat * _N_BANDS + self.band  # price-sorted items: (category, band) blocks are contiguous
        self.cb_start = np.searchsorted(cb, np.arange(len(_CAT_ITEMS) * _N_BANDS + 1))
        self.cs_order = np.lexsort((cat.style, cb))  # items by category, band, then style
        key = cb[self.cs_order] * _N_STYLES + cat.style[self.cs_order]
        self.cs_start = np.searchsorted(key, np.arange(len(_CAT_ITEMS) * _N_BANDS * _N_STYLES + 1))
        self.cum_cat = self._flat_cum(weight)
        self.cum_cs = self._flat_cum(weight[:, self.cs_order])
        # tastes: the style at arrival, then up to two changes
        n_styles = 3
        self.style = rng.integers(0, _N_STYLES, (n, n_styles))
        gaps = rng.exponential(_DRIFT_WEEKS * 7 * 86400, (n, n_styles - 1))
        self.change_s = (arrival[:, None] * 7 * 86400 + np.cumsum(gaps, axis=1)).astype(np.float64)

    def _flat_cum(self, weight: np.ndarray) -> np.ndarray:
        cum = np.cumsum(weight, axis=1)
        self.row_span = float(cum[:, -1].max()) + 1.0
        return (cum + np.arange(cum.shape[0])[:, None] * self.row_span).ravel()

    def _draw(self, cum: np.ndarray, week: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        """One weighted draw per row among flat positions ``lo..hi-1`` of week ``week``'s row;
        -1 where the block has no weight (nothing launched yet)."""
        n_items = len(self.cat.price)
        base = week * n_items
        below = np.where(lo > 0, cum[base + np.maximum(lo, 1) - 1], week * self.row_span)
        top = cum[base + np.maximum(hi, 1) - 1]
        top = np.where(hi > lo, top, below)
        target = below + self.rng.random(len(week)) * (top - below)
        pos = np.searchsorted(cum, target, side="right") - base
        ok = (top > below)
        return np.where(ok, np.clip(pos, lo, np.maximum(hi - 1, lo)), -1)

    def current_style(self, cust: np.ndarray, ts: np.ndarray) -> np.ndarray:
        k = (ts[:, None] >= self.change_s[cust]).sum(axis=1)
        return self.style[cust, k]

    def _week(self, ts):
        return np.clip(ts // (7 * 86400), 0, self.weeks - 1).astype(np.int64)

    def popular(self, c: np.ndarray, b: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """An item of category ``c``, price band ``b`` by its current popularity (-1: none launched yet)."""
        block = c * _N_BANDS + b
        return self._draw(self.cum_cat, self._week(ts), self.cb_start[block], self.cb_start[block + 1])

    def of_style(self, c, b, s, ts) -> np.ndarray:
        """An item of category ``c``, price band ``b`` and style ``s`` by its current popularity (-1: none)."""
        block = (c * _N_BANDS + b) * _N_STYLES + s
        lo, hi = self.cs_start[block], self.cs_start[block + 1]
        pos = self._draw(self.cum_cs, self._week(ts), lo, hi)
        return np.where(pos >= 0, self.cs_order[np.maximum(pos, 0)], -1)

    def available(self, item, ts) -> np.ndarray:
        return (item >= 0) & (self.launch_s[np.maximum(item, 0)] <= ts)

    def browse(self, cust, c, ts, by_price, style_prob) -> np.ndarray:
        """Viewed items: the current style w.p. ``style_prob`` (when available), else the price choice."""
        pick = self.of_style(c, self.band[by_price], self.current_style(cust, ts), ts)
        use = (self.rng.random(len(cust)) < style_prob) & (pick >= 0)
        out = np.where(use, pick, by_price)
        return self._launched_or_popular(out, c, ts)

    def _launched_or_popular(self, item, c, ts):
        bad = ~self.available(item, ts)
        if bad.any():
            alt = self.popular(c[bad], self.band[item[bad]], ts[bad])
            item = item.copy()
            item[bad] = np.where(alt >= 0, alt, item[bad])
        return item

    def purchases(self, cust, c, ts, by_price, persona) -> np.ndarray:
        """Purchased items of lines sorted by (customer, time), with follow-ups along series."""
        m = len(cust)
        r = self.rng.random(m)
        price_share = np.where(persona == BARGAIN, _BARGAIN_PRICE_SHARE, 1 - _STYLE_SHARE - _POPULAR_SHARE)
        style_cut = (1 - price_share) * _STYLE_SHARE / (_STYLE_SHARE + _POPULAR_SHARE)
        item = by_price.copy()
        band = self.band[by_price]
        st_ = r < style_cut
        pop_ = (r >= style_cut) & (r < 1 - price_share)
        if st_.any():
            pick = self.of_style(c[st_], band[st_], self.current_style(cust[st_], ts[st_]), ts[st_])
            item[st_] = np.where(pick >= 0, pick, item[st_])
        if pop_.any():
            pick = self.popular(c[pop_], band[pop_], ts[pop_])
            item[pop_] = np.where(pick >= 0, pick, item[pop_])
        item = self._launched_or_popular(item, c, ts)
        # follow-ups, in time order within each customer: line k may continue line k-1's series
        follow = self.rng.random(m) < _FOLLOW_PROB
        if m > 1:
            starts = np.searchsorted(cust, cust)  # first line of each line's customer (sorted by customer)
            pos = np.arange(m) - starts
            by_pos = np.argsort(pos, kind="stable")
            bounds = np.searchsorted(pos[by_pos], np.arange(int(pos.max()) + 2))
            succ = self.cat.successor
            for k in range(1, int(pos.max()) + 1):
                rows = by_pos[bounds[k]:bounds[k + 1]]
                rows = rows[follow[rows]]
                nxt = succ[item[rows - 1]]
                ok = self.available(nxt, ts[rows])
                item[rows[ok]] = nxt[ok]
        return item


# --------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """One batch: history events (Arrow table in ``HEADER`` layout) and truth rows."""

    events: pa.Table
    truth: pa.Table
    n_events_by_type: dict[str, int]


def _rand_choice_rows(rng, cdf: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One categorical draw per row from the cumulative distribution ``cdf[group[row]]``."""
    u = rng.random(len(group))
    out = np.empty(len(group), dtype=np.int64)
    for g in range(cdf.shape[0]):
        rows = group == g
        out[rows] = np.searchsorted(cdf[g], u[rows], side="left")
    return out.clip(0, cdf.shape[1] - 1)


def _times_in_weeks(rng, weeks: np.ndarray, grid: _Grid) -> np.ndarray:
    """Random second (from grid origin) within each given week, with weekday and hour profiles."""
    day = rng.choice(7, size=len(weeks), p=grid.weekday_p)
    hour = rng.choice(24, size=len(weeks), p=_HOUR_W / _HOUR_W.sum())
    sec = rng.integers(0, 3600, size=len(weeks))
    return (weeks.astype(np.int64) * 7 + day) * 86400 + hour * 3600 + sec


def _pick_items(rng, persona, fav_cat, cat_cdf, cat: Catalogue, fav_prob=0.45):
    """Category and item for each line/view: favourite category or persona mix, price skewed by persona."""
    n = len(persona)
    drawn = _rand_choice_rows(rng, cat_cdf, persona)
    c = np.where(rng.random(n) < fav_prob, fav_cat, drawn)
    u = rng.random(n) ** _PARAMS[persona, _SKEW]  # skew > 1: cheap end; < 1: expensive end
    idx = cat.cat_start[c] + np.minimum((u * cat.cat_count[c]).astype(np.int64), cat.cat_count[c] - 1)
    return c, idx


def generate_batch(cfg: SampleConfig, batch_index: int, first_customer: int, n: int,
                   cat: Catalogue, grid: _Grid) -> Batch:
    rng = np.random.default_rng(np.random.SeedSequence(int(cfg.seed), spawn_key=(batch_index,)))
    W, H = grid.weeks, grid.hist_weeks
    first_hist_week = grid.offset_days // 7  # may start before --start: earlier events are dropped
    span = H - first_hist_week

    # ---- customers
    persona = rng.choice(len(PERSONAS), size=n, p=_PARAMS[:, _SHARE] / _PARAMS[:, _SHARE].sum())
    prm = _PARAMS[persona]
    country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_P / _COUNTRY_P.sum())
    cat_cdf = np.cumsum(_CAT_PREF, axis=1)
    fav_cat = _rand_choice_rows(rng, cat_cdf, persona)
    rate = rng.gamma(prm[:, _SHAPE], prm[:, _RATE] / prm[:, _SHAPE])
    p_drop = rng.beta(prm[:, _PA], prm[:, _PB])
    p_drop[persona == ONE_TIME] = 1.0
    browse = rng.gamma(4.0, prm[:, _BROWSE] / 4.0)
    aov_mult = rng.lognormal(0.0, 0.25, size=n)  # per-customer spend level (Gamma-Gamma-like)

    # arrival week (first activity), as fractions of the history span
    lo = np.select(
        [persona == LOYAL, persona == NEWCOMER, persona == AT_RISK, persona == BARGAIN, persona == WINDOW],
        [0.0, 1.0 - 26 / span, 0.0, 0.0, 0.0], 0.0)
    hi = np.select(
        [persona == LOYAL, persona == NEWCOMER, persona == AT_RISK, persona == BARGAIN, persona == WINDOW],
        [0.4, 1.0 - 6 / span, 0.25, 0.55, 0.6], 0.75)
    arrival = first_hist_week + np.floor((lo + (hi - lo) * rng.random(n)) * span).astype(np.int64)
    arrival = np.clip(arrival, first_hist_week, H - 1)

    # trends
    w_idx = np.arange(W)[None, :]
    age = w_idx - arrival[:, None]
    active = age >= 0
    trend = np.ones((n, W))
    ramp = rng.uniform(6, 14, size=n)
    is_new = persona == NEWCOMER
    trend[is_new] = np.clip(0.25 + 0.75 * age[is_new] / ramp[is_new, None], 0.25, 1.0)
    is_risk = persona == AT_RISK
    decay_start = arrival + np.floor(rng.uniform(12, 24, size=n)).astype(np.int64)
    tau = rng.uniform(5, 10, size=n)
    past = np.maximum(w_idx - decay_start[:, None], 0)
    floor = rng.uniform(0.0, 0.06, size=n)  # some at-risk customers keep a trickle of purchases
    trend[is_risk] = floor[is_risk, None] + (1 - floor[is_risk, None]) * np.exp(-past[is_risk] / tau[is_risk, None])

    # latent interest: log-AR(1), stationary sd sigma
    rho, sigma = 0.85, 0.55
    z = np.empty((n, W + 1))
    z[:, 0] = sigma * rng.standard_normal(n)
    eps = rng.standard_normal((n, W)) * sigma * math.sqrt(1 - rho * rho)
    for w in range(W):
        z[:, w + 1] = rho * z[:, w] + eps[:, w]
    interest = np.exp(z - sigma * sigma / 2)

    # ---- weekly purchase / browse counts with BG/NBD dropout after purchases
    n_orders = np.zeros((n, W), dtype=np.int64)
    n_browse = np.zeros((n, W), dtype=np.int64)
    # reviews and bad experiences: their own stream, so the rest of the process draws as before
    rrng = np.random.default_rng(np.random.SeedSequence(int(cfg.seed), spawn_key=(batch_index, 2)))
    writes_zh = rrng.random(n) < ZH_SHARE
    bad_week = np.zeros((n, W), dtype=bool)
    p_bad = _BAD_EXPERIENCE[persona]
    alive = np.ones(n, dtype=bool)
    alive_hist_end = np.ones(n, dtype=bool)
    one_time = persona == ONE_TIME
    for w in range(W):
        if w == H:
            alive_hist_end = alive.copy()
        act = active[:, w]
        lam = rate * trend[:, w] * grid.season[w] * interest[:, w] * (act & alive)
        k = rng.poisson(lam)
        # the one-time buyer buys exactly once, in the week of arrival
        k = np.where(one_time & (arrival == w), 1, k)
        g = rng.geometric(np.clip(p_drop, 1e-9, 1.0))
        died = (k >= g) & (k > 0)
        k = np.where(died, g, k)
        n_orders[:, w] = k
        # browsing leads buying by one week; a dropped-out customer almost never browses
        blam = browse * np.sqrt(trend[:, w]) * grid.season[w] * interest[:, w + 1] * act * np.where(alive, 1.0, 0.03)
        n_browse[:, w] = rng.poisson(blam)
        alive &= ~died
        # an order gone wrong: the customer often leaves right after (and usually says so in a review)
        bad = (k > 0) & (rrng.random(n) < p_bad)
        bad_week[:, w] = bad
        alive &= ~(bad & (rrng.random(n) < BAD_DROPOUT))
    if H >= W:
        alive_hist_end = alive.copy()

    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("cust", "ts", "type", "order", "item", "cat", "qty",
                                                        "rev", "rating", "text", "rtext")}

    def emit(cust, ts, typ, order=None, item=None, catg=None, qty=None, rev=None, rating=None, text=None,
             rtext=None):
        m = len(cust)
        cols["cust"].append(cust)
        cols["ts"].append(ts)
        cols["type"].append(np.full(m, typ, dtype=np.int8))
        cols["order"].append(order if order is not None else np.full(m, -1, dtype=np.int64))
        cols["item"].append(item if item is not None else np.full(m, -1, dtype=np.int64))
        cols["cat"].append(catg if catg is not None else np.full(m, -1, dtype=np.int64))
        cols["qty"].append(qty if qty is not None else np.full(m, -1, dtype=np.int64))
        cols["rev"].append(rev if rev is not None else np.full(m, -1, dtype=np.int64))
        cols["rating"].append(rating if rating is not None else np.full(m, -1, dtype=np.int64))
        cols["text"].append(text if text is not None else np.full(m, -1, dtype=np.int64))
        cols["rtext"].append(rtext if rtext is not None else np.full(m, -1, dtype=np.int64))  # review text

    # ---- orders
    oc, ow = np.nonzero(n_orders)
    reps = n_orders[oc, ow]
    o_cust = np.repeat(oc, reps)
    o_week = np.repeat(ow, reps)
    o_ts = _times_in_weeks(rng, o_week, grid)
    # order number within customer (for readable order ids)
    order_key = np.lexsort((o_ts, o_cust))
    o_cust, o_week, o_ts = o_cust[order_key], o_week[order_key], o_ts[order_key]
    n_o = len(o_cust)
    starts = np.searchsorted(o_cust, np.arange(n))
    o_seq = np.arange(n_o) - starts[o_cust] + 1
    o_id = (first_customer + o_cust).astype(np.int64) * 10000 + o_seq
    o_pers = persona[o_cust]
    o_lines = 1 + rng.poisson(_PARAMS[o_pers, _LINES])
    # orders never straddle the window edges: an order drawn in the partial first week before
    # --start moves into the first days of the window; one in the last seconds of the history keeps
    # all its lines (one second apart) inside it
    early = o_ts < grid.start_s
    o_ts[early] = grid.start_s + rng.integers(3600, 3 * 86400, int(early.sum()))
    edge = (o_ts < grid.hist_end_s) & (o_ts + o_lines > grid.hist_end_s)
    o_ts[edge] = grid.hist_end_s - o_lines[edge]

    # lines
    l_order = np.repeat(np.arange(n_o), o_lines)
    l_cust = o_cust[l_order]
    l_pers = persona[l_cust]
    l_no = np.arange(len(l_order)) - np.repeat(np.cumsum(o_lines) - o_lines, o_lines)
    l_cat, l_item = _pick_items(rng, l_pers, fav_cat[l_cust], cat_cdf, cat)
    l_ts = o_ts[l_order] + l_no  # lines one second apart
    # the item itself: tastes, series and launches (lines are in (customer, time) order)
    chooser = _ItemChooser(np.random.default_rng(np.random.SeedSequence(int(cfg.seed), spawn_key=(batch_index, 1))),
                           cat, grid, n, arrival, first_hist_week)
    l_item = chooser.purchases(l_cust, l_cat, l_ts, l_item, l_pers)
    l_cat = cat.item_cat[l_item]
    l_qty = 1 + rng.poisson(_PARAMS[l_pers, _QTY])
    disc_mean = _PARAMS[l_pers, _DISC]
    disc = np.where(rng.random(len(l_order)) < np.minimum(disc_mean * 3, 0.9),
                    rng.uniform(0.5, 1.5, len(l_order)) * disc_mean / np.minimum(disc_mean * 3, 0.9), 0.0)
    disc = np.clip(disc, 0.0, 0.7)
    unit = cat.price[l_item] * (1 - disc) * np.where(l_pers == BARGAIN, 1.0, aov_mult[l_cust])
    l_rev = np.round(l_qty * unit * 100).astype(np.int64)  # cents
    emit(l_cust, l_ts, _PURCHASE, order=o_id[l_order], item=l_item, catg=l_cat, qty=l_qty, rev=l_rev)
    # funnel: cart add per line, views before, sometimes a search
    emit(l_cust, o_ts[l_order] - rng.integers(60, 900, len(l_order)), _CART, item=l_item, catg=l_cat, qty=l_qty)
    nv = 1 + rng.poisson(0.5, n_o)
    v_order = np.repeat(np.arange(n_o), nv)
    v_first = np.concatenate([[True], v_order[1:] != v_order[:-1]]) if len(v_order) else np.zeros(0, bool)
    # the first view of an order is its first line's item, the others browse similar items
    first_line = np.cumsum(o_lines) - o_lines
    v_cat_r, v_item_r = _pick_items(rng, persona[o_cust[v_order]], l_cat[first_line[v_order]], cat_cdf, cat,
                                    fav_prob=0.8)
    v_ts = o_ts[v_order] - rng.integers(900, 3000, len(v_order))
    v_item_r = chooser.browse(o_cust[v_order], v_cat_r, v_ts, v_item_r, style_prob=0.6)
    v_item = np.where(v_first, l_item[first_line[v_order]], v_item_r)
    v_cat = np.where(v_first, l_cat[first_line[v_order]], v_cat_r)
    emit(o_cust[v_order], v_ts, _VIEW, item=v_item, catg=v_cat)
    s_o = np.repeat(np.arange(n_o), rng.poisson(_PARAMS[o_pers, _SRCH]))
    s_cat = l_cat[first_line[s_o]]
    emit(o_cust[s_o], o_ts[s_o] - rng.integers(3000, 3600, len(s_o)), _SEARCH, catg=s_cat,
         text=_SEARCH_TEXT_START + s_cat * len(_SEARCH_TEMPLATES) + rng.integers(0, len(_SEARCH_TEMPLATES), len(s_o)))

    # returns (full refund) and reviews
    ret = rng.random(len(l_order)) < _PARAMS[l_pers, _RET]
    r_idx = np.nonzero(ret)[0]
    r_ts = l_ts[r_idx] + rng.integers(3 * 86400, 30 * 86400, len(r_idx))
    emit(l_cust[r_idx], r_ts, _RETURN, order=o_id[l_order[r_idx]], item=l_item[r_idx], catg=l_cat[r_idx],
         qty=l_qty[r_idx], rev=l_rev[r_idx])
    rv = rng.random(len(l_order)) < _PARAMS[l_pers, _REV] * np.where(ret, 1.8, 1.0)
    rating_all = np.clip(np.round(_PARAMS[l_pers, _RATING] - 1.5 * ret
                                  + 0.8 * rng.standard_normal(len(l_order))), 1, 5).astype(np.int64)
    # an order gone wrong: its first line usually gets a low rating (and a review saying why)
    o_bad = bad_week[o_cust, o_week]
    bad_line = np.zeros(len(l_order), dtype=bool)
    bad_line[first_line[o_bad & (rrng.random(n_o) < BAD_REVIEW_PROB)]] = True
    rating_all = np.where(bad_line, np.clip(np.round(BAD_RATING + 0.6 * rrng.standard_normal(len(l_order))), 1, 3),
                          rating_all).astype(np.int64)
    rv_idx = np.nonzero(rv | bad_line)[0]
    rating = rating_all[rv_idx]
    rv_texts = review_texts(rrng, rating, writes_zh[l_cust[rv_idx]], l_cat[rv_idx])
    emit(l_cust[rv_idx], l_ts[rv_idx] + rng.integers(5 * 86400, 45 * 86400, len(rv_idx)), _REVIEW,
         item=l_item[rv_idx], catg=l_cat[rv_idx], rating=rating, rtext=np.arange(len(rv_idx), dtype=np.int64))

    # ---- first visit: every customer views an item of their favourite category in their arrival week
    fv_cat, fv_item = _pick_items(rng, persona, fav_cat, cat_cdf, cat, fav_prob=1.0)
    emit(np.arange(n), np.maximum(_times_in_weeks(rng, arrival, grid), grid.start_s + rng.integers(0, 86400, n)),
         _VIEW, item=fv_item, catg=fv_cat)

    # ---- browse-only sessions
    bc, bw = np.nonzero(n_browse)
    breps = n_browse[bc, bw]
    b_cust = np.repeat(bc, breps)
    b_ts = _times_in_weeks(rng, np.repeat(bw, breps), grid)
    n_b = len(b_cust)
    b_pers = persona[b_cust]
    bv = 1 + rng.poisson(_PARAMS[b_pers, _VPS])
    bv_s = np.repeat(np.arange(n_b), bv)
    bv_cat, bv_item = _pick_items(rng, persona[b_cust[bv_s]], fav_cat[b_cust[bv_s]], cat_cdf, cat, fav_prob=0.5)
    bv_ts = b_ts[bv_s] + rng.integers(0, 1500, len(bv_s))
    bv_item = chooser.browse(b_cust[bv_s], bv_cat, bv_ts, bv_item, style_prob=0.5)
    emit(b_cust[bv_s], bv_ts, _VIEW, item=bv_item, catg=bv_cat)
    bs = np.repeat(np.arange(n_b), rng.poisson(_PARAMS[b_pers, _SRCH]))
    bs_cat = np.where(rng.random(len(bs)) < 0.6, fav_cat[b_cust[bs]],
                      _rand_choice_rows(rng, cat_cdf, b_pers[bs]))
    emit(b_cust[bs], b_ts[bs] - rng.integers(1, 120, len(bs)), _SEARCH, catg=bs_cat,
         text=_SEARCH_TEXT_START + bs_cat * len(_SEARCH_TEMPLATES) + rng.integers(0, len(_SEARCH_TEMPLATES), len(bs)))
    ba = np.nonzero(rng.random(n_b) < _PARAMS[b_pers, _ABAND])[0]
    # abandoned cart: the session's first viewed item
    first_view = np.cumsum(bv) - bv
    emit(b_cust[ba], b_ts[ba] + rng.integers(1500, 1800, len(ba)), _CART, item=bv_item[first_view[ba]],
         catg=bv_cat[first_view[ba]], qty=1 + rng.poisson(0.2, len(ba)))

    # ---- assemble
    a = {k: np.concatenate(cols.pop(k)) for k in list(cols)}  # pop: free the pieces as we go
    keep = (a["ts"] >= grid.start_s) & (a["ts"] < grid.total_end_s)
    a = {k: v[keep] for k, v in a.items()}
    hist = a["ts"] < grid.hist_end_s

    # truth: history and future behaviour per customer
    def per_cust(mask, weights=None):
        return np.bincount(a["cust"][mask], weights=None if weights is None else weights[mask], minlength=n)

    pur, rtn = a["type"] == _PURCHASE, a["type"] == _RETURN
    o_hist = (o_ts >= grid.start_s) & (o_ts < grid.hist_end_s)
    o_fut = (o_ts >= grid.hist_end_s) & (o_ts < grid.total_end_s)
    hist_orders = np.bincount(o_cust[o_hist], minlength=n)
    fut_orders = np.bincount(o_cust[o_fut], minlength=n)
    hist_rev = per_cust(pur & hist, a["rev"]) / 100
    fut_rev = per_cust(pur & ~hist, a["rev"]) / 100
    fut_ret = per_cust(rtn & ~hist, a["rev"]) / 100
    first_ts = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_ts, a["cust"][hist], a["ts"][hist])
    seen = first_ts < np.iinfo(np.int64).max
    cur_rate = rate * trend[:, min(H, W - 1)] * np.exp(z[:, min(H, W - 1)] - sigma * sigma / 2) * alive_hist_end
    cust_ids = pa.array([f"C{first_customer + i + 1:07d}" for i in range(n)])
    country_arr = pa.array(np.array(COUNTRIES)[country])
    origin_s = grid.origin.astype("datetime64[s]").astype(np.int64)
    truth = pa.table({
        "customer_id": cust_ids,
        "persona": pa.array(np.array(PERSONAS)[persona]),
        "country": country_arr,
        "first_seen": pa.array(np.where(seen, first_ts + origin_s, 0).astype("datetime64[s]"), mask=~seen),
        "true_purchase_rate": pa.array(np.round(rate, 5)),
        "current_purchase_rate": pa.array(np.round(cur_rate, 5)),
        "dropout_prob": pa.array(np.round(p_drop, 5)),
        "history_purchases": pa.array(hist_orders),
        "history_revenue": pa.array(np.round(hist_rev, 2)),
        "alive_at_history_end": pa.array(alive_hist_end.astype(np.int8)),
        "future_purchases": pa.array(fut_orders),
        "future_revenue": pa.array(np.round(fut_rev, 2)),
        "future_returns": pa.array(np.round(fut_ret, 2)),
        "future_net_revenue": pa.array(np.round(fut_rev - fut_ret, 2)),
        "alive_at_future_end": pa.array(alive.astype(np.int8)),
        "churned": pa.array((fut_orders == 0).astype(np.int8)),
        "bad_experiences": pa.array(bad_week[:, :H].sum(axis=1) if H <= W else bad_week.sum(axis=1)),
    })
    # only customers with any history event are "customers" of the data set
    truth = truth.filter(pa.array(seen))

    # history events, sorted by customer, time, type; exact duplicates dropped
    h = {k: a.pop(k)[hist] for k in list(a)}
    order = np.lexsort((h["rev"], h["item"], h["type"], h["ts"], h["cust"]))
    h = {k: v[order] for k, v in h.items()}
    if len(order) > 1:
        same = np.ones(len(order) - 1, dtype=bool)
        for v in h.values():
            same &= v[1:] == v[:-1]
        if same.any():
            keep = np.concatenate([[True], ~same])
            h = {k: v[keep] for k, v in h.items()}
    events = _events_table(h, first_customer, cust_ids, country, cat, origin_s, rv_texts)
    counts = np.bincount(h["type"], minlength=6)
    return Batch(events, truth, {EVENT_TYPES[i]: int(counts[i]) for i in range(6)})


_TYPE_NAMES = pa.array(EVENT_TYPES)
_CAT_NAMES = pa.array(CATEGORIES)
_COUNTRY_NAMES = pa.array(COUNTRIES)
_TEXT_ARR = pa.array(_TEXTS)


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    missing = idx < 0
    return values.take(pa.array(np.where(missing, 0, idx), mask=missing))


def _events_table(h, first_customer, cust_ids, country, cat: Catalogue, origin_s,
                  review_text: pa.Array | None = None) -> pa.Table:
    m = len(h["cust"])
    order = h["order"]
    has_order = order >= 0
    order_str = pc.binary_join_element_wise(
        "O", pc.utf8_lpad(pc.cast(pa.array(order // 10000 + 1), pa.string()), width=7, padding="0"), "-",
        pc.cast(pa.array(order % 10000), pa.string()), "")
    order_str = pc.if_else(pa.array(has_order), order_str, pa.nulls(m, pa.string()))
    item_ids = pa.array(cat.item_ids)
    qty = h["qty"]
    rev = h["rev"]
    rating = h["rating"]
    return pa.table({
        "customer_id": cust_ids.take(pa.array(h["cust"])),
        "event_time": pa.array((h["ts"] + origin_s).astype("datetime64[s]")),
        "event_type": _TYPE_NAMES.take(pa.array(h["type"].astype(np.int64))),
        "order_id": order_str,
        "item_id": _take(item_ids, h["item"]),
        "category": _take(_CAT_NAMES, h["cat"]),
        "quantity": pa.array(qty, mask=qty < 0),
        # cents / 100 -> decimal(18, 2): prints exactly two decimals (checked to round correctly)
        "revenue": pa.array(rev / 100, mask=rev < 0).cast(pa.decimal128(18, 2), safe=False),
        "rating": pa.array(rating, mask=rating < 0),
        "text": _take(_TEXT_ARR, h["text"]) if review_text is None else pc.if_else(
            pa.array(h["rtext"] >= 0), _take(review_text, h["rtext"]), _take(_TEXT_ARR, h["text"])),
        "country": _COUNTRY_NAMES.take(pa.array(country[h["cust"]])),
    })


def iter_batches(cfg: SampleConfig) -> Iterator[Batch]:
    """Generate the data set batch by batch (each batch independent and seeded)."""
    cfg.validate()
    cat = make_catalogue(int(cfg.seed))
    grid = _grid(cfg)
    for b, first in enumerate(range(0, cfg.customers, cfg.batch_size)):
        n = min(cfg.batch_size, cfg.customers - first)
        yield generate_batch(cfg, b, first, n, cat, grid)


# --------------------------------------------------------------------------- writing
def _open_out(path: Path):
    """Open ``path``'s temporary sibling for writing (gzip by extension, no time stamp in the header)."""
    raw = open(_part(path), "wb")
    if path.name.endswith(".gz"):
        return raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
    return raw, None


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _write_table(fh, table: pa.Table, chunk: int = 131072) -> None:
    """Append ``table`` as CSV rows (no header), a slice at a time to keep the text buffer small."""
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=chunk)
    for start in range(0, table.num_rows, chunk):
        buf = io.BytesIO()
        pacsv.write_csv(table.slice(start, chunk), buf, opts)
        fh.write(buf.getbuffer())


def generate(out: str | Path, truth: str | Path | None = None, cfg: SampleConfig | None = None,
             progress=None) -> dict:
    """Write the events CSV (and optionally the truth CSV); ``.gz`` compresses.

    Returns a summary dict (customers, events by type, seconds, paths).
    ``progress(done_customers, total)`` is called after each batch.
    """
    cfg = (cfg or SampleConfig()).validate()
    out = Path(out)
    truth_path = Path(truth) if truth else None
    for p in (out, truth_path):
        if p is not None and not p.parent.exists():
            raise SampleError(f"folder does not exist: {p.parent}")
        if p is not None and p.is_dir():
            raise SampleError(f"{p} is a folder, not a file name")
    if truth_path is not None and truth_path.resolve() == out.resolve():
        raise SampleError("the truth file must be a different file from the events file")
    t0 = time.perf_counter()
    totals = dict.fromkeys(EVENT_TYPES, 0)
    customers = 0
    # written to FILE.part and renamed at the end: a failed or interrupted run leaves no half file
    handles = []
    ok = False
    try:
        raw, gz = _open_out(out)
        handles += [gz, raw]
        ev = gz or raw
        ev.write((",".join(HEADER) + "\n").encode())
        tr = None
        if truth_path:
            traw, tgz = _open_out(truth_path)
            handles += [tgz, traw]
            tr = tgz or traw
            tr.write((",".join(TRUTH_HEADER) + "\n").encode())
        done = 0
        for batch in iter_batches(cfg):
            _write_table(ev, batch.events)
            if tr:
                _write_table(tr, batch.truth)
            for k, v in batch.n_events_by_type.items():
                totals[k] += v
            customers += batch.truth.num_rows
            done += cfg.batch_size
            if progress:
                progress(min(done, cfg.customers), cfg.customers)
            del batch
        ok = True
    finally:
        for f in handles:
            if f is not None:
                f.close()
        for p in (out, truth_path):
            if p is not None and _part(p).exists():
                if ok:
                    os.replace(_part(p), p)
                else:
                    _part(p).unlink()
    return {
        "out": str(out), "truth": str(truth_path) if truth_path else None,
        "customers": customers, "events": sum(totals.values()), "events_by_type": totals,
        "start": str(cfg.start), "end": str(cfg.end), "future_days": cfg.future_days,
        "seed": int(cfg.seed), "seconds": round(time.perf_counter() - t0, 2),
    }
