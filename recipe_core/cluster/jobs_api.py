"""The Ray Jobs API over plain HTTP (and Ray's JobSubmissionClient, imported lazily): the
address and token rules, clear errors for an unreachable cluster or a refused token, the live
nodes' resources, and a job's state. Never `ray.init()`: safe inside the Streamlit process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from recipe_core.cluster.connection import START_HINT, jobs_api_url
from recipe_core.errors import ConfigError
from recipe_core.settings import Settings

HTTP_TIMEOUT_S = 5.0  # a dead or firewalled cluster must not hang the Runs page
RETRY_AFTER_S = 10.0  # after a failed probe, skip the cluster for this long


def find_token(settings: Settings, explicit: str | None = None) -> str | None:
    """The cluster token to send, as Ray's own clients find it: `explicit`, else
    RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token; None when
    there is none."""
    if explicit:
        return explicit
    if settings.ray_auth_token:
        return settings.ray_auth_token
    path = Path(settings.ray_auth_token_path or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class JobsApi:
    """One cluster's Jobs API: `address` (normalised) and the token sent with every call (None:
    none; the edge finds it with `find_token`)."""

    def __init__(self, address: str, *, token: str | None = None) -> None:
        self.address = jobs_api_url(address)
        self.token = token
        self._client: Any = None
        self._down_until = 0.0
        self._down_error = ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, endpoint: str, *, missing_ok: bool = False) -> Any:
        """GET a dashboard endpoint as JSON (None for a 404 when `missing_ok`); ConfigError
        (naming the fix) when it fails."""
        if time.monotonic() < self._down_until:  # don't wait on a dead cluster once per run
            raise ConfigError(self._down_error)
        request = urllib.request.Request(self.address + endpoint, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            body = exc.read().decode(errors="replace")
            raise ConfigError(self._http_error(exc.code, body)) from exc
        except (OSError, ValueError) as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            self._down_error = (
                f"Cannot reach the Ray Jobs API at {self.address} ({exc}). {START_HINT} "
                "(The GCS port, 6379 by default, is not the Jobs API.)"
            )
            raise ConfigError(self._down_error) from exc

    def _http_error(self, code: int, body: str) -> str:
        if code in (401, 403):
            which = "no token was sent" if not self.token else "the token was refused"
            return (
                f"The Ray cluster at {self.address} requires token authentication and "
                f"{which} (HTTP {code}: {body.strip()[:200]}). Set RAY_AUTH_TOKEN (or "
                "RAY_AUTH_TOKEN_PATH) to the cluster's token; on the head, "
                "`ray get-auth-token` prints it."
            )
        return f"Ray cluster at {self.address} answered HTTP {code}: {body.strip()[:300]}"

    def client(self) -> Any:
        """A connected `JobSubmissionClient` (cached); ConfigError when the cluster cannot be
        reached or refuses us."""
        if self._client is None:
            self.get("/api/version")  # clear errors (and a timeout) before Ray's client
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:
                raise ConfigError(
                    "The Ray executor needs Ray's Jobs client: pip install 'recipe[ray]'."
                ) from exc
            self._client = JobSubmissionClient(self.address, headers=self._headers())
        return self._client

    def cluster_resources(self) -> dict[str, float]:
        """Total resources of the cluster's live nodes (CPU, GPU, memory...), from the state
        API's node list (the GCS's own view: the autoscaler's load report, which the dashboard's
        cluster status shows, can still be empty just after the head starts); `node:*` markers
        left out."""
        data = self.get("/api/v0/nodes?limit=10000")
        nodes = data.get("data", {}).get("result", {}).get("result", [])
        totals: dict[str, float] = {}
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, dict) or node.get("state") != "ALIVE":
                continue
            for name, amount in (node.get("resources_total") or {}).items():
                if not str(name).startswith("node:"):
                    totals[str(name)] = totals.get(str(name), 0.0) + float(amount)
        return totals

    def job_state(self, sid: str) -> tuple[str, str]:
        """Ray's (status, message) for a submission; ("MISSING", why) for an unknown one."""
        answer = self.get(f"/api/jobs/{sid}", missing_ok=True)
        if not isinstance(answer, dict):
            return "MISSING", f"The Ray cluster at {self.address} has no job {sid}."
        return str(answer.get("status", "")), str(answer.get("message") or "")
