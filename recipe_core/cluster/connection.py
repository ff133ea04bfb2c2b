"""Reaching a running Ray cluster: the one home of Ray's address rules and of a session on it.

A user gives one address (`--ray-address` or RECIPE_RAY_ADDRESS) and Recipe uses it two ways:
`jobs_api_url` gives the dashboard URL that Ray Jobs are submitted to (training runs), and
`gcs_address` gives what `ray.init` connects to (Ray Data scans, Ray Tune searches); a dashboard
URL maps to its host's GCS port, so the same address serves both.

`ray.init(address=...)` runs only here, only to a running cluster, from the CLI or a script, never
from the Streamlit process (Ray's processes would die with the script thread), and never to a new
local instance: "local" and an empty address are refused.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from recipe_core.errors import ConfigError

log = logging.getLogger(__name__)

GCS_PORT = 6379  # `ray start --head`'s default GCS port
CONNECT_TIMEOUT_S = 5.0  # to the GCS port, before handing the address to ray.init
ADDRESS_HELP = (
    "Pass the address of a running cluster's head, HOST:PORT of its GCS (what `ray start "
    "--head` prints for ray.init, port 6379 by default), 'auto' on a cluster node, or the "
    "dashboard URL http://HOST:8265 when the GCS uses port 6379, with --ray-address or "
    "RECIPE_RAY_ADDRESS."
)
START_HINT = (
    "Start a cluster with `ray start --head --dashboard-host 0.0.0.0` (Jobs API on port 8265) "
    "and pass its dashboard URL with `--ray-address http://HOST:8265` or RECIPE_RAY_ADDRESS."
)


def jobs_api_url(address: str) -> str:
    """The Jobs API base URL (the dashboard's) for a user-given address, for submitting jobs;
    ConfigError for unusable ones."""
    text = address.strip().rstrip("/")
    if not text:
        raise ConfigError(f"Empty Ray address. {START_HINT}")
    if text.startswith("ray://"):
        raise ConfigError(
            f"Ray address {address!r} is a Ray Client address; Recipe submits through the Jobs "
            f"API. Use the dashboard URL instead, e.g. http://{text[6:].split(':')[0]}:8265."
        )
    if "://" not in text:
        text = f"http://{text}"
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"Ray address {address!r} must be http(s)://HOST:PORT. {START_HINT}")
    return text


def gcs_address(address: str | None) -> str:
    """The GCS address to give ray.init for `address`; ConfigError for what would start a new
    local Ray. A dashboard URL (what `recipe train --executor ray` takes, so one
    RECIPE_RAY_ADDRESS serves both) maps to its host with Ray's default GCS port."""
    text = (address or "").strip().rstrip("/")
    if not text or text == "local":
        raise ConfigError(
            f"A Ray scan or search needs a running cluster, got address {address!r}: Recipe "
            f"never starts a local Ray for them. {ADDRESS_HELP}"
        )
    if text.startswith(("http://", "https://")):
        host = urlsplit(text).hostname
        if not host:
            raise ConfigError(f"Cannot read a host in the Ray address {address!r}. {ADDRESS_HELP}")
        gcs = f"[{host}]:{GCS_PORT}" if ":" in host else f"{host}:{GCS_PORT}"
        log.info("Ray address %s is a dashboard URL: connecting to its GCS at %s", text, gcs)
        return gcs
    return text


@contextmanager
def ray_session(address: str) -> Iterator[None]:
    """Connected to the cluster at `address` while inside; a connection the caller already
    opened (`ray.init` in a script) is used as is and left open."""
    if _in_streamlit():
        raise ConfigError(
            "Ray scans run from the CLI or a script, not inside the Streamlit app (Ray's "
            "processes would die with the page's script thread). Run `recipe scan DATASET "
            "--executor ray --ray-address ADDR` in a terminal."
        )
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    _check_reachable(address)
    try:
        ray.init(address=address, ignore_reinit_error=True, logging_level=logging.WARNING,
                 log_to_driver=False)  # fmt: skip
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"Cannot connect to the Ray cluster at {address!r}: {str(exc)[:300]}. Start one "
            "with `ray start --head` (or check the address and port); on a cluster with token "
            f"auth, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN. {ADDRESS_HELP}"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds on a wrong HOST:PORT: ray.init retries an unreachable GCS for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or address == "auto" or address.startswith("ray://"):
        return  # "auto" and Ray Client addresses are resolved by Ray itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"No Ray cluster answers at {address!r} ({exc.strerror or exc}). Start one with "
            f"`ray start --head`, or check the host and port. {ADDRESS_HELP}"
        ) from exc


def import_ray() -> Any:
    """The `ray` module, or a ConfigError saying how to install the extra."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "Ray is not installed. Install the extra with `pip install 'recipe[ray]'`, or scan "
            "locally (--executor local)."
        ) from exc
    return ray


def _in_streamlit() -> bool:
    """True inside a running Streamlit server (checked without importing streamlit)."""
    runtime = sys.modules.get("streamlit.runtime")
    exists = getattr(runtime, "exists", None)
    return bool(exists()) if callable(exists) else False
