import math

import numpy as np
import pytest

from supernova.stats import bbeh_adjusted_harmonic_mean, bootstrap_ci, bootstrap_diff_ci, chance_pass_at_k, pass_at_k


@pytest.mark.parametrize("n,c,k,expected", [
    (8, 0, 1, 0.0), (8, 8, 8, 1.0), (8, 2, 1, 0.25), (8, 1, 8, 1.0), (4, 1, 2, 0.5), (8, 7, 2, 1.0),
    (10, 3, 3, 1 - math.comb(7, 3) / math.comb(10, 3)),
])
def test_pass_at_k_unbiased(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_matches_sampling_without_replacement():
    rng = np.random.default_rng(0)
    samples = np.array([1] * 3 + [0] * 5)
    hits = [samples[rng.choice(8, 2, replace=False)].max() for _ in range(20000)]
    assert pass_at_k(8, 3, 2) == pytest.approx(np.mean(hits), abs=0.01)


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 8)


def test_bootstrap_ci_contains_mean_and_narrows_with_more_items():
    rng = np.random.default_rng(1)
    small, large = rng.random(20), rng.random(2000)
    lo, hi = bootstrap_ci(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo


def test_paired_diff_ci_is_zero_width_for_identical_inputs():
    v = np.linspace(0, 1, 30)
    assert bootstrap_diff_ci(v, v) == (0.0, 0.0)


def test_bbeh_adjusted_harmonic_mean_is_hm_of_percent_plus_one_with_nothing_subtracted():
    # BBEH: HM over sub-tasks of (accuracy% + 1); in fractions HM(100 v + 1) / 100
    assert bbeh_adjusted_harmonic_mean([0.0, 0.0]) == pytest.approx(0.01)
    assert bbeh_adjusted_harmonic_mean([0.0, 0.9]) == pytest.approx(2 / (1 / 1 + 1 / 91) / 100)
    assert bbeh_adjusted_harmonic_mean([0.2, 0.8]) < 0.5 + 0.01
    assert bbeh_adjusted_harmonic_mean([0.5, 0.5]) == pytest.approx(0.51)


@pytest.mark.parametrize("options,k,expected", [(4, 1, 0.25), (4, 8, 1 - 0.75 ** 8), (2, 2, 0.75), (0, 8, 0.0)])
def test_chance_pass_at_k_of_a_uniform_guesser(options, k, expected):
    assert chance_pass_at_k(options, k) == pytest.approx(expected)
    assert chance_pass_at_k(4, 8) > 0.89        # pass@8 on 4 options: about 90% for a guesser


def _seed_dominated(rng, seeds, items=96, seed_sd=0.1, gain=0.05, n=8):
    p = rng.uniform(0.2, 0.6, items)
    base = rng.binomial(n, p) / n
    delta = rng.normal(0, seed_sd, seeds)
    return rng.binomial(n, np.clip(p[None] + gain + delta[:, None], 0, 1)) / n, base


def test_hierarchical_bootstrap_covers_a_known_gain_despite_seed_variance():
    """Synthetic runs with a known gain (0.05) and a seed effect (sd 0.1) larger than the item
    noise: the seeds x items bootstrap covers close to 95%; averaging per-seed item-bootstrap
    bounds (the old table) misses the seed variance and covers far less."""
    from supernova.stats import hierarchical_bootstrap

    rng = np.random.default_rng(7)
    hits = hits_avg = 0
    sims = 200
    for i in range(sims):
        trained, base = _seed_dominated(rng, seeds=6)
        reps = hierarchical_bootstrap([trained], base, np.zeros(len(base), int), iters=400, seed=i)[:, 0, 0]
        lo, hi = np.quantile(reps, [0.025, 0.975])
        hits += lo <= 0.05 <= hi
        bounds = np.array([bootstrap_diff_ci(t, base, iters=400, seed=i) for t in trained])
        hits_avg += bounds[:, 0].mean() <= 0.05 <= bounds[:, 1].mean()
    assert 0.88 <= hits / sims <= 0.99
    assert hits_avg / sims < 0.8


def test_hierarchical_bootstrap_covers_the_mean_over_subtasks_with_a_seed_effect_shared_by_all():
    """A run's seed effect (sd 0.1) moves all four sub-tasks of that run together, as one trained
    model is scored on every sub-task. One seed draw per replicate, shared by the sub-tasks, keeps
    that variance in the mean over sub-tasks; a fresh draw per sub-task would average it away and
    the interval of the mean would cover far below 95%."""
    from supernova.stats import hierarchical_bootstrap

    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(4), 24)
    hits, sims = 0, 200
    for i in range(sims):
        trained, base = _seed_dominated(rng, seeds=6, items=len(groups))
        reps = hierarchical_bootstrap([trained], base, groups, iters=400, seed=i)[:, 0, :].mean(axis=1)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        hits += lo <= 0.05 <= hi
    assert 0.88 <= hits / sims <= 0.99


def test_hierarchical_bootstrap_keeps_units_paired():
    from supernova.stats import hierarchical_bootstrap

    rng = np.random.default_rng(0)
    a = rng.random((3, 20))
    reps = hierarchical_bootstrap([a, a + 0.1], rng.random(20), np.repeat([0, 1], 10), iters=200)
    assert reps.shape == (200, 2, 2)
    # the same seeds resampled differently per unit, but the same items: a constant shift of 0.1
    # survives only up to the seed draw, so the two units' replicates are strongly correlated
    assert np.corrcoef(reps[:, 0, 0], reps[:, 1, 0])[0, 1] > 0.5


def test_spearman_ci_and_t_ci():
    from supernova.stats import mean_t_ci, spearman_brown, spearman_ci

    rho, lo, hi = spearman_ci(np.arange(10), np.arange(10) + np.random.default_rng(0).normal(0, 1, 10))
    assert lo <= rho <= hi and rho > 0.8
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    m, lo, hi = mean_t_ci([0.1, 0.2, 0.3])
    assert m == pytest.approx(0.2) and lo < 0.2 < hi and hi - lo == pytest.approx(2 * 4.303 * 0.1 / 3 ** 0.5, rel=1e-3)


def test_spearman_brown_stays_within_a_correlations_bounds():
    """2r / (1 + r) leaves [-1, 1] for r < -1/3 (r = -0.58 gave -2.76). The projection is bounded
    and non-decreasing; a negative split-half correlation projects to 0 (no reliability)."""
    from supernova.stats import spearman_brown

    rs = np.linspace(-1, 1, 201)
    proj = np.array([spearman_brown(r) for r in rs])
    assert ((proj >= -1) & (proj <= 1)).all() and (np.diff(proj) >= 0).all()
    assert spearman_brown(-0.58) == 0.0 and spearman_brown(-1.0) == 0.0 and spearman_brown(0.0) == 0.0
    assert spearman_brown(1.0) == 1.0 and spearman_brown(0.25) == pytest.approx(0.4)
    assert math.isnan(spearman_brown(float("nan")))
