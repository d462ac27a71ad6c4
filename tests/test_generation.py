"""Generation backends: shapes, seeding, prefill shared by the n samples of a prompt, the backend
choice, and vLLM/transformers agreement under greedy decoding."""

import pytest

from supernova.answer import extract_answer
from supernova.generation import GenerationConfig, HFGenerator, SamplingConfig, load_generator
from supernova.prompts import PromptConfig, messages
from supernova.sources import load_entry

CONVS = [[{"role": "user", "content": f"What is {i} + {i + 3}? Reply: The answer is: <n>"}] for i in range(5)]


def test_hf_shapes_and_seeded_determinism(tiny_model):
    gen = HFGenerator(tiny_model, GenerationConfig(backend="transformers", dtype="float32", batch_size=2))
    s = SamplingConfig(n=3, temperature=1.0, max_new_tokens=6, seed=7)
    a = gen.generate(CONVS, s, keys=[str(i) for i in range(5)])
    assert len(a) == 5 and all(len(x) == 3 for x in a)
    assert a == gen.generate(CONVS, s, keys=[str(i) for i in range(5)])
    assert a != gen.generate(CONVS, SamplingConfig(n=3, temperature=1.0, max_new_tokens=6, seed=8),
                             keys=[str(i) for i in range(5)])


def test_greedy_gives_n_identical_copies(tiny_model):
    gen = HFGenerator(tiny_model, GenerationConfig(backend="transformers", dtype="float32"))
    out = gen.generate(CONVS[:2], SamplingConfig(n=4, temperature=0.0, max_new_tokens=5))
    assert all(len(set(x)) == 1 and len(x) == 4 for x in out)


def test_hf_prefills_each_prompt_once_and_samples_as_plain_generate_does(tiny_model):
    """The n samples of a prompt decode from one prefilled KV cache, and the samples are those of
    transformers' own ``generate(num_return_sequences=n)`` with the same seed."""
    import torch

    gen = HFGenerator(tiny_model, GenerationConfig(backend="transformers", dtype="float32", batch_size=5))
    s = SamplingConfig(n=4, temperature=1.0, max_new_tokens=6, seed=5)
    widths = []
    hook = gen.model.register_forward_pre_hook(lambda m, a, kw: widths.append(tuple(kw["input_ids"].shape)),
                                               with_kwargs=True)
    try:
        ours = gen.generate(CONVS, s, keys=["k"] * 5)
    finally:
        hook.remove()
    enc = gen.tok([gen.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CONVS],
                  return_tensors="pt", padding=True, add_special_tokens=False).to(gen.device)
    prompt_len = enc["input_ids"].shape[1]
    assert widths[0] == (5, prompt_len - 1)                     # the prompts, once
    assert all(w == (20, 1) for w in widths[1:])                # then one token per sequence and step
    from supernova.generation import request_seed

    torch.manual_seed(request_seed(5, "k"))
    with torch.inference_mode():
        ref = gen.model.generate(**enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=6,
                                 num_return_sequences=4, pad_token_id=gen.tok.pad_token_id,
                                 eos_token_id=gen.tok.eos_token_id)
    texts = gen.tok.batch_decode(ref[:, prompt_len:], skip_special_tokens=True)
    assert ours == [texts[i * 4:(i + 1) * 4] for i in range(5)]


def test_auto_backend_says_which_and_why(tiny_model, monkeypatch):
    import supernova.hardware as hw

    monkeypatch.setattr(hw, "vllm_installed", lambda: False)
    gen = load_generator(tiny_model, GenerationConfig(backend="auto", dtype="float32"))
    assert gen.name == "transformers"
    assert gen.settings == {"backend": "transformers", "dtype": "float32", "device": gen.device,
                            "backend_reason": "auto: vLLM is not installed"}


def test_an_explicit_backend_that_is_missing_is_a_one_line_error(tiny_model, monkeypatch):
    import supernova.hardware as hw
    from supernova.errors import ParamsError

    monkeypatch.setattr(hw, "vllm_installed", lambda: False)
    with pytest.raises(ParamsError, match="generation.backend.*not installed|not installed.*generation.backend"):
        load_generator(tiny_model, GenerationConfig(backend="vllm"))


def fixed_prompt_set():
    convs = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships", "leg_counting"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": 8, "format": "mcq", "seed": 11}, "x", 0)
        convs += [messages(it.to_row(), PromptConfig()) for it in t.items]
    return convs


@pytest.mark.vllm
def test_vllm_and_transformers_agree_under_greedy_fp32(smol_model):
    convs = fixed_prompt_set()
    s = SamplingConfig(n=1, temperature=0.0, max_new_tokens=24)
    cfg = GenerationConfig(dtype="float32", batch_size=16)
    hf = HFGenerator(smol_model, cfg).generate(convs, s)
    vg = load_generator(smol_model, GenerationConfig(backend="vllm", dtype="float32"))
    try:
        vl = vg.generate(convs, s)
        sampled = SamplingConfig(n=2, temperature=0.7, max_new_tokens=16, seed=3)
        keys = [str(i) for i in range(len(convs))]
        first, second = vg.generate(convs, sampled, keys=keys), vg.generate(convs, sampled, keys=keys)
    finally:
        vg.close()
    agree = sum(extract_answer(a[0]) == extract_answer(b[0]) for a, b in zip(hf, vl)) / len(convs)
    assert agree >= 0.9, f"extracted answers agree on {agree:.0%} of {len(convs)} prompts"
    assert sum(extract_answer(a[0]) is not None for a in hf) >= len(convs) // 2  # the comparison is not vacuous
    assert first == second  # per-prompt seeds: the same samples however the engine batches them


def test_vllm_engine_args_on_a_cpu_size_the_kv_cache_from_the_machine_and_the_rollouts(tiny_model):
    from supernova.generation import cuda_available, kv_bytes_per_token, vllm_engine_args
    from supernova.hardware import ComputeConfig

    if cuda_available():
        pytest.skip("the CPU sizing rules; a GPU takes a memory fraction instead")
    cfg = GenerationConfig(dtype="float32", max_model_len=512)
    per_token = 2 * 2 * 2 * 16 * 4           # keys and values x 2 layers x 2 KV heads x 16 dims x fp32
    assert kv_bytes_per_token(tiny_model, "float32") == per_token
    assert kv_bytes_per_token(tiny_model, "bfloat16") == per_token // 2
    rollouts = vllm_engine_args(cfg, ComputeConfig(), model_path=tiny_model, max_seqs=4)
    assert rollouts["kv_cache_memory_bytes"] == 4 * 512 * per_token
    assert rollouts["block_size"] == 32 and rollouts["enforce_eager"] and rollouts["dtype"] == "float32"
    sampling = vllm_engine_args(cfg, ComputeConfig())
    assert sampling["kv_cache_memory_bytes"] == int(ComputeConfig().resolved()["kv_cache_gib"] * (1 << 30))
    explicit = vllm_engine_args(cfg, ComputeConfig(kv_cache_gib=0.25), model_path=tiny_model, max_seqs=4)
    assert explicit["kv_cache_memory_bytes"] == 1 << 28
