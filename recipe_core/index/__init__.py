"""Scan -> per-sample index (Parquet), cached by content fingerprint."""

from recipe_core.index.schema import INDEX_COLUMNS, PIXEL_SIZE, ScanIndex

__all__ = ["INDEX_COLUMNS", "PIXEL_SIZE", "ScanIndex"]
