"""Successive halving: the deterministic plan, promotion, and the schedule on synthetic tables."""

import numpy as np
import pandas as pd
import pytest

from supernova.errors import ParamsError
from supernova.halving import HalvingConfig, plan, promote, ranking, simulate, synthetic_table


def test_plan_halves_tasks_and_multiplies_new_seeds():
    rounds = plan(8, (0, 1), "halving", HalvingConfig(rounds=3, eta=2))
    assert [(p.round, p.tasks, p.seeds) for p in rounds] == [
        ("r0", 8, (0, 1)), ("r1", 4, (2, 3, 4, 5)), ("r2", 2, tuple(range(6, 14)))]
    assert sum(p.runs for p in rounds) == 48
    assert [p.tasks for p in plan(8, (0,), "exhaustive", HalvingConfig())] == [8, 0, 0]
    assert [p.tasks for p in plan(8, (0,), "halving", HalvingConfig(rounds=2))] == [8, 4, 0]


def test_budget_caps_the_total_and_must_cover_round_zero():
    rounds = plan(8, (0,), "halving", HalvingConfig(budget=14))    # r1 wants 4 x 2, r2 2 x 4
    assert [(p.tasks, len(p.seeds)) for p in rounds] == [(8, 1), (4, 1), (2, 1)]
    assert sum(p.runs for p in rounds) == 14
    assert [p.tasks for p in plan(8, (0,), "halving", HalvingConfig(budget=11))] == [8, 0, 0]
    with pytest.raises(ParamsError, match="score.halving.budget"):
        plan(8, (0, 1), "halving", HalvingConfig(budget=15))


def rows(table: dict, round_="r0", seeds=(0,)):
    return pd.DataFrame([{"source_task": s, "target_task": t, "seed": sd, "round": round_, "metric": "pass@1", "utility": u}
                         for s, row in table.items() for t, u in row.items() for sd in seeds])


U = {"a": {"t1": 0.30, "t2": 0.00}, "b": {"t1": 0.10, "t2": 0.10}, "c": {"t1": 0.00, "t2": 0.12},
     "d": {"t1": 0.05, "t2": 0.05}}


def test_ranking_by_mean_and_by_best_subtask_rank():
    assert ranking(rows(U), "mean")["source_task"].tolist() == ["a", "b", "c", "d"]
    # c leads t2 although its mean is below b's: "subtask" keeps each sub-task's leader
    assert ranking(rows(U), "subtask")["source_task"].tolist() == ["a", "c", "b", "d"]


def test_promotion_is_per_task_and_stable_when_a_weak_task_is_added():
    rounds = plan(4, (0,), "halving", HalvingConfig(rank_by="subtask"))
    dec, record = promote("r1", list(U), rows(U), rounds, "subtask")
    assert [t for t, d in dec.items() if d["promoted"]] == ["a", "c"] and dec["a"]["seeds"] == [1, 2]
    assert record["promoted"] == ["a", "c"] and not dec["b"]["promoted"] and dec["b"]["seeds"] == []
    # a fifth, weaker task: 5 -> ceil(5/2) = 3 promoted, a and c keep exactly the same decision
    weak = {**U, "e": {"t1": -0.1, "t2": -0.1}}
    dec5, _ = promote("r1", list(weak), rows(weak), plan(5, (0,), "halving", HalvingConfig()), "subtask")
    assert dec5["a"] == dec["a"] and dec5["c"] == dec["c"] and not dec5["e"]["promoted"]
    # round r2 ranks only the tasks that ran in r1, on all their seeds
    seen = pd.concat([rows(U), rows({t: U[t] for t in ("a", "c")}, "r1", (1, 2))], ignore_index=True)
    dec2, _ = promote("r2", list(U), seen, rounds, "subtask")
    assert [t for t, d in dec2.items() if d["promoted"]] == ["a"]


def test_halving_finds_a_clear_top_k_with_a_fraction_of_the_compute():
    rng = np.random.default_rng(0)
    true = synthetic_table(8, 3, common=0.05, task_sd=0.08, cell_sd=0.01, rng=rng)
    res = simulate(true, seeds=1, cfg=HalvingConfig(rank_by="mean"), seed_sd=0.01, noise_sd=0.01, k=2, trials=20,
                   rng=rng)
    assert res["compute_fraction"] == pytest.approx(24 / 56)   # 8x1 + 4x2 + 2x4 runs vs 8 tasks x 7 seeds
    assert res["topk_vs_exhaustive"] >= 0.9 and res["topk_vs_truth"] >= 0.9


def test_halving_cannot_find_a_top_k_that_is_not_there():
    rng = np.random.default_rng(1)
    true = np.full((8, 3), 0.05)          # no task differs: any top-2 is luck (1 in 28)
    true[0, 0] += 1e-9
    res = simulate(true, seeds=1, cfg=HalvingConfig(rank_by="mean"), seed_sd=0.02, noise_sd=0.03, k=2, trials=30,
                   rng=rng)
    assert res["topk_vs_exhaustive"] < 0.5


def test_the_promote_stage_runs_on_the_params_it_declares(tmp_path):
    """stages/promote.py under its dvc.yaml declaration (its params hold nothing else): round r0
    promotes every task, and the control when it is on; its check of score.control_tasks reads a
    declared key."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(root / name, tmp_path / name)
    res = subprocess.run([sys.executable, str(root / "stages" / "promote.py"), "r0"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    import yaml

    score = yaml.safe_load((root / "params.yaml").read_text())["score"]
    decision = json.loads((tmp_path / "data/halving/r0/decision.json").read_text())
    assert decision["promoted"] == score["tasks"]
    control = json.loads((tmp_path / "data/halving/r0/format_control.json").read_text())
    assert control["promoted"] == score["control"]
