"""The training job reports at once (issue 17): its entry module imports neither torch nor
torchvision, a real local run's status.json walks through the stages in order before its first
metrics row (step 0), and status.json without a stage (written before stages) still reads."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recipe_core.jobs.executors import LocalExecutor, submit_run, wait_for
from recipe_core.runs import STAGES, RunStatus
from recipe_core.train import make_config
from recipe_core.workspace import open_workspace
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS
from tests.test_train import make_digits

TIMEOUT_S = 120.0  # two shared cores


def _loaded_after(statement: str) -> list[str]:
    """Which of torch / torchvision a fresh interpreter holds after `statement`."""
    code = (
        f"import sys; {statement}; "
        "print(','.join(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True)  # fmt: skip
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_job_entry_imports_neither_torch_nor_torchvision() -> None:
    # both take seconds to import; the job records "starting" before it imports them
    assert _loaded_after("import recipe_core.jobs.train_job") == []


def test_training_needs_no_torchvision() -> None:
    # torchvision (4.5 s of imports, torch._dynamo with it) only for resnet18 and the checks'
    # NormalizedImages loaders: a built-in MLP/CNN run starts without it
    assert _loaded_after("import recipe_core.train.run, recipe_core.data.tensors") == ["torch"]


def test_a_local_run_reports_every_stage_in_order_then_step_zero(tmp_path: Path) -> None:
    dataset = SAMPLE_DIGITS if SAMPLE_DIGITS.is_dir() else make_digits(tmp_path / "digits")
    config = make_config(str(dataset), model="mlp", image_size=16, device="cpu", steps=40,
                         log_every=5)  # fmt: skip
    executor = LocalExecutor(env={"OMP_NUM_THREADS": "1"})
    handle = submit_run(config, workspace=open_workspace(tmp_path / "ws"), executor=executor)
    seen: list[tuple[str, str]] = []  # (state, stage), each change once
    deadline = time.monotonic() + TIMEOUT_S
    metrics = handle.run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size):
        status = json.loads((handle.run_dir / "status.json").read_text())
        now = (status["state"], status.get("stage", ""))
        if not seen or seen[-1] != now:
            seen.append(now)
        assert status["state"] in ("queued", "running"), status
        time.sleep(0.005)
    first = json.loads(metrics.read_text().splitlines()[0])
    assert first["step"] == 0
    assert [stage for _, stage in seen] == list(STAGES), seen
    assert seen[0] == ("queued", "spawning") and {s for s, _ in seen[1:]} == {"running"}
    final = wait_for(executor, handle.run_dir, timeout_s=TIMEOUT_S)
    assert (final.state, final.stage) == ("succeeded", "training")


def test_status_without_a_stage_still_reads_and_a_wrong_type_is_named() -> None:
    old = {"run_id": "r1", "name": "n", "state": "running", "step": 3, "added_later": 1}
    status = RunStatus.from_dict(old)
    assert (status.stage, status.step) == ("", 3)
    with pytest.raises(TypeError, match="stage is 5, not str"):
        RunStatus.from_dict({**old, "stage": 5})
