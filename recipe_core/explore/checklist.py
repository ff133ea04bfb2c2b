"""The recipe as a checklist: which steps have evidence in the workspace for one dataset.

Each item reads what earlier work left behind (the app's scan, curation decisions, check
reports, runs) and says what it found, or what to do next. Nothing here runs anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe_core.errors import RecipeError
from recipe_core.explore.curation import decision_log
from recipe_core.jobs import scan_job
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunReader, list_runs
from recipe_core.runs.status import RunStatus
from recipe_core.workspace import Workspace

OVERFIT_LOSS = 0.05  # training loss below which an overfit run counts as "reached ~zero"


@dataclass(frozen=True)
class StepEvidence:
    key: str  # scanned | issues_reviewed | checks_passed | baseline_run | overfit_reached
    title: str  # what the recipe asks for
    done: bool
    evidence: str  # what was found, or what to do when nothing was
    page: str  # the app page (path relative to app/) where the evidence lives


def recipe_checklist(workspace: Workspace, dataset: str | os.PathLike[str]) -> list[StepEvidence]:
    """One item per recipe step that Recipe can see evidence of, in the recipe's order."""
    root = Path(dataset).expanduser().resolve()
    runs = _runs_of(workspace, root)
    return [
        _scanned(workspace, root),
        _reviewed(workspace, root),
        _checks(workspace, root),
        _baseline(runs),
        _overfit(runs),
    ]


def _scanned(workspace: Workspace, root: Path) -> StepEvidence:
    summary = _read_json(scan_job.job_dir(workspace, root) / scan_job.RESULT_DIR / "summary.json")
    title = "Scan the data: duplicates, corrupt files, outliers, label errors, leaks"
    if summary is None:
        return StepEvidence("scanned", title, False, "Not scanned yet.", "views/data_overview.py")
    s = summary.get("summary", {})
    text = f"{s.get('n_samples', 0):,} samples scanned, {s.get('n_flagged', 0):,} flagged."
    return StepEvidence("scanned", title, True, text, "views/data_overview.py")


def _reviewed(workspace: Workspace, root: Path) -> StepEvidence:
    decisions = decision_log(workspace, root)
    title = "Review the issues: drop or relabel what is wrong"
    if not decisions:
        return StepEvidence("issues_reviewed", title, False, "No decisions yet.", "views/issues.py")
    text = f"{len(decisions)} curation decision(s) recorded."
    return StepEvidence("issues_reviewed", title, True, text, "views/issues.py")


def _checks(workspace: Workspace, root: Path) -> StepEvidence:
    """The newest finished check report for this dataset. Reads the job folders' documented
    files (job.json, report.json) rather than importing the checks engine, which loads torch:
    the home page must stay quick."""
    title = "Run the sanity checks: loss at init, overfit one batch, batch independence…"
    folders = sorted((workspace.root / "checks").glob("*/report.json"), reverse=True)
    for report_file in folders:  # job ids sort by creation time: newest first
        job = _read_json(report_file.with_name("job.json")) or {}
        report = _read_json(report_file)
        if report is None or not _same_dataset(str(job.get("dataset", "")), root):
            continue
        results = report.get("results", [])
        bad = [str(r.get("name")) for r in results if r.get("status") in ("fail", "error")]
        model = job.get("model", "?")
        if bad:
            text = f"Latest checks ({model}) failed: {', '.join(bad)}."
            return StepEvidence("checks_passed", title, False, text, "views/checks.py")
        text = f"Latest checks ({model}): {len(results)} run, none failed."
        return StepEvidence("checks_passed", title, True, text, "views/checks.py")
    return StepEvidence("checks_passed", title, False, "No checks run yet.", "views/checks.py")


def _baseline(runs: list[tuple[RunStatus, dict[str, Any], Path]]) -> StepEvidence:
    title = "Get a dumb baseline, and beat the input-independent one"
    base = _best_val(runs, "baseline")
    if base is None:
        return StepEvidence(
            "baseline_run", title, False, "No finished baseline run.", "views/runs.py"
        )
    blind = _best_val(runs, "input_independent")
    if blind is None:
        text = f"Baseline val accuracy {base:.3f}; run input_independent to compare."
        return StepEvidence("baseline_run", title, True, text, "views/runs.py")
    text = f"Baseline val accuracy {base:.3f} vs input-independent {blind:.3f}."
    return StepEvidence("baseline_run", title, base > blind, text, "views/runs.py")


def _overfit(runs: list[tuple[RunStatus, dict[str, Any], Path]]) -> StepEvidence:
    title = "Overfit one batch to ~zero loss"
    losses = [
        loss
        for status, config, folder in runs
        if config.get("preset") == "overfit" and status.state == JobState.SUCCEEDED
        for loss in [_last(folder, "train", "loss")]
        if loss is not None
    ]
    if not losses:
        return StepEvidence(
            "overfit_reached", title, False, "No finished overfit run.", "views/runs.py"
        )
    best = min(losses)
    done = best < OVERFIT_LOSS
    text = f"Best overfit training loss {best:.4f} (goal < {OVERFIT_LOSS})."
    return StepEvidence("overfit_reached", title, done, text, "views/runs.py")


def _runs_of(workspace: Workspace, root: Path) -> list[tuple[RunStatus, dict[str, Any], Path]]:
    found = []
    for status in list_runs(workspace):
        folder = workspace.runs / status.run_id
        config = _read_json(folder / "config.json") or {}
        if _same_dataset(str(config.get("dataset", "")), root):
            found.append((status, config, folder))
    return found


def _best_val(runs: list[tuple[RunStatus, dict[str, Any], Path]], preset: str) -> float | None:
    values = [
        acc
        for status, config, folder in runs
        if config.get("preset") == preset and status.state == JobState.SUCCEEDED
        for acc in [_last(folder, "val", "accuracy")]
        if acc is not None
    ]
    return max(values) if values else None


def _last(folder: Path, split: str, column: str) -> float | None:
    try:
        metrics = RunReader(folder).metrics()
    except (RecipeError, OSError, ValueError):
        return None
    rows = metrics[(metrics["split"] == split) & metrics[column].notna()]
    return float(rows[column].iloc[-1]) if len(rows) else None


def _same_dataset(path: str, root: Path) -> bool:
    return bool(path) and Path(path).expanduser().resolve() == root


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
