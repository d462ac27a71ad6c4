"""Generation throughput: the pipeline's backend (vLLM) vs plain transformers `generate`, side by side.

Workload: SmolLM2-135M-Instruct, 16 prompts x 4 samples x 64 new tokens (EOS ignored so both
produce exactly the same number of tokens), temperature 0.7. Each backend is timed `--repeats`
times after one warm-up call; the script prints median tokens/s of each and the ratio.

    python bench/generation.py [--model data/models/base] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

PROMPTS, SAMPLES, NEW_TOKENS = 16, 4, 64


def workload():
    from supernova.prompts import PromptConfig, messages
    from supernova.sources import load_entry

    convs = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships", "leg_counting"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "size": 16, "format": "mcq"}, "x", 0)
        convs += [messages(it.to_row(), PromptConfig()) for it in t.items[:PROMPTS // 4]]
    return convs


def plain_generate(model_path: Path, convs, repeats: int) -> list[float]:
    """transformers `generate` on the whole batch, fp32, as a user would call it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    rates = []
    for i in range(repeats + 1):
        torch.manual_seed(i)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=True, temperature=0.7, top_k=0, num_return_sequences=SAMPLES,
                                 max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, pad_token_id=tok.pad_token_id)
        dt = time.perf_counter() - t
        new = out.shape[0] * (out.shape[1] - enc["input_ids"].shape[1])
        if i:  # the first call is a warm-up
            rates.append(new / dt)
    return rates


def pipeline_backend(model_path: Path, convs, repeats: int, backend: str) -> tuple[str, list[float]]:
    """The pipeline's generator (`generation.backend`), exactly as probe/evaluate use it."""
    from supernova.generation import GenerationConfig, SamplingConfig, load_generator

    gen = load_generator(model_path, GenerationConfig(backend=backend))
    rates = []
    try:
        for i in range(repeats + 1):
            s = SamplingConfig(n=SAMPLES, temperature=0.7, max_new_tokens=NEW_TOKENS, seed=i, ignore_eos=True)
            t = time.perf_counter()
            outs = gen.generate(convs, s, desc="bench")
            dt = time.perf_counter() - t
            assert all(len(o) == SAMPLES for o in outs)
            if i:
                rates.append(len(convs) * SAMPLES * NEW_TOKENS / dt)
    finally:
        gen.close()
    return gen.name, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/models/base", help="prepared model folder (default: the pipeline's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="auto", help="pipeline backend to compare (default: auto)")
    args = ap.parse_args()
    model = Path(args.model)
    if not (model / "config.json").exists():
        from supernova.model import prepare_base_model

        model = prepare_base_model("embedded:SmolLM2-135M-Instruct", Path(tempfile.mkdtemp()) / "smol")
    convs = workload()
    name, fast = pipeline_backend(model, convs, args.repeats, args.backend)
    plain = plain_generate(model, convs, args.repeats)
    f, p = statistics.median(fast), statistics.median(plain)
    print(f"workload: {PROMPTS} prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens, {args.repeats} timed runs each")
    print(f"pipeline backend ({name}): median {f:7.1f} tok/s   runs: {', '.join(f'{r:.0f}' for r in fast)}")
    print(f"plain generate (fp32):     median {p:7.1f} tok/s   runs: {', '.join(f'{r:.0f}' for r in plain)}")
    print(f"ratio: {f / p:.2f}x (target >= 2.5x)")


if __name__ == "__main__":
    main()
