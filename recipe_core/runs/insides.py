"""The insides files of a run directory (recorded by train/insides.py):

    insides.jsonl                       append-only, one row per (recorded step, layer):
                                        step, layer, kind, act_mean, act_std, dead, saturated,
                                        grad_norm, weight_norm, update_ratio (null: not applicable)
    insides/first_layer_SSSSSSS.npz     the first layer's weights at step S: weights
                                        (U, C, h, w) float32 (U <= 64), step, layer, kind

Bounded: ~200 bytes per layer and recording (every `insides_every` steps), and at most 64
first-layer snapshots of at most 2M values in all (train/insides.py picks which steps).
The writing and reading halves of the format live here together, so they cannot drift apart.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recipe_core.errors import RunError
from recipe_core.runs.files import NUMBER, JsonlTail, RowSchema, RunFiles

if TYPE_CHECKING:
    from recipe_core.runs.writer import RunWriter

INSIDES_FILE = "insides.jsonl"
FIRST_LAYER_DIR = "insides"
STATS = ("act_mean", "act_std", "dead", "saturated", "grad_norm", "weight_norm", "update_ratio")
INSIDES_ROWS = RowSchema(
    {"step": (int,), "layer": (str,), "kind": (str,)}, {name: NUMBER for name in STATS}
)
COLUMNS = ("step", "layer", "kind", *STATS)


def first_layer_name(step: int) -> str:
    return f"{FIRST_LAYER_DIR}/first_layer_{step:07d}.npz"


def append_insides(writer: RunWriter, rows: Iterable[Mapping[str, Any]]) -> None:
    data = b"".join((json.dumps(dict(r), separators=(",", ":")) + "\n").encode() for r in rows)
    if data:
        writer.files.append(INSIDES_FILE, data)


def write_first_layer(
    writer: RunWriter, *, step: int, layer: str, kind: str, weights: np.ndarray
) -> None:
    """`weights` (U, C, h, w): one image per unit (a conv filter, or a Linear row reshaped)."""
    arrays = {"weights": weights.astype(np.float32), "step": np.asarray(step),
              "layer": np.asarray(layer), "kind": np.asarray(kind)}  # fmt: skip
    writer.write_arrays(first_layer_name(step), arrays)


class InsidesTail:
    """Incremental reader of insides.jsonl: each `frame()` reads only the appended bytes."""

    def __init__(self, files: RunFiles) -> None:
        self.files = files
        self.tail = JsonlTail(files, INSIDES_FILE, INSIDES_ROWS)
        self.rows: list[dict[str, Any]] = []

    def frame(self) -> pd.DataFrame:
        """One row per (step, layer), COLUMNS; NaN where a statistic does not apply."""
        self.rows.extend(self.tail.read_new())
        frame = pd.DataFrame(self.rows, columns=list(COLUMNS))
        return frame.astype({name: "float64" for name in STATS} | {"step": "int64"})

    def first_layer_steps(self) -> list[int]:
        """Steps with a first-layer snapshot, ascending ([] when the net has none)."""
        names = self.files.list(FIRST_LAYER_DIR)
        found = [n[len("first_layer_") : -4] for n in names if n.startswith("first_layer_")]
        return sorted(int(s) for s in found if len(s) == 7 and s.isdigit())  # ours only

    def first_layer(self, step: int) -> np.ndarray:
        """(U, C, h, w) float32 first-layer weights at `step`."""
        name = first_layer_name(step)
        if not self.files.exists(name):
            known = self.first_layer_steps()
            none = "none (insides_every=0, or a net whose first layer is no conv/flat Linear)"
            raise RunError(
                f"No first-layer snapshot at step {step} in {self.files.root}. Recorded steps: "
                f"{known[:10] or none}. Pick one of the recorded steps."
            )
        with np.load(io.BytesIO(self.files.read_bytes(name)), allow_pickle=False) as npz:
            return np.asarray(npz["weights"], dtype=np.float32)
