"""Manifest adapter: a CSV or Parquet table with columns `path,label[,split]`.

Paths are relative to the manifest's folder (which becomes the dataset root); absolute paths are
accepted when they lie inside it. A cleaned export Recipe wrote into the workspace (see
`recipe_core.data.named`) sits beside a `dataset.json` naming the folder of the originals: its
paths are relative to that folder instead, so the export references the user's files in place.
A path leading outside the root is refused, because the scan would then read files the user did
not point it at. Listed files that are missing are kept as samples: the scan reports them as
undecodable (`corrupt`) rows instead of failing.
"""

from __future__ import annotations

import json
import os
import posixpath
import warnings
from pathlib import Path

import pandas as pd

from recipe_core.data.source import DatasetSource, make_samples, portable_text
from recipe_core.errors import DatasetError

MANIFEST_EXTENSIONS = frozenset({".csv", ".parquet", ".pq"})
REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("split",)
SHOWN = 5  # offending values quoted in an error message
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SIDECAR = "dataset.json"  # beside an exported manifest: {"manifest": NAME, "root": ABS, ...}


def is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS


def open_manifest(path: Path) -> DatasetSource:
    """Read and validate a manifest; raise `DatasetError` naming the problem and the fix."""
    table = _read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(
            f"Manifest {path} has no {', '.join(repr(c) for c in missing)} column (found: "
            f"{list(map(str, table.columns))}). A manifest needs columns path,label and "
            "optionally split; rename the columns or add a header row."
        )
    if table.empty:
        raise DatasetError(f"Manifest {path} lists no samples. Add one row per image.")
    root = manifest_root(path)
    paths = _inside_root(path, table["path"].tolist(), root)
    _refuse_duplicates(path, paths)
    splits = table["split"].tolist() if "split" in table.columns else [""] * len(table)
    return DatasetSource(
        root=root,
        layout="manifest",
        samples=make_samples(paths, table["label"].tolist(), splits),
        skipped=(),
    )


def manifest_root(path: Path) -> Path:
    """The folder a manifest's paths are relative to: its own folder, or the absolute "root"
    of the `dataset.json` beside it when that record names this manifest (a cleaned export)."""
    record = read_sidecar(path.parent / SIDECAR)
    root = record.get("root")
    if record.get("manifest") == path.name and isinstance(root, str) and os.path.isabs(root):
        return Path(root).resolve()
    return path.parent.resolve()


def read_sidecar(path: Path) -> dict[str, object]:
    """The JSON object in `path`; {} when it is missing or not a JSON object."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _read_table(path: Path) -> pd.DataFrame:
    try:
        table = _read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise DatasetError(
            f"Cannot read manifest {path}: {str(exc)[:200].rstrip('.')}. A manifest is a UTF-8 "
            "CSV (with a header row, no row longer than it) or a Parquet file with columns "
            "path,label[,split]; write file-name bytes that are not UTF-8 as \\xNN escapes."
        ) from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    for column in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
        if column in table.columns:
            table[column] = table[column].map(_text)
    for column in ("label", "split"):  # an exported manifest's formula-safe text; paths verbatim
        if column in table.columns:
            table[column] = table[column].map(formula_text)
    return table


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV as text cells (dtype=str keeps labels like "07" intact: no 7.0, no NaN for
    "NA"); a row with more fields than the header is an error, not a row
    whose first fields pandas silently turns into an index (shifting every column)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN from Parquet
        return ""
    if isinstance(value, bytes):
        return portable_text(value.decode("utf-8", "surrogateescape"))
    return str(value).strip()


def formula_safe(text: str) -> str:
    """`text` as a spreadsheet shows it but never runs it: a leading apostrophe before a cell
    that would start a formula (numbers such as -1 stay as they are). `formula_text` undoes it,
    so a label survives an export and a re-open unchanged."""
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def formula_text(text: str) -> str:
    """The text `formula_safe` was given."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) and not _is_number(text[1:]):
        return text[1:]
    return text


def formula_safe_columns(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """A copy of `table` with its free-text `columns` made `formula_safe` (paths are left
    alone by the callers: a manifest must resolve them byte for byte)."""
    out = table.copy()
    for column in columns:
        if column in out.columns:
            out[column] = [formula_safe(v) if isinstance(v, str) else v for v in out[column]]
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text  # "\t1" is a float to Python, a formula start to a spreadsheet


def _relative(path: str, root: Path) -> str | None:
    """`path` as a normalised POSIX path relative to `root`, or None if it leaves the root."""
    if not path:
        return None
    if os.path.isabs(path):
        try:
            path = Path(os.path.normpath(path)).relative_to(root).as_posix()
        except ValueError:
            return None
    normal = posixpath.normpath(path.replace(os.sep, "/"))
    if normal == "." or normal == ".." or normal.startswith("../"):
        return None
    return normal


def _inside_root(manifest: Path, given: list[str], root: Path) -> list[str]:
    """Every path relative to `root`; raise when one is empty or leads outside it."""
    paths = [_relative(p, root) for p in given]
    bad = [g for g, p in zip(given, paths, strict=True) if p is None]
    if bad:
        raise DatasetError(
            f"Manifest {manifest} has {len(bad)} path(s) that are empty or lead outside its "
            f"folder {root}, e.g. {bad[:SHOWN]}. Paths must be relative to the "
            "manifest's folder (move the manifest up to a folder that contains every image)."
        )
    return [p for p in paths if p is not None]


def _refuse_duplicates(manifest: Path, paths: list[str]) -> None:
    counts = pd.Series(paths).value_counts()
    repeated = counts[counts > 1]
    if len(repeated):
        raise DatasetError(
            f"Manifest {manifest} lists {len(repeated)} path(s) more than once, e.g. "
            f"{list(repeated.index[:SHOWN])}. Keep one row per file (one label per image)."
        )
