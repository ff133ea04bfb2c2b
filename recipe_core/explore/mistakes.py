"""A run's mistakes joined to a scan's samples: the columns, presets, confusion matrix and
label-issue signal the data pages show once a run is picked.

    preds = load_run_predictions(run_dir)                       # the latest kept evaluation
    table = join_predictions(sample_table(...), preds)          # + loss, predicted, confidence,
                                                                #   correct, margin per sample
    spec, sort_by, descending = MISTAKE_PRESETS["Most confident mistakes"]

The run's labels are class indices into its data.json `classes`; the scan's are strings, so
every join goes through the class names. Samples the run did not evaluate (the train split)
get NaN: the run says nothing about them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recipe_core.errors import RunError
from recipe_core.explore.query import Range, SampleFilter, SampleTable
from recipe_core.runs import RunReader, RunStatus, list_runs
from recipe_core.runs.files import RunFiles
from recipe_core.runs.predictions import read_index
from recipe_core.scan.issues import IssueType
from recipe_core.scan.issues.labels import LabelIssueResult, find_label_issues_from_probs
from recipe_core.workspace import Workspace

RUN_COLUMNS = ("loss", "predicted", "confidence", "correct", "margin")


@dataclass(frozen=True)
class RunPredictions:
    run_id: str
    name: str
    step: int  # the evaluation these rows come from
    classes: tuple[str, ...]  # class index -> name, the run's order
    frame: pd.DataFrame = field(repr=False)  # runs/predictions.py rows + true/predicted names

    @property
    def label(self) -> str:
        """How the pages name this signal: "run NAME (ID) at step S"."""
        return f"run {self.name} ({self.run_id}) at step {self.step}"


@dataclass(frozen=True)
class Preset:
    spec: SampleFilter
    sort_by: str
    descending: bool


MISTAKE_PRESETS = {
    # wrong, and sure of it: label errors and the net's blind spots come first
    "Most confident mistakes": Preset(SampleFilter(ranges=(Range("correct", 0, 0),)),
                                      "confidence", True),
    # right by a hair: the next mistakes, and ambiguous samples
    "Right but unsure": Preset(SampleFilter(ranges=(Range("correct", 1, 1),)), "margin", False),
    "Highest loss": Preset(SampleFilter(), "loss", True),
}  # fmt: skip


def load_run_predictions(run_dir: Path, step: int | None = None) -> RunPredictions:
    """A run's predictions at `step` (None: the latest kept), with class names attached."""
    reader = RunReader(run_dir)
    status = reader.status()
    return name_predictions(reader.predictions(step), _run_classes(reader),
                            run_id=status.run_id, name=status.name)  # fmt: skip


def name_predictions(
    frame: pd.DataFrame, classes: tuple[str, ...], *, run_id: str, name: str
) -> RunPredictions:
    """Prediction rows (runs/predictions.py) of one evaluation with `true_name` and
    `predicted_name` added from `classes` (class index -> name)."""
    if frame.empty:
        raise RunError(f"Run {run_id} kept an evaluation with no rows; it evaluated nothing.")
    names = np.asarray(classes, dtype=object)
    ids = frame[["label", "predicted"]].to_numpy()
    if int(ids.max()) >= len(names) or int(ids.min()) < 0:
        raise RunError(
            f"Run {run_id}'s predictions name class ids up to {int(ids.max())} but its data.json "
            f"lists {len(names)} classes; the run directory is inconsistent, train it again."
        )
    named = frame.assign(true_name=names[frame["label"].to_numpy()],
                         predicted_name=names[frame["predicted"].to_numpy()])  # fmt: skip
    return RunPredictions(run_id, name, int(frame["step"].iloc[0]), classes, named)


def _run_classes(reader: RunReader) -> tuple[str, ...]:
    if not reader.files.exists("data.json"):
        raise RunError(
            f"Run {reader.files.root.name} has no data.json, so its class ids have no names; "
            "only built-in runs (`recipe train DATASET`) can be joined to a scan."
        )
    classes = json.loads(reader.files.read_bytes("data.json")).get("classes", [])
    return tuple(str(c) for c in classes)


def runs_with_predictions(workspace: Workspace, dataset: Path) -> list[RunStatus]:
    """Runs of `workspace` trained on `dataset` that recorded per-sample predictions keyed by
    the scan's sample ids (built-in runs), newest first."""
    target = Path(dataset).expanduser().resolve()
    found = []
    for status in list_runs(workspace):
        files = RunFiles(workspace.runs / status.run_id)
        try:
            index = read_index(files)
            config = json.loads(files.read_bytes("config.json"))
        except (RunError, OSError, ValueError):
            continue  # damaged or half-written: the Runs page says why
        if index is None or index.ids != "sample_id" or not index.files:
            continue
        trained_on = str(config.get("dataset", "")) if isinstance(config, dict) else ""
        if trained_on and Path(trained_on).expanduser().resolve() == target:
            found.append(status)
    return found


