"""`RunStatus`: what status.json says about a run, in the job model's vocabulary. Reading it
from a run directory is `runs.mirror.read_status` (a cache copy of a shared run is refreshed
first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from recipe_core.jobs.state import FINISHED_STATES, JobState

# a run is never "missing": it exists once its directory does
STATES: tuple[str, ...] = tuple(s.value for s in JobState if s != JobState.MISSING)
TERMINAL_STATES = FINISHED_STATES


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

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"state {self.state!r} is not one of {[str(s) for s in STATES]}")
        object.__setattr__(self, "state", JobState(self.state))

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
