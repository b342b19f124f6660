"""Shared fixtures: an in-memory warehouse per test, paths to shipped test data."""
from __future__ import annotations

from pathlib import Path

import pytest

from analytics.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def wh():
    """A fresh in-memory warehouse with the schema applied."""
    w = Warehouse(":memory:")
    yield w
    w.close()


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA
