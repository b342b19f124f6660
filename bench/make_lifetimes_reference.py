"""Generate the lifetimes reference summaries used by tests/test_summary.py.

Run in a separate environment where lifetimes imports (it needs pkg_resources,
i.e. setuptools < 81), e.g.:

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install 'pandas<3' 'numpy<2' scipy 'setuptools<81' lifetimes==0.11.3
    /tmp/ref-venv/bin/python bench/make_lifetimes_reference.py

Writes tests/data/lifetimes_cdnow_summary_<unit>_<YYYYMMDD>.csv: lifetimes'
``summary_data_from_transaction_data`` on tests/data/CDNOW_sample.txt (customer id =
sample id, column 2; date column 3; amount column 5) with freq="D" and
freq_multiplier 1 (days) or 7 (weeks), full float precision.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pandas as pd

warnings.simplefilter("ignore")
from lifetimes import __version__ as lifetimes_version  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
UNITS = {"days": 1, "weeks": 7}
ENDS = ["1997-09-30", "1998-06-30"]


def load_cdnow(path: Path = DATA / "CDNOW_sample.txt") -> pd.DataFrame:
    df = pd.read_csv(path, sep=r"\s+", header=None, names=["original_id", "customer_id", "date", "qty", "amount"])
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    return df


def main() -> int:
    tx = load_cdnow()
    for unit, mult in UNITS.items():
        for end in ENDS:
            s = summary_data_from_transaction_data(
                tx, "customer_id", "date", monetary_value_col="amount",
                observation_period_end=end, freq="D", freq_multiplier=mult,
            )
            s.index.name = "customer_id"
            out = DATA / f"lifetimes_cdnow_summary_{unit}_{end.replace('-', '')}.csv"
            s.to_csv(out, float_format="%.17g")
            print(f"wrote {out.relative_to(ROOT)} ({len(s)} customers) with lifetimes {lifetimes_version}, "
                  f"pandas {pd.__version__}, python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
