"""Training: configs, device decisions, the exact inputs, trusted losses, and the recipe's
baselines on the sample digits (overfit reaches ~0; real inputs beat zeroed inputs)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from recipe_core.data import open_dataset
from recipe_core.data.tensors import load_image_tensors
from recipe_core.dynamics import read_dynamics
from recipe_core.errors import ConfigError, RunError
from recipe_core.runs import RunReader
from recipe_core.train import TrainConfig, amp_dtype, make_config, resolve_device, train
from recipe_core.train.data import Batcher, affine, load_train_data
from recipe_core.train.device import should_pin, wants_channels_last
from recipe_core.train.models import ModelSpec, build_model
from recipe_core.train.setup import insert_dropout, label_prior_bias, make_optimizer, make_schedule
from tests.conftest import SAMPLE_DIGITS

SIZE = 16  # px: the digits are 8x8 at heart, 16 keeps every test fast on 2 cores
FAST = {"image_size": SIZE, "device": "cpu"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_digits(root: Path, limit: int | None = None) -> Path:
    """sklearn's digits as an image folder (train/val): the fallback when sample_data is absent."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(
        zip(digits.images[:limit], digits.target[:limit], strict=True)
    ):
        folder = root / ("val" if i % 5 == 0 else "train") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> str:
    if SAMPLE_DIGITS.is_dir():
        return str(SAMPLE_DIGITS)
    return str(make_digits(tmp_path_factory.mktemp("digits")))


@pytest.fixture
def ws(tmp_path: Path) -> str:
    return str(tmp_path / "ws")


# ---- configs and presets -----------------------------------------------------------------


def test_presets_apply_and_user_overrides_win() -> None:
    overfit = make_config("d", preset="overfit", steps=7)
    assert (overfit.overfit_examples, overfit.target_loss, overfit.steps) == (16, 0.01, 7)
    assert make_config("d", preset="input_independent").zero_inputs
    base = make_config("d")
    assert (base.optimizer, base.lr, base.lr_schedule, base.augment) == (
        "adam",
        3e-4,
        "constant",
        False,
    )
    assert TrainConfig.from_dict({**base.to_dict(), "future_key": 1}) == base


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "vit"}, r"Unknown model 'vit'. Choose one of: linear, mlp, small_cnn, resnet18"),
    ({"preset": "fast"}, r"Unknown preset 'fast'.*baseline, overfit"),
    ({"device": "tpu"}, r"Unknown device 'tpu'. Use 'auto', 'cpu', 'cuda'"),
    ({"steps": 0}, r"steps must be an integer >= 1, got 0"),
    ({"batch_size": 2.5}, r"batch_size must be an integer >= 1, got 2.5"),
    ({"dropout": 1.5}, r"dropout \(1.5\) must be in \[0, 1\)"),
    ({"lrate": 0.1}, r"Unknown training option\(s\) \['lrate'\]. Valid options:.*lr"),
])  # fmt: skip
def test_bad_options_raise_config_errors_that_name_the_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config("d", **kwargs)


# ---- device decisions (the CUDA path, checked without a GPU) ------------------------------


def test_device_choices() -> None:
    assert resolve_device("auto", cuda_available=False).type == "cpu"
    assert resolve_device("auto", cuda_available=True) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", cuda_available=True) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"'cuda' was requested but PyTorch sees no CUDA GPU"):
        resolve_device("cuda", cuda_available=False)
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert amp_dtype(cuda, bf16_supported=True) == torch.bfloat16
    assert amp_dtype(cuda, bf16_supported=False) is None  # no fp16 without a scaler
    assert amp_dtype(cuda, enabled=False, bf16_supported=True) is None
    assert amp_dtype(cpu, bf16_supported=True) is None
    cnn = build_model("small_cnn", ModelSpec(1, SIZE, 10))
    mlp = build_model("mlp", ModelSpec(1, SIZE, 10))
    assert wants_channels_last(cnn, cuda) and not wants_channels_last(mlp, cuda)
    assert not wants_channels_last(cnn, cpu) and not wants_channels_last(cnn, cuda, enabled=False)
    assert should_pin(cuda) and not should_pin(cpu)


