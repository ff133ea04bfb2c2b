"""The zoo's losses families: planted bugs and the clean twin of each.

Three families: hand-written or mis-wired losses (`losses`), causal language models whose loss
at init must be judged per token over their vocabulary (`sequence`), and multi-label heads on
multi-hot targets (`multilabel`). Text comes from the shipped examples/data/recipe.txt (a real
paragraph, read as characters, bytes or words); multi-hot targets are facts about each digit.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tests.checks.zoo import (
    FLAG,
    CausalGRU,
    Mapped,
    Setup,
    TinyAttention,
    Wrap,
    diabetes,
    digits,
    loader,
    mlp_factory,
    regressor,
    seq_loss,
)

TEXT = Path(__file__).resolve().parents[2] / "examples" / "data" / "recipe.txt"
TEN = {"num_classes": 10}
REG = {"task": "regression"}
SEQ = {"task": "sequence"}
LABELS = {"task": "multilabel", "num_classes": 4}
FAIL = ("fail",)
LOSSES, SEQUENCE, MULTILABEL = "losses", "sequence", "multilabel"


# -- data ---------------------------------------------------------------------------------------
@functools.cache
def words() -> list[str]:
    return re.findall(r"\w+|[^\w\s]", TEXT.read_text().lower())


def text_ids(kind: str) -> torch.Tensor:
    """The text as token ids: "chars" (36 used, ids 0..35), "bytes" (ids < 256), "words"."""
    text = TEXT.read_text()
    if kind == "bytes":
        return torch.tensor(list(text.encode()), dtype=torch.long)
    tokens = list(text) if kind == "chars" else words()
    vocab = sorted(set(tokens))
    return torch.tensor([vocab.index(tok) for tok in tokens], dtype=torch.long)


def windows(ids: torch.Tensor, steps: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, steps) inputs and the next token of each position."""
    chunks = torch.stack([ids[s : s + steps + 1] for s in range(0, len(ids) - steps - 1, stride)])
    return chunks[:, :-1], chunks[:, 1:]


def lm_loader(kind: str, steps: int, stride: int) -> Any:
    return loader(*windows(text_ids(kind), steps, stride), batch=32)


