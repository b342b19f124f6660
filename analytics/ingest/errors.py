"""The ingestion error type (user-facing, one clear line)."""
from __future__ import annotations


class IngestError(ValueError):
    """A file or mapping that cannot be loaded; the message says why in one line."""
