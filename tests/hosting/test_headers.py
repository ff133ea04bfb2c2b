"""The browser security headers: on every response of a real `recipe serve` (read over HTTP),
and in the reverse-proxy configs docs/hosting.md points operators to (docs/proxy/), each with a
value that stops framing by other sites and content sniffing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

from recipe_core.hosting.headers import SECURITY_HEADERS
from tests.conftest import REPO_ROOT
from tests.hosting.hosting_helpers import base_sections, write_config

PROXY = REPO_ROOT / "docs" / "proxy"
REQUIRED = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


def is_safe(name: str, value: str) -> bool:
    """Whether `value` of header `name` forbids what the header is there to forbid."""
    text = value.strip().strip('"').strip()
    if name == "Content-Security-Policy":
        directives = {d.split()[0].lower(): d.split()[1:] for d in text.split(";") if d.strip()}
        return directives.get("frame-ancestors") in (["'none'"], ["'self'"])
    if name == "X-Frame-Options":
        return text.upper() in ("DENY", "SAMEORIGIN")
    if name == "X-Content-Type-Options":
        return text.lower() == "nosniff"
    return bool(text)


def test_the_safety_judge_refuses_unsafe_values() -> None:
    """The judge below is what the other tests trust: it must say no to the usual mistakes."""
    assert all(is_safe(k, v) for k, v in SECURITY_HEADERS.items())
    assert not is_safe("Content-Security-Policy", "default-src 'self'")  # no frame-ancestors
    assert not is_safe("Content-Security-Policy", "frame-ancestors *")
    assert not is_safe("Content-Security-Policy", "frame-ancestors 'self' https://evil.org")
    assert not is_safe("X-Frame-Options", "ALLOW-FROM https://evil.org")
    assert not is_safe("X-Content-Type-Options", "sniff")


def caddy_headers(text: str) -> dict[str, str]:
    """Field -> value of the Caddyfile's `header { ... }` block(s) (`defer` noted as a key)."""
    found: dict[str, str] = {}
    for block in re.findall(r"^\s*header\s*\{(.*?)^\s*\}", text, flags=re.M | re.S):
        for line in block.splitlines():
            parts = line.strip().split(None, 1)
            if parts and not parts[0].startswith("#"):
                found[parts[0]] = parts[1].strip().strip('"') if len(parts) > 1 else ""
    return found


def nginx_directives(text: str, directive: str) -> list[str]:
    """The arguments of each `directive ...;` line, comments removed."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    prefix = f"{directive} "
    return [line[len(prefix) :].rstrip(";").strip() for line in lines if line.startswith(prefix)]


def test_the_caddyfile_sets_each_header_with_a_safe_value() -> None:
    found = caddy_headers((PROXY / "Caddyfile").read_text())
    for name in REQUIRED:
        assert name in found, f"docs/proxy/Caddyfile sets no {name}"
        assert is_safe(name, found[name]), f"{name} {found[name]!r} is not safe"
    assert {k: found.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS  # the app's values
    assert "defer" in found  # replaces the app's copies instead of doubling them
    assert "reverse_proxy 127.0.0.1:8501" in (PROXY / "Caddyfile").read_text()


def test_nginx_sets_each_header_on_every_response_once() -> None:
    text = (PROXY / "nginx.conf").read_text()
    added = {}
    for args in nginx_directives(text, "add_header"):
        name, rest = args.split(None, 1)
        value, _, flag = rest.rpartition(" ")
        assert flag == "always", f"add_header {name} lacks `always` (error pages need it too)"
        added[name] = value.strip('"')
    for name in REQUIRED:
        assert name in added, f"docs/proxy/nginx.conf sets no {name}"
        assert is_safe(name, added[name]), f"{name} {added[name]!r} is not safe"
    assert added == SECURITY_HEADERS
    assert set(nginx_directives(text, "proxy_hide_header")) == set(SECURITY_HEADERS)
    assert 'proxy_set_header Connection "upgrade"' in text  # WebSockets


def get(url: str) -> tuple[int, Message]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:  # a 404 must carry the headers too
        return error.code, error.headers


def test_recipe_serve_sends_the_headers_on_every_response(tmp_path: Path) -> None:
    from tests.e2e.conftest import free_port, wait_healthy

    port = free_port()
    (tmp_path / "data").mkdir()
    file = write_config(tmp_path, base_sections(server={"port": port}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "recipe_core", "serve", "--config", str(file)],
        cwd=tmp_path, env=dict(os.environ, HOME=str(tmp_path)), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=90)
        answers = {path: get(url + path) for path in ("/", "/_stcore/health", "/media/x.png")}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert [status for status, _ in answers.values()] == [200, 200, 404], output
    for path, (_, headers) in answers.items():
        for name, value in SECURITY_HEADERS.items():
            assert headers.get_all(name) == [value], f"{path}: {name} {headers.get_all(name)}"
        assert all(is_safe(name, headers[name]) for name in REQUIRED)


def test_the_hosting_page_points_to_the_proxy_files_and_names_each_header() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "(docs/hosting.md)" in readme  # the README's short section links the hosting page
    hosting = (REPO_ROOT / "docs" / "hosting.md").read_text()
    for name in ("Caddyfile", "nginx.conf"):  # linked relative to docs/, and the files exist
        assert f"](proxy/{name})" in hosting and (PROXY / name).is_file()
    assert all(name in hosting for name in SECURITY_HEADERS)
