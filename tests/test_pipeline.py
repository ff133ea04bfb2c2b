"""The pipeline contract: specs, the bad-input zoo (each a clear message naming problem and fix,
with the user's own traceback lines), and checks / "what the net sees" / training on it."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from recipe_core import Pipeline, PipelineError, load_pipeline
from recipe_core.batch.see import see_pipeline
from recipe_core.checks import CheckReport, check_pipeline
from recipe_core.jobs.check_job import list_jobs, load_report, read_check_state
from recipe_core.train.pipeline import PipelineTrainConfig, train_pipeline
from recipe_core.workspace import open_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEADER = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from recipe_core import Pipeline

x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
y = (x[:, 0] > 0).long()
"""
GOOD = """
def pipeline():
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    return Pipeline(lambda: nn.Linear(6, 2), loader, nn.CrossEntropyLoss(), num_classes=2)
"""


def returning(expression: str) -> str:
    """A pipeline file whose function returns `expression`."""
    return f"def pipeline():\n    return {expression}\n"


MODEL, LOSS = "nn.Linear(6, 2)", "nn.CrossEntropyLoss()"


def write(tmp_path: Path, body: str, name: str = "my_pipeline.py") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def test_a_file_spec_loads_and_is_named_after_the_spec(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    made = load_pipeline(f"{path}:pipeline")
    assert isinstance(made, Pipeline) and made.name == f"{path}:pipeline"
    assert made.task == "classification" and made.num_classes == 2


def test_a_module_spec_loads_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, GOOD, name="team_pipeline_mod.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_pipeline("team_pipeline_mod:pipeline").num_classes == 2


@pytest.mark.parametrize(
    ("spec", "body", "says"),
    [
        ("no_colon", GOOD, "is not FILE.py:NAME"),
        ("{dir}/missing.py:pipeline", GOOD, "does not exist"),
        ("{file}:nope", GOOD, "has no attribute 'nope'. Functions it defines: pipeline"),
        ("{file}:pipeline", returning("42"), "returned int, not a recipe_core.Pipeline"),
        ("{file}:pipeline", "pipeline = 3\n", "is a int, not a function"),
        ("{file}:pipeline", returning("int('no data dir')"), "raised ValueError: invalid literal"),
        ("{file}:pipeline", "import not_a_real_module_xyz\n", "ModuleNotFoundError"),
        ("{file}:pipeline", returning(f"Pipeline({MODEL}, [], {LOSS}, task='ranking')"),
         "Valid tasks: classification"),
        ("{file}:pipeline", returning(f"Pipeline({MODEL}, 5, {LOSS})"), "is not iterable"),
        ("{file}:pipeline", returning(f"Pipeline({MODEL}, [], 'mse')"), "is not callable"),
        ("not.a.real.module_xyz:pipeline", GOOD, "No module named 'not'"),
    ],
)  # fmt: skip
def test_bad_specs_say_what_is_wrong_and_how_to_fix_it(
    tmp_path: Path, spec: str, body: str, says: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PipelineError, match=None) as caught:
        load_pipeline(spec.format(dir=tmp_path, file=path))
    assert says in str(caught.value)


def test_an_exception_in_user_code_carries_the_users_own_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "def helper():\n    return 1 / 0\n\n" + returning("helper()"))
    with pytest.raises(PipelineError) as caught:
        load_pipeline(f"{path}:pipeline")
    lines = caught.value.user_traceback
    assert "my_pipeline.py" in lines and "return 1 / 0" in lines and "ZeroDivisionError" in lines
    assert "recipe_core" not in lines  # Recipe's own frames are left out


def test_a_file_outside_the_allowed_roots_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(PipelineError, match="outside the allowed folders"):
        load_pipeline(f"{path}:pipeline", roots=[tmp_path / "elsewhere"])


