"""The run directory: the single source of truth for a training run.

    <workspace>/runs/<run_id>/
      config.json        the config the run was started with (written once)
      status.json        state, stage, error, pid, host, device, times, step (replaced atomically)
      job.json           executor bookkeeping: who launched the process (jobs only)
      metrics.jsonl      append-only rows: step, split, loss, accuracy, lr, images_per_s, wall_time
      dynamics.jsonl     append-only rows: step, probs (P, C) on the fixed probe batch
      probe.npz          the probe batch, stored once: sample_ids, labels, inputs, images, classes
      insides.jsonl      append-only rows: step, layer, activation/dead/saturated/grad/update stats
      insides/first_layer_SSSSSSS.npz  first-layer weights at step S (see runs/insides.py)
      batches/batch_000.npz  the first input batches exactly as fed to model(x)
      checkpoints/last.pt, best.pt
      predictions/       every val sample's prediction per evaluation: index.json, first/best/
                         recent_<i>.parquet in full, per_class.csv for all (predictions.py)
      data.json          classes, train/val sizes, where val came from, mean/std, skipped count
      skipped.csv        dataset files that did not decode (path, error, split)
      log.txt            the job's stdout and stderr

Every byte goes through `RunFiles` (files.py). Shared storage (an fsspec URL such as
s3://bucket/runs, storage.py) keeps this format and this code: a job writes a local staging
copy that jobs/mirror.py uploads as whole objects; readers read a local cache copy that mirror.py
refreshes. The package was runs.py; it was split by side (files / writer / reader) to keep each
module small.
"""

from __future__ import annotations

from recipe_core.runs.files import JsonlTail, RunFiles, new_run_id, now_iso
from recipe_core.runs.mirror import read_status, sync_run, sync_runs
from recipe_core.runs.reader import (
    METRIC_COLUMNS,
    FinishedRuns,
    RunReader,
    find_run,
    list_runs,
    remember_finished,
)
from recipe_core.runs.status import STAGES, STATES, TERMINAL_STATES, RunStatus
from recipe_core.runs.storage import RUNS_URL_ENV, check_runs_url, run_target
from recipe_core.runs.writer import RunWriter

__all__ = [
    "METRIC_COLUMNS",
    "RUNS_URL_ENV",
    "STAGES",
    "STATES",
    "TERMINAL_STATES",
    "FinishedRuns",
    "JsonlTail",
    "RunFiles",
    "RunReader",
    "RunStatus",
    "RunWriter",
    "check_runs_url",
    "find_run",
    "list_runs",
    "new_run_id",
    "now_iso",
    "read_status",
    "remember_finished",
    "run_target",
    "sync_run",
    "sync_runs",
]
