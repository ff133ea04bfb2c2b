"""A real OIDC provider and a real `recipe serve` for sign-in tests, both on 127.0.0.1.

`oidc_provider`: the `oidc-provider-mock` package's server (Authlib + Flask: discovery, JWKS,
an authorize page with a form to pick the user, a token endpoint issuing RS256 id_tokens, userinfo)
as a subprocess on a free port, with client registration required, so a wrong client secret
really fails the token exchange.

`hosted_dashboard`: a recipe.toml per the hosting contract (auth against that provider, an
allow-list, data roots, a workspace in tmp) and `recipe serve --config` started on it as its own
process group; waits for `/_stcore/health`, and at teardown stops the server and any job it
started. Import both fixtures into a test module:
`from tests.hosting.oidc_fixtures import hosted_dashboard, oidc_provider  # noqa: F401`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

RUNNER = "alice@example.com"
VIEWER = "bob@example.com"
OUTSIDER = "eve@evil.org"
USERS = (RUNNER, VIEWER, OUTSIDER)
SECRET_ENV = "RECIPE_OIDC_CLIENT_SECRET"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until `url` answers 200; fails with the process's log when it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s:\n{tail(log)}")


def tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _stop(proc: subprocess.Popen[bytes], *, group: bool) -> None:
    """SIGTERM (the whole process group when `group`), then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if group:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class OidcProvider:
    """A running provider: its issuer and discovery URL, and the users it knows."""

    issuer: str
    metadata_url: str
    users: tuple[str, ...]
    log: Path

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Dynamic client registration: (client_id, client_secret) allowed to use only
        `redirect_uri` and to authenticate only with that secret."""
        body = json.dumps({"redirect_uris": [redirect_uri]}).encode()
        request = urllib.request.Request(
            f"{self.issuer}/oauth2/clients",
            data=body,
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            client = json.load(resp)
        return str(client["client_id"]), str(client["client_secret"])


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """oidc-provider-mock on a free 127.0.0.1 port; alice, bob and eve are predefined users
    whose id_token carries `email` and `email_verified: true`."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1",
           "--port", str(port), "--require-registration"]  # fmt: skip
    for email in USERS:
        claims = {"sub": email, "email": email, "email_verified": True}
        cmd += ["--user-claims", json.dumps(claims)]
    issuer = f"http://127.0.0.1:{port}"
    metadata = f"{issuer}/.well-known/openid-configuration"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        _wait_http(metadata, proc, log, timeout=60)
        yield OidcProvider(issuer=issuer, metadata_url=metadata, users=USERS, log=log)
    finally:
        _stop(proc, group=False)


@dataclass(frozen=True)
class Dashboard:
    """A running `recipe serve`: where the browser goes and where it writes."""

    url: str
    workspace: Path
    config: Path
    log: Path

    @property
    def audit_log(self) -> Path:
        return self.workspace / "audit.jsonl"

    def audit(self) -> list[dict[str, object]]:
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_audit(self, action: str, user: str, timeout: float = 20.0) -> dict[str, object]:
        """The newest audit entry for (`action`, `user`), waiting for it up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.audit() if (e.get("action"), e.get("user")) == (action, user)]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no audit entry action={action!r} user={user!r} in {self.audit_log}; "
                    f"entries: {self.audit()}\nserver log:\n{tail(self.log)}"
                )
            time.sleep(0.3)


def dashboard_toml(port: int, workspace: Path, provider: OidcProvider, client_id: str) -> str:
    """The operator's recipe.toml for the contract's example team: alice runs, @example.com
    watches, everyone else is refused; only sample_data/ may be opened."""
    data_root = REPO_ROOT / "sample_data"
    return f"""\
[server]
host = "127.0.0.1"
port = {port}

[workspace]
path = {json.dumps(str(workspace))}

[data]
roots = [{json.dumps(str(data_root))}]

[executor]
kind = "local"

[auth]
provider = "oidc"
server_metadata_url = {json.dumps(provider.metadata_url)}
client_id = {json.dumps(client_id)}
client_secret_env = "{SECRET_ENV}"

[access]
runners = ["{RUNNER}"]
viewers = ["@example.com"]

[limits]
max_concurrent_jobs = 2
max_steps = 20000
max_scan_images = 200000
"""


def cancel_unfinished_jobs(workspace: Path) -> None:
    """Stop every job still running in `workspace` (jobs run in their own process groups, so
    stopping the server leaves them alive)."""
    from recipe_core.jobs.executors import LocalExecutor
    from recipe_core.runs import list_runs
    from recipe_core.workspace import open_workspace

    if not (workspace / "runs").exists():
        return
    ws = open_workspace(workspace)
    executor = LocalExecutor()
    for status in list_runs(ws):
        if not status.finished:
            executor.cancel(ws.runs / status.run_id, grace_s=5)


@pytest.fixture(scope="module")
def hosted_dashboard(
    oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """`recipe serve --config recipe.toml` with OIDC sign-in against `oidc_provider`."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("hosted")
    workspace = tmp / "workspace"
    client_id, client_secret = oidc_provider.register_client(
        f"http://127.0.0.1:{port}/oauth2callback"
    )
    config = tmp / "recipe.toml"
    config.write_text(dashboard_toml(port, workspace, oidc_provider, client_id))
    env = dict(os.environ, HOME=str(tmp), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    env[SECRET_ENV] = client_secret
    for name in ("RECIPE_WORKSPACE", "RECIPE_DATA_ROOTS", "RECIPE_CONFIG", "RECIPE_COOKIE_SECRET"):
        env.pop(name, None)  # only the config file speaks
    log = tmp / "serve.log"
    cmd = [sys.executable, "-m", "recipe_core", "serve", "--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/_stcore/health", proc, log, timeout=90)
        yield Dashboard(url=url, workspace=workspace, config=config, log=log)
    finally:
        _stop(proc, group=True)
        cancel_unfinished_jobs(workspace)
        print(f"\n--- recipe serve log ({log}) ---\n{tail(log)}")
