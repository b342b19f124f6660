"""The shared table helper: human titles, money in the dataset currency, rates as percentages,
dates as days, and no cell reading None/nan (checked against analytics.formatting)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import formatting
from analytics.currency import get
from dashboard import widgets


def _frame():
    return pd.DataFrame({
        "customer_id": ["a", "b"], "net_revenue": [1670.2284694360917, -0.000000000000005],
        "clv_bgnbd": [np.nan, 2.5], "p_alive": [0.5, 0.25],
        "last_purchase": pd.to_datetime(["2025-01-01 13:00", "2025-02-03 00:00"]), "empty": [None, None],
    })


def test_titles_money_rates_dates_and_gaps():
    gbp = get("GBP")
    shown, config = widgets.people_table(_frame(), gbp)
    assert list(shown.columns) == [formatting.column_title(c) for c in
                                   ("customer_id", "net_revenue", "clv_bgnbd", "p_alive", "last_purchase")]
    money = config[formatting.column_title("net_revenue")]["type_config"]["format"]
    assert money == formatting.money_printf(gbp) == "£%,.2f"
    # a money column with a gap: formatted text, the gap in words
    clv = shown[formatting.column_title("clv_bgnbd")].tolist()
    assert clv == [formatting.NOT_ENOUGH_HISTORY, formatting.money(2.5, gbp)]
    rate = formatting.column_title("p_alive")
    assert shown[rate].tolist() == [50.0, 25.0]
    assert config[rate]["type_config"]["format"] == "%.1f %%"
    assert config[formatting.column_title("last_purchase")]["type_config"]["format"] == widgets.DATE_FORMAT
    assert config[formatting.column_title("net_revenue")]["help"] == formatting.column_help("net_revenue")
    for col in shown.columns:
        assert not shown[col].astype(str).isin(["None", "nan", "NaN"]).any()


def test_plain_table_cells_without_a_value_read_as_a_dash():
    """``widgets.table`` (the Segments, Data and cluster tables): a cell without a value reads "–"
    and the column's other values keep their format; no cell reads "None"."""
    from streamlit.testing.v1 import AppTest

    def page():
        import numpy as np
        import pandas as pd

        from dashboard import widgets

        widgets.table(pd.DataFrame({"name": ["a", "b"], "description": ["kept", None], "note": [None, "why"],
                                    "net_revenue": [12.5, np.nan], "customers": [3, 4]}), "t", "EUR")

    at = AppTest.from_function(page).run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    assert shown["description"].tolist() == ["kept", formatting.MISSING]
    assert shown["note"].tolist() == [formatting.MISSING, "why"]
    assert shown["net_revenue"].tolist() == [formatting.money(12.5, "EUR"), formatting.MISSING]
    assert shown["customers"].tolist() == [3, 4]
