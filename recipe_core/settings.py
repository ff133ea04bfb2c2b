"""Recipe's settings from the environment: every variable Recipe consults, named and read here.

The edges read them once and pass what is needed down: the CLI (`recipe_core.cli`), the app
(`app/`), the job process entry points (`recipe_core.jobs.*_job`), and the package-face calls a
script makes without a `Settings` (each says so in its docstring). Nothing else in `recipe_core`
reads the environment (tests/test_layout.py enforces it). Each field's comment names its
variable; an empty string means "not set".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

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
UNAUTHENTICATED_NETWORK = "RECIPE_UNAUTHENTICATED_NETWORK"
# Not Recipe's own, but consulted as the tools that own them do:
RAY_AUTH_TOKEN = "RAY_AUTH_TOKEN"  # Ray's cluster token
RAY_AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"  # a file holding it
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"  # botocore reads it itself; Recipe names it in errors
TORCH_HOME = "TORCH_HOME"  # torch.hub's cache root
XDG_CACHE_HOME = "XDG_CACHE_HOME"  # its fallback parent
PYTHONPATH = "PYTHONPATH"  # kept on the path of Ray job processes


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
    unauthenticated_network: bool = False  # RECIPE_UNAUTHENTICATED_NETWORK=1: `recipe app`
    # serves beyond loopback with nobody signing in (the app shows a red banner)
    ray_auth_token: str = ""  # RAY_AUTH_TOKEN: the Ray cluster's token
    ray_auth_token_path: str = ""  # RAY_AUTH_TOKEN_PATH: a file holding it
    aws_endpoint_url: str = ""  # AWS_ENDPOINT_URL: the S3-compatible server, for error messages
    torch_home: str = ""  # TORCH_HOME, else $XDG_CACHE_HOME/torch ("" = ~/.cache/torch)
    pythonpath: str = ""  # PYTHONPATH: what Ray job processes keep on their path
    # The whole environment, which local job processes inherit (so a variable the parent sets
    # reaches the child's own entry point). Not compared and not printed: it holds secrets.
    environ: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings in `environ` (default: this process's environment)."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    xdg_cache = get(XDG_CACHE_HOME)
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
        data_roots=tuple(p for p in get(DATA_ROOTS).split(os.pathsep) if p.strip()),
        dataset=get(DATASET),
        config=get(CONFIG),
        pipelines=get(PIPELINES),
        unauthenticated_network=get(UNAUTHENTICATED_NETWORK) == "1",
        ray_auth_token=get(RAY_AUTH_TOKEN),
        ray_auth_token_path=get(RAY_AUTH_TOKEN_PATH),
        aws_endpoint_url=get(AWS_ENDPOINT_URL),
        torch_home=get(TORCH_HOME) or (os.path.join(xdg_cache, "torch") if xdg_cache else ""),
        pythonpath=env.get(PYTHONPATH, ""),
        environ=dict(env),
    )
