"""Parsing the dates users type (as-of days, windows) into timestamps, with the
caller's own user-facing error type, so every module says "X is not a date" the same way."""
from __future__ import annotations

from typing import Any

import pandas as pd

#: the latest day a user may give (later ones cannot be a day of data and overflow day arithmetic:
#: 9999-12-31 plus one day is "year 10000 is out of range")
LATEST_DAY = pd.Timestamp("2200-12-31")
EARLIEST_DAY = pd.Timestamp("1900-01-01")


def check_range(ts: pd.Timestamp, what: str, error: type[ValueError] = ValueError) -> pd.Timestamp:
    """``ts`` when it lies between :data:`EARLIEST_DAY` and :data:`LATEST_DAY`, else ``error``."""
    if ts > LATEST_DAY + pd.Timedelta(days=1) or ts < EARLIEST_DAY:
        raise error(f"{what} {ts.date()} is out of range: give a day between {EARLIEST_DAY.date()} and "
                    f"{LATEST_DAY.date()} (usually within the data)")
    return ts


def parse_day(value: Any, what: str, error: type[ValueError] = ValueError, *, required: bool = True,
              normalize: bool = True) -> pd.Timestamp | None:
    """``value`` (date, datetime, ISO text...) as a timezone-naive ``pd.Timestamp``.

    ``None`` or blank text raises ``error("<what> is required")`` when ``required``, else
    returns None; anything that is not a date raises ``error("<what> is not a date: ...")``.
    ``normalize`` drops the time of day.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise error(f"{what} is required")
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise error(f"{what} is not a date: {value!r}") from None
    if pd.isna(ts):
        raise error(f"{what} is not a date: {value!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    check_range(ts, what, error)
    return ts.normalize() if normalize else ts
