"""`recipe tune --executor ray` against a real Ray head: a 4-trial random search on Ray Tune
with ASHA, whose trials are ordinary runs that all end finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recipe_core.runs import RunReader, list_runs
from recipe_core.workspace import open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_scan import ray_driver

TINY = ("steps=20", "eval_every=5", "log_every=5", "dynamics_every=0", "capture_batches=0",
        "probe_size=8")  # fmt: skip


def test_ray_tune_search_with_asha(ray_cluster: RayCluster, tmp_path: Path) -> None:
    """Seed 15 draws lr = 7.9e-3, 1.1e-5, 1.6e-3, 3.0e-5. One trial at a time, so ASHA's
    first rung (after 1 evaluation) compares each trial with those before it: the two
    near-zero learning rates are still at chance loss there and get stopped."""
    ws = tmp_path / "ws"
    sets = [arg for s in TINY for arg in ("--set", s)]
    done = ray_driver(
        ray_cluster, "-m", "recipe_core", "tune", str(SAMPLE_DIGITS), "--model", "mlp",
        "--device", "cpu", "--workspace", str(ws),
        "--param", "lr=loguniform:1e-5:1e-2", "--trials", "4", "--seed", "15",
        "--parallel", "1", "--executor", "ray", "--ray-address", ray_cluster.address,
        "--grace-period", "1", "--json", *sets, timeout=480,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # Tune's own progress went to stderr
    assert summary["executor"] == "ray"
    runs = {s.run_id: s for s in list_runs(open_workspace(ws))}
    assert len(runs) == 4
    trials = sorted(summary["trials"], key=lambda t: t["trial"])
    lrs = [t["params"]["lr"] for t in trials]
    assert lrs == pytest.approx([0.007866, 1.084e-05, 0.001614, 2.979e-05], rel=1e-3)
    for t in trials:
        status = runs[t["run_id"]]
        assert status.finished and status.state == t["state"]
        val = RunReader(ws / "runs" / t["run_id"]).metrics().query("split == 'val'")
        assert len(val) >= 1 and t["best"] == pytest.approx(float(val["loss"].min()))
        if status.state == "cancelled":
            assert status.error.startswith(f"stopped early by ASHA at step {status.step} (val_loss")
            assert status.step < 20
        else:
            assert status.state == "succeeded" and status.step == 20
    states = [t["state"] for t in trials]
    assert states[0] == "succeeded" and states[1] == "cancelled" and states[3] == "cancelled"
    assert summary["best_run_id"] in (trials[0]["run_id"], trials[2]["run_id"])
