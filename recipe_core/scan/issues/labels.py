"""Label issues: samples whose given label the data itself disagrees with.

Out-of-fold predicted probabilities from two fast baselines on the embeddings, averaged:

* ridge regression onto one-hot labels, solved in closed form: one pass builds each fold's
  Gram matrix X_f^T X_f, and each fold's model uses the sum of the others for a (D x D) solve,
  so 5-fold cross-validation costs one pass over the data (N * D^2) instead of five iterative
  fits. A softmax temperature fitted on the out-of-fold scores turns scores into probabilities.
* a k-nearest-neighbour vote (the shared neighbour graph), which catches what a linear model
  cannot separate.

Folds are grouped by duplicate group, so a copy never "predicts" its own twin's label. Then
confident learning picks the issues (`confident.find_label_errors`, numpy, without importing
cleanlab and scikit-learn): prune-by-class (flag for flag cleanlab's
`find_label_issues(filter_by="prune_by_class")`) joined with the confident joint's
off-diagonal, kept where the model prefers another label at odds of at least 3 to 1, plus
any sample it bets against at 25 to 1. Score = 1 - p(given label);
`scores.suggested_label` is the most probable other class.

Classes the model cannot tell apart (`overlapping_classes`: on average it gives each of the
two at least half as much probability on the other's samples as on its own) are reported as
such, one `overlapping_classes` row per sample of them, and no label issue is reported
between them: flags there follow the noise of a coin toss (two halves of one class split at
random drew 15 "label issues" between the halves; random labels over six classes, 37).
Measured beside them, the most mutual pair of a healthy set gives 0.04-0.16 of it.

Scale: the Gram pass is N * D^2 (50k x 464-d: ~1e10 flops, a second); above MAX_TRAIN rows
the models train on a random MAX_TRAIN subset and predict everyone.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from threadpoolctl import threadpool_limits

from recipe_core.scan.cpus import thread_map
from recipe_core.scan.index.schema import ScanIndex
from recipe_core.scan.issues._common import concat_issues, empty_issues, issue_frame
from recipe_core.scan.issues.confident import find_label_errors
from recipe_core.scan.issues.memo import IssueMemo
from recipe_core.scan.issues.neighbors import NeighborGraph, neighbor_graph
from recipe_core.scan.issues.ridge_memo import add_terms, memo_fold_sums

log = logging.getLogger(__name__)

N_FOLDS = 5
RIDGE = 1e-2  # ridge strength relative to the mean feature energy (trace(X^T X) / D)
VOTE_K = 10  # neighbours in the kNN vote
MAX_TRAIN = 50_000  # rows the models fit on, at most
OVERLAP_RATIO = 0.5  # see the module doc: healthy sets' most mutual pair measured 0.04-0.16
MIN_OVERLAP_SAMPLES = 10  # classes with fewer samples are not judged for overlap
OVERLAP_SHARED = (  # the end of every overlapping_classes detail (the Issues page says it once)
    ". No label issue is reported between them. One class under two names, or classes its "
    "features do not separate (a pretrained embedding or a trained run's predictions may)"
)
STEP_ROWS = 2048  # rows gathered at a time for the ridge's Grams and scores


@dataclass(frozen=True)
class LabelIssueResult:
    # sample_id, scored (bool), given_label, suggested_label (most probable other class),
    # p_given, p_suggested (out-of-fold probabilities), is_issue (bool)
    scores: pd.DataFrame = field(repr=False)
    classes: tuple[str, ...]  # column order of pred_probs
    pred_probs: np.ndarray = field(repr=False)  # (n_scored, K) out-of-fold, scored rows in order
    issues: pd.DataFrame = field(repr=False)  # family rows: sample_id, issue, score, group, detail
    # class_a, class_b, ratio_ab, ratio_ba: the pairs of `overlapping_classes`, by name
    overlaps: pd.DataFrame = field(default_factory=lambda: _overlap_frame([]), repr=False)


def find_label_issues(
    index: ScanIndex,
    *,
    rows: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    graph: NeighborGraph | None = None,
    seed: int = 0,
    memo: IssueMemo | None = None,
) -> LabelIssueResult:
    """Label issues among `rows` (default: decoded, labelled rows). `groups` (N,) int marks
    duplicate groups (-1 = none) so folds and votes keep copies apart from their twins;
    `graph` may be shared (neighbours outside `rows` are skipped: give it spare columns).
    With a `memo`, the ridge's fold sums are updated from the last scan's (`ridge_memo`)."""
    table = index.table
    labelled = (table["label"] != "").to_numpy() & index.valid
    rows = np.flatnonzero(labelled) if rows is None else np.asarray(rows)[labelled[rows]]
    classes = tuple(str(c) for c in np.unique(table["label"].to_numpy()[rows].astype(str)))
    if len(classes) < 2 or len(rows) < 2 * N_FOLDS:
        return _empty(table, classes)
    y = np.searchsorted(np.asarray(classes), table["label"].to_numpy()[rows].astype(str))
    groups = np.full(len(table), -1) if groups is None else groups
    ids = table["sample_id"].to_numpy()[rows]
    folds = group_folds(groups[rows], N_FOLDS, seed=seed, ids=ids)
    train = _train_mask(len(rows), seed)
    if graph is None:
        graph = neighbor_graph(index.embeddings, rows, VOTE_K + 5, seed=seed)
    # The vote beside the ridge, on a second thread (numpy releases the GIL in both).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recipe-vote") as pool:
        later = pool.submit(knn_vote_probs, graph, rows, y, groups, len(classes))
        sums = None
        if memo is not None:
            sums = memo_fold_sums(index, rows, y, folds, train, classes, N_FOLDS, memo,
                                  lambda: ridge_fold_terms(index.embeddings, y, folds, train,
                                                           len(classes), rows=rows,
                                                           n_folds=N_FOLDS))  # fmt: skip
        ridge = ridge_oof_probs(index.embeddings, y, folds, train, len(classes), rows=rows,
                                sums=sums)  # fmt: skip
        vote = later.result()
    probs = (ridge + vote) / 2
    # Confident learning (confident.find_label_errors: measured on six planted sets there).
    # In process, no pool: a pool forked from a threaded process (the dashboard, pytest with a
    # browser) deadlocked on a queue lock (cleanlab's did, in CI); one sort per class is
    # milliseconds. Our numpy copy of it: cleanlab imports scikit-learn (+0.8 CPU-s, +55 MB).
    is_issue = find_label_errors(y, probs)
    return _result(table, rows, classes, y, probs, is_issue)


def find_label_issues_from_probs(
    table: pd.DataFrame, sample_ids: np.ndarray, pred_probs: np.ndarray, classes: tuple[str, ...]
) -> LabelIssueResult:
    """Confident learning on external out-of-sample probabilities (a trained run's on its
    validation split): `pred_probs` (M, K) for `sample_ids` (M,), columns in `classes` order.
    Only those samples are scored; rows of `table` with a label outside `classes` are not."""
    pos = pd.Index(table["sample_id"]).get_indexer(np.asarray(sample_ids))
    names = np.asarray(classes, dtype=object)
    given = table["label"].to_numpy().astype(str)
    keep = (pos >= 0) & np.isin(given[np.maximum(pos, 0)], names.astype(str))
    rows, probs = pos[keep], np.asarray(pred_probs, dtype=np.float64)[keep]
    if len(classes) < 2 or len(rows) < 2:
        return _empty(table, classes)
    y = np.asarray([classes.index(g) for g in given[rows]], dtype=np.int64)
    is_issue = find_label_errors(y, probs)  # see find_label_issues: in process, no cleanlab
    return _result(table, rows, classes, y, probs, is_issue)


def group_folds(
    groups: np.ndarray, n_folds: int, *, seed: int = 0, ids: np.ndarray | None = None
) -> np.ndarray:
    """(M,) fold per row, rows of one group (>= 0) in the same fold; ungrouped rows alone.

    With `ids` (M,) int64 (sample ids), a row's fold follows from its id (a group's: from its
    smallest member id) and `seed` alone, so a sample keeps its fold when other rows come,
    go or are held out (a rescan, a stray set aside): the out-of-fold model of an unchanged
    sample is trained on nearly the same rows. Without, folds are a seeded permutation."""
    keys = np.where(groups >= 0, groups, -1 - np.arange(len(groups)))
    _, inverse = np.unique(keys, return_inverse=True)
    if ids is None:
        order = np.random.default_rng(seed).permutation(inverse.max() + 1)
        folds: np.ndarray = order[inverse] % n_folds
        return folds
    unit_id = np.full(inverse.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(unit_id, inverse, np.asarray(ids, dtype=np.int64))
    mixed = _mix64(unit_id.view(np.uint64) ^ np.uint64(seed & 0xFFFFFFFF))
    out: np.ndarray = (mixed % np.uint64(n_folds)).astype(np.int64)[inverse]
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a uniform-looking uint64 from each uint64."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


def _train_mask(n: int, seed: int) -> np.ndarray:
    if n <= MAX_TRAIN:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed + 1).choice(n, MAX_TRAIN, replace=False)] = True
    return mask


def ridge_fold_terms(
    x: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    train: np.ndarray,
    n_classes: int,
    *,
    rows: np.ndarray | None = None,
    n_folds: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's [X 1]^T [X 1] and [X 1]^T Y over its training rows: ((F, D+1, D+1),
    (F, D+1, K)) float64, for `rows` of `x` (None: every row; y, folds and train per row used).

    Rows are gathered STEP_ROWS at a time (a sorted copy of every row, 93 MB at 50k x 464
    floats, was a fresh mapping to fault in) and multiplied in float64: products of float32
    values are exact there, so sums over the same rows in another order (a rescan's update,
    `ridge_memo`) agree to rounding in the 15th digit."""
    n_folds = int(folds.max()) + 1 if n_folds is None else n_folds
    x = np.asarray(x)
    at = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=np.int64)
    d = x.shape[1]

    def fold_terms(f: int) -> tuple[np.ndarray, np.ndarray]:
        own = np.zeros((d + 1, d + 1))
        cross = np.zeros((d + 1, n_classes))
        fit = np.flatnonzero((folds == f) & train)
        for start in range(0, len(fit), STEP_ROWS):
            part = fit[start : start + STEP_ROWS]
            add_terms(own, cross, np.asarray(x[at[part]], dtype=np.float64), y[part])
        return own, cross

    terms = thread_map(fold_terms, range(n_folds))  # one BLAS thread each (see _detect)
    return np.stack([t[0] for t in terms]), np.stack([t[1] for t in terms])


