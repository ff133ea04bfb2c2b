"""A real Ray head for the `ray` tests: `ray start --head` on 127.0.0.1 with token auth, HOME
under the session's tmp dir, a short temp dir of its own, every port chosen free.

Teardown SIGKILLs the head's own processes by pid (and their descendants: workers, job
drivers), like `ray stop --force` but without its process-name matching, which would kill every
Ray process of the user on the machine, including other people's clusters. Without Ray
installed the tests skip, unless RECIPE_REQUIRE_RAY=1 (CI), where they fail.

For in-process clients (`ray.init(address=ray_cluster.address)`), request `ray_client_env`: it
puts the token and the loopback-node setting into os.environ for the test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY_BIN = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 150.0  # a busy 2-core machine: the dashboard alone can take a minute
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class RayCluster:
    address: str  # GCS "127.0.0.1:PORT", for ray.init(address=...)
    dashboard_url: str  # "http://127.0.0.1:DPORT", for JobSubmissionClient / RayExecutor
    env: dict[str, str]  # HOME, RAY_AUTH_MODE, RAY_AUTH_TOKEN...: what a client process needs
    tmp: Path  # the session's dir: HOME and the head's start log
    ray_temp: Path  # Ray's --temp-dir (short: Ray's unix socket paths must fit 107 bytes)
    token: str  # the cluster's auth token (also in env["RAY_AUTH_TOKEN"])
    start_s: float  # seconds `ray start` took until the Jobs API answered


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ray" in str(item.fspath):
            item.add_marker(pytest.mark.ray)


def ray_missing_reason() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (pip install 'recipe[ray]')"
    if importlib.util.find_spec("ray.job_submission") is None or not RAY_BIN.exists():
        return f"Ray's CLI/Jobs API is missing ({RAY_BIN}); pip install 'ray[default]'"
    return None


def require_ray() -> None:
    reason = ray_missing_reason()
    if reason is None:
        return
    if os.environ.get("RECIPE_REQUIRE_RAY") == "1":
        pytest.fail(f"RECIPE_REQUIRE_RAY=1 but {reason}")
    pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """`count` distinct free 127.0.0.1 ports (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def cluster_env(tmp: Path, token: str) -> dict[str, str]:
    home = tmp / "home"
    (home / ".ray").mkdir(parents=True, exist_ok=True)
    (home / ".ray" / "auth_token").write_text(token)
    return {
        "HOME": str(home),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "120",  # Ray's default 60 s fails on a loaded machine
        # Ray maps 127.0.0.1 to the machine's routable IP unless it thinks clusters are off;
        # this keeps the node (and clients' view of it) on the loopback address.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


def _start_command(ray_temp: Path) -> tuple[list[str], int, int]:
    gcs, dash, agent_http, agent_grpc, rt_env, metrics, client, om, nm = free_ports(9)
    cmd = [
        str(RAY_BIN), "start", "--head", "--node-ip-address", "127.0.0.1",
        "--port", str(gcs), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
        "--include-dashboard", "true",
        "--dashboard-agent-listen-port", str(agent_http),
        "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(rt_env), "--metrics-export-port", str(metrics),
        "--ray-client-server-port", str(client),
        "--object-manager-port", str(om), "--node-manager-port", str(nm),
        "--temp-dir", str(ray_temp), "--num-cpus", "2", "--num-gpus", "0",
        "--object-store-memory", str(256 * 1024 * 1024), "--disable-usage-stats",
    ]  # fmt: skip
    return cmd, gcs, dash


def wait_jobs_api(dashboard_url: str, token: str, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until GET /api/jobs/ answers 200 with the token (the Jobs API is up)."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(
        f"{dashboard_url}/api/jobs/", headers={"Authorization": f"Bearer {token}"}
    )
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=3) as resp:
                if resp.status == 200:
                    json.loads(resp.read() or b"[]")
                    return
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.3)
    raise RuntimeError(f"Ray Jobs API at {dashboard_url} did not answer in {timeout_s:g}s: {last}")


def head_pids(ray_temp: Path) -> set[int]:
    """Pids of the processes this head started (their command line names its temp dir), plus
    all their descendants (workers, job supervisors, job drivers)."""
    marker = str(ray_temp).encode()
    roots: set[int] = set()
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if marker in cmdline and pid != os.getpid():
            roots.add(pid)
    found = set(roots)
    grew = True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in found and pid not in found}
        found |= new
        grew = bool(new)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def stop_head(ray_temp: Path) -> list[int]:
    """SIGKILL the head's processes, as `ray stop --force` does but only ours (several ignore
    SIGTERM for seconds; a test head keeps nothing worth a graceful stop). Returns survivors."""
    pids = head_pids(ray_temp)
    for _ in range(3):  # a dying raylet may still have started a worker: rescan
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        pids = {p for p in pids | head_pids(ray_temp) if _alive(p)}
        if not pids:
            break
    return sorted(pids)


def start_head(tmp: Path, env: dict[str, str], attempt: int) -> tuple[Path, int, int]:
    """`ray start --head` into a fresh short temp dir; (temp dir, GCS port, dashboard port) once
    the Jobs API answers. RuntimeError (after cleaning up) when it does not come up."""
    ray_temp = Path(tempfile.mkdtemp(prefix="recipe-ray-", dir="/tmp"))
    cmd, gcs, dash = _start_command(ray_temp)
    log_path = tmp / f"ray_start_{attempt}.log"
    try:
        with log_path.open("wb") as log:
            subprocess.run(
                cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S, check=True,
            )  # fmt: skip
        wait_jobs_api(f"http://127.0.0.1:{dash}", env["RAY_AUTH_TOKEN"])
    except (subprocess.SubprocessError, RuntimeError) as exc:
        stop_head(ray_temp)
        shutil.rmtree(ray_temp, ignore_errors=True)
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        raise RuntimeError(f"{exc}\n{tail}") from exc
    return ray_temp, gcs, dash


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A real Ray head (2 CPUs, no GPU, token auth) shared by the whole test session. A start
    that fails (a port taken between choosing and binding it, a dashboard too slow on a busy
    machine) is retried once with new ports."""
    require_ray()
    tmp = tmp_path_factory.mktemp("ray_head")
    token = secrets.token_hex(32)
    env = cluster_env(tmp, token)
    started = time.monotonic()
    try:
        ray_temp, gcs, dash = start_head(tmp, env, 1)
    except RuntimeError as first:
        try:
            ray_temp, gcs, dash = start_head(tmp, env, 2)
        except RuntimeError as second:
            pytest.fail(f"Could not start a Ray head, twice:\n{first}\n---\n{second}")
    cluster = RayCluster(
        address=f"127.0.0.1:{gcs}", dashboard_url=f"http://127.0.0.1:{dash}", env=env,
        tmp=tmp, ray_temp=ray_temp, token=token, start_s=time.monotonic() - started,
    )  # fmt: skip
    try:
        yield cluster
    finally:
        survivors = stop_head(ray_temp)
        shutil.rmtree(ray_temp, ignore_errors=True)
        if survivors:
            pytest.fail(f"Ray head processes survived teardown: {survivors}")


@pytest.fixture
def ray_client_env(ray_cluster: RayCluster, monkeypatch: pytest.MonkeyPatch) -> RayCluster:
    """The cluster, with this process's environment set to reach it (token, node IP) for the
    test: what in-process `ray.init(address=ray_cluster.address)` needs. HOME is left alone."""
    for key, value in ray_cluster.env.items():
        if key != "HOME":
            monkeypatch.setenv(key, value)
    return ray_cluster
