"""Params profiles (deep merge, every profile valid) and the experiments table."""

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from supernova.report import table
from supernova.profile import apply, merge


def test_merge_is_deep_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 2}
    assert merge(base, {"a": {"c": [3]}, "e": 5}) == {"a": {"b": 1, "c": [3]}, "d": 2, "e": 5}


def test_apply_writes_params(tmp_path):
    params, prof = tmp_path / "params.yaml", tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"mix": {"strategy": "micro", "k": 1}}))
    prof.write_text(yaml.safe_dump({"mix": {"k": 2}}))
    apply(str(prof), str(params))
    assert yaml.safe_load(params.read_text()) == {"mix": {"strategy": "micro", "k": 2}}


def test_apply_keeps_the_comments_of_params_and_profile(tmp_path):
    params, prof = tmp_path / "params.yaml", tmp_path / "p.yaml"
    params.write_text("# the default\nmix:\n  strategy: micro   # micro | macro\n  k: 1\n")
    prof.write_text("mix:\n  k: 2\n  seed: 3        # a new key, explained\n")
    apply(str(prof), str(params))
    text = params.read_text()
    assert "# the default" in text and "# micro | macro" in text and "# a new key, explained" in text
    assert yaml.safe_load(text) == {"mix": {"strategy": "micro", "k": 2, "seed": 3}}


def eval_json(base, trained):
    def entry(v):
        return {"value": v, "ci_low": v - 0.1, "ci_high": v + 0.1}

    def means(v, hm):
        return {"mean_over_subtasks": v, "bbeh_adjusted_harmonic_mean": hm, "mean_over_items": v}
    return {
        "base": {"pass@1": means(base, base / 2), "pass@2": means(base, base)},
        "trained": {"pass@1": means(trained, trained / 2), "pass@2": means(trained, trained)},
        "subtasks": {t: {"base": {"pass@1": entry(base), "pass@2": entry(base)},
                         "trained": {"pass@1": entry(trained), "pass@2": entry(trained)}, "items": 5,
                         "chance": {"pass@1": 0.25, "pass@2": 0.4375},
                         "parse_rate": {"base": 0.5, "trained": trained}} for t in ("x", "y")},
    }


def test_experiment_table_lists_base_then_variants_with_cis_chance_and_parse_rate():
    text = table({"macro": eval_json(0.2, 0.3), "micro": eval_json(0.2, 0.4)}, k=2)
    lines = text.splitlines()
    assert lines[2] == "| model | x | y | mean over sub-tasks | BBEH adjusted HM | mean over items |"
    assert lines[4] == "| base | 20.0 [10.0, 30.0] | 20.0 [10.0, 30.0] | 20.0 | 20.0 | 20.0 |"
    assert lines[6].startswith("| micro | 40.0 [30.0, 50.0]")
    assert "| sub-task | items | chance pass@2 | parse rate base | parse rate macro | parse rate micro |" in text
    assert "| x | 5 | 43.8 | 50.0 | 30.0 | 40.0 |" in text
    assert "| micro | 40.0 / 20.0 / 40.0 | 40.0 / 40.0 / 40.0 |" in text
    assert "Out-of-distribution" not in text


def test_sweep_variants_are_named_by_value():
    from supernova.experiments import sweep_variants

    assert sweep_variants("sft_select.n_items=2,8") == {"n_items-2": ["sft_select.n_items=2"], "n_items-8": ["sft_select.n_items=8"]}


