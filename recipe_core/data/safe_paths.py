"""Which folders a user-typed path may reach: the dashboard's path policy.

A browser user types a dataset path into a text box, and the server then reads whatever it
names. Locally that is the user's own machine, but a dashboard hosted for a team must not
become a file browser for the server's disk. So every typed path goes through a `PathPolicy`:
it is resolved the way the OS will open it (`..` collapsed, symlinks followed), and refused
unless the result lies inside one of the allowed roots:

* the current directory (where `recipe app` was started),
* the bundled `sample_data/`,
* the dataset `recipe app DATASET` was started with ($RECIPE_DATASET),
* every `recipe app --data-root DIR` ($RECIPE_DATA_ROOTS, os.pathsep-separated).

Checking the *resolved* path is what defeats both `../../etc` escapes and a symlink inside
a root that points outside it. A path that changes under URL-decoding (`..%2F..%2Fetc`) must
stay inside the roots in its decoded form too: something downstream (a proxy, a link) may
decode it. A hosted dashboard (`recipe serve`) allows only its configured roots and passes
`on_refuse`, which writes each refusal to the audit log.

The local dashboard (`recipe app`) serves one user their own disk, so its policy sets
`open_existing`: a typed path outside the roots that exists is accepted too (no restart with
--data-root needed); one that does not exist is still refused, naming the roots.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from recipe_core.errors import ConfigError, DatasetError
from recipe_core.settings import Settings

ROOTS_ENV = "RECIPE_DATA_ROOTS"  # extra allowed roots, os.pathsep-separated
DATASET_ENV = "RECIPE_DATASET"  # the dataset `recipe app DATASET` opened: allowed too
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
MAX_PATH = 4096  # characters: Linux's PATH_MAX; anything longer is refused unread


@dataclass(frozen=True)
class PathPolicy:
    """Allowed roots; `resolve` maps a typed path to an absolute path inside one of them."""

    roots: tuple[Path, ...]  # absolute, symlink-free folders; the first one anchors relative paths
    # called with (typed path, message) before a refusal is raised: the hosted app audits it
    on_refuse: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)
    open_existing: bool = False  # local app: also accept any existing path outside the roots

    def __post_init__(self) -> None:
        if not self.roots:
            raise ConfigError(
                "A path policy needs at least one allowed root folder. Pass the current "
                "directory, or start the app with `recipe app --data-root DIR`."
            )
        relative = [str(r) for r in self.roots if not r.is_absolute()]
        if relative:
            raise ConfigError(
                f"Allowed roots must be absolute paths; got {relative}. Resolve them first "
                "(PathPolicy.from_roots does)."
            )

    @classmethod
    def from_roots(
        cls,
        roots: Iterable[str | os.PathLike[str]],
        *,
        on_refuse: Callable[[str, str], None] | None = None,
        open_existing: bool = False,
    ) -> PathPolicy:
        """A policy over `roots` (resolved, duplicates and nested repeats kept once)."""
        resolved: list[Path] = []
        for root in roots:
            path = Path(os.path.realpath(Path(root).expanduser()))
            if path not in resolved:
                resolved.append(path)
        return cls(tuple(resolved), on_refuse, open_existing)

    def allows(self, path: str | os.PathLike[str]) -> bool:
        try:
            self.resolve(path)
        except DatasetError:
            return False
        return True

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """The absolute, symlink-resolved path `path` names, if it lies inside an allowed root.

        Relative paths are taken from the first root (the app's working directory). Raises
        `DatasetError` (naming the allowed roots and how to add one) for anything else.
        """
        text = os.fspath(path).strip()
        try:
            real = self._inside(text)
            decoded = _url_decoded(text)
            if decoded != text:
                self._inside(decoded, typed=text)
        except DatasetError as error:
            if self.on_refuse is not None:
                self.on_refuse(text, str(error))
            raise
        return real

    def _inside(self, text: str, *, typed: str | None = None) -> Path:
        shown = (
            repr(text[:200]) if typed is None else f"{typed[:200]!r} (URL-decoded: {text[:200]!r})"
        )
        if not text or "\x00" in text or len(text) > MAX_PATH:
            raise DatasetError(
                f"Invalid dataset path {shown}: empty, over {MAX_PATH} characters or holding a NUL "
                f"byte. Type a folder or manifest path inside {self._roots_text()}."
            )
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.roots[0] / candidate
        real = Path(os.path.realpath(candidate))
        inside = any(real == root or real.is_relative_to(root) for root in self.roots)
        if not inside and self.open_existing:
            if real.exists():
                return real
            raise DatasetError(
                f"Path {shown} does not exist, and is outside the folders this dashboard may "
                f"open ({self._roots_text()}). Type the path of an existing dataset folder or "
                "manifest file."
            )
        if not inside:
            raise DatasetError(
                f"Path {shown} is outside the folders this dashboard may open "
                f"({self._roots_text()}). Choose a dataset inside one of them, or restart the "
                "app with `recipe app --data-root DIR` (or `recipe serve`'s [data] roots) to "
                "allow another folder."
            )
        return real

    def escapes(self, root: str | os.PathLike[str], paths: Iterable[str]) -> list[str]:
        """Entries of the dataset at `root` that lead outside the allowed roots: symlinks
        (anywhere under `root`) whose target is outside, and sample `paths` that are absolute
        or climb with `..` out of them. Empty for a clean dataset."""
        found = [str(p) for p in _symlinks(Path(root)) if not self._contains(p)]
        for path in paths:
            parts = Path(path).parts
            if (Path(path).is_absolute() or ".." in parts) and not self._contains(Path(root, path)):
                found.append(path)
        return found

    def _contains(self, path: Path) -> bool:
        real = Path(os.path.realpath(path))
        return any(real == root or real.is_relative_to(root) for root in self.roots)

    def _roots_text(self) -> str:
        return ", ".join(str(r) for r in self.roots)


def default_policy(*, settings: Settings, cwd: str | os.PathLike[str] | None = None) -> PathPolicy:
    """The local app's policy: cwd, sample_data/, the dataset `recipe app DATASET` opened and
    the `--data-root` folders (`settings.dataset`, `settings.data_roots`); any other existing
    path the user types is accepted too (`open_existing`)."""
    roots: list[str | os.PathLike[str]] = [cwd if cwd is not None else os.getcwd()]
    if SAMPLE_DATA.is_dir():
        roots.append(SAMPLE_DATA)
    if settings.dataset:
        roots.append(settings.dataset)
    roots.extend(settings.data_roots)
    return PathPolicy.from_roots(roots, open_existing=True)


def _symlinks(root: Path) -> list[Path]:
    """Every symlink under `root` (not followed: a link's target is judged, not walked)."""
    if not root.is_dir():
        return [root] if root.is_symlink() else []
    links = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                links.append(path)
    return links


def _url_decoded(text: str) -> str:
    """`text` percent-decoded until it stops changing (a few rounds: %252e is %2e is .)."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def parse_roots(text: str) -> list[str]:
    """The entries of an os.pathsep-separated roots variable, blanks dropped."""
    return [part for part in text.split(os.pathsep) if part.strip()]


def checked_roots(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Resolve `--data-root` values, refusing any that is not an existing folder."""
    out = []
    for root in roots:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"--data-root {os.fspath(root)!r} is not an existing folder. Pass a folder that "
                "holds your datasets (repeat --data-root for several)."
            )
        out.append(Path(os.path.realpath(path)))
    return out


def path_key(path: str | os.PathLike[str]) -> str:
    """A stable, file-name-safe folder name for a dataset path: readable stem + hash."""
    text = os.fspath(path)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(text).name)[:40].strip("._") or "dataset"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return f"{stem}-{digest}"