# -- using a pipeline -------------------------------------------------------------------------
def linear_pipeline(**kwargs: object) -> Pipeline:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:192], y[:192]), 32)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[192:], y[192:]), 32)
    base: dict[str, object] = dict(task="classification", num_classes=2, val_loader=val,
                                   optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))  # fmt: skip
    base.update(kwargs)
    return Pipeline(lambda: nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2)), train,
                    nn.CrossEntropyLoss(), **base)  # type: ignore[arg-type]  # fmt: skip


def test_dict_batches_need_the_hook_and_work_with_it() -> None:
    plain = linear_pipeline()
    dicts = [{"input": x, "label": y} for x, y in plain.train_loader]
    with pytest.raises(PipelineError, match=r"a dict with keys \['input', 'label'\].*to_xy="):
        check_pipeline(Pipeline(plain.model, dicts, plain.loss_fn, num_classes=2))
    hooked = Pipeline(plain.model, dicts, plain.loss_fn, num_classes=2,
                      to_xy=lambda b: (b["input"], b["label"]))  # fmt: skip
    report = check_pipeline(hooked, only=["labels_and_outputs", "loss_at_init"])
    assert [r.status for r in report.results] == ["pass", "pass"]


def test_a_model_that_raises_is_a_finding_with_the_users_traceback() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ torch.ones(3, 2)  # (B, 6) @ (3, 2): shapes do not match

    report = check_pipeline(linear_pipeline(), only=["labels_and_outputs"])
    assert report.results[0].status == "pass"
    broken = Pipeline(Broken, linear_pipeline().train_loader, nn.CrossEntropyLoss(), num_classes=2)
    result = check_pipeline(broken, only=["labels_and_outputs"]).results[0]
    assert result.status == "fail" and "model(x) raised RuntimeError" in result.summary
    assert "return x @ torch.ones(3, 2)" in result.evidence["traceback"]


def test_a_non_scalar_loss_is_a_finding() -> None:
    per_sample = nn.CrossEntropyLoss(reduction="none")
    result = check_pipeline(linear_pipeline(), only=["labels_and_outputs"]).results[0]
    assert result.status == "pass"
    bad = Pipeline(linear_pipeline().model, linear_pipeline().train_loader, per_sample,
                   num_classes=2)  # fmt: skip
    result = check_pipeline(bad, only=["labels_and_outputs"]).results[0]
    assert result.status == "fail" and "expected a scalar tensor" in result.summary


def test_val_loader_supplies_the_held_out_batches() -> None:
    made = linear_pipeline()
    report = check_pipeline(made, only=["input_independent_baseline"])
    assert report.results[0].status == "pass"
    # labels in the val loader that have nothing to do with the inputs: held-out loss is no
    # better with real inputs, so the baseline check fails on the held-out side alone
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=g)
    noise = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, torch.randint(0, 2, (64,), generator=g)), 32
    )
    report = check_pipeline(linear_pipeline(val_loader=noise), only=["input_independent_baseline"])
    assert report.results[0].status == "fail"


def test_a_saved_report_appears_with_the_check_jobs(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    report = check_pipeline(linear_pipeline(), only=["labels_and_outputs"])
    folder = report.save(ws, name="my_script.py")
    (job,) = list_jobs(ws)
    assert job.folder == folder and job.source == "script" and job.pipeline == "my_script.py"
    assert read_check_state(folder).state == "succeeded"
    assert load_report(folder).to_dict() == CheckReport.from_dict(report.to_dict()).to_dict()


# -- what the net sees, beyond images ---------------------------------------------------------
class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)[:, :2].float()


