"""What the net sees in the user's own pipeline: the exact batches `model(x)` receives, decoded
and written as pictures (image grids, rendered text for tokens, a table picture for rows, a
waveform for audio) with their statistics and warnings.

    report = see_pipeline(load_pipeline("examples/char_lm.py:pipeline"), out_dir, batches=2)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from recipe_core.batch import BatchView, inspect_batch, shuffle_warning
from recipe_core.batch.decode import find_normalize
from recipe_core.batch.origin import batch_files, order_problem, recording_indices
from recipe_core.batch.tap import BatchTap
from recipe_core.data.pipeline import Pipeline, TokenDecoder, user_call
from recipe_core.errors import PipelineError

SEE_FILE = "seen.json"
MAX_TILES = 64  # images per grid
MAX_ROWS = 16  # token rows / table rows / waveforms drawn per batch
INK, PAPER, MUTED = (20, 20, 20), (255, 255, 255), (120, 120, 120)
FLAG = (213, 94, 0)  # Okabe-Ito vermillion: a sample the scan flagged
MONO_FONTS = ("DejaVuSansMono.ttf", "LiberationMono-Regular.ttf", "NotoSansMono-Regular.ttf")


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A fixed-width font where the system has one (columns line up), else Pillow's own."""
    for name in MONO_FONTS:
        try:
            return ImageFont.truetype(name, 11)
        except OSError:
            continue
    return ImageFont.load_default()


@dataclass(frozen=True)
class SeenBatch:
    index: int
    view: BatchView
    picture: Path  # the PNG written for it
    files: list[str | None] | None = None  # the file behind each sample, where traceable


