"""First start: load the committed sample data set into an empty warehouse."""
from __future__ import annotations

import threading
from pathlib import Path

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "sample_data" / "sample_events.csv.gz"
SAMPLE_DATASET = "sample"
#: set to 1 to start on an empty warehouse (no sample data)
ENV_SKIP_SAMPLE = "VALUESCOPE_SKIP_SAMPLE"
_LOCK = threading.Lock()  # two browser sessions starting at once load it once


def sample_skipped() -> bool:
    """Whether ``VALUESCOPE_SKIP_SAMPLE`` asks to start without the sample data set."""
    import os

    return os.environ.get(ENV_SKIP_SAMPLE, "").strip() not in ("", "0")


def ensure_default_dataset(wh, path: str | Path | None = None):
    """Load ``sample_data/sample_events.csv.gz`` as dataset 'sample' when the warehouse has no datasets.

    Returns the ``IngestResult``, or None when there is nothing to do (datasets exist)
    or the sample file is absent.
    """
    from analytics.ingest import ingest

    src = Path(path) if path is not None else SAMPLE_FILE
    with _LOCK:
        if wh.datasets() or not src.is_file():
            return None
        return ingest(wh, src, SAMPLE_DATASET, file_name=src.name,
                      description="Generated sample data (planted customer personas)")
