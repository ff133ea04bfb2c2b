"""recipe.toml: a full valid file, defaults, relative paths, and one test per class of error
(each message names the key, the bad value and the fix)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from recipe_core.errors import ConfigError
from recipe_core.hosting import is_loopback, load_config
from tests.hosting.hosting_helpers import OIDC, base_sections, write_config

CONTRACT_EXAMPLE = """
[server]
host = "0.0.0.0"             # default 127.0.0.1
port = 8601
public_url = "https://recipe.example.com/"
allow_unauthenticated_network = false

[workspace]
path = "shared/recipe"
runs_url = "s3://bucket/runs"

[data]
roots = ["datasets", "{abs_root}"]

[executor]
kind = "ray"
ray_address = "http://ray-head:8265"

[auth]
provider = "oidc"
server_metadata_url = "https://accounts.example.com/.well-known/openid-configuration"
client_id = "recipe"
client_secret_env = "RECIPE_OIDC_CLIENT_SECRET"
cookie_secret_env = "RECIPE_COOKIE_SECRET"

[access]
runners = ["Alice@Example.com"]
viewers = ["@example.com"]

[limits]
max_concurrent_jobs = 3
max_steps = 5000
max_scan_images = 1000

[plugins]
folder = "plugins"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path


def test_the_contract_example_loads_with_every_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    for sub in ("datasets", "plugins"):
        (conf / sub).mkdir(parents=True)
    elsewhere = tmp_path / "abs_root"
    elsewhere.mkdir()
    file = conf / "recipe.toml"
    file.write_text(CONTRACT_EXAMPLE.replace("{abs_root}", str(elsewhere)))
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the working directory
    cfg = load_config("conf/recipe.toml")
    assert cfg.source == file.resolve()
    assert (cfg.server.host, cfg.server.port) == ("0.0.0.0", 8601)
    assert cfg.server.redirect_uri == "https://recipe.example.com/oauth2callback"
    assert cfg.workspace.path == (conf / "shared" / "recipe").resolve()
    assert cfg.workspace.runs_url == "s3://bucket/runs"
    assert cfg.roots == ((conf / "datasets").resolve(), elsewhere.resolve())
    assert (cfg.executor.kind, cfg.executor.ray_address) == ("ray", "http://ray-head:8265")
    assert cfg.auth_on and cfg.auth.client_id == "recipe"
    assert cfg.access.runners == ("alice@example.com",)  # normalised to lower case
    assert cfg.access.viewers == ("@example.com",)
    assert (cfg.limits.max_concurrent_jobs, cfg.limits.max_steps) == (3, 5000)
    assert cfg.limits.max_scan_images == 1000
    assert cfg.plugins == (conf / "plugins").resolve()
    assert cfg.audit_file == cfg.workspace.path / "audit.jsonl"
    assert not cfg.unauthenticated_network  # sign-in is on


def test_a_minimal_file_gets_the_documented_defaults(folder: Path) -> None:
    file = write_config(folder, {"data": {"roots": ["data"]}, "auth": {"provider": "none"}})
    cfg = load_config(file)
    assert (cfg.server.host, cfg.server.port, cfg.server.url) == (
        "127.0.0.1", 8501, "http://127.0.0.1:8501"
    )  # fmt: skip
    assert cfg.workspace.path == folder.resolve() / ".recipe"
    assert cfg.executor.kind == "local" and cfg.plugins is None
    assert (cfg.limits.max_concurrent_jobs, cfg.limits.max_steps) == (2, 20000)
    assert cfg.limits.max_scan_images == 200000
    assert cfg.access.local_role == "runner"


def test_a_symlinked_root_is_stored_resolved(folder: Path) -> None:
    os.symlink(folder / "data", folder / "link")
    cfg = load_config(write_config(folder, base_sections(data={"roots": ["link"]})))
    assert cfg.roots == ((folder / "data").resolve(),)