def test_eval_report_keeps_every_number_a_scalar_for_dvc():
    import pandas as pd

    from supernova.evaluation import EvalConfig
    from supernova.report import eval_report

    base = pd.DataFrame({"model": "base", "task": ["a", "a", "b", "b", "ood", "ood"], "uid": list("123456"), "n": 4,
                         "correct": [0, 1, 2, 4, 1, 0], "parsed": [4, 2, 4, 4, 3, 1], "sample": ""})
    trained = base.assign(model="trained", correct=[2, 1, 2, 4, 0, 0], parsed=4)
    items = pd.DataFrame({"task": base["task"], "uid": base["uid"],
                          "answer_type": ["mcq", "mcq", "exact", "exact", "mcq", "mcq"],
                          "choices": [["x", "y", "z", "w"]] * 2 + [[]] * 2 + [["x", "y"]] * 2,
                          "meta": ["{}", "{}", '{"num_options": 2}', "{}", '{"role": "eval"}', '{"role": "eval"}']})
    metrics, curve, bars = eval_report(base, trained, EvalConfig(n=4, k=(1, 4), bootstrap=100), items)

    def leaves(d):
        for v in d.values():
            yield from leaves(v) if isinstance(v, dict) else [v]

    assert all(isinstance(v, (int, float)) for v in leaves(metrics))
    assert metrics["subtasks"]["a"]["gain"]["pass@1"]["value"] == 0.25
    assert set(metrics["subtasks"]) == {"a", "b"} and set(metrics["ood"]["subtasks"]) == {"ood"}
    assert metrics["gain"]["pass@1"]["mean_over_subtasks"] == 0.125
    assert metrics["base"]["pass@1"]["mean_over_items"] == pytest.approx((0 + 0.25 + 0.5 + 1) / 4, abs=1e-4)
    assert metrics["base"]["pass@1"]["bbeh_adjusted_harmonic_mean"] == pytest.approx(
        2 / (1 / (0.125 + 0.01) + 1 / (0.75 + 0.01)), abs=1e-4)
    assert metrics["subtasks"]["a"]["chance"] == {"pass@1": 0.25, "pass@4": round(1 - 0.75 ** 4, 4)}
    assert metrics["subtasks"]["b"]["chance"]["pass@1"] == 0.25            # (1/2 + 0) / 2: options in the text
    assert metrics["subtasks"]["a"]["parse_rate"] == {"base": 0.75, "trained": 1.0}
    assert metrics["ood"]["subtasks"]["ood"]["parse_rate"]["base"] == 0.5
    assert metrics["ood"]["base"]["pass@1"]["mean_over_subtasks"] == 0.125
    assert [c["k"] for c in curve] == [1, 4] and len(bars) == 6
    # over all sub-tasks of a block: the guesser's aggregates and the parse rates
    assert metrics["chance"]["pass@1"] == {"mean_over_subtasks": 0.25, "bbeh_adjusted_harmonic_mean": 0.26,
                                           "mean_over_items": 0.25}
    assert metrics["parse_rate"] == {"base": 0.875, "trained": 1.0}                 # (4+2+4+4)/16, 16/16
    assert metrics["ood"]["chance"]["pass@1"]["mean_over_items"] == 0.5               # 2 options
    assert metrics["ood"]["chance"]["pass@4"]["mean_over_subtasks"] == 0.9375         # 1 - (1/2)^4
    assert metrics["ood"]["parse_rate"] == {"base": 0.5, "trained": 1.0}
    text = table({"trained": metrics}, 4)
    assert "### Out-of-distribution (evaluation-only) targets: pass@4 per sub-task" in text
    # chance pass@4: a 1 - 0.75^4 = 68.4 per item, b (93.75 + 0) / 2 = 46.9; over the 4 items 57.6
    assert "| all (over items) | 4 | 57.6 | 87.5 | 100.0 |" in text
    assert "| chance | 25.0 / 26.0 / 25.0 | 57.6 / 56.6 / 57.6 |" in text
    assert "| all (over items) | 2 | 93.8 | 50.0 | 100.0 |" in text                  # the OOD block's
    assert "| chance | 50.0 / 51.0 / 50.0 | 93.8 / 94.8 / 93.8 |" in text


