"""SFT and GRPO through TRL: weights move, frozen layers stay, checkpoints reload."""

import pytest
import torch
from safetensors.torch import load_file

from supernova.generation import vllm_available
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


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")
def test_colocated_vllm_follows_the_trainers_weights(smol_model, tmp_path):
    """After a weight change, TRL's colocated vLLM engine generates what the changed model does."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from vllm import SamplingParams

    from supernova.answer import reward
    from supernova.generation import GenerationConfig
    from supernova.training import colocated_vllm, grpo_dataset

    tok = AutoTokenizer.from_pretrained(smol_model)
    model = AutoModelForCausalLM.from_pretrained(smol_model)
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=8, use_vllm=True, vllm_mode="colocate",
                      vllm_max_model_length=512, report_to="none")
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 17 + 25?"}], add_generation_prompt=True,
                                  tokenize=True, return_dict=False)
    with colocated_vllm(GenerationConfig(dtype="float32")):
        trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args,
                              train_dataset=grpo_dataset(items(), PromptConfig()))
        vg = trainer.vllm_generation

        def vllm_greedy():
            out = vg.llm.generate([{"prompt_token_ids": ids}], SamplingParams(temperature=0, max_tokens=10),
                                  use_tqdm=False)
            return list(out[0].outputs[0].token_ids)

        def hf_greedy():
            out = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False)
            return out[0, len(ids):].tolist()

        original = vllm_greedy()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".layers.28.mlp" in name or ".layers.29.mlp" in name:
                    p.mul_(-3.0)
        vg.sync_weights()
        changed = vllm_greedy()
        assert changed != original
        assert changed == hf_greedy()[:len(changed)]


def test_an_incomplete_checkpoint_is_not_resumed(tmp_path):
    from supernova.training import _last_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        if complete:
            (d / "trainer_state.json").write_text('{"global_step": %d}' % step)
    assert _last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert not (tmp_path / "checkpoint-6").exists()
