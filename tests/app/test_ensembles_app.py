"""AppTest of the Ensembles page (pick runs, evaluate, ensemble vs best single run) and of the
Home checklist's steps 4-6 turning done on real runs, a real search and a saved ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.widgets import md
from recipe_core import open_workspace
from recipe_core.explore.ensemble import evaluate_ensemble, find_ensemble, list_ensembles
from recipe_core.runs import RunWriter
from recipe_core.train import make_config, train
from recipe_core.tune.trials import create_trials
from tests.app.helpers import MAIN, image_captions, open_page
from tests.conftest import SAMPLE_DIGITS

QUICK = dict(model="linear", image_size=8, steps=30, device="cpu", eval_every=0, log_every=10,
             dynamics_every=0, insides_every=0, capture_batches=0)  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A stalled plain run, a regularised one, a two-trial search (stalled too, so the
    regularised run is the one to beat them) and an ensemble of the first two, all on the
    sample digits (about 5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ws = open_workspace(tmp_path_factory.mktemp("ensembles_app") / "ws")
    digits = str(SAMPLE_DIGITS)
    plain = train(make_config(digits, lr=1e-5, **QUICK), workspace=ws).run_id
    reg = train(make_config(digits, lr=1e-2, weight_decay=1e-4, **QUICK), workspace=ws).run_id
    base = make_config(digits, **QUICK)
    trials = create_trials(ws, base, [{"lr": 1e-5, "seed": 1}, {"lr": 1e-5, "seed": 2}],
                           search_id="feed01", metric="val_loss")  # fmt: skip
    for trial in trials:
        train(trial.config, run=RunWriter(trial.run_dir))
    ensemble = evaluate_ensemble(ws, [plain, reg], device="cpu")
    torch.set_num_threads(before)
    return {"root": ws.root, "plain": plain, "reg": reg,
            "trials": [t.run_id for t in trials], "ensemble": ensemble}  # fmt: skip


@pytest.fixture
def at(workspace: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("RECIPE_WORKSPACE", str(workspace["root"]))
    monkeypatch.setenv("RECIPE_DATASET", str(SAMPLE_DIGITS))
    return AppTest.from_file(MAIN, default_timeout=90).run()


def test_pick_runs_evaluate_and_compare(at: AppTest, workspace: dict[str, object]) -> None:
    open_page(at, "ensembles")
    picker = at.multiselect(key="ensemble_runs")
    trials = [str(workspace["reg"]), workspace["trials"][0]]  # type: ignore[index]
    assert len(picker.options) == 4  # the four finished runs of the digits, named by run id
    assert all(any(o.startswith(str(t)) for o in picker.options) for t in trials)
    picker.set_value(trials).run()
    assert not at.exception and at.button(key="ensemble_evaluate").label == "Evaluate the ensemble"
    at.button(key="ensemble_evaluate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    result = find_ensemble(open_workspace(workspace["root"]), trials)  # type: ignore[arg-type]
    assert result is not None
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ensemble val loss"] == f"{result.val_loss:.4f}"
    assert metrics["Ensemble val accuracy"] == f"{result.val_accuracy:.2%}"
    assert metrics["Only the ensemble gets right"] == str(len(result.only_ensemble_right))
    table = at.dataframe[0].value
    assert list(table["model"]) == [*trials, "ensemble"]
    assert table["val loss"].tolist() == pytest.approx(
        [m.val_loss for m in result.members] + [result.val_loss]
    )
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    loss = next(b for b in bars if b["layout"]["title"]["text"].startswith("validation loss"))
    assert loss["data"][0]["y"] == pytest.approx(table["val loss"].tolist())
    expanders = [e.label for e in at.expander]
    assert f"Ensemble right, best single run wrong ({len(result.better_than_best)})" in expanders
    shown = len(image_captions(at))
    assert shown == len(result.only_ensemble_right) + len(result.better_than_best) + len(
        result.worse_than_best
    )
    at.run()  # a rerun shows the saved result without evaluating again
    assert at.button(key="ensemble_evaluate").label == "Evaluate again"
    assert {m.label: m.value for m in at.metric}["Ensemble val loss"] == f"{result.val_loss:.4f}"


def test_one_run_is_not_an_ensemble(at: AppTest, workspace: dict[str, object]) -> None:
    open_page(at, "ensembles")
    at.multiselect(key="ensemble_runs").set_value([workspace["plain"]]).run()
    assert not at.exception and not at.button
    assert "Pick 2 to 5 runs." in [c.value for c in at.caption]


def test_home_checklist_steps_4_to_6_are_done_with_evidence(
    at: AppTest, workspace: dict[str, object]
) -> None:
    assert not at.exception
    lines = [m.value for m in at.markdown if m.value.startswith(("✅", "⬜"))]
    assert len(lines) == 8
    regularise, tune, squeeze = lines[5:]
    assert regularise.startswith("✅ **Regularise") and md(workspace["reg"]) in regularise
    assert "weight decay 0\\.0001" in regularise and "vs unregularised" in regularise
    assert tune.startswith("✅ **Tune") and md("Search feed01: 2 trial(s), 2 finished") in tune
    saved = list_ensembles(open_workspace(workspace["root"]))  # type: ignore[arg-type]
    assert squeeze.startswith("✅ **Squeeze out the juice") and "Ensemble of 2 runs" in squeeze
    assert any(md(f"val loss {e.val_loss:.4f} vs best single") in squeeze for e in saved)
    links = [p.proto.page for p in at.get("page_link")]
    assert links[5:8] == ["runs", "runs", "ensembles"]  # each step's "Go there"


def test_a_refusal_is_shown_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    ws = open_workspace(tmp_path / "ws")
    runs = [train(make_config(str(SAMPLE_DIGITS), seed=s, **QUICK), workspace=ws) for s in (0, 1)]
    for checkpoint in (runs[1].run_dir / "checkpoints").glob("*.pt"):
        checkpoint.unlink()  # as if the run ended before writing one
    monkeypatch.setenv("RECIPE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("RECIPE_DATASET", str(SAMPLE_DIGITS))
    at = open_page(AppTest.from_file(MAIN, default_timeout=90).run(), "ensembles")
    at.multiselect(key="ensemble_runs").set_value([r.run_id for r in runs]).run()
    at.button(key="ensemble_evaluate").click().run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert md("has no checkpoint") in error and md("Train it again, or pick another run") in error
    assert not at.metric and list_ensembles(ws) == []
