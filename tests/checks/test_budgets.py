"""Budgets: verdicts never depend on machine load. Work is counted in steps and samples, wall
time only splits the user's max_seconds into per-check shares, and the report names the checks
it cut short."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from rich.console import Console

from recipe_core.checks import CheckReport, CheckResult
from recipe_core.checks.context import CheckContext
from recipe_core.cli.check_cmd import print_report
from tests.checks.test_zoo import FAMILIES, _run
from tests.checks.zoo import Setup, digits, linear, loader

BUSY_LOOPS = 3  # on 2 cores: every check runs at well under half speed
TRAINING = ("optimizer_sanity", "input_independent_baseline", "too_good_to_be_true",
            "overfit_one_batch", "capacity_ladder")  # fmt: skip
# Cheap setups that reach every training check's decision: bugs decided early and late
# (memorising at 80 steps, overfit plateau, divergence, a leak) and controls that pass them.
UNDER_LOAD = {
    "dataset_index_off_by_one": None, "detached_output": None, "lr_10_sgd": None,
    "label_column_in_features": None, "width_ignores_fan_in": None,
    "mlp_digits": TRAINING, "regression_standardised": TRAINING[:4],
}  # fmt: skip


@contextmanager
def busy_cpu(loops: int) -> Iterator[None]:
    """`loops` processes spinning at 100 % CPU until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(loops)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def _fresh_setups() -> dict[str, Setup]:
    """The zoo built anew: a seeded loader's generator advances with every pass over it, so a
    second run on the same Setup would read other batches."""
    return {s.name: s for m in FAMILIES for s in [*m.bug_setups(), *m.correct_setups()]}


def _verdicts() -> dict[str, list[tuple[str, str, str]]]:
    """(check, status, observed) of every setup in UNDER_LOAD."""
    found = {}
    setups = _fresh_setups()
    for name, checks in UNDER_LOAD.items():
        setup = setups[name]
        only = list(setup.flags) if checks is None else list(checks)
        report = _run(setup, only)
        found[name] = [(r.name, str(r.status), r.observed) for r in report.results]
    return found


def test_a_busy_machine_gets_the_same_verdicts() -> None:
    quiet = _verdicts()
    assert {s for rows in quiet.values() for _, s, _ in rows} <= {"pass", "fail", "warn"}
    assert {c for rows in quiet.values() for c, _, _ in rows} >= set(TRAINING)
    with busy_cpu(BUSY_LOOPS):
        loaded = _verdicts()
    assert loaded == quiet  # statuses and the measured numbers, check for check


def test_each_check_gets_an_equal_share_of_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("recipe_core.checks.context.time.monotonic", lambda: clock[0])
    x, y = digits()
    ctx = CheckContext(linear(), loader(x, y), lambda o, t: o.sum(), task="classification",
                       num_classes=10, optimizer=None, device="cpu", seed=0,
                       max_seconds=12.0)  # fmt: skip
    ctx.start_check(4)
    assert ctx.share == pytest.approx(3.0)
    clock[0] += 1.0  # the first check used 1 s of its 3: the 2 s left over pass on
    ctx.start_check(3)
    assert ctx.share == pytest.approx(11.0 / 3)
    ctx.check_time()  # within its share
    clock[0] += 4.0
    with pytest.raises(Exception, match="share of max_seconds"):
        ctx.check_time()
    assert ctx.ran_short


def test_without_max_seconds_a_check_has_no_share() -> None:
    x, y = digits()
    ctx = CheckContext(linear(), loader(x, y), lambda o, t: o.sum(), task="classification",
                       num_classes=10, optimizer=None, device="cpu", seed=0,
                       max_seconds=None)  # fmt: skip
    ctx.start_check(1)
    assert math.isinf(ctx.share) and math.isinf(ctx.share_deadline)


def test_the_cli_names_the_checks_max_seconds_cut_short() -> None:
    results = (CheckResult("overfit_one_batch", "warn", "cut short", "best loss 1.2", "≤ 0.2",
                           "Raise max_seconds"),
               CheckResult("capacity_ladder", "skip", "time budget", "", ""))  # fmt: skip
    report = CheckReport(results, {"overfit_one_batch": 3.0}, "cpu", 0,
                         ("overfit_one_batch", "capacity_ladder"))  # fmt: skip
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "max_seconds cut short: overfit_one_batch, capacity_ladder" in text
    assert report.to_dict()["cut_short"] == ["overfit_one_batch", "capacity_ladder"]
