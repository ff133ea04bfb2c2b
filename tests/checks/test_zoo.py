"""The planted-bug zoo: every check flags its realistic bug and passes (or skips) correct setups.

An untested checker passes everything (the torchtest lesson), so each bug below is a real
mistake in a real training setup on real data, and each control is a setup that trains well.
"""

from __future__ import annotations

import functools

import pytest

from recipe_core.checks import CHECKS, CheckReport, run_all
from tests.checks import setups, setups_fitting, setups_layers, setups_losses
from tests.checks.zoo import Setup

FAMILIES = (setups, setups_fitting, setups_losses, setups_layers)  # one module per family group
CORRECT = {s.name: s for m in FAMILIES for s in m.correct_setups()}
BUGS = {s.name: s for m in FAMILIES for s in m.bug_setups()}
CORE = {"labels_and_outputs", "batch_stats", "gradient_flow", "overfit_one_batch",
        "input_independent_baseline", "optimizer_sanity"}  # fmt: skip


def _run(setup: Setup, only: list[str] | tuple[str, ...] | None) -> CheckReport:
    only = list(only) if only is not None else None
    return run_all(setup.model, setup.loader, setup.loss_fn, seed=0, only=only, **setup.options)


@functools.cache
def control_report(name: str) -> CheckReport:
    """Each control runs once per session, whichever tests ask (so `-k name` runs one)."""
    return _run(CORRECT[name], CORRECT[name].checks)


@pytest.mark.parametrize("name", list(CORRECT))
def test_correct_setup_raises_no_alarm(name: str) -> None:
    report = control_report(name)
    alarms = {
        r.name: (r.status, r.summary) for r in report.results if r.status not in ("pass", "skip")
    }
    assert not alarms
    passed = {r.name for r in report.results if r.status == "pass"}
    ran = {r.name for r in report.results}
    assert CORE & ran <= passed  # the core of the recipe runs on every control, it is not skipped


def test_every_check_passes_some_control() -> None:
    reports = [control_report(name) for name in CORRECT]
    passed = {r.name for rep in reports for r in rep.results if r.status == "pass"}
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


def test_zoo_is_big_enough_and_names_are_unique() -> None:
    assert len(BUGS) == sum(len(m.bug_setups()) for m in FAMILIES) >= 40
    assert len(CORRECT) == sum(len(m.correct_setups()) for m in FAMILIES) >= 20
