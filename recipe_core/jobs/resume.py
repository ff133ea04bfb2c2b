"""Leave a run training as a background job: `submit_resume` puts a finished run back in the
queue with a pending request in its resume.json, and starts the ordinary training job for it
(`python -m recipe_core.jobs.train_job RUN_DIR` sees the request and resumes; train/resume.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from recipe_core.errors import ConfigError
from recipe_core.jobs.executor import Executor, JobHandle, read_job
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunWriter

log = logging.getLogger(__name__)


def submit_resume(run_dir: Path, more: int, *, executor: Executor) -> JobHandle:
    """Check the run can be resumed (a RecipeError naming the fix when not), queue it again
    and start its job on `executor`. A refused submission puts the old status back."""
    from recipe_core.train.resume import RESUME_FILE, plan_resume, read_resume  # imports torch

    if executor.name != "local":
        raise ConfigError(
            f"Resuming a run on the {executor.name} executor is not supported yet; resume it "
            "locally: recipe train --resume RUN --steps N (without --executor)."
        )
    run_dir = Path(run_dir)
    plan = plan_resume(run_dir, more)
    writer = RunWriter(run_dir)
    before = writer.status()
    record = read_resume(run_dir)
    previous_job = read_job(run_dir)
    jobs = [*record.get("jobs", []), previous_job] if previous_job else record.get("jobs", [])
    writer.write_json(RESUME_FILE, {**record, "jobs": jobs, "pending": {"more": plan.more}})
    (run_dir / "job.json").unlink(missing_ok=True)  # the executor writes the new job's
    writer.update_status(state=JobState.QUEUED, error="", ended="", pid=0, pid_start="", host="")
    try:
        handle = executor.submit(run_dir)
    except Exception:
        writer.write_json(RESUME_FILE, record)
        writer.update_status(state=before.state, error=before.error, ended=before.ended)
        raise
    log.info("Resuming run %s for %d more steps (job %s)", handle.run_id, more, handle.job_id)
    return handle


def pending_resume(run_dir: Path) -> int:
    """Steps a queued resume request asks for (0: none, train the run from scratch)."""
    from recipe_core.train.resume import read_resume  # imports torch: the job needs it anyway

    pending = read_resume(run_dir).get("pending")
    more = pending.get("more", 0) if isinstance(pending, dict) else 0
    return more if isinstance(more, int) and not isinstance(more, bool) else 0
