"""One test per library patch (supernova/patches.py): each fails if its patch stops changing what
it is meant to change, and every patch refuses an untested library version in one line."""

import contextlib
import os

import pytest
import torch

from supernova import patches
from supernova.prompts import PromptConfig
from supernova.schema import items_frame
from supernova.sources import load_entry


def items(n=8):
    [t] = load_entry({"kind": "reasoning_gym", "name": "syllogism", "n_items": n, "format": "mcq"}, "x", 0)
    return items_frame(t.items)


@pytest.mark.parametrize("library, apply", [
    ("trl", lambda tmp: patches.colocated_vllm({"dtype": "float32"}, sync_by_reload=True)),
    ("vllm", lambda tmp: patches.colocated_vllm({"dtype": "float32"}, sync_by_reload=True)),
    ("trl", lambda tmp: patches.compact_lm_head_on_cpu()),
    ("transformers", lambda tmp: patches.detach_gguf_quantizer(object())),
    ("dvclive", lambda tmp: patches.resumable_dvclive_callback(tmp, resume=False)),
])
def test_every_patch_refuses_an_untested_version_in_one_line(library, apply, monkeypatch, tmp_path):
    real = patches.installed_version
    monkeypatch.setattr(patches, "installed_version", lambda lib: "99.0" if lib == library else real(lib))
    with pytest.raises(patches.UntestedVersionError) as e:
        with contextlib.ExitStack() as stack:
            result = apply(tmp_path)
            if hasattr(result, "__enter__"):
                stack.enter_context(result)
    msg = str(e.value)
    assert "\n" not in msg and f"{library} 99.0 is outside the range" in msg and "patch" in msg


def test_installed_versions_are_the_tested_ones():
    for library in patches.TESTED:
        patches.require(library, "test")


def test_compact_lm_head_projects_only_completion_positions_with_the_same_numbers(tiny_model, monkeypatch):
    """With the patch, TRL's fused LM head projects only the scored positions (the saving) and
    the log-probs and gradients stay the same; without it, every position is projected."""
    import trl.trainer.utils as tu
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    projected = []
    real_apply = tu._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        projected.append(hidden.shape[0])
        return real_apply(hidden, *args)

    monkeypatch.setattr(tu._ChunkedLogProbFunction, "apply", counting_apply)
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
    with patches.compact_lm_head_on_cpu():
        compact_lp, compact_grad = run()
    assert projected == [3 * 19, 3 * 6]           # every shifted position vs only the completion
    torch.testing.assert_close(compact_lp, plain_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compact_grad, plain_grad, rtol=1e-4, atol=1e-6)


def test_a_gguf_model_saves_as_a_plain_model_only_with_its_quantizer_detached(tmp_path):
    import json

    from transformers import AutoModelForCausalLM

    from supernova.model import embedded_gguf

    folder, filename = embedded_gguf("SmolLM2-135M-Instruct")

    def load():
        return AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)

    with pytest.raises(ValueError, match="not serializable"):     # what the patch exists for
        load().save_pretrained(tmp_path / "attached", safe_serialization=True)
    model = load()
    patches.detach_gguf_quantizer(model)
    model.save_pretrained(tmp_path / "detached", safe_serialization=True)
    assert "quantization_config" not in json.loads((tmp_path / "detached" / "config.json").read_text())
    assert getattr(AutoModelForCausalLM.from_pretrained(tmp_path / "detached"), "hf_quantizer", None) is None


def test_a_resumed_dvclive_run_continues_its_curves_from_the_checkpoint(tmp_path):
    """Steps 0-4 logged, the run resumed from trainer step 2: the curve is steps 0, 1 from the
    first run and 2, 3 from the resumed one, not a duplicate 2-4 or a jump to step 5."""
    import pandas as pd
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    live = tmp_path / "live"

    def train(resume, start, losses):
        cb = patches.resumable_dvclive_callback(live, resume=resume)
        state = TrainerState(global_step=start)
        cb.on_train_begin(args, state, TrainerControl())
        for loss in losses:
            cb.on_log(args, state, TrainerControl(), logs={"loss": loss})
        cb.live.end()

    train(False, 0, [5.0, 4.0, 3.0, 2.0, 1.0])
    train(True, 2, [30.0, 20.0])
    curve = pd.read_csv(live / "plots" / "metrics" / "loss.tsv", sep="\t")
    assert curve["step"].tolist() == [0, 1, 2, 3]
    assert curve["loss"].tolist() == [5.0, 4.0, 30.0, 20.0]


@pytest.mark.vllm
def test_colocated_vllm_follows_the_settings_and_the_trainers_weights(smol_model, tmp_path):
    """TRL's colocated vLLM engine is built with the project's dtype and KV-cache size, and after a
    weight change it generates what the changed model does. Needs vLLM: deselect with
    ``-m "not vllm"`` where it is not installed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from vllm import SamplingParams

    from supernova.answer import reward
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig
    from supernova.training.grpo import grpo_dataset, trl_vllm

    tok = AutoTokenizer.from_pretrained(smol_model)
    model = AutoModelForCausalLM.from_pretrained(smol_model)
    args = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=8, use_vllm=True, vllm_mode="colocate",
                      vllm_max_model_length=512, report_to="none")
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 17 + 25?"}], add_generation_prompt=True,
                                  tokenize=True, return_dict=False)
    rendezvous_before = [k for k in ("MASTER_PORT", "RANK", "WORLD_SIZE") if k in os.environ]
    with trl_vllm(GenerationConfig(dtype="float32"), ComputeConfig(kv_cache_gib=0.375)):
        trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args,
                              train_dataset=grpo_dataset(items(), PromptConfig()))
        vg = trainer.vllm_generation
        engine = vg.llm.llm_engine.vllm_config
        assert engine.cache_config.kv_cache_memory_bytes == int(0.375 * (1 << 30))
        assert engine.model_config.dtype == torch.float32

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


def test_colocated_engines_set_up_side_by_side_get_different_rendezvous_ports(monkeypatch):
    """Two GRPO runs starting at once each pick their vLLM engine's port before either binds it.
    TRL alone gives both the first of its fixed candidates that is free (29500); inside
    ``colocated_vllm`` each gets its own port from the OS, and the variable is undone on exit."""
    from trl.trainer.utils import ensure_master_addr_port

    monkeypatch.delenv("MASTER_PORT", raising=False)
    ports = []
    for _ in range(2):
        with patches.colocated_vllm({"dtype": "float32"}, sync_by_reload=True):
            ensure_master_addr_port()              # what TRL's VLLMGeneration does before building the engine
            ports.append(int(os.environ["MASTER_PORT"]))
        assert "MASTER_PORT" not in os.environ
    assert ports[0] != ports[1], ports
