"""Sample data: a seeded generator of behaviour events with planted personas and truth.

``sample_data/sample_events.csv.gz`` (and ``sample_truth.csv.gz``) is the small
default data set the app loads on first start; see ``sample_data/README.md``.
"""
from __future__ import annotations

from pathlib import Path

from sample_data.generator import (  # noqa: F401
    HEADER, PERSONAS, TRUTH_HEADER, SampleConfig, SampleError, generate, iter_batches,
)

HERE = Path(__file__).resolve().parent
SAMPLE_EVENTS = HERE / "sample_events.csv.gz"
SAMPLE_TRUTH = HERE / "sample_truth.csv.gz"
