"""The zoo's fitting families: planted bugs and the clean twin of each.

misaligned: labels that no longer belong to their inputs (a Dataset index off by one, a
collate_fn that reorders the images but not the labels, labels reshuffled every epoch, the labels
of another split). The input-independent baseline must say so, never stay undecided.
leak: the answer handed to the model (a target column left among the features, a class stamp
painted into the image, an id column numbered after sorting by label, sequence targets that are a
token the model already sees). Too-good-to-be-true must say so.

Each twin is the same pipeline written right, and must stay quiet on every check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tests.checks.zoo import (
    CausalGRU,
    Setup,
    cnn_factory,
    diabetes,
    digits,
    mlp_factory,
    seq_loss,
    tokens,
)

CE = nn.CrossEntropyLoss()
TEN = {"num_classes": 10}
MISALIGNED = {"input_independent_baseline": ("fail",)}
LEAK = {"too_good_to_be_true": ("fail",)}
Sample = tuple[torch.Tensor, torch.Tensor]


def seeded_loader(dataset: Dataset[Any], *, batch: int = 64, collate: Any = None) -> Any:
    return DataLoader(dataset, batch_size=batch, shuffle=True, collate_fn=collate,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip


def shuffled_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits shuffled once at load (sklearn's file cycles 0..9, so neighbours' labels would
    otherwise predict each other): (N, 1, 8, 8) normalised images, (N,) labels."""
    x, y = digits()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(3))
    return x[order], y[order]


# -- misaligned -----------------------------------------------------------------------------------
class LabelledImages(Dataset[Sample]):
    """Images in one array, labels read from a CSV column. `one_based=True` is the bug: the
    author believed the CSV's row numbers start at 1 and added one to the index."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, one_based: bool) -> None:
        self.images, self.labels, self.offset = images, labels, int(one_based)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        return self.images[i], self.labels[(i + self.offset) % len(self.labels)]


def brightness_collate(*, labels_too: bool) -> Any:
    """A 'curriculum' collate that sorts each batch from dark to bright images. The bug sorts
    the images and stacks the labels in their original order."""

    def collate(samples: list[Sample]) -> Sample:
        xs, ys = [s[0] for s in samples], [s[1] for s in samples]
        order = sorted(range(len(xs)), key=lambda i: float(xs[i].mean()))
        xs = [xs[i] for i in order]
        if labels_too:
            ys = [ys[i] for i in order]
        return torch.stack(xs), torch.stack(ys)

    return collate


class EpochShuffled:
    """A hand-written batcher that reshuffles at the start of every epoch. The bug shuffles the
    label array in place and forgets the images; the twin draws one permutation for both."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, *, together: bool, batch: int = 64):
        self.x, self.y, self.together, self.batch = x, y.clone(), together, batch
        self.rng = np.random.default_rng(0)

    def __iter__(self) -> Iterator[Sample]:
        if self.together:
            order = torch.from_numpy(self.rng.permutation(len(self.y)))
            x, y = self.x[order], self.y[order]
        else:
            self.rng.shuffle(self.y.numpy())  # in place: now y[i] is some other sample's label
            x, y = self.x, self.y
        for start in range(0, len(y), self.batch):
            yield x[start : start + self.batch], y[start : start + self.batch]


def split_digits(*, labels_of: str) -> Any:
    """train_test_split into equal halves; the bug pairs the train images with the test labels
    (a copy-paste of y_test for y_train)."""
    x, y = digits()
    x_train, _x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    labels = y_test[: len(x_train)] if labels_of == "test" else y_train
    return seeded_loader(LabelledImages(x_train[: len(labels)], labels, one_based=False))


# -- leak -----------------------------------------------------------------------------------------
def digits_table() -> pd.DataFrame:
    """Digits as a table: 64 pixel columns, a sample_id and the label (how a CSV arrives)."""
    x, y = shuffled_digits()
    table = pd.DataFrame(x.flatten(1).numpy(), columns=[f"px{i}" for i in range(64)])
    table.insert(0, "sample_id", np.arange(len(y)))
    table["label"] = y.numpy()
    return table


class TableDataset(Dataset[Sample]):
    """Rows of a DataFrame: `features` as a float vector, `target` as the label or value."""

    def __init__(self, table: pd.DataFrame, features: list[str], target: str, dtype: Any):
        self.x = torch.tensor(table[features].to_numpy(), dtype=torch.float32)
        self.y = torch.tensor(table[target].to_numpy(), dtype=dtype)
        if torch.is_floating_point(self.y):  # (N, 1): one value per row, like the model's output
            self.y = self.y[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Sample:
        return self.x[i], self.y[i]


def table_mlp(features: int, outputs: int) -> Any:
    def build() -> nn.Module:
        torch.manual_seed(0)  # the factory seeds its own init: repeatable in the user's script too
        return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, outputs))

    return build


def digits_features(*, drop_label: bool) -> Any:
    """The bug drops only the id column, so 'label' rides along as feature 64."""
    table = digits_table()
    dropped = ["sample_id", "label"] if drop_label else ["sample_id"]
    features = list(table.columns.drop(dropped))
    return seeded_loader(TableDataset(table, features, "label", torch.int64))


