"""A campaign's definition (:class:`CampaignSpec`) and the error type of the campaigns package.

A spec is plain data (JSON round trip through ``to_dict`` / ``from_dict``) and is
stored with the campaign, so a saved campaign says exactly how its list was made.
``validated()`` checks every value a user can get wrong and raises
:class:`CampaignError` (a ``ValueError``) with a one-line message.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from analytics.formatting import percent
from analytics.dates import parse_day

#: how targets can be ranked (key -> label shown to users)
RANKINGS = {"expected_clv": "Expected CLV", "churn_value": "Churn risk × value", "score": "A score I pick"}

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_SEGMENTS = 50
MAX_RECOMMENDATIONS = 100


class CampaignError(ValueError):
    """A campaign request the user can fix (empty selection, zero budget, bad outcomes file...)."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise CampaignError(f"{what} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CampaignError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise CampaignError(f"{what} must be a finite number, got {value!r}")
    return x


def _integer(value: Any, what: str) -> int:
    x = _number(value, what)
    if x != int(x):
        raise CampaignError(f"{what} must be a whole number, got {value!r}")
    return int(x)


def iso_day(value: Any, what: str = "the as-of date") -> str:
    """``value`` as an ISO day ``YYYY-MM-DD`` (CampaignError if it is not a date)."""
    return str(parse_day(value, what, CampaignError).date())


def clean_name(name: Any) -> str:
    """A campaign name: text, trimmed, 1..MAX_NAME characters (stored as-is; pages escape it)."""
    if not isinstance(name, str) or not name.strip():
        raise CampaignError("a campaign needs a name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise CampaignError(f"a campaign name can have at most {MAX_NAME} characters")
    return name


@dataclass
class CampaignSpec:
    """What to target and how (see the package docstring for the rules behind each field).

    * ``segments``: saved segment names, OR-combined (empty = every customer);
      ``extra_rules``: a rules definition (``analytics.segments.rules``) ANDed with them;
    * ``ranking``: a key of :data:`RANKINGS`; ``score_column`` for ``"score"``
      (any numeric column of the customer frame; higher ranks first);
    * caps on the contacted (treatment) count: ``max_contacts`` and/or
      ``budget`` / ``cost_per_contact``;
    * ``response_rate`` / ``value_per_response``: expected-outcome assumptions
      (None = derived from the data by :func:`analytics.campaigns.default_response`);
    * ``control_share``: strictly between 0 and 1; ``seed`` makes the holdout reproducible;
    * ``recommendations``: top-N items per customer (0 = none), optionally
      within ``recommendation_category``.
    """

    name: str
    dataset: str
    as_of: str
    segments: list[str] = field(default_factory=list)
    extra_rules: dict | None = None
    ranking: str = "expected_clv"
    score_column: str | None = None
    max_contacts: int | None = None
    budget: float | None = None
    cost_per_contact: float = 1.0
    response_rate: float | None = None
    value_per_response: float | None = None
    control_share: float = 0.1
    seed: int = 42
    recommendations: int = 0
    recommendation_category: str | None = None
    description: str = ""

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CampaignSpec":
        if not isinstance(data, Mapping):
            raise CampaignError("a campaign definition must be a mapping of fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CampaignError(f"unknown campaign field(s): {', '.join(map(str, unknown[:5]))}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise CampaignError(f"incomplete campaign definition: {exc}") from None

    # ------------------------------------------------------------------ validation
    def validated(self) -> "CampaignSpec":
        """A cleaned copy; CampaignError naming the first bad value."""
        name = clean_name(self.name)
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise CampaignError("a campaign needs a dataset")
        as_of = iso_day(self.as_of)
        segs = self.segments or []
        if isinstance(segs, str):
            segs = [segs]
        seen: list[str] = []
        for s in segs:
            if not isinstance(s, str) or not s.strip():
                raise CampaignError("segment names must be non-empty text")
            if s.strip() not in seen:
                seen.append(s.strip())
        if len(seen) > MAX_SEGMENTS:
            raise CampaignError(f"a campaign can combine at most {MAX_SEGMENTS} segments")
        rules_def = self.extra_rules
        if rules_def is not None and not isinstance(rules_def, Mapping):
            raise CampaignError("extra rules must be a rules definition (a mapping)")
        if isinstance(rules_def, Mapping) and (not rules_def or (
                rules_def.get("op", "and") == "and" and not rules_def.get("conditions") and "field" not in rules_def)):
            rules_def = None  # an empty "and" group selects everyone: same as no extra rules
        if self.ranking not in RANKINGS:
            raise CampaignError(f"unknown ranking {self.ranking!r} (choose one of: {', '.join(RANKINGS)})")
        score_column = self.score_column
        if self.ranking == "score":
            if not isinstance(score_column, str) or not score_column.strip():
                raise CampaignError("ranking by a score needs the score column to rank by")
            score_column = score_column.strip()
        else:
            score_column = None
        max_contacts = None
        if self.max_contacts is not None:
            max_contacts = _integer(self.max_contacts, "the maximum number of contacts")
            if max_contacts < 1:
                raise CampaignError("the maximum number of contacts must be at least 1")
        cost = _number(self.cost_per_contact, "the cost per contact")
        if cost < 0:
            raise CampaignError(f"the cost per contact cannot be negative (got {cost:g})")
        budget = None
        if self.budget is not None:
            budget = _number(self.budget, "the budget")
            if budget <= 0:
                raise CampaignError(f"a budget of {budget:g} contacts nobody: set a budget above 0 or no budget")
            if cost > 0 and math.floor(budget / cost + 1e-9) < 1:
                raise CampaignError(
                    f"a budget of {budget:g} does not cover one contact at {cost:g} per contact")
        rate = None
        if self.response_rate is not None:
            rate = _number(self.response_rate, "the response rate")
            if not 0 <= rate <= 1:
                raise CampaignError(f"the response rate must be between 0 and 1 (got {rate:g})")
        value = None
        if self.value_per_response is not None:
            value = _number(self.value_per_response, "the value per response")
            if value < 0:
                raise CampaignError(f"the value per response cannot be negative (got {value:g})")
        share = _number(self.control_share, "the control share")
        if not 0 < share < 1:
            raise CampaignError(
                f"the control share must be strictly between 0 % and 100 % (got {percent(share, 0)}): "
                "without both a contacted and a held-out group the uplift cannot be measured")
        seed = _integer(self.seed, "the seed")
        if seed < 0:
            raise CampaignError("the seed must be 0 or more")
        n_rec = _integer(self.recommendations, "the number of recommended items")
        if not 0 <= n_rec <= MAX_RECOMMENDATIONS:
            raise CampaignError(f"the number of recommended items must be between 0 and {MAX_RECOMMENDATIONS}")
        category = self.recommendation_category
        if category is not None:
            if not isinstance(category, str):
                raise CampaignError("the recommendation category must be text")
            category = category.strip() or None
        description = self.description or ""
        if not isinstance(description, str):
            raise CampaignError("a campaign description must be text")
        description = description.strip()
        if len(description) > MAX_DESCRIPTION:
            raise CampaignError(f"a campaign description can have at most {MAX_DESCRIPTION} characters")
        return CampaignSpec(
            name=name, dataset=self.dataset.strip(), as_of=as_of, segments=seen,
            extra_rules=dict(rules_def) if rules_def is not None else None, ranking=self.ranking,
            score_column=score_column, max_contacts=max_contacts, budget=budget, cost_per_contact=cost,
            response_rate=rate, value_per_response=value, control_share=share, seed=seed,
            recommendations=n_rec, recommendation_category=category, description=description,
        )
