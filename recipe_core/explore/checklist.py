"""The recipe as a checklist: which steps have evidence in the workspace for one dataset.

Each item reads what earlier work left behind (the app's scan, curation decisions, check
reports, runs, searches, ensembles) and says what it found, or what to do next. Nothing here
runs anything.

A dataset and its cleaned exports (recipe_core/data/named.py) are one line of work: the raw
folder is scanned and reviewed, the cleaned manifest is then checked and trained on. So each
step looks for evidence on the current dataset first, then on the rest of its family, and
says which dataset the evidence came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recipe_core.data.named import NamedDataset, list_datasets
from recipe_core.errors import RecipeError
from recipe_core.explore.curation import decision_log
from recipe_core.explore.ensemble_records import list_ensembles
from recipe_core.jobs import scan_job
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunReader, list_runs
from recipe_core.runs.files import read_json_object
from recipe_core.runs.status import RunStatus
from recipe_core.workspace import Workspace

OVERFIT_LOSS = 0.05  # training loss below which an overfit run counts as "reached ~zero"
LONG_RUN_STEPS = 2000  # "leave it training": 4x the baseline's 500 steps (a test keeps it so)
TUNE_FILE = "tune.json"  # a search trial's record (recipe_core/tune/trials.py)
RESUME_FILE = "resume.json"  # a resumed run's history (recipe_core/train/resume.py)
Runs = list[tuple[RunStatus, dict[str, Any], Path]]


@dataclass(frozen=True)
class StepEvidence:
    key: str  # scanned | issues_reviewed | checks_passed | baseline_run | overfit_reached |
    #           regularized | tuned | squeezed
    title: str  # what the recipe asks for
    done: bool
    evidence: str  # what was found, or what to do when nothing was
    page: str  # the app page (path relative to app/) where the evidence lives
    dataset: str = ""  # the family member the evidence is on (raw folder or cleaned name)


@dataclass(frozen=True)
class FamilyMember:
    label: str  # the folder's name, or the cleaned dataset's name
    path: Path  # resolved folder or manifest
    cleaned: bool  # a cleaned export (a named dataset)


def recipe_checklist(workspace: Workspace, dataset: str | os.PathLike[str]) -> list[StepEvidence]:
    """One item per recipe step that Recipe can see evidence of, in the recipe's order: on the
    dataset itself when it has some, else on its raw folder or another cleaned export of it
    (`StepEvidence.dataset` names which, whenever the family has more than one member)."""
    root = Path(dataset).expanduser().resolve()
    family = dataset_family(workspace, root)
    per_member = [_steps(workspace, m.path) for m in family]
    items = []
    for options in zip(*per_member, strict=True):
        pick = next((i for i, item in enumerate(options) if item.done), 0)
        chosen = options[pick]
        if len(family) > 1:
            label = family[pick].label
            suffix = f" (on {label})" if chosen.done else ""
            chosen = replace(chosen, evidence=chosen.evidence + suffix, dataset=label)
        items.append(chosen)
    return items


def dataset_family(workspace: Workspace, dataset: Path) -> list[FamilyMember]:
    """`dataset` first, then its raw folder (when it is a cleaned export) and every cleaned
    export made from either, newest first."""
    named = list_datasets(workspace)
    by_manifest = {d.manifest: d for d in named}
    raw = dataset
    while raw in by_manifest:  # a cleaned export of a cleaned export: back to the folder
        raw = _resolved(by_manifest[raw].source)
    members = [raw]
    grown = True
    while grown:  # exports of exports join once their source has
        new = [d.manifest for d in named
               if _resolved(d.source) in members and d.manifest not in members]  # fmt: skip
        members.extend(new)
        grown = bool(new)
    ordered = [dataset] + [m for m in members if m != dataset]
    return [_member(path, by_manifest.get(path)) for path in ordered]


def _member(path: Path, named: NamedDataset | None) -> FamilyMember:
    if named is None:
        return FamilyMember(path.name or str(path), path, cleaned=False)
    return FamilyMember(named.name, path, cleaned=True)


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()


def _steps(workspace: Workspace, root: Path) -> list[StepEvidence]:
    runs = _runs_of(workspace, root)
    return [
        _scanned(workspace, root),
        _reviewed(workspace, root),
        _checks(workspace, root),
        _baseline(runs),
        _overfit(runs),
        _regularized(runs),
        _tuned(runs),
        _squeezed(workspace, root, runs),
    ]


def _scanned(workspace: Workspace, root: Path) -> StepEvidence:
    summary = read_json_object(
        scan_job.job_dir(workspace, root) / scan_job.RESULT_DIR / "summary.json"
    )
    title = "Scan the data: duplicates, corrupt files, outliers, label errors, leaks"
    if not summary:
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
        job = read_json_object(report_file.with_name("job.json"))
        report = read_json_object(report_file)
        if not report or not _same_dataset(str(job.get("dataset", "")), root):
            continue
        text, done = _checks_text(report, str(job.get("model", "?")))
        return StepEvidence("checks_passed", title, done, text, "views/checks.py")
    return StepEvidence("checks_passed", title, False, "No checks run yet.", "views/checks.py")


def _checks_text(report: dict[str, Any], model: str) -> tuple[str, bool]:
    """What a report says, every status counted and the unhappy ones named; done only when
    nothing failed and nothing was left undecided (skipped or cut short by the time budget)."""
    results = [r for r in report.get("results", []) if isinstance(r, dict)]
    named: dict[str, list[str]] = {}
    for r in results:
        named.setdefault(str(r.get("status")), []).append(str(r.get("name")))
    cut = [str(n) for n in report.get("cut_short", [])]
    parts = [f"{len(named.get('pass', []))} passed"]
    for status, verb in (("fail", "failed"), ("error", "errored"), ("warn", "warned"),
                         ("skip", "skipped")):  # fmt: skip
        if named.get(status):
            parts.append(f"{len(named[status])} {verb} ({', '.join(named[status])})")
    if cut:
        parts.append(f"cut short by the time budget: {', '.join(cut)}")
    undecided = named.get("fail") or named.get("error") or named.get("skip") or cut
    return f"Latest checks ({model}) of {len(results)}: {'; '.join(parts)}.", not undecided


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


def _regularized(runs: Runs) -> StepEvidence:
    """A regularised run (weight decay, dropout or augmentation) on the full data whose best
    val loss beats every unregularised one's: regularising must buy validation loss."""
    title = "Regularise: augment, dropout, weight decay; beat the unregularised run on val loss"
    page = "views/runs.py"
    full = [(s, c, f) for s, c, f in runs if s.state == JobState.SUCCEEDED and _full_data(c)]
    regular = _lowest_val(r for r in full if _regularisers(r[1]))
    plain = _lowest_val(r for r in full if not _regularisers(r[1]))
    if regular is None:
        text = "No finished regularised run: start one with the train preset (augment, dropout, "
        return StepEvidence("regularized", title, False, text + "weight decay).", page)
    run_id, loss, config = regular
    used = ", ".join(_regularisers(config))
    found = f"Regularised run {run_id} ({used}): best val loss {loss:.4f}"
    if plain is None:
        text = f"{found}; run an unregularised baseline to compare."
        return StepEvidence("regularized", title, False, text, page)
    text = f"{found} vs unregularised {plain[0]}: {plain[1]:.4f}."
    return StepEvidence("regularized", title, loss < plain[1], text, page)


