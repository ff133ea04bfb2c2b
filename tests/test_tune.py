"""`recipe tune` without a cluster: the space parser, seeded sampling, and a real 4-trial local
search whose trials are ordinary local jobs (subprocesses) read back from their run dirs."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recipe_core.cli import cli
from recipe_core.cluster.connection import gcs_address
from recipe_core.errors import ConfigError
from recipe_core.runs import RunReader, list_runs
from recipe_core.scan import scan
from recipe_core.train import make_config
from recipe_core.tune import (
    TrialResult,
    TuneResult,
    parse_overrides,
    parse_space,
    random_search,
    sample_trials,
    tune_info,
)
from recipe_core.workspace import open_workspace
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS

TINY = ("steps=10", "eval_every=5", "log_every=5", "dynamics_every=0", "capture_batches=0",
        "probe_size=8")  # fmt: skip


def test_parse_space_types_values_like_their_fields() -> None:
    space = parse_space([
        "lr=loguniform:1e-4:1e-2", "batch_size=choice:32,64", "augment=choice:true,false",
        "model=choice:mlp,linear", "dropout=uniform:0:0.5", "steps=randint:10:20",
    ])  # fmt: skip
    by_name = {p.name: p for p in space.params}
    assert [p.name for p in space.params] == sorted(by_name)
    assert by_name["batch_size"].choices == (32, 64)
    assert by_name["augment"].choices == (True, False)
    assert by_name["model"].choices == ("mlp", "linear")
    assert (by_name["lr"].low, by_name["lr"].high) == (1e-4, 1e-2)
    assert by_name["steps"].distribution == "randint"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("learning_rate=loguniform:1e-4:1e-2", r"Unknown field 'learning_rate'.*\blr\b"),
        ("lr=gaussian:0:1", r"Unknown distribution 'gaussian'.*loguniform, uniform, randint"),
        ("lr", r"write FIELD=DIST:ARGS"),
        ("lr=loguniform:0:1e-2", r"above 0 for loguniform"),
        ("lr=uniform:0.1:0.01", r"LOW \(0.1\) must be below HIGH \(0.01\)"),
        ("lr=loguniform:a:b", r"needs two numbers LOW:HIGH"),
        ("batch_size=uniform:16:64", r"batch_size is a int field: use randint or choice"),
        ("dropout=randint:0:1", r"dropout is a float field: use loguniform, uniform or choice"),
        ("augment=uniform:0:1", r"augment is a bool field: search it with choice"),
        ("augment=choice:yes", r"'yes' is not true or false"),
        ("batch_size=choice:32,big", r"'big' is not a int"),
        ("batch_size=choice:", r"lists no values"),
        ("dataset=choice:a,b", r"Unknown field 'dataset'"),
        ("steps=randint:1.5:4", r"randint bounds must be integers"),
    ],
)
def test_bad_param_specs_name_the_problem(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_space([spec])


def test_a_field_searched_twice_or_no_param_is_refused() -> None:
    with pytest.raises(ConfigError, match="lr is searched twice"):
        parse_space(["lr=loguniform:1e-4:1e-2", "lr=uniform:0.1:0.2"])
    with pytest.raises(ConfigError, match="pass at least one --param"):
        parse_space([])


def test_same_seed_same_trials_other_seed_other_trials() -> None:
    space = parse_space(["lr=loguniform:1e-4:1e-2", "batch_size=choice:16,32,64"])
    first = sample_trials(space, trials=6, seed=3)
    assert first == sample_trials(space, trials=6, seed=3)
    assert first != sample_trials(space, trials=6, seed=4)
    assert len({t["lr"] for t in first}) == 6  # distinct draws, not one repeated


def test_samples_follow_their_distributions() -> None:
    space = parse_space(["lr=loguniform:1e-4:1e-2", "steps=randint:1:3", "model=choice:mlp,linear"])
    draws = sample_trials(space, trials=4000, seed=0)
    lrs = [d["lr"] for d in draws]
    assert all(1e-4 <= v <= 1e-2 for v in lrs)
    # log-uniform: half the mass below the geometric mean 1e-3 (uniform would put 9% there)
    assert 0.45 < sum(v < 1e-3 for v in lrs) / len(lrs) < 0.55
    assert {d["steps"] for d in draws} == {1, 2, 3}  # randint includes both bounds
    assert {d["model"] for d in draws} == {"mlp", "linear"}


def test_overrides_are_typed_and_checked() -> None:
    assert parse_overrides(["steps=10", "augment=true", "lr=0.01"]) == {
        "steps": 10, "augment": True, "lr": 0.01,
    }  # fmt: skip
    with pytest.raises(ConfigError, match="Cannot read --set 'stepz=10'"):
        parse_overrides(["stepz=10"])


def test_a_trial_outside_the_config_range_fails_before_any_run(tmp_path: Path) -> None:
    base = make_config(str(SAMPLE_DIGITS), model="mlp", device="cpu")
    space = parse_space(["dropout=uniform:0.5:1.5"])
    with pytest.raises(ConfigError, match=r"Trial \d \(dropout=.*\) is not a valid config"):
        random_search(base, space, trials=8, workspace=tmp_path / "ws")
    assert list_runs(open_workspace(tmp_path / "ws")) == []


@pytest.mark.parametrize(
    ("executor", "address", "match"),
    [
        ("slurm", None, "Unknown executor 'slurm'"),
        ("ray", None, "needs a running cluster"),
        ("ray", "local", "never starts a local Ray"),
    ],
)
def test_bad_executor_or_address_fails_before_any_run(
    tmp_path: Path, executor: str, address: str | None, match: str
) -> None:
    base = make_config(str(SAMPLE_DIGITS), model="mlp", device="cpu")
    with pytest.raises(ConfigError, match=match):
        random_search(
            base, parse_space(["lr=loguniform:1e-4:1e-2"]), trials=2, workspace=tmp_path / "ws",
            executor=executor, ray_address=address,
        )  # fmt: skip
    assert list_runs(open_workspace(tmp_path / "ws")) == []


def test_a_dashboard_url_maps_to_its_gcs_address() -> None:
    assert gcs_address("http://10.0.0.5:8265/") == "10.0.0.5:6379"
    assert gcs_address(" 10.0.0.5:7000 ") == "10.0.0.5:7000"


def test_an_unreachable_cluster_leaves_no_trial_queued(tmp_path: Path) -> None:
    base = make_config(str(SAMPLE_DIGITS), model="mlp", device="cpu")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match=r"No Ray cluster answers at|Ray is not installed"):
        random_search(
            base, parse_space(["lr=loguniform:1e-4:1e-2"]), trials=2, workspace=tmp_path / "ws",
            executor="ray", ray_address=f"127.0.0.1:{port}",
        )  # fmt: skip
    runs = list_runs(open_workspace(tmp_path / "ws"))
    assert len(runs) == 2 and {r.state for r in runs} == {"cancelled"}
    assert all(r.error.startswith("Search ended early:") for r in runs)


def test_scan_refuses_an_unknown_executor_or_a_missing_address(image_folder: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown scan executor 'dask'"):
        scan(image_folder, executor="dask", cache=False)
    with pytest.raises(ConfigError, match="needs a running cluster"):
        scan(image_folder, executor="ray", cache=False)


def test_best_trial_follows_the_metric_direction() -> None:
    def trial(i: int, best: float) -> TrialResult:
        return TrialResult(i, {"lr": i}, f"r{i}", "succeeded", best, 10)

    trials = (trial(0, 0.5), trial(1, math.nan), trial(2, 0.2), trial(3, 0.2), trial(4, 0.9))
    assert TuneResult("s", "val_loss", "local", trials).best == trials[2]  # tie: earlier
    assert TuneResult("s", "val_accuracy", "local", trials).best == trials[4]
    assert TuneResult("s", "val_loss", "local", (trial(0, math.nan),)).best is None


def test_tune_and_scan_do_not_import_ray() -> None:
    code = ("import sys, recipe_core.tune, recipe_core.scan.run, recipe_core.cli.tune_cmd; "
            "assert 'ray' not in sys.modules, 'ray imported'")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_cli_refuses_a_bad_param_without_starting_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [
        "tune", str(SAMPLE_DIGITS), "--param", "lr=normal:0:1", "--workspace", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "Unknown distribution 'normal'" in result.output
    assert list_runs(open_workspace(tmp_path)) == []


def test_local_search_runs_four_ordinary_jobs(tmp_path: Path) -> None:
    """`recipe tune --json` end to end: 4 trials as local job subprocesses, 2 at a time."""
    ws = tmp_path / "ws"
    sets = [arg for s in TINY for arg in ("--set", s)]
    result = CliRunner().invoke(cli, [
        "tune", str(SAMPLE_DIGITS), "--model", "mlp", "--device", "cpu", "--workspace", str(ws),
        "--param", "lr=loguniform:1e-4:3e-2", "--param", "batch_size=choice:16,32",
        "--trials", "4", "--seed", "7", "--parallel", "2", "--executor", "local", "--json",
        *sets,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    runs = {s.run_id: s for s in list_runs(open_workspace(ws))}
    assert len(runs) == 4 and len(summary["trials"]) == 4
    space = parse_space(["lr=loguniform:1e-4:3e-2", "batch_size=choice:16,32"])
    expected = sample_trials(space, trials=4, seed=7)
    bests = {}
    for row in summary["trials"]:
        status = runs[row["run_id"]]
        assert status.state == "succeeded" and row["state"] == "succeeded"
        assert status.name == f"tune-{summary['search_id']}-t{row['trial']:02d}"
        reader = RunReader(ws / "runs" / row["run_id"])
        config = reader.config()
        assert row["params"] == expected[row["trial"]]  # the seeded draw, in trial order
        assert {k: config[k] for k in row["params"]} == row["params"]
        assert config["steps"] == 10 and config["model"] == "mlp"
        info = tune_info(reader.run_dir)
        assert info is not None and info["params"] == row["params"]
        val = reader.metrics().query("split == 'val'")
        assert len(val) == 2  # evaluations at steps 5 and 10
        bests[row["run_id"]] = float(val["loss"].min())
        assert row["best"] == pytest.approx(bests[row["run_id"]])
    assert len({json.dumps(r["params"], sort_keys=True) for r in summary["trials"]}) == 4
    assert summary["best_run_id"] == min(bests, key=bests.__getitem__)
