"""`recipe scan --executor ray` against a real Ray head (tests/ray/conftest.py): the same index
and the same issues.csv as the local scan of sample_data/digits.

The Ray driver runs in a subprocess (the CLI, as a user runs it) with the cluster's env: Ray
reads some of those variables (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER) once, when it is imported,
and the session fixture has imported it in this process already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recipe_core.errors import DatasetError
from recipe_core.scan import scan
from recipe_core.scan.ray_data import check_batch, features_batch
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS
from tests.ray.conftest import RayCluster, free_ports, require_ray


def ray_driver(
    cluster: RayCluster, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with the cluster's client env (token, loopback node IP)."""
    env = {**os.environ, **cluster.env}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=timeout)  # fmt: skip


def test_ray_scan_matches_the_local_scan(ray_cluster: RayCluster, tmp_path: Path) -> None:
    done = ray_driver(
        ray_cluster, "-m", "recipe_core", "scan", str(SAMPLE_DIGITS), "--out",
        str(tmp_path / "ray"), "--no-cache", "--executor", "ray", "--ray-address",
        ray_cluster.address, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    local = scan(SAMPLE_DIGITS, cache=False, workers=1, out=tmp_path / "local")
    # The detectors run on the driver over the same rows in the same order: byte-identical.
    local_csv = (tmp_path / "local" / "issues.csv").read_bytes()
    assert (tmp_path / "ray" / "issues.csv").read_bytes() == local_csv
    assert local_csv.count(b"\n") > 100  # sample_data's planted issues were found
    b = pd.read_parquet(tmp_path / "ray" / "index.parquet")
    a = pd.read_parquet(tmp_path / "local" / "index.parquet")  # both through the same writer
    assert list(a.columns) == list(b.columns) and a.dtypes.equals(b.dtypes)
    floats = [c for c in a.columns if a[c].dtype.kind == "f"]
    pd.testing.assert_frame_equal(a.drop(columns=floats), b.drop(columns=floats))
    np.testing.assert_allclose(a[floats].to_numpy(), b[floats].to_numpy(), rtol=1e-6)
    assert f'"fingerprint": "{local.summary.fingerprint}"' in done.stdout  # same content seen


def test_a_worker_that_cannot_read_the_dataset_fails_clearly(tmp_path: Path) -> None:
    """Workers read files by path. The batch function (run here as a worker would run it) says
    whether its host sees the dataset folder, and the driver turns a blind worker's batch into
    a DatasetError naming the folder, not a scan full of `corrupt` rows."""
    image = next(SAMPLE_DIGITS.rglob("*.png"))
    batch = {"row": np.array([0]), "path": np.array([str(image)], dtype=object)}
    seen = features_batch(batch, root=str(SAMPLE_DIGITS))
    check_batch(seen, root=str(SAMPLE_DIGITS))  # a worker on the shared filesystem: fine
    assert seen["decode_error"][0] == "" and seen["width"][0] > 0
    missing = tmp_path / "only-on-the-driver"
    blind = features_batch({**batch, "path": np.array([str(missing / "a.png")])},
                           root=str(missing))  # fmt: skip
    with pytest.raises(DatasetError, match=r"cannot read the dataset folder .*only-on-the-driver"
                       r".*same path on every node"):  # fmt: skip
        check_batch(blind, root=str(missing))


def test_a_wrong_address_fails_fast_with_the_fix(tmp_path: Path) -> None:
    require_ray()
    (port,) = free_ports(1)  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "recipe_core", "scan", str(SAMPLE_DIGITS), "--no-cache",
         "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"No Ray cluster answers at '127.0.0.1:{port}'" in done.stderr
    assert "ray start --head" in done.stderr
