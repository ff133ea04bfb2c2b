"""Leave it training: continue a finished or cancelled run from its checkpoint, in the same run.

The weights, the optimizer's state (Adam's moments) and the LR schedule's position come back
from `checkpoints/last.pt`, so the loss right after the resume is the loss before it, and the
curves continue: the first resumed step is the checkpoint's step, so metrics.jsonl's steps keep
increasing. A checkpoint written before Recipe saved optimizer state resumes with a fresh
optimizer and says so in the log. Batches continue at the same place in the same seeded order
(see `skip_batches`), so on the CPU a resumed run repeats an uninterrupted one's losses; a cosine
schedule is stretched to the new total number of steps, and augmentation draws restart.

`resume.json` in the run records each continuation ({from_step, more, steps, at, optimizer}),
and, while a job waits to start, the pending request (see jobs/resume.py).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from recipe_core.errors import ConfigError, RunError
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunWriter
from recipe_core.runs.files import now_iso, read_json_object
from recipe_core.train.config import TrainConfig
from recipe_core.train.data import Batcher
from recipe_core.train.loop import Callback, Loop
from recipe_core.train.run import Restore, TrainResult, run_training

log = logging.getLogger(__name__)

RESUME_FILE = "resume.json"
CHECKPOINT = "checkpoints/last.pt"
RESUMABLE = (JobState.SUCCEEDED, JobState.CANCELLED)


@dataclass(frozen=True)
class ResumePlan:
    config: TrainConfig  # the run's config with steps = from_step + more
    from_step: int  # optimizer steps the checkpoint holds
    more: int  # steps to add
    state: Mapping[str, Any] = field(repr=False)  # checkpoints/last.pt, loaded once


def plan_resume(run_dir: Path, more: int, *, submitted: bool = False) -> ResumePlan:
    """Check that `run_dir` can be left training for `more` steps; raise a RecipeError naming
    the fix otherwise (still running, failed, a pipeline run, no checkpoint). `submitted`: the
    job of a resume request (jobs/resume.py), which left the run queued (and which marks it
    running, stage "starting", as its process starts: jobs/train_job.py)."""
    if isinstance(more, bool) or not isinstance(more, int) or more < 1:
        raise ConfigError(f"Steps to add must be an integer >= 1, got {more!r} (--steps N).")
    writer = RunWriter(run_dir)
    status = writer.status()
    mine = submitted and status.state in (JobState.QUEUED, JobState.RUNNING)
    if status.state not in RESUMABLE and not mine:
        raise RunError(
            f"Run {status.run_id} is {status.state}: only a succeeded or cancelled run can be "
            "left training. Wait for it to end (or cancel it) first; a failed run needs its "
            "cause fixed and a new run."
        )
    config = _run_config(Path(run_dir))
    state = load_checkpoint(Path(run_dir))
    step = int(state.get("step", 0))
    return ResumePlan(config=replace(config, steps=step + more), from_step=step, more=more,
                      state=state)  # fmt: skip


def _run_config(run_dir: Path) -> TrainConfig:
    data = json.loads((run_dir / "config.json").read_text())
    if "pipeline" in data:
        raise ConfigError(
            f"Run {run_dir.name} trained your pipeline ({data['pipeline']}); resuming works for "
            "built-in runs only. Start a new pipeline run with more --steps."
        )
    return TrainConfig.from_dict(data)


def load_checkpoint(run_dir: Path, name: str = "last") -> dict[str, Any]:
    """A run's checkpoint as saved by Loop.checkpoint (tensors on the CPU)."""
    path = Path(run_dir) / "checkpoints" / f"{name}.pt"
    if not path.is_file():
        raise RunError(
            f"Run {Path(run_dir).name} has no checkpoint ({path}): it ended before its first "
            "checkpoint was written. Start a new run (set checkpoint_every to save one "
            "periodically)."
        )
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def resume(
    run_dir: Path, more: int, *, callbacks: Sequence[Callback] = (), submitted: bool = False
) -> TrainResult:
    """Train the run in `run_dir` for `more` steps from its checkpoint, in this process; its
    status goes back to running and ends in a terminal state again."""
    plan = plan_resume(Path(run_dir), more, submitted=submitted)
    writer = RunWriter(Path(run_dir))
    writer.write_json("config.json", plan.config.to_dict())  # the progress bar's new limit
    record_resume(writer, plan, optimizer=plan.state.get("optimizer") is not None)
    writer.update_status(state=JobState.QUEUED, error="", ended="")  # `finish` may end it again
    log.info("Resuming run %s at step %d for %d more steps", writer.run_id, plan.from_step, more)
    return run_training(plan.config, writer, tuple(callbacks), restore=restorer(plan))


def record_resume(writer: RunWriter, plan: ResumePlan, *, optimizer: bool) -> None:
    """Append this continuation to resume.json's history and clear a pending request."""
    record = read_resume(writer.run_dir)
    history = [*record.get("history", []), {
        "from_step": plan.from_step, "more": plan.more, "steps": plan.config.steps,
        "at": now_iso(), "optimizer": "restored" if optimizer else "fresh",
    }]  # fmt: skip
    kept = {k: v for k, v in record.items() if k != "pending"}
    writer.write_json(RESUME_FILE, {**kept, "history": history})


def read_resume(run_dir: Path) -> dict[str, Any]:
    """The run's resume.json ({} when it was never resumed)."""
    return read_json_object(Path(run_dir) / RESUME_FILE)


def skip_batches(batches: Batcher, steps: int) -> None:
    """Move `batches` to where an uninterrupted run would be after `steps` batches: the same
    seeded permutations, the same position in the current one (a few randperm calls, no data
    work). Without it the resumed run would replay its first epoch's order."""
    per_epoch = len(batches.labels) // batches.batch_size
    for _ in range(steps // per_epoch + 1):
        batches._new_epoch()  # the Batcher's own epoch rule, not a copy of it
    batches.cursor = (steps % per_epoch) * batches.batch_size


def restorer(plan: ResumePlan) -> Restore:
    """What `run_training` calls on the freshly built loop: load the weights, the optimizer and
    schedule state, the step and the best val loss so far (early stopping counts afresh)."""

    state = plan.state

    def restore(loop: Loop) -> None:
        loop.model.load_state_dict(state["model"])
        if state.get("optimizer") is None:
            log.warning(
                "The checkpoint has no optimizer state (written before Recipe saved it): "
                "resuming with a fresh %s optimizer, so the first steps may jump.",
                plan.config.optimizer,
            )
        else:
            loop.optimizer.load_state_dict(state["optimizer"])
        if loop.schedule is not None and state.get("schedule") is not None:
            loop.schedule.load_state_dict(state["schedule"])
        loop.start_step = loop.done = plan.from_step
        skip_batches(loop.batches, plan.from_step)
        best = state.get("best_val_loss")
        if isinstance(best, float) and math.isfinite(best):
            loop.best_val, loop.best_step = best, int(state.get("best_step", -1))

    return restore
