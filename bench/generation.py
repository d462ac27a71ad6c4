"""Generation throughput: the pipeline's backends vs plain transformers `generate`, side by side,
at the same dtype and at each one's best dtype on this machine, and the saving from prefilling a
prompt once for its n samples.

Workload: SmolLM2-135M-Instruct, 16 reasoning-gym prompts (~130 tokens) x 8 samples x 32 new
tokens (EOS ignored so every variant produces exactly the same number of tokens), temperature
0.7: the shape of probe, baseline, score and evaluate. Each variant runs in its own process
(vLLM owns its process), is timed `--repeats` times after one warm-up call, and reports its
median tokens/s.

    python bench/generation.py [--model data/models/base] [--repeats 3] [--dtypes float32,bfloat16]

``--dtypes`` defaults to what this machine computes natively: ``float32,bfloat16`` where
:mod:`supernova.hardware` says bf16 is native and fast (a CUDA GPU with bf16, a CPU with AMX),
``float32`` elsewhere (on an AVX2-only CPU a bf16 variant crawls). Every variant runs on the
CUDA device when there is one.

Variants: `vllm` (the pipeline's vLLM backend: prefix caching with 32-token blocks shares all
but a prompt's last partial block between its samples), `vllm-block128` (vLLM's default CPU block
size: a prompt shorter than 128 tokens shares nothing), `transformers` (the pipeline's fallback:
prompts prefilled once, KV cache repeated n times), `plain` (`generate(num_return_sequences=n)`,
which repeats each prompt n times before prefill).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS, SAMPLES, NEW_TOKENS = 16, 8, 32


def workload():
    from supernova.prompts import PromptConfig, messages
    from supernova.sources import load_entry

    convs = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships", "leg_counting"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": 16, "format": "mcq"}, "x", 0)
        convs += [messages(it.to_row(), PromptConfig()) for it in t.items[:PROMPTS // 4]]
    return convs


def machine() -> str:
    import torch

    from supernova.hardware import detect

    hw = detect()
    where = f"GPU {hw.gpu}" if hw.device == "cuda" else "CPU"
    return (f"{where}; torch CPU capability {hw.cpu_capability}; bf16 CPU flags: {', '.join(hw.cpu_flags) or 'none'}; "
            f"{hw.cores} cores; torch {torch.__version__}")


def default_dtypes(hw=None) -> str:
    """float32, and bfloat16 only where the hardware computes it natively and fast
    (:attr:`supernova.hardware.Hardware.native_bf16`)."""
    from supernova.hardware import detect

    return "float32,bfloat16" if (hw or detect()).native_bf16 else "float32"


def plain_generate(model_path: Path, convs, dtype: str, repeats: int) -> list[float]:
    """transformers `generate` on the whole batch, as a user would call it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from supernova.hardware import torch_device

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(torch_device()).eval()
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
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


def pipeline_backend(model_path: Path, convs, backend: str, dtype: str, repeats: int,
                     block_size: int | str = "auto") -> list[float]:
    """The pipeline's generator, exactly as probe/baseline/score/evaluate use it."""
    from supernova.generation import GenerationConfig, SamplingConfig, load_generator
    from supernova.hardware import ComputeConfig

    gen = load_generator(model_path, GenerationConfig(backend=backend, dtype=dtype, batch_size=PROMPTS),
                         ComputeConfig(block_size=block_size))
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
    return rates


def child(variant: str, dtype: str, model: Path, repeats: int) -> None:
    convs = workload()
    if variant == "plain":
        rates = plain_generate(model, convs, dtype, repeats)
    elif variant == "vllm-block128":
        rates = pipeline_backend(model, convs, "vllm", dtype, repeats, block_size=128)
    else:
        rates = pipeline_backend(model, convs, variant, dtype, repeats)
    print("RATES " + json.dumps(rates))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/models/base", help="prepared model folder (default: the pipeline's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtypes", default=None,
                    help="dtypes to compare (comma-separated; default: float32, and bfloat16 where it is native here)")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = Path(args.model)
    if args.variant:
        return child(args.variant, args.dtype, model, args.repeats)
    if not (model / "config.json").exists():
        from supernova.model import prepare_base_model

        model = prepare_base_model("embedded:SmolLM2-135M-Instruct", Path(tempfile.mkdtemp()) / "smol")
    from supernova.hardware import resolve_dtype, vllm_installed

    dtypes = (args.dtypes or default_dtypes()).split(",")
    backends = ["vllm", "vllm-block128"] if vllm_installed() else []
    runs: dict[tuple[str, str], list[float]] = {}
    print(f"machine: {machine()}")
    print(f"workload: {PROMPTS} prompts x {SAMPLES} samples x {NEW_TOKENS} new tokens; median of {args.repeats} "
          "timed runs after a warm-up")
    for variant in backends + ["transformers", "plain"]:
        for dtype in dtypes if variant != "vllm-block128" else ["float32"]:
            proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--dtype", dtype,
                                   "--model", str(model), "--repeats", str(args.repeats)],
                                  capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RATES ")]
            if proc.returncode or not line:
                sys.exit(f"{variant} {dtype} failed:\n{proc.stderr[-3000:]}")
            runs[variant, dtype] = json.loads(line[-1].split(" ", 1)[1])
            med = statistics.median(runs[variant, dtype])
            print(f"  {variant:14s} {dtype:9s} median {med:7.1f} tok/s   runs: "
                  f"{', '.join(f'{r:.0f}' for r in runs[variant, dtype])}", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    fast = backends[0] if backends else "transformers"

    def best(variant):
        d = max((d for (v, d) in med if v == variant), key=lambda d: med[variant, d])
        return d, med[variant, d]

    for dtype in dtypes:
        print(f"same dtype ({dtype}): pipeline ({fast}) / plain generate = "
              f"{med[fast, dtype] / med['plain', dtype]:.2f}x")
    (fd, f), (pd_, p) = best(fast), best("plain")
    print(f"best dtype on this machine: pipeline ({fast} {fd}) / plain generate ({pd_}) = {f / p:.2f}x")
    auto = resolve_dtype("auto")
    print(f"generation.dtype: auto resolves to {auto} here; fastest measured for {fast}: {fd}")
    for dtype in dtypes:
        print(f"prefill once per prompt, {dtype}: transformers (shared) / plain (per sample) = "
              f"{med['transformers', dtype] / med['plain', dtype]:.2f}x")
    if backends:
        print(f"prefill once per prompt, float32: vllm 32-token blocks / 128-token blocks = "
              f"{med['vllm', 'float32'] / med['vllm-block128', 'float32']:.2f}x")


if __name__ == "__main__":
    main()