def _tuned(runs: Runs) -> StepEvidence:
    """The newest random search on this dataset that finished at least one trial."""
    title = "Tune: a random search over the hyperparameters"
    searches: dict[str, list[tuple[RunStatus, Path]]] = {}
    for status, _, folder in runs:  # newest first, so the first search seen is the newest
        search = read_json_object(folder / TUNE_FILE).get("search_id")
        if search:
            searches.setdefault(str(search), []).append((status, folder))
    for search, trials in searches.items():
        done = [(s, f) for s, f in trials if s.state == JobState.SUCCEEDED]
        best = _lowest_val((s, {}, f) for s, f in done)
        if best is None:
            continue
        text = (f"Search {search}: {len(trials)} trial(s), {len(done)} finished; best "
                f"{best[0]} with val loss {best[1]:.4f} ({len(searches)} search(es) "
                "in all).")  # fmt: skip
        return StepEvidence("tuned", title, True, text, "views/runs.py")
    text = "No finished search: run recipe tune DATASET --param lr=loguniform:1e-4:1e-2 in a shell"
    return StepEvidence("tuned", title, False, text, "views/runs.py")


def _squeezed(workspace: Workspace, root: Path, runs: Runs) -> StepEvidence:
    """An ensemble of this dataset's runs, or a long run (LONG_RUN_STEPS, or resumed)."""
    title = "Squeeze out the juice: an ensemble, or leave it training"
    found = [e for e in list_ensembles(workspace) if _same_dataset(e.dataset, root)]
    found.sort(key=lambda e: e.val_loss >= e.best.val_loss)  # newest that beats its best first
    parts = []
    if found:
        e, best = found[0], found[0].best
        parts.append(f"Ensemble of {len(e.members)} runs: val loss {e.val_loss:.4f} vs best "
                     f"single {best.run_id} {best.val_loss:.4f}.")  # fmt: skip
    long = [(s, f) for s, c, f in runs if s.state == JobState.SUCCEEDED and _long(s, f)]
    if long:
        status, folder = long[0]
        resumed = len(read_json_object(folder / RESUME_FILE).get("history", []))
        how = f", resumed {resumed}x" if resumed else ""
        parts.append(f"Long run {status.run_id}: {status.step:,} steps{how}.")
    if not parts:
        text = (f"No ensemble and no long run yet: ensemble 2-5 finished runs, or leave a run "
                f"training (>= {LONG_RUN_STEPS:,} steps, or resume one).")  # fmt: skip
        return StepEvidence("squeezed", title, False, text, "views/ensembles.py")
    return StepEvidence("squeezed", title, True, " ".join(parts), "views/ensembles.py")


