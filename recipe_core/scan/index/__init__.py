"""Scan -> per-sample index (Parquet), cached by content fingerprint."""

from recipe_core.scan.index.build import build_index
from recipe_core.scan.index.embed import DEFAULT_EMBEDDING, EMBEDDING_DIM
from recipe_core.scan.index.schema import INDEX_COLUMNS, PIXEL_SIZE, ScanIndex

__all__ = [
    "DEFAULT_EMBEDDING",
    "EMBEDDING_DIM",
    "INDEX_COLUMNS",
    "PIXEL_SIZE",
    "ScanIndex",
    "build_index",
]
