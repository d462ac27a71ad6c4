"""Mixing strategies on a known utility matrix; size matching; the manifest."""

import pandas as pd
import pytest

from supernova.errors import ParamsError
from supernova.mix import MixConfig, allocate, choose_tasks, draw_items, manifest, subtasks_without_task
from supernova.utility import matrix, mean_by_task

# utility[source][target]: a is best on average, b is best on t2 only, c is best on t3 only.
U = {"a": {"t1": 0.30, "t2": 0.10, "t3": 0.10},
     "b": {"t1": 0.00, "t2": 0.20, "t3": -0.10},
     "c": {"t1": 0.10, "t2": -0.20, "t3": 0.25},
     "d": {"t1": -0.10, "t2": 0.00, "t3": 0.00}}


def utility_table():
    rows = []
    for s, row in U.items():
        for t, u in row.items():
            for seed, jitter in ((0, -0.01), (1, 0.01)):
                rows.append({"source_task": s, "target_task": t, "seed": seed, "metric": "pass@1", "base": 0.2,
                             "trained": 0.2 + u + jitter, "utility": u + jitter, "ci_low": u - 0.1,
                             "ci_high": u + 0.1, "n_items": 16, "method": "rl", "seconds": 60.0})
    return pd.DataFrame(rows)


def probed(task, n):
    return pd.DataFrame({"uid": [f"{task}{i}" for i in range(n)], "task": task, "skill": f"skill_{task}",
                         "kept": [i % 4 != 3 for i in range(n)], "pass_rate": 0.5})


def test_matrix_averages_seeds_and_reports_spread():
    m = matrix(utility_table(), "pass@1")
    row = m[(m.source_task == "a") & (m.target_task == "t1")].iloc[0]
    assert row.utility == pytest.approx(0.30) and row.spread == pytest.approx(0.01) and row.seeds == 2
    assert mean_by_task(m)["source_task"].tolist() == ["a", "c", "b", "d"]


@pytest.mark.parametrize("strategy,k,expected", [
    ("micro", 1, ["a", "b", "c"]),      # top-1 per target: t1->a, t2->b, t3->c
    ("macro", 1, ["a"]),
    ("macro", 2, ["a", "c"]),
    ("bottom", 1, ["d"]),
    ("bottom", 2, ["b", "d"]),
    ("all", 1, ["a", "b", "c", "d"]),
])
def test_strategies(strategy, k, expected):
    why = choose_tasks(matrix(utility_table(), "pass@1"), MixConfig(strategy=strategy, k=k))
    assert list(why) == expected


def test_micro_records_why():
    why = choose_tasks(matrix(utility_table(), "pass@1"), MixConfig(strategy="micro", k=1))
    assert why["b"]["chosen_for"] == {"t2": {"rank": 1, "utility": 0.2}}
    assert why["a"]["mean_utility"] == pytest.approx(0.1667, abs=1e-4)


def test_micro_counts_only_gains_and_breaks_ties_by_mean_utility():
    u = {"a": {"t1": 0.1, "t2": 0.0}, "b": {"t1": 0.1, "t2": 0.0}, "c": {"t1": 0.0, "t2": 0.0}}
    u["a"]["t3"], u["b"]["t3"], u["c"]["t3"] = -0.1, 0.2, 0.0
    m = pd.DataFrame([{"source_task": s, "target_task": t, "utility": v, "spread": 0.0, "seeds": 1}
                      for s, row in u.items() for t, v in row.items()])
    why = choose_tasks(m, MixConfig(strategy="micro", k=1))
    # t1: a and b tie at 0.1, b has the higher mean; t2: nobody improves, so it adds no task
    assert why == {"b": {"chosen_for": {"t1": {"rank": 1, "utility": 0.1}, "t3": {"rank": 1, "utility": 0.2}},
                         "mean_utility": 0.1}}
    fallback = choose_tasks(m.assign(utility=-0.1), MixConfig(strategy="micro", k=1))
    assert list(fallback) == ["a"] and "min_utility" in fallback["a"]["fallback"]


def test_micro_ranks_a_low_snr_subtask_by_the_mean_and_the_manifest_says_so():
    m = matrix(utility_table(), "pass@1").assign(snr=lambda d: [0.5 if t == "t3" else 9.0 for t in d.target_task])
    m["low_snr"] = m["snr"] < 2
    why = choose_tasks(m, MixConfig(strategy="micro", k=1))
    # t3's own leader is c; its cells are noise there, so the best mean over sub-tasks (a) is chosen
    assert list(why) == ["a", "b"]
    assert why["a"]["chosen_for"]["t3"]["ranked_by"] == "mean over sub-tasks (low SNR here)"
    assert "ranked_by" not in why["a"]["chosen_for"]["t1"]
    from supernova.mix import low_snr

    assert low_snr(m) == {"t3": 0.5}
    items = pd.DataFrame({"uid": ["a0", "b0"], "task": ["a", "b"]})
    man = manifest(MixConfig(), why, items, {"a": probed("a", 4), "b": probed("b", 4)}, "x", "sha", "rl", {},
                   noisy=low_snr(m))
    assert "t3" in man["low_snr_subtasks"] and "mean over sub-tasks" in man["low_snr_subtasks"]["t3"]


