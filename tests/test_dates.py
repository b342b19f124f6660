import datetime as dt

import pandas as pd
import pytest

from analytics.dates import parse_day


class MyError(ValueError):
    pass


def test_parse_day_values_and_errors():
    assert parse_day("2025-03-04 17:30", "day") == pd.Timestamp("2025-03-04")
    assert parse_day(dt.date(2025, 3, 4), "day", normalize=False) == pd.Timestamp("2025-03-04")
    assert parse_day("2025-03-04 17:30", "day", normalize=False) == pd.Timestamp("2025-03-04 17:30")
    # a timezone-aware value comes back naive (the warehouse stores naive timestamps)
    assert parse_day("2025-03-04T10:00:00+02:00", "day", normalize=False).tzinfo is None
    assert parse_day(None, "day", MyError, required=False) is None
    assert parse_day("  ", "day", MyError, required=False) is None
    with pytest.raises(MyError, match="^the start is required$"):
        parse_day("", "the start", MyError)
    with pytest.raises(MyError, match="^the start is not a date: 'soon'$"):
        parse_day("soon", "the start", MyError)
    with pytest.raises(MyError, match="is not a date"):
        parse_day(float("nan"), "the start", MyError)
