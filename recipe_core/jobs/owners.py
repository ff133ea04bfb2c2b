"""Who started each job: `owner.json` ({"user": e-mail}) in the job's own folder.

Every job the dashboard starts notes its owner there: a training run in its run directory, a
check job in `<ws>/checks/<id>/`, a scan in `<ws>/scans/app/<dataset key>/`, a batch capture in
`<ws>/seen/<id>/`. `jobs.active` reads them back to count a user's running jobs.

    record_owner(folder, "alice@example.com")
    job_owner(folder)                    # "alice@example.com" (None: not recorded)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

OWNER_FILE = "owner.json"


def record_owner(folder: str | os.PathLike[str], user: str) -> None:
    """Note that `user` started the job in `folder`; user "" removes an earlier note (a scan's
    folder is reused for every scan of its dataset)."""
    file = Path(folder, OWNER_FILE)
    if user:
        file.write_text(json.dumps({"user": user}) + "\n")
    else:
        file.unlink(missing_ok=True)


def job_owner(folder: str | os.PathLike[str]) -> str | None:
    try:
        value = json.loads(Path(folder, OWNER_FILE).read_text())["user"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(value)