def digits_numbered_by_class(*, keep_id: bool) -> Any:
    """Rows sorted by label before the sample ids were assigned (the export was grouped by
    class); the bug keeps the standardised id as a feature."""
    table = digits_table().sort_values("label", kind="stable")
    table["sample_id"] = np.arange(len(table), dtype=np.float64)
    table["sample_id"] = (table["sample_id"] - table["sample_id"].mean()) / table["sample_id"].std()
    dropped = ["label"] if keep_id else ["label", "sample_id"]
    features = list(table.columns.drop(dropped))
    return seeded_loader(TableDataset(table, features, "label", torch.int64))


def diabetes_features(*, drop_target: bool) -> Any:
    """Diabetes as a table with its 'progression' target, every column standardised; the bug
    standardises and feeds the whole table, target included."""
    x, y = diabetes()
    table = pd.DataFrame(x.numpy(), columns=[f"f{i}" for i in range(10)])
    table["progression"] = y[:, 0].numpy()
    scaled = (table - table.mean()) / table.std()
    features = list(table.columns.drop("progression")) if drop_target else list(table.columns)
    return seeded_loader(TableDataset(scaled, features, "progression", torch.float32), batch=32)


class StampedDigits(Dataset[Sample]):
    """Digits for a CNN. A debugging aid stamps the class id into the top-left pixel so the
    notebook's image grid shows it; the bug leaves `stamp` on for training."""

    def __init__(self, *, stamp: bool) -> None:
        self.x, self.y = shuffled_digits()
        self.stamp = stamp

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Sample:
        image = self.x[i].clone()
        if self.stamp:
            image[0, 0, 0] = float(self.y[i]) / 3  # brighter corner, higher class
        return image, self.y[i]


class NextToken(Dataset[Sample]):
    """Fixed-length chunks of a token stream for a causal LM. The bug slices the pair the wrong
    way round (x = chunk[1:], y = chunk[:-1]): each target is the token just before, in view."""

    def __init__(self, *, swapped: bool) -> None:
        self.chunks, self.swapped = tokens(), swapped

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> Sample:
        chunk = self.chunks[i]
        if self.swapped:
            return chunk[1:], chunk[:-1]
        return chunk[:-1], chunk[1:]


def _pairs() -> list[tuple[str, str, Any, Any, Any, Any, Any, dict[str, Any]]]:
    """(family, name, bug model, bug loader, twin model, twin loader, loss, options): each bug
    and the same pipeline done right."""
    x, y = shuffled_digits()
    seq, reg = {"task": "sequence"}, {"task": "regression"}
    aligned = LabelledImages(x, y, one_based=False)
    return [
        ("misaligned", "dataset_index_off_by_one", mlp_factory(),
         seeded_loader(LabelledImages(x, y, one_based=True)), mlp_factory(),
         seeded_loader(aligned), CE, TEN),
        ("misaligned", "collate_sorts_images_only", mlp_factory(),
         seeded_loader(aligned, collate=brightness_collate(labels_too=False)), mlp_factory(),
         seeded_loader(aligned, collate=brightness_collate(labels_too=True)), CE, TEN),
        ("misaligned", "labels_reshuffled_each_epoch", cnn_factory(),
         EpochShuffled(x, y, together=False), cnn_factory(), EpochShuffled(x, y, together=True),
         CE, TEN),
        ("misaligned", "labels_of_the_test_split", mlp_factory(), split_digits(labels_of="test"),
         mlp_factory(), split_digits(labels_of="train"), CE, TEN),
        ("leak", "label_column_in_features", table_mlp(65, 10),
         digits_features(drop_label=False), table_mlp(64, 10), digits_features(drop_label=True),
         CE, TEN),
        ("leak", "id_numbered_by_class", table_mlp(65, 10), digits_numbered_by_class(keep_id=True),
         table_mlp(64, 10), digits_numbered_by_class(keep_id=False), CE, TEN),
        ("leak", "regression_target_in_features", table_mlp(11, 1),
         diabetes_features(drop_target=False), table_mlp(10, 1),
         diabetes_features(drop_target=True), nn.MSELoss(), reg),
        ("leak", "class_stamped_into_image", cnn_factory(),
         seeded_loader(StampedDigits(stamp=True)), cnn_factory(),
         seeded_loader(StampedDigits(stamp=False)), CE, TEN),
        ("leak", "lm_targets_previous_token", CausalGRU(),
         seeded_loader(NextToken(swapped=True), batch=32), CausalGRU(),
         seeded_loader(NextToken(swapped=False), batch=32), seq_loss, seq),
    ]  # fmt: skip


def correct_setups() -> list[Setup]:
    return [
        Setup(f"{name}_fixed", twin, twin_loader, loss, options, family=family)
        for family, name, _, _, twin, twin_loader, loss, options in _pairs()
    ]


def bug_setups() -> list[Setup]:
    return [
        Setup(name, model, bug, loss, options, MISALIGNED if family == "misaligned" else LEAK,
              family=family)
        for family, name, model, bug, _, _, loss, options in _pairs()
    ]  # fmt: skip
