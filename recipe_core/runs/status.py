"""`RunStatus`: what status.json says about a run, in the job model's vocabulary. Reading it
from a run directory is `runs.mirror.read_status` (a cache copy of a shared run is refreshed
first)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from recipe_core.errors import RunError
from recipe_core.jobs.state import FINISHED_STATES, JobState

# a run is never "missing": it exists once its directory does
STATES: tuple[str, ...] = tuple(s.value for s in JobState if s != JobState.MISSING)
TERMINAL_STATES = FINISHED_STATES
JSON_TYPES: dict[str, type] = {"str": str, "JobState": str, "int": int}  # field type -> JSON's
# What an unfinished run is doing, in order: the executor submitted it ("spawning"), its process
# started and imports PyTorch ("starting"), reads the dataset or the user's pipeline ("loading
# data"), builds the model, optimizer and probes ("building model"), runs steps ("training").
# An ended run keeps the stage it reached, so "failed while loading data" stays readable.
STAGES: tuple[str, ...] = ("spawning", "starting", "loading data", "building model", "training")


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    name: str
    state: JobState  # one of STATES (a plain string is converted)
    kind: str = "job"  # "job" (started by an executor or the CLI) | "script" (start_run)
    error: str = ""  # why the run failed or was cancelled; "" otherwise
    pid: int = 0  # process that owns the run while it runs; 0 when none yet
    host: str = ""  # hostname of that process
    device: str = ""  # "cpu" | "cuda:0" | ...
    created: str = ""  # ISO-8601 UTC
    started: str = ""
    ended: str = ""
    step: int = 0  # last optimizer step flushed to metrics
    pid_start: str = ""  # the pid's start time (/proc), so a reused pid is not mistaken for ours
    stage: str = ""  # one of STAGES; "" before submission and in status.json older than stages

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state {self.state!r} is not one of {[str(s) for s in STATES]}")
        object.__setattr__(self, "state", JobState(self.state))

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStatus:
        """Keys this version does not know are ignored; a known one of the wrong JSON type
        raises TypeError naming it (a later `s.step + 1` or `s.error[:80]` would, less clearly)."""
        known = {f.name: JSON_TYPES.get(str(f.type)) for f in fields(cls)}
        for key, value in data.items():
            want = known.get(key)
            if want is not None and (isinstance(value, bool) or not isinstance(value, want)):
                raise TypeError(f"{key} is {value!r}, not {want.__name__}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def unreadable(cls, run_id: str, reason: str) -> RunStatus:
        """What a run whose status.json cannot be parsed is listed as: state unknown, the
        reason as its error; its log and metrics stay readable."""
        return cls(run_id=run_id, name="", state=JobState.UNKNOWN,
                   error=f"status.json unreadable: {reason}. The log and metrics are intact; "
                   "restore status.json or delete the run folder.")  # fmt: skip


def parse_status(data: bytes, where: Path) -> RunStatus:
    """status.json's bytes as a RunStatus; RunError naming the file and the problem when they
    are not a JSON object with a run_id, a name and a known state, each of the right type."""
    try:
        record = json.loads(data)
        if not isinstance(record, dict):
            raise TypeError(f"it holds {_json_kind(record)}, not a JSON object")
        return RunStatus.from_dict(record)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise RunError(
            f"{where} is malformed ({exc}). Restore the file (a job rewrites it at its next "
            "update), or delete the run folder."
        ) from exc


def _json_kind(value: object) -> str:
    """What JSON calls a parsed value's type: 'an array', 'null', 'a number'..."""
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}  # fmt: skip
    return kinds.get(type(value), type(value).__name__)