def padded_spans(steps: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Word-level spans of 8..24 words (documents of varying length), one per row: inputs
    padded with id 0, targets with -100 (CrossEntropyLoss's ignore_index). The text holds its
    paragraph three times; spans come from the first copy, so no two rows repeat."""
    vocab = ["<pad>", *sorted(set(words()))]
    ids = [vocab.index(w) for w in words()[: len(words()) // 3]]
    xs, ys = [], []
    for start in range(0, len(ids) - steps - 1, 5):
        span = ids[start : start + 8 + (start * 7) % (steps - 7) + 1]
        pad = steps + 1 - len(span)
        xs.append(span[:-1] + [0] * pad)
        ys.append(span[1:] + [-100] * pad)
    return torch.tensor(xs), torch.tensor(ys)


def multi_hot(labels: torch.Tensor) -> torch.Tensor:
    """(N, 4) float facts about each digit: even, greater than 4, prime, has a closed loop."""
    facts = (labels % 2 == 0, labels > 4, torch.isin(labels, torch.tensor([2, 3, 5, 7])),
             torch.isin(labels, torch.tensor([0, 6, 8, 9])))  # fmt: skip
    return torch.stack(facts, 1).float()


def teacher_logits() -> torch.Tensor:
    """A distillation teacher: least-squares linear readout of one-hot labels from pixels."""
    x, y = digits()
    flat = torch.cat([x.flatten(1), torch.ones(len(x), 1)], 1)
    weights = torch.linalg.lstsq(flat, F.one_hot(y, 10).float()).solution
    return 8 * flat @ weights  # (N, 10), confident but not one-hot


# -- models and losses --------------------------------------------------------------------------
def head(outputs: int, *, last: nn.Module | None = None, bias: torch.Tensor | None = None) -> Any:
    """A factory of MLPs on 8x8 digits with `outputs` logits, then `last` (if any)."""

    def make() -> nn.Module:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, outputs))
        if bias is not None:
            with torch.no_grad():
                net[3].bias.copy_(bias)
        return nn.Sequential(net, last) if last is not None else net

    return make


def soft_cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The hand-written soft-target loss of distillation and label-smoothing code."""
    return -(target * out.log_softmax(1)).sum(1).mean()


def smoothed(labels: torch.Tensor, eps: float, *, per_class: bool) -> torch.Tensor:
    onehot = F.one_hot(labels, 10).float()
    return onehot * (1 - eps) + (eps / 10 if per_class else eps)


def per_example_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y, reduction="none")


def clamped_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """'Robust' CE: losses capped at 3 so outliers cannot blow up a step."""
    return per_example_ce(out, y).clamp(max=3.0).mean()


def easiest_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Only the 70 % smallest losses of the batch are kept."""
    losses = per_example_ce(out, y)
    return losses.topk(max(1, int(0.7 * len(losses))), largest=False).values.mean()


def masked_hard_ce(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """'Ignore outliers': examples whose loss exceeds 4 are masked out of the mean."""
    losses = per_example_ce(out, y)
    return (losses * (losses < 4.0)).mean()


def clamped_squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared errors capped at 4 (2 target stds) so outliers cannot dominate."""
    return ((out - y) ** 2).clamp(max=4.0).mean()


def focal_loss(out: torch.Tensor, y: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Down-weights easy examples, never zeroes the hard ones (Lin et al. 2017)."""
    log_p = out.log_softmax(1).gather(1, y[:, None])[:, 0]
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def lm_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.flatten(0, 1), y.flatten(), ignore_index=-100)


def scaled_head(model: nn.Module, scale: float) -> nn.Module:
    """The output layer's weights multiplied by `scale` (a botched init)."""
    head_layer = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        head_layer.weight.mul_(scale)
    return model


def seeded(build: Any, *args: Any, **kwargs: Any) -> nn.Module:
    torch.manual_seed(0)
    module: nn.Module = build(*args, **kwargs)
    return module


# -- the zoo ------------------------------------------------------------------------------------
def standardised_diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    xr, yr = diabetes()
    return xr, (yr - yr.mean()) / yr.std()


def correct_setups() -> list[Setup]:
    x, y = digits()
    hot = multi_hot(y)
    rate = hot.mean(0)
    teacher = teacher_logits().softmax(1)
    counts = torch.bincount(y, minlength=10).float()
    pos_weight = (1 - rate) / rate
    pad_x, pad_y = padded_spans()
    return [
        Setup("smoothing_divided_by_k", mlp_factory(), loader(x, smoothed(y, 0.1, per_class=True)),
              soft_cross_entropy, TEN, family=LOSSES),
        Setup("distillation_softmax_over_classes", mlp_factory(), loader(x, teacher),
              soft_cross_entropy, TEN, family=LOSSES),
        Setup("focal_loss", mlp_factory(), loader(x, y), focal_loss, TEN, family=LOSSES),
        Setup("huber_regression", regressor(), loader(*standardised_diabetes(), batch=32),
              nn.HuberLoss(delta=1.0), REG, family=LOSSES),
        Setup("class_weighted_ce", mlp_factory(), loader(x, y),
              nn.CrossEntropyLoss(weight=counts.mean() / counts), TEN, family=LOSSES),
        Setup("log_softmax_nll", head(10, last=nn.LogSoftmax(dim=1)), loader(x, y),
              nn.NLLLoss(), TEN, family=LOSSES),
        Setup("log_softmax_then_ce", head(10, last=nn.LogSoftmax(dim=1)), loader(x, y),
              nn.CrossEntropyLoss(), TEN, family=LOSSES),
        Setup("char_gru_lm_36", seeded(CausalGRU, 36), lm_loader("chars", 32, 8), seq_loss,
              {**SEQ, "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3)}, family=SEQUENCE),
        Setup("byte_attention_lm_256", seeded(TinyAttention, 256, steps=32),
              lm_loader("bytes", 32, 8), seq_loss, SEQ, family=SEQUENCE),
        Setup("word_gru_lm_512", seeded(CausalGRU, 512), lm_loader("words", 16, 2), seq_loss,
              {**SEQ, "optimizer": lambda p: torch.optim.Adam(p, lr=1e-3)}, family=SEQUENCE),
        Setup("padded_spans_attention_lm", seeded(TinyAttention, 512, steps=24),
              loader(pad_x, pad_y, batch=16), lm_loss, SEQ, family=SEQUENCE),
        Setup("multilabel_bce", head(4), loader(x, hot), nn.BCEWithLogitsLoss(), LABELS,
              family=MULTILABEL),
        Setup("multilabel_pos_weight", head(4), loader(x, hot),
              nn.BCEWithLogitsLoss(pos_weight=pos_weight), LABELS, family=MULTILABEL),
        Setup("multilabel_prior_bias", head(4, bias=torch.log(rate / (1 - rate))),
              loader(x, hot), nn.BCEWithLogitsLoss(), LABELS, family=MULTILABEL),
    ]  # fmt: skip


def bug_setups() -> list[Setup]:
    x, y = digits()
    hot = multi_hot(y)
    teacher = teacher_logits()
    rolled = Mapped(loader(x, hot), lambda a, b: (a, b.roll(1, 0)))  # labels of the neighbour
    return [
        Setup("smoothing_not_divided_by_k", mlp_factory(),
              loader(x, smoothed(y, 0.1, per_class=False)), soft_cross_entropy, TEN,
              {"loss_function": FAIL}, family=LOSSES),
        Setup("distillation_softmax_over_batch", mlp_factory(),
              loader(x, teacher.softmax(0)), soft_cross_entropy, TEN,
              {"loss_function": FAIL}, family=LOSSES),
        Setup("clamped_per_example_loss", mlp_factory(), loader(x, y), clamped_ce, TEN,
              {"example_gradients": FAIL}, family=LOSSES),
        Setup("only_easiest_70_percent", mlp_factory(), loader(x, y), easiest_ce, TEN,
              {"example_gradients": FLAG}, family=LOSSES),
        Setup("hard_examples_masked", mlp_factory(), loader(x, y), masked_hard_ce, TEN,
              {"example_gradients": FAIL}, family=LOSSES),
        Setup("clamped_squared_error", regressor(), loader(*standardised_diabetes(), batch=32),
              clamped_squared_error, REG, {"example_gradients": FLAG}, family=LOSSES),
        Setup("softmax_then_nll", head(10, last=nn.Softmax(dim=1)), loader(x, y), nn.NLLLoss(),
              TEN, {"loss_function": FAIL}, family=LOSSES),
        Setup("lm_final_weights_x100", scaled_head(seeded(TinyAttention, 256, steps=32), 100.0),
              lm_loader("bytes", 32, 8), seq_loss, SEQ,
              {"loss_at_init": FAIL, "init_well": FAIL}, family=SEQUENCE),
        Setup("lm_temperature_in_training", Wrap(seeded(CausalGRU, 512), lambda n, a: n(a) / 0.05),
              lm_loader("words", 16, 2), seq_loss, SEQ, {"loss_at_init": FAIL}, family=SEQUENCE),
        Setup("softmax_ce_on_multi_hot", head(4), loader(x, hot), nn.CrossEntropyLoss(), LABELS,
              {"loss_function": FAIL}, family=MULTILABEL),
        Setup("sigmoid_then_bce_with_logits", head(4, last=nn.Sigmoid()), loader(x, hot),
              nn.BCEWithLogitsLoss(), LABELS, {"loss_function": FAIL}, family=MULTILABEL),
        Setup("multilabel_targets_of_wrong_sample", head(4), rolled, nn.BCEWithLogitsLoss(),
              LABELS, {"input_independent_baseline": FLAG}, family=MULTILABEL),
        Setup("multilabel_fed_class_indices", head(4), loader(x, y), nn.BCEWithLogitsLoss(),
              LABELS, {"labels_and_outputs": FAIL}, family=MULTILABEL),
    ]  # fmt: skip
