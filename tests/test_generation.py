"""Generation backends: shapes, seeding, and vLLM/transformers agreement under greedy decoding."""

import pytest

from supernova.answer import extract_answer
from supernova.generation import GenerationConfig, HFGenerator, SamplingConfig, load_generator, vllm_available
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


def test_auto_backend_without_vllm_falls_back(tiny_model, monkeypatch):
    import supernova.generation as g

    monkeypatch.setattr(g, "vllm_available", lambda: False)
    assert load_generator(tiny_model, GenerationConfig(backend="auto")).name == "transformers"


def fixed_prompt_set():
    convs = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships", "leg_counting"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "size": 8, "format": "mcq", "seed": 11}, "x", 0)
        convs += [messages(it.to_row(), PromptConfig()) for it in t.items]
    return convs


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_available(), reason="vLLM is not installed")
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
