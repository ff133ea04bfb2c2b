"""Shared fixtures: small real image folders written to tmp dirs, the repo's paths, one torch
thread, and waiting for a background job."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIGITS = REPO_ROOT / "sample_data" / "digits"

# AppTest runs page scripts in this process: make `import app.*` work as under `streamlit run`.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def write_image_folder(
    root: Path,
    *,
    classes: int = 3,
    per_class: int = 4,
    splits: bool = True,
    size: int = 16,
    seed: int = 0,
) -> Path:
    """A real image folder of random grayscale PNGs: root/{train,val}/<class>/<i>.png."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val") if splits else ("",):
        for c in range(classes):
            folder = root / split / f"class_{c}" if split else root / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "ds")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Two OpenMP threads on two shared cores spin-wait for each other: one is ~10x faster.
    Use it module-wide with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch  # here, not at the top: most test modules never load torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _JobState(Protocol):
    @property
    def state(self) -> str: ...  # "running" until the job ends


S = TypeVar("S", bound=_JobState)


def wait_until_finished(
    read: Callable[[Path], S], folder: Path, *, timeout: float, poll: float
) -> S:
    """Poll a background job's `read(folder)` until its state is no longer "running"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read(folder)
        if state.state != "running":
            return state
        time.sleep(poll)
    raise AssertionError(f"job in {folder} still running after {timeout:.0f}s: {read(folder)}")
