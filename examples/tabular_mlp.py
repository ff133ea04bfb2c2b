"""A tabular classifier: a CSV read with pandas, numeric columns standardised with the training
split's statistics, a categorical column one-hot encoded, and an MLP (examples/data/customers.csv:
predict whether a customer stays, downgrades or leaves).

    recipe check --pipeline examples/tabular_mlp.py:pipeline
    recipe see   --pipeline examples/tabular_mlp.py:pipeline --out /tmp/seen
    recipe train --pipeline examples/tabular_mlp.py:pipeline --preset overfit
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from recipe_core import Pipeline

CSV = Path(__file__).resolve().parent / "data" / "customers.csv"
TARGET, OUTCOMES = "outcome", ("stay", "downgrade", "leave")
CATEGORICAL = ("region",)


def features(frame: pd.DataFrame, stats: pd.DataFrame) -> torch.Tensor:
    """Numeric columns standardised with the training split's mean/std, categories one-hot."""
    numeric = frame.drop(columns=[TARGET, *CATEGORICAL])
    scaled = (numeric - stats.loc["mean"]) / stats.loc["std"]
    onehot = pd.get_dummies(frame[list(CATEGORICAL)], dtype=np.float32)
    return torch.tensor(pd.concat([scaled, onehot], axis=1).to_numpy(np.float32))


def make_model(width: float = 1.0, inputs: int = 10) -> nn.Module:
    torch.manual_seed(0)  # its own init seed: every build starts from the same weights
    hidden = max(4, int(64 * width))
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, len(OUTCOMES)))  # fmt: skip


def pipeline() -> Pipeline:
    frame = pd.read_csv(CSV)
    labels = torch.tensor(frame[TARGET].map(OUTCOMES.index).to_numpy(), dtype=torch.long)
    train_rows = np.arange(len(frame)) % 5 != 0  # every 5th customer is held out
    numeric = frame[train_rows].drop(columns=[TARGET, *CATEGORICAL])
    stats = pd.DataFrame({"mean": numeric.mean(), "std": numeric.std()}).T
    x = features(frame, stats)
    train = TensorDataset(x[train_rows], labels[train_rows])
    val = TensorDataset(x[~train_rows], labels[~train_rows])
    generator = torch.Generator().manual_seed(0)
    return Pipeline(
        lambda width=1.0: make_model(width, inputs=x.shape[1]),
        DataLoader(train, batch_size=64, shuffle=True, generator=generator),
        nn.CrossEntropyLoss(),
        task="classification",
        num_classes=len(OUTCOMES),
        val_loader=DataLoader(val, batch_size=256),
        optimizer=lambda params: torch.optim.Adam(params, lr=3e-3),
        classes=OUTCOMES,
    )