def test_seeded_runs_set_every_seed_key_and_the_mode():
    from supernova.experiments import MODES, STUDIES, seeded

    runs = seeded({"macro": ["mix.strategy=macro"]}, [0, 1], MODES["paper"], "paper")
    assert list(runs) == ["paper-macro-s0", "paper-macro-s1"]
    assert runs["paper-macro-s1"] == ["rl_train.sft.enabled=false", "mix.strategy=macro", "rl_train.grpo.seed=1",
                                      "rl_train.sft.seed=1", "mix.seed=1", "sft_select.seed=1",
                                      "sft_select.teacher.seed=1"]
    assert "sft_select.pool=scored" in seeded({"micro": []}, [0], MODES["default"], "default")["micro-s0"]
    study = STUDIES["sft-order"]
    runs = seeded(study.variants, [0], study.fixed, "sft-order")
    assert set(runs) == {"sft-order-hardest-s0", "sft-order-random-s0", "sft-order-easiest-s0"}
    assert "rl_train.grpo.enabled=false" in runs["sft-order-easiest-s0"]
    study = STUDIES["sft-targets"]
    runs = seeded(study.variants, [2], study.fixed, "sft-targets")
    traced, same = runs["sft-targets-traced-s2"], runs["sft-targets-answer-same-items-s2"]
    assert "sft_select.teacher.seed=2" in traced and set(same) - set(traced) == {"sft_select.teach=answer"}


def test_a_variant_overrides_a_key_its_study_fixes():
    from supernova.experiments import STUDIES, seeded

    study = STUDIES["sft-size"]
    sets = seeded(study.variants, [0], study.fixed, "sft-size")["sft-size-sft-grpo-8-s0"]
    assert "rl_train.grpo.enabled=true" in sets and "rl_train.grpo.enabled=false" not in sets
    assert [s.split("=")[0] for s in sets].count("rl_train.grpo.enabled") == 1


def _with_likelihood(run, trained_lp):
    return {**run, "likelihood": {"gold_logprob_token": {"base": -2.0, "trained": trained_lp}}}


def test_the_teacher_forced_table_gives_seed_paired_differences_with_a_t_ci():
    from supernova.experiments import likelihood_table

    results = {"hardest": {s: _with_likelihood(eval_json(0.2, 0.3), v) for s, v in enumerate([-1.0, -1.2, -1.1])},
               "random": {s: _with_likelihood(eval_json(0.2, 0.3), v) for s, v in enumerate([-1.5, -1.6, -1.7])}}
    text = likelihood_table(results, [("hardest", "random")])
    # paired differences 0.5, 0.4, 0.6: mean 0.5, t-CI 0.5 +- 4.303 * 0.1 / sqrt(3) = [0.2516, 0.7484]
    line = next(ln for ln in text.splitlines() if ln.startswith("| hardest − random"))
    assert line == "| hardest − random | 0.5000 [0.2516, 0.7484] | hardest higher |"
    assert "| base | -2.0000 |" in text


def test_a_sweep_writes_one_plot_row_per_value_and_metric():
    from supernova.experiments import Study, sweep_rows

    study = Study({"s-2": ["sft_select.n_items=2"], "s-8": ["sft_select.n_items=8"], "other": ["sft_select.n_items=8", "x=1"]},
                  [], [], "claim", x="sft_select.n_items")
    results = {name: {s: _with_likelihood(eval_json(0.2, 0.3 + s / 10), -1.0 - s) for s in range(2)}
               for name in study.variants}
    rows = sweep_rows(results, study)
    assert {r["sft_select.n_items"] for r in rows} == {2.0, 8.0} and {r["metric"] for r in rows} == {
        "pass@1", "gold_logprob_token"}
    p = next(r for r in rows if r["metric"] == "pass@1" and r["sft_select.n_items"] == 2.0)
    assert p["mean"] == pytest.approx(0.35) and p["ci_low"] < 0.35 < p["ci_high"] and p["seeds"] == 2


