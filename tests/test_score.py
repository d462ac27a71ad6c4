"""Score: compute matching, utility rows, and the gradient-alignment proxy."""

import pandas as pd
import pytest

from supernova.evaluation import EvalConfig
from supernova.gradproxy import gradient_alignment
from supernova.prompts import PromptConfig
from supernova.schema import UTILITY, conform, items_frame
from supernova.score import compute_matched, training_items, utility_rows
from supernova.sources import load_entry


def frame(name, n, seed=0):
    [t] = load_entry({"kind": "reasoning_gym", "name": name, "size": n, "format": "exact", "seed": seed}, "x", 0)
    return items_frame(t.items)


@pytest.mark.parametrize("n,target", [(10, 4), (3, 8), (5, 5)])
def test_compute_matched_has_exactly_target_size_rows(n, target):
    items = frame("syllogism", n)
    out = compute_matched(items, target, seed=1)
    assert len(out) == target
    counts = out["uid"].value_counts()
    assert counts.max() - counts.min() <= 1            # repeat-padding spreads copies evenly
    assert out["uid"].tolist() == compute_matched(items, target, seed=1)["uid"].tolist()


def test_training_items_prefer_probe_kept_items():
    items = frame("syllogism", 8)
    items["kept"] = [True, False] * 4
    assert set(training_items(items, "syllogism", 6, 0)["uid"]) <= set(items[items.kept]["uid"])
    items["kept"] = False
    assert len(training_items(items, "syllogism", 6, 0)) == 6


def test_utility_rows_are_paired_differences_per_subtask_and_k():
    base = pd.DataFrame({"model": "base", "task": ["a"] * 4 + ["b"] * 4, "uid": list("12345678"), "n": 4,
                         "correct": [0, 1, 2, 0, 4, 4, 0, 0], "parsed": 4, "sample": ""})
    trained = base.assign(model="t", correct=[1, 1, 2, 1, 4, 4, 0, 0])
    rows = utility_rows(base, trained, "src", 0, EvalConfig(n=4, k=(1, 4), bootstrap=200), seconds=12.5)
    conform(rows, UTILITY)
    a1 = rows[(rows.target_task == "a") & (rows.k == 1)].iloc[0]
    assert a1.utility == pytest.approx(0.125) and a1.ci_low <= a1.utility <= a1.ci_high
    b4 = rows[(rows.target_task == "b") & (rows.k == 4)].iloc[0]
    assert b4.utility == 0 and b4.ci_low == 0 == b4.ci_high and rows.seconds.eq(12.5).all()


def test_gradient_proxy_is_a_cosine_and_self_alignment_is_one(tiny_model):
    train = frame("syllogism", 6)
    dev = pd.concat([frame("syllogism", 6), frame("basic_arithmetic", 6, seed=3)], ignore_index=True)
    cos = gradient_alignment(tiny_model, train, dev, PromptConfig(), layers=1)
    assert set(cos) == {"syllogism", "basic_arithmetic"}
    assert cos["syllogism"] == pytest.approx(1.0, abs=1e-4)
    assert -1 <= cos["basic_arithmetic"] < cos["syllogism"]


def test_format_control_items_keep_the_prompts_but_not_the_answers():
    from supernova.score import CONTROL, control_items

    probes = {"syllogism": frame("syllogism", 12), "basic_arithmetic": frame("basic_arithmetic", 12, seed=2)}
    for df in probes.values():
        df["kept"] = True
    ctrl = control_items(probes, 16, seed=0)
    assert len(ctrl) == 16 and set(ctrl["task"]) == {CONTROL} and ctrl["kept"].all()
    originals = pd.concat(probes.values())
    assert set(ctrl["question"]) <= set(originals["question"])              # the same prompts
    assert ctrl["source"].str.startswith("control:").all()
    assert {s.split(":", 1)[1] for s in ctrl["source"]} == set(originals["source"])   # from both tasks
    gold = dict(zip(originals["question"], originals["answer"]))
    # answers carry no task signal: over many draws, the share matching the gold is near chance
    many = pd.concat([control_items(probes, 24, seed=s) for s in range(20)])
    match = (many["answer"] == many["question"].map(gold)).mean()
    assert match < 0.6
    assert control_items(probes, 16, seed=0)["uid"].tolist() == ctrl["uid"].tolist()


def test_score_config_checks_control_and_baseline():
    from supernova.errors import ParamsError
    from supernova.score import ScoreConfig

    assert ScoreConfig(tasks=("a",)).units == ["a", "format_control"]
    with pytest.raises(ParamsError, match="score.baseline"):
        ScoreConfig(tasks=("a",), control=False, baseline="control")
    with pytest.raises(ParamsError, match="score.tasks"):
        ScoreConfig(tasks=("a", "format_control"))
    with pytest.raises(ParamsError, match="score.control_tasks"):
        ScoreConfig(tasks=("a",), control_tasks=("b",)).require_tasks()
    with pytest.raises(ParamsError, match="score.schedule"):
        ScoreConfig(tasks=("a",), schedule="random")
