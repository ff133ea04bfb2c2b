"""Would a network trained inside the scan beat its features for label issues? Side by side on
the planted sets of benchmarks/scan_photos.py: the scan's out-of-fold probabilities (ridge +
kNN vote on its pixels+HOG+colour embedding) against a small CNN trained from scratch on the
scan's 32x32 luminance thumbnails with the same folds (shift augmentation, label smoothing,
AdamW one-cycle), and blends of the two, each through the same confident-learning filter.

    nice .venv/bin/python benchmarks/scan_learned.py [EPOCHS]   # default 6

Measured 2026-12-06 on 2 CPU cores, 6 epochs (label P/R; accuracy of the out-of-fold argmax):
the CNN costs 14-17 CPU-ms per image (the issue's budget is 5) and reaches 0.51-0.78
accuracy where the features reach 0.93-0.96 on these 500-1,800-image sets; every blend
lowers recall (photos seed 0: 1.00/1.00 alone, 1.00/0.81 with a third CNN). So the scan
keeps its features; a network earns its place with more data or pretrained weights (the
`resnet18` embedding, from weights on disk) or as a finished run's probabilities.
"""

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import torch
from scan_photos import DIGITS, held_out_sets
from torch import nn

from recipe_core.scan import scan
from recipe_core.scan.issues import detect_issues
from recipe_core.scan.issues.confident import find_label_errors
from recipe_core.scan.issues.labels import N_FOLDS, group_folds
from tests.photos.planted import make_planted_photos

BATCH = 128


def small_cnn(classes: int) -> nn.Module:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes),
    )  # fmt: skip


def fit_fold(x: torch.Tensor, y: torch.Tensor, rows: np.ndarray, classes: int, epochs: int,
             seed: int) -> nn.Module:  # fmt: skip
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = small_cnn(classes)
    optimizer = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=5e-4)
    steps = epochs * int(np.ceil(len(rows) / BATCH))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = rows[torch.randperm(len(rows), generator=generator).numpy()]
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
            shifted = torch.roll(x[batch], (dy, dx), (2, 3))
            loss = nn.functional.cross_entropy(model(shifted), y[batch], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def cnn_oof(pixels: np.ndarray, y: np.ndarray, folds: np.ndarray, classes: int,
            epochs: int) -> np.ndarray:  # fmt: skip
    """(N, K) out-of-fold softmax of the small CNN on (N, 32, 32) uint8 thumbnails."""
    x = torch.from_numpy(pixels).float().unsqueeze(1) / 255
    x = (x - x.mean()) / (x.std() + 1e-6)
    labels = torch.from_numpy(y).long()
    out = np.zeros((len(y), classes))
    for fold in range(int(folds.max()) + 1):
        model = fit_fold(x, labels, np.flatnonzero(folds != fold), classes, epochs, fold)
        held = np.flatnonzero(folds == fold)
        with torch.no_grad():
            out[held] = torch.softmax(model(x[held]), 1).numpy()
    return out


def label_pr(flagged: np.ndarray, paths: np.ndarray, oracle: pd.DataFrame) -> str:
    planted = set(oracle.loc[oracle["issue"] == "label_issue", "path"])
    wrong = oracle["true_label"].ne("") & oracle["true_label"].ne(oracle["given_label"])
    truthful = planted | set(oracle.loc[wrong, "path"])  # as the oracle counts implied rows
    found = set(paths[flagged])
    precision = len(found & truthful) / max(len(found), 1)
    return f"{precision:.2f}/{len(found & planted) / max(len(planted), 1):.2f}"


def planted_sets(root: Path) -> list[tuple[str, Path, pd.DataFrame]]:
    sets = []
    for seed in (0, 1, 2):
        photos = make_planted_photos(root / f"seed{seed}", seed=seed)
        sets.append((f"photos seed {seed}", photos.images, photos.oracle))
    digits = pd.read_csv(DIGITS.parent / "digits_planted.csv", keep_default_na=False, dtype=str)
    return [*sets, ("sample digits", DIGITS, digits), *held_out_sets(root / "held_out")]


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    torch.set_num_threads(2)
    rows_out = []
    for name, images, oracle in planted_sets(Path(tempfile.mkdtemp(prefix="learned-"))):
        index = scan(images, workers=0, cache=False).index
        labels = detect_issues(index).labels
        scored = labels.scores["scored"].to_numpy()
        given = labels.scores.loc[scored, "given_label"].to_numpy().astype(str)
        y = np.searchsorted(np.asarray(labels.classes), given)
        rows = np.flatnonzero(scored)
        ids = index.table["sample_id"].to_numpy()[rows]
        folds = group_folds(np.full(len(rows), -1), N_FOLDS, seed=0, ids=ids)
        cpu = time.process_time()
        cnn = cnn_oof(index.pixels[rows], y, folds, len(labels.classes), epochs)
        cpu = time.process_time() - cpu
        base, paths = labels.pred_probs, index.table["path"].to_numpy()[rows]
        rows_out.append({
            "set": name, "images": len(rows), "CNN CPU-ms/img": round(cpu / len(rows) * 1e3, 1),
            "acc features": round(float((base.argmax(1) == y).mean()), 3),
            "acc CNN": round(float((cnn.argmax(1) == y).mean()), 3),
            "label P/R features": label_pr(find_label_errors(y, base), paths, oracle),
            "CNN": label_pr(find_label_errors(y, cnn), paths, oracle),
            "2:1 blend": label_pr(find_label_errors(y, (2 * base + cnn) / 3), paths, oracle),
            "1:1 blend": label_pr(find_label_errors(y, (base + cnn) / 2), paths, oracle),
        })  # fmt: skip
        print(f"{name}: done", flush=True)
    print("\n== summary\n" + pd.DataFrame(rows_out).to_string(index=False))


if __name__ == "__main__":
    main()
