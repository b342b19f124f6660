"""Clusters ready to use: names that say what differs, colour-blind-safe colours, readable profile labels."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import explorer, palettes
from analytics.segments.clustering import CustomerClustering, _cell_text, cluster_names, profile_figure, \
    projection_figure


def test_no_name_is_only_words_of_another():
    # three mid-value clusters that differ below the naming threshold, as in a plain order log
    centres = pd.DataFrame({"net_revenue": [0.1, 0.0, -0.1, 2.0], "n_orders": [0.3, -0.3, 0.0, 1.5],
                            "time_since_purchase": [0.0, 0.2, -0.4, -1.0], "avg_order_value": [0.4, -0.2, 0.1, 0.8]})
    names = cluster_names(centres)
    words = [set(n.split(" · ")) for n in names]
    assert len(set(names)) == 4
    for i, wi in enumerate(words):
        assert not any(wi <= wj for j, wj in enumerate(words) if j != i), names
    assert all(n.startswith("Mid value") for n in names[:3])


def test_palette_is_okabe_ito_and_repeats_with_other_symbols():
    assert palettes.colors(3) == ["#0072B2", "#E69F00", "#009E73"]
    twelve = list(zip(palettes.colors(12), palettes.marker_symbols(12)))
    assert len(set(twelve)) == 12 and twelve[8] == ("#0072B2", "square")
    cmap = palettes.category_colors(["A", "B", "(not a customer yet)", "A"], neutral=["(not a customer yet)"])
    assert cmap == {"A": "#0072B2", "B": "#E69F00", "(not a customer yet)": palettes.NEUTRAL}
    assert palettes.rgba("#0072B2", 0.5) == "rgba(0, 114, 178, 0.5)"


def test_sankey_gives_a_segment_one_colour_on_both_sides():
    flows = pd.DataFrame({"from": ["Loyal", "Loyal", "At risk", "(not a customer yet)"],
                          "to": ["Loyal", "At risk", "At risk", "Loyal"], "customers": [10, 3, 5, 2]})
    sk = explorer.sankey_data(flows)
    colour = dict(zip(sk["labels"][:3], sk["node_colors"][:3]))
    right = dict(zip(sk["labels"][3:], sk["node_colors"][3:]))
    assert colour["Loyal"] == right["Loyal"] and colour["At risk"] == right["At risk"] != colour["Loyal"]
    assert colour["(not a customer yet)"] == palettes.NEUTRAL
    assert sk["x"] == [0.001] * 3 + [0.999] * 2 and all(0 < y < 1 for y in sk["y"])


def test_heatmap_cells_show_averages_in_units_and_no_negative_ratios():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "net_revenue": np.r_[rng.normal(-20, 5, n // 2), rng.normal(900, 50, n // 2)],  # refunds make a negative mean
        "n_orders": np.r_[rng.poisson(1, n // 2), rng.poisson(9, n // 2)].astype(float),
        "time_since_purchase": np.r_[rng.uniform(200, 300, n // 2), rng.uniform(1, 30, n // 2)],
    }, index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))
    m = CustomerClustering(features=list(frame.columns), n_clusters=2, random_state=0).fit(frame)
    fig = profile_figure(m, currency="EUR")
    text = np.array(fig.data[0].text)
    assert not any("×-" in str(t) for t in np.ravel(fig.data[0].customdata))
    col = list(fig.data[0].x).index("Net revenue")
    low = int(np.argmin(m.cluster_profiles_["net_revenue"].to_numpy()))
    assert text[low, col] == _cell_text(m.cluster_profiles_.loc[low, "net_revenue"], "net_revenue", "EUR")
    assert text[low, col].startswith("-€")
    assert text[0, list(fig.data[0].x).index("Time since last purchase")].endswith(" d")
    assert _cell_text(1234.5, "net_revenue", "GBP") == "£1.2k" and _cell_text(0.25, "return_rate") == "25%"
    proj = projection_figure(m, frame)
    assert [t.marker.color for t in proj.data] == palettes.colors(2)
