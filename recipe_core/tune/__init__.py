"""Random search over `TrainConfig` fields (the recipe's step 5), locally or on Ray Tune.

Every trial is an ordinary run (`tune-<search id>-tNN`, with a tune.json beside its config),
so the Runs page lists, follows and compares trials like any other run.
"""

from __future__ import annotations

from recipe_core.tune.search import EXECUTORS, random_search
from recipe_core.tune.space import (
    DISTRIBUTIONS,
    Param,
    SearchSpace,
    parse_overrides,
    parse_param,
    parse_space,
    sample_trials,
    tunable_fields,
)
from recipe_core.tune.trials import METRICS, Trial, TrialResult, TuneResult, tune_info

__all__ = [
    "DISTRIBUTIONS",
    "EXECUTORS",
    "METRICS",
    "Param",
    "SearchSpace",
    "Trial",
    "TrialResult",
    "TuneResult",
    "parse_overrides",
    "parse_param",
    "parse_space",
    "random_search",
    "sample_trials",
    "tunable_fields",
    "tune_info",
]
