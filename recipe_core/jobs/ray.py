"""Ray executor: each job is a Ray Job (`JobSubmissionClient`) running the same entry point as a
local job, `<python> -m recipe_core.jobs.train_job --log RUN_DIR/log.txt RUN_DIR`, on a running
cluster.

The address is the cluster's dashboard (Jobs API) URL, `http://HOST:8265`; `HOST:PORT` means
`http://HOST:PORT`. `ray://` (Ray Client) and the GCS port are not the Jobs API and are refused
or reported as such. Only HTTP is spoken (ray_api.py): this never calls `ray.init()` or starts
a local Ray, so the Streamlit process can use it.

The run directory must be shared storage that the cluster's workers see at the same path (one
machine, or a shared filesystem), or a runs URL (jobs/mirror.py). Token auth: the token is
`token=`, which the edge finds with `recipe_core.cluster.jobs_api.find_token` (RAY_AUTH_TOKEN,
else the file named by RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token). Nothing here reads the
environment: the interpreter, the GPU rule and the job's PYTHONPATH are arguments too.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from recipe_core.cluster.jobs_api import JobsApi
from recipe_core.errors import ConfigError, RunError
from recipe_core.jobs.executor import JobHandle, job_target, read_job
from recipe_core.jobs.process import DEFAULT_GRACE_S
from recipe_core.jobs.state import JobState
from recipe_core.runs import RunFiles, RunStatus, RunWriter, now_iso, read_status

log = logging.getLogger(__name__)

STOP_EXTRA_S = 10.0  # slack for the job supervisor to deliver SIGKILL and report, on a busy host
GPU_AUTOSCALING_ENV = "RECIPE_RAY_GPU_AUTOSCALING"  # 1: the autoscaler adds GPU workers


def gpus_needed(device: str, cluster_gpus: float) -> float:
    """GPUs to reserve for a job on `device`: cuda* -> 1, cpu -> 0, auto -> 1 if any exist."""
    if device.startswith("cuda"):
        return 1.0
    if device == "auto":
        return 1.0 if cluster_gpus > 0 else 0.0
    return 0.0


class RayExecutor:
    """Submits jobs to a Ray cluster through its Jobs API; judges and stops them there."""

    name = "ray"

    def __init__(
        self,
        address: str,
        *,
        python: str | None = None,
        num_cpus: float = 1,
        num_gpus: float | None = None,
        env: Mapping[str, str] | None = None,
        token: str | None = None,
        gpu_autoscaling: bool = False,
        pythonpath: str = "",
    ) -> None:
        """`python`: the interpreter job entry points use (default: this one); `token`: the
        cluster's (None: none sent); `gpu_autoscaling`: submit GPU jobs while no GPU node is up;
        `pythonpath`: kept after Recipe's own folder on the job's PYTHONPATH."""
        self.api = JobsApi(address, token=token)
        self.address = self.api.address
        self.python = python or sys.executable
        self.num_cpus = float(num_cpus)
        self.num_gpus = None if num_gpus is None else float(num_gpus)
        self.extra_env = dict(env or {})
        self.gpu_autoscaling = gpu_autoscaling  # no live GPU node is no reason to refuse
        self.pythonpath = pythonpath

    # -- the Executor protocol --------------------------------------------------------------

    def submit(self, run_dir: Path) -> JobHandle:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir))
        if status.state != "queued" or read_job(run_dir) is not None:
            raise RunError(
                f"Run {status.run_id} is {status.state} and was already submitted; "
                "start a new run instead."
            )
        device = str(json.loads((run_dir / "config.json").read_text()).get("device", "auto"))
        num_gpus = self._check_gpus(device)
        target = job_target(run_dir)
        cmd = [
            self.python,
            "-m",
            "recipe_core.jobs.train_job",
            "--log",
            str(run_dir / "log.txt"),
            target,
        ]
        client = self.api.client()
        RunWriter(run_dir).update_status(stage="spawning")  # queued until a worker starts it
        try:
            submission_id = client.submit_job(
                entrypoint=shlex.join(cmd),  # Ray runs the entry point through a shell
                submission_id=f"recipe-{status.run_id}",
                entrypoint_num_cpus=self.num_cpus,
                entrypoint_num_gpus=num_gpus,
                runtime_env={"env_vars": self._env()},
                metadata={"recipe_run_id": status.run_id},
            )
        except Exception as exc:  # Ray raises RuntimeError / its own errors, not ours
            raise ConfigError(
                f"The Ray cluster at {self.address} refused run {status.run_id}: {exc}"
            ) from exc
        RunWriter(run_dir).write_json("job.json", {
            "executor": self.name, "address": self.address, "submission_id": submission_id,
            "submitted": now_iso(), "command": cmd, "num_gpus": num_gpus,
            "num_cpus": self.num_cpus, "python": self.python,
        })  # fmt: skip
        log.info("Submitted run %s to Ray at %s as %s", status.run_id, self.address, submission_id)
        return JobHandle(
            run_id=status.run_id, run_dir=run_dir, executor=self.name, job_id=submission_id
        )

    def _check_gpus(self, device: str) -> float:
        """GPUs to request; ConfigError when the job needs GPUs the cluster does not have (a
        GPU request on a GPU-less cluster would stay PENDING forever)."""
        explicit = self.num_gpus
        if explicit == 0 or (explicit is None and device == "cpu"):
            return 0.0
        resources = self.api.cluster_resources()
        wanted = explicit if explicit is not None else gpus_needed(device, resources.get("GPU", 0))
        if wanted > 0 and resources.get("GPU", 0.0) <= 0:
            if self.gpu_autoscaling:
                log.warning("No GPU node is up at %s: the job waits for the autoscaler to start "
                            "one (%s=1)", self.address, GPU_AUTOSCALING_ENV)  # fmt: skip
                return wanted
            listed = ", ".join(_resource(k, v) for k, v in sorted(resources.items())) or "none"
            raise ConfigError(
                f"The Ray cluster at {self.address} has no GPUs (its resources: {listed}), but "
                f"this job asks for {wanted:g} GPU (device {device!r}); it would wait forever. "
                "Use `--device cpu`, or add GPU workers to the cluster "
                "(`ray start --address HEAD:6379 --num-gpus N` on a GPU machine). If the "
                "cluster's autoscaler starts GPU workers on demand (none are up while idle), "
                f"set {GPU_AUTOSCALING_ENV}=1 to submit anyway."
            )
        return wanted

    def _env(self) -> dict[str, str]:
        """Environment for the job process: PYTHONPATH so `-m recipe_core.jobs.train_job`
        imports from a source checkout, unbuffered output, Ray's stop grace, and the caller's
        extras."""
        package_parent = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_parent, self.pythonpath) if p)
        env = {"PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
               "RAY_JOB_STOP_WAIT_TIME_S": str(int(DEFAULT_GRACE_S))}  # fmt: skip
        return {**env, **self.extra_env}

    def refresh(self, run_dir: Path) -> RunStatus:
        run_dir = Path(run_dir)
        status = read_status(RunFiles(run_dir), strict=False)
        job = read_job(run_dir)
        unjudged = status.finished or status.state == JobState.UNKNOWN  # unknown: corrupt record
        if unjudged or job is None or job.get("executor") != self.name:
            return status
        sid = str(job["submission_id"])
        try:
            state, message = self.api.job_state(sid)
        except ConfigError as exc:
            log.warning("Cannot judge run %s on Ray: %s", status.run_id, exc)
            return status  # unreachable cluster: unknown, not dead
        if state in ("PENDING", "RUNNING"):
            return status
        return self._record_end(run_dir, sid, state, message)

    def _record_end(self, run_dir: Path, sid: str, state: str, message: str) -> RunStatus:
        writer = RunWriter(run_dir)
        detail = message.strip()[-1500:]
        if state == "STOPPED":
            return writer.finish("cancelled", error=f"Ray job {sid} was stopped. {detail}")
        if state == "MISSING":
            detail += " (Was the cluster restarted?)"
        reason = f"Ray job {sid} ended ({state}) before recording a result: {detail}"
        return writer.finish("failed", error=f"{reason} See log.txt in the run folder.")

    def cancel(self, run_dir: Path, *, grace_s: float = DEFAULT_GRACE_S) -> RunStatus:
        run_dir = Path(run_dir)
        status = self.refresh(run_dir)
        if status.finished:
            return status
        job = read_job(run_dir)
        if job is None:  # queued, never submitted
            return RunWriter(run_dir).finish("cancelled", error="Cancelled before it started.")
        sid = str(job["submission_id"])
        client = self.api.client()
        try:
            client.stop_job(sid)  # Ray: SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S
        except Exception as exc:  # Ray raises RuntimeError / its own errors, not ours
            raise RunError(f"Ray could not stop job {sid} at {self.address}: {exc}") from exc
        # Ray's supervisor SIGKILLs after the RAY_JOB_STOP_WAIT_TIME_S the job was submitted with
        # (DEFAULT_GRACE_S), whatever grace this call asks for: wait at least that long
        waited = max(grace_s, DEFAULT_GRACE_S) + STOP_EXTRA_S
        deadline = time.monotonic() + waited
        state = ""
        while time.monotonic() < deadline:
            state = self.api.job_state(sid)[0]
            if state not in ("PENDING", "RUNNING"):
                break
            time.sleep(0.2)
        if state == "PENDING":
            # Ray delivers the stop once the job's supervisor gets its resources (a GPU job on a
            # cluster still scaling up): the run ends now, and its job exits at once if it
            # ever starts (recipe_core.jobs.train_job skips a finished run).
            log.warning("Ray job %s is still waiting for resources; its run is cancelled and "
                        "Ray stops the job when it starts", sid)  # fmt: skip
            return RunWriter(run_dir).finish("cancelled", error=(
                f"Cancelled while Ray job {sid} waited for cluster resources; Ray stops it "
                "as soon as it starts."))  # fmt: skip
        if state == "RUNNING":
            raise RunError(
                f"Ray job {sid} (run {status.run_id}) is still {state} {waited:g} s after "
                f"`stop_job`; check the cluster ({self.address}) and try again."
            )
        return RunWriter(run_dir).finish("cancelled", error=f"Cancelled: Ray job {sid} stopped.")


def _resource(name: str, amount: float) -> str:
    if "memory" in name.lower():  # bytes
        return f"{name}={amount / 2**30:.1f} GiB"
    return f"{name}={amount:g}"