def ridge_oof_probs(
    x: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    train: np.ndarray,
    n_classes: int,
    *,
    rows: np.ndarray | None = None,
    sums: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(M, K) out-of-fold probabilities of a ridge one-vs-rest regression + fitted softmax,
    for `rows` of `x` (None: every row; y, folds and train are per row used). `sums`: the
    folds' `ridge_fold_terms`, where they are known (a rescan's memo); else computed here.

    Each fold's model solves with the other folds' sums, then scores the fold's held-out rows,
    gathered STEP_ROWS at a time: no copy of `x` is made."""
    if sums is None:
        sums = ridge_fold_terms(x, y, folds, train, n_classes, rows=rows)
    fold_gram, fold_cross = sums
    n_folds = len(fold_gram)
    x = np.asarray(x)
    at = np.arange(len(y)) if rows is None else np.asarray(rows, dtype=np.int64)
    members = [np.flatnonzero(folds == f) for f in range(n_folds)]
    d = x.shape[1]
    gram, cross = fold_gram.sum(axis=0), fold_cross.sum(axis=0)
    penalty = RIDGE * max(np.trace(gram), 1.0) / (d + 1) * np.eye(d + 1)
    penalty[-1, -1] = 1e-6  # the intercept is (all but) not shrunk
    scores = np.zeros((len(y), n_classes))
    # A (D x D) solve gains nothing from BLAS threads, and on a busy machine OpenBLAS's
    # spinning threads make it ~50x slower: one thread here.
    with threadpool_limits(limits=1, user_api="blas"):
        for f in range(n_folds):
            if int(train.sum()) - int(train[members[f]].sum()) < n_classes:  # one big group
                continue  # scores stay 0: a uniform prediction
            weights = np.linalg.solve(gram - fold_gram[f] + penalty, cross - fold_cross[f])
            # float32 weights: a float64 product would copy the fold's rows to float64 first
            w32, bias = weights[:d].astype(np.float32), weights[d]
            for start in range(0, len(members[f]), STEP_ROWS):
                part = members[f][start : start + STEP_ROWS]
                scores[part] = np.asarray(x[at[part]], dtype=np.float32) @ w32 + bias
    return _softmax(scores, _temperature(scores[train], y[train]))


def _temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The softmax temperature minimising the out-of-fold negative log-likelihood of
    p + 1e-12 (logaddexp of the log-softmax and log 1e-12: no (N, K) division per step)."""
    z = scores - scores.max(axis=1, keepdims=True)
    given = z[np.arange(len(y)), y]
    floor = np.log(1e-12)

    def nll(t: float) -> float:
        logp = t * given - np.log(np.exp(t * z).sum(axis=1))
        return float(-np.logaddexp(logp, floor).mean())

    return float(minimize_scalar(nll, bounds=(0.1, 200.0), method="bounded").x)


