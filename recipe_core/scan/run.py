"""`scan`: dataset -> index -> issues, the first step of the recipe ("become one with the data").

    result = scan("sample_data/digits", workspace=".recipe")
    result.issues                    # one row per (sample, issue)
    write_scan(result, "scan_out")   # scan_out/index.parquet + scan_out/issues.csv

The index is cached in the workspace, so a second scan of an unchanged dataset decodes nothing
and a scan after adding a few files decodes only those; the detectors' work on unchanged files
is kept there too (`recipe_core.scan.issues.memo`), so they redo only what the changes touch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import pandas as pd

from recipe_core.data import DatasetSource, open_dataset
from recipe_core.data.source import portable_text
from recipe_core.errors import ConfigError
from recipe_core.scan.index import ScanIndex, build_index
from recipe_core.scan.index.build import FeatureRunner
from recipe_core.scan.index.cache import memo_path
from recipe_core.scan.issues import find_issues
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.pixel_match import check_threshold
from recipe_core.scan.result import ScanResult, ScanSummary, write_scan
from recipe_core.workspace import Workspace, open_workspace

log = logging.getLogger(__name__)

ScanProgress = Callable[[str, int, int], None]  # (stage: "index" | "issues", done, total)


def scan(
    dataset: str | os.PathLike[str] | DatasetSource,
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    workers: int | None = None,
    embedding: str = "default",
    progress: ScanProgress | None = None,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    cache: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    near_threshold: float = 1.0,
    edited_copies: bool = True,
) -> ScanResult:
    """Index every sample of `dataset` (a path or a `DatasetSource`) and find its issues.

    `workspace` holds the index cache (None: $RECIPE_WORKSPACE or ./.recipe; `cache=False`
    neither reads nor writes it). `workers` decode processes (None: one per CPU). `embedding`:
    "default" (offline) or "resnet18" (local weights only). `progress(stage, done, total)` is
    called as files are decoded ("index") and detectors run ("issues"). With `out`, the result
    is also written there (see `write_scan`). `seed` fixes the detectors' randomness; `device`
    is where a network embedder runs. `executor="ray"` decodes on the Ray cluster at
    `ray_address` with Ray Data (same rows, same issues; see `recipe_core.scan.ray_data`).
    `near_threshold` moves the near-duplicate line (1 = the calibrated default, 0.5 stricter,
    1.5 looser; `recipe_core.scan.issues.duplicates.threshold_effect` compares values).
    `edited_copies=False` leaves out the edited-copy checks (recrops, turns and overlays of
    images of 48 px or more: up to ~0.5 CPU-ms per image); the summary records it.
    """
    near_threshold = check_threshold(near_threshold)  # a bad value fails before any decoding
    timings: dict[str, float] = {}
    start = time.perf_counter()
    source = dataset if isinstance(dataset, DatasetSource) else open_dataset(dataset)
    ws = _workspace(workspace) if cache else None
    features = _features(executor, ray_address, source)
    timings["open"] = _lap(start)
    index = build_index(
        source, workspace=ws, workers=workers, embedding=embedding, device=device,
        progress=_stage(progress, "index"), features=features,
    )  # fmt: skip
    timings["index"] = _lap(start) - timings["open"]
    memo_file = memo_path(ws.scans, source, index.embedding_name) if ws else None
    memo = IssueMemo.load(memo_file, index.table) if memo_file else None
    issues = find_issues(index, seed=seed, progress=_stage(progress, "issues"),
                         near_threshold=near_threshold, memo=memo,
                         edited_copies=edited_copies)  # fmt: skip
    if memo is not None and memo_file is not None:
        memo.save(memo_file)
        log.info("issue memo: reused %s, computed %s", memo.reused, memo.computed)
    timings["issues"] = _lap(start) - timings["open"] - timings["index"]
    summary = _summarize(index, issues, near_threshold, edited_copies)
    result = ScanResult(index, issues, summary, source.skipped, timings)
    if out is not None:
        write_scan(result, out)
        timings["write"] = _lap(start) - sum(timings.values())
    log.info("scanned %d samples in %.2fs: %s", len(index), _lap(start), timings)
    return result


def _features(
    executor: str, ray_address: str | None, source: DatasetSource
) -> FeatureRunner | None:
    """None (the local pool) or the Ray Data runner; Ray is imported only for "ray"."""
    if executor == "local":
        return None
    if executor != "ray":
        raise ConfigError(
            f"Unknown scan executor {executor!r}. Choose 'local' (this machine's processes) "
            "or 'ray' (a running Ray cluster, with --ray-address)."
        )
    from recipe_core.scan.ray_data import ray_features

    return ray_features(ray_address or "", root=os.fsdecode(source.root))


def _workspace(workspace: Workspace | str | os.PathLike[str] | None) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else open_workspace(workspace)


def _stage(progress: ScanProgress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _lap(start: float) -> float:
    return time.perf_counter() - start


def _summarize(
    index: ScanIndex, issues: pd.DataFrame, near_threshold: float, edited_copies: bool = True
) -> ScanSummary:
    counts = issues["issue"].value_counts()
    source = index.source
    return ScanSummary(
        dataset=portable_text(os.fsdecode(source.root)),
        layout=source.layout,
        n_samples=len(index),
        n_classes=len(source.classes),
        n_decoded=len(index) - index.reused,
        n_reused=index.reused,
        n_undecodable=int((~index.valid).sum()),
        n_skipped=len(source.skipped),
        n_not_followed=len(source.not_followed),
        n_issue_rows=len(issues),
        n_flagged=int(issues["sample_id"].nunique()),
        issue_counts={str(k): int(v) for k, v in counts.items()},
        embedding=index.embedding_name,
        fingerprint=index.fingerprint,
        near_threshold=near_threshold,
        edited_copies=edited_copies,
    )
