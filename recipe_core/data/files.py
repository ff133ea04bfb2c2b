"""The one safe reader and the one safe walk of dataset files.

Every path that opens a dataset file (the scan, the header pass, thumbnails, the training and
check loaders) goes through `open_regular`/`read_regular`, and every listing of a folder through
`walk_files`. A dataset root can hold anything someone could write there, so:

- only regular files are opened, and a named pipe is opened non-blocking first, so `x.png` that
  is a FIFO is refused at once instead of freezing the reader until someone writes to it;
- the size is checked before a byte is read (a multi-GB or sparse file is a `corrupt` row naming
  its size and the cap, not a `MemoryError` that aborts the scan);
- a walk never enters a folder twice: a symlink back to a folder it is inside, or to one it has
  listed already, is reported as a skipped entry with the reason, not followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The largest dataset file Recipe reads. The biggest real photos (100 MP RAW-like TIFFs) stay
# under this; anything larger is more likely a mistake (a video, a disk image, a sparse file).
MAX_FILE_BYTES = 1 << 29  # 512 MiB


LOOP = "symlink loop: it leads back to a folder it is inside, so it is not followed"


class UnreadableFile(OSError):
    """A dataset file that is refused before it is read: not a regular file, or too big."""


class FileTooLarge(UnreadableFile):
    """A dataset file above the size cap."""


@dataclass(frozen=True)
class SkippedEntry:
    """A folder a walk did not enter, and why."""

    path: str
    reason: str


def open_regular(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> BinaryIO:
    """An open binary file for `path`, after refusing (UnreadableFile) anything but a regular
    file of at most `max_bytes`. The kind and size are taken from the opened descriptor, so a
    file swapped for a pipe between a check and the open cannot slip through."""
    return _open_checked(path, max_bytes)[0]


def read_regular(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`. Raises OSError (UnreadableFile with a
    clear text for a pipe, device, folder or oversized file; MemoryError becomes one too)."""
    handle, size = _open_checked(path, max_bytes)
    with handle:
        try:
            # read(n) allocates n bytes up front: ask for what fstat said (+1 to see growth),
            # then at most up to the cap, never the cap itself for every small file.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(max_bytes + 1 - len(data))
        except MemoryError as exc:
            raise UnreadableFile("MemoryError: not enough memory to read the file") from exc
    if len(data) > max_bytes:  # it grew after the size check
        raise FileTooLarge(too_big(len(data), max_bytes))
    return data


def _open_checked(path: str | os.PathLike[str], max_bytes: int) -> tuple[BinaryIO, int]:
    """The open file and its size, from one fstat of the opened descriptor."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except ValueError as exc:  # a NUL byte in the name: no file system has such a file
        raise UnreadableFile(f"not a valid file name ({exc})") from exc
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket file, or a FIFO some platforms refuse outright
            raise UnreadableFile("not a regular file (a socket or named pipe)") from exc
        raise
    try:
        info = os.fstat(fd)
        refuse_irregular(info, max_bytes)
        _blocking(fd)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def refuse_irregular(info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(f"not a regular file ({file_kind(info.st_mode)})")
    if info.st_size > max_bytes:
        raise FileTooLarge(too_big(info.st_size, max_bytes))


def too_big(size: int, max_bytes: int) -> str:
    return (
        f"the file is {_size_text(size)}, above the {_size_text(max_bytes)} cap on "
        "one dataset file (not read: it would not fit in memory); remove it from the dataset "
        "or convert it to a smaller image"
    )


def file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or special file"


def walk_files(
    root: str | os.PathLike[str], skipped: list[SkippedEntry] | None = None
) -> Iterator[str]:
    """Files under `root` (sorted, hidden ones left out) as path strings, lazily, following
    folder symlinks but never into a folder twice: a link back to a folder the walk is inside (a
    loop) or to one it has listed already, and a folder that cannot be listed, are appended to
    `skipped` (absolute paths) with the reason."""
    top = os.fspath(root)
    found = skipped if skipped is not None else []
    try:
        seen = {_key(top): top}
    except OSError:
        return

    def unlisted(exc: OSError) -> None:
        found.append(SkippedEntry(os.fspath(exc.filename or top), _not_listed(exc)))

    for dirpath, dirnames, filenames in os.walk(top, followlinks=True, onerror=unlisted):
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            path = os.path.join(dirpath, name)
            reason = _revisit(path, seen)
            if reason:
                found.append(SkippedEntry(path, reason))
            else:
                kept.append(name)
        dirnames[:] = kept
        folder = dirpath if dirpath.endswith(os.sep) else dirpath + os.sep  # join, 3x cheaper
        for name in sorted(filenames):
            if not name.startswith("."):
                yield folder + name


def _revisit(path: str, seen: dict[tuple[int, int], str]) -> str:
    """Why the walk must not enter the folder `path` ("" when it may), recording it as seen."""
    try:
        key = _key(path)
    except OSError as exc:
        return _not_listed(exc)
    if loops_back(path):
        return LOOP
    if key in seen:
        return "its folder is already listed through another path, so it is not listed twice"
    seen[key] = path
    return ""


def loops_back(path: str) -> bool:
    """True when `path` is a symlink to the folder holding it or to one of that folder's
    ancestors: following it would list the same files again, without end."""
    if not os.path.islink(path):
        return False
    here = Path(os.path.realpath(os.path.dirname(path)))
    target = Path(os.path.realpath(path))
    return here == target or here.is_relative_to(target)


def _key(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _not_listed(exc: OSError) -> str:
    return f"not listed: {exc.strerror or exc}"


def _blocking(fd: int) -> None:
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
