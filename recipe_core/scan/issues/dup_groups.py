"""Duplicate groups without chaining: every group is a clique of verified near links, with
edited copies of its members as verified leaves (a star around them).

Connected components of near links chain: A~B and B~C put A and C in one group even when A
and C are not alike (flat sky crops, smooth backgrounds drift a little from image to image).
Here groups are grown greedily around centres instead: the distinct image with the most
unassigned near neighbours is a centre; its neighbours join, closest first, only when they
are verified near every member of the group's core already (the centre included). So a
group's core is a clique of verified links and a chain A~B~C with A !~ C gives {A, B} (or
{B, C}), never {A, B, C}.

A neighbour linked to the centre by an edit link (a mirror image, a recrop, a copy under a
caption: `edited`) joins as a leaf without being near the rest: two edits of one picture (its
mirror image and its recrop) are each a copy of it, not of each other, and an edit link is
held to a strict line of its own. A leaf does not join the core, so nothing joins through it:
a star's arms are one link long. Identical copies (exact groups) count as one image and stay
together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

# verify(a, b) -> (P,) bool: are rows a[i] and b[i] near duplicates (for pairs not linked yet)
Verify = Callable[[np.ndarray, np.ndarray], np.ndarray]


def clique_groups(
    n: int,
    exact: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    close: np.ndarray,
    verify: Verify,
    edited: np.ndarray | None = None,
) -> np.ndarray:
    """(n,) int64 group label per row, -1 for rows in no group. `exact` from `exact_groups`,
    (a, b, close) the verified near links and their closeness (smaller = closer); `edited`
    (bool per link, None: none) marks edit links (see the module doc)."""
    rep = _representatives(n, exact)
    ra, rb = rep[a], rep[b]
    keep = ra != rb
    edit = np.zeros(len(a), dtype=bool) if edited is None else np.asarray(edited, dtype=bool)
    links = pd.DataFrame({"a": np.minimum(ra, rb)[keep], "b": np.maximum(ra, rb)[keep],
                          "d": np.asarray(close)[keep], "edit": edit[keep]})  # fmt: skip
    # a pair linked both ways keeps its plain link: the closer test of the two
    links = links.sort_values(["edit", "d"], kind="stable").drop_duplicates(["a", "b"])
    label = np.full(n, -1, dtype=np.int64)
    for g, members in enumerate(_grow(links, verify)):
        label[members] = g
    grouped = np.flatnonzero(exact >= 0)
    solo = grouped[label[rep[grouped]] < 0]  # exact groups without near links: a group each
    label[solo] = len(label) + rep[solo]
    label[grouped] = label[rep[grouped]]
    return label


def _representatives(n: int, exact: np.ndarray) -> np.ndarray:
    """(n,) the first row of each row's exact group, or the row itself."""
    rep = np.arange(n, dtype=np.int64)
    grouped = np.flatnonzero(exact >= 0)
    first = pd.Series(grouped).groupby(exact[grouped]).transform("first").to_numpy()
    rep[grouped] = first
    return rep


def _grow(links: pd.DataFrame, verify: Verify) -> list[list[int]]:
    """Greedy cliques, with edited leaves, over the link table (a, b, d, edit), most
    connected centres first."""
    nbrs: dict[int, list[tuple[float, int, bool]]] = {}
    for x, y, d, e in links[["a", "b", "d", "edit"]].itertuples(index=False):
        nbrs.setdefault(int(x), []).append((float(d), int(y), bool(e)))
        nbrs.setdefault(int(y), []).append((float(d), int(x), bool(e)))
    linked = {(int(x), int(y)) for x, y in links[["a", "b"]].itertuples(index=False)}
    assigned: set[int] = set()
    groups = []
    order = sorted(nbrs, key=lambda r: (-len(nbrs[r]), r))
    for centre in order:
        if centre in assigned:
            continue
        core, leaves = [centre], []
        for _, cand, edit in sorted(nbrs[centre]):
            if cand in assigned:
                continue
            if edit:
                leaves.append(cand)
            elif _near_all(cand, core[1:], linked, verify):
                core.append(cand)
        group = core + leaves
        if len(group) >= 2:
            assigned.update(group)
            groups.append(group)
    return groups


def _near_all(cand: int, others: list[int], linked: set[tuple[int, int]], verify: Verify) -> bool:
    """Is `cand` near each of `others` (already-verified links first, then pixels)?"""
    todo = [o for o in others if (min(cand, o), max(cand, o)) not in linked]
    if not todo:
        return True
    ok = verify(np.full(len(todo), cand, dtype=np.int64), np.asarray(todo, dtype=np.int64))
    return bool(np.all(ok))