@pytest.mark.parametrize(
    ("x", "layout", "warning"),
    [
        (torch.randint(1, 30, (8, 20)), "tokens", None),
        (torch.cat([torch.randint(1, 30, (8, 5)), torch.zeros(8, 15, dtype=torch.long)], 1),
         "tokens", "mostly_padding"),
        (torch.randn(8, 1, 8000) * 0.1, "audio", None),
        (torch.randn(8, 1, 8000) * 8000, "audio", "audio_not_scaled"),
        (torch.randn(8, 5), "table", None),
        (torch.randn(8, 5) * 100 + 50, "table", "not_normalized"),
        (torch.rand(8, 3, 16, 16), "image_chw", None),
    ],
)  # fmt: skip
def test_see_decodes_every_kind_and_warns(
    tmp_path: Path, x: torch.Tensor, layout: str, warning: str | None
) -> None:
    y = torch.arange(8) % 2
    made = Pipeline(Flatten(), [(x, y)], nn.CrossEntropyLoss(), num_classes=2,
                    decode=[chr(97 + i % 26) for i in range(30)])  # fmt: skip
    report = see_pipeline(made, tmp_path, batches=1)
    (batch,) = report["batches"]
    assert batch["layout"] == layout and batch["shape"] == list(x.shape)
    codes = [w["code"] for w in batch["warnings"]]
    if warning is None:
        assert not [c for c in codes if c != "scrambled"]
    else:
        assert warning in codes
    assert (tmp_path / "batch_000.png").stat().st_size > 100
    assert json.loads((tmp_path / "seen.json").read_text()) == report


# -- training a pipeline ----------------------------------------------------------------------
def test_overfit_reaches_near_zero_and_records_like_a_built_in_run(tmp_path: Path) -> None:
    config = PipelineTrainConfig("inline", preset="overfit", steps=200, dynamics_every=20)
    result = train_pipeline(config, workspace=tmp_path / "ws", pipeline=linear_pipeline())
    assert result.train_loss < 0.05 and not math.isnan(result.val_loss)
    run = Path(result.run_dir)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "succeeded" and status["step"] == 200
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(200))
    assert [r["step"] for r in rows if r["split"] == "val"] == [100, 200]  # eval_every, the end
    batch = np.load(run / "batches" / "batch_000.npz")
    assert batch["x"].shape == (32, 6) and batch["y"].shape == (32,)
    assert (run / "probe.npz").exists() and (run / "dynamics.jsonl").exists()
    assert (run / "checkpoints" / "last.pt").exists()


def test_a_loss_that_explodes_fails_the_run_with_a_readable_status(tmp_path: Path) -> None:
    made = linear_pipeline(optimizer=lambda p: torch.optim.SGD(p, lr=1e6))
    config = PipelineTrainConfig("inline", preset="baseline", steps=100)
    with pytest.raises(Exception, match="diverged"):
        train_pipeline(config, workspace=tmp_path / "ws", pipeline=made)
    (run,) = (tmp_path / "ws" / "runs").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "diverged" in status["error"]


def test_recipe_app_offers_the_project_tables_and_the_flags_pipelines(tmp_path: Path) -> None:
    from recipe_core.cli.app_cmd import offered_pipelines
    from recipe_core.errors import ConfigError

    write(tmp_path, GOOD, name="mine.py")
    (tmp_path / "recipe.toml").write_text('[pipelines]\nmine = "mine.py:pipeline"\n')
    offered = offered_pipelines([f"{tmp_path / 'mine.py'}:other"], tmp_path)
    assert offered == {"mine": f"{tmp_path / 'mine.py'}:pipeline",
                       "mine:other": f"{tmp_path / 'mine.py'}:other"}  # fmt: skip
    with pytest.raises(ConfigError, match="does not exist"):
        offered_pipelines(["nope.py:pipeline"], tmp_path)
    (tmp_path / "recipe.toml").write_text("[pipelines\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        offered_pipelines([], tmp_path)


def test_channels_last_is_used_only_where_it_leaves_the_output_unchanged() -> None:
    from recipe_core.train.pipeline import safe_channels_last

    x = torch.randn(4, 3, 8, 8)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))
    assert safe_channels_last(conv, x)
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)

    class ViewsItsInput(nn.Module):  # x.view() raises on NHWC memory
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 3, 1), nn.Linear(192, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x.view(x.shape[0], -1) + self.conv(x).reshape(x.shape[0], -1))

    model = ViewsItsInput()
    assert not safe_channels_last(model, x)
    assert model.conv.weight.is_contiguous()  # left as it was
    assert not safe_channels_last(nn.Linear(6, 2), torch.randn(4, 6))  # not images: untouched