def test_random_is_seeded_and_manual_checks_names():
    m = matrix(utility_table(), "pass@1")
    r1 = choose_tasks(m, MixConfig(strategy="random", k=2, seed=3))
    assert r1 == choose_tasks(m, MixConfig(strategy="random", k=2, seed=3)) and len(r1) == 2
    assert list(choose_tasks(m, MixConfig(strategy="manual", manual_tasks=("d",)))) == ["d"]
    with pytest.raises(ParamsError, match="mix.manual_tasks"):
        choose_tasks(m, MixConfig(strategy="manual", manual_tasks=("zzz",)))


def test_allocate_matches_total_respects_cap_and_availability():
    assert allocate({"a": 100, "b": 100}, 10, None) == {"a": 5, "b": 5}
    assert allocate({"a": 2, "b": 100}, 10, None) == {"a": 2, "b": 8}
    assert allocate({"a": 100, "b": 100, "c": 100}, 10, 3) == {"a": 3, "b": 3, "c": 3}
    assert sum(allocate({"a": 7, "b": 5, "c": 1}, 11, None).values()) == 11


def test_draw_items_uses_only_kept_items_and_matches_size():
    pr = {"a": probed("a", 20), "c": probed("c", 20)}
    items = draw_items(pr, ["a", "c"], MixConfig(total_size=12))
    assert len(items) == 12 and set(items["task"]) == {"a", "c"}
    kept = set(pd.concat(pr.values()).query("kept")["uid"])
    assert set(items["uid"]) <= kept
    assert items["uid"].tolist() == draw_items(pr, ["a", "c"], MixConfig(total_size=12))["uid"].tolist()


def test_manifest_records_counts_and_hash():
    pr = {"a": probed("a", 8)}
    items = draw_items(pr, ["a"], MixConfig(total_size=4))
    man = manifest(MixConfig(strategy="macro"), {"a": {"rank": 1, "mean_utility": 0.2}}, items, pr, "f.parquet", "abc",
                   "rl utility at pass@1", {"anti_prior": 0})
    assert man["tasks"] == [{"task": "a", "skill": "skill_a", "items": 4, "kept_available": 6, "base_pass_rate": 0.5,
                             "rank": 1, "mean_utility": 0.2}]
    assert man["items_sha256"] == "abc" and man["total_items"] == 4


def cells(spec):
    """spec[source][target] = (utility, ci_low, net_utility, net_ci_low) -> matrix and task means."""
    m = pd.DataFrame([{"source_task": s, "target_task": t, "utility": u, "ci_low": lo, "net_utility": nu,
                       "net_ci_low": nlo} for s, row in spec.items() for t, (u, lo, nu, nlo) in row.items()])
    tasks = m.groupby("source_task").agg(mean_utility=("utility", "mean"), ci_low=("ci_low", "mean"),
                                         net_mean_utility=("net_utility", "mean"),
                                         net_ci_low=("net_ci_low", "mean")).reset_index()
    return m, tasks


# a: high but noisy gains; b: smaller, tightly measured gains; on t2 nothing is separable from 0
SPEC = {"a": {"t1": (0.20, -0.05, 0.10, -0.15), "t2": (0.10, -0.02, 0.00, -0.12)},
        "b": {"t1": (0.12, 0.04, 0.02, -0.01), "t2": (0.05, -0.01, -0.05, -0.11)}}


def test_lcb_selection_prefers_the_separable_gain_and_says_why_a_subtask_adds_nothing():
    m, tasks = cells(SPEC)
    assert list(choose_tasks(m, MixConfig(strategy="micro"), tasks)) == ["a"]       # by the point estimate
    lcb = MixConfig(strategy="micro", select_by="lcb")
    why = choose_tasks(m, lcb, tasks)
    assert why == {"b": {"chosen_for": {"t1": {"rank": 1, "utility_lcb": 0.04}}, "mean_utility_lcb": 0.015}}
    without = subtasks_without_task(m, lcb, tasks)
    assert list(without) == ["t2"] and "lower 95% bound" in without["t2"] and "best: b, -0.0100" in without["t2"]
    assert list(choose_tasks(m, MixConfig(strategy="macro", select_by="lcb"), tasks)) == ["b"]
    assert subtasks_without_task(m, MixConfig(strategy="micro"), tasks) == {}


def test_ranking_net_of_the_control():
    m, tasks = cells(SPEC)
    # net of the control only a's t1 gain (0.10) and b's (0.02) are gains; t2 has none
    why = choose_tasks(m, MixConfig(strategy="micro"), tasks, baseline="control")
    assert list(why) == ["a"] and why["a"]["chosen_for"] == {"t1": {"rank": 1, "utility": 0.1}}
    assert "net of the format control" in subtasks_without_task(m, MixConfig(strategy="micro"), tasks,
                                                                baseline="control")["t2"]
    # no separable net gain anywhere: micro falls back to macro's choice, and says so
    fb = choose_tasks(m, MixConfig(strategy="micro", select_by="lcb"), tasks, baseline="control")
    assert list(fb) == ["b"] and "fallback" in fb["b"]


def test_lcb_without_confidence_intervals_is_an_error():
    m, tasks = cells(SPEC)
    with pytest.raises(ParamsError, match="mix.select_by"):
        choose_tasks(m.assign(ci_low=float("nan")), MixConfig(select_by="lcb"), tasks.assign(ci_low=float("nan")))
    with pytest.raises(ParamsError, match="score.baseline"):
        choose_tasks(m.assign(net_utility=float("nan")), MixConfig(), tasks, baseline="control")
    with pytest.raises(ParamsError, match="mix.select_by"):
        MixConfig(select_by="median")
