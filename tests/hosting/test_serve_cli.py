"""`recipe serve` and `recipe app` as an operator runs them: real subprocesses, real config
files, one real server on 127.0.0.1. Non-loopback hosts are only ever used where the process
must refuse (or, with --check, exit) before binding anything."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recipe_core.hosting.config import load_config
from recipe_core.hosting.serving import serve_environment, write_secrets
from tests.conftest import REPO_ROOT
from tests.hosting.hosting_helpers import OIDC, base_sections, write_config

SECRET = "client-secret-from-env"


def recipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recipe_core", *args],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def config_file(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    return write_config(tmp_path, base_sections(**sections))


def oidc_env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, RECIPE_TEST_CLIENT_SECRET=SECRET, HOME=str(tmp_path))


def test_check_prints_the_effective_settings_and_writes_nothing(tmp_path: Path) -> None:
    file = config_file(tmp_path, auth=OIDC, access={"runners": ["alice@example.com"],
                       "viewers": ["@example.com"]}, limits={"max_steps": 300})  # fmt: skip
    result = recipe("serve", "--config", str(file), "--check", env=oidc_env(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "serve: http://127.0.0.1:8501" in out
    assert "sign-in redirect http://127.0.0.1:8501/oauth2callback" in out
    assert f"data roots: {(tmp_path / 'data').resolve()}" in out
    assert "secret from $RECIPE_TEST_CLIENT_SECRET" in out and SECRET not in out
    assert "300 steps per run" in out and out.rstrip().endswith("config OK")
    assert not (tmp_path / "ws").exists()  # a dry run


def test_check_exits_2_naming_a_missing_secret(tmp_path: Path) -> None:
    file = config_file(tmp_path, auth=OIDC, access={"viewers": ["@example.com"]})
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("RECIPE_TEST_CLIENT_SECRET", None)
    result = recipe("serve", "--config", str(file), "--check", env=env)
    assert result.returncode == 2
    assert "$RECIPE_TEST_CLIENT_SECRET is not set" in result.stderr


def test_a_network_host_without_sign_in_is_refused_before_binding(tmp_path: Path) -> None:
    file = config_file(tmp_path, server={"host": "0.0.0.0", "port": 1})  # port 1: unbindable
    env = dict(os.environ, HOME=str(tmp_path))
    result = recipe("serve", "--config", str(file), env=env)  # a real start, not --check
    assert result.returncode == 2, result.stdout
    assert 'Refusing to serve on 0.0.0.0 with [auth] provider = "none"' in " ".join(
        result.stderr.split()
    )
    assert not (tmp_path / "ws").exists()
    result = recipe("app", "--host", "0.0.0.0", "--port", "1", env=env)
    assert result.returncode == 2
    assert "Refusing to serve on 0.0.0.0 with `recipe app`" in " ".join(result.stderr.split())


@pytest.mark.parametrize("host", ["127.0.0.1.nip.io", "127.evil.example", "localhost.evil.org"])
def test_a_name_that_only_looks_like_loopback_is_network(tmp_path: Path, host: str) -> None:
    """A DNS name starting "127." resolves wherever its owner says: `--check` must refuse it
    as a network host without sign-in, not wave it through as loopback."""
    file = config_file(tmp_path, server={"host": host})
    result = recipe("serve", "--config", str(file), "--check",
                    env=dict(os.environ, HOME=str(tmp_path)))  # fmt: skip
    assert result.returncode == 2, result.stdout
    refusal = f'Refusing to serve on {host} with [auth] provider = "none"'
    assert refusal in " ".join(result.stderr.split())


@pytest.mark.parametrize("host", ["127.0.0.2", "[::1]", "localhost"])
def test_parsed_loopback_addresses_and_localhost_pass_the_check(tmp_path: Path, host: str) -> None:
    file = config_file(tmp_path, server={"host": host})
    result = recipe("serve", "--config", str(file), "--check",
                    env=dict(os.environ, HOME=str(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"serve: http://{host}:8501" in result.stdout and "WARNING" not in result.stderr


def test_the_override_is_accepted_and_shouted(tmp_path: Path) -> None:
    file = config_file(tmp_path, server={"host": "0.0.0.0", "port": 1})
    override = "--allow-unauthenticated-network"
    result = recipe("serve", "--config", str(file), override, "--check",
                    env=dict(os.environ, HOME=str(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "WARNING: UNAUTHENTICATED DASHBOARD on 0.0.0.0:1" in " ".join(result.stderr.split())


def test_serve_starts_on_loopback_with_a_private_secrets_file(tmp_path: Path) -> None:
    from tests.e2e.conftest import free_port, wait_healthy

    port = free_port()
    file = config_file(tmp_path, server={"port": port}, auth=OIDC,
                       access={"viewers": ["@example.com"]})  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipe_core", "serve", "--config", str(file)],
        cwd=tmp_path, env=oidc_env(tmp_path), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=90)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert f"on http://127.0.0.1:{port}" in output
    secrets_file = tmp_path / "ws" / ".serve" / "secrets.toml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
    assert not secrets_file.resolve().is_relative_to(REPO_ROOT)
    text = secrets_file.read_text()
    assert f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"' in text
    assert f'client_secret = "{SECRET}"' in text and 'client_id = "recipe"' in text
    assert SECRET not in file.read_text()
    assert (tmp_path / "ws" / "workspace.json").exists()


def test_cookie_secret_is_kept_across_restarts_and_env_is_derived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plug").mkdir()
    file = config_file(tmp_path, auth=OIDC, access={"viewers": ["@example.com"]},
                       executor={"kind": "ray", "ray_address": "http://head:8265"},
                       plugins={"folder": "plug"})  # fmt: skip
    cfg = load_config(file)
    environ = {"RECIPE_TEST_CLIENT_SECRET": SECRET, "RECIPE_DATASET": "/elsewhere"}
    first = write_secrets(cfg, environ).read_text()
    os.chmod(tmp_path / "ws" / ".serve" / "secrets.toml", 0o644)  # loosened by someone
    second_file = write_secrets(cfg, environ)
    assert second_file.read_text() == first  # the same cookie secret: sessions survive
    assert stat.S_IMODE(second_file.stat().st_mode) == 0o600  # and tightened again
    env = serve_environment(cfg, environ)
    assert env["RECIPE_CONFIG"] == str(file.resolve())
    assert env["RECIPE_WORKSPACE"] == str((tmp_path / "ws").resolve())
    assert env["RECIPE_DATA_ROOTS"] == str((tmp_path / "data").resolve())
    assert (env["RECIPE_EXECUTOR"], env["RECIPE_RAY_ADDRESS"]) == ("ray", "http://head:8265")
    assert env["RECIPE_PLUGINS"] == str((tmp_path / "plug").resolve())
    assert "RECIPE_DATASET" not in env  # serve mode: only the configured roots
