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
from recipe_core.batch.tap import BatchTap
from recipe_core.data.pipeline import Pipeline, TokenDecoder, user_call
from recipe_core.errors import PipelineError

SEE_FILE = "seen.json"
MAX_TILES = 64  # images per grid
MAX_ROWS = 16  # token rows / table rows / waveforms drawn per batch
INK, PAPER, MUTED = (20, 20, 20), (255, 255, 255), (120, 120, 120)
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
    with BatchTap(model, first=batches) as tap:
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
            seen.append(SeenBatch(index, view, picture))
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
    return {
        "pipeline": pipeline.name,
        "task": pipeline.task,
        "batches": [_batch_json(b) for b in seen],
        "warnings": [] if shuffle is None else [vars(shuffle)],
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
        return image_grid(view.images, view.label_names or _label_text(view.labels))
    if view.layout == "tokens":
        return text_picture(token_lines(x, decode, view.labels))
    if view.layout == "audio":
        return waveforms(x)
    return table_picture(view)


def _label_text(labels: np.ndarray) -> tuple[str, ...] | None:
    if labels.ndim != 1 or labels.size == 0:
        return None
    return tuple(str(v) for v in labels.tolist())


def image_grid(images: np.ndarray, captions: Sequence[str] | None) -> Image.Image:
    """(B, H, W, C) uint8 as a grid of tiles, each captioned with its label."""
    shown = images[:MAX_TILES]
    n, h, w, c = shown.shape
    scale = max(1, 64 // max(h, w))
    tile, cap = (w * scale, h * scale), 12 if captions else 0
    cols = min(8, n)
    rows = math.ceil(n / cols)
    grid = Image.new("RGB", (cols * (tile[0] + 4) + 4, rows * (tile[1] + cap + 4) + 4), PAPER)
    draw, font = ImageDraw.Draw(grid), ImageFont.load_default()
    for i in range(n):
        pixels = shown[i][..., 0] if c == 1 else shown[i][..., :3]
        picture = Image.fromarray(pixels).convert("RGB").resize(tile, Image.Resampling.NEAREST)
        left, top = 4 + (i % cols) * (tile[0] + 4), 4 + (i // cols) * (tile[1] + cap + 4)
        grid.paste(picture, (left, top))
        if captions:
            draw.text((left, top + tile[1]), captions[i][:12], fill=INK, font=font)
    return grid


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
