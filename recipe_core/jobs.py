"""Entry point of a training job process: `python -m recipe_core.jobs RUN_DIR`.

Executors start this with the run directory already holding config.json and a `queued`
status. SIGTERM means "cancel": the handler raises JobCancelled in the main thread, `train`
records `cancelled`, and the process exits with 128 + SIGTERM. stdout/stderr are the run's
log.txt (the executor redirects them).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from recipe_core.errors import RecipeError
from recipe_core.runs import RunWriter
from recipe_core.train.config import TrainConfig
from recipe_core.train.job import JobCancelled, describe_failure, train

log = logging.getLogger("recipe_core.jobs")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 128 + signal.SIGTERM


def _cancel(signum: int, frame: FrameType | None) -> None:
    raise JobCancelled(f"signal {signum}")


@contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM raises JobCancelled (so `train` records `cancelled`); the previous
    handler is restored on exit. Main thread only, as Python's signal handlers are."""
    previous = signal.signal(signal.SIGTERM, _cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_job(run_dir: Path) -> int:
    """Run the job recorded in `run_dir`; return the process exit code."""
    writer = RunWriter(run_dir)
    try:
        try:
            config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        except (RecipeError, ValueError, TypeError, OSError) as exc:
            writer.finish("failed", error=f"Unreadable config.json: {describe_failure(exc)}")
            return EXIT_FAILED
        train(config, run=writer)
    except JobCancelled:  # `train` records it; a SIGTERM before training started is ours to record
        writer.finish("cancelled", error="Cancelled before training started (SIGTERM).")
        log.info("Run %s cancelled", writer.run_id)
        return EXIT_CANCELLED
    except Exception:  # already recorded as failed (with the traceback in log.txt)
        return EXIT_FAILED
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if len(args) != 1:
        log.error("usage: python -m recipe_core.jobs RUN_DIR")
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _cancel)
    try:
        return run_job(Path(args[0]).resolve())
    except RecipeError as exc:  # not a run directory at all: nothing to record the error in
        log.error("%s", exc)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
