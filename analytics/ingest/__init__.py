"""Ingestion: inspect a CSV, propose a mapping, validate and append it to the warehouse.

Public API (other modules and the pages call exactly these names)::

    inspect_source(path, file_name=None) -> Preview
    ingest(wh, path, dataset, *, mapping=None, dialect=None, keep_pii=(), pseudonymize=False,
           file_name=None, progress=None, max_decompressed_bytes=20 GB, max_bytes=None) -> IngestResult
    rejects_frame(wh, ingestion_id, limit=None) -> DataFrame[line_number, raw_line, reason]
    ingestion_history(wh, dataset=None) -> DataFrame
    delete_dataset(wh, name); export_dataset(wh, name, path, fmt="csv"|"parquet") -> Path
"""
from analytics.ingest.dialect import DEFAULT_MAX_DECOMPRESSED, Dialect
from analytics.ingest.errors import IngestError
from analytics.ingest.loader import (
    IngestResult, Preview, delete_dataset, export_dataset, ingest, ingestion_history, inspect_source, rejects_frame,
)
from analytics.ingest.mapping import (CANONICAL_FIELDS, DATE_FORMATS, FIELD_TITLES, TAOBAO_EVENT_MAP, Mapping,
                                      field_title, layout_title, load_blockers)
from analytics.ingest.pii import pseudonymize_value

__all__ = [
    "IngestError", "Dialect", "Mapping", "Preview", "IngestResult", "CANONICAL_FIELDS", "DATE_FORMATS",
    "FIELD_TITLES", "field_title", "layout_title", "load_blockers",
    "TAOBAO_EVENT_MAP", "DEFAULT_MAX_DECOMPRESSED", "inspect_source", "ingest", "rejects_frame",
    "ingestion_history", "delete_dataset", "export_dataset", "pseudonymize_value",
]
