"""Analyses of what a run recorded: prediction dynamics on the probe batch (which samples the net
learned, when, and which it forgot). The recording itself happens on the device, in
`recipe_core.train.probes`; everything here reads a run directory and returns data."""

from recipe_core.dynamics.probe import (
    Dynamics,
    forgetting_events,
    learned_at,
    learned_mask,
    read_dynamics,
    sample_summary,
)

__all__ = [
    "Dynamics",
    "forgetting_events",
    "learned_at",
    "learned_mask",
    "read_dynamics",
    "sample_summary",
]