def see_pipeline(
    pipeline: Pipeline, out_dir: str | Path, *, batches: int = 2, device: str | None = None
) -> dict[str, Any]:
    """Feed `batches` training batches to the pipeline's model through Recipe's one capture hook,
    decode what `model(x)` received, write batch_NNN.png and seen.json into `out_dir`; return
    the JSON (per batch: layout, shape, dtype, statistics, warnings; plus the shuffle check)."""
    if batches < 1:
        raise PipelineError(f"batches={batches}: ask for at least one batch.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = _model(pipeline, device)
    seen: list[SeenBatch] = []
    labels: list[np.ndarray] = []
    normalize = pipeline.normalize or find_normalize(pipeline.train_loader)
    loader = pipeline.train_loader
    with BatchTap(model, first=batches) as tap, recording_indices(loader) as recorder:
        for index, (x, y) in enumerate(pipeline.train_batches()):
            if index >= batches:
                break
            target = next(model.parameters(), torch.empty(0)).device
            with torch.no_grad():
                user_call("model(x)", model, x.to(target))
            captured = tap.captured[-1].inputs
            view = inspect_batch(captured, y, classes=pipeline.classes,
                                 num_classes=pipeline.num_classes, normalize=normalize,
                                 layout=pipeline.layout)  # fmt: skip
            picture = out / f"batch_{index:03d}.png"
            render(view, captured, pipeline.decode).save(picture)
            indices = recorder.batches[index] if recorder is not None else None
            files = batch_files(getattr(loader, "dataset", None), indices)
            seen.append(SeenBatch(index, view, picture, files))
            labels.append(view.labels)
    if not seen:
        raise PipelineError("train_loader yielded no batches: nothing reached model(x).")
    report = _report(pipeline, seen, labels)
    (out / SEE_FILE).write_text(json.dumps(report, indent=1))
    return report


def _model(pipeline: Pipeline, device: str | None) -> torch.nn.Module:
    model = pipeline.build_model()
    model = model.to(device) if device else model
    return model.train()  # what the training loop feeds: augmentations on, train mode


def _report(
    pipeline: Pipeline, seen: Sequence[SeenBatch], labels: list[np.ndarray]
) -> dict[str, Any]:
    classes = pipeline.task in ("classification", "multilabel")
    shuffle = shuffle_warning(labels) if classes else None
    untraced = order_problem(pipeline.train_loader)
    if untraced is None and all(b.files is None for b in seen):
        untraced = ("its dataset names no files (give it a sample_path(index) method, or a "
                    ".samples / .paths list as ImageFolder has)")  # fmt: skip
    return {
        "pipeline": pipeline.name,
        "task": pipeline.task,
        "batches": [_batch_json(b) for b in seen],
        "warnings": [] if shuffle is None else [vars(shuffle)],
        "untraced": untraced,  # why samples cannot be traced to files, None when they can
    }


def _batch_json(batch: SeenBatch) -> dict[str, Any]:
    view = batch.view
    stats = view.stats.drop(columns=["dtype", "device", "shape"], errors="ignore")
    return {
        "index": batch.index, "picture": batch.picture.name, "layout": view.layout,
        "shape": list(view.shape), "dtype": view.dtype, "device": view.device,
        "labels": _finite(view.labels.tolist())[:256],
        "stats": [{k: _finite(v) for k, v in row.items()} for row in stats.to_dict("records")],
        "warnings": [vars(w) for w in view.warnings],
        "spatial_correlation": view.spatial_correlation,
        "files": batch.files,
        "grid": None if view.images is None else grid_geometry(view.images.shape,
                                                               bool(_captions(view))),
    }  # fmt: skip


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def view_captured(arrays: Mapping[str, np.ndarray]) -> tuple[BatchView, Image.Image]:
    """A batch a run captured (batches/batch_NNN.npz: `x` exactly as model(x) received it, `y`,
    and what the run knew: classes, mean/std, vocab) decoded with the same warnings as live."""
    if "x" not in arrays:
        raise PipelineError("This captured batch has no 'x' array: the run folder is damaged.")
    x = torch.from_numpy(np.asarray(arrays["x"]))
    y = arrays.get("y")
    classes = [str(c) for c in arrays["classes"].tolist()] if "classes" in arrays else []
    normalize = None
    if "mean" in arrays and "std" in arrays and arrays["mean"].size:
        normalize = (tuple(float(v) for v in arrays["mean"].reshape(-1)),
                     tuple(float(v) for v in arrays["std"].reshape(-1)))  # fmt: skip
    view = inspect_batch(x, y, classes=classes or None, normalize=normalize)
    vocab = [str(v) for v in arrays["vocab"].tolist()] if "vocab" in arrays else None
    return view, render(view, x, vocab)


# -- pictures ---------------------------------------------------------------------------------
def render(view: BatchView, x: torch.Tensor, decode: TokenDecoder | None = None) -> Image.Image:
    """One picture of a batch as the model received it, whatever its kind."""
    if view.images is not None:
        return image_grid(view.images, _captions(view))
    if view.layout == "tokens":
        return text_picture(token_lines(x, decode, view.labels))
    if view.layout == "audio":
        return waveforms(x)
    return table_picture(view)


def _captions(view: BatchView) -> tuple[str, ...] | None:
    return view.label_names or _label_text(view.labels)


def _label_text(labels: np.ndarray) -> tuple[str, ...] | None:
    if labels.ndim != 1 or labels.size == 0:
        return None
    return tuple(str(v) for v in labels.tolist())


def grid_geometry(shape: Sequence[int], captions: bool = True) -> dict[str, int]:
    """Where image_grid puts its tiles for a (B, H, W, C) batch: tile size, caption height,
    columns and gap, so a viewer can frame tile i (`tile_box`) without redrawing the grid."""
    n, h, w = min(int(shape[0]), MAX_TILES), int(shape[1]), int(shape[2])
    scale = max(1, 64 // max(h, w))
    return {"n": n, "width": w * scale, "height": h * scale, "caption": 12 if captions else 0,
            "cols": min(8, n), "gap": 4}  # fmt: skip


def tile_box(grid: Mapping[str, int], i: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of tile i's picture in an image_grid of `grid` geometry."""
    gap, cols = grid["gap"], grid["cols"]
    left = gap + (i % cols) * (grid["width"] + gap)
    top = gap + (i // cols) * (grid["height"] + grid["caption"] + gap)
    return left, top, left + grid["width"], top + grid["height"]


def frame_tiles(
    picture: Image.Image, grid: Mapping[str, int], positions: Sequence[int]
) -> Image.Image:
    """A copy of an image_grid picture with tiles `positions` framed in vermillion (in the
    gap around the tile: no pixel of the sample is covered) and numbered at their corner."""
    marked = picture.convert("RGB")
    draw, font = ImageDraw.Draw(marked), ImageFont.load_default()
    for i in positions:
        if not 0 <= i < grid["n"]:
            continue
        left, top, right, bottom = tile_box(grid, i)
        draw.rectangle((left - 2, top - 2, right + 1, bottom + 1), outline=FLAG, width=2)
        label = str(i)
        draw.rectangle((left, top, left + 6 * len(label) + 2, top + 11), fill=FLAG)
        draw.text((left + 1, top), label, fill=PAPER, font=font)
    return marked


def image_grid(images: np.ndarray, captions: Sequence[str] | None) -> Image.Image:
    """(B, H, W, C) uint8 as a grid of tiles, each captioned with its label."""
    shown = images[:MAX_TILES]
    c = shown.shape[3]
    grid = grid_geometry(shown.shape, captions=bool(captions))
    n, cols, gap, tile = grid["n"], grid["cols"], grid["gap"], (grid["width"], grid["height"])
    rows = math.ceil(n / cols)
    size = (cols * (tile[0] + gap) + gap, rows * (tile[1] + grid["caption"] + gap) + gap)
    picture_grid = Image.new("RGB", size, PAPER)
    draw, font = ImageDraw.Draw(picture_grid), ImageFont.load_default()
    for i in range(n):
        pixels = shown[i][..., 0] if c == 1 else shown[i][..., :3]
        picture = Image.fromarray(pixels).convert("RGB").resize(tile, Image.Resampling.NEAREST)
        left, top, _, bottom = tile_box(grid, i)
        picture_grid.paste(picture, (left, top))
        if captions:
            draw.text((left, bottom), captions[i][:12], fill=INK, font=font)
    return picture_grid


def token_lines(x: torch.Tensor, decode: TokenDecoder | None, labels: np.ndarray) -> list[str]:
    """Each row of token ids as text (through `decode` when given, else the ids)."""
    to_text = _decoder(decode)
    lines = []
    for row in x.detach().to("cpu").reshape(x.shape[0], -1)[:MAX_ROWS].tolist():
        lines.append(f"x: {to_text(row)!r}")
    if labels.ndim == 2 and np.issubdtype(labels.dtype, np.integer):
        lines.append("")
        lines += [f"y: {to_text([i for i in row if i >= 0])!r}" for row in labels[:4].tolist()]
    return lines


def _decoder(decode: TokenDecoder | None) -> Callable[[Sequence[int]], str]:
    if decode is None:
        return lambda ids: " ".join(str(i) for i in ids)
    if callable(decode):
        return lambda ids: str(user_call("decode(ids)", decode, list(ids)))
    vocab: Mapping[int, str] | Sequence[str] = decode
    size = len(vocab)

    def lookup(ids: Sequence[int]) -> str:
        if isinstance(vocab, Mapping):
            return "".join(str(vocab.get(i, f"<{i}>")) for i in ids)
        return "".join(vocab[i] if 0 <= i < size else f"<{i}>" for i in ids)

    return lookup


def text_picture(lines: Sequence[str], width: int = 110) -> Image.Image:
    font = _font()
    wrapped = [line[i : i + width] for line in lines for i in range(0, max(len(line), 1), width)]
    picture = Image.new("RGB", (8 + 7 * width, 8 + 14 * len(wrapped)), PAPER)
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(wrapped):
        draw.text((4, 4 + 14 * i), line, fill=INK, font=font)
    return picture


def table_picture(view: BatchView) -> Image.Image:
    """The first rows of a table (or vector sequence) as fixed-width text."""
    if view.table is None:
        return text_picture([f"{view.layout} {view.shape}"])
    shown = view.table.head(MAX_ROWS)
    text = shown.to_string(max_cols=12, float_format=lambda v: f"{v:.3g}")
    return text_picture(text.splitlines(), width=max(40, max(map(len, text.splitlines()))))


def waveforms(x: torch.Tensor, size: tuple[int, int] = (640, 60)) -> Image.Image:
    """One strip per clip (first channel): min/max envelope per pixel column."""
    wave = torch.nan_to_num(x.detach().to("cpu").float()).reshape(x.shape[0], -1, x.shape[-1])
    clips = wave[:MAX_ROWS, 0]
    width, height = size
    picture = Image.new("RGB", (width, height * len(clips)), PAPER)
    draw = ImageDraw.Draw(picture)
    for i, clip in enumerate(clips):
        peak = max(float(clip.abs().max()), 1e-12)
        columns = torch.tensor_split(clip / peak, width)
        middle = i * height + height // 2
        draw.line([(0, middle), (width, middle)], fill=MUTED)
        for col, part in enumerate(columns):
            if part.numel():
                low, high = float(part.min()), float(part.max())
                draw.line([(col, middle - high * height / 2.2), (col, middle - low * height / 2.2)],
                          fill=INK)  # fmt: skip
    return picture
