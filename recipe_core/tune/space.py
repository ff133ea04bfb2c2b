"""Search spaces over `TrainConfig` fields, and seeded random sampling from them.

    space = parse_space(["lr=loguniform:1e-4:1e-2", "batch_size=choice:32,64,128"])
    sample_trials(space, trials=8, seed=0)   # [{"batch_size": 64, "lr": 0.00123}, ...]

Random search, not grid search, as the recipe's step 5 says: with the same budget it tries more
distinct values of the parameters that matter. The trials are drawn up front from one seeded
generator, so the same space and seed give the same trials locally and on Ray.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from recipe_core.errors import ConfigError
from recipe_core.train.config import TrainConfig

DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
UNTUNABLE = ("dataset", "preset", "device")  # where and what a run trains, not how
SIGNIFICANT_DIGITS = 4  # sampled floats are rounded: readable run configs, no lost precision
EXAMPLES = (
    "lr=loguniform:1e-4:1e-2, dropout=uniform:0:0.5, steps=randint:100:400, "
    "batch_size=choice:32,64,128, augment=choice:true,false"
)


@dataclass(frozen=True)
class Param:
    name: str  # a TrainConfig field
    distribution: str  # one of DISTRIBUTIONS
    low: float = 0.0  # bounds of loguniform/uniform/randint (randint: both included)
    high: float = 0.0
    choices: tuple[Any, ...] = ()  # values of `choice`, typed like the field

    def sample(self, rng: random.Random) -> Any:
        if self.distribution == "choice":
            return self.choices[rng.randrange(len(self.choices))]
        if self.distribution == "randint":
            return rng.randint(int(self.low), int(self.high))
        if self.distribution == "loguniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")

    def describe(self) -> str:
        if self.distribution == "choice":
            return f"{self.name}=choice:{','.join(str(c) for c in self.choices)}"
        return f"{self.name}={self.distribution}:{self.low:g}:{self.high:g}"


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]  # sorted by name, one per field

    def describe(self) -> list[str]:
        return [p.describe() for p in self.params]


def tunable_fields() -> dict[str, str]:
    """TrainConfig field -> its type name ("int", "float", "bool", "str")."""
    return {f.name: str(f.type) for f in fields(TrainConfig) if f.name not in UNTUNABLE}


def parse_space(specs: Iterable[str]) -> SearchSpace:
    """Parse `--param` texts "FIELD=DIST:ARGS"; ConfigError naming the bad part otherwise."""
    params: dict[str, Param] = {}
    for spec in specs:
        param = parse_param(spec)
        if param.name in params:
            raise ConfigError(
                f"{param.name} is searched twice ({params[param.name].describe()!r} and "
                f"{spec!r}). Give each field one --param."
            )
        params[param.name] = param
    if not params:
        raise ConfigError(f"Nothing to search: pass at least one --param, e.g. {EXAMPLES}.")
    return SearchSpace(tuple(params[name] for name in sorted(params)))


def parse_param(spec: str) -> Param:
    """One "FIELD=DIST:ARGS" text as a `Param`."""
    name, sep, rest = (part.strip() for part in spec.partition("="))
    dist, _, args = (part.strip() for part in rest.partition(":"))
    if not sep or not name or not dist:
        raise ConfigError(f"Cannot read --param {spec!r}: write FIELD=DIST:ARGS, e.g. {EXAMPLES}.")
    kinds = tunable_fields()
    if name not in kinds:
        raise ConfigError(
            f"Unknown field {name!r} in --param {spec!r}. Searchable TrainConfig fields: "
            f"{', '.join(sorted(kinds))}."
        )
    if dist not in DISTRIBUTIONS:
        raise ConfigError(
            f"Unknown distribution {dist!r} for {name} in --param {spec!r}. Use one of: "
            f"{', '.join(DISTRIBUTIONS)} (e.g. {EXAMPLES})."
        )
    kind = kinds[name]
    if dist == "choice":
        values = [v.strip() for v in args.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--param {spec!r} lists no values: write {name}=choice:A,B,C.")
        return Param(name, dist, choices=tuple(_typed(name, kind, v, spec) for v in values))
    return _numeric(name, kind, dist, args, spec)


def sample_trials(space: SearchSpace, *, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """`trials` parameter sets drawn from `space`, the same ones for the same seed."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be an integer >= 1, got {trials!r}.")
    rng = random.Random(seed)
    return [{p.name: p.sample(rng) for p in space.params} for _ in range(trials)]


def check_trials(base: TrainConfig, trials: Sequence[Mapping[str, Any]]) -> None:
    """Build every trial's config once, so a bad value fails before any run starts."""
    for i, params in enumerate(trials):
        try:
            TrainConfig.from_dict({**base.to_dict(), **params})
        except ConfigError as exc:
            raise ConfigError(f"Trial {i} ({_text(params)}) is not a valid config: {exc}") from exc


def _numeric(name: str, kind: str, dist: str, args: str, spec: str) -> Param:
    if kind not in ("int", "float"):
        raise ConfigError(
            f"{name} is a {kind} field: search it with choice, e.g. {name}=choice:"
            f"{'true,false' if kind == 'bool' else 'A,B'} (got --param {spec!r})."
        )
    if (kind == "int") != (dist == "randint"):
        valid = "randint or choice" if kind == "int" else "loguniform, uniform or choice"
        raise ConfigError(f"{name} is a {kind} field: use {valid}, not {dist} (--param {spec!r}).")
    parts = args.split(":")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"--param {spec!r} needs two numbers LOW:HIGH, e.g. {name}={dist}:"
            f"{'1e-4:1e-2' if dist == 'loguniform' else '1:10'}."
        ) from None
    if not low < high or (dist == "loguniform" and low <= 0):
        raise ConfigError(
            f"--param {spec!r}: LOW ({low:g}) must be below HIGH ({high:g})"
            f"{' and above 0 for loguniform' if dist == 'loguniform' else ''}."
        )
    if dist == "randint" and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"--param {spec!r}: randint bounds must be integers.")
    return Param(name, dist, low=low, high=high)


def _typed(name: str, kind: str, text: str, spec: str) -> Any:
    try:
        if kind == "bool":
            return {"true": True, "false": False, "1": True, "0": False}[text.lower()]
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except (KeyError, ValueError):
        expected = "true or false" if kind == "bool" else f"a {kind}"
        raise ConfigError(f"{text!r} is not {expected}, as {name} needs (in {spec!r}).") from None
    return text


def _text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def parse_overrides(specs: Iterable[str]) -> dict[str, Any]:
    """`--set FIELD=VALUE` texts as typed TrainConfig values (fixed for every trial)."""
    kinds = tunable_fields()
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = (part.strip() for part in spec.partition("="))
        if not sep or name not in kinds:
            raise ConfigError(
                f"Cannot read --set {spec!r}: write FIELD=VALUE with FIELD one of "
                f"{', '.join(sorted(kinds))}."
            )
        out[name] = _typed(name, kinds[name], value, spec)
    return out
