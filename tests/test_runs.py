"""Run directories: writer/reader contract, incremental tailing, dynamics, the scripts API."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from recipe_core.dynamics import Dynamics, read_dynamics
from recipe_core.errors import ConfigError, RunError
from recipe_core.runs import (
    FinishedRuns,
    JsonlTail,
    RunFiles,
    RunReader,
    RunWriter,
    find_run,
    list_runs,
)
from recipe_core.train import start_run
from recipe_core.train.probes import choose_probe
from recipe_core.workspace import Workspace, open_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def test_create_writes_the_layout_and_a_queued_status(ws: Workspace) -> None:
    first = RunWriter.create(ws, name="a", config={"lr": 0.1})
    second = RunWriter.create(ws, name="b", config={})
    assert first.run_dir.parent == ws.runs
    assert (first.run_dir / "batches").is_dir() and (first.run_dir / "checkpoints").is_dir()
    assert json.loads((first.run_dir / "config.json").read_text()) == {"lr": 0.1}
    status = RunReader(first.run_dir).status()
    assert (status.state, status.name, status.pid) == ("queued", "a", 0)
    assert first.run_id < second.run_id  # ids sort by creation time
    assert [s.run_id for s in list_runs(ws)] == [second.run_id, first.run_id]  # newest first


def test_status_is_replaced_atomically_under_concurrent_reads(ws: Workspace) -> None:
    writer = RunWriter.create(ws, name="atomic", config={})
    reader = RunReader(writer.run_dir)
    stop = threading.Event()

    def hammer() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            writer.update_status(step=step, error="x" * (step % 500))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        steps = [reader.status().step for _ in range(300)]  # a torn file would raise RunError
    finally:
        stop.set()
        thread.join()
    assert max(steps) > 0
    assert not [p for p in writer.run_dir.iterdir() if p.name.endswith(".tmp")]


def test_finish_keeps_the_first_verdict_and_rejects_non_terminal_states(ws: Workspace) -> None:
    writer = RunWriter.create(ws, name="v", config={})
    writer.start(device="cpu")
    assert writer.finish("failed", error="boom").state == "failed"
    assert writer.finish("succeeded").error == "boom"  # a late success does not hide a failure
    with pytest.raises(RunError, match="Cannot finish a run as 'running'"):
        writer.finish("running")


def test_reader_tails_only_new_bytes_and_waits_for_a_torn_last_line(ws: Workspace) -> None:
    writer = RunWriter.create(ws, name="tail", config={})
    reader = RunReader(writer.run_dir)
    writer.append_metrics([{"step": 0, "split": "train", "loss": 2.3}])
    assert [r["step"] for r in reader.new_metrics()] == [0]
    path = writer.run_dir / "metrics.jsonl"
    line = b'{"step":1,"split":"train","loss":1.5}\n'
    with open(path, "ab") as handle:
        handle.write(line[:10])  # a writer caught mid-line
    assert reader.new_metrics() == []
    with open(path, "ab") as handle:
        handle.write(line[10:])
    assert [r["step"] for r in reader.new_metrics()] == [1]
    assert reader.new_metrics() == []
    frame = reader.metrics()
    assert frame["step"].tolist() == [0, 1] and frame["loss"].tolist() == [2.3, 1.5]
    assert reader._metrics.offset == path.stat().st_size


def test_metrics_frame_grows_with_new_rows_and_columns_and_is_safe_to_edit(ws: Workspace) -> None:
    """metrics() keeps its frame between calls (a live dashboard asks every second) and only
    appends what arrived; a script metric first logged late becomes a column all the same."""
    writer = RunWriter.create(ws, name="grow", config={})
    reader = RunReader(writer.run_dir)
    assert reader.metrics().empty and "loss" in reader.metrics().columns
    writer.append_metrics([{"step": 0, "split": "train", "loss": 2.0}])
    first = reader.metrics()
    first["loss"] = -1.0  # a caller editing its copy must not change the next answer
    writer.append_metrics([{"step": 1, "split": "train", "loss": 1.0, "grad_norm": 3.0}])
    frame = reader.metrics()
    assert frame["step"].tolist() == [0, 1] and frame["loss"].tolist() == [2.0, 1.0]
    assert frame["grad_norm"].iloc[1] == 3.0 and np.isnan(frame["grad_norm"].iloc[0])
    assert reader.metrics().equals(frame)
    writer.append_metrics([{"step": 2, "split": "train", "loss": 0.5}])
    assert [r["step"] for r in reader.new_metrics()] == [2]  # read here, framed by metrics()
    assert reader.metrics()["step"].tolist() == [0, 1, 2]


def test_list_runs_reads_finished_runs_once_and_unfinished_ones_every_time(
    ws: Workspace,
) -> None:
    import shutil

    done = RunWriter.create(ws, name="done", config={})
    done.finish("succeeded")
    live = RunWriter.create(ws, name="live", config={})
    gone = RunWriter.create(ws, name="gone", config={})
    gone.finish("failed", error="boom")
    finished: FinishedRuns = {}
    first = list_runs(ws, finished=finished)
    assert [s.name for s in first] == ["gone", "live", "done"]
    assert set(finished) == {done.run_id, gone.run_id}
    status_file = done.run_dir / "status.json"
    kept = status_file.stat()
    status_file.write_text("{damaged")  # unchanged mtime: only stat-ed, not read again
    os.utime(status_file, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    live.update_status(step=7)  # an unfinished run is re-read
    shutil.rmtree(gone.run_dir)  # a deleted run leaves the listing
    second = list_runs(ws, finished=finished)
    assert [(s.name, s.step) for s in second] == [("live", 7), ("done", 0)]
    live.finish("cancelled")
    assert [s.state for s in list_runs(ws, finished=finished)] == ["cancelled", "succeeded"]
    assert live.run_id in finished
    live.update_status(state="queued", ended="")  # resumed ("leave it training"): read again
    assert [s.state for s in list_runs(ws, finished=finished)] == ["queued", "succeeded"]


rows_strategy = st.lists(
    st.fixed_dictionaries({"step": st.integers(0, 10**6), "loss": st.floats(0, 10)}), max_size=20
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_tailing_any_chunking_yields_every_row_once(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, float]], cuts: list[int]
) -> None:
    root = tmp_path_factory.mktemp("tail")
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    tail, seen, done = JsonlTail(RunFiles(root), "m.jsonl"), [], 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        with open(root / "m.jsonl", "ab") as handle:
            handle.write(data[done:cut])
        done = max(done, cut)
        seen.extend(tail.read_new())
    assert seen == rows


def test_find_run_accepts_a_unique_prefix_and_explains_misses(ws: Workspace) -> None:
    writer = RunWriter.create(ws, name="x", config={})
    assert find_run(ws, writer.run_id) == writer.run_dir
    assert find_run(ws, writer.run_id[:-2]) == writer.run_dir
    with pytest.raises(RunError, match=r"No run 'nope'.*recipe runs list"):
        find_run(ws, "nope")
    with pytest.raises(RunError, match="not a Recipe run directory"):
        RunReader(ws.root)


def test_choose_probe_is_class_balanced_and_seeded() -> None:
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    picked = choose_probe(labels, size=12, seed=3)
    counts = np.bincount(labels[picked], minlength=3)
    assert counts.tolist() == [4, 4, 4]
    assert np.array_equal(picked, choose_probe(labels, size=12, seed=3))
    assert len(choose_probe(labels, size=500, seed=0)) == len(labels)


def test_dynamics_helpers_match_hand_computed_answers() -> None:
    probs = np.array([
        [[0.9, 0.1], [0.2, 0.8]],
        [[0.4, 0.6], [0.3, 0.7]],
        [[0.7, 0.3], [0.6, 0.4]],
    ], dtype=np.float32)  # fmt: skip
    dyn = Dynamics(
        steps=np.array([0, 10, 20]),
        probs=probs,
        labels=np.array([0, 1]),
        sample_ids=np.array([7, 8]),
    )
    assert dyn.predictions().tolist() == [[0, 1], [1, 1], [0, 0]]
    assert dyn.flips().tolist() == [2, 1]
    np.testing.assert_allclose(dyn.true_class_prob(), [[0.9, 0.8], [0.4, 0.7], [0.7, 0.4]])
    frame = dyn.to_frame()
    assert len(frame) == 6 and frame["sample_id"].tolist()[:2] == [7, 8]


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def test_scripts_api_records_metrics_inputs_and_dynamics(ws: Workspace) -> None:
    model = _tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    probe_x, probe_y = torch.randn(6, 8, generator=gen), torch.tensor([0, 1, 2, 0, 1, 2])
    fed = []
    with start_run("script", config={"lr": 0.1, "note": Path("x")}, workspace=ws) as run:
        run.watch(model, probe=(probe_x, probe_y), every=4, capture=2, classes=["a", "b", "c"])
        for step in range(10):
            x, y = torch.randn(5, 8, generator=gen), torch.randint(0, 3, (5,), generator=gen)
            fed.append(x)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.log(step, loss=loss, lr=0.1)
    reader = RunReader(run.run_dir)
    assert reader.status().state == "succeeded" and reader.status().kind == "script"
    assert reader.config() == {"lr": 0.1, "note": "PosixPath('x')"}
    metrics = reader.metrics()
    assert metrics["step"].tolist() == list(range(10)) and metrics["loss"].notna().all()
    batch = reader.arrays("batches/batch_001.npz")
    np.testing.assert_array_equal(batch["x"], fed[1].numpy())  # the exact tensor fed
    assert reader.batch_names() == ["batches/batch_000.npz", "batches/batch_001.npz"]
    dyn = read_dynamics(reader)
    assert dyn.steps.tolist() == [0, 4, 8] and dyn.probs.shape == (3, 6, 3)
    np.testing.assert_allclose(dyn.probs.sum(axis=2), 1.0, atol=1e-4)
    assert dyn.labels.tolist() == probe_y.tolist() and dyn.classes == ("a", "b", "c")
    assert not model._forward_pre_hooks  # finish() removed every hook


def test_scripts_api_marks_a_raising_script_failed_and_keeps_its_metrics(ws: Workspace) -> None:
    with pytest.raises(ZeroDivisionError), start_run("bad", workspace=ws) as run:
        run.log(0, loss=1.0)
        run.log(1, loss=torch.tensor(0.5))
        raise ZeroDivisionError("planted")
    reader = RunReader(run.run_dir)
    assert reader.status().state == "failed"
    assert reader.status().error == "ZeroDivisionError: planted"
    assert reader.metrics()["loss"].tolist() == [1.0, 0.5]
    with pytest.raises(ConfigError, match="every must be >= 1"):
        start_run("w", workspace=ws).watch(_tiny_model(), every=0)


def test_finish_records_the_last_metric_step(ws: Workspace) -> None:
    """A run that fails between two status updates still says how far it got."""
    writer = RunWriter.create(ws, name="crash", config={})
    writer.start(device="cpu")
    writer.append_metrics([{"step": s, "split": "train", "loss": 1.0} for s in (25, 50, 75)])
    writer.files.append("metrics.jsonl", b'{"step": 10')  # a torn last line is skipped
    assert writer.status().step == 0
    status = writer.finish("failed", error="boom")
    assert (status.state, status.step, status.error) == ("failed", 75, "boom")
    assert RunReader(writer.files.root).status().step == 75
