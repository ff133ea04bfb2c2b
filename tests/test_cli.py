"""The `recipe` command as a user runs it: real subprocesses, no patched internals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from recipe_core import __version__
from recipe_core.cli.app_cmd import streamlit_command
from tests.conftest import REPO_ROOT, SAMPLE_DIGITS


def recipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recipe_core", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120,
    )  # fmt: skip


def test_help_lists_commands() -> None:
    result = recipe("--help")
    assert result.returncode == 0
    assert "silent failures loud" in result.stdout
    assert "app" in result.stdout


def test_version() -> None:
    result = recipe("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"recipe {__version__}"


def test_console_script_installed() -> None:
    exe = Path(sys.executable).with_name("recipe")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def test_app_with_bad_dataset_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, RECIPE_WORKSPACE=str(tmp_path / "ws"))
    result = recipe("app", str(tmp_path / "nope"), env=env)
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_app_command_is_headless_and_loopback() -> None:
    cmd = streamlit_command(REPO_ROOT / "app" / "main.py", host="127.0.0.1", port=8765)
    joined = " ".join(cmd)
    assert "--server.headless true" in joined  # no first-run e-mail prompt, even without a TTY
    assert "--server.address 127.0.0.1" in joined
    assert "--browser.gatherUsageStats false" in joined


def test_the_theme_colour_is_the_charts_blue_wherever_streamlit_starts() -> None:
    """`recipe app` passes it; `streamlit run` from the repo root reads .streamlit/config.toml.
    Streamlit's default primary colour is an error-like red next to the Okabe-Ito charts."""
    import tomllib

    from app.palette import OKABE_ITO

    cmd = streamlit_command(REPO_ROOT / "app" / "main.py", host="127.0.0.1", port=8765)
    colour = cmd[cmd.index("--theme.primaryColor") + 1]
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert colour == config["theme"]["primaryColor"]
    assert colour.lower() in [c.lower() for c in OKABE_ITO]


def test_recipe_app_serves_without_a_terminal(tmp_path: Path) -> None:
    """`recipe app` starts a real server on 127.0.0.1 with no TTY on stdin (no e-mail prompt)."""
    from tests.e2e.conftest import free_port, wait_healthy

    port = free_port()
    env = dict(os.environ, RECIPE_WORKSPACE=str(tmp_path / "ws"), HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipe_core", "app", str(SAMPLE_DIGITS), "--port", str(port)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=90)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert f"http://127.0.0.1:{port}" in output
    assert "Email" not in output
    assert (tmp_path / "ws" / "workspace.json").exists()