ERRORS: list[tuple[str, dict[str, dict[str, Any]], str]] = [
    (
        "unknown section",
        {"servr": {"port": 1}},
        r"Unknown section 'servr'.*Did you mean \"server\"",
    ),
    ("unknown key", {"limits": {"max_step": 5}}, r"'max_step' .*Did you mean \"max_steps\""),
    (
        "secret in toml",
        {"auth": {"client_secret": "hunter2"}},
        r"client_secret is set .*never sit in the config file.*client_secret_env",
    ),
    ("cookie secret in toml", {"auth": {"cookie_secret": "x"}}, r"cookie_secret_env"),
    ("wrong type", {"server": {"port": "8501"}}, r"\[server\] port = '8501' must be an integer"),
    ("bool is not int", {"limits": {"max_steps": True}}, r"max_steps = True must be an integer"),
    ("port range", {"server": {"port": 70000}}, r"port = 70000 must be between 1 and 65535"),
    (
        "provider",
        {"auth": {"provider": "saml"}},
        r"provider = 'saml' is not valid.*\"oidc\", \"none\"",
    ),
    (
        "oidc needs client_id",
        {"auth": {**OIDC, "client_id": ""}, "access": {"viewers": ["@x.org"]}},
        r"needs client_id",
    ),
    ("oidc with nobody allowed", {"auth": OIDC}, r"runners and viewers are both empty"),
    (
        "root missing",
        {"data": {"roots": ["nope"]}},
        r"roots entry 'nope' .* is not an existing folder",
    ),
    ("roots empty", {"data": {"roots": []}}, r"roots = \[\] is empty"),
    ("roots not strings", {"data": {"roots": [1]}}, r"must be a list of strings"),
    ("ray needs address", {"executor": {"kind": "ray"}}, r"needs ray_address"),
    (
        "executor kind",
        {"executor": {"kind": "k8s"}},
        r"kind = 'k8s' is not valid.*\"local\", \"ray\"",
    ),
    (
        "wildcard entry",
        {"access": {"viewers": ["*@example.com"]}},
        r"neither an e-mail nor a domain",
    ),
    ("bare domain entry", {"access": {"runners": ["example.com"]}}, r"'example.com' is neither"),
    (
        "limit zero",
        {"limits": {"max_concurrent_jobs": 0}},
        r"max_concurrent_jobs = 0 must be at least 1",
    ),
    ("public url", {"server": {"public_url": "recipe.example.com"}}, r"must start with https://"),
    (
        "secret env is a value",
        {"auth": {"client_secret_env": "s3cr3t!"}},
        r"environment variable NAME",
    ),
    (
        "plugins folder",
        {"plugins": {"folder": "plug"}},
        r"\[plugins\] folder = 'plug' .*not an existing",
    ),
    ("local role", {"access": {"local_role": "admin"}}, r"local_role = 'admin' is not valid"),
]


@pytest.mark.parametrize(("case", "override", "match"), ERRORS, ids=[e[0] for e in ERRORS])
def test_each_class_of_error_names_key_value_and_fix(
    folder: Path, case: str, override: dict[str, dict[str, Any]], match: str
) -> None:
    sections = base_sections()
    for section, keys in override.items():
        if section == "data":
            sections["data"] = dict(keys)
        else:
            sections.setdefault(section, {}).update(keys)
    with pytest.raises(ConfigError, match=match):
        load_config(write_config(folder, sections))


def test_missing_provider_is_required(folder: Path) -> None:
    file = write_config(folder, {"data": {"roots": ["data"]}})
    with pytest.raises(ConfigError, match=r"\[auth\] provider is missing"):
        load_config(file)


def test_bad_toml_and_missing_file(folder: Path) -> None:
    bad = folder / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"does not exist.*recipe serve --config"):
        load_config(folder / "missing.toml")


def test_pipelines_are_registered_by_the_operator_and_checked_without_importing(
    folder: Path,
) -> None:
    (folder / "team").mkdir()
    (folder / "team" / "pipe.py").write_text("raise SystemExit('never imported by the config')\n")
    base = {"data": {"roots": ["data"]}, "auth": {"provider": "none"}}
    file = write_config(
        folder,
        {
            **base,
            "pipelines": {"chars": "team/pipe.py:pipeline", "mod": "team_pkg.recipe:pipeline"},
        },
    )
    cfg = load_config(file)
    assert cfg.pipelines == {"chars": f"{(folder / 'team' / 'pipe.py').resolve()}:pipeline",
                             "mod": "team_pkg.recipe:pipeline"}  # fmt: skip
    assert load_config(write_config(folder, base)).pipelines == {}
    for bad, says in (
        ({"x": "team/missing.py:pipeline"}, "does not exist"),
        ({"x": "no_colon"}, "is not FILE.py:NAME"),
        ({"x": 3}, "must be a string"),
    ):
        with pytest.raises(ConfigError, match=says):
            load_config(write_config(folder, {**base, "pipelines": bad}))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
     ("::ffff:127.0.0.1", True), ("localhost", True), ("LocalHost", True),
     ("127.0.0.1.nip.io", False), ("127.evil.example", False), ("localhost.evil.org", False),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("[10.0.0.5]", False),
     ("recipe.example.com", False), ("", False)],
)  # fmt: skip
def test_loopback_is_decided_by_the_parsed_address(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
