"""`recipe.toml`: the one file that configures a dashboard hosted for a team.

    cfg = load_config("recipe.toml")     # ServeConfig, every value checked

Every error names the key, the bad value, the valid values and the fix; unknown keys are
errors with a "did you mean" hint, because a misspelt `max_step` silently falling back to a
default is exactly the kind of quiet failure Recipe exists to prevent. Secrets never sit in
the file: `[auth]` names the environment variables that hold them. Relative paths resolve
against the config file's folder, so the file means the same thing from any directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recipe_core.data.specs import checked_pipelines
from recipe_core.errors import ConfigError
from recipe_core.hosting.schema import checked_values

PROVIDERS = ("oidc", "none")
EXECUTORS = ("local", "ray")
ROLES = ("runner", "viewer")

# an allow-list entry: alice@example.com or @example.com
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
LOCAL_PART = re.compile(r"[a-z0-9.!#$%&'+/=?^_`{|}~-]+")  # no "*": it would look like a wildcard


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # address Streamlit binds
    port: int = 8501
    public_url: str = ""  # what browsers type; "" = http://{host}:{port}
    allow_unauthenticated_network: bool = False  # the loud override for auth "none" off-loopback

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def redirect_uri(self) -> str:
        """Where the identity provider sends users back (register it with the provider)."""
        return f"{self.url}/oauth2callback"


@dataclass(frozen=True)
class WorkspaceConfig:
    path: Path  # absolute: runs, scans, thumbnails, audit log, secrets file
    runs_url: str = ""  # optional fsspec URL for runs (s3://...)


@dataclass(frozen=True)
class ExecutorConfig:
    kind: str = "local"  # one of EXECUTORS
    ray_address: str = ""  # Ray Jobs API address when kind == "ray"


@dataclass(frozen=True)
class AuthConfig:
    provider: str  # one of PROVIDERS
    server_metadata_url: str = ""  # the provider's /.well-known/openid-configuration
    client_id: str = ""
    client_secret_env: str = "RECIPE_OIDC_CLIENT_SECRET"  # env var holding the client secret
    cookie_secret_env: str = ""  # env var with the cookie secret; "" = generated, kept 0600


@dataclass(frozen=True)
class AccessConfig:
    runners: tuple[str, ...] = ()  # e-mails "a@x.org" or domains "@x.org"
    viewers: tuple[str, ...] = ()
    local_role: str = "runner"  # the role of everyone when provider = "none" (ignored with oidc)


@dataclass(frozen=True)
class LimitsConfig:
    max_concurrent_jobs: int = 2  # running jobs per user: training runs, check jobs, scans
    max_steps: int = 20000  # training steps per run
    max_scan_images: int = 200000  # samples in a dataset a user may scan
    max_check_seconds: int = 600  # wall-clock seconds a check job may run before it is stopped


@dataclass(frozen=True)
class ServeConfig:
    source: Path  # the TOML file, absolute
    server: ServerConfig
    workspace: WorkspaceConfig
    roots: tuple[Path, ...]  # the only folders datasets may be opened from (absolute, real)
    executor: ExecutorConfig
    auth: AuthConfig
    access: AccessConfig = field(default_factory=AccessConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    plugins: Path | None = None  # operator's folder of model plugins
    pipelines: Mapping[str, str] = field(default_factory=dict)  # the only pipelines offered

    @property
    def auth_on(self) -> bool:
        return self.auth.provider == "oidc"

    @property
    def audit_file(self) -> Path:
        return self.workspace.path / "audit.jsonl"

    @property
    def unauthenticated_network(self) -> bool:
        """Served beyond this machine with nobody signing in: the override's case."""
        return not self.auth_on and not is_loopback(self.server.host)


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server on this machine: a loopback address as parsed
    (127.0.0.0/8, ::1 or "[::1]", ::ffff:127.x) or the one name `localhost`. Every other name
    is network: "127.0.0.1.nip.io" resolves wherever its DNS says, not where its text points."""
    if host.lower() == "localhost":
        return True
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def load_config(path: str | os.PathLike[str]) -> ServeConfig:
    """Read and validate `path`; raises ConfigError naming the key and the fix."""
    file = Path(path).expanduser().resolve()
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"Config file {file} does not exist. Write one (see the README's 'Host it for a "
            "team' section) and pass it with `recipe serve --config recipe.toml`."
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}. Fix the syntax and retry.") from exc
    v = checked_values(raw, file)
    folder, ws = file.parent, v["workspace"]
    config = ServeConfig(
        source=file,
        server=_server(v["server"]),
        workspace=WorkspaceConfig(_path(v["workspace"]["path"], folder), ws["runs_url"]),
        roots=_roots(v["data"]["roots"], folder),
        executor=_executor(v["executor"]),
        auth=_auth(v["auth"]),
        access=_access(v["access"]),
        limits=_limits(v["limits"]),
        plugins=_plugins(v["plugins"]["folder"], folder),
        pipelines=checked_pipelines(v["pipelines"], folder=folder, where="[pipelines]"),
    )
    if config.auth_on and not (config.access.runners or config.access.viewers):
        raise ConfigError(
            f"[access] runners and viewers are both empty in {file}: with [auth] provider = "
            '"oidc" nobody could use the dashboard. Add e-mails ("alice@example.com") or '
            'domains ("@example.com").'
        )
    return config


def _path(text: str, folder: Path) -> Path:
    path = Path(text).expanduser()
    return Path(os.path.realpath(path if path.is_absolute() else folder / path))


def _server(v: dict[str, Any]) -> ServerConfig:
    if not 1 <= v["port"] <= 65535:
        raise ConfigError(f"[server] port = {v['port']} must be between 1 and 65535.")
    if not v["host"].strip():
        raise ConfigError('[server] host = "" is empty: use "127.0.0.1" or "0.0.0.0".')
    url = v["public_url"].rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"[server] public_url = {url!r} must start with https:// (or http:// for a local "
            'test), e.g. "https://recipe.example.com".'
        )
    return ServerConfig(v["host"], v["port"], url, v["allow_unauthenticated_network"])


def _roots(texts: list[str], folder: Path) -> tuple[Path, ...]:
    if not texts:
        raise ConfigError(
            "[data] roots = [] is empty: list the folders datasets may be opened from, e.g. "
            'roots = ["/data/datasets"].'
        )
    roots = []
    for text in texts:
        root = _path(text, folder)
        if not root.is_dir():
            raise ConfigError(
                f"[data] roots entry {text!r} ({root}) is not an existing folder. Create it or "
                "fix the path (relative paths start at the config file's folder)."
            )
        roots.append(root)
    return tuple(dict.fromkeys(roots))


def _executor(v: dict[str, Any]) -> ExecutorConfig:
    _one_of("executor", "kind", v["kind"], EXECUTORS)
    if v["kind"] == "ray" and not v["ray_address"].strip():
        raise ConfigError(
            '[executor] kind = "ray" needs ray_address, e.g. ray_address = '
            '"http://ray-head:8265" (the Ray Jobs API of a running cluster).'
        )
    return ExecutorConfig(v["kind"], v["ray_address"].strip())


def _auth(v: dict[str, Any]) -> AuthConfig:
    _one_of("auth", "provider", v["provider"], PROVIDERS)
    if v["provider"] == "oidc":
        for key in ("server_metadata_url", "client_id", "client_secret_env"):
            if not v[key].strip():
                raise ConfigError(
                    f'[auth] provider = "oidc" needs {key}; it is empty. See your identity '
                    "provider's app registration (the README names where to find it)."
                )
        if not v["server_metadata_url"].startswith(("https://", "http://")):
            raise ConfigError(
                f"[auth] server_metadata_url = {v['server_metadata_url']!r} must be a URL "
                "ending in /.well-known/openid-configuration."
            )
    for key in ("client_secret_env", "cookie_secret_env"):
        if v[key] and not v[key].replace("_", "").isalnum():
            raise ConfigError(
                f"[auth] {key} = {v[key]!r} must be an environment variable NAME such as "
                '"RECIPE_OIDC_CLIENT_SECRET", not the secret itself.'
            )
    return AuthConfig(**v)


def check_entry(entry: str, key: str) -> str:
    """An allow-list entry, normalised (lower case), or ConfigError naming the bad one."""
    text = entry.strip().lower()
    local, at, domain = text.rpartition("@")
    valid = at == "@" and DOMAIN.fullmatch(domain) is not None
    valid = valid and (local == "" or LOCAL_PART.fullmatch(local) is not None)
    if not valid:
        raise ConfigError(
            f"[access] {key} entry {entry!r} is neither an e-mail nor a domain. Write "
            '"alice@example.com" for one person or "@example.com" for everyone at a domain '
            "(no wildcards, no spaces)."
        )
    return text


def _access(v: dict[str, Any]) -> AccessConfig:
    _one_of("access", "local_role", v["local_role"], ROLES)
    runners = tuple(check_entry(e, "runners") for e in v["runners"])
    viewers = tuple(check_entry(e, "viewers") for e in v["viewers"])
    return AccessConfig(runners, viewers, v["local_role"])


def _limits(v: dict[str, Any]) -> LimitsConfig:
    defaults = LimitsConfig()
    for key, value in v.items():
        if value < 1:
            raise ConfigError(
                f'[limits] {key} = {value} must be at least 1: a limit of 0 is not "unlimited" '
                f"(there is no unlimited setting). Set a positive value, e.g. {key} = "
                f"{getattr(defaults, key)} (the default), or delete the line."
            )
    return LimitsConfig(**v)


def _plugins(text: str, folder: Path) -> Path | None:
    if not text:
        return None
    path = _path(text, folder)
    if not path.is_dir():
        raise ConfigError(
            f"[plugins] folder = {text!r} ({path}) is not an existing folder. Create it, or "
            'set folder = "" to use only the built-in models.'
        )
    return path


def _one_of(section: str, key: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(
            f"[{section}] {key} = {value!r} is not valid. Use one of: "
            + ", ".join(f'"{x}"' for x in valid)
            + "."
        )
