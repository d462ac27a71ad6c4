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
