"""A random search as a background job (recipe_core/tune/job.py): real driver and trial
subprocesses on the sample digits; followed, finished, cancelled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from recipe_core.errors import ConfigError
from recipe_core.jobs import process
from recipe_core.runs import RunReader, list_runs
from recipe_core.train import make_config
from recipe_core.tune import parse_overrides, parse_space, sample_trials
from recipe_core.tune.job import cancel_search, searches, start_search
from recipe_core.workspace import open_workspace
from tests.conftest import SAMPLE_DIGITS
from tests.test_tune import TINY

SPACE = ("lr=loguniform:1e-4:3e-2", "batch_size=choice:16,32")


def _base(**extra: object):  # type: ignore[no-untyped-def]
    fixed = {**parse_overrides(list(TINY)), **extra}
    return make_config(str(SAMPLE_DIGITS), model="mlp", device="cpu", **fixed)


def _wait(ws, search_id: str, done, timeout: float = 240.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        (summary,) = [s for s in searches(ws) if s.search_id == search_id]
        if done(summary):
            return summary
        time.sleep(0.3)
    raise AssertionError(f"search {search_id} did not get there: {summary}")


def test_a_started_search_returns_at_once_and_its_trials_finish(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    started = time.monotonic()
    job = start_search(_base(), parse_space(list(SPACE)), space_text=SPACE, trials=3, seed=7,
                       parallel=2, workspace=ws, owner="ana@example.org")  # fmt: skip
    assert time.monotonic() - started < 5  # the trials run in the driver, not here
    runs = {s.run_id: s for s in list_runs(ws)}
    assert set(runs) == set(job.run_ids)  # listed from the first second, queued
    assert {s.state for s in runs.values()} <= {"queued", "running"}
    for run_id in job.run_ids:
        owner = json.loads((ws.runs / run_id / "owner.json").read_text())
        assert owner == {"user": "ana@example.org"}
    summary = _wait(ws, job.search_id, lambda s: s.finished and not s.driver_alive)
    assert summary.space == SPACE and summary.parallel == 2
    expected = sample_trials(parse_space(list(SPACE)), trials=3, seed=7)
    assert [t.params for t in summary.result.trials] == expected
    assert all(t.state == "succeeded" for t in summary.result.trials)
    best = summary.result.best
    assert best is not None and best.best == min(t.best for t in summary.result.trials)
    log = (job.folder / "log.txt").read_text()
    assert f"best: trial {best.trial} ({best.run_id})" in log


def test_cancel_stops_the_running_trial_and_starts_no_queued_one(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    base = _base(steps=100_000, eval_every=1000)  # runs until cancelled
    job = start_search(base, parse_space(list(SPACE)), space_text=SPACE, trials=3, parallel=1,
                       workspace=ws)  # fmt: skip
    _wait(ws, job.search_id, lambda s: any(t.state == "running" for t in s.result.trials))
    summary = cancel_search(ws, job.search_id)
    assert summary.finished and not summary.driver_alive
    states = [t.state for t in summary.result.trials]
    assert states == ["cancelled"] * 3, states
    first, *rest = job.run_ids
    assert (ws.runs / first / "job.json").exists()  # it ran ...
    for run_id in rest:  # ... the queued ones never started a process
        assert not (ws.runs / run_id / "job.json").exists()
        assert RunReader(ws.runs / run_id).status().state == "cancelled"
    record = json.loads((job.folder / "search.json").read_text())
    assert not process.process_alive(record["pid"], record["token"])


def test_bad_requests_fail_before_any_run(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    space = parse_space(list(SPACE))
    with pytest.raises(ConfigError, match="trials must be an integer from 1 to 64"):
        start_search(_base(), space, trials=0, workspace=ws)
    with pytest.raises(ConfigError, match="Unknown metric"):
        start_search(_base(), space, metric="accuracy", workspace=ws)
    with pytest.raises(ConfigError, match="parallel must be"):
        start_search(_base(), space, parallel=0, workspace=ws)
    assert list_runs(ws) == [] and searches(ws) == []


def test_cli_detach_returns_at_once_and_the_search_finishes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from recipe_core.cli import cli

    ws = tmp_path / "ws"
    sets = [arg for s in TINY for arg in ("--set", s)]
    result = CliRunner().invoke(cli, [
        "tune", str(SAMPLE_DIGITS), "--model", "mlp", "--device", "cpu", "--workspace", str(ws),
        "--param", SPACE[0], "--trials", "2", "--detach", "--json", *sets,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["run_ids"]) == 2
    summary = _wait(open_workspace(ws), out["search_id"],
                    lambda s: s.finished and not s.driver_alive)  # fmt: skip
    assert [t.state for t in summary.result.trials] == ["succeeded"] * 2
    refused = CliRunner().invoke(cli, [
        "tune", str(SAMPLE_DIGITS), "--workspace", str(ws), "--param", SPACE[0], "--detach",
        "--executor", "ray", "--ray-address", "127.0.0.1:1",
    ])  # fmt: skip
    assert refused.exit_code != 0 and "--detach runs the search's driver" in refused.output
