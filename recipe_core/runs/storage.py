"""Shared run storage behind an fsspec URL (`s3://bucket/prefix`, `file:///mnt/shared/runs`).

Object stores have no append and no rename, so a remote run is never written in place: the job
writes a local staging copy and uploads whole objects (jobs/mirror.py), the dashboard and the CLI
pull objects into the workspace's local `runs/` folder, which acts as a cache (mirror.py). An
object PUT is atomic, so a reader sees the old or the new object, never half of one.

fsspec and its backends are optional (`recipe[s3]`), so they are imported only here, on use.

The fsspec options (RECIPE_RUNS_STORAGE_OPTIONS) come from the edge's `Settings`, through
`check_runs_url` (opening a workspace) or `open_store(options=...)` (a job opening its run).
Writes and reads that know only a run's URL (a mirrored `RunFiles`, `sync_run`) then open the
store with the options this process opened that runs URL with: the edge opens first.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe_core.errors import ConfigError, RunError
from recipe_core.settings import Settings

log = logging.getLogger(__name__)

RUNS_URL_ENV = "RECIPE_RUNS_URL"
STORAGE_OPTIONS_ENV = "RECIPE_RUNS_STORAGE_OPTIONS"  # JSON object passed to the fsspec backend
MARKER = ".recipe-mirror.json"  # in a local cache copy of a remote run: its URL and sync state
APPEND_ONLY = frozenset({"metrics.jsonl", "dynamics.jsonl", "insides.jsonl", "log.txt"})
# pip package (or extra) that provides the fsspec backend of each protocol
BACKENDS = {"s3": "recipe[s3]", "s3a": "recipe[s3]", "gs": "gcsfs", "gcs": "gcsfs",
            "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}  # fmt: skip
# Validation should fail in seconds, not after botocore's default retries (~15 s per call).
S3_FAST_FAIL = {"config_kwargs": {"connect_timeout": 5, "retries": {"max_attempts": 2}}}


def status_last(names: Iterable[str]) -> list[str]:
    """The order to copy a run's files in, either way: status.json after everything else, so
    a reader never sees a status that runs ahead of the metrics it counts."""
    return sorted(names, key=lambda n: (n == "status.json", n))


def is_url(target: str | os.PathLike[str]) -> bool:
    return "://" in str(target)


def split_run_url(run_url: str) -> tuple[str, str]:
    """`s3://bucket/runs/ID` -> (`s3://bucket/runs`, `ID`)."""
    runs_url, _, run_id = run_url.rstrip("/").rpartition("/")
    if not is_url(runs_url) or not run_id:
        raise RunError(
            f"{run_url!r} is not a run URL. Expected <runs url>/<run id>, e.g. "
            "s3://bucket/runs/20250101-120000-123456-a1b2c3."
        )
    return runs_url, run_id


def storage_options(raw: str) -> dict[str, Any]:
    """The fsspec options in `raw` (the JSON object of RECIPE_RUNS_STORAGE_OPTIONS; "" = none)."""
    try:
        options = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ConfigError(
            f"{STORAGE_OPTIONS_ENV}={raw!r} is not valid JSON ({exc}). Set it to a JSON object "
            'of fsspec storage options, e.g. {"anon": false}, or unset it.'
        ) from exc
    if not isinstance(options, dict):
        raise ConfigError(f"{STORAGE_OPTIONS_ENV} must be a JSON object, not {raw!r}.")
    return options


# runs URL -> the options this process opened it with (a connection setting, not state: every
# process opens its runs URL at its edge first, with the settings it read there)
_OPENED_WITH: dict[str, dict[str, Any]] = {}


def _protocol(url: str) -> str:
    protocol = url.split("://", 1)[0].lower()
    try:
        from fsspec.registry import known_implementations
    except ImportError as exc:
        raise ConfigError(
            f"Run storage URL {url!r} needs fsspec, which is not installed. "
            f"Install the extra: pip install '{BACKENDS.get(protocol, 'recipe[s3]')}'."
        ) from exc
    if protocol == "memory":
        raise ConfigError(
            f"Run storage URL {url!r}: memory:// is private to one process, so workers and the "
            "dashboard would not see each other's runs. Use s3://bucket/prefix or file:///path."
        )
    if protocol not in known_implementations:
        raise ConfigError(
            f"Run storage URL {url!r} has an unknown protocol {protocol!r}. Use one fsspec "
            "knows, e.g. s3://bucket/prefix, gs://bucket/prefix or file:///shared/path."
        )
    return protocol


@dataclass(frozen=True)
class RunStore:
    """The runs folder at `url`: an fsspec filesystem and the folder's path on it."""

    url: str  # e.g. s3://bucket/prefix, no trailing slash
    fs: Any  # fsspec.AbstractFileSystem (untyped: fsspec is optional)
    path: str  # the folder on `fs`, e.g. bucket/prefix

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/{run_id}"

    def key(self, run_id: str, name: str = "") -> str:
        return f"{self.path}/{run_id}/{name}" if name else f"{self.path}/{run_id}"

    def run_ids(self) -> list[str]:
        """Runs under the folder (fresh listing, not fsspec's cached one)."""
        self.fs.invalidate_cache(self.path)
        if not self.fs.exists(self.path):
            return []
        names = (str(p).rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path, detail=False))
        return sorted(n for n in names if n and not n.startswith("."))

    def objects(self, run_id: str) -> dict[str, dict[str, Any]]:
        """{name inside the run: fsspec info (size, ETag or mtime)} of every object of a run."""
        base = self.key(run_id)
        self.fs.invalidate_cache(base)
        found = self.fs.find(base, detail=True)
        return {str(p)[len(base) + 1 :]: info for p, info in found.items()}

    def get(self, run_id: str, name: str, start: int = 0) -> bytes:
        data: bytes = self.fs.cat_file(self.key(run_id, name), start=start or None)
        return data

    def put(self, run_id: str, name: str, data: bytes) -> None:
        """Atomic where the storage allows: an object PUT; a temp file + rename on file://."""
        key = self.key(run_id, name)
        if not _is_local(self.fs):
            self.fs.pipe_file(key, data)
            return
        self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{key}.{os.getpid()}.{secrets.token_hex(3)}.tmp"
        self.fs.pipe_file(tmp, data)
        os.replace(tmp, key)


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def open_store(url: str, *, options: Mapping[str, Any] | None = None, **extra: Any) -> RunStore:
    """The RunStore for `url` with fsspec `options` (remembered for `url`; None: those this
    process opened `url` with, else none) and `extra`; ConfigError when the protocol or its
    backend is unusable."""
    protocol = _protocol(url)
    import fsspec

    key = url.rstrip("/")
    if options is None:
        options = _OPENED_WITH.get(key, {})
    else:
        _OPENED_WITH[key] = dict(options)
    options = {**options, **extra}
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise ConfigError(
            f"Run storage URL {url!r} needs the {protocol!r} fsspec backend, which is not "
            f"installed. Install it: pip install '{BACKENDS.get(protocol, protocol + 'fs')}'."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Cannot open run storage {url!r}: {exc}. Check the URL.") from exc
    return RunStore(url=url.rstrip("/"), fs=fs, path=str(path).rstrip("/"))


@functools.lru_cache(maxsize=16)
def _checked(url: str, options_json: str, endpoint: str) -> None:
    """Write and delete a probe object: the storage is reachable and writable. (Cached per
    process and options; a failure raises and so is not cached.) `endpoint`: AWS_ENDPOINT_URL,
    named in the error."""
    extra = S3_FAST_FAIL if url.lower().startswith(("s3://", "s3a://")) else {}
    options = {**extra, **json.loads(options_json), "skip_instance_cache": True}
    store = open_store(url, options={}, **options)
    probe = f".recipe-probe-{secrets.token_hex(4)}"
    try:
        store.put(probe, "probe", b"ok")
        store.fs.rm(store.key(probe), recursive=True)
    except Exception as exc:  # botocore/gcsfs/adlfs errors share no base class with OSError
        where = f" (endpoint {endpoint})" if endpoint and "s3" in url[:4].lower() else ""
        raise ConfigError(
            f"Run storage {url!r}{where} is not reachable or not writable: "
            f"{type(exc).__name__}: {exc}. Check that the bucket exists, the endpoint and "
            "credentials (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
            f"{STORAGE_OPTIONS_ENV}) are right, and that they may write there; or unset "
            f"{RUNS_URL_ENV} to keep runs in the local workspace."
        ) from exc


def check_runs_url(url: str, *, settings: Settings) -> str:
    """`url` without a trailing slash, once it is known to be usable with the storage options
    of `settings` (remembered for it: see `open_store`); ConfigError (with the fix) for a
    malformed URL, a missing backend, an unreachable or read-only storage."""
    if not is_url(url):
        raise ConfigError(
            f"Run storage URL {url!r} has no protocol. Use e.g. s3://bucket/prefix or "
            "file:///shared/path (a plain shared folder needs no URL: point the workspace at it)."
        )
    url = url.rstrip("/")
    options = storage_options(settings.runs_storage_options)
    _checked(url, json.dumps(options, sort_keys=True), settings.aws_endpoint_url)
    _OPENED_WITH[url] = options
    return url


# --- the marker of a local cache copy ---------------------------------------------------------


def read_marker(root: Path) -> dict[str, Any] | None:
    """The sync state of a cache copy (`url`, `versions`, `settled`); None for a plain run."""
    try:
        data: dict[str, Any] = json.loads((root / MARKER).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("Ignoring a damaged %s in %s", MARKER, root)
        return None
    return data


def mirror_url(root: Path) -> str:
    """The URL a local run folder mirrors, "" when it is an ordinary run directory."""
    marker = read_marker(root)
    return str(marker.get("url", "")) if marker else ""


def run_target(run_dir: Path) -> str:
    """What a job entrypoint is given for a run: its URL when `run_dir` caches a run on shared
    storage (`python -m recipe_core.jobs.train_job s3://...`), else the local folder."""
    return mirror_url(Path(run_dir)) or str(run_dir)
