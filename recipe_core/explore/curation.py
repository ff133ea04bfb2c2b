"""Curate a dataset without touching it: drop and relabel decisions, and a cleaned manifest.

Decisions live in the workspace, never in the dataset: `curation/<dataset key>/decisions.jsonl`
is an append-only log (one JSON object per line, with a UTC timestamp), so every change of
mind stays on record and a crash mid-write loses at most the line being written. The current
decision for a sample is its last line; `keep` undoes an earlier drop or relabel.

    record_decision(ws, source.root, sample_id=..., path="train/3/01.png", action="drop")
    export_dataset(ws, source, load_decisions(ws, source.root))   # a dataset Recipe opens by name
    export_manifest(source, load_decisions(ws, source.root), out_dir)   # manifest + record only

The exported manifest (path,label,split; drops removed, relabels applied; paths relative to
the dataset root) references the original files, never copies them. `export_dataset` writes it
under the workspace's datasets/ beside a `dataset.json` naming that root, so it is a named
dataset every page, `recipe train/check/scan` and `list_datasets` offer (recipe_core/data/named.py);
a manifest from `export_manifest` opens once it sits in the dataset root folder.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from recipe_core.data.manifest import formula_safe_columns
from recipe_core.data.named import NamedDataset, dataset_name, new_dataset_folder, write_record
from recipe_core.data.safe_paths import path_key
from recipe_core.data.source import DatasetSource
from recipe_core.errors import ConfigError
from recipe_core.workspace import Workspace

log = logging.getLogger(__name__)

ACTIONS = ("drop", "relabel", "keep")  # keep: undo an earlier decision for the sample
LOG_FILE = "decisions.jsonl"
FORMATS = ("csv", "parquet")
MANIFEST_COLUMNS = ("path", "label", "split")
RECORD_COLUMNS = ("time", "sample_id", "path", "action", "old_label", "label", "note")
RECORD_TEXT_COLUMNS = ("old_label", "label", "note")  # made formula-safe; paths stay verbatim


@dataclass(frozen=True)
class Decision:
    sample_id: int
    path: str  # relative to the dataset root, for people reading the log
    action: str  # one of ACTIONS
    label: str = ""  # the new label when action == "relabel", else ""
    old_label: str = ""  # the label the sample had when the decision was made
    note: str = ""
    time: str = ""  # ISO 8601, UTC

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(
                f"Invalid curation action {self.action!r}. Use one of {', '.join(ACTIONS)}."
            )
        if self.action == "relabel" and not self.label.strip():
            raise ConfigError(
                f"Relabelling {self.path} needs a new label; got {self.label!r}. Pick a class."
            )


@dataclass(frozen=True)
class ExportResult:
    manifest: Path  # path,label,split with drops removed and relabels applied
    record: Path  # every decision ever made for the dataset, oldest first (CSV)
    n_samples: int  # rows in the manifest
    n_dropped: int
    n_relabelled: int
    n_stale: int  # decisions for samples no longer in the dataset (ignored)


def curation_dir(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> Path:
    return workspace.root / "curation" / path_key(dataset_root)


def record_decision(
    workspace: Workspace,
    dataset_root: str | os.PathLike[str],
    *,
    sample_id: int,
    path: str,
    action: str,
    label: str = "",
    old_label: str = "",
    note: str = "",
) -> Decision:
    """Append one decision to the dataset's log and return it (timestamped now, UTC)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    decision = Decision(int(sample_id), path, action, label.strip(), old_label, note, now)
    folder = curation_dir(workspace, dataset_root)
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(decision), ensure_ascii=True) + "\n"
    with (folder / LOG_FILE).open("a", encoding="utf-8") as f:
        f.write(line)  # one write of one line: concurrent appenders do not interleave
    log.info("curation: %s %s %s", action, path, label)
    return decision


def decision_log(workspace: Workspace, dataset_root: str | os.PathLike[str]) -> list[Decision]:
    """Every decision recorded for the dataset, oldest first; malformed lines are skipped."""
    path = curation_dir(workspace, dataset_root) / LOG_FILE
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            out.append(Decision(**json.loads(line)))
        except (ValueError, TypeError, ConfigError) as exc:
            log.warning("skipping line %d of %s: %s", number, path, exc)
    return out


def current_decisions(decisions: list[Decision]) -> dict[int, Decision]:
    """The standing decision per sample_id: the last one, unless that was `keep`."""
    latest: dict[int, Decision] = {}
    for decision in decisions:
        latest[decision.sample_id] = decision
    return {sid: d for sid, d in latest.items() if d.action != "keep"}


