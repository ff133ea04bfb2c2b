"""What a run's insides say (recorded by train/insides.py): warnings per layer, and the first
layer's weights as one picture.

The update-to-weight ratio ||lr * update|| / ||w|| of one step is healthy around 1e-3 (Karpathy,
CS231n): the weights move by a thousandth per step. A layer whose median ratio sits 100x below
(< 1e-5) is effectively frozen (a learning rate too low, or no gradient reaching it); 100x
above (> 1e-1), each step rewrites a tenth of its weights and training is unstable. The band is
wide on purpose: Adam's per-parameter step makes the ratio ~lr / weight scale, which varies by
an order of magnitude between a conv and a BatchNorm of one healthy net.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recipe_core.checks.layers import DEAD, FIXES, SATURATED

if TYPE_CHECKING:
    from recipe_core.runs import RunReader

UPDATE_HEALTHY = 1e-3  # the typical ratio of a net that learns
UPDATE_LOW, UPDATE_HIGH = 1e-5, 1e-1  # 100x either side: frozen / unstable
UPDATE_FIXES = {
    "update_small": "Raise the learning rate, or find why no gradient reaches this layer "
    "(dead or saturated units after it, a detach, a frozen parameter by mistake).",
    "update_large": "Lower the learning rate (or warm it up), clip gradients, or normalise "
    "this layer's inputs.",
}
TILE_GAP = 1  # px between filters in the grid (at tile resolution, before upscaling)


@dataclass(frozen=True)
class InsidesWarning:
    kind: str  # "dead" | "saturated" | "update_small" | "update_large"
    layer: str  # module path, e.g. "2" or "blocks.3.fc"
    step: int  # the first recorded step of the problem (dead/saturated: of its last streak)
    value: float  # share at the last recording (dead/saturated), median ratio (update)
    message: str  # what happened, with the numbers
    fix: str  # what to change


@dataclass(frozen=True)
class Insides:
    frame: pd.DataFrame  # one row per (step, layer): runs/insides.py's COLUMNS
    warnings: list[InsidesWarning]
    first_layer_steps: list[int]  # steps with a first-layer snapshot


def read_insides(reader: RunReader) -> Insides:
    frame = reader.insides()
    return Insides(frame, insides_warnings(frame), reader.first_layer_steps())


def insides_warnings(frame: pd.DataFrame) -> list[InsidesWarning]:
    """Layers whose units are dead or saturated at the last recording (> 50 %, the checks'
    threshold), and layers whose median update ratio leaves [1e-5, 1e-1]; by step."""
    found: list[InsidesWarning] = []
    for layer, rows in frame.sort_values("step").groupby("layer", sort=False):
        found += _share_warnings(str(layer), rows)
        found += _update_warnings(str(layer), rows)
    return sorted(found, key=lambda w: (w.step, w.layer, w.kind))


def _share_warnings(layer: str, rows: pd.DataFrame) -> list[InsidesWarning]:
    out = []
    checks = (("dead", DEAD, "are zero for every sample of the batch"),
              ("saturated", SATURATED, "sit within 1 % of its bounds"))  # fmt: skip
    for kind, limit, what in checks:
        shares = rows[kind].to_numpy(dtype=float)
        if not len(shares) or not shares[-1] > limit:
            continue
        start = _streak_start(shares > limit)
        step, last = int(rows["step"].iloc[start]), int(rows["step"].iloc[-1])
        noun = "units" if kind == "dead" else "outputs"
        message = (f"{shares[-1]:.0%} of the {noun} of {layer} ({rows['kind'].iloc[-1]}) {what}, "
                   f"from step {step} on (still at step {last}).")  # fmt: skip
        out.append(InsidesWarning(kind, layer, step, float(shares[-1]), message, FIXES[kind]))
    return out


def _update_warnings(layer: str, rows: pd.DataFrame) -> list[InsidesWarning]:
    ratios = rows["update_ratio"].to_numpy(dtype=float)
    ok = np.isfinite(ratios)
    if not ok.any():
        return []
    median = float(np.median(ratios[ok]))
    if UPDATE_LOW <= median <= UPDATE_HIGH:
        return []
    small = median < UPDATE_LOW
    outside = ok & ((ratios < UPDATE_LOW) if small else (ratios > UPDATE_HIGH))
    step = int(rows["step"].iloc[int(np.argmax(outside))])
    kind = "update_small" if small else "update_large"
    effect = "its weights barely move" if small else "each step rewrites much of its weights"
    message = (
        f"The update-to-weight ratio of {layer} ({rows['kind'].iloc[-1]}) is {median:.1e} per "
        f"step (median of {int(ok.sum())} recordings, first {'below' if small else 'above'} "
        f"{UPDATE_LOW if small else UPDATE_HIGH:g} at step {step}): {effect}. Healthy is "
        f"~{UPDATE_HEALTHY:g}, within [{UPDATE_LOW:g}, {UPDATE_HIGH:g}]."
    )
    return [InsidesWarning(kind, layer, step, median, message, UPDATE_FIXES[kind])]


def _streak_start(flags: np.ndarray) -> int:
    """Index where the run of True values that ends at the last element starts."""
    false = np.flatnonzero(~flags)
    return int(false[-1]) + 1 if len(false) else 0


def filter_grid(weights: np.ndarray, *, columns: int = 8) -> np.ndarray:
    """(U, C, h, w) weights -> one uint8 picture, (H, W) for C != 3 or (H, W, 3) for RGB:
    each unit min-max scaled on its own (its pattern, not its size, is what shows edges or
    noise), tiles in rows of `columns`, TILE_GAP px of white between them. C other than 1 or 3
    shows the mean over channels."""
    units, channels, h, w = weights.shape
    tiles = weights if channels in (1, 3) else weights.mean(axis=1, keepdims=True)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(tiles.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    scaled = np.round((tiles - low) / span * 255).astype(np.uint8)  # (U, C', h, w)
    cols = max(1, min(columns, units))
    rows = -(-units // cols)
    depth = scaled.shape[1]
    grid = np.full((rows * (h + TILE_GAP) - TILE_GAP, cols * (w + TILE_GAP) - TILE_GAP, depth),
                   255, np.uint8)  # fmt: skip
    for i in range(units):
        r, c = divmod(i, cols)
        top, left = r * (h + TILE_GAP), c * (w + TILE_GAP)
        grid[top : top + h, left : left + w] = scaled[i].transpose(1, 2, 0)
    return grid[..., 0] if depth == 1 else grid