def test_channels_last_is_legal_on_cpu_and_changes_only_the_layout(digits: str) -> None:
    data = load_train_data(digits, image_size=SIZE, val_fraction=0.2, seed=0)
    common = dict(mean=data.mean, std=data.std, batch_size=8, device=torch.device("cpu"), seed=0)
    plain, nhwc = Batcher(data.train, **common), Batcher(data.train, channels_last=True, **common)
    x_plain, y, _ = plain.next()
    x_nhwc, _, _ = nhwc.next()
    assert x_nhwc.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x_plain, x_nhwc)
    model = build_model("small_cnn", ModelSpec(1, SIZE, len(data.classes)))
    out = model.to(memory_format=torch.channels_last)(x_nhwc)
    nn.functional.cross_entropy(out, y).backward()
    assert math.isfinite(float(out.sum()))


# ---- building blocks with trusted answers ------------------------------------------------


def test_affine_shift_equals_a_pixel_roll_with_black_fill() -> None:
    x = torch.rand(2, 1, SIZE, SIZE)
    moved = affine(x, torch.zeros(2), torch.tensor([[2 / SIZE, 0.0], [0.0, 3 / SIZE]]))
    right = torch.zeros_like(x[0])
    right[:, :, 2:] = x[0, :, :, :-2]
    down = torch.zeros_like(x[1])
    down[:, 3:, :] = x[1, :, :-3, :]
    torch.testing.assert_close(moved, torch.stack([right, down]), atol=1e-5, rtol=0)


def test_prior_bias_dropout_and_cosine_schedule() -> None:
    labels = torch.tensor([0, 0, 0, 1])
    torch.testing.assert_close(
        label_prior_bias(labels, 3), torch.tensor([0.75, 0.25, 0.25]).div(1.25).log()
    )
    mlp = build_model("mlp", ModelSpec(1, SIZE, 3))
    insert_dropout(mlp, 0.3)
    head = list(mlp.children())[-1]
    assert isinstance(head, nn.Sequential) and isinstance(head[0], nn.Dropout)
    config = make_config("d", lr=0.1, steps=100, lr_schedule="cosine")
    opt = make_optimizer(config, mlp)
    schedule = make_schedule(config, opt)
    assert schedule is not None and make_schedule(make_config("d"), opt) is None
    for _ in range(50):
        opt.step()
        schedule.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


# ---- jobs on the sample digits -----------------------------------------------------------


