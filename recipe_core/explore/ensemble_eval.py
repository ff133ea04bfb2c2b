"""The members of an ensemble, evaluated again: each run's checkpoint rebuilt from its config
(as train/run.py builds it) and run over its validation split, exactly as it saw it.

Checked before any forward pass, each refusal naming the fix: every run finished, is a
built-in run, trained on the same dataset with the same classes, and validated on the same
samples (a dataset without a val/ split holds out a seeded fraction of train, so runs with
other seeds or val fractions validate on other samples).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recipe_core.data import open_dataset
from recipe_core.errors import ConfigError, RecipeError, RunError
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunReader, find_run
from recipe_core.train.config import TrainConfig
from recipe_core.train.data import VAL_SPLITS, Batcher, TrainData, load_train_data
from recipe_core.train.device import resolve_device
from recipe_core.train.loop import EVAL_CHUNK
from recipe_core.train.resume import load_checkpoint
from recipe_core.train.setup import build_train_model
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

CHECKPOINTS = ("best", "last")  # the best validation loss first; last when a run never had one


@dataclass(frozen=True)
class MemberOutput:
    run_id: str
    name: str
    dataset: str  # resolved dataset path
    classes: tuple[str, ...]
    checkpoint: str  # "best" | "last"
    step: int  # the checkpoint's optimizer step
    log_probs: np.ndarray  # (N, C) float64 log-softmax over the validation split


@dataclass(frozen=True)
class _Member:
    run_id: str
    name: str
    folder: Path
    config: TrainConfig
    classes: tuple[str, ...]


Members = tuple[list[MemberOutput], np.ndarray, np.ndarray, np.ndarray, str]


def evaluate_members(
    workspace: Workspace, run_ids: list[str] | tuple[str, ...], device: str
) -> Members:
    """(outputs, labels (N,), sample_ids (N,), pictures (N, H, W[, C]) uint8 as the first
    member saw them, the device used). Raises a RecipeError naming the fix."""
    members = _check_members([_member(find_run(workspace, r)) for r in run_ids])
    torch_device = resolve_device(device)
    decoded: dict[tuple[Any, ...], TrainData] = {}
    outputs, reference = [], None
    for member in members:
        data = _val_data(member.config, decoded)
        if reference is None:
            reference = (member, data)
        else:
            _check_same_samples(reference[0], reference[1], member, data)
        outputs.append(_evaluate(member, data, torch_device))
    assert reference is not None  # _check_members refuses an empty list
    val = reference[1].val
    labels, sample_ids = val.labels.numpy(), np.asarray(val.sample_ids, dtype=np.int64)
    return outputs, labels, sample_ids, _pictures(val.images), str(torch_device)


def _member(folder: Path) -> _Member:
    reader = RunReader(folder)
    status = reader.status()
    if status.state != JobState.SUCCEEDED:
        raise RunError(
            f"Run {status.run_id} is {status.state}: only finished (succeeded) runs can join an "
            "ensemble. Wait for it to finish, or pick another run (`recipe runs list`)."
        )
    raw = reader.config()
    if "pipeline" in raw:
        raise ConfigError(
            f"Run {status.run_id} trained your pipeline ({raw['pipeline']}); ensembles work on "
            "built-in runs (recipe train DATASET). Pick built-in runs."
        )
    try:
        classes = tuple(json.loads(reader.files.read_bytes("data.json"))["classes"])
    except (RecipeError, OSError, ValueError, KeyError) as exc:
        raise RunError(
            f"Run {status.run_id} has no readable data.json ({exc}), so its classes are "
            "unknown. Pick another run, or train it again."
        ) from exc
    return _Member(status.run_id, status.name, Path(folder), TrainConfig.from_dict(raw), classes)


def _check_members(members: list[_Member]) -> list[_Member]:
    ids = [m.run_id for m in members]
    twice = sorted({r for r in ids if ids.count(r) > 1})
    if twice:
        raise ConfigError(f"Run(s) {twice} are listed twice. Give each run once.")
    first = members[0]
    for other in members[1:]:
        mine, theirs = _resolved(first.config.dataset), _resolved(other.config.dataset)
        if mine != theirs:
            raise ConfigError(
                f"Runs {first.run_id} and {other.run_id} trained on different datasets "
                f"({mine} vs {theirs}): an ensemble averages predictions on one validation "
                "split. Pick runs of one dataset."
            )
        if first.classes != other.classes:
            raise ConfigError(
                f"Runs {first.run_id} and {other.run_id} have different classes "
                f"({list(first.classes)} vs {list(other.classes)}): the dataset changed between "
                "them. Pick runs trained on the same version of the dataset."
            )
    return members


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _val_data(config: TrainConfig, decoded: dict[tuple[Any, ...], TrainData]) -> TrainData:
    """The run's data as train/run.py loads it, decoded once per distinct (image size, split)."""
    key: tuple[Any, ...] = (_resolved(config.dataset), config.image_size)
    splits = set(open_dataset(config.dataset).splits)
    if not any(s in splits for s in VAL_SPLITS):  # held out of train: seed and fraction matter
        key = (*key, config.val_fraction, config.seed)
    if key not in decoded:
        decoded[key] = load_train_data(
            config.dataset, image_size=config.image_size, seed=config.seed,
            val_fraction=config.val_fraction,
        )  # fmt: skip
    return decoded[key]


