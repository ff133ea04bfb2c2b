"""The run's banner says what an unfinished run is doing from its first second (issue 17): the
stage status.json records, then "step N of M" once it trains."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def banner(state: str, stage: str, step: int, total: int) -> None:
    from app import run_widgets
    from recipe_core.runs import RunStatus

    status = RunStatus(run_id="r1", name="n", state=state, stage=stage, step=step)  # type: ignore[arg-type]
    run_widgets.status_banner(status, total=total)


@pytest.mark.parametrize(
    ("state", "stage", "says"),
    [
        ("queued", "spawning", "**queued**: spawning the job process"),
        ("running", "starting", "**running**: importing PyTorch"),
        ("running", "loading data", "**running**: loading data"),
        ("running", "building model", "**running**: building the model"),
        ("running", "training", "**running**: step 7 of 50"),
    ],
)
def test_an_unfinished_run_shows_its_stage(state: str, stage: str, says: str) -> None:
    at = AppTest.from_function(banner, args=(state, stage, 7, 50), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [i.value for i in at.info] == [says]