def _softmax(scores: np.ndarray, t: float) -> np.ndarray:
    z = t * (scores - scores.max(axis=1, keepdims=True))
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def knn_vote_probs(
    graph: NeighborGraph,
    rows: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
) -> np.ndarray:
    """(M, K) distance-weighted vote of each row's first VOTE_K neighbours among `rows`,
    skipping its own duplicate group; smoothed so no class has probability 0.

    The graph's first 2 x VOTE_K columns are read (a graph holds ~60 at 50k images, for the
    outlier score); the rows that find fewer than VOTE_K usable neighbours there are voted
    again over every column."""
    n = len(groups)
    label_of = np.full(n + 1, -1, dtype=np.int64)  # slot n: "no neighbour"
    label_of[rows] = y
    group_of = np.append(groups, -2)
    pos = np.full(n, -1, dtype=np.int64)
    pos[graph.rows] = np.arange(len(graph.rows))
    at = pos[rows]  # (M,) each row's line in the graph, -1 if it was not searched
    width = min(graph.k, 2 * VOTE_K)
    votes, short = _votes(graph, at, rows, label_of, group_of, n_classes, width)
    if len(short) and width < graph.k:
        votes[short] = _votes(graph, at[short], rows[short], label_of, group_of, n_classes,
                              graph.k)[0]  # fmt: skip
    # Smoothing: a tenth of the vote mass spread evenly, so no class has probability 0.
    votes += 0.1 * votes.sum(axis=1, keepdims=True).clip(min=1.0) / n_classes + 1e-9
    out: np.ndarray = votes / votes.sum(axis=1, keepdims=True)
    return out