def _check_same_samples(first: _Member, mine: TrainData, other: _Member, theirs: TrainData) -> None:
    same = np.array_equal(mine.val.sample_ids, theirs.val.sample_ids) and torch.equal(
        mine.val.labels, theirs.val.labels
    )
    if not same:
        a, b = first.config, other.config
        raise ConfigError(
            f"Runs {first.run_id} and {other.run_id} validate on different samples: the dataset "
            f"has no val/ split, so each run held out val_fraction of train with its seed "
            f"(val_fraction {a.val_fraction}, seed {a.seed} vs val_fraction {b.val_fraction}, "
            f"seed {b.seed}). Ensemble runs with the same seed and val_fraction, or give the "
            "dataset a val/ split."
        )


def _checkpoint(member: _Member) -> tuple[str, dict[str, Any]]:
    for name in CHECKPOINTS:
        if (member.folder / "checkpoints" / f"{name}.pt").is_file():
            return name, load_checkpoint(member.folder, name)
    raise RunError(
        f"Run {member.run_id} has no checkpoint (checkpoints/best.pt or last.pt): it ended "
        "before one was written. Train it again, or pick another run."
    )


@torch.no_grad()
def _evaluate(member: _Member, data: TrainData, device: torch.device) -> MemberOutput:
    """The checkpoint's log-softmax (N, C) on the validation split, in float32 on `device`."""
    name, state = _checkpoint(member)
    config = member.config
    with torch.random.fork_rng(devices=[]):  # building seeds torch: keep the caller's RNG
        model = build_train_model(config, in_channels=data.train.channels,
                                  labels=data.train.labels,
                                  num_classes=len(member.classes))  # fmt: skip
    model.load_state_dict(state["model"])
    model.to(device).eval()
    mean, std = state.get("mean", data.mean), state.get("std", data.std)  # the run's own stats
    val = Batcher(data.val, mean=tuple(mean), std=tuple(std), batch_size=EVAL_CHUNK,
                  device=device, seed=config.seed, zero_inputs=config.zero_inputs)  # fmt: skip
    chunks = []
    for start in range(0, len(data.val), EVAL_CHUNK):
        x = val.prepare(val.images[start : start + EVAL_CHUNK])  # (B, C, H, W) normalised
        chunks.append(F.log_softmax(model(x).float(), dim=1).double().cpu())
    log.info("Run %s: evaluated its %s checkpoint (step %s) on %d val samples", member.run_id,
             name, state.get("step"), len(data.val))  # fmt: skip
    return MemberOutput(
        run_id=member.run_id, name=member.name, dataset=_resolved(config.dataset),
        classes=member.classes, checkpoint=name, step=int(state.get("step", 0)),
        log_probs=torch.cat(chunks).numpy(),
    )  # fmt: skip


def _pictures(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, H, W) for one channel, (N, H, W, C) otherwise."""
    array = images.cpu().numpy()
    return array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)
