"""Entry point of a training job: `python -m recipe_core.jobs.train_job [--log FILE] RUN_DIR`.

Executors start this with the run directory already holding config.json and a `queued`
status. SIGTERM means "cancel": the handler raises JobCancelled in the main thread, `train`
records `cancelled`, and the process exits with 128 + SIGTERM. stdout/stderr are the run's
log.txt: the local executor redirects them; `--log FILE` makes the job append them to FILE
itself (for executors such as Ray, whose own log capture lives elsewhere).

PyTorch (and everything of recipe_core.train) is imported only after status.json says the job
is running (stage "starting"): those imports take seconds, and the dashboard shows the stage
meanwhile instead of a run that seems stuck in `queued` (issue 17; tests/jobs/test_train_job.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

from recipe_core.errors import RecipeError
from recipe_core.jobs.process import raise_cancelled
from recipe_core.jobs.state import JobCancelled, JobState
from recipe_core.runs import RunWriter
from recipe_core.settings import Settings, load_settings

log = logging.getLogger("recipe_core.jobs.train_job")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 128 + signal.SIGTERM


def run_job(run_dir: Path, *, settings: Settings | None = None) -> int:
    """Run the job recorded in `run_dir`; return the process exit code. `settings` name the
    model plugins to load (none when not given)."""
    writer = RunWriter(run_dir)
    ended = writer.status()
    if ended.finished:  # cancelled while its job waited for a worker (e.g. a pending Ray job)
        log.info("Run %s is already %s; not training it", writer.run_id, ended.state)
        return EXIT_CANCELLED if ended.state == JobState.CANCELLED else EXIT_FAILED
    writer.begin()  # "starting": recorded before the seconds of importing torch below
    try:
        from recipe_core.jobs.resume import pending_resume
        from recipe_core.train.models import load_configured_plugins  # imports torch

        if settings is not None:
            load_configured_plugins(settings)
        more = pending_resume(run_dir)
        if more:  # "leave it training": the run continues from its checkpoint (jobs/resume.py)
            return _resume_job(writer, more)
        return _train_job(writer)
    except JobCancelled:  # `train` records it; a SIGTERM before training started is ours to record
        writer.finish(JobState.CANCELLED, error="Cancelled before training started (SIGTERM).")
        log.info("Run %s cancelled", writer.run_id)
        return EXIT_CANCELLED
    except Exception as exc:  # training records its own failure (traceback in log.txt)
        if not writer.status().finished:  # failed before it: a plugin that does not load...
            log.exception("Run %s could not start training", writer.run_id)
            writer.finish(JobState.FAILED, error=f"Could not start training: {exc}")
        return EXIT_FAILED


def _train_job(writer: RunWriter) -> int:
    """Train the run from config.json (a built-in model's or the user's pipeline)."""
    from recipe_core.train.config import TrainConfig
    from recipe_core.train.pipeline import PipelineTrainConfig, is_pipeline_config, train_pipeline
    from recipe_core.train.run import describe_failure, train

    try:
        data = json.loads((writer.run_dir / "config.json").read_text())
        config = (PipelineTrainConfig.from_dict(data) if is_pipeline_config(data)
                  else TrainConfig.from_dict(data))  # fmt: skip
    except (RecipeError, ValueError, TypeError, OSError) as exc:
        writer.finish(JobState.FAILED, error=f"Unreadable config.json: {describe_failure(exc)}")
        return EXIT_FAILED
    if isinstance(config, PipelineTrainConfig):  # the user's own pipeline, imported here
        train_pipeline(config, run=writer)
    else:
        train(config, run=writer)
    return 0


def _resume_job(writer: RunWriter, more: int) -> int:
    """Resume the run for `more` steps; a refused resume (no checkpoint...) ends it failed."""
    from recipe_core.train.resume import resume

    try:
        resume(writer.run_dir, more, submitted=True)
    except JobCancelled:
        writer.finish(JobState.CANCELLED, error="Cancelled before resuming started (SIGTERM).")
        return EXIT_CANCELLED
    except RecipeError as exc:  # refused before training: nothing has recorded it yet
        writer.finish(JobState.FAILED, error=f"Could not resume: {exc}")
        return EXIT_FAILED
    except Exception:  # recorded as failed by the training (traceback in log.txt)
        return EXIT_FAILED
    return 0


def redirect_output(path: str) -> None:
    """Send this process's stdout and stderr (fds 1 and 2, so child processes too) to `path`,
    appending."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) == 3 and args[0] == "--log":
        if "://" not in args[2]:  # a shared-storage run logs into its own log.txt (jobs/mirror.py)
            redirect_output(args[1])
        args = args[2:]
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings()  # the job's edge: read once, passed down
    if len(args) != 1:
        log.error("usage: python -m recipe_core.jobs.train_job [--log FILE] RUN_DIR")
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, raise_cancelled)
    try:
        if "://" in args[0]:  # a run on shared storage: run it on a local copy, uploading
            from recipe_core.jobs.mirror import run_mirrored

            job = lambda staging: run_job(staging, settings=settings)  # noqa: E731
            return run_mirrored(args[0], job, settings=settings)
        return run_job(Path(args[0]).resolve(), settings=settings)
    except JobCancelled:  # SIGTERM while the run was being downloaded: the executor records it
        return EXIT_CANCELLED
    except RecipeError as exc:  # not a run directory at all: nothing to record the error in
        log.error("%s", exc)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
