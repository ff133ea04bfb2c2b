"""What a check returns: `CheckResult` per check, gathered in a `CheckReport`."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recipe_core.jobs.process import new_job_folder, write_progress
from recipe_core.jobs.state import JobProgress, JobState
from recipe_core.workspace import Workspace, open_workspace

# A saved report is a folder <workspace>/checks/<id>/, the same a check job writes, so the
# dashboard's Checks page lists a script's report beside the jobs it started.
CHECKS_DIR = "checks"
JOB_FILE = "job.json"  # what was checked (written first)
REPORT_FILE = "report.json"  # CheckReport.to_dict()


class CheckStatus(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # could not decide (missing input, not applicable, out of time)
    ERROR = "error"  # a bug in Recipe, never in your code


STATUSES: tuple[str, ...] = tuple(s.value for s in CheckStatus)  # display order, plain str


@dataclass(frozen=True)
class CheckResult:
    name: str  # e.g. "loss_at_init"
    status: CheckStatus  # a plain string is accepted and converted
    summary: str  # one short paragraph: what was checked, what was seen, why it matters
    observed: str  # the measured value, with units
    expected: str  # what a healthy setup gives, with the tolerance
    fix: str = ""  # what to change ("" when nothing needs changing)
    evidence: Mapping[str, Any] = field(default_factory=dict, repr=False)  # arrays for plots

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {[str(s) for s in STATUSES]}")
        object.__setattr__(self, "status", CheckStatus(self.status))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "observed": self.observed,
            "expected": self.expected,
            "fix": self.fix,
            "evidence": {k: jsonable(v) for k, v in self.evidence.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """The inverse of `to_dict` (evidence stays JSON: lists, not tensors)."""
        evidence = dict(data.get("evidence", {}))
        return cls(data["name"], data["status"], data["summary"], data["observed"],
                   data["expected"], data.get("fix", ""), evidence)  # fmt: skip


def verdict(
    name: str,
    status: CheckStatus | str,
    summary: str,
    *,
    observed: str = "",
    expected: str = "",
    fix: str = "",
    evidence: Mapping[str, Any] | None = None,
) -> CheckResult:
    """A CheckResult with keyword fields (reads better at call sites than seven positionals)."""
    return CheckResult(name, CheckStatus(status), summary, observed, expected, fix,
                       dict(evidence or {}))  # fmt: skip


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per check, s
    device: str = "cpu"
    seed: int = 0
    cut_short: tuple[str, ...] = ()  # checks max_seconds stopped (or never started), run order

    @property
    def failed(self) -> bool:
        return any(r.status == CheckStatus.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        return {str(s): sum(r.status == s for r in self.results) for s in STATUSES}

    def get(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"No check named {name!r}; ran: {[r.name for r in self.results]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "seed": self.seed,
            "counts": self.counts(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "cut_short": list(self.cut_short),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckReport:
        """The inverse of `to_dict` (evidence stays JSON: lists, not tensors)."""
        results = tuple(CheckResult.from_dict(r) for r in data["results"])
        seconds = {str(k): float(v) for k, v in data.get("seconds", {}).items()}
        cut = tuple(str(n) for n in data.get("cut_short", ()))  # absent in older report.json
        return cls(results, seconds, str(data.get("device", "cpu")), int(data.get("seed", 0)), cut)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def save(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        *,
        name: str = "script",
        dataset: str = "",
        model: str = "",
    ) -> Path:
        """Save this report to the workspace, where the Checks page shows it like a job's;
        returns its folder. `name` says what was checked (a pipeline spec, a script name);
        `dataset` and `model`, when the report is about a dataset and a built-in model, let
        the Home checklist count it for that dataset."""
        ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
        folder = new_check_folder(ws)
        now = time.time()
        write_job_file(folder, {"dataset": dataset, "model": model, "pipeline": name,
                                "source": "script",
                                "seed": self.seed, "max_seconds": None, "batch_size": 0,
                                "created": now, "only": None})  # fmt: skip
        write_report(folder, self)
        done = len(self.results)
        write_progress(folder, JobProgress(JobState.SUCCEEDED, done=done, total=done,
                                           started=now, updated=now))  # fmt: skip
        return folder


def new_check_folder(workspace: Workspace) -> Path:
    return new_job_folder(workspace.subdir(CHECKS_DIR))


def write_job_file(folder: Path, job: Mapping[str, Any]) -> None:
    (folder / JOB_FILE).write_text(json.dumps(dict(job), indent=1))


def write_report(folder: Path, report: CheckReport) -> None:
    """report.json, replaced atomically (a reader never sees half a report)."""
    tmp = folder / f"{REPORT_FILE}.tmp"
    tmp.write_text(report.to_json(indent=1))
    os.replace(tmp, folder / REPORT_FILE)


def jsonable(value: Any) -> Any:
    """Evidence as plain JSON types: tensors and arrays become lists, NaN/Inf become None."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to("cpu").numpy()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value