def test_a_queued_stage_imports_the_library_from_its_own_copy_of_the_project(tmp_path):
    """A stage run by the queue, in an experiment's copy of the project, imports that copy's
    ``supernova``, not the one the environment's editable install points at."""
    from supernova.experiments import own_code_env

    copy = tmp_path / "exp"
    (copy / "supernova").mkdir(parents=True)
    (copy / "supernova" / "__init__.py").write_text("")
    (copy / "stages").mkdir()
    (copy / "stages" / "where.py").write_text("import supernova\nprint(supernova.__file__)\n")
    run = [sys.executable, "stages/where.py"]
    plain = subprocess.run(run, cwd=copy, capture_output=True, text=True, check=True).stdout.strip()
    own = subprocess.run(run, cwd=copy, capture_output=True, text=True, check=True,
                         env=own_code_env({**os.environ, "PYTHONPATH": "/elsewhere"})).stdout.strip()
    assert Path(plain).parent != copy / "supernova"          # the installed project's copy
    assert Path(own).resolve().parent == (copy / "supernova").resolve()
    assert own_code_env({"PYTHONPATH": "/elsewhere"})["PYTHONPATH"] == os.pathsep.join([".", "/elsewhere"])


def test_a_failed_or_running_run_does_not_count_as_finished():
    """``dvc exp show`` lists a failed run with an error and its baseline's metrics, a running one
    with its executor's state and the metrics of its workspace so far."""
    from supernova.experiments import finished_runs

    def exp(name, value, error=None, state=None):
        return {"executor": state and {"state": state, "name": "dvc-task"},
                "revs": [{"name": name, "error": error,
                          "data": {"metrics": {"metrics/eval.json": {"data": {"value": value}}}}}]}

    shown = [{"rev": "workspace", "experiments": None},
             {"rev": "abc", "experiments": [exp("a-s0", 1, state="success"), exp("a-s3", 3),
                                            exp("a-s1", 9, {"msg": "Experiment run failed", "type": ""}, "failed"),
                                            exp("a-s2", 8, state="running"), exp("other", 2)]}]
    assert finished_runs(shown, ["a-s0", "a-s1", "a-s2", "a-s3"]) == {"a-s0": {"value": 1}, "a-s3": {"value": 3}}


def test_a_partial_table_keeps_the_variants_whose_seeds_all_finished():
    from supernova.experiments import finished_variants

    found = {"rl-size-mix-12-s0": {}, "rl-size-mix-12-s1": {}, "rl-size-mix-96-s0": {}}
    assert finished_variants(found, ["mix-12", "mix-96"], [0, 1], "rl-size") == (["mix-12"], ["rl-size-mix-96-s1"])


def test_a_run_finished_or_on_the_queue_is_not_queued_again():
    from supernova.experiments import to_queue

    runs = {f"x-s{i}": [f"seed={i}"] for i in range(4)}
    assert to_queue(runs, done={"x-s0"}, pending={"x-s2"}) == {"x-s1": ["seed=1"], "x-s3": ["seed=3"]}


def test_queue_status_is_read_by_name_or_task():
    from supernova.experiments import queue_state

    text = ("Task     Name            Created    Status\n"
            "753b005  sft-order-hardest-s0  04:01 PM   Running\n"
            "1ae8b65                  04:02 PM   Queued\n"
            "0bbb118  rl-size-mix-12-s1  Dec 03  Failed\n\nWorker status: 1 active, 0 idle\n")
    assert queue_state(text) == {"sft-order-hardest-s0": "Running", "1ae8b65": "Queued",
                                 "rl-size-mix-12-s1": "Failed"}


def test_a_task_running_without_a_worker_is_stale_and_not_pending_and_workers_are_counted():
    from supernova.experiments import active_workers, pending_tasks, queue_state

    text = ("Task     Name            Created    Status\n"
            "4128bb3  rl-size-mix-48-s1  12:42 PM   Running\n"
            "047ca1d  rl-size-mix-48-s2  12:42 PM   Queued\n\nWorker status: 0 active, 0 idle\n")
    state = queue_state(text)
    assert state == {"rl-size-mix-48-s1": "Stale", "rl-size-mix-48-s2": "Queued"}
    assert pending_tasks(state) == ["rl-size-mix-48-s2"]
    assert active_workers(text) == 0 and active_workers(text.replace(": 0 active", ": 1 active")) == 1
    assert active_workers("Task  Name  Created  Status\n") is None


