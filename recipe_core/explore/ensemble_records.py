"""The saved ensembles: what an ensemble's evaluation found (typed), its record in the
workspace and the runs that could join one. No torch here: the Home checklist reads these.

    WORKSPACE/ensembles/<id>.json   an EnsembleResult (replaced atomically); the id follows from
                                    the set of runs, so evaluating the same runs replaces it
    WORKSPACE/ensembles/<id>.npz    sample_ids, images: pictures of the samples it singles out
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recipe_core.errors import RecipeError
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunReader, list_runs
from recipe_core.runs.files import read_json_object
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

ENSEMBLES_DIR = "ensembles"  # WORKSPACE/ensembles/<id>.json (+ <id>.npz pictures)
MAX_PICTURES = 64  # singled-out samples whose pictures are kept with the record


@dataclass(frozen=True)
class MemberScore:
    run_id: str
    name: str  # the run's name (preset-model, or the user's)
    checkpoint: str  # "best" | "last": which checkpoint was evaluated
    step: int  # the optimizer step that checkpoint holds
    val_loss: float  # mean cross-entropy on the validation split
    val_accuracy: float


@dataclass(frozen=True)
class SampleOutcome:
    sample_id: int
    label: str  # the true class
    ensemble: str  # the ensemble's prediction
    best: str  # the best single run's prediction
    p_label: float  # the ensemble's probability of the true class
    p_label_best: float  # the best single run's probability of it


@dataclass(frozen=True)
class EnsembleResult:
    ensemble_id: str
    dataset: str  # resolved dataset path every member trained on
    classes: tuple[str, ...]
    members: tuple[MemberScore, ...]  # in the order the runs were given
    val_size: int  # validation samples evaluated
    val_loss: float  # mean -log of the averaged probability of the true class
    val_accuracy: float  # argmax of the averaged probabilities
    only_ensemble_right: tuple[int, ...]  # sample ids the ensemble gets right and no member does
    better_than_best: tuple[SampleOutcome, ...]  # ensemble right, best single run wrong
    worse_than_best: tuple[SampleOutcome, ...]  # best single run right, ensemble wrong
    device: str
    created: str  # ISO-8601 UTC

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(m.run_id for m in self.members)

    @property
    def best(self) -> MemberScore:
        """The member with the lowest validation loss (ties: the earlier one)."""
        return min(self.members, key=lambda m: m.val_loss)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "best_run_id": self.best.run_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleResult:
        def outcomes(key: str) -> tuple[SampleOutcome, ...]:
            return tuple(SampleOutcome(**row) for row in data[key])

        return cls(
            ensemble_id=str(data["ensemble_id"]),
            dataset=str(data["dataset"]),
            classes=tuple(data["classes"]),
            members=tuple(MemberScore(**m) for m in data["members"]),
            val_size=int(data["val_size"]),
            val_loss=float(data["val_loss"]),
            val_accuracy=float(data["val_accuracy"]),
            only_ensemble_right=tuple(int(i) for i in data["only_ensemble_right"]),
            better_than_best=outcomes("better_than_best"),
            worse_than_best=outcomes("worse_than_best"),
            device=str(data["device"]),
            created=str(data["created"]),
        )


@dataclass(frozen=True)
class Candidate:
    run_id: str
    name: str
    model: str
    seed: int
    best_val_loss: float  # lowest val loss the run recorded; nan when it recorded none
    val_size: int  # validation samples (data.json)


def ensemble_candidates(workspace: Workspace, dataset: str | os.PathLike[str]) -> list[Candidate]:
    """The finished built-in runs of `dataset` that could join an ensemble, newest first."""
    root = Path(dataset).expanduser().resolve()
    found = []
    for status in list_runs(workspace):
        folder = workspace.runs / status.run_id
        config, data = (
            read_json_object(folder / "config.json"),
            read_json_object(folder / "data.json"),
        )
        dataset_path = str(config.get("dataset", ""))
        if status.state != JobState.SUCCEEDED or "pipeline" in config or not dataset_path:
            continue
        if Path(dataset_path).expanduser().resolve() != root or "classes" not in data:
            continue
        found.append(Candidate(status.run_id, status.name, str(config.get("model", "?")),
                               int(config.get("seed", 0)), _best_val_loss(folder),
                               int(data.get("val_size", 0))))  # fmt: skip
    return found


def _best_val_loss(folder: Path) -> float:
    try:
        metrics = RunReader(folder).metrics()
    except (RecipeError, OSError, ValueError):
        return math.nan
    values = metrics.loc[metrics["split"] == "val", "loss"].dropna()
    return float(values.min()) if len(values) else math.nan


def ensemble_id(run_ids: list[str] | tuple[str, ...]) -> str:
    """The record's id: the same set of runs (in any order) always gives the same id."""
    return hashlib.sha1(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def save_ensemble(
    workspace: Workspace, result: EnsembleResult, *, pictures: np.ndarray, sample_ids: np.ndarray
) -> Path:
    """Write <id>.json (replaced atomically) and <id>.npz: the pictures (K, H, W[, C]) uint8
    of the samples the result singles out, as the first member saw them."""
    folder = workspace.subdir(ENSEMBLES_DIR)
    wanted = [*result.only_ensemble_right, *(o.sample_id for o in result.better_than_best),
              *(o.sample_id for o in result.worse_than_best)]  # fmt: skip
    keep = list(dict.fromkeys(wanted))[:MAX_PICTURES]
    position = {int(s): i for i, s in enumerate(sample_ids)}
    chosen = pictures[[position[s] for s in keep]] if keep else pictures[:0]
    _replace(folder / f"{result.ensemble_id}.npz", lambda f: np.savez(f, sample_ids=np.array(
        keep, dtype=np.int64), images=chosen))  # fmt: skip
    text = json.dumps(result.to_dict(), indent=2)
    _replace(folder / f"{result.ensemble_id}.json", lambda f: f.write(text.encode()))
    log.info("Ensemble %s of %s saved in %s", result.ensemble_id, result.run_ids, folder)
    return folder / f"{result.ensemble_id}.json"


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        write(handle)
    os.replace(tmp, path)


def list_ensembles(workspace: Workspace) -> list[EnsembleResult]:
    """Every readable saved ensemble, newest first (an unreadable record is skipped, logged)."""
    folder = workspace.root / ENSEMBLES_DIR
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(EnsembleResult.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Skipping unreadable ensemble record %s: %s", path, exc)
    return sorted(found, key=lambda r: r.created, reverse=True)


def find_ensemble(
    workspace: Workspace, run_ids: list[str] | tuple[str, ...]
) -> EnsembleResult | None:
    """The saved ensemble of exactly these runs (full ids, any order), or None."""
    path = workspace.root / ENSEMBLES_DIR / f"{ensemble_id(run_ids)}.json"
    try:
        return EnsembleResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensemble_pictures(workspace: Workspace, result: EnsembleResult) -> dict[int, np.ndarray]:
    """sample id -> its picture (H, W[, C]) uint8 for the samples the result singles out ({}
    when the pictures file is missing)."""
    path = workspace.root / ENSEMBLES_DIR / f"{result.ensemble_id}.npz"
    try:
        with np.load(path) as data:
            return {int(s): img for s, img in zip(data["sample_ids"], data["images"], strict=True)}
    except (OSError, ValueError, KeyError):
        return {}


def stale_members(workspace: Workspace, result: EnsembleResult) -> list[str]:
    """Members whose checkpoints changed after the record was written (a run left training
    since): the record no longer describes them, evaluate again."""
    record = workspace.root / ENSEMBLES_DIR / f"{result.ensemble_id}.json"
    try:
        written = record.stat().st_mtime
    except OSError:
        return []
    changed = []
    for member in result.members:
        folder = workspace.runs / member.run_id / "checkpoints"
        stamps = [p.stat().st_mtime for p in folder.glob("*.pt")] if folder.is_dir() else []
        if any(stamp > written for stamp in stamps):
            changed.append(member.run_id)
    return changed
