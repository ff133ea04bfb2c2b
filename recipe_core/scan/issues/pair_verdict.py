"""Is a candidate pair a near duplicate? The evidence once, the verdict at any line.

`pixel_match` compares two thumbnails three ways; which comparisons a pair needs depends on
the line (the near-duplicate threshold), so `pair_evidence` gathers all a pair could need at a
line or any stricter one, and `PairEvidence.judge` draws the line: the scan judges at its
threshold, `duplicates.threshold_effect` at each of several from the same evidence.

* the aligned distance and residual: `is_near`;
* pairs admitted on the residual alone must also agree at half resolution (`coarse_agrees`:
  distinct smooth images don't);
* pairs that are not near but whose clipping differs (one image has more pixels at white or
  black) are compared with the other clipped alike (`clipped_distance`) and held to the strict
  distance line: a brightened copy whose highlights clipped;
* a pair may carry a tighter line of its own (`PairEvidence.line`, in closeness units, scaled
  by the threshold like every other line): a flipped copy (`flips`) is a strong claim, held
  to near-exact.

With a memo (`recipe_core.scan.issues.memo`), pairs of contents compared by the last scan are
not compared again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.pixel_match import (
    MIN_LINE,
    NEAR_THRESHOLD,
    beyond_rounding,
    clip_shares,
    clipped_distance,
    clipping_mismatch,
    closeness,
    coarse_distance,
    coarse_judgement,
    is_near,
    verify_pairs,
)

CLIPPED_CANDIDATE = 0.6  # pairs this close with unequal clipping are compared clipped alike


@dataclass(frozen=True)
class PairEvidence:
    """Per pair, float32 (P,): nan where a comparison was not needed."""

    dist: np.ndarray  # aligned distance
    residual: np.ndarray  # aligned residual, grey levels
    coarse: np.ndarray  # aligned distance at half resolution
    clipped: np.ndarray  # aligned distance with the clipping matched
    clipped_residual: np.ndarray
    line: np.ndarray  # closeness a pair must come within, x the threshold; inf: no own line

    def judge(self, threshold: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(near, distance, residual) at the line `threshold` (<= the one gathered for); a
        pair near by its matched clipping reports that comparison's distance and residual."""
        near = is_near(self.dist, self.residual, threshold)
        only = np.flatnonzero(
            near & (beyond_rounding(self.dist, self.residual) >= NEAR_THRESHOLD * threshold)
        )
        near[only] = coarse_judgement(self.coarse[only], self.dist[only], threshold)
        with np.errstate(invalid="ignore"):
            rescued = ~near & (self.dist < CLIPPED_CANDIDATE * threshold)
            rescued &= self.clipped < NEAR_THRESHOLD * threshold
        dist = np.where(rescued, self.clipped, self.dist)
        residual = np.where(rescued, self.clipped_residual, self.residual)
        near |= rescued
        own = np.flatnonzero(near & np.isfinite(self.line))
        near[own] = closeness(dist[own], residual[own]) <= self.line[own] * threshold
        return near, dist, residual

    def subset(self, rows: np.ndarray) -> PairEvidence:
        return PairEvidence(*(getattr(self, f.name)[rows] for f in fields(self)))

    def put(self, rows: np.ndarray, other: PairEvidence) -> PairEvidence:
        """A copy with `other`'s evidence (one pair per entry of `rows`) at `rows`."""
        out = {}
        for f in fields(self):
            values = getattr(self, f.name).copy()
            values[rows] = getattr(other, f.name)
            out[f.name] = values
        return PairEvidence(**out)

    def within(self, line: float) -> PairEvidence:
        """The same evidence, every pair held to `line` (closeness units) as well."""
        return replace(self, line=np.minimum(self.line, np.float32(line)))


def far_evidence(n: int) -> PairEvidence:
    """The evidence of `n` pairs ruled out before any comparison: near at no line."""
    far = np.full(n, np.inf, dtype=np.float32)
    unmeasured = np.full(n, np.nan, dtype=np.float32)
    return PairEvidence(far, far.copy(), unmeasured, unmeasured.copy(), unmeasured.copy(),
                        far.copy())  # fmt: skip


def join_evidence(parts: list[PairEvidence]) -> PairEvidence:
    """One PairEvidence of `parts`' pairs, in order."""
    names = [f.name for f in fields(PairEvidence)]
    return PairEvidence(*(np.concatenate([getattr(p, name) for p in parts]) for name in names))


def pair_evidence(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float = 1.0,
    memo: IssueMemo | None = None,
) -> PairEvidence:
    """What `PairEvidence.judge` needs for the pairs (pixels[a], pixels[b]) at `threshold`
    and every stricter line down to MIN_LINE."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    dist, residual = _aligned(pixels, a, b, memo)
    coarse = np.full(len(a), np.nan, dtype=np.float32)
    need = np.flatnonzero(is_near(dist, residual, threshold) & (dist >= NEAR_THRESHOLD * MIN_LINE))
    coarse[need] = _coarse(pixels, a[need], b[need], memo)
    clipped = np.full(len(a), np.nan, dtype=np.float32)
    clipped_residual = clipped.copy()
    maybe = np.flatnonzero(dist < CLIPPED_CANDIDATE * threshold)
    maybe = maybe[_clipping_mismatch(pixels, a[maybe], b[maybe], memo)]
    if len(maybe):
        clipped[maybe], clipped_residual[maybe] = _clipped(pixels, a[maybe], b[maybe], memo)
    line = np.full(len(a), np.inf, dtype=np.float32)
    return PairEvidence(dist, residual, coarse, clipped, clipped_residual, line)


def verdict(
    pixels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float = 1.0,
    memo: IssueMemo | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(near, distance, residual) of the pairs at `threshold` (see the module doc)."""
    return pair_evidence(pixels, a, b, threshold, memo).judge(threshold)


def _aligned(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, memo: IssueMemo | None
) -> tuple[np.ndarray, np.ndarray]:
    if memo is None:
        return verify_pairs(pixels, a, b)
    both = memo.per_pair(
        "pixel_match", a, b, lambda p: np.column_stack(verify_pairs(pixels, a[p], b[p]))
    )
    return both[:, 0].copy(), both[:, 1].copy()


def _clipping_mismatch(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, memo: IssueMemo | None
) -> np.ndarray:
    if memo is None:
        return clipping_mismatch(pixels, a, b)
    return clipping_mismatch(
        pixels, a, b,
        lambda used: memo.per_image("clip_shares", used, lambda rows: clip_shares(pixels[rows])),
    )  # fmt: skip


def _coarse(pixels: np.ndarray, a: np.ndarray, b: np.ndarray, memo: IssueMemo | None) -> np.ndarray:
    if memo is None:
        return coarse_distance(pixels, a, b)
    return memo.per_pair("pixel_match.coarse", a, b, lambda p: coarse_distance(pixels, a[p], b[p]))


def _clipped(
    pixels: np.ndarray, a: np.ndarray, b: np.ndarray, memo: IssueMemo | None
) -> tuple[np.ndarray, np.ndarray]:
    if memo is None:
        return clipped_distance(pixels, a, b)
    both = memo.per_pair(
        "pixel_match.clipped", a, b, lambda p: np.column_stack(clipped_distance(pixels, a[p], b[p]))
    )
    return both[:, 0].copy(), both[:, 1].copy()
