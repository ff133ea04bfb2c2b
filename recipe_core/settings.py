"""Recipe's settings from the environment: every `RECIPE_*` variable named and read in one place.

Entry points (the CLI, the app, the job processes) call `load_settings()` once and pass what they
need down. Each field's comment names its variable; an empty string means "not set".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

WORKSPACE = "RECIPE_WORKSPACE"
RUNS_URL = "RECIPE_RUNS_URL"
RUNS_STORAGE_OPTIONS = "RECIPE_RUNS_STORAGE_OPTIONS"
RUNS_UPLOAD_EVERY_S = "RECIPE_RUNS_UPLOAD_EVERY_S"
EXECUTOR = "RECIPE_EXECUTOR"
RAY_ADDRESS = "RECIPE_RAY_ADDRESS"
RAY_PYTHON = "RECIPE_RAY_PYTHON"
RAY_GPU_AUTOSCALING = "RECIPE_RAY_GPU_AUTOSCALING"
PLUGINS = "RECIPE_PLUGINS"
DATA_ROOTS = "RECIPE_DATA_ROOTS"
DATASET = "RECIPE_DATASET"
CONFIG = "RECIPE_CONFIG"
PIPELINES = "RECIPE_PIPELINES"


@dataclass(frozen=True)
class Settings:
    workspace: str = ""  # RECIPE_WORKSPACE: the workspace folder ("" = ./.recipe)
    runs_url: str = ""  # RECIPE_RUNS_URL: shared run storage, an fsspec URL
    runs_storage_options: str = ""  # RECIPE_RUNS_STORAGE_OPTIONS: JSON for the fsspec backend
    runs_upload_every_s: str = ""  # RECIPE_RUNS_UPLOAD_EVERY_S: seconds between uploads
    executor: str = ""  # RECIPE_EXECUTOR: "local" | "ray" ("" = local)
    ray_address: str = ""  # RECIPE_RAY_ADDRESS: the cluster's dashboard URL or GCS address
    ray_python: str = ""  # RECIPE_RAY_PYTHON: the interpreter Ray job entrypoints use
    ray_gpu_autoscaling: bool = False  # RECIPE_RAY_GPU_AUTOSCALING: GPU workers on demand
    plugins: str = ""  # RECIPE_PLUGINS: the operator's plugin folder of extra models
    data_roots: tuple[str, ...] = ()  # RECIPE_DATA_ROOTS: extra allowed dataset roots
    dataset: str = ""  # RECIPE_DATASET: the dataset `recipe app DATASET` opened
    config: str = ""  # RECIPE_CONFIG: the hosted dashboard's recipe.toml
    pipelines: str = ""  # RECIPE_PIPELINES: JSON {name: spec} `recipe app --pipeline` offers


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings in `environ` (default: this process's environment)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    return Settings(
        workspace=get(WORKSPACE),
        runs_url=get(RUNS_URL),
        runs_storage_options=get(RUNS_STORAGE_OPTIONS),
        runs_upload_every_s=get(RUNS_UPLOAD_EVERY_S),
        executor=get(EXECUTOR).lower(),
        ray_address=get(RAY_ADDRESS),
        ray_python=get(RAY_PYTHON),
        ray_gpu_autoscaling=get(RAY_GPU_AUTOSCALING).lower() in ("1", "true", "yes"),
        plugins=get(PLUGINS),
        data_roots=tuple(p for p in get(DATA_ROOTS).split(os.pathsep) if p),
        dataset=get(DATASET),
        config=get(CONFIG),
        pipelines=get(PIPELINES),
    )
