"""The planted-bug zoo: every check flags its realistic bug and passes (or skips) correct setups.

An untested checker passes everything (the torchtest lesson), so each bug below is a real
mistake in a real training setup on real data, and each control is a setup that trains well.
"""

from __future__ import annotations

import pytest

from recipe_core.checks import CHECKS, CheckReport, run_all
from tests.checks.setups import bug_setups, correct_setups
from tests.checks.zoo import Setup

CORRECT = {s.name: s for s in correct_setups()}
BUGS = {s.name: s for s in bug_setups()}
CORE = {"labels_and_outputs", "batch_stats", "gradient_flow", "overfit_one_batch",
        "input_independent_baseline", "optimizer_sanity"}  # fmt: skip


def _run(setup: Setup, only: list[str] | tuple[str, ...] | None) -> CheckReport:
    only = list(only) if only is not None else None
    return run_all(setup.model, setup.loader, setup.loss_fn, seed=0, only=only, **setup.options)


@pytest.fixture(scope="module")
def control_reports() -> dict[str, CheckReport]:
    return {name: _run(setup, setup.checks) for name, setup in CORRECT.items()}


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_setup_raises_no_alarm(name: str, control_reports: dict[str, CheckReport]) -> None:
    report = control_reports[name]
    alarms = {
        r.name: (r.status, r.summary) for r in report.results if r.status not in ("pass", "skip")
    }
    assert not alarms
    passed = {r.name for r in report.results if r.status == "pass"}
    ran = {r.name for r in report.results}
    assert CORE & ran <= passed  # the core of the recipe runs on every control, it is not skipped


def test_every_check_passes_some_control(control_reports: dict[str, CheckReport]) -> None:
    passed = {r.name for rep in control_reports.values() for r in rep.results if r.status == "pass"}
    assert passed == set(CHECKS)


@pytest.mark.filterwarnings("ignore:Using a target size")  # the broadcast bug, as planted
@pytest.mark.parametrize("name", list(BUGS))
def test_planted_bug_is_flagged(name: str) -> None:
    setup = BUGS[name]
    report = _run(setup, list(setup.flags))
    for check, statuses in setup.flags.items():
        result = report.get(check)
        assert result.status in statuses, (check, result.status, result.summary)
        assert result.fix, f"{check} flags {name} without saying what to change"
    assert all(r.status != "error" for r in report.results)


def test_every_check_has_a_planted_bug() -> None:
    assert {check for s in BUGS.values() for check in s.flags} == set(CHECKS)
