"""Which jobs run now, and whose: the facts the per-user job budget counts.

`active_jobs` reads the running jobs of every kind (training runs, check jobs, scans, batch
captures) and their owners (`jobs.owners`) back from the job folders, the single source of
truth: the count survives a server restart and no process keeps a tally.

    mine = [j for j in active_jobs(ws, statuses) if j.owner == "alice@example.com"]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recipe_core.jobs.owners import job_owner
from recipe_core.jobs.process import read_progress
from recipe_core.jobs.state import JobState
from recipe_core.workspace import Workspace

if TYPE_CHECKING:
    from recipe_core.runs import RunStatus

RUNNING_RUN = frozenset({JobState.QUEUED, JobState.RUNNING})  # a run that holds a slot
# Where each kind of worker keeps its job folders, under the workspace: check_job.checks_root,
# scan_job.app_scans_root, see_job.seen_root (a test keeps them equal). Not imported from there:
# check_job imports torch, and listing jobs must stay cheap for every page.
WORKER_ROOTS = {"checks": "checks", "scan": "scans/app", "see": "seen"}


@dataclass(frozen=True)
class ActiveJob:
    kind: str  # "run" | "checks" | "scan" | "see"
    job_id: str  # its folder's name
    owner: str | None  # the e-mail that started it; None when not recorded (a script's job)


def active_jobs(workspace: Workspace, runs: Iterable[RunStatus]) -> list[ActiveJob]:
    """Every job of `workspace` that is running now, with its owner: the queued or running runs
    among `runs` (statuses already judged by their executor, so a dead job reads failed), then
    each check job, scan and capture whose progress.json says running with a live heartbeat."""
    jobs = [ActiveJob("run", s.run_id, job_owner(workspace.runs / s.run_id))
            for s in runs if s.state in RUNNING_RUN]  # fmt: skip
    for kind, folder in _worker_folders(workspace):
        if _worker_running(kind, folder):
            jobs.append(ActiveJob(kind, folder.name, job_owner(folder)))
    return jobs


def _worker_folders(workspace: Workspace) -> Iterable[tuple[str, Path]]:
    for kind, name in WORKER_ROOTS.items():
        root = workspace.root / name
        if root.is_dir():
            yield from ((kind, f) for f in sorted(root.iterdir()) if f.is_dir())


def _worker_running(kind: str, folder: Path) -> bool:
    """progress.json says running and its heartbeat is fresh (a dead worker reads failed)."""
    progress = read_progress(folder, what=kind, again="Start it again", log_file="")
    return progress.state == JobState.RUNNING
