"""SFT and GRPO through TRL: weights move, frozen layers stay, checkpoints reload."""

import os

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
    rendezvous_before = [k for k in ("MASTER_PORT", "RANK", "WORLD_SIZE") if k in os.environ]
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
    # the engine's rendezvous port stays bound; child processes must not inherit it
    assert [k for k in ("MASTER_PORT", "RANK", "WORLD_SIZE") if k in os.environ] == rendezvous_before


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


def test_compact_lm_head_gives_the_same_completion_logprobs_and_gradients(tiny_model):
    """Scoring only completion positions on a CPU changes the cost, not the numbers."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from supernova.training import compact_lm_head_on_cpu

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    add_fused_lm_head(model, temperature=0.7, cast_lm_head_to_fp32=False, outputs=("log_probs", "entropy"))
    torch.manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (3, 20))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0                                   # left padding
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-6] = -100                             # only the last 6 tokens are completion

    def run():
        model.zero_grad()
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        out.log_probs.sum().backward()
        return out.log_probs.detach().clone(), model.model.embed_tokens.weight.grad.clone()

    plain_lp, plain_grad = run()
    with compact_lm_head_on_cpu():
        compact_lp, compact_grad = run()
    torch.testing.assert_close(compact_lp, plain_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compact_grad, plain_grad, rtol=1e-4, atol=1e-6)


def test_a_finished_run_leaves_no_checkpoint_to_resume(tiny_model, tmp_path):
    scratch = tmp_path / "scratch"
    run_sft(tiny_model, items(), SFTSettings(max_steps=1, batch_size=2), PromptConfig(), tmp_path / "out",
            scratch_dir=scratch)
    assert (tmp_path / "out" / "model.safetensors").exists() and not scratch.exists()


def test_resume_needs_the_same_start_model_bytes(tiny_model, tmp_path):
    import shutil

    from supernova.training import model_digest

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