def join_predictions(table: SampleTable, preds: RunPredictions) -> SampleTable:
    """`table` with RUN_COLUMNS added (NaN / "" where the run has no prediction)."""
    frame = table.frame
    by_id = preds.frame.set_index("sample_id")
    pos = by_id.index.get_indexer(pd.Index(frame["sample_id"]))
    hit = pos >= 0
    columns: dict[str, np.ndarray] = {}
    for name in ("loss", "confidence", "margin"):
        values = np.full(len(frame), np.nan)
        values[hit] = by_id[name].to_numpy(dtype=np.float64)[pos[hit]]
        columns[name] = values
    correct = np.full(len(frame), np.nan)  # 1.0 / 0.0 so range filters and sorts take it
    correct[hit] = by_id["correct"].to_numpy(dtype=np.float64)[pos[hit]]
    predicted = np.full(len(frame), "", dtype=object)
    predicted[hit] = by_id["predicted_name"].to_numpy()[pos[hit]]
    joined = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    joined = joined.assign(predicted=predicted, correct=correct, **columns)
    return SampleTable(frame=joined, issue_types=table.issue_types, bits=table.bits)


def confusion_matrix(preds: RunPredictions) -> pd.DataFrame:
    """(K, K) counts: rows the true class, columns the predicted one, in the run's order."""
    k = len(preds.classes)
    cells = preds.frame["label"].to_numpy() * k + preds.frame["predicted"].to_numpy()
    counts = np.bincount(cells, minlength=k * k).reshape(k, k)
    names = list(preds.classes)
    return pd.DataFrame(counts, index=pd.Index(names, name="true"),
                        columns=pd.Index(names, name="predicted"))  # fmt: skip


def confusion_cell(preds: RunPredictions, true: str, predicted: str) -> SampleFilter:
    """The filter keeping exactly the samples of one confusion-matrix cell."""
    f = preds.frame
    ids = f.loc[(f["true_name"] == true) & (f["predicted_name"] == predicted), "sample_id"]
    return SampleFilter(sample_ids=tuple(int(i) for i in ids) or (-1,))  # -1: an empty cell


def class_accuracy(preds: RunPredictions) -> pd.DataFrame:
    """Per true class: n, accuracy, mean loss, and the class it is most often mistaken for."""
    f = preds.frame
    rows = []
    for name, group in f.groupby("true_name", sort=False):
        wrong = group.loc[~group["correct"], "predicted_name"]
        rows.append({"class": name, "n": len(group), "accuracy": float(group["correct"].mean()),
                     "loss": float(group["loss"].mean()),
                     "mistaken_for": wrong.mode().iloc[0] if len(wrong) else ""})  # fmt: skip
    order = {c: i for i, c in enumerate(preds.classes)}
    out = pd.DataFrame(rows)
    return out.sort_values("class", key=lambda s: s.map(order)).reset_index(drop=True)


def full_probabilities(preds: RunPredictions) -> np.ndarray:
    """(N, K) probabilities rebuilt from the stored top-k and p(label): exact where stored,
    the remaining mass spread evenly over the other classes (all below the k-th; with K <= 5
    it is exact). What confident learning needs: p(given label) is always exact."""
    f, k = preds.frame, len(preds.classes)
    probs = np.full((len(f), k), np.nan)
    rows = np.arange(len(f))
    n_top = sum(c.endswith("_class") for c in f.columns)
    for i in range(1, n_top + 1):
        probs[rows, f[f"top{i}_class"].to_numpy()] = f[f"top{i}_prob"].to_numpy()
    probs[rows, f["label"].to_numpy()] = f["p_label"].to_numpy()
    known = np.isfinite(probs)
    rest = np.clip(1 - np.where(known, probs, 0).sum(axis=1), 0, None)
    missing = (~known).sum(axis=1)
    fill = np.divide(rest, missing, out=np.zeros(len(f)), where=missing > 0)
    probs = np.where(known, probs, fill[:, None])
    out: np.ndarray = probs / probs.sum(axis=1, keepdims=True)
    return out


def run_label_issues(index_table: pd.DataFrame, preds: RunPredictions) -> LabelIssueResult:
    """Confident learning on the run's out-of-sample (validation) probabilities: label issues
    among the samples the run evaluated, by a real model instead of the scan's baselines."""
    ids = preds.frame["sample_id"].to_numpy()
    return find_label_issues_from_probs(index_table, ids, full_probabilities(preds), preds.classes)


def merge_label_issues(
    issues: pd.DataFrame, run: LabelIssueResult, index_table: pd.DataFrame
) -> pd.DataFrame:
    """`issues` (a scan's) with its label_issue and overlapping_classes rows replaced by the
    run's for the samples the run scored; the scan's own rows stay for the rest. Adds
    `signal`: "scan" | "run"."""
    scored = run.scores.loc[run.scores["scored"], "sample_id"]
    own = issues["issue"].isin((IssueType.LABEL_ISSUE.value, IssueType.OVERLAPPING_CLASSES.value))
    keep = issues[~own | ~issues["sample_id"].isin(scored)].assign(signal="scan")
    meta = index_table.set_index("sample_id")
    extra = run.issues.assign(
        path=run.issues["sample_id"].map(meta["path"]),
        label=run.issues["sample_id"].map(meta["label"]),
        signal="run",
    )
    return pd.concat([keep, extra.reindex(columns=keep.columns)], ignore_index=True)
