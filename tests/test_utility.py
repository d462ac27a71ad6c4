"""The utility matrix from per-item runs: hierarchical CIs, the format control's bookkeeping,
separation of the top task, reliability of the ranking, and the stage's error on a missing item."""

import numpy as np
import pandas as pd
import pytest

from supernova.errors import InputError
from supernova.schema import METRICS
from supernova.schema import SCORE_EVAL, SCORE_LIKELIHOOD, TASK_UTILITY, UTILITY_MATRIX, conform
from supernova.scoring import ScoreConfig
from supernova.utility import (build, decision_accuracy, estimate, in_task_gain, item_scores, learning,
                               learning_by_metric, likelihood_scores, reliability, signal_noise)

TARGETS = {"t1": 24, "t2": 24}


def base_rows(rng, p=0.3, n=8):
    return pd.DataFrame([{"model": "base", "task": t, "uid": f"{t}-{i}", "n": n,
                          "correct": int(rng.binomial(n, p)), "parsed": n // 2, "sample": ""}
                         for t, m in TARGETS.items() for i in range(m)])


def runs(rng, gains: dict, seeds=(0, 1, 2), seed_sd=0.0, p=0.3, n=8, parsed=8):
    out = []
    for task, g in gains.items():
        for s in seeds:
            shift = rng.normal(0, seed_sd)
            for t, m in TARGETS.items():
                gain = g[t] if isinstance(g, dict) else g
                for i in range(m):
                    out.append({"model": f"score:{task}", "task": t, "uid": f"{t}-{i}", "n": n, "parsed": parsed,
                                "correct": int(rng.binomial(n, np.clip(p + gain + shift, 0, 1))), "sample": "",
                                "source_task": task, "seed": s, "round": "r0"})
    return pd.DataFrame(out)


def test_net_of_control_is_raw_minus_control_in_every_cell_and_the_control_is_never_a_source():
    rng = np.random.default_rng(0)
    items = runs(rng, {"a": 0.3, "b": 0.25, "format_control": 0.2})
    sc = item_scores(items, base_rows(rng), ["a", "b", "format_control"], 1, file="x")
    est = estimate(sc, ["a", "b"], "format_control", "pass@1", iters=300)
    conform(est.matrix, UTILITY_MATRIX)
    conform(est.tasks, TASK_UTILITY)
    m = est.matrix
    assert set(m["source_task"]) == {"a", "b"}
    np.testing.assert_allclose(m["net_utility"], m["utility"] - m["control_utility"])
    assert (m["utility"] > 0.1).all()          # raw: every cell positive, as with format learning
    assert (m["net_utility"] < m["utility"]).all() and (m["net_ci_low"] <= m["net_utility"]).all()
    assert m["seeds"].eq(3).all() and m["parse_rate"].eq(1.0).all()


def test_without_a_control_net_columns_are_empty():
    rng = np.random.default_rng(1)
    sc = item_scores(runs(rng, {"a": 0.2, "b": 0.1}), base_rows(rng), ["a", "b"], 1, file="x")
    est = estimate(sc, ["a", "b"], None, "pass@1", iters=100)
    assert est.matrix["net_utility"].isna().all() and est.tasks["net_mean_utility"].isna().all()


def test_separation_flags_a_clear_leader_only():
    rng = np.random.default_rng(2)
    gains = {"a": {"t1": 0.45, "t2": 0.05}, "b": {"t1": 0.05, "t2": 0.06}, "c": {"t1": 0.0, "t2": 0.05}}
    sc = item_scores(runs(rng, gains), base_rows(rng), list(gains), 1, file="x")
    sep = estimate(sc, list(gains), None, "pass@1", iters=500).separation
    assert sep["t1"]["top"] == "a" and sep["t1"]["separable"] and sep["t1"]["ci_low"] > 0
    assert not sep["t2"]["separable"] and sep["t2"]["ci_low"] <= 0 <= sep["t2"]["ci_high"]


def test_reliability_is_high_for_distinct_tasks_and_near_zero_for_identical_ones():
    rng = np.random.default_rng(3)
    distinct = {f"s{i}": 0.08 * i for i in range(6)}
    same = {f"s{i}": 0.1 for i in range(6)}
    base = base_rows(rng)
    hi = reliability(item_scores(runs(rng, distinct, seeds=(0, 1, 2, 3)), base, list(distinct), 1, file="x"),
                     list(distinct), splits=40)
    lo = reliability(item_scores(runs(rng, same, seeds=(0, 1, 2, 3)), base, list(same), 1, file="x"),
                     list(same), splits=40)
    assert hi["halves"] == "seeds" and hi["reliability"] > 0.9 and hi["reliability_ci_low"] > 0.5
    assert abs(lo["split_half_spearman"]) < 0.4 and lo["split_half_ci_low"] < 0 and lo["reliability_ci_low"] == 0
    one_seed = item_scores(runs(rng, distinct, seeds=(0,)), base, list(distinct), 1, file="x")
    items = reliability(one_seed, list(distinct), splits=40, halves="items")
    assert items["halves"] == "items" and items["reliability"] > 0.8
    assert reliability(one_seed, list(distinct), splits=40)["halves"] is None      # no seed halves of one seed


def likelihood_rows(rng, gains: dict, seeds=(0, 1, 2), seed_sd=0.0, steps=(3, 4), item_sd=0.3, metric_value=-2.0):
    """SCORE_LIKELIHOOD rows of the dev split: each item's gold log-prob is its base value plus the
    task's gain, the run's seed effect, and per checkpoint a little noise."""
    base = {f"{t}-{i}": metric_value + rng.normal(0, item_sd) for t, m in TARGETS.items() for i in range(m)}
    out = []
    for task, g in gains.items():
        for s in seeds:
            shift = rng.normal(0, seed_sd)
            for step in steps:
                for t, m in TARGETS.items():
                    gain = g[t] if isinstance(g, dict) else g
                    for i in range(m):
                        uid = f"{t}-{i}"
                        out.append({"model": f"score:{task}", "task": t, "uid": uid, **dict.fromkeys(METRICS, np.nan),
                                    "gold_logprob_token": base[uid] + gain + shift + rng.normal(0, 0.01),
                                    "source_task": task, "seed": s, "round": "r0", "split": "dev", "step": step})
    base_tf = pd.DataFrame([{"model": "base", "task": u.split("-")[0], "uid": u, **dict.fromkeys(METRICS, np.nan),
                             "gold_logprob_token": v} for u, v in base.items()])
    return pd.DataFrame(out), base_tf


def build_inputs(rng, gains, seeds):
    items = runs(rng, gains, seeds=seeds)
    util = items.groupby(["source_task", "seed", "round", "task"]).size().reset_index(name="n").rename(
        columns={"task": "target_task"}).assign(metric="pass@1", utility=0.0)
    lik, base_tf = likelihood_rows(rng, gains, seeds=seeds)
    conform(lik, SCORE_LIKELIHOOD)
    records = pd.DataFrame([{"source_task": t, "seed": s, "round": "r0", "steps": 4, "seconds": 1.0,
                             "reward_first": 0.1, "reward_last": 0.3, "zero_std_share": 0.5, "logprob_drift": 0.1}
                            for t in gains for s in seeds])
    return util, items, lik, base_tf.iloc[:0], base_rows(rng), base_tf, records


def test_one_seed_reports_item_reliability_and_no_seed_reliability():
    """With one seed per task, splitting dev items of the same runs measures item noise only: it is
    reported as item_reliability; the seed-half reliability (would the ranking replicate with new
    runs?) needs two or more seeds per task and says so."""
    rng = np.random.default_rng(6)
    gains = {"a": 0.3, "b": 0.2, "c": 0.1}
    for seeds in ((0,), (0, 1)):
        util, items, lik, held, base, base_tf, records = build_inputs(rng, gains, seeds)
        metrics = build(util, items, lik, held, base, base_tf, records, list(gains), None,
                        ScoreConfig(tasks=tuple(gains), metric="pass@k"), {"a": 0.1, "b": 0.2, "c": 0.3}, iters=100)[2]
        assert metrics["item_reliability"]["halves"] == "items" and metrics["item_reliability"]["reliability"] > 0.5
        if len(seeds) == 1:
            assert metrics["reliability"]["halves"] is None and "seeds" in metrics["reliability"]["note"]
            # one run per task: the noise of the teacher-forced metric comes from its last checkpoints
            assert metrics["metrics"]["gold_logprob_token"]["snr"]["noise_from"] == "checkpoints"
        else:
            assert metrics["reliability"]["halves"] == "seeds"
            assert metrics["metrics"]["gold_logprob_token"]["snr"]["noise_from"] == "seeds"


def test_build_reports_reliability_separation_control_and_difficulty():
    rng = np.random.default_rng(4)
    gains = {"a": 0.3, "b": 0.2, "c": 0.1, "format_control": 0.15}
    util, items, lik, held, base, base_tf, records = build_inputs(rng, gains, (0, 1))
    m, tasks, metrics = build(util, items, lik, held, base, base_tf, records, ["a", "b", "c"], "format_control",
                              ScoreConfig(tasks=("a", "b", "c"), metric="pass@k"), {"a": 0.1, "b": 0.2, "c": 0.3},
                              iters=200)
    conform(m, UTILITY_MATRIX)
    conform(tasks, TASK_UTILITY)
    assert metrics["metric"] == "pass@1"
    assert metrics["best_task"] == "a" and metrics["reliability"]["halves"] == "seeds"
    assert metrics["control"]["seeds"] == 2 and set(metrics["control"]["utility"]) == set(TARGETS)
    assert metrics["tasks"]["a"]["net"]["value"] == pytest.approx(metrics["tasks"]["a"]["raw"]["value"]
                                                                  - np.mean(list(metrics["control"]["utility"].values())),
                                                                  abs=2e-4)
    assert metrics["difficulty_vs_utility"]["raw"]["spearman"] == pytest.approx(-1.0)
    assert metrics["parse_rate"]["base"] == {"t1": 0.5, "t2": 0.5}
    assert metrics["schedule"] == {"r0": {"tasks": ["a", "b", "c"], "runs": 6}}
    assert 0 <= metrics["separable_subtasks"] <= 2
    # every metric the runs have is reported; the continuous one ranks the three tasks as they are
    assert set(metrics["metrics"]) == {"pass@1", "gold_logprob_token"}
    tf = metrics["metrics"]["gold_logprob_token"]
    assert tf["decision_accuracy"]["overall"] == 1.0 and tf["reliability"]["reliability"] == 1.0
    assert metrics["runs"]["a/seed0"]["zero_std_share"] == 0.5


def test_mixing_ranks_by_the_chosen_metric():
    rng = np.random.default_rng(7)
    gains = {"a": 0.3, "b": 0.2, "c": 0.1}
    inputs = build_inputs(rng, gains, (0, 1))
    m, tasks, metrics = build(*inputs, list(gains), None, ScoreConfig(tasks=tuple(gains), metric="gold_logprob_token"),
                              {}, iters=100)
    assert metrics["metric"] == "gold_logprob_token" and set(m["metric"]) == {"gold_logprob_token"}
    assert list(tasks.sort_values("mean_utility", ascending=False)["source_task"]) == ["a", "b", "c"]
    # both metrics order a > b > c: every pair agrees with the sampled reference
    agree = metrics["agreement_with_pass_at_k"]
    assert agree["reference"] == "pass@1"
    tf = agree["metrics"]["gold_logprob_token"]
    assert tf["decision_accuracy"] == 1.0 and tf["spearman"] == 1.0
    assert 0 <= tf["decision_accuracy_ci_low"] <= tf["decision_accuracy_ci_high"] <= 1
    with pytest.raises(InputError, match="score.metric"):
        build(*inputs, list(gains), None, ScoreConfig(tasks=tuple(gains), metric="letter_norm_prob"), {}, iters=50)


def test_decision_accuracy_and_snr_separate_distinct_tasks_from_identical_ones():
    rng = np.random.default_rng(10)
    distinct = {f"s{i}": 0.2 * i for i in range(4)}
    same = {f"s{i}": 0.2 for i in range(4)}
    out = {}
    for name, gains in (("distinct", distinct), ("same", same)):
        lik, base_tf = likelihood_rows(rng, gains, seeds=(0, 1, 2, 3), seed_sd=0.05)
        sc = likelihood_scores(lik, base_tf, list(gains), "gold_logprob_token", file="x")
        out[name] = (decision_accuracy(sc, list(gains), splits=30), signal_noise(sc, list(gains), min_snr=2.0))
    da, snr = out["distinct"]
    assert da["overall"] == 1.0 and all(v == 1.0 for v in da["per_subtask"].values())
    assert snr["noise_from"] == "seeds" and snr["mean_over_subtasks"]["snr"] > 5 and snr["low_snr"] == []
    # spread 0.6 over a seed-to-seed sd near 0.05
    assert snr["per_subtask"]["t1"]["signal"] == pytest.approx(0.6, abs=0.1)
    da, snr = out["same"]
    assert da["overall"] < 0.9 and set(snr["low_snr"]) == set(TARGETS)


def test_in_task_gain_and_which_runs_learned():
    rng = np.random.default_rng(11)
    lik, base_tf = likelihood_rows(rng, {"a": 0.4, "b": 0.0}, seeds=(0, 1))
    held = lik.assign(split="heldout")
    base_held = base_tf.assign(task=lambda d: "a")                   # every held-out item is task a's
    held_b = held.assign(task="b")
    gains = in_task_gain(pd.concat([held[held.source_task == "a"].assign(task="a"),
                                    held_b[held_b.source_task == "b"]]),
                         pd.concat([base_held, base_tf.assign(task="b")]), ["gold_logprob_token"], iters=200)
    assert gains["a"]["gold_logprob_token"]["gain"] == pytest.approx(0.4, abs=0.02)
    assert gains["a"]["gold_logprob_token"]["ci_low"] > 0.3
    assert gains["b"]["gold_logprob_token"]["ci_low"] < 0 < gains["b"]["gold_logprob_token"]["ci_high"]
    learned = learning(gains, "letter_norm_prob")        # a metric the items lack: judged by gold log-prob
    assert learned["runs"] == 4 and learned["learned"] == 2
    assert learned["tasks"]["a"]["separable_from_0"] and not learned["tasks"]["b"]["separable_from_0"]
    assert learned["tasks"]["a"]["metric"] == "gold_logprob_token"
    assert learning_by_metric(gains) == {"gold_logprob_token": {"runs": 4, "learned": 2, "separable_tasks": ["a"]}}


def test_a_run_missing_a_dev_item_is_an_error_naming_the_task():
    rng = np.random.default_rng(5)
    items = runs(rng, {"a": 0.1})
    with pytest.raises(InputError, match="task a: field uid: seed 1: no result for dev item"):
        item_scores(items.drop(index=items.index[(items.seed == 1)][:1]), base_rows(rng), ["a"], 1, file="data/score")
    with pytest.raises(InputError, match="task b"):
        item_scores(items, base_rows(rng), ["a", "b"], 1, file="data/score")


def _equal_tasks(rng, seeds, seed_sd, targets=4, items=64, n=8):
    """Scores of two source tasks with the same true gain (0.05) on every dev item; each run
    (seed) adds its own effect, normal with sd ``seed_sd``, on all items."""
    from supernova.utility import Scores

    groups = np.repeat([f"t{i}" for i in range(targets)], items)
    p = rng.uniform(0.2, 0.6, len(groups))
    per_seed = [rng.binomial(n, np.clip(p[None] + 0.05 + rng.normal(0, seed_sd, (seeds, 1)), 0, 1)) / n
                for _ in range(2)]
    return Scores(units=["a", "b"], per_seed=per_seed, seeds=[list(range(seeds))] * 2,
                  parse=[np.ones_like(m) for m in per_seed], base=rng.binomial(n, p) / n,
                  base_parse=np.ones(len(groups)), groups=groups, targets=sorted(set(groups)))


def test_separation_of_equal_tasks_holds_the_nominal_rate_where_choosing_on_the_same_data_does_not():
    """Two tasks with the same true gain, one run each (item noise only): whichever comes out on
    top, a 95% interval of top - next computed on the data that chose the order excludes 0 about
    twice as often as the nominal 2.5% (the order is the noise's); chosen on one half of the dev
    items and tested on the other, at about the nominal rate."""
    from supernova.stats import hierarchical_bootstrap

    rng = np.random.default_rng(8)
    same = split = cases = 0
    for i in range(300):
        sc = _equal_tasks(rng, seeds=1, seed_sd=0.0)
        sep = estimate(sc, ["a", "b"], None, "pass@1", iters=200, seed=i).separation
        split += sum(v["separable"] for v in sep.values())
        reps = hierarchical_bootstrap(sc.per_seed, sc.base, sc.groups, iters=200, seed=i)
        for g, t in enumerate(sc.targets):
            cols = sc.groups == t
            a, b = (0, 1) if sc.per_seed[0][:, cols].mean() >= sc.per_seed[1][:, cols].mean() else (1, 0)
            same += np.quantile(reps[:, a, g] - reps[:, b, g], 0.025) > 0
            cases += 1
    assert same / cases > 0.045
    assert 0.01 < split / cases < 0.04
    assert {v["halves"] for v in sep.values()} == {"items"}


def test_separation_with_seeds_chooses_on_some_runs_and_tests_on_the_others():
    """With two or more seeds per task the halves are runs: two equal tasks whose runs differ by a
    seed effect are called separable at about the nominal rate, not at the rate of the runs' luck."""
    rng = np.random.default_rng(9)
    hits = cases = 0
    for i in range(100):
        sc = _equal_tasks(rng, seeds=4, seed_sd=0.05, items=24)
        sep = estimate(sc, ["a", "b"], None, "pass@1", iters=200, seed=i).separation
        assert {v["halves"] for v in sep.values()} == {"seeds"}
        hits += sum(v["separable"] for v in sep.values())
        cases += len(sep)
    assert hits / cases < 0.05
