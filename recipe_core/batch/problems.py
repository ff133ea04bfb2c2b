"""What looks wrong in a batch: each finding is a `BatchWarning` (code, message, fix)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recipe_core.batch.decode import Normalization, as_chw, spatial_correlation

IGNORE_INDEX = -100  # CrossEntropyLoss's default ignore_index: padding, not a label
# Without the dataset's own images to compare with: photos, digits, drawings and spectrograms
# have neighbour correlations of 0.5 and more (sample digits 0.80); a shredded batch far less
# (a stride-4 reshape of the digits: 0.18; noise: 0.0).
SCRAMBLED_CORRELATION = 0.3
NEARLY_CONSTANT = 0.05  # largest channel std below this: the batch carries almost no signal


@dataclass(frozen=True)
class BatchWarning:
    code: str  # e.g. "not_normalized", "scrambled", "label_out_of_range"
    message: str  # what was seen, with the numbers
    fix: str  # what to change
    severity: str = "warn"  # "info" | "warn" | "fail"


def value_warnings(x: torch.Tensor, stats: pd.DataFrame, layout: str) -> list[BatchWarning]:
    out = []
    bad = int(stats["nan"].sum() + stats["inf"].sum())
    if bad:
        out.append(
            BatchWarning(
                "nonfinite",
                f"{bad} NaN/Inf values in the inputs.",
                "Find where they enter (a division by a zero std, log of 0, a corrupt file) and "
                "clean the data before training: one NaN poisons every weight it touches.",
                "fail",
            )
        )
    if layout in ("tokens", "audio") or not torch.is_floating_point(x):  # audio: audio_warnings
        return out
    scale = float(max(stats["mean"].abs().max(), stats["std"].max()))
    if scale > 2.5:
        out.append(
            BatchWarning(
                "not_normalized",
                f"Inputs are not normalised: a channel has |mean| or std of {scale:.3g} "
                f"(values {stats['min'].min():.3g}..{stats['max'].max():.3g}).",
                "Scale inputs to about zero mean and unit variance (for images: divide by 255 and "
                "apply Normalize(mean, std) with the training set's channel statistics).",
                "fail" if scale > 5 else "warn",
            )
        )
    out += _nearly_constant(stats)
    finite = x[torch.isfinite(x)]
    if finite.numel() > 1 and float(finite.max()) == float(finite.min()):
        out.append(
            BatchWarning(
                "constant",
                f"Every input value in the batch is {float(finite.max()):.3g}.",
                "The loader is not delivering data: check the dataset's __getitem__ and "
                "transforms.",
                "fail",
            )
        )
    return out


def _nearly_constant(stats: pd.DataFrame) -> list[BatchWarning]:
    """0-255 statistics applied to 0-1 tensors leave std ~0.004; binary and one-hot features
    reach 0.1 once one sample in 64 differs, so real inputs exceed it in some channel."""
    spread, lo, hi = float(stats["std"].max()), stats["min"].min(), stats["max"].max()
    if not 0 < spread < NEARLY_CONSTANT:
        return []
    return [BatchWarning(
        "nearly_constant",
        f"Inputs are nearly constant: the largest channel std is {spread:.2g} (values "
        f"{lo:.3g}..{hi:.3g}, channel means {stats['mean'].abs().max():.3g} at most), so the "
        "net sees almost no signal; normalised inputs have std near 1.",
        "The normalisation statistics do not match the tensors' scale (e.g. mean/std measured "
        "on 0-255 pixels applied to 0-1 tensors): compute mean and std on the tensors as the "
        "model receives them and normalise once.",
        "fail" if spread < NEARLY_CONSTANT / 5 else "warn",
    )]  # fmt: skip


def image_warnings(
    x: torch.Tensor,
    layout: str,
    unit: torch.Tensor,
    corr: float,
    normalize: Normalization | None,
    reference: torch.Tensor | None,
) -> list[BatchWarning]:
    out = []
    if layout == "image_hwc":
        out.append(
            BatchWarning(
                "channels_last",
                f"Images arrive channels-last {tuple(x.shape)} (B, H, W, C).",
                "PyTorch conv layers expect (B, C, H, W): use x.permute(0, 3, 1, 2), not view().",
                "info",
            )
        )
    if normalize is not None:
        outside = float(((unit < -0.05) | (unit > 1.05)).float().mean())
        if outside > 0.01:
            out.append(
                BatchWarning(
                    "out_of_range",
                    f"After undoing Normalize(mean={normalize[0]}, std={normalize[1]}), "
                    f"{outside:.0%} of values fall outside [0, 1].",
                    "Normalisation is applied twice or to the wrong scale (0-255 vs 0-1): apply "
                    "ToTensor/scale to [0, 1] once, then Normalize once.",
                    "fail",
                )
            )
    out += scramble_warnings(x, layout, corr, reference)
    return out


def scramble_warnings(
    x: torch.Tensor, layout: str, corr: float, reference: torch.Tensor | None
) -> list[BatchWarning]:
    """A `view` that reads HWC memory as CHW (or back) shreds images: neighbour pixels stop being
    correlated. The trusted answer is to undo the suspected view and see the images heal."""
    chw = as_chw(x.detach().to("cpu").float(), layout)
    b, c, h, w = chw.shape
    fixes = (
        ("x.permute(0, 3, 1, 2) on channels-last data, not x.view(B, C, H, W)",
         chw.reshape(b, h, w, c).permute(0, 3, 1, 2)),
        ("x.permute(...) to move channels, not x.view(B, H, W, C)",
         chw.permute(0, 2, 3, 1).reshape(b, c, h, w)),
    )  # fmt: skip
    for fix, healed in fixes if c > 1 and min(h, w) >= 4 else ():
        healed_corr = spatial_correlation(healed)
        if healed_corr > 0.4 and healed_corr > corr + 0.1:
            why = f"reinterpreting the memory heals them (to {healed_corr:.2f})"
            return [_scrambled(corr, why, f"Use {fix}.")]
    if reference is not None and reference.ndim == 4 and reference.shape[2] >= 4:
        ref_corr = spatial_correlation(reference.float())
        if ref_corr > 0.4 and corr < 0.5 * ref_corr:
            why = f"the dataset's own images have {ref_corr:.2f}"
            return [_scrambled(corr, why, "Look for a view/reshape mixing pixels and channels.")]
    elif min(h, w) >= 8 and corr < SCRAMBLED_CORRELATION and _many_values(chw):
        why = f"photos, digits and drawings have {SCRAMBLED_CORRELATION:g} and more"
        fix = ("Look for a view/reshape that mixes pixels (reshape(-1, k).t(), view instead of "
               "permute) in the transforms or collate; if the inputs really are noise-like, "
               "ignore this.")  # fmt: skip
        return [_scrambled(corr, why, fix, "warn")]
    return []


def _many_values(chw: torch.Tensor) -> bool:
    """More than a handful of distinct values (a binary or constant batch proves nothing)."""
    return int(torch.unique(chw[: min(8, chw.shape[0])]).numel()) > 16


def _scrambled(corr: float, why: str, fix: str, severity: str = "fail") -> BatchWarning:
    return BatchWarning(
        "scrambled",
        f"Images look scrambled: neighbouring pixels correlate at {corr:.2f}, while {why}.",
        fix,
        severity,
    )


def audio_warnings(x: torch.Tensor) -> list[BatchWarning]:
    """Waveforms: integer scale left in floats, clipping, a DC offset, silent clips."""
    wave = torch.nan_to_num(x.detach().to("cpu").float()).reshape(x.shape[0], -1)
    peak = float(wave.abs().max()) if wave.numel() else 0.0
    out = []
    if peak > 1.5:
        out.append(BatchWarning(
            "audio_not_scaled",
            f"Waveform peaks at {peak:.4g}: samples look like raw integers (int16 reaches "
            "32767), not floats in [-1, 1].",
            "Divide int16 audio by 32768 (torchaudio.load does this; soundfile needs "
            "dtype='float32').",
            "fail",
        ))  # fmt: skip
    clipped = float((wave.abs() >= 0.999 * max(peak, 1e-12)).float().mean()) if peak else 0.0
    if peak <= 1.5 and peak >= 0.99 and clipped > 0.01:
        out.append(BatchWarning(
            "audio_clipping", f"{clipped:.1%} of samples sit at the peak {peak:.3g}: clipped.",
            "Lower the gain (or normalise by the peak) before the model sees the audio.",
        ))  # fmt: skip
    offset = wave.mean(dim=1).abs()
    spread = wave.std(dim=1).clamp_min(1e-12)
    if bool((offset > 0.5 * spread).float().mean() > 0.5) and peak > 0:
        out.append(BatchWarning(
            "audio_dc_offset", f"Most clips carry a DC offset (mean {float(offset.mean()):.3g} "
            f"against a spread of {float(spread.mean()):.3g}).",
            "Subtract each clip's mean (or high-pass filter) before the model.",
        ))  # fmt: skip
    silent = float((wave.abs().amax(dim=1) < 1e-4).float().mean())
    if silent > 0.25:
        out.append(BatchWarning(
            "audio_silent", f"{silent:.0%} of the clips in the batch are silent.",
            "Check the loader reads the files (a wrong sample rate or offset gives zeros).",
        ))  # fmt: skip
    return out


def padding_warnings(x: torch.Tensor) -> list[BatchWarning]:
    """Token batches that are mostly padding: the id that ends the rows fills most of the batch."""
    ids = x.detach().to("cpu").reshape(x.shape[0], -1)
    if ids.shape[1] < 4:
        return []
    pad = int(torch.mode(ids[:, -1]).values)
    share = float((ids == pad).float().mean())
    if share <= 0.5:
        return []
    return [BatchWarning(
        "mostly_padding",
        f"{share:.0%} of the tokens in the batch are id {pad}, the id the rows end with: "
        "mostly padding.",
        "Bucket sequences by length (or pack them) and make the loss ignore the pad id "
        "(CrossEntropyLoss(ignore_index=pad)).",
        "warn",
    )]  # fmt: skip


def label_warnings(labels: np.ndarray, n_classes: int | None) -> list[BatchWarning]:
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        return []
    valid = labels[labels != IGNORE_INDEX]
    out = []
    if n_classes is not None and valid.size and (valid.min() < 0 or valid.max() >= n_classes):
        out.append(
            BatchWarning(
                "label_out_of_range",
                f"Labels span {int(valid.min())}..{int(valid.max())}, outside [0, {n_classes}).",
                f"Map labels to 0..{n_classes - 1} (e.g. subtract 1 from 1-based labels) or "
                "declare the right number of classes.",
                "fail",
            )
        )
    one_class = labels.ndim == 1 and labels.size >= 8 and len(np.unique(valid)) == 1
    if n_classes is not None and n_classes > 1 and one_class:
        out.append(
            BatchWarning(
                "single_class",
                f"All {labels.size} labels in this batch are {int(valid[0])}.",
                "Shuffle the training loader (shuffle=True or a random sampler).",
                "warn",
            )
        )
    return out


def duplicate_warnings(x: torch.Tensor, layout: str) -> list[BatchWarning]:
    """Copies of a sample within one batch. Tables of categorical features repeat rows
    legitimately, so for them only a majority of copies counts."""
    rows = x.detach().to("cpu").reshape(x.shape[0], -1)
    if rows.shape[0] < 4:
        return []
    unique = torch.unique(rows, dim=0).shape[0]
    share = 1 - unique / rows.shape[0]
    if share <= (0.5 if layout == "table" else 0.2):
        return []
    return [
        BatchWarning(
            "duplicates",
            f"{share:.0%} of the batch repeats another sample of the same batch.",
            "Check the dataset's __getitem__ uses its index and the sampler draws without "
            "replacement.",
            "fail" if share > 0.5 else "warn",
        )
    ]


def shuffle_warning(label_batches: Sequence[np.ndarray], *, seed: int = 0) -> BatchWarning | None:
    """Several consecutive batches whose class mix is far narrower than chance: an unshuffled
    (e.g. class-sorted) loader. Compared with the same labels dealt into random batches."""
    batches = [np.asarray(b).reshape(-1) for b in label_batches if np.asarray(b).size]
    batches = [b[b != IGNORE_INDEX] for b in batches]
    if len(batches) < 2 or len(np.unique(np.concatenate(batches))) < 2:
        return None
    observed = float(np.mean([len(np.unique(b)) for b in batches]))
    pooled, sizes = np.concatenate(batches), np.cumsum([len(b) for b in batches])[:-1]
    rng = np.random.default_rng(seed)
    chance = []
    for _ in range(200):
        shuffled = np.split(rng.permutation(pooled), sizes)
        chance.append(np.mean([len(np.unique(b)) for b in shuffled]))
    expected = float(np.mean(chance))
    if observed > 0.6 * expected or observed >= min(chance):
        return None
    return BatchWarning(
        "not_shuffled",
        f"Consecutive batches hold {observed:.1f} classes on average; shuffled batches of the "
        f"same labels would hold {expected:.1f}. The loader is likely sorted by class.",
        "Shuffle the training loader (DataLoader(shuffle=True) or a RandomSampler): batches of "
        "one class make the net chase the current class instead of learning.",
        "fail",
    )