def test_captured_batch_is_exactly_what_the_net_sees(digits: str, ws: str) -> None:
    result = train(make_config(digits, model="linear", steps=3, **FAST), workspace=ws)
    reader = RunReader(result.run_dir)
    batch = reader.arrays("batches/batch_000.npz")
    # Recompute independently: decode, scale to [0, 1], normalise with the train statistics.
    source = open_dataset(digits)
    train_split = load_image_tensors(source, split="train", size=SIZE)
    row = {int(s): i for i, s in enumerate(train_split.sample_ids)}
    pixels = train_split.images[[row[int(s)] for s in batch["sample_ids"]]].float() / 255
    mean, std = (torch.tensor(batch[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    np.testing.assert_allclose(batch["x"], ((pixels - mean) / std).numpy(), atol=1e-5)
    labels = train_split.labels[[row[int(s)] for s in batch["sample_ids"]]]
    assert batch["y"].tolist() == labels.tolist()
    # Undecodable files are skipped, and the run records which.
    skipped = reader.table("skipped.csv")
    assert set(train_split.skipped["path"]) <= set(skipped.get("path", []))
    assert reader.arrays("probe.npz")["images"].dtype == np.uint8
    assert reader.status().state == "succeeded"


def test_input_independent_first_loss_is_the_label_prior_cross_entropy(
    digits: str, ws: str
) -> None:
    config = make_config(digits, preset="input_independent", model="linear", steps=2, **FAST)
    reader = RunReader(train(config, workspace=ws).run_dir)
    y = reader.arrays("batches/batch_000.npz")["y"]
    labels = load_train_data(digits, image_size=SIZE, val_fraction=0.2, seed=0).train.labels
    prior = torch.bincount(labels, minlength=10).double() / len(labels)
    expected = -prior.log()[torch.as_tensor(y)].mean().item()  # zero input: logits = bias
    assert reader.metrics()["loss"].iloc[0] == pytest.approx(expected, rel=1e-4)
    assert not reader.arrays("batches/batch_000.npz")["x"].any()  # the net really saw zeros


def test_overfit_drives_its_batch_loss_to_near_zero(digits: str, ws: str) -> None:
    result = train(make_config(digits, preset="overfit", model="mlp", **FAST), workspace=ws)
    assert result.stop_reason == "target_loss" and result.train_loss < 0.01
    assert result.train_size == 16 and result.steps < 1000
    dyn = read_dynamics(RunReader(result.run_dir))
    assert dyn.probs.shape[1] == 16  # the probe is the overfit batch itself
    assert (dyn.true_class_prob()[-1] > 0.9).all()  # every example learned


def test_baseline_beats_the_input_independent_baseline(digits: str, ws: str) -> None:
    runs = {preset: train(make_config(digits, preset=preset, model="mlp", steps=250, **FAST),
                          workspace=ws)
            for preset in ("baseline", "input_independent")}  # fmt: skip
    base, blind = runs["baseline"], runs["input_independent"]
    assert base.val_accuracy > blind.val_accuracy + 0.5
    assert base.val_loss < blind.val_loss - 1.0
    reader = RunReader(base.run_dir)
    val = reader.metrics().query("split == 'val'")
    assert val["step"].tolist() == [100, 200, 250]  # full val set every eval_every steps
    dyn = read_dynamics(reader)
    assert dyn.steps.tolist() == [*range(0, 250, 25), 250]
    np.testing.assert_allclose(dyn.probs.sum(axis=2), 1.0, atol=1e-4)
    assert (reader.run_dir / "checkpoints" / "best.pt").exists()


def test_train_preset_regularises_and_stops(digits: str, ws: str) -> None:
    config = make_config(
        digits,
        preset="train",
        model="small_cnn",
        steps=6,
        eval_every=2,
        early_stopping=1,
        lr=1e-6,
        **FAST,
    )
    result = train(config, workspace=ws)
    assert result.stop_reason in ("early_stopping", "max_steps") and result.steps <= 6
    state = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert any("1.weight" in k for k in state["model"])  # the final layer sits behind dropout


def test_no_val_split_holds_out_a_fraction(tmp_path: Path, ws: str) -> None:
    root = make_digits(tmp_path / "flat", limit=200)
    for split in ("train", "val"):  # flatten to root/<class>/*.png
        for file in (root / split).rglob("*.png"):
            (root / "all" / file.parent.name).mkdir(parents=True, exist_ok=True)
            file.rename(root / "all" / file.parent.name / file.name)
    data = load_train_data(str(root / "all"), image_size=8, val_fraction=0.25, seed=1)
    assert len(data.val) == round(0.25 * (len(data.train) + len(data.val)))
    assert not set(data.val.sample_ids) & set(data.train.sample_ids)
    assert "held out" in data.val_source


def test_a_diverging_run_fails_loudly_and_keeps_its_metrics(digits: str, ws: str) -> None:
    config = make_config(digits, model="mlp", optimizer="sgd", lr=1e4, log_every=5, **FAST)
    with pytest.raises(RunError, match=r"Training diverged at step \d+: .*; lower the learning "
                                       r"rate \(now lr=10000\)"):  # fmt: skip
        train(config, workspace=ws)
    run_dir = max((Path(ws) / "runs").iterdir())
    reader = RunReader(run_dir)
    assert reader.status().state == "failed" and "diverged" in reader.status().error
    assert len(reader.metrics()) >= 1


# ---- CUDA (run by benchmarks/gpu_check.sh on a GPU machine) -------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("model", ["small_cnn", "resnet18"])
def test_cuda_job_uses_amp_and_channels_last(digits: str, ws: str, model: str) -> None:
    config = make_config(
        digits,
        model=model,
        steps=60,
        eval_every=30,
        log_every=20,
        dynamics_every=20,
        image_size=32,
        device="cuda",
    )
    assert amp_dtype(torch.device("cuda")) == torch.bfloat16
    result = train(config, workspace=ws)
    reader = RunReader(result.run_dir)
    assert reader.status().state == "succeeded" and reader.status().device == "cuda:0"
    metrics = reader.metrics()
    assert metrics.query("split == 'train'")["step"].tolist() == list(range(60))
    assert metrics["loss"].notna().all() and result.val_accuracy > 0.3
    assert read_dynamics(reader).steps.tolist() == [0, 20, 40, 60]
    state = torch.load(result.run_dir / "checkpoints" / "last.pt", weights_only=True)
    conv = next(v for k, v in state["model"].items() if v.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.gpu
@needs_cuda
def test_cuda_batcher_keeps_small_datasets_on_the_gpu(digits: str) -> None:
    data = load_train_data(digits, image_size=32, val_fraction=0.2, seed=0)
    batches = Batcher(
        data.train,
        mean=data.mean,
        std=data.std,
        batch_size=32,
        device=torch.device("cuda", 0),
        seed=0,
        augment=True,
    )
    x, y, idx = batches.next()
    assert batches.images.is_cuda and x.is_cuda and y.is_cuda and not idx.is_cuda
    assert torch.isfinite(x).all()
