"""The whole DAG under DVC with the tiny profile: runs, caches, reruns only what changed, resumes."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import dvc, ran_stages  # and the `ran` fixture

pytestmark = pytest.mark.slow
RESULTS = ["mixture.yaml", "sft_set.yaml", "metrics/eval.json", "metrics/plots/eval_passk.json",
           "metrics/train/grpo/metrics.json", "metrics/train/grpo/plots/metrics/reward.tsv"]


def copy(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest, symlinks=True)
    return dest


def test_outputs_metrics_and_manifests(ran):
    ev = json.loads((ran / "metrics" / "eval.json").read_text())
    assert set(ev["subtasks"]) == {"course_schedule", "leg_counting"}
    assert set(ev["base"]) == {"pass@1", "pass@2"}
    assert 0 <= ev["trained"]["pass@1"]["mean_over_subtasks"] <= 1
    for entry in ev["subtasks"].values():
        assert entry["chance"]["pass@1"] > 0 and 0 <= entry["parse_rate"]["trained"] <= 1
    # the evaluation-only MMLU-Pro-layout target: reported on its own, never in dev, utility or the mixture
    assert set(ev["ood"]["subtasks"]) == {"computer_science", "math"}
    assert ev["ood"]["subtasks"]["math"]["items"] == 5 and ev["ood"]["subtasks"]["computer_science"]["items"] == 4
    assert set(ev["ood"]["chance"]) == set(ev["ood"]["base"]) and 0 <= ev["ood"]["parse_rate"]["trained"] <= 1
    import pandas as pd
    dev = pd.read_parquet(ran / "data" / "items" / "targets" / "dev.parquet")
    assert set(dev["task"]) == {"course_schedule", "leg_counting"}
    util = pd.read_parquet(ran / "data" / "utility" / "matrix.parquet")
    assert set(util["target_task"]) == {"course_schedule", "leg_counting"}
    assert set(util["source_task"]) == {"syllogism", "basic_arithmetic"}      # the control is not a source
    np.testing.assert_allclose(util["net_utility"], util["utility"] - util["control_utility"])
    um = json.loads((ran / "metrics" / "utility.json").read_text())
    assert um["control"]["seeds"] == 2 and um["decision_accuracy"]["halves"] == "seeds" and "separation" in um
    assert set(um["parse_rate"]["checkpoints"]) == {"syllogism", "basic_arithmetic"}
    # every metric is measured on the same runs; mixing ranked by the one params.yaml names
    params = yaml.safe_load((ran / "params.yaml").read_text())
    assert um["metric"] == params["score"]["metric"] and set(util["metric"]) == {um["metric"]}
    assert {"pass@1", "gold_logprob_token", "letter_norm_prob", "cloze_norm_prob"} <= set(um["metrics"])
    assert um["learning"]["runs"] == 4 and set(um["in_task"]) == {"syllogism", "basic_arithmetic"}
    tf = pd.read_parquet(ran / "data" / "score" / "r0" / "syllogism" / "likelihood.parquet")
    assert set(tf["split"]) == {"dev", "heldout"} and set(tf["step"]) == {1, 2} and set(tf["seed"]) == {0, 1}
    assert set(tf[tf.split == "heldout"]["task"]) == {"syllogism"}
    decision = json.loads((ran / "metrics" / "decision.json").read_text())
    assert decision["ranking"]["metric"] == um["metric"] and decision["ranking"]["runs"] == 4
    assert "gold_logprob_token" in ev["likelihood"] and "likelihood" in ev["ood"]
    # exhaustive: later rounds run nothing, and say so
    assert not json.loads((ran / "data/halving/r1/syllogism.json").read_text())["promoted"]
    assert pd.read_parquet(ran / "data/score/r1/syllogism/items.parquet").empty
    assert "computer_science" not in (ran / "mixture.yaml").read_text()
    ingested = json.loads((ran / "metrics" / "ingest.json").read_text())["targets"]
    assert ingested["computer_science"]["name_in_source"] == "computer science"
    assert ingested["math"]["kept_as_given"] == {"gold_text_repeated": 1} and ingested["math"]["dropped"] == {}

    per_item = pd.read_parquet(ran / "data" / "eval" / "trained.parquet")
    pass1 = (per_item["correct"] / per_item["n"]).groupby(per_item["task"]).mean()
    assert ev["trained"]["pass@1"]["mean_over_subtasks"] == pytest.approx(pass1.mean(), abs=1e-4)   # the metric is the data's
    # what each stage resolved on this machine (dtype, precision, backend) is recorded with its outputs
    from supernova.hardware import detect, resolve_dtype, resolve_precision
    from supernova.schema import read_meta

    sampled = {"backend": "transformers", "dtype": resolve_dtype("auto"), "device": detect().device,
               "backend_reason": "set in params"}
    assert json.loads((ran / "metrics" / "probe.json").read_text())["compute"]["generation"] == sampled
    assert read_meta(ran / "data" / "baseline" / "test.parquet")["compute"]["generation"] == sampled
    assert ev["compute"]["evaluate"]["generation"] == sampled
    assert ev["compute"]["evaluate"]["cpu_capability"] == detect().cpu_capability
    assert ev["compute"]["rl_train"]["grpo"] == {"mixed_precision": resolve_precision("auto"), "rollouts": "transformers",
                                                 "processes": 1}
    assert ev["compute"]["rl_train"]["sft"] == {"mixed_precision": resolve_precision("auto"), "processes": 1}
    score = read_meta(ran / "data" / "score" / "r0" / "syllogism" / "utility.parquet")["compute"]
    assert score["training"]["mixed_precision"] == resolve_precision("auto")
    assert score["evaluation"]["backend"] == "transformers" and score["evaluation"]["engine"] == "the trained model"
    assert score["training"]["processes"] == 1
    man = yaml.safe_load((ran / "mixture.yaml").read_text())
    assert man["strategy"] == "micro" and man["tasks"] and man["total_items"] == 4
    assert yaml.safe_load((ran / "sft_set.yaml").read_text())["size"] == 2
    assert (ran / "data" / "models" / "trained" / "model.safetensors").exists()
    shown = dvc(ran, "metrics", "show", "--json").stdout
    assert "metrics/eval.json" in shown
    assert (ran / "metrics" / "train" / "grpo" / "plots" / "metrics" / "reward.tsv").exists()
    ids = set(json.loads(dvc(ran, "plots", "show", "--json").stdout)["data"])
    for title in ("pass@k, base vs trained", "pass@1 per target sub-task, base vs trained",
                  "mean utility per source task", "utility, source task x target sub-task", "GRPO reward per step"):
        assert title in ids, f"plot {title!r} missing from dvc plots show"


def test_pictures_of_every_declared_plot_and_the_pipeline_stays_up_to_date(ran, tmp_path):
    from supernova.plots import absent_data, declared_plots, file_name

    p = copy(ran, tmp_path / "p")
    res = subprocess.run([sys.executable, "-m", "supernova.plots"], cwd=p, capture_output=True, text=True)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
    # only the studies' plots wait for data (python -m supernova.experiments --study writes it)
    absent = absent_data(p)
    assert all("metrics/plots/study_" in why for why in absent.values()), absent
    for name in set(declared_plots(p / "dvc.yaml")) - set(absent):
        svg = (p / "plots" / file_name(name)).read_text()
        assert f"Title text '{name}'" in svg and "aria-roledescription=\"axis\"" in svg
        assert re.search(r'aria-roledescription="(line mark|bar|rect mark)"', svg), name   # the data's marks
    heat = (p / "plots" / file_name("utility, source task x target sub-task")).read_text()
    assert "X-axis titled 'target_task' for a discrete scale with 2 values: course_schedule, leg_counting" in heat
    assert "<script" not in (p / "plots" / "index.html").read_text()
    # the pictures are no stage's input: the pipeline stays up to date
    assert "Data and pipelines are up to date" in dvc(p, "status").stdout


def test_halving_and_an_added_task_keep_finished_runs_cached(ran, tmp_path):
    p = copy(ran, tmp_path / "p")
    params = yaml.safe_load((p / "params.yaml").read_text())
    # r0 runs 2 tasks x 2 seeds; the budget of 6 runs leaves r1 2 runs, not eta x 2 seeds
    params["score"].update(schedule="halving", halving={"rounds": 2, "eta": 2, "rank_by": "mean", "budget": 6})
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran_now = ran_stages(dvc(p, "repro", "utility").stdout)
    # round r0 is unchanged: its runs stay cached; r1 runs the better task with 2 new seeds (and the control)
    assert "promote-r1" in ran_now and not [s for s in ran_now if s.startswith("score") and s.endswith("r0")]
    decision = json.loads((p / "data/halving/r1/decision.json").read_text())
    assert len(decision["promoted"]) == 1 and decision["runs"] == 2
    winner = decision["promoted"][0]
    assert pd_rows(p / f"data/score/r1/{winner}/items.parquet")["seed"].nunique() == 2
    assert json.loads((p / "metrics/utility.json").read_text())["control"]["seeds"] == 4
    # a third source task (already ingested and probed): its r0 run is new, the others' are not redone
    params["score"]["tasks"].append("letter_counting")
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran_now = ran_stages(dvc(p, "repro", "utility").stdout)
    assert "score@letter_counting-r0" in ran_now
    assert not {"score@syllogism-r0", "score@basic_arithmetic-r0", "score-control@r0"} & set(ran_now)


def pd_rows(path):
    import pandas as pd
    return pd.read_parquet(path)


def test_second_repro_does_nothing(ran, tmp_path):
    res = dvc(copy(ran, tmp_path / "p"), "repro")
    assert ran_stages(res.stdout) == []
    assert "Data and pipelines are up to date" in res.stdout


def test_exp_run_of_an_rl_only_strategy_reruns_mix_and_after_and_a_repeated_variant_comes_from_the_run_cache(ran, tmp_path):
    p = copy(ran, tmp_path / "p")
    # RL only, as the paper mode runs: the SFT phase's declared outputs say it did not run
    variant = ["-S", "mix.strategy=all", "-S", "mix.total_size=6", "-S", "rl_train.sft.enabled=false"]
    res = dvc(p, "exp", "run", *variant)
    assert ran_stages(res.stdout) == ["mix", "sft-select", "rl-train", "evaluate", "decision"]
    assert yaml.safe_load((p / "mixture.yaml").read_text())["strategy"] == "all"
    assert json.loads((p / "metrics/train/sft/metrics.json").read_text()) == {"enabled": False}
    assert list((p / "metrics/train/sft/plots").iterdir()) == []
    diff = dvc(p, "metrics", "diff", "--json").stdout
    assert "metrics/eval.json" in diff or "metrics/train" in diff
    assert yaml.safe_load((p / "mixture.yaml").read_text())["total_items"] == 6
    variant_results = {f: (p / f).read_bytes() for f in RESULTS}

    def restored(*sets: str) -> dict[str, bytes]:
        start = time.perf_counter()
        res = dvc(p, "exp", "run", *sets)
        seconds = time.perf_counter() - start
        assert ran_stages(res.stdout) == [], res.stdout
        for stage in ("mix", "sft-select", "rl-train", "evaluate", "decision"):
            assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in res.stdout, res.stdout
        print(f"dvc exp run {' '.join(sets) or '(committed params)'}: restored from the run-cache in {seconds:.1f} s")
        return {f: (p / f).read_bytes() for f in RESULTS}

    # the committed params and then the variant again: both ran before, so nothing is recomputed
    subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], cwd=p, check=True)
    assert restored() == {f: (ran / f).read_bytes() for f in RESULTS}
    assert restored(*variant) == variant_results
    # a strategy that picks the same tasks gives the same mixture and SFT bytes: training is not redone
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["mix"].update(strategy="manual", manual_tasks=[t["task"] for t in
                                                          yaml.safe_load((p / "mixture.yaml").read_text())["tasks"]])
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(dvc(p, "repro").stdout) == ["mix", "sft-select", "decision"]   # the manifest names the strategy


def test_a_new_sft_size_reselects_without_a_new_loss_pass(ran, tmp_path):
    p = copy(ran, tmp_path / "p")
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["sft_select"]["n_items"] += 1
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = json.loads(dvc(p, "status", "--json").stdout)
    assert "sft-select" in changed and "sft-loss" not in changed, changed


def test_rl_train_resumes_after_sigkill(ran, tmp_path):
    p = copy(ran, tmp_path / "p")
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["rl_train"]["grpo"].update(max_steps=12, save_steps=1)
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    scratch = p / "data" / "scratch" / "rl-train" / "grpo"
    proc = subprocess.Popen(["dvc", "repro", "rl-train"], cwd=p, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 240
    # kill once a checkpoint of step >= 3 is complete (the trainer writes trainer_state.json last)
    while time.time() < deadline and not list(scratch.glob("checkpoint-[3-9]*/trainer_state.json")):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    complete = sorted((int(c.name.split("-")[1]) for c in scratch.glob("checkpoint-*")
                       if (c / "trainer_state.json").exists()))
    assert complete, "no checkpoint was written before the kill"
    assert complete[-1] < 12
    res = dvc(p, "repro", "rl-train")
    resumed = re.search(r"resuming GRPO from data/scratch/rl-train/grpo/checkpoint-(\d+)", res.stdout + res.stderr)
    assert resumed and int(resumed.group(1)) == complete[-1] >= 3
    assert (p / "data" / "models" / "trained" / "model.safetensors").exists()
    assert not scratch.exists()  # a finished run keeps no checkpoint
    curve = (p / "metrics/train/grpo/plots/metrics/reward.tsv").read_text().splitlines()
    assert [int(line.split("\t")[0]) for line in curve[1:]] == list(range(12))  # one row per step, no repeats


def test_same_params_and_seed_give_the_same_bytes_and_training_metrics(ran, tmp_path):
    p = copy(ran, tmp_path / "p")
    files = ["data/mix/mixture.parquet", "data/sft/sft.parquet", "mixture.yaml", "sft_set.yaml"]
    before = {f: (p / f).read_bytes() for f in files}
    curves = p / "metrics/train/grpo/plots/metrics"

    def training_metrics() -> dict[str, list[float]]:
        out = {k: [v] for k, v in json.loads((p / "metrics/train/grpo/metrics.json").read_text()).items()}
        for key in ("loss", "reward", "reward_std", "entropy", "grad_norm"):
            out[key] = [float(line.split("\t")[1]) for line in (curves / f"{key}.tsv").read_text().splitlines()[1:]]
        return out

    metrics_before = training_metrics()
    res = dvc(p, "repro", "-f", "-s", "mix", "sft-select", "rl-train")
    assert ran_stages(res.stdout) == ["mix", "sft-select", "rl-train"]
    assert {f: (p / f).read_bytes() for f in files} == before
    metrics_after = training_metrics()
    assert metrics_after.keys() == metrics_before.keys() and "reward_last" in metrics_after
    for key, values in metrics_before.items():
        assert metrics_after[key] == pytest.approx(values, rel=1e-3, abs=1e-5), key
