"""Run one dataset through every reader the dashboard and the jobs use, in a child process the
test can time out: `python tests/fuzz_probe.py DATASET WORKSPACE` prints one JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recipe_core.data import open_dataset
from recipe_core.data.overview import summarize
from recipe_core.data.tensors import load_image_tensors
from recipe_core.explore.thumbnails import thumbnail_file


def probe(dataset: str, workspace: Path) -> dict[str, object]:
    source = open_dataset(dataset)
    overview = summarize(source, workers=4)
    errors = overview.headers.merge(source.samples[["sample_id", "path"]], on="sample_id")
    thumbs = {p: thumbnail_file(workspace / "thumbs", source.abspath(p)) is not None
              for p in source.samples["path"]}  # fmt: skip
    tensors = load_image_tensors(source, size=16, workers=4)
    return {
        "samples": sorted(source.samples["path"]),
        "not_followed": {e.path: e.reason for e in source.not_followed},
        "header_errors": dict(zip(errors["path"], errors["error"], strict=True)),
        "thumbnails": thumbs,
        "loaded": len(tensors.labels),
        "loader_skipped": dict(zip(tensors.skipped["path"], tensors.skipped["error"], strict=True)),
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], Path(sys.argv[2]))))