def test_a_queued_task_with_no_active_worker_needs_one():
    from supernova.experiments import needs_worker

    queued = ("Task     Name            Created    Status\n"
              "047ca1d  rl-size-mix-48-s2  12:42 PM   Queued\n\nWorker status: 0 active, 0 idle\n")
    assert needs_worker(queued)
    assert not needs_worker(queued.replace(": 0 active", ": 1 active"))
    assert not needs_worker(queued.replace("Queued", "Success"))
    assert not needs_worker(queued.replace("Worker status: 0 active, 0 idle", ""))


def test_seed_table_gives_means_t_cis_and_a_paired_verdict():
    from supernova.experiments import seed_table

    results = {"macro": {s: eval_json(0.2, v) for s, v in enumerate([0.30, 0.32, 0.34])},
               "micro": {s: eval_json(0.2, v) for s, v in enumerate([0.40, 0.43, 0.43])}}
    text = seed_table(results, 1)
    lines = text.splitlines()
    assert "mean over 3 seeds [0, 1, 2]" in lines[0]
    assert lines[4] == "| base | 20.0 | 20.0 | 20.0 |"
    # macro: mean 32.0, t-CI 32 +- 4.303 * 2 / sqrt(3) = [27.0, 37.0]
    assert lines[5] == "| macro | 32.0 [27.0, 37.0] | 32.0 [27.0, 37.0] | 32.0 [27.0, 37.0] |"
    diff = next(ln for ln in lines if ln.startswith("| micro − macro"))
    assert diff.startswith("| micro − macro | 10.0 [") and diff.endswith("| micro better |")
    assert any(ln.startswith("| macro − base | 12.0 [") and ln.endswith("macro better |") for ln in lines)
    close = {"macro": results["macro"], "micro": {s: eval_json(0.2, v) for s, v in enumerate([0.28, 0.36, 0.33])}}
    assert "no significant difference" in next(ln for ln in seed_table(close, 1).splitlines() if "micro − macro" in ln)
    # 3 seeds far apart: the t-interval passes 0 and 100 and is clipped to them
    wide = {"macro": {s: eval_json(0.2, v) for s, v in enumerate([0.0, 1.0, 1.0])}}
    assert seed_table(wide, 1).splitlines()[5] == "| macro | 66.7 [0.0, 100.0] | 66.7 [0.0, 100.0] | 66.7 [0.0, 100.0] |"


ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.name for p in (ROOT / "params").glob("*.yaml"))


@pytest.mark.parametrize("profiles", [[p] for p in PROFILES] + [["superni-bbeh.yaml", "gpu.yaml"]],
                         ids=lambda ps: "+".join(ps))
def test_profiles_apply_and_every_section_loads_through_the_config_layer(profiles, tmp_path):
    from supernova.answer import AnswerConfig
    from supernova.config import check_entries, from_section, load_params
    from supernova.evaluation import EvalConfig
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig
    from supernova.ingest import IngestConfig
    from supernova.mix import MixConfig
    from supernova.model import ModelConfig
    from supernova.probe import ProbeConfig
    from supernova.prompts import PromptConfig
    from supernova.rl_train import RLTrainConfig
    from supernova.scoring import ScoreConfig
    from supernova.sft_select import SFTSelectConfig

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    for name in profiles:
        apply(str(ROOT / "params" / name), str(tmp_path / "params.yaml"))
    params = load_params(tmp_path / "params.yaml")
    sections = {"model": ModelConfig, "answer": AnswerConfig, "prompt": PromptConfig, "generation": GenerationConfig,
                "compute": ComputeConfig, "ingest": IngestConfig, "probe": ProbeConfig, "evaluate": EvalConfig,
                "score": ScoreConfig, "mix": MixConfig, "sft_select": SFTSelectConfig, "rl_train": RLTrainConfig}
    loaded = {name: from_section(cls, params, name) for name, cls in sections.items()}
    check_entries({"sources": loaded["ingest"].sources, "targets": loaded["ingest"].targets})
    assert set(loaded["score"].tasks) <= {e.get("name") for e in loaded["ingest"].sources} | {
        t for e in loaded["ingest"].sources for t in e.get("tasks", [])}
    if "gpu.yaml" in profiles:
        assert loaded["model"].name_or_path.startswith("Qwen/Qwen3-")
        assert loaded["generation"].backend == "vllm" and loaded["prompt"].style == "cot"
        assert loaded["evaluate"].max_new_tokens == loaded["score"].grpo.max_completion_length == 4096
        assert loaded["score"].grpo.mixed_precision == loaded["rl_train"].grpo.mixed_precision == "bf16"
        # the longest prompt ingest lets through plus the completion budget fits the engine's context
        assert loaded["ingest"].max_prompt_tokens + 4096 <= loaded["generation"].max_model_len


