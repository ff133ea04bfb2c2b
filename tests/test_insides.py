"""Insides of a run (train/insides.py, runs/insides.py, dynamics/insides.py) against trusted
answers: the recorder's numbers against the same quantities computed by hand on a tiny model,
small_cnn's recorded filters against its init and its final checkpoint, and a planted dead
ReLU (bias -10) against its clean twin."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import recipe_core.train.run as train_run
from recipe_core.dynamics.insides import filter_grid, insides_warnings, read_insides
from recipe_core.runs import RunReader, RunWriter
from recipe_core.train import make_config, train
from recipe_core.train.insides import InsidesRecorder, find_first_layer
from recipe_core.train.setup import build_train_model
from recipe_core.workspace import open_workspace
from tests.conftest import REPO_ROOT, write_image_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DIGITS = REPO_ROOT / "sample_data" / "digits"


def test_recorder_matches_a_direct_computation(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3), nn.Tanh())
    with torch.no_grad():
        model[1].bias[:3] = -50.0  # three of six units dead for any input of this scale
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    writer = RunWriter.create(open_workspace(tmp_path), name="tiny", config={})
    recorder = InsidesRecorder(writer, model, opt, every=2, steps=3, image_shape=(3, 2, 2))
    x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 3, (8,))
    expected: dict[int, dict[str, dict[str, float]]] = {}
    for step in range(3):
        before = [p.detach().clone() for p in model.parameters()]
        with torch.no_grad():  # the trusted answer: each layer's output, by hand
            h1 = model[1](x.flatten(1))
            h2 = h1.relu()
            h4 = torch.tanh(model[3](h2))
        recorder.before_step(step)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad.detach().clone() for p in model.parameters()]
        opt.step()
        after = [p.detach() for p in model.parameters()]
        expected[step] = _by_hand((h1, h2, h4), before, after, grads)
    recorder.finish(3)
    recorder.flush(wait=True)
    frame = RunReader(writer.run_dir).insides()
    assert sorted(frame["step"].unique()) == [0, 2]  # every 2 steps
    for step in (0, 2):
        rows = frame[frame["step"] == step].set_index("layer")
        assert list(rows.index) == ["0", "1", "2", "3", "4"]  # the order they ran
        for layer, values in expected[step].items():
            for stat, value in values.items():
                assert rows.loc[layer, stat] == pytest.approx(value, rel=1e-5, abs=1e-7), (
                    step, layer, stat)  # fmt: skip
        assert math.isnan(rows.loc["1", "dead"]) and math.isnan(rows.loc["2", "grad_norm"])
    assert RunReader(writer.run_dir).first_layer_steps() == [0, 2, 3]  # + the final weights
    first = RunReader(writer.run_dir).first_layer(3)
    assert np.array_equal(first, model[1].weight.detach().reshape(6, 3, 2, 2).numpy())


def _by_hand(
    outs: tuple[torch.Tensor, ...], before: list[torch.Tensor], after: list[torch.Tensor],
    grads: list[torch.Tensor],
) -> dict[str, dict[str, float]]:  # fmt: skip
    h1, h2, h4 = outs

    def weights(i: int) -> dict[str, float]:  # params 2i (weight), 2i+1 (bias)
        w = torch.cat([before[2 * i].flatten(), before[2 * i + 1].flatten()])
        dw = torch.cat([(after[j] - before[j]).flatten() for j in (2 * i, 2 * i + 1)])
        g = torch.cat([grads[2 * i].flatten(), grads[2 * i + 1].flatten()])
        return {"grad_norm": float(g.norm()), "weight_norm": float(w.norm()),
                "update_ratio": float(dw.norm() / w.norm())}  # fmt: skip

    dead = float((h2 <= 0).all(0).float().mean())
    saturated = float(((h4 <= -0.98) | (h4 >= 0.98)).float().mean())
    return {
        "1": {"act_mean": float(h1.mean()), "act_std": float(h1.std()), **weights(0)},
        "2": {"act_mean": float(h2.mean()), "act_std": float(h2.std()), "dead": dead},
        "4": {"act_mean": float(h4.mean()), "saturated": saturated},
    }


def test_small_cnn_filters_change_between_first_and_last_recording(tmp_path: Path) -> None:
    """Trusted ends: the first snapshot is the seeded init, the last is the final checkpoint's
    first conv; and the min-max scaled grid the page shows differs visibly between them."""
    config = make_config(
        str(DIGITS),
        model="small_cnn",
        steps=60,
        batch_size=32,
        device="cpu",
        eval_every=0,
        insides_every=20,
        image_size=16,
        seed=3,
        lr=3e-3,
    )  # fmt: skip  (10x the default: 60 steps show what 600 would)
    result = train(config, workspace=tmp_path / "ws")
    reader = RunReader(result.run_dir)
    steps = reader.first_layer_steps()
    assert steps == [0, 20, 40, 60]
    labels = torch.zeros(1, dtype=torch.long)
    init = build_train_model(config, in_channels=1, labels=labels, num_classes=10)
    layer = find_first_layer(init, (1, 16, 16))
    assert layer is not None and layer.kind == "conv"
    assert np.array_equal(reader.first_layer(0), layer.weights().numpy())
    state = torch.load(io.BytesIO((result.run_dir / "checkpoints/last.pt").read_bytes()))
    assert np.allclose(reader.first_layer(60), state["model"]["0.weight"].numpy())
    start, end = filter_grid(reader.first_layer(0)), filter_grid(reader.first_layer(60))
    assert start.shape == end.shape == (4 * 3 + 3, 8 * 3 + 7)  # 32 filters, 8 per row, 1 px gap
    assert np.abs(start.astype(int) - end.astype(int)).mean() > 5  # grey levels, of 255


def _tiny_run(root: Path, *, plant: bool, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    data = root / "ds"
    if not data.exists():
        write_image_folder(data, classes=3, per_class=8, size=8)
    build = build_train_model

    def planted(*args: object, **kwargs: object) -> nn.Module:
        model = build(*args, **kwargs)  # type: ignore[arg-type]
        with torch.no_grad():
            model[1].bias.fill_(-10.0)  # mlp: Flatten, Linear, ReLU, ...: every unit below 0
        return model

    monkeypatch.setattr(train_run, "build_train_model", planted if plant else build)
    config = make_config(str(data), model="mlp", steps=20, batch_size=8, device="cpu",
                         eval_every=0, insides_every=5, image_size=8, log_every=5)  # fmt: skip
    result = train(config, workspace=root / "ws")
    return read_insides(RunReader(result.run_dir))


def test_planted_dead_relu_warns_and_its_clean_twin_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _tiny_run(tmp_path, plant=True, monkeypatch=monkeypatch)
    found = [w for w in dead.warnings if w.kind == "dead"]
    first = next(w for w in found if w.layer == "2")  # the planted layer (later ones may follow)
    assert (first.step, first.value) == (0, 1.0)
    assert "100% of the units of 2 (ReLU)" in first.message and "bias" in first.fix
    clean = _tiny_run(tmp_path, plant=False, monkeypatch=monkeypatch)
    assert not [w for w in clean.warnings if w.kind == "dead"]
    assert clean.frame["dead"].dropna().max() <= 0.5


def test_update_ratio_band_names_the_layer_step_and_fix() -> None:
    def frame(ratios: list[float]) -> pd.DataFrame:
        columns = {"step": [0, 25, 50], "layer": "fc", "kind": "Linear", "dead": np.nan,
                   "saturated": np.nan, "update_ratio": ratios}  # fmt: skip
        return pd.DataFrame(columns)

    assert insides_warnings(frame([1e-3, 2e-3, 5e-4])) == []  # healthy
    (low,) = insides_warnings(frame([1e-4, 1e-6, 1e-7]))
    assert (low.kind, low.layer, low.step) == ("update_small", "fc", 25)
    assert "learning rate" in low.fix and "1e-05" in low.message
    (high,) = insides_warnings(frame([0.5, 0.3, 1e-3]))
    assert (high.kind, high.step) == ("update_large", 0) and "Lower the learning rate" in high.fix
