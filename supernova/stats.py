"""pass@k, bootstrap confidence intervals and the means reported over sub-tasks."""

from __future__ import annotations

from math import comb
from typing import Iterable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k), from n samples with c correct."""
    if k > n:
        raise ValueError(f"k={k} exceeds the number of samples n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k_items(n: Sequence[int], c: Sequence[int], k: int) -> np.ndarray:
    """Per-item pass@k."""
    return np.array([pass_at_k(int(ni), int(ci), k) for ni, ci in zip(n, c)], dtype=float)


def bootstrap_ci(values: Sequence[float], *, iters: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampling items)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(iters, len(v)))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], *, iters: int = 1000, alpha: float = 0.05,
                      seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap CI of mean(a) - mean(b) over the same items."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(iters, len(a)))
    d = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2))


def arithmetic_mean(values: Iterable[float]) -> float:
    v = list(values)
    return float(np.mean(v)) if v else float("nan")


def bbeh_adjusted_harmonic_mean(values: Iterable[float]) -> float:
    """BBEH's headline aggregate over sub-tasks, as BBEH defines it: the harmonic mean of
    (accuracy in % + 1), so that one sub-task at 0 does not zero the whole mean; nothing is
    subtracted afterwards. Takes and returns fractions: HM(100·v + 1) / 100 (a model at 0
    everywhere scores 0.01, printed as 1.0)."""
    v = np.asarray(list(values), dtype=float)
    if len(v) == 0:
        return float("nan")
    return float(len(v) / np.sum(1.0 / (v + 0.01)))


def chance_pass_at_k(options: int, k: int) -> float:
    """pass@k of a uniform guesser among ``options`` choices (0 for a free-form answer)."""
    return 0.0 if options < 1 else 1.0 - (1.0 - 1.0 / options) ** k


def spearman_ci(x: Sequence[float], y: Sequence[float], *, iters: int = 2000, alpha: float = 0.05,
                seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho of paired ``x``, ``y`` (scipy) with a percentile bootstrap CI over pairs.

    scipy's ``bootstrap`` returns no interval once one resample is undefined (all its x or all its
    y equal, likely with few pairs); those resamples are left out here instead."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return (float("nan"),) * 3
    rho = float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    stats = []
    for idx in rng.integers(0, len(x), size=(iters, len(x))):
        xs, ys = x[idx], y[idx]
        if np.ptp(xs) > 0 and np.ptp(ys) > 0:
            stats.append(spearmanr(xs, ys).statistic)
    if not stats:
        return rho, float("nan"), float("nan")
    return rho, float(np.nanquantile(stats, alpha / 2)), float(np.nanquantile(stats, 1 - alpha / 2))


def spearman_brown(r: float) -> float:
    """Reliability of the whole from the correlation ``r`` between two halves: 2r / (1 + r) for
    r >= 0, and 0 for r < 0; always in [0, 1].

    The formula assumes two halves that measure the same thing with independent noise, whose
    correlation is then the share of true variance, never below 0. A negative observed ``r`` is
    noise around a reliability of about 0, and doubling the data would not make the halves
    disagree more, so it projects to 0 (2r / (1 + r) itself falls below -1 for r < -1/3); the
    split-half correlation, reported beside the projection, keeps its sign."""
    if not np.isfinite(r):
        return float("nan")
    return 0.0 if r <= 0 else float(min(2 * r / (1 + r), 1.0))


def hierarchical_bootstrap(per_seed: Sequence[np.ndarray], base: np.ndarray, groups: np.ndarray, *,
                           iters: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the mean gain over ``base``, resampling seeds *and* items.

    ``per_seed[j]`` is an array (seeds_j, items) of per-item scores of unit ``j`` (a source task),
    one row per independent training seed; ``base`` is the reference's per-item scores (items,);
    ``groups`` (items,) assigns every item to a group (a target sub-task). Each replicate draws,
    per unit, its seeds with replacement once, and that draw holds for every group: a seed is one
    trained model scored on every group, so its effect is shared by the groups and stays in the
    mean over them. Different units are different runs and draw their seeds independently.
    Items are drawn with replacement within each group, the same draw for every unit and the
    reference, so differences between units stay paired. Returns (iters, units, n_groups): the
    replicate's mean over drawn seeds and drawn items of the unit's scores minus the reference's,
    per group (groups in sorted order). Seed-to-seed variance is therefore inside the interval,
    which averaging per-seed CI bounds leaves out. The seed level is rescaled by sqrt(s / (s - 1))
    around the replicate's all-seed mean, so that resampling a handful of seeds does not shrink
    their variance by (s - 1) / s. (scipy's ``bootstrap`` resamples one level only.)
    """
    rng = np.random.default_rng(seed)
    labels = np.unique(groups)
    w_seeds = [None if m.shape[0] < 2 else
               np.stack([np.bincount(rng.integers(0, m.shape[0], m.shape[0]), minlength=m.shape[0])
                         for _ in range(iters)]) / m.shape[0] for m in per_seed]      # per unit: (iters, seeds)
    out = np.empty((iters, len(per_seed), len(labels)))
    for g, label in enumerate(labels):
        cols = np.flatnonzero(groups == label)
        n = len(cols)
        w_items = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(iters)]) / n
        ref = w_items @ base[cols]
        for j, scores in enumerate(per_seed):
            s = scores.shape[0]
            item_means = w_items @ scores[:, cols].T                       # (iters, seeds)
            mean = item_means.mean(axis=1)
            if w_seeds[j] is not None:
                mean = mean + np.sqrt(s / (s - 1)) * ((w_seeds[j] * item_means).sum(axis=1) - mean)
            out[:, j, g] = mean - ref
    return out


def mean_t_ci(values: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean of independent replicates (e.g. one value per training seed) with its Student-t CI
    (scipy); NaN bounds for fewer than two values, a zero-width CI for values that are all equal."""
    from scipy.stats import ttest_1samp

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return (float(v.mean()) if len(v) else float("nan"), float("nan"), float("nan"))
    if np.ptp(v) == 0:
        return (float(v[0]),) * 3
    ci = ttest_1samp(v, 0.0).confidence_interval(1 - alpha)
    return float(v.mean()), float(ci.low), float(ci.high)
