"""Ensembles (the recipe's "squeeze out the juice"): average the softmax probabilities of 2-5
finished runs on their shared validation split and compare with the best single run.

    result = evaluate_ensemble(workspace, ["20260101-...", "20260102-..."])
    result.val_loss, result.best.val_loss      # the ensemble vs its best member
    result.only_ensemble_right                 # sample ids no member gets right on its own

The recorded per-sample predictions keep only the top-k probabilities, so each run's checkpoint
(best.pt, else last.pt) is evaluated again on the validation split, each with its own image
size and normalisation. The result is saved as WORKSPACE/ensembles/<id>.json (the id follows
from the set of runs, so evaluating the same runs again replaces it), with the pictures of
the samples it singles out in <id>.npz: the Home checklist and the Ensembles page read those.

It lives in explore/ (not train/ or dynamics/) because it is a workspace service over several
runs that writes a workspace record, like curation's decision log; evaluating uses train/.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_core.errors import ConfigError, RecipeError
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunReader, list_runs
from recipe_core.runs.files import now_iso
from recipe_core.workspace import Workspace

if TYPE_CHECKING:  # evaluating loads torch; the Home checklist only reads the records
    from recipe_core.explore.ensemble_eval import MemberOutput

log = logging.getLogger(__name__)

ENSEMBLES_DIR = "ensembles"  # WORKSPACE/ensembles/<id>.json (+ <id>.npz pictures)
MIN_RUNS, MAX_RUNS = 2, 5
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
        config, data = _read_json(folder / "config.json"), _read_json(folder / "data.json")
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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ensemble_id(run_ids: list[str] | tuple[str, ...]) -> str:
    """The record's id: the same set of runs (in any order) always gives the same id."""
    return hashlib.sha1(",".join(sorted(run_ids)).encode()).hexdigest()[:12]


def evaluate_ensemble(
    workspace: Workspace, run_ids: list[str] | tuple[str, ...], *, device: str = "auto",
    save: bool = True,
) -> EnsembleResult:  # fmt: skip
    """Evaluate the ensemble of `run_ids` (ids or unique prefixes, 2 to 5 finished built-in
    runs of one dataset and validation split) on `device`; save it in the workspace unless
    `save` is False. Raises a RecipeError naming the fix when the runs cannot be ensembled."""
    if not MIN_RUNS <= len(run_ids) <= MAX_RUNS:
        raise ConfigError(
            f"An ensemble takes {MIN_RUNS} to {MAX_RUNS} runs, got {len(run_ids)}. "
            "Pick between 2 and 5 finished runs of one dataset."
        )
    from recipe_core.explore.ensemble_eval import evaluate_members

    outputs, labels, sample_ids, pictures, used = evaluate_members(workspace, run_ids, device)
    result = combine_outputs(outputs, labels, sample_ids, device=used)
    if save:
        save_ensemble(workspace, result, pictures=pictures, sample_ids=sample_ids)
    return result


def combine_outputs(
    outputs: list[MemberOutput], labels: np.ndarray, sample_ids: np.ndarray, *, device: str
) -> EnsembleResult:
    """The ensemble of members' log-probabilities `outputs[i].log_probs` (N, C) over the same
    samples (`labels` (N,) class indices, `sample_ids` (N,)): the mean of the probabilities,
    computed as logsumexp(log p_i) - log M so that tiny probabilities do not underflow."""
    first = outputs[0]
    stacked = np.stack([o.log_probs for o in outputs])  # (M, N, C) float64
    top = stacked.max(axis=0)
    log_mean = top + np.log(np.exp(stacked - top).mean(axis=0))  # (N, C)
    rows = np.arange(len(labels))
    ens_pred = log_mean.argmax(axis=1)
    member_right = np.stack([o.log_probs.argmax(axis=1) == labels for o in outputs])  # (M, N)
    ens_right = ens_pred == labels
    members = tuple(_score(o, labels) for o in outputs)
    best_i = min(range(len(members)), key=lambda i: members[i].val_loss)
    best = outputs[best_i].log_probs
    best_pred = best.argmax(axis=1)

    def outcome(i: int) -> SampleOutcome:
        return SampleOutcome(
            sample_id=int(sample_ids[i]), label=first.classes[labels[i]],
            ensemble=first.classes[ens_pred[i]], best=first.classes[best_pred[i]],
            p_label=float(np.exp(log_mean[i, labels[i]])),
            p_label_best=float(np.exp(best[i, labels[i]])),
        )  # fmt: skip

    better = np.flatnonzero(ens_right & ~member_right[best_i])
    worse = np.flatnonzero(~ens_right & member_right[best_i])
    return EnsembleResult(
        ensemble_id=ensemble_id([o.run_id for o in outputs]),
        dataset=first.dataset,
        classes=first.classes,
        members=members,
        val_size=len(labels),
        val_loss=float(-log_mean[rows, labels].mean()),
        val_accuracy=float(ens_right.mean()),
        only_ensemble_right=tuple(int(s) for s in sample_ids[ens_right & ~member_right.any(0)]),
        better_than_best=tuple(outcome(int(i)) for i in better),
        worse_than_best=tuple(outcome(int(i)) for i in worse),
        device=device,
        created=now_iso(),
    )


def _score(output: MemberOutput, labels: np.ndarray) -> MemberScore:
    rows = np.arange(len(labels))
    return MemberScore(
        run_id=output.run_id, name=output.name, checkpoint=output.checkpoint, step=output.step,
        val_loss=float(-output.log_probs[rows, labels].mean()),
        val_accuracy=float((output.log_probs.argmax(axis=1) == labels).mean()),
    )  # fmt: skip


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
