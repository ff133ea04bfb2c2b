"""The training loop's hot path: per-step metrics are exact, and Recipe's own code reads no
tensor back to the host while stepping, snapshotting or closing a window (on CUDA each such read
would drain the GPU's launch queue); reads happen only when a window is written."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from recipe_core.train import make_config, train
from recipe_core.train.loop import TrainEvent, windows_in_flight
from recipe_core.train.metrics import Window
from tests.conftest import SAMPLE_DIGITS

HOST_READS = {"item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__"}
HOT = {"_train_step", "next", "_new_epoch", "add", "close", "snapshot", "take"}  # no reads here


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class HostReads(TorchFunctionMode):
    """Records (method, Recipe caller, enclosing Recipe functions) for each host read that
    Recipe's own code makes (torch internals, e.g. CPU Adam's step.item(), are not Recipe's)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, str, set[str]]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        caller = sys._getframe(1)
        if name in HOST_READS and "recipe_core" in caller.f_code.co_filename:
            stack, frame = set(), caller
            while frame is not None:
                if "recipe_core" in frame.f_code.co_filename:
                    stack.add(frame.f_code.co_name)
                frame = frame.f_back
            self.reads.append((name, caller.f_code.co_name, stack))
        return func(*args, **(kwargs or {}))


def test_window_close_gives_each_steps_loss_and_correct_count() -> None:
    window = Window()
    y = torch.tensor([0, 1, 2, 0])
    right = torch.nn.functional.one_hot(y, 3).float()  # argmax = label: 4 correct
    wrong = right.roll(1, dims=1)  # argmax = label + 1 (mod 3): 0 correct
    half = torch.cat([right[:2], wrong[2:]])  # 2 correct
    for step, (logits, loss) in enumerate([(right, 0.5), (wrong, 2.0), (half, 1.25)], start=7):
        window.add(step, torch.tensor(loss), logits, y, 0.1 * step)
    rows = window.close().rows()
    assert [r["step"] for r in rows] == [7, 8, 9]
    assert [r["loss"] for r in rows] == [0.5, 2.0, 1.25]
    assert [r["accuracy"] for r in rows] == [1.0, 0.0, 0.5]
    assert [r["lr"] for r in rows] == pytest.approx([0.7, 0.8, 0.9])
    ragged = Window()  # batches of different sizes take the per-step path
    ragged.add(0, torch.tensor(1.0), right, y, 0.1)
    ragged.add(1, torch.tensor(3.0), half[:3], y[:3], 0.1)
    assert [r["accuracy"] for r in ragged.close().rows()] == [1.0, pytest.approx(2 / 3)]


def test_windows_stay_in_flight_only_on_cuda() -> None:
    assert windows_in_flight(torch.device("cuda", 0)) == 1
    assert windows_in_flight(torch.device("cpu")) == 0


@pytest.mark.usefixtures("one_thread")
def test_steps_snapshots_and_window_closes_read_nothing_back(tmp_path: Any) -> None:
    config = make_config(str(SAMPLE_DIGITS), model="mlp", steps=40, log_every=10,
                         dynamics_every=10, eval_every=20, image_size=16, batch_size=16,
                         augment=True, capture_batches=0, device="cpu")  # fmt: skip
    with HostReads() as mode:
        result = train(config, workspace=str(tmp_path / "ws"))
    assert result.steps == 40
    hot = [(name, caller) for name, caller, stack in mode.reads if HOT & stack or caller == "run"]
    assert hot == []
    callers = {caller for _, caller, _ in mode.reads}
    assert {"rows", "write", "evaluate"} <= callers  # where reads belong: the check sees them


def test_the_first_step_is_on_the_curve_at_once(tmp_path: Any) -> None:
    """A curve point right after step 1, not after log_every steps (a long first wait looks
    like a hung job): the loop writes step 0's row before training step 1."""
    seen: list[TrainEvent] = []
    config = make_config(str(SAMPLE_DIGITS), model="mlp", steps=30, log_every=25,
                         dynamics_every=0, eval_every=0, image_size=8, capture_batches=0,
                         device="cpu")  # fmt: skip
    train(config, workspace=str(tmp_path / "ws"),
          callbacks=[seen.append])  # fmt: skip
    assert [e.step for e in seen if e.kind == "train"] == [0, 24, 29]
