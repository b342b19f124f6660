"""Fixtures of the Spark engine tests: one local Spark for the whole test session, and the
sample and CDNOW data both in a warehouse and as the Parquet ``valuescope export`` writes.

Skipped (with the reason) when pyspark or Java 17+ is missing, unless
VALUESCOPE_REQUIRE_SPARK=1 (CI), where that is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def missing_spark() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return 'pyspark is not installed (pip install -e ".[spark]")'
    from analytics.spark.session import java_version

    v = java_version()
    if v is None or v < 17:
        return "Java 17+ is not installed (apt-get install -y openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark():
    reason = missing_spark()
    if reason:
        if os.environ.get("VALUESCOPE_REQUIRE_SPARK") == "1":
            pytest.fail(f"VALUESCOPE_REQUIRE_SPARK=1 but {reason}")
        pytest.skip(reason)
    from analytics.spark.session import spark_session

    # small Arrow batches: every scoring run goes through many batches per partition, so the
    # global constants (quintile levels, behaviour bounds) are what makes the results equal
    s = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "2",
                                        "spark.sql.execution.arrow.maxRecordsPerBatch": "700"})
    yield s
    s.stop()


@pytest.fixture(scope="session")
def data(tmp_path_factory, spark):
    """(warehouse file path, {dataset: parquet path}) with the sample and CDNOW loaded."""
    from analytics.ingest import export_dataset, ingest
    from analytics.warehouse import Warehouse

    folder = tmp_path_factory.mktemp("spark_data")
    db = folder / "w.duckdb"
    wh = Warehouse(db)
    ingest(wh, ROOT / "sample_data" / "sample_events.csv.gz", "sample")
    ingest(wh, ROOT / "tests" / "data" / "CDNOW_sample.txt", "cdnow")
    paths = {}
    for name in ("sample", "cdnow"):
        paths[name] = export_dataset(wh, name, folder / f"{name}.parquet", fmt="parquet")
    wh.close()
    return db, paths
