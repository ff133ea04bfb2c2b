"""Which embedder a scan uses: the offline default, or a torchvision network whose weights are
already on this machine. Recipe never downloads weights: a missing file is a `ConfigError` that
says where to put it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recipe_core.errors import ConfigError
from recipe_core.scan.index.decode import decode_file
from recipe_core.scan.index.embed import DEFAULT_EMBEDDING

if TYPE_CHECKING:
    import torch

# torchvision's file name for ResNet18_Weights.IMAGENET1K_V1 in the torch hub cache.
RESNET18_FILE = "resnet18-f37072fd.pth"
EMBEDDERS = ("default", DEFAULT_EMBEDDING, "resnet18", "resnet18:/path/to/weights.pth")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
NET_SIDE = 224  # px: the input size the ImageNet weights were trained at


@dataclass(frozen=True)
class EmbeddingSpec:
    name: str  # stored in ScanIndex.embedding_name and part of the cache key
    weights: Path | None = None  # local weights file for network embedders

    @property
    def offline(self) -> bool:
        """True for the built-in descriptor computed by the scan workers."""
        return self.weights is None


def resolve_embedding(embedding: str, *, torch_home: str = "") -> EmbeddingSpec:
    """Validate an embedding choice; for "resnet18", find its weights on disk (never download),
    by default in torch.hub's cache under `torch_home` (settings.torch_home: $TORCH_HOME)."""
    choice = embedding.strip()
    if choice in ("default", DEFAULT_EMBEDDING):
        return EmbeddingSpec(DEFAULT_EMBEDDING)
    name, _, path = choice.partition(":")
    if name != "resnet18":
        raise ConfigError(
            f"Unknown embedding {embedding!r}. Valid choices: {', '.join(EMBEDDERS)}. "
            "Use 'default' unless you have torchvision ResNet-18 weights on disk."
        )
    weights = Path(path).expanduser() if path else hub_checkpoints(torch_home) / RESNET18_FILE
    if not weights.is_file():
        raise ConfigError(
            f"ResNet-18 weights not found at {weights}. Recipe never downloads weights: copy "
            f"torchvision's {RESNET18_FILE} there (or into $TORCH_HOME/hub/checkpoints), pass "
            "'resnet18:/path/to/weights.pth', or use embedding 'default' (works offline)."
        )
    return EmbeddingSpec("resnet18", weights)


def hub_checkpoints(torch_home: str = "") -> Path:
    """torch.hub's checkpoint folder under `torch_home` (settings.torch_home: $TORCH_HOME, else
    $XDG_CACHE_HOME/torch; "" = ~/.cache/torch), as torch resolves it, without importing torch."""
    return Path(torch_home or os.path.expanduser("~/.cache/torch")) / "hub" / "checkpoints"


def deep_embeddings(
    paths: Sequence[str], spec: EmbeddingSpec, *, device: str | None = None, batch_size: int = 64
) -> np.ndarray:
    """(N, 512) float32 unit rows of ResNet-18's pooled features; zeros for undecodable files."""
    import torch  # only this optional path needs torch

    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = _resnet18(spec, target)
    out = np.zeros((len(paths), 512), dtype=np.float32)
    for start in range(0, len(paths), batch_size):
        batch, rows = _net_inputs(paths[start : start + batch_size])  # (B, 3, 224, 224)
        if not rows:
            continue
        x = torch.from_numpy(batch).to(target)
        with torch.inference_mode():
            feats = model(x).float().cpu().numpy()
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        out[[start + r for r in rows]] = feats
    return out


def _resnet18(spec: EmbeddingSpec, device: torch.device) -> torch.nn.Module:
    import torch
    from torchvision.models import resnet18

    model: torch.nn.Module = resnet18(weights=None)
    try:
        state = torch.load(str(spec.weights), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Could not load ResNet-18 weights from {spec.weights}: {str(exc)[:200]}. Pass a "
            "torchvision resnet18 state_dict (.pth), or use embedding 'default'."
        ) from exc
    model.fc = torch.nn.Identity()
    model.eval().to(device)
    return model


def _net_inputs(paths: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """ImageNet-normalised (B, 3, 224, 224) float32 of the decodable files, and their rows."""
    from PIL import Image

    arrays, rows = [], []
    for i, path in enumerate(paths):
        image = decode_file(path).image
        if image is None:
            continue
        resized = image.resize((NET_SIDE, NET_SIDE), Image.Resampling.BILINEAR, reducing_gap=3.0)
        arrays.append(
            (np.asarray(resized, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        )
        rows.append(i)
    if not arrays:
        return np.zeros((0, 3, NET_SIDE, NET_SIDE), dtype=np.float32), rows
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)), rows