def load_decisions(
    workspace: Workspace, dataset_root: str | os.PathLike[str]
) -> dict[int, Decision]:
    return current_decisions(decision_log(workspace, dataset_root))


def cleaned_samples(samples: pd.DataFrame, decisions: dict[int, Decision]) -> pd.DataFrame:
    """`samples` (sample_id, path, label, split) with drops removed and relabels applied."""
    ids = samples["sample_id"].to_numpy()
    dropped = [sid for sid, d in decisions.items() if d.action == "drop"]
    relabel = {sid: d.label for sid, d in decisions.items() if d.action == "relabel"}
    kept = samples[~pd.Series(ids).isin(dropped).to_numpy()].copy()
    new = kept["sample_id"].map(relabel)
    kept["label"] = new.where(new.notna(), kept["label"]).astype(str)
    return kept.reset_index(drop=True)


def export_manifest(
    source: DatasetSource,
    decisions: dict[int, Decision],
    out_dir: str | os.PathLike[str],
    *,
    log_entries: list[Decision] | None = None,
    fmt: str = "csv",
    name: str = "manifest",
) -> ExportResult:
    """Write `out_dir/<name>.<fmt>` (path,label,split) and `out_dir/<name>_decisions.csv`.

    `log_entries` is the full decision history for the record (default: the standing
    decisions). Existing files are never overwritten; the dataset's files are only read.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"Invalid manifest format {fmt!r}. Use one of {', '.join(FORMATS)}.")
    folder = Path(out_dir)
    manifest, record = folder / f"{name}.{fmt}", folder / f"{name}_decisions.csv"
    _refuse_overwrite(manifest, record)
    folder.mkdir(parents=True, exist_ok=True)
    clean = cleaned_samples(source.samples, decisions)
    table = clean[list(MANIFEST_COLUMNS)]
    if fmt == "csv":
        formula_safe_columns(table, ("label", "split")).to_csv(manifest, index=False)
    else:
        table.to_parquet(manifest, index=False)
    entries = log_entries if log_entries is not None else list(decisions.values())
    _write_record(entries, record)
    present = set(source.samples["sample_id"].tolist())
    standing = [d for d in decisions.values() if d.sample_id in present]
    return ExportResult(
        manifest=manifest,
        record=record,
        n_samples=len(table),
        n_dropped=sum(d.action == "drop" for d in standing),
        n_relabelled=sum(d.action == "relabel" for d in standing),
        n_stale=len(decisions) - len(standing),
    )


def export_dataset(
    workspace: Workspace,
    source: DatasetSource,
    decisions: dict[int, Decision],
    *,
    source_path: str | os.PathLike[str] | None = None,
    log_entries: list[Decision] | None = None,
    fmt: str = "csv",
    now: datetime | None = None,
) -> tuple[NamedDataset, ExportResult]:
    """Export the cleaned manifest as a named dataset, "<dataset> (cleaned YYYY-MM-DD HH:MM)"
    (UTC), in a new folder under the workspace's datasets/. `source_path` is the folder or
    manifest `source` was opened from (default: its root), recorded as where it came from."""
    created = (now or datetime.now(UTC)).astimezone(UTC)
    origin = Path(source_path) if source_path is not None else source.root
    name, folder = new_dataset_folder(workspace, dataset_name(origin), created)
    out = export_manifest(source, decisions, folder, log_entries=log_entries, fmt=fmt)
    dataset = NamedDataset(
        name=name, manifest=out.manifest.resolve(), source=origin.resolve(),
        root=source.root.resolve(), created=created.isoformat(timespec="seconds"),
        rows=out.n_samples, dropped=out.n_dropped, relabelled=out.n_relabelled,
    )  # fmt: skip
    write_record(dataset)
    log.info("curation: exported %s (%d samples) to %s", name, out.n_samples, folder)
    return dataset, out


def _refuse_overwrite(*paths: Path) -> None:
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise ConfigError(
            f"{', '.join(taken)} already exist(s); Recipe never overwrites files. Choose another "
            "name or folder, or delete the old export."
        )


def _write_record(entries: list[Decision], path: Path) -> None:
    rows = [asdict(d) for d in entries]
    table = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    formula_safe_columns(table, RECORD_TEXT_COLUMNS).to_csv(path, index=False)
