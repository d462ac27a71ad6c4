"""SFT and GRPO through TRL: weights move, frozen layers stay, checkpoints reload."""

import torch
from safetensors.torch import load_file

from supernova.prompts import PromptConfig
from supernova.schema import items_frame
from supernova.sources import load_entry
from supernova.training import GRPOSettings, SFTSettings, run_grpo, run_sft


def items(name="syllogism", n=8):
    [t] = load_entry({"kind": "reasoning_gym", "name": name, "size": n, "format": "mcq"}, "x", 0)
    return items_frame(t.items)


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


def test_grpo_with_varying_rewards_trains_only_the_top_layer(smol_model, tmp_path):
    out = tmp_path / "grpo"
    cfg = GRPOSettings(max_steps=2, prompts_per_step=2, num_generations=4, max_completion_length=12,
                       learning_rate=1e-4, train_top_layers=1, temperature=1.0)
    logs = run_grpo(smol_model, items(n=16), cfg, PromptConfig(), out, scratch_dir=tmp_path / "scratch",
                    live_dir=str(tmp_path / "live"))
    assert 0.0 <= logs["reward"] <= 1.0
    before, after = weights(smol_model), weights(out)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.layers.29.") or k == "model.norm.weight" for k in changed)
    assert (tmp_path / "live" / "plots" / "metrics" / "reward.tsv").exists()
