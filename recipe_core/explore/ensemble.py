"""Ensembles (the recipe's "squeeze out the juice"): average the softmax probabilities of 2-5
finished runs on their shared validation split and compare with the best single run.

    result = evaluate_ensemble(workspace, ["20260101-...", "20260102-..."])
    result.val_loss, result.best.val_loss      # the ensemble vs its best member
    result.only_ensemble_right                 # sample ids no member gets right on its own

The recorded per-sample predictions keep only the top-k probabilities, so each run's checkpoint
(best.pt, else last.pt) is evaluated again on the validation split, each with its own image
size and normalisation (ensemble_eval.py). The result is saved in the workspace
(ensemble_records.py), where the Home checklist and the Ensembles page read it.

It lives in explore/ (not train/ or dynamics/) because it is a workspace service over several
runs that writes a workspace record, like curation's decision log; evaluating uses train/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recipe_core.errors import ConfigError
from recipe_core.explore.ensemble_records import (
    Candidate,
    EnsembleResult,
    MemberScore,
    SampleOutcome,
    ensemble_candidates,
    ensemble_id,
    ensemble_pictures,
    find_ensemble,
    list_ensembles,
    save_ensemble,
    stale_members,
)
from recipe_core.runs.files import now_iso
from recipe_core.workspace import Workspace

if TYPE_CHECKING:  # evaluating loads torch; importing this module does not
    from recipe_core.explore.ensemble_eval import MemberOutput

MIN_RUNS, MAX_RUNS = 2, 5

__all__ = [
    "MAX_RUNS",
    "MIN_RUNS",
    "Candidate",
    "EnsembleResult",
    "MemberScore",
    "SampleOutcome",
    "combine_outputs",
    "ensemble_candidates",
    "ensemble_pictures",
    "evaluate_ensemble",
    "find_ensemble",
    "list_ensembles",
    "stale_members",
]


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
