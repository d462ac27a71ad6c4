"""Score: compute matching, utility rows, and the gradient-alignment proxy."""

import pandas as pd
import pytest

from supernova.evaluation import EvalConfig
from supernova.gradproxy import gradient_alignment
from supernova.prompts import PromptConfig
from supernova.schema import UTILITY, conform, items_frame
from supernova.schema import METRICS
from supernova.score import checkpoint_mean, run_record, utility_rows
from supernova.scoring import compute_matched, heldout_items, sampled_items, training_items
from supernova.sources import load_entry


def frame(name, n, seed=0):
    [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": n, "format": "exact", "seed": seed}, "x", 0)
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


def test_heldout_items_never_enter_training():
    items = frame("syllogism", 12).assign(kept=True)
    held = heldout_items(items, 4)
    assert len(held) == 4 and held["uid"].tolist() == sorted(items["uid"])[:4]
    for seed in range(3):
        assert not set(training_items(items, "syllogism", 16, seed, heldout=4)["uid"]) & set(held["uid"])


def test_sampled_items_take_the_first_per_subtask_by_uid():
    dev = pd.concat([frame("syllogism", 6), frame("basic_arithmetic", 6, seed=3)], ignore_index=True)
    sub = sampled_items(dev, 2)
    assert sub.groupby("task").size().tolist() == [2, 2]
    assert set(sub["uid"]) == set(dev.sort_values("uid").groupby("task").head(2)["uid"])
    assert sampled_items(dev, None) is dev


def _tf(task, uids, **values):
    rows = pd.DataFrame({"model": "m", "task": task, "uid": uids})
    for m in METRICS:
        rows[m] = values.get(m, float("nan"))
    return rows


def test_utility_rows_are_paired_differences_per_subtask_and_metric():
    base = pd.DataFrame({"model": "base", "task": ["a"] * 4 + ["b"] * 4, "uid": list("12345678"), "n": 4,
                         "correct": [0, 1, 2, 0, 4, 4, 0, 0], "parsed": 4, "sample": ""})
    trained = base.assign(model="t", correct=[1, 1, 2, 1, 4, 4, 0, 0])
    base_tf = pd.concat([_tf("a", list("1234"), gold_logprob_token=[-2.0, -1.0, -3.0, -2.0], letter_norm_prob=0.25),
                         _tf("b", list("5678"), gold_logprob_token=-1.0)], ignore_index=True)
    trained_tf = base_tf.assign(gold_logprob_token=base_tf["gold_logprob_token"] + [0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0],
                                letter_norm_prob=base_tf["letter_norm_prob"] + 0.1)
    rows = utility_rows(base, trained, base_tf, trained_tf, "src", 0, EvalConfig(n=4, k=(1, 4), bootstrap=200),
                        seconds=12.5)
    conform(rows, UTILITY)
    a1 = rows[(rows.target_task == "a") & (rows.metric == "pass@1")].iloc[0]
    assert a1.utility == pytest.approx(0.125) and a1.ci_low <= a1.utility <= a1.ci_high
    b4 = rows[(rows.target_task == "b") & (rows.metric == "pass@4")].iloc[0]
    assert b4.utility == 0 and b4.ci_low == 0 == b4.ci_high and rows.seconds.eq(12.5).all()
    lp = rows[(rows.target_task == "a") & (rows.metric == "gold_logprob_token")].iloc[0]
    assert lp.utility == pytest.approx(0.5) and lp.base == pytest.approx(-2.0) and lp.ci_low == pytest.approx(0.5)
    assert rows[(rows.target_task == "a") & (rows.metric == "letter_norm_prob")].iloc[0].utility == pytest.approx(0.1)
    # a metric no item of a sub-task has gets no row there
    assert rows[(rows.target_task == "b") & (rows.metric == "letter_norm_prob")].empty


def test_checkpoints_are_averaged_item_by_item_and_the_run_record_reads_its_history():
    rows = pd.concat([_tf("a", ["1", "2"], gold_logprob_token=[-1.0, -3.0]).assign(step=3),
                      _tf("a", ["1", "2"], gold_logprob_token=[-2.0, -1.0]).assign(step=4)], ignore_index=True)
    mean = checkpoint_mean(rows).set_index("uid")["gold_logprob_token"]
    assert mean.to_dict() == {"1": -1.5, "2": -2.0}
    history = [{"step": i, "reward": r, "frac_reward_zero_std": z}
               for i, (r, z) in enumerate([(0.0, 1.0), (0.25, 0.5), (0.5, 0.5), (0.75, 0.0)], 1)]
    base = _tf("a", ["1", "2"], gold_logprob_token=[-1.5, -1.5])
    rec = run_record("t", 1, "r0", history, 9.0, base, rows[rows.step == 4])
    assert rec["reward_first"] == 0.0 and rec["reward_last"] == 0.75 and rec["zero_std_share"] == 0.5
    assert rec["logprob_drift"] == pytest.approx(0.5) and rec["steps"] == 4


def test_gradient_proxy_is_a_cosine_and_self_alignment_is_one(tiny_model):
    train = frame("syllogism", 6)
    dev = pd.concat([frame("syllogism", 6), frame("basic_arithmetic", 6, seed=3)], ignore_index=True)
    cos = gradient_alignment(tiny_model, train, dev, PromptConfig(), layers=1)
    assert set(cos) == {"syllogism", "basic_arithmetic"}
    assert cos["syllogism"] == pytest.approx(1.0, abs=1e-4)
    assert -1 <= cos["basic_arithmetic"] < cos["syllogism"]


def test_format_control_items_keep_the_prompts_but_not_the_answers():
    from supernova.scoring import CONTROL, control_items

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
    from supernova.scoring import ScoreConfig

    assert ScoreConfig(tasks=("a",)).units == ["a", "format_control"]
    with pytest.raises(ParamsError, match="score.baseline"):
        ScoreConfig(tasks=("a",), control=False, baseline="control")
    with pytest.raises(ParamsError, match="score.tasks"):
        ScoreConfig(tasks=("a", "format_control"))
    with pytest.raises(ParamsError, match="score.control_tasks"):
        ScoreConfig(tasks=("a",), control_tasks=("b",)).require_tasks()
    with pytest.raises(ParamsError, match="score.schedule"):
        ScoreConfig(tasks=("a",), schedule="random")
    with pytest.raises(ParamsError, match="score.metric"):
        ScoreConfig(tasks=("a",), metric="accuracy")
    with pytest.raises(ParamsError, match="score.checkpoints"):
        ScoreConfig(tasks=("a",), checkpoints=9)
    assert ScoreConfig(metric="pass@k", k=2).ranking_metric == "pass@2"
    assert ScoreConfig(metric="cloze_norm_prob").ranking_metric == "cloze_norm_prob"
    assert ScoreConfig(metric="cloze_norm_prob", method="gradient").ranking_metric == "gradient"


def test_the_gradient_proxy_writes_rows_that_utility_and_promote_rank_by(tiny_model, tmp_path, monkeypatch):
    """The proxy has no pass@k and no teacher-forced metric: its rows carry the metric ``gradient``,
    and the stages that rank (promote, utility) rank a gradient-method score by it whatever
    ``score.k`` and ``score.metric`` say."""
    import json
    from pathlib import Path

    import yaml

    from supernova import paths
    from supernova.config import from_section, stage_params
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig
    from supernova.schema import ITEM, UTILITY, read_table, write_table
    from supernova.score import score_unit
    from supernova.scoring import ScoreConfig

    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["score"].update(method="gradient", k=2, proxy_layers=1)
    params["evaluate"]["k"] = [1, 2]
    monkeypatch.chdir(tmp_path)
    paths.BASE_MODEL.parent.mkdir(parents=True)
    paths.BASE_MODEL.symlink_to(tiny_model)
    write_table(paths.TARGET_DEV, pd.concat([frame("syllogism", 4), frame("basic_arithmetic", 4, seed=3)],
                                            ignore_index=True), ITEM)
    paths.promotion_file("r0", "syllogism").parent.mkdir(parents=True)
    paths.promotion_file("r0", "syllogism").write_text(json.dumps({"promoted": True, "seeds": [0]}))
    probed = frame("syllogism", 6).assign(kept=True)

    sp = stage_params(params, "score@syllogism-r0", root / "dvc.yaml")
    cfg = from_section(ScoreConfig, sp, "score")
    score_unit("syllogism", "r0", None, probed, cfg, from_section(EvalConfig, sp, "evaluate"),
               from_section(PromptConfig, sp, "prompt"), from_section(GenerationConfig, sp, "generation"),
               from_section(ComputeConfig, sp, "compute"))
    rows = read_table(paths.score_dir("r0", "syllogism") / "utility.parquet", UTILITY)
    assert set(rows["metric"]) == {"gradient"} and (rows["method"] == "gradient").all()
    for stage in ("promote-r1", "utility"):
        metric = from_section(ScoreConfig, stage_params(params, stage, root / "dvc.yaml"), "score").ranking_metric
        assert metric == "gradient" and len(rows[rows["metric"] == metric]) == 2   # one row per target sub-task
