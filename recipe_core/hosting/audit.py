"""The audit log: who started, cancelled, exported or was refused what, appended to
`<workspace>/audit.jsonl`, one JSON object per line.

Several Streamlit threads (and processes, when several servers share a workspace) append at
once, so each entry is one `os.write` of one whole line to a file opened with O_APPEND: the
kernel places every such write at the end of the file, and lines never interleave. Values are
JSON-escaped ASCII and clipped, so neither a newline in a file name nor a 10 MB text box can
forge or flood entries.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
OUTCOMES = ("ok", "denied", "error")
MAX_FIELD = 500  # characters kept of `target` and `detail`: the rest is "…(N more)"


@dataclass(frozen=True)
class AuditEntry:
    time: str  # ISO 8601, UTC, milliseconds
    user: str  # e-mail, or "local" without sign-in
    role: str  # "runner", "viewer" or "" (not on the allow-list)
    action: str  # sign_in, start_run, cancel_run, path_refused, limit_refused, ...
    target: str  # what the action was about: a run id, a dataset path, ...
    outcome: str  # one of OUTCOMES
    detail: str  # why (the refusal's message) or what came of it


@dataclass(frozen=True)
class AuditLog:
    path: Path  # the JSONL file (created with its folder on the first entry)

    def record(
        self,
        user: str,
        role: str,
        action: str,
        *,
        target: str = "",
        outcome: str = "ok",
        detail: str = "",
    ) -> AuditEntry:
        """Append one entry and return it."""
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {outcome!r} is not one of {OUTCOMES}")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        entry = AuditEntry(now, _clip(user), role, action, _clip(target), outcome, _clip(detail))
        line = (json.dumps(asdict(entry), ensure_ascii=True) + "\n").encode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)  # one write per line: appenders never interleave
        finally:
            os.close(fd)
        log.info("audit: %s %s %s %s -> %s", entry.user, role, action, entry.target, outcome)
        return entry


def read_audit(path: str | os.PathLike[str]) -> list[AuditEntry]:
    """Every entry of the log, oldest first; malformed lines are skipped with a warning."""
    file = Path(path)
    if not file.exists():
        return []
    out = []
    for number, line in enumerate(file.read_text(encoding="ascii").splitlines(), 1):
        try:
            out.append(AuditEntry(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            log.warning("skipping line %d of %s: %s", number, file, exc)
    return out


def _clip(text: str) -> str:
    text = str(text)
    if len(text) <= MAX_FIELD:
        return text
    return f"{text[:MAX_FIELD]}…({len(text) - MAX_FIELD} more characters)"
