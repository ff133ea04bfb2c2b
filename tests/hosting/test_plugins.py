"""Operator plugins: models registered from the configured folder only, with errors naming
the file; job processes see them through $RECIPE_PLUGINS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError
from recipe_core.jobs.executors import LocalExecutor, submit_run, wait_for
from recipe_core.train import make_config, models
from recipe_core.train.models import (
    BUILTIN_MODELS,
    MODELS,
    ModelSpec,
    build_model,
    load_plugin_folder,
)
from recipe_core.workspace import open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.test_train import make_digits

GOOD = """
from torch import nn

def build(spec):
    return nn.Sequential(nn.Flatten(), nn.Linear(spec.in_channels * spec.image_size**2, 7))

def register(add_model):
    add_model("seven_way", build)
"""


@pytest.fixture
def registry() -> Iterator[None]:
    """Leave MODELS as the other tests expect it."""
    yield
    for name in [n for n in MODELS if n not in BUILTIN_MODELS]:
        del MODELS[name]
        models._PLUGIN_SOURCES.pop(name, None)


def plugin(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


@pytest.mark.usefixtures("registry")
def test_a_plugin_model_builds_and_reloading_is_harmless(tmp_path: Path) -> None:
    folder = plugin(tmp_path / "plug", "seven.py", GOOD)
    plugin(folder, "_helper.py", "raise RuntimeError('helpers are not plugins')")
    assert load_plugin_folder(folder) == ["seven_way"]
    assert load_plugin_folder(folder) == ["seven_way"]  # a second load (a rerun) is fine
    net = build_model("seven_way", ModelSpec(in_channels=1, image_size=8, num_classes=3))
    assert net[1].out_features == 7  # the plugin's own builder ran


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("import not_a_module_anywhere\n", r"bad.py failed to import: ModuleNotFoundError"),
        ("def build(spec): pass\n", r"bad.py defines no register\(add_model\)"),
        ("def register(add):\n    add('mlp', print)\n", r"bad.py: Model name 'mlp' is already"),
        ("def register(add):\n    add('Bad Name', print)\n", r"'Bad Name' is invalid"),
        ("def register(add):\n    raise KeyError('x')\n", r"bad.py failed in register\(\): KeyErr"),
    ],
)
def test_a_broken_plugin_names_its_file(tmp_path: Path, text: str, match: str) -> None:
    folder = plugin(tmp_path / "plug", "bad.py", text)
    with pytest.raises(ConfigError, match=match):
        load_plugin_folder(folder)


@pytest.mark.usefixtures("registry")
def test_job_processes_load_the_plugins_from_the_environment(tmp_path: Path) -> None:
    """A real job process trains a plugin model: the job entry loads $RECIPE_PLUGINS (after it
    records "starting"; importing the model registry loads nothing, no module works on import)."""
    folder = plugin(tmp_path / "plug", "seven.py", GOOD)
    plugin(
        folder, "fits.py", GOOD.replace(", 7)", ", spec.num_classes)").replace("seven_way", "fits")
    )
    fresh = subprocess.run(
        [sys.executable, "-c", "from recipe_core.train.models import MODELS, BUILTIN_MODELS\n"
         "print(sorted(set(MODELS) - set(BUILTIN_MODELS)))"],
        env=dict(os.environ, RECIPE_PLUGINS=str(folder)), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert fresh.returncode == 0 and fresh.stdout.strip() == "[]", fresh.stderr
    load_plugin_folder(folder)  # this process checks the config; the job must load its own
    dataset = SAMPLE_DIGITS if SAMPLE_DIGITS.is_dir() else make_digits(tmp_path / "digits")
    config = make_config(str(dataset), model="fits", image_size=8, device="cpu", steps=3,
                         log_every=1)  # fmt: skip
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1", "RECIPE_PLUGINS": str(folder)})
    handle = submit_run(config, workspace=open_workspace(tmp_path / "ws"), executor=executor)
    final = wait_for(executor, handle.run_dir, timeout_s=120)
    assert final.state == "succeeded", (final.error, (handle.run_dir / "log.txt").read_text())
    without = LocalExecutor(env={"OMP_NUM_THREADS": "1", "RECIPE_PLUGINS": ""})
    handle = submit_run(config, workspace=open_workspace(tmp_path / "ws"), executor=without)
    failed = wait_for(without, handle.run_dir, timeout_s=120)
    assert failed.state == "failed" and "'fits'" in (failed.error or ""), failed.error