def test_the_decision_file_and_the_last_screen_say_whether_to_trust_the_run():
    from supernova.report import decision, decision_lines

    ev = eval_json(0.2, 0.3)
    ev["chance"] = {"pass@1": {"mean_over_subtasks": 0.25}, "pass@2": {"mean_over_subtasks": 0.4375}}
    ev["gain"] = {"pass@1": {"mean_over_subtasks": 0.1, "mean_over_subtasks_ci_low": 0.02,
                             "mean_over_subtasks_ci_high": 0.18}}
    utility = {"metric": "gold_logprob_token", "target_subtasks": 2, "separable_subtasks": 1,
               "reliability": {"reliability": 0.91}, "decision_accuracy": {"overall": 0.87},
               "snr": {"mean_over_subtasks": {"snr": 4.2}, "low_snr": ["y"]},
               "separation": {"x": {"separable": True}, "y": {"separable": False}},
               "learning": {"runs": 10, "learned": 8, "tasks": {"a": {"separable_from_0": True},
                                                                "b": {"separable_from_0": False}}}}
    mixture = {"strategy": "micro", "tasks_chosen": 1, "total_items": 12,
               "tasks": [{"task": "a", "chosen_for": {"x": {}, "y": {}}}],
               "low_snr_subtasks": {"y": "SNR 0.5 below score.min_snr: ranked by the mean over sub-tasks"}}
    d = decision(utility, mixture, ev)
    assert d["ranking"] == {"metric": "gold_logprob_token", "reliability": 0.91, "decision_accuracy": 0.87,
                            "snr": 4.2, "separable_subtasks": 1, "subtasks": 2, "low_snr_subtasks": 1,
                            "runs_learned": 8, "runs": 10}
    assert d["trained"]["pass@1"]["trained_minus_chance"] == pytest.approx(0.05)
    lines = decision_lines(utility, mixture, ev)
    assert lines[0].startswith("Ranked by gold_logprob_token: reliability 0.91")
    assert "  x: a (separable)" in lines and "  y: a (low SNR: ranked by the mean over sub-tasks)" in lines
    assert any(line.startswith("Runs that learned (in-task gain above 0): 8 of 10; no separable in-task gain: b")
               for line in lines)
    assert lines[-1] == ("Trained vs base vs chance (pass@1, mean over sub-tasks, %): 30.0 vs 20.0 vs 25.0; gain "
                         "10.0 [2.0, 18.0] (separable from 0); trained - chance 5.0")


@pytest.mark.parametrize("study", ["sft-size", "sft-order", "sft-targets", "rl-size"])
def test_every_study_run_trains_the_phases_its_study_is_about_on_the_committed_params(study):
    from supernova.config import from_section
    from supernova.experiments import STUDIES, seeded
    from supernova.rl_train import RLTrainConfig

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, sets in seeded(STUDIES[study].variants, [0], STUDIES[study].fixed, study).items():
        section = copy.deepcopy(params["rl_train"])
        for s in (s for s in sets if s.startswith("rl_train.")):
            key, value = s.split("=", 1)
            *path, leaf = key.split(".")[1:]
            node = section
            for part in path:
                node = node[part]
            node[leaf] = yaml.safe_load(value)
        cfg = from_section(RLTrainConfig, {"rl_train": section}, "rl_train")
        # the SFT studies train SFT (sft-grpo-8 then GRPO too), the RL study GRPO alone
        assert cfg.sft.enabled is study.startswith("sft-"), name
        assert cfg.grpo.enabled is (study == "rl-size" or name.endswith("sft-grpo-8-s0")), name
