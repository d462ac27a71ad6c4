"""SFT and GRPO through TRL: weights move, frozen layers stay, checkpoints reload."""

import pytest
import torch
from safetensors.torch import load_file

from supernova.errors import ParamsError
from supernova.hardware import ComputeConfig
from supernova.prompts import PromptConfig, gold_completion
from supernova.schema import items_frame
from supernova.sources import load_entry
from supernova.training.grpo import run_grpo
from supernova.training.settings import GRPOSettings, SFTSettings
from supernova.training.sft import run_sft, sft_dataset


def items(name="syllogism", n=8):
    """Items with their answer lines as SFT targets (GRPO reads the item columns only)."""
    [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": n, "format": "mcq"}, "x", 0)
    df = items_frame(t.items)
    return df.assign(target=[gold_completion(r) for r in df.to_dict("records")])


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_sft_moves_weights_and_saves_a_loadable_model(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "sft"
    logs = run_sft(tiny_model, items(), SFTSettings(max_steps=2, batch_size=2), PromptConfig(), out,
                   scratch_dir=tmp_path / "scratch")
    assert logs["loss"] > 0
    before, after = weights(tiny_model), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    AutoModelForCausalLM.from_pretrained(out)


def test_a_batch_trained_in_passes_moves_the_weights_as_one_pass_does(tiny_model, tmp_path):
    """SFT and GRPO (dapo loss; a length reward varies on the random model): each step's batch
    of 4 in passes of 1, gradients accumulated, against one pass of 4."""
    sft = SFTSettings(max_steps=2, batch_size=4, learning_rate=1e-3)
    grpo = GRPOSettings(max_steps=2, prompts_per_step=2, num_generations=2, max_completion_length=8,
                        learning_rate=1e-3, temperature=1.0, length_penalty=0.1, length_target=2, use_vllm=False)
    base = weights(tiny_model)
    for name, run, cfg in [("sft", run_sft, sft), ("grpo", run_grpo, grpo)]:
        trained = {}
        for micro in (4, 1):
            out = tmp_path / f"{name}-{micro}"
            logs = run(tiny_model, items(), cfg, PromptConfig(), out, scratch_dir=tmp_path / "scratch",
                       compute=ComputeConfig(train_micro_batch=micro))
            assert (logs["per_device_batch"], logs["gradient_accumulation_steps"], logs["global_batch"]) == \
                (micro, 4 // micro, 4)
            trained[micro] = weights(out)
        # Adam turns a rounding-level gradient into a full step, so single weights may differ:
        # the two updates are compared as wholes
        update = sum(float((trained[4][k] - base[k]).norm() ** 2) for k in base) ** 0.5
        apart = sum(float((trained[1][k] - trained[4][k]).norm() ** 2) for k in base) ** 0.5
        assert update > 0 and apart < 1e-3 * update, (name, update, apart)


def prompt_logprobs(model_path, ids):
    """log p(token | prefix) of every token of ``ids`` but the first, from transformers."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


@pytest.mark.vllm
def test_grpo_with_varying_rewards_trains_only_the_top_layer(smol_model, tmp_path):
    """Also: ``evaluate`` samples the trained model in the colocated engine, its weights synced
    after the last step (the engine's prompt log-probs are the saved model's, not the base's)."""
    from transformers import AutoTokenizer
    from vllm import SamplingParams

    ids = AutoTokenizer.from_pretrained(smol_model)("Which of these animals has six legs? A) ant B) dog")["input_ids"]

    def engine_logprobs(gen):
        [r] = gen.llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0),
                               use_tqdm=False)
        return torch.tensor([lp[t].logprob for t, lp in zip(ids[1:], r.prompt_logprobs[1:])])

    out = tmp_path / "grpo"
    cfg = GRPOSettings(max_steps=2, prompts_per_step=2, num_generations=4, max_completion_length=12,
                       learning_rate=1e-3, train_top_layers=1, temperature=1.0, use_vllm=True)
    logs = run_grpo(smol_model, items(n=16), cfg, PromptConfig(), out, scratch_dir=tmp_path / "scratch",
                    live_dir=str(tmp_path / "live"), evaluate=engine_logprobs)
    assert logs["reward"] == pytest.approx(logs["rewards/reward/mean"])   # the answer checker is the only reward
    before, after = weights(smol_model), weights(out)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.layers.29.") or k == "model.norm.weight" for k in changed)
    assert (tmp_path / "live" / "plots" / "metrics" / "reward.tsv").exists()
    assert logs["evaluation_compute"]["engine"] == "colocated with GRPO"
    in_engine, saved, base = logs["evaluation"], prompt_logprobs(out, ids), prompt_logprobs(smol_model, ids)
    assert (in_engine - saved).abs().max() < 1e-3 < (in_engine - base).abs().max()


def test_an_incomplete_checkpoint_is_not_resumed(tmp_path):
    from supernova.training.resume import last_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        if complete:
            (d / "trainer_state.json").write_text('{"global_step": %d}' % step)
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert not (tmp_path / "checkpoint-6").exists()


def test_a_finished_run_leaves_no_checkpoint_to_resume(tiny_model, tmp_path):
    scratch = tmp_path / "scratch"
    run_sft(tiny_model, items(), SFTSettings(max_steps=1, batch_size=2), PromptConfig(), tmp_path / "out",
            scratch_dir=scratch)
    assert (tmp_path / "out" / "model.safetensors").exists() and not scratch.exists()


def test_resume_needs_the_same_start_model_bytes(tiny_model, tmp_path):
    import shutil

    from supernova.training.resume import model_digest

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert model_digest(copy) == model_digest(tiny_model)          # the folder does not matter
    w = load_file(str(copy / "model.safetensors"))
    w["model.norm.weight"] += 1
    from safetensors.torch import save_file

    save_file(w, str(copy / "model.safetensors"))
    assert model_digest(copy) != model_digest(tiny_model)          # the bytes do


def test_lora_run_saves_a_merged_plain_model(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = GRPOSettings(max_steps=1, prompts_per_step=1, num_generations=2, max_completion_length=4, lora=True,
                       lora_r=4)
    run_grpo(tiny_model, items(), cfg, PromptConfig(), tmp_path / "out", scratch_dir=tmp_path / "scratch")
    saved = weights(tmp_path / "out")
    assert set(saved) == set(weights(tiny_model))          # adapters merged: no lora_* tensors left
    AutoModelForCausalLM.from_pretrained(tmp_path / "out")


def test_checkpoints_of_another_run_are_discarded_with_a_log_line(tmp_path, caplog):
    from supernova.training.resume import fresh_scratch

    (tmp_path / "s" / "checkpoint-2").mkdir(parents=True)
    with caplog.at_level("INFO"):
        fresh_scratch(tmp_path / "s", "fp")
    assert "discarding checkpoints checkpoint-2" in caplog.text
    assert not (tmp_path / "s" / "checkpoint-2").exists() and (tmp_path / "s" / "fingerprint").read_text() == "fp"


def test_the_sft_dataset_teaches_each_item_its_target():
    rows = items().head(3).assign(target=["Two steps.\nThe answer is: (A)", "The answer is: (B)", "x"])
    ds = sft_dataset(rows, PromptConfig())
    assert [r["completion"] for r in ds] == [[{"role": "assistant", "content": t}] for t in rows["target"]]


def test_rl_train_with_grpo_off_makes_the_sft_model_the_trained_model(tiny_model, tmp_path, monkeypatch):
    """An SFT-only run: the SFT model is saved as the stage's trained model (what evaluate scores),
    and the GRPO phase's declared outputs say it did not run."""
    import json
    import shutil

    from supernova import paths
    from supernova.rl_train import rl_train
    from supernova.schema import SFT, write_table

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model, paths.BASE_MODEL)
    sft_set = items().head(4).assign(pass_rate=0.0, loss=1.0, ifd=1.0, sft_score=1.0)
    write_table(paths.SFT_SET, sft_set, SFT)
    (paths.METRICS / "train" / "grpo" / "plots").mkdir(parents=True)
    (paths.METRICS / "train" / "grpo" / "plots" / "old.tsv").write_text("an earlier run's curve")
    rl_train({"rl_train": {"sft": {"max_steps": 1, "batch_size": 2, "learning_rate": 1e-3},
                           "grpo": {"enabled": False}}})            # no mixture needed: GRPO does not read it
    base, trained = weights(paths.BASE_MODEL), weights(paths.TRAINED_MODEL)
    assert any(not torch.equal(base[k], trained[k]) for k in base)
    assert json.loads((paths.METRICS / "train" / "grpo" / "metrics.json").read_text()) == {"enabled": False}
    assert list((paths.METRICS / "train" / "grpo" / "plots").iterdir()) == []
    assert "loss_last" in json.loads((paths.METRICS / "train" / "sft" / "metrics.json").read_text())
    resolved = json.loads((paths.TRAINED_MODEL / paths.COMPUTE_RECORD).read_text())
    assert "sft" in resolved and "grpo" not in resolved
    assert not paths.TRAIN_SCRATCH.exists()


def test_rl_train_needs_a_phase_and_score_runs_cannot_switch_grpo_off():
    from supernova.config import from_section
    from supernova.rl_train import RLTrainConfig
    from supernova.scoring import ScoreConfig

    with pytest.raises(ParamsError, match="field rl_train: .* both false"):
        from_section(RLTrainConfig, {"rl_train": {"sft": {"enabled": False}, "grpo": {"enabled": False}}}, "rl_train")
    with pytest.raises(ParamsError, match="field score.grpo.enabled"):
        from_section(ScoreConfig, {"score": {"tasks": ["a"], "grpo": {"enabled": False}}}, "score")


@pytest.mark.parametrize("share, expected", [("auto", 0.3), (0.6, 0.6)])
def test_the_gpu_memory_share_reaches_trls_colocated_engine(share, expected, tmp_path):
    from supernova.generation import GenerationConfig
    from supernova.training.grpo import grpo_config

    args = grpo_config(GRPOSettings(use_vllm=True), tmp_path, per_device=4, precision="no", gen=GenerationConfig(),
                       compute=ComputeConfig(gpu_memory_utilization=share), cpu=True)
    assert args.vllm_gpu_memory_utilization == expected and args.vllm_mode == "colocate"
