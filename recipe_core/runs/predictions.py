"""Per-sample predictions of a run on its validation split, bounded, keyed by sample_id:

    predictions/index.json       which evaluation steps are kept in full and in which file:
                                 {"version", "ids", "top_k", "evals", "first", "best",
                                  "best_loss", "recent", "slots": {file: step}}
    predictions/first.parquet    the first evaluation, one row per sample (PREDICTION_COLUMNS)
    predictions/best.parquet     the evaluation with the lowest mean loss so far
    predictions/recent_<i>.parquet   the last RECENT evaluations, a ring of slots
    predictions/per_class.csv    every evaluation summarised: step, label, n, accuracy, loss

Slots are rewritten in place (never deleted), so a mirrored run uploads whole objects and a
reader sees either the old or the new file. `ids` says what `sample_id` means: "sample_id"
(the scan's stable id, built-in runs and scripts that pass them) or "position" (the index of
the sample in the val loader's order, pipeline runs whose loader yields no ids).
The writing and reading halves of the format live here together so they cannot drift apart.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recipe_core.errors import RunError
from recipe_core.runs.files import RunFiles

FOLDER = "predictions"
INDEX = f"{FOLDER}/index.json"
PER_CLASS = f"{FOLDER}/per_class.csv"
RECENT = 3  # last evaluations kept in full besides the first and the best
MAX_TOP_K = 5
BASE_COLUMNS = ("sample_id", "step", "label", "predicted", "correct", "loss", "confidence",
                "p_label", "margin")  # fmt: skip
PER_CLASS_COLUMNS = ("step", "label", "n", "accuracy", "loss")


def top_columns(k: int) -> list[str]:
    """top1_class..topk_class, then top1_prob..topk_prob."""
    return [f"top{i}_class" for i in range(1, k + 1)] + [f"top{i}_prob" for i in range(1, k + 1)]


@dataclass
class PredictionIndex:
    """What index.json records; `slots` maps each parquet file to the step it holds now."""

    ids: str = "sample_id"  # "sample_id" | "position"
    top_k: int = 0
    evals: int = 0  # evaluations recorded so far (in full or only summarised)
    first: int = -1
    best: int = -1
    best_loss: float = float("inf")
    recent: list[int] = field(default_factory=list)  # steps, oldest first, at most RECENT
    slots: dict[str, int] = field(default_factory=dict)

    @property
    def files(self) -> dict[int, str]:
        """Each kept step's file (a step kept in two slots, e.g. first and best: either)."""
        return {step: name for name, step in sorted(self.slots.items())}

    def to_json(self) -> bytes:
        data: dict[str, Any] = {"version": 1, **self.__dict__}
        data["best_loss"] = None if not np.isfinite(self.best_loss) else self.best_loss
        return json.dumps(data, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PredictionIndex:
        data = json.loads(raw)
        best_loss = data.get("best_loss")
        return cls(ids=str(data.get("ids", "sample_id")), top_k=int(data["top_k"]),
                   evals=int(data["evals"]), first=int(data["first"]), best=int(data["best"]),
                   best_loss=float("inf") if best_loss is None else float(best_loss),
                   recent=[int(s) for s in data["recent"]],
                   slots={str(k): int(v) for k, v in data["slots"].items()})  # fmt: skip


class PredictionStore:
    """The writing side: `add(frame)` once per evaluation. A resumed run continues the files
    its first process wrote (the index is read back), so its history stays one history."""

    def __init__(self, files: RunFiles, *, ids: str = "sample_id") -> None:
        self.files = files
        self.index = read_index(files) or PredictionIndex(ids=ids)
        self.per_class = read_per_class(files)

    def add(self, frame: pd.DataFrame) -> None:
        """`frame`: one evaluation, PREDICTION columns (see `prediction_frame`), one step."""
        step, loss = int(frame["step"].iloc[0]), float(frame["loss"].mean())
        data = _parquet(frame)
        ix = self.index
        ix.top_k = max(ix.top_k, sum(c.endswith("_class") for c in frame.columns))
        if ix.first < 0:
            ix.first = step
            self._put("first", step, data)
        else:
            self._put(f"recent_{(ix.evals - 1) % RECENT}", step, data)
            ix.recent = [*ix.recent, step][-RECENT:]
        if loss < ix.best_loss:
            ix.best, ix.best_loss = step, loss
            self._put("best", step, data)
        ix.evals += 1
        parts = [p for p in (self.per_class, summarise(frame)) if len(p)]
        self.per_class = pd.concat(parts, ignore_index=True)
        self.files.write_atomic(PER_CLASS, self.per_class.to_csv(index=False).encode())
        self.files.write_atomic(INDEX, ix.to_json())

    def _put(self, slot: str, step: int, data: bytes) -> None:
        name = f"{FOLDER}/{slot}.parquet"
        self.files.path(FOLDER).mkdir(exist_ok=True)
        self.files.write_atomic(name, data)
        self.index.slots[name] = step


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per true class of one evaluation: n, accuracy, mean loss (what older steps keep)."""
    grouped = frame.groupby("label", sort=True)
    out = pd.DataFrame({"n": grouped.size(), "accuracy": grouped["correct"].mean(),
                        "loss": grouped["loss"].mean()}).reset_index()  # fmt: skip
    out.insert(0, "step", int(frame["step"].iloc[0]))
    return out[list(PER_CLASS_COLUMNS)]


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# --- reading ----------------------------------------------------------------------------------


def read_index(files: RunFiles) -> PredictionIndex | None:
    """The index, None when the run recorded no per-sample predictions (yet)."""
    if not files.exists(INDEX):
        return None
    try:
        return PredictionIndex.from_json(files.read_bytes(INDEX))
    except (ValueError, KeyError, TypeError) as error:
        raise RunError(f"{files.path(INDEX)} is unreadable ({error}); rerun the run.") from error


def read_per_class(files: RunFiles) -> pd.DataFrame:
    if not files.exists(PER_CLASS):
        kinds = ("int64", "int64", "int64", "float64", "float64")
        pairs = zip(PER_CLASS_COLUMNS, kinds, strict=True)
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in pairs})
    return pd.read_csv(io.BytesIO(files.read_bytes(PER_CLASS)))


def prediction_steps(files: RunFiles) -> list[int]:
    """Steps whose predictions are kept in full, ascending."""
    index = read_index(files)
    return sorted(index.files) if index is not None else []


def read_predictions(files: RunFiles, step: int | None = None) -> pd.DataFrame:
    """One evaluation's predictions, a row per sample; `step=None`: the latest kept."""
    steps = prediction_steps(files)
    if not steps:
        raise RunError(
            f"Run {files.root.name} has no per-sample predictions: it ran no evaluation on a "
            "validation split yet (or is older than this feature). Train with a val split."
        )
    step = steps[-1] if step is None else int(step)
    if step not in steps:
        raise RunError(f"Step {step} is not kept in full in run {files.root.name}; kept: {steps}.")
    index = read_index(files)
    assert index is not None  # steps were found in it just now
    frame = pd.read_parquet(io.BytesIO(files.read_bytes(index.files[step])))
    if int(frame["step"].iloc[0]) != step:  # the slot was rewritten between the two reads
        return read_predictions(files, None)
    return frame


def prediction_history(files: RunFiles, sample_id: int) -> pd.DataFrame:
    """One sample's row at every kept step, ascending by step (empty when not in val)."""
    parts = [read_predictions(files, s) for s in prediction_steps(files)]
    rows = [p[p["sample_id"] == sample_id] for p in parts]
    if not rows:
        return pd.DataFrame(columns=list(BASE_COLUMNS))
    return pd.concat(rows, ignore_index=True).sort_values("step").reset_index(drop=True)