def _full_data(config: dict[str, Any]) -> bool:
    """Trained on every training image, on real inputs (not an overfit or a blind run)."""
    return not config.get("overfit_examples") and not config.get("zero_inputs")


def _regularisers(config: dict[str, Any]) -> list[str]:
    found = [f"weight decay {config['weight_decay']:g}" if config.get("weight_decay") else "",
             f"dropout {config['dropout']:g}" if config.get("dropout") else "",
             "augmentation" if config.get("augment") else ""]  # fmt: skip
    return [f for f in found if f]


def _lowest_val(
    runs: Iterable[tuple[RunStatus, dict[str, Any], Path]],
) -> tuple[str, float, dict[str, Any]] | None:
    """(run id, best val loss, config) of the run with the lowest val loss; None if none."""
    scored = [(status.run_id, loss, config) for status, config, folder in runs
              for loss in [_lowest(folder, "val", "loss")] if loss is not None]  # fmt: skip
    return min(scored, key=lambda r: r[1]) if scored else None


def _long(status: RunStatus, folder: Path) -> bool:
    history = read_json_object(folder / RESUME_FILE).get("history")
    return status.step >= LONG_RUN_STEPS or bool(history)


def _runs_of(workspace: Workspace, root: Path) -> list[tuple[RunStatus, dict[str, Any], Path]]:
    found = []
    for status in list_runs(workspace):
        folder = workspace.runs / status.run_id
        config = read_json_object(folder / "config.json")
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


def _lowest(folder: Path, split: str, column: str) -> float | None:
    try:
        metrics = RunReader(folder).metrics()
    except (RecipeError, OSError, ValueError):
        return None
    values = metrics.loc[metrics["split"] == split, column].dropna()
    return float(values.min()) if len(values) else None


def _same_dataset(path: str, root: Path) -> bool:
    return bool(path) and Path(path).expanduser().resolve() == root