def _votes(
    graph: NeighborGraph,
    at: np.ndarray,
    rows: np.ndarray,
    label_of: np.ndarray,
    group_of: np.ndarray,
    n_classes: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(votes (M, K), positions of the rows with fewer than VOTE_K usable neighbours) from
    the graph lines `at` of `rows`, over the first `width` columns."""
    n = len(group_of) - 1
    indices, distances = graph.indices[at, :width], graph.distances[at, :width]
    nbr = np.where((indices >= 0) & (at >= 0)[:, None], indices, n)
    own = group_of[rows][:, None]
    usable = (label_of[nbr] >= 0) & (nbr != rows[:, None])
    usable &= ~((own >= 0) & (group_of[nbr] == own))
    taken = np.cumsum(usable, axis=1)
    short = np.flatnonzero(taken[:, -1] < VOTE_K) if width else np.arange(len(rows))
    usable &= taken <= VOTE_K
    weight = np.where(usable, 1.0 / (distances + 0.05), 0.0)
    cell = np.arange(len(rows))[:, None] * n_classes + np.maximum(label_of[nbr], 0)
    votes = np.bincount(cell.ravel(), weights=weight.ravel(), minlength=len(rows) * n_classes)
    return votes.reshape(len(rows), n_classes), short


def overlapping_classes(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(K, K) float: where classes i and j overlap (see the module doc), the lesser of the two
    ways of `class_ratios`; 0 elsewhere (the diagonal, classes under MIN_OVERLAP_SAMPLES,
    pairs under OVERLAP_RATIO)."""
    ratio, counts = class_ratios(y, probs)
    mutual: np.ndarray = np.minimum(ratio, ratio.T)
    enough = counts >= MIN_OVERLAP_SAMPLES
    mutual[~(enough[:, None] & enough[None, :]) | (mutual < OVERLAP_RATIO)] = 0.0
    np.fill_diagonal(mutual, 0.0)
    return mutual


def class_ratios(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((K, K) mean p(j) over the samples labelled i, per mean p(i) over them; 0 for a class
    without samples), (K,) samples per class), from one sorted pass over `probs`."""
    k = probs.shape[1]
    counts = np.bincount(y, minlength=k)
    present = np.flatnonzero(counts)
    means = np.zeros((k, k))
    starts = (np.cumsum(counts) - counts)[present]
    ordered = probs[np.argsort(y, kind="stable")]
    means[present] = np.add.reduceat(ordered, starts, axis=0) / counts[present, None]
    own = np.diagonal(means)
    ratio: np.ndarray = np.divide(means, own[:, None], out=np.zeros_like(means),
                                  where=own[:, None] > 0)  # fmt: skip
    return ratio, counts


def _overlap_frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["class_a", "class_b", "ratio_ab", "ratio_ba"])


def _overlap_issues(
    ids: np.ndarray, y: np.ndarray, probs: np.ndarray, names: np.ndarray, mutual: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(issue rows, overlaps frame): a row per sample of a class that overlaps another."""
    ratio, counts = class_ratios(y, probs)
    pairs = np.argwhere(np.triu(mutual) > 0)
    frame = _overlap_frame([(str(names[i]), str(names[j]), float(ratio[i, j]),
                             float(ratio[j, i])) for i, j in pairs])  # fmt: skip
    details = {}
    for c in np.flatnonzero(mutual.max(axis=1) > 0):
        name, partners = str(names[c]), np.flatnonzero(mutual[c])
        listed = ", ".join(f"{str(names[j])!r}" for j in partners)
        shares = ", ".join(f"{str(names[j])!r} {ratio[c, j]:.2f}x" for j in partners)
        details[int(c)] = (
            f"the label model cannot tell class {name!r} from {listed}: on the {counts[c]} "
            f"samples labelled {name!r} it gives {shares} the probability it gives {name!r}, "
            f"and likewise the other way{OVERLAP_SHARED}"
        )
    rows = np.flatnonzero(np.isin(y, list(details)))
    score = mutual.max(axis=1)[y[rows]]
    issues = issue_frame(ids[rows], "overlapping_classes", score, [details[c] for c in y[rows]])
    return issues, frame


def _result(
    table: pd.DataFrame,
    rows: np.ndarray,
    classes: tuple[str, ...],
    y: np.ndarray,
    probs: np.ndarray,
    is_issue: np.ndarray,
) -> LabelIssueResult:
    names = np.asarray(classes, dtype=object)
    p_given = probs[np.arange(len(y)), y]
    others = probs.copy()
    others[np.arange(len(y)), y] = -1.0
    best = others.argmax(axis=1)
    mutual = overlapping_classes(y, probs)
    is_issue = is_issue & (mutual[y, best] == 0)  # no label issue between overlapping classes
    # Each column filled as an array, then one frame: six `.loc` writes into the empty
    # frame were 30 ms at 50k rows, a sixth of a rescan's label stage.
    columns = _empty_columns(table)
    columns["scored"][rows] = True
    columns["given_label"][rows] = names[y]
    columns["suggested_label"][rows] = names[best]
    columns["p_given"][rows] = p_given
    columns["p_suggested"][rows] = others[np.arange(len(y)), best]
    columns["is_issue"][rows] = is_issue
    scores = pd.DataFrame(columns)
    flagged = np.flatnonzero(is_issue)
    details = [
        f"given {names[y[i]]}, model says {names[best[i]]} (p={others[i, best[i]]:.2f}; "
        f"p(given)={p_given[i]:.2f})"
        for i in flagged
    ]
    ids = table["sample_id"].to_numpy()[rows]
    issues = issue_frame(ids[flagged], "label_issue", 1.0 - p_given[flagged], details)
    log.info("%d label issues among %d labelled samples", len(flagged), len(rows))
    if not mutual.any():
        return LabelIssueResult(scores=scores, classes=classes, pred_probs=probs, issues=issues)
    overlap_rows, overlaps = _overlap_issues(ids, y, probs, names, mutual)
    log.info("%d pairs of classes the label model cannot tell apart", len(overlaps))
    issues = concat_issues([issues, overlap_rows])
    return LabelIssueResult(scores=scores, classes=classes, pred_probs=probs, issues=issues,
                            overlaps=overlaps)  # fmt: skip


def _empty_columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The scores' columns before any row is scored (fresh arrays, to fill in place)."""
    n = len(table)
    return {
        "sample_id": table["sample_id"].to_numpy(),
        "scored": np.zeros(n, dtype=bool),
        "given_label": table["label"].to_numpy().astype(object),
        "suggested_label": np.full(n, "", dtype=object),
        "p_given": np.full(n, np.nan),
        "p_suggested": np.full(n, np.nan),
        "is_issue": np.zeros(n, dtype=bool),
    }


def _empty(table: pd.DataFrame, classes: tuple[str, ...]) -> LabelIssueResult:
    scores = pd.DataFrame(_empty_columns(table))
    probs = np.zeros((0, len(classes)))
    return LabelIssueResult(scores=scores, classes=classes, pred_probs=probs, issues=empty_issues())
