"""A character-level causal transformer language model on a shipped text
(examples/data/recipe.txt): next-character prediction, the "sequence" task.

    recipe check --pipeline examples/char_lm.py:pipeline
    recipe see   --pipeline examples/char_lm.py:pipeline --out /tmp/seen
    recipe train --pipeline examples/char_lm.py:pipeline --preset overfit

Inputs are (B, T) token ids, targets the same ids shifted by one; the model is causal (an
attention mask keeps position t from seeing t+1..T), which Recipe's causality check verifies.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from recipe_core import Pipeline

TEXT = Path(__file__).resolve().parent / "data" / "recipe.txt"
CONTEXT = 32


class Chars(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Windows of CONTEXT + 1 characters: x = the first CONTEXT, y = the next character each."""

    def __init__(self, ids: torch.Tensor, stride: int = 8) -> None:
        self.ids, self.starts = ids, range(0, len(ids) - CONTEXT - 1, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = self.ids[self.starts[i] : self.starts[i] + CONTEXT + 1]
        return chunk[:-1], chunk[1:]


class CharTransformer(nn.Module):
    def __init__(
        self, vocab: int, width: float = 1.0, layers: int = 2, prior: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        dim = max(4, int(32 * width)) // 4 * 4
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(CONTEXT, dim)
        block = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=2 * dim, dropout=0.0,
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, vocab)
        for p in self.parameters():  # small weights: logits near zero, loss at init ~ log(vocab)
            if p.ndim > 1:
                nn.init.normal_(p, std=0.02)
        nn.init.zeros_(self.head.bias)
        if prior is not None:  # "init well": the output bias starts at the log character prior
            with torch.no_grad():
                self.head.bias.copy_(prior.log())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, vocab)
        t = ids.shape[1]
        h = self.tokens(ids) + self.positions(torch.arange(t, device=ids.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        return self.head(self.blocks(h, mask=mask, is_causal=True))


def next_char_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def pipeline() -> Pipeline:
    text = TEXT.read_text()
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text], dtype=torch.long)
    cut = int(len(ids) * 0.9)
    prior = (torch.bincount(ids[:cut], minlength=len(vocab)) + 1) / (cut + len(vocab))
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(Chars(ids[:cut]), batch_size=32, shuffle=True, generator=generator)
    val = DataLoader(Chars(ids[cut:], stride=CONTEXT), batch_size=32)

    def make_model(width: float = 1.0) -> nn.Module:
        torch.manual_seed(0)  # its own init seed: every build starts from the same weights
        return CharTransformer(len(vocab), width, prior=prior)

    return Pipeline(
        make_model,
        train,
        next_char_loss,
        task="sequence",
        num_classes=len(vocab),
        val_loader=val,
        optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3),
        decode=vocab,
    )
