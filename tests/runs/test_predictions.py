"""Per-sample predictions: what the loop writes equals a direct evaluation of the saved model;
the files stay bounded; scripts and pipeline runs write the same rows."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from recipe_core.errors import ConfigError, RunError
from recipe_core.runs import RunReader, RunWriter
from recipe_core.runs.predictions import RECENT, PredictionStore
from recipe_core.train import TrainConfig, make_config, train
from recipe_core.train.data import Batcher, load_train_data
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline
from recipe_core.train.predictions import prediction_frame
from recipe_core.train.script import start_run
from recipe_core.train.setup import build_train_model
from recipe_core.workspace import open_workspace
from tests.test_pipeline import linear_pipeline
from tests.test_train import make_digits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> RunReader:
    """60 steps on 300 digits, evaluated every 10: six evaluations, so the ring wraps."""
    root = tmp_path_factory.mktemp("pred")
    digits = make_digits(root / "digits", limit=300)
    config = make_config(str(digits), image_size=16, device="cpu", steps=60, eval_every=10,
                         batch_size=32)  # fmt: skip
    result = train(config, workspace=str(root / "ws"))
    return RunReader(result.run_dir)


def test_the_reader_returns_what_a_direct_evaluation_of_the_final_model_gives(
    short_run: RunReader,
) -> None:
    config = TrainConfig.from_dict(short_run.config())
    data = load_train_data(config.dataset, image_size=16, val_fraction=config.val_fraction,
                           seed=config.seed)  # fmt: skip
    model = build_train_model(config, in_channels=data.train.channels, labels=data.train.labels,
                              num_classes=len(data.classes))  # fmt: skip
    state = torch.load(io.BytesIO(short_run.files.read_bytes("checkpoints/last.pt")))
    model.load_state_dict(state["model"])
    val = Batcher(data.val, mean=data.mean, std=data.std, batch_size=1024,
                  device=torch.device("cpu"), seed=0)  # fmt: skip
    with torch.no_grad():
        logits = model.eval()(val.prepare(val.images)).float()
    probs = logits.softmax(dim=1)
    got = short_run.predictions()  # the latest step: the final evaluation, same weights
    assert int(got["step"].iloc[0]) == 60 == state["step"]
    assert got["sample_id"].tolist() == data.val.sample_ids.tolist()
    np.testing.assert_array_equal(got["label"], data.val.labels.numpy())
    np.testing.assert_array_equal(got["predicted"], logits.argmax(dim=1).numpy())
    ref_loss = F.cross_entropy(logits, data.val.labels, reduction="none").numpy()
    np.testing.assert_allclose(got["loss"], ref_loss, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["confidence"], probs.max(dim=1).values, rtol=1e-4)
    top = probs.topk(5, dim=1)
    np.testing.assert_allclose(got[[f"top{i}_prob" for i in range(1, 6)]], top.values, rtol=1e-4)
    p_label = probs[torch.arange(len(probs)), data.val.labels].numpy()
    others = probs.clone()
    others[torch.arange(len(probs)), data.val.labels] = -1
    np.testing.assert_allclose(got["margin"], p_label - others.max(dim=1).values.numpy(),
                               rtol=1e-4, atol=1e-6)  # fmt: skip
    assert (got["correct"] == (got["margin"] > 0)).all()
    val_row = short_run.metrics().query("split == 'val' and step == 60").iloc[0]
    assert got["loss"].mean() == pytest.approx(val_row["loss"], rel=1e-4)


def test_files_stay_bounded_and_every_evaluation_is_summarised(short_run: RunReader) -> None:
    evals = sorted(short_run.metrics().query("split == 'val'")["step"].astype(int))
    assert evals == [10, 20, 30, 40, 50, 60]
    steps = short_run.prediction_steps()
    losses = short_run.metrics().query("split == 'val'").set_index("step")["loss"]
    best = int(losses.idxmin())
    assert steps == sorted({10, best, *evals[-RECENT:]})
    assert len(short_run.files.list("predictions")) == 4 + RECENT  # index, csv, first, best, ring
    per_class = short_run.per_class()
    assert sorted(per_class["step"].unique()) == evals
    last = short_run.predictions(60)
    by_class = last.groupby("label")["correct"].mean()
    np.testing.assert_allclose(per_class.query("step == 60").set_index("label")["accuracy"],
                               by_class)  # fmt: skip
    history = short_run.prediction_history(int(last["sample_id"].iloc[0]))
    assert history["step"].tolist() == steps
    with pytest.raises(RunError, match=r"Step 15 is not kept in full.*kept: \["):
        short_run.predictions(15)


def test_a_script_logs_predictions_through_the_same_rows(tmp_path: Path) -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    with start_run("script", workspace=tmp_path) as run:
        run.log_predictions(5, [11, 12, 13], probs, [0, 1, 1])
        run.log_predictions(9, torch.tensor([11, 12, 13]), torch.tensor(probs), [0, 2, 1])
        with pytest.raises(ConfigError, match="pass softmax"):
            run.log_predictions(9, [1], [[2.0, 1.0]], [0])
    reader = RunReader(Path(run.run_dir))
    first = reader.predictions(5)
    assert first["predicted"].tolist() == [0, 2, 0]
    assert first["correct"].tolist() == [True, False, False]
    np.testing.assert_allclose(first["loss"], -np.log([0.7, 0.3, 0.4]), rtol=1e-5)
    np.testing.assert_allclose(first["margin"], [0.5, -0.3, -0.1], atol=1e-6)
    assert reader.prediction_history(12)["correct"].tolist() == [False, True]


def test_a_resumed_store_continues_the_history(tmp_path: Path) -> None:
    writer = RunWriter.create(open_workspace(tmp_path), name="r", config={})
    rows = [prediction_frame(s, [1, 2], [[0.9, 0.1], [0.4, 0.6]], [0, 0]) for s in (1, 2, 3)]
    PredictionStore(writer.files).add(rows[0])
    PredictionStore(writer.files).add(rows[1])  # a new process: the index is read back
    PredictionStore(writer.files).add(rows[2])
    reader = RunReader(writer.run_dir)
    assert reader.prediction_steps() == [1, 2, 3]
    assert sorted(reader.per_class()["step"].unique()) == [1, 2, 3]


def test_a_pipeline_run_keys_predictions_by_val_loader_position(tmp_path: Path) -> None:
    config = PipelineTrainConfig(pipeline="tests:linear", steps=30, eval_every=10, device="cpu")
    result = train_pipeline(config, workspace=str(tmp_path), pipeline=linear_pipeline())
    reader = RunReader(result.run_dir)
    got = reader.predictions()
    assert got["sample_id"].tolist() == list(range(64))  # the 64 val rows, in loader order
    val_y = torch.cat([y for _, y in linear_pipeline().val_loader]).numpy()
    np.testing.assert_array_equal(got["label"], val_y)
    acc = reader.metrics().query("split == 'val'")["accuracy"].iloc[-1]
    assert got["correct"].mean() == pytest.approx(acc)
    assert isinstance(reader.per_class(), pd.DataFrame)
