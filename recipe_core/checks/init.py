"""Loss at init and "init well": is the untrained model's loss what the label prior predicts,
and which final-layer bias would make it so (the recipe's hockey-stick fix)."""

from __future__ import annotations

import math

import torch
from torch import nn

from recipe_core.batch import IGNORE_INDEX
from recipe_core.checks.context import CheckContext
from recipe_core.checks.loss import InitLosses, init_losses
from recipe_core.checks.result import CheckResult, verdict
from recipe_core.checks.targets import Targets, require
from recipe_core.train.models import final_linear


def tolerance(prior_loss: float) -> float:
    """How far a healthy random init may sit above the prior's loss (logit spread at init)."""
    return 0.25 * abs(prior_loss) + 0.05


def check_loss_at_init(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    losses = init_losses(ctx, t)
    evidence = {"loss_at_init": losses.model, "prior_loss": losses.prior,
                "uniform_loss": losses.uniform, "prior": t.prior.tolist()}  # fmt: skip
    observed = f"loss at init {losses.model:.4g}"
    if t.kind == "values":
        return _regression_loss_at_init(losses, observed, evidence)
    if is_language_model(ctx, t):
        used = tokens_used(ctx, t)
        evidence["tokens_used"] = used
        return _sequence_loss_at_init(losses, t, used, observed, evidence)
    return _classes_loss_at_init(losses, t, observed, evidence)


def is_language_model(ctx: CheckContext, t: Targets) -> bool:
    """Next-token prediction: a sequence task with one token id per position."""
    return ctx.task == "sequence" and t.kind == "classes"


def tokens_used(ctx: CheckContext, t: Targets) -> int:
    """Distinct target tokens in the batches read (padding / IGNORE_INDEX left out)."""
    return int((torch.as_tensor(t.prior) > 1e-3 / max(1, _token_count(ctx))).sum())


def _token_count(ctx: CheckContext) -> int:
    return sum(int((y != IGNORE_INDEX).sum()) for _, y in ctx.batches)


def _sequence_expected(losses: InitLosses, t: Targets, used: int, tol: float) -> str:
    return (f"{losses.prior:.4g} .. {losses.uniform:.4g} ± {tol:.2g} per token (unigram prior "
            f"over the {used} tokens used .. ln {t.width} = {math.log(t.width):.4g}, uniform "
            "over the model's vocabulary)")  # fmt: skip


def _sequence_loss_at_init(
    losses: InitLosses, t: Targets, used: int, observed: str, evidence: dict[str, object]
) -> CheckResult:
    """A language model starts near uniform over its whole output vocabulary, ln V per token,
    never near the unigram prior: nobody initialises an LM's output bias to token frequencies,
    and a vocabulary usually holds tokens a small corpus never uses. Healthy: between the two."""
    tol = tolerance(losses.prior)
    expected = _sequence_expected(losses, t, used, tol)
    if losses.model < losses.prior - tol:
        return _classes_loss_at_init(losses, t, observed, evidence)  # below the prior: a leak
    if losses.model <= losses.uniform + tol:
        return verdict(
            "loss_at_init", "pass",
            f"At init the per-token loss (padding ignored) is {losses.model:.3g}. A correctly "
            f"initialised language model is unsure over its whole vocabulary: ln {t.width} = "
            f"{losses.uniform:.3g} (zero logits); knowing only how often each of the {used} "
            f"tokens used occurs would give {losses.prior:.3g}. It starts in that range.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    return verdict(
        "loss_at_init", "warn" if losses.model <= losses.uniform + 2 * tol else "fail",
        f"At init the per-token loss is {losses.model:.3g}, above the {losses.uniform:.3g} "
        f"(ln {t.width}) of a uniform guess over the vocabulary: the untrained model is "
        "confidently wrong. Its logits are too large (final-layer weights too big, a "
        "temperature that divides by a small number, embeddings not scaled down).",
        observed=observed, expected=expected, evidence=evidence,
        fix="Initialise the output layer with small weights (e.g. normal std 0.02, or zero) so "
        f"the loss at init is about ln(vocab) = {losses.uniform:.3g}; check any temperature.",
    )  # fmt: skip


def _classes_expected(losses: InitLosses, t: Targets, tol: float) -> str:
    if t.kind == "probs" and not t.soft:
        return (f"{losses.prior:.4g} ± {tol:.2g} (loss_fn on each label's positive rate; "
                f"ln 2 = {math.log(2):.4g} per label for zero logits)")  # fmt: skip
    return (f"{losses.prior:.4g} ± {tol:.2g} (loss_fn on the label prior; ln {t.width} = "
            f"{math.log(max(t.width, 2)):.4g} for balanced classes)")  # fmt: skip


def _classes_loss_at_init(
    losses: InitLosses, t: Targets, observed: str, evidence: dict[str, object]
) -> CheckResult:
    tol = tolerance(losses.prior)
    expected = _classes_expected(losses, t, tol)
    excess = losses.model - losses.prior
    if excess < -tol:
        return verdict(
            "loss_at_init", "fail",
            f"The untrained model scores {losses.model:.3g}, below the {losses.prior:.3g} that "
            "knowing only the label frequencies gives. A random net cannot beat the prior, so "
            "the loss is not measuring what it should (NLLLoss on raw scores, labels leaking "
            "into the inputs) unless the model is pretrained.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Check the loss gets logits and integer labels (CrossEntropyLoss), and that no "
            "label information is in the inputs.",
        )  # fmt: skip
    if excess <= tol:
        return verdict(
            "loss_at_init", "pass",
            f"At init the loss is {losses.model:.3g}, matching the {losses.prior:.3g} of "
            "predicting the label prior: the net starts out unsure, as it should, and the "
            "loss is wired up sensibly.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    return _high_loss_at_init(losses, tol, observed, expected, evidence)


def _high_loss_at_init(
    losses: InitLosses, tol: float, observed: str, expected: str, evidence: dict[str, object]
) -> CheckResult:
    if abs(losses.model - losses.uniform) <= tol:
        return verdict(
            "loss_at_init", "warn",
            f"At init the net predicts all classes equally (loss {losses.model:.3g} ≈ "
            f"{losses.uniform:.3g}), but the labels are imbalanced: predicting their "
            f"frequencies would score {losses.prior:.3g}. The first iterations will be spent "
            "learning the bias (a hockey-stick loss curve).",
            observed=observed, expected=expected, evidence=evidence,
            fix="Initialise the final layer's bias to log(class frequency) (see init_well).",
        )  # fmt: skip
    return verdict(
        "loss_at_init", "warn" if losses.model - losses.prior <= 2 * tol else "fail",
        f"At init the loss is {losses.model:.3g}, well above the {losses.prior:.3g} of "
        "predicting the label prior: the untrained net is confidently wrong. Its logits are "
        "too large (final-layer weights too big, unnormalised inputs) or the output bias is off.",
        observed=observed, expected=expected, evidence=evidence,
        fix="Normalise the inputs and scale the final layer's weights down at init (e.g. x0.01 "
        "or zero); set its bias to the log prior (see init_well).",
    )  # fmt: skip


def _regression_loss_at_init(
    losses: InitLosses, observed: str, evidence: dict[str, object]
) -> CheckResult:
    if losses.prior <= 0:
        return verdict("loss_at_init", "skip", "The targets are constant in the batches read.")
    ratio = losses.model / losses.prior
    evidence["ratio_to_mean_loss"] = ratio
    expected = f"≤ 2x {losses.prior:.4g} (loss_fn when predicting the target mean)"
    if ratio <= 2:
        return verdict(
            "loss_at_init", "pass",
            f"At init the loss is {losses.model:.3g}, close to the {losses.prior:.3g} of "
            "predicting the target mean: the outputs start centred on the targets.",
            observed=observed, expected=expected, evidence=evidence,
        )  # fmt: skip
    return verdict(
        "loss_at_init", "warn" if ratio <= 4 else "fail",
        f"At init the loss is {losses.model:.3g}, {ratio:.1f}x the {losses.prior:.3g} of simply "
        "predicting the target mean: the outputs start far from the targets, so the first "
        "phase of training only learns an offset (a hockey-stick curve).",
        observed=observed, expected=expected, evidence=evidence,
        fix="Standardise the targets, or initialise the final layer's bias to the target mean "
        "(see init_well).",
    )  # fmt: skip


def output_layer(ctx: CheckContext, model: nn.Module, t: Targets) -> tuple[str, nn.Linear] | None:
    """The last nn.Linear, if its bias is exactly what the model outputs when its weights are
    zero (so setting that bias sets the initial prediction)."""
    layer = final_linear(model)
    if layer is None or layer.bias is None or layer.out_features != t.width:
        return None
    probe = torch.linspace(-1, 1, t.width, device=ctx.device)
    with torch.no_grad():
        weight, bias = layer.weight.clone(), layer.bias.clone()
        layer.weight.zero_()
        layer.bias.copy_(probe)
        out = ctx.forward(model.eval(), ctx.batches[0][0])
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    model.train()
    dim = t.class_dim if t.kind != "values" else -1
    scores = out.unsqueeze(-1) if out.ndim == 1 else out.movedim(dim, -1)  # (..., width)
    if scores.shape[-1] != t.width:
        return None
    if t.space == "logprobs":  # log_softmax after the bias: equal up to a per-row shift
        scores, probe = scores - scores.mean(-1, keepdim=True), probe - probe.mean()
    if not torch.allclose(scores, probe.expand_as(scores), atol=1e-5):
        return None
    name = next(n for n, m in model.named_modules() if m is layer)
    return name, layer


def suggested_bias(ctx: CheckContext, t: Targets) -> torch.Tensor:
    """Log prior (softmax), logit of the positive rate (sigmoid), or the target mean."""
    if t.kind == "values":
        ys = torch.cat([y.reshape(y.shape[0], -1).float() for _, y in ctx.batches])
        per_dim = ys.shape[1] == t.width
        return ys.mean(0) if per_dim else ys.mean().expand(t.width)
    p = torch.as_tensor(t.prior, dtype=torch.float32)
    return torch.log(p) - torch.log1p(-p) if t.kind == "probs" and not t.soft else torch.log(p)


def _loss_now(ctx: CheckContext, model: nn.Module) -> float:
    torch.manual_seed(ctx.seed)  # the same dropout masks before and after the bias change
    with torch.no_grad():
        losses = [float(ctx.loss(ctx.forward(model, x), y)) for x, y in ctx.batches[:4]]
    return sum(losses) / len(losses)


def check_init_well(ctx: CheckContext) -> CheckResult:
    t = require(ctx, loss=True)
    model = ctx.build().train()
    found = output_layer(ctx, model, t)
    if found is None:
        return verdict(
            "init_well", "skip",
            "No final nn.Linear whose bias directly sets the outputs (the last Linear is "
            "followed by other operations, has no bias, or its width differs from the outputs), "
            "so there is no single bias to initialise.",
        )  # fmt: skip
    name, layer = found
    bias = suggested_bias(ctx, t).to(ctx.device, layer.weight.dtype)
    before = _loss_now(ctx, model)
    with torch.no_grad():
        layer.bias.copy_(bias)
    after = _loss_now(ctx, model)
    prior = init_losses(ctx, t).prior
    shown = [round(v, 4) for v in bias.tolist()] if t.width <= 12 else "the values in evidence"
    fix = f"with torch.no_grad(): model.{name}.bias.copy_(torch.tensor({shown}))"
    evidence = {"layer": name, "suggested_bias": bias.tolist(), "loss_before": before,
                "loss_after": after, "prior_loss": prior}  # fmt: skip
    observed = f"loss at init {before:.4g}; {after:.4g} with the suggested bias"
    if t.kind == "values":
        return _values_init_well(before, after, prior, observed, fix, evidence)
    uniform = init_losses(ctx, t).uniform
    tol = tolerance(prior)
    if is_language_model(ctx, t) and after <= prior + 2 * tol and before <= uniform + tol:
        return _language_model_init_well(before, after, uniform, t, observed, evidence)
    return _classes_init_well(before, after, prior, observed, fix, evidence)


def _language_model_init_well(
    before: float, after: float, uniform: float, t: Targets, observed: str,
    evidence: dict[str, object],
) -> CheckResult:  # fmt: skip
    """An LM near ln V at init is initialised well: its targets are always 'imbalanced' (token
    frequencies), and the unigram bias is an optional head start, not a fix."""
    return verdict(
        "init_well", "pass",
        f"The language model starts unsure over its whole vocabulary (loss {before:.3g} per "
        f"token, ln {t.width} = {uniform:.3g}), which is what a good init of a language model "
        f"gives. Setting the output bias to the log token frequencies would start it at "
        f"{after:.3g}: an optional head start on learning the unigram, not a fix.",
        observed=observed, expected=f"≤ {uniform:.4g} (ln {t.width}) + tolerance",
        evidence=evidence,
    )  # fmt: skip


def _classes_init_well(
    before: float, after: float, prior: float, observed: str, fix: str, evidence: dict[str, object]
) -> CheckResult:
    tol = tolerance(prior)
    expected = f"{prior:.4g} ± {tol:.2g} with the bias at the log prior"
    if after > prior + 2 * tol:
        return verdict(
            "init_well", "fail",
            f"Even with the bias set to the log prior the loss at init is {after:.3g}, far above "
            f"the {prior:.3g} of predicting the prior: the final layer receives or produces "
            "logits that are too large, so the net starts out confidently wrong.",
            observed=observed, expected=expected, evidence=evidence,
            fix="Scale the final layer's weights down at init (e.g. weight.data *= 0.01, or "
            "zero them) and check the inputs are normalised; then " + fix,
        )  # fmt: skip
    gain = before - after
    if gain > max(0.1 * abs(prior), 0.05):
        return verdict(
            "init_well", "warn",
            f"Setting the final bias to the log label prior lowers the loss at init from "
            f"{before:.3g} to {after:.3g}: the labels are imbalanced and the net starts out "
            "predicting them as if balanced. Init well and skip the hockey-stick.",
            observed=observed, expected=expected, fix=fix, evidence=evidence,
        )  # fmt: skip
    return verdict(
        "init_well", "pass",
        f"The init is already good: setting the final bias to the log label prior would only "
        f"move the loss at init from {before:.3g} to {after:.3g}.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip


def _values_init_well(
    before: float, after: float, prior: float, observed: str, fix: str, evidence: dict[str, object]
) -> CheckResult:
    expected = f"≤ 2x {prior:.4g} (the loss of predicting the target mean)"
    if prior > 0 and after > 4 * prior:
        return verdict(
            "init_well", "fail",
            f"Even with the bias at the target mean the loss at init is {after:.3g}, "
            f"{after / prior:.1f}x that of predicting the mean: the outputs vary far too much "
            "at init (final-layer weights too large, unnormalised inputs).",
            observed=observed, expected=expected, evidence=evidence,
            fix="Scale the final layer's weights down at init and normalise the inputs; then "
            + fix,
        )  # fmt: skip
    ratio = before / max(after, 1e-12)
    if ratio > 1.5:
        return verdict(
            "init_well", "fail" if ratio > 4 else "warn",
            f"The outputs start far from the targets: setting the final bias to the target mean "
            f"cuts the loss at init from {before:.3g} to {after:.3g} ({ratio:.1f}x). Without it "
            "the first phase of training only learns this offset.",
            observed=observed, expected=expected, fix=fix, evidence=evidence,
        )  # fmt: skip
    return verdict(
        "init_well", "pass",
        f"The outputs already start at the target mean: the suggested bias only moves the loss "
        f"at init from {before:.3g} to {after:.3g}.",
        observed=observed, expected=expected, evidence=evidence,
    )  # fmt: skip
