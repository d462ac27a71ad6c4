"""Seconds per GRPO step: plain TRL settings vs the pipeline's settings, side by side, at each
training precision (``--precisions``: the same precision on both sides, and each at its best),
and the pipeline's seconds and peak memory per training pass size (``--micro-batches``:
``compute.train_micro_batch``, the step's batch accumulated over passes of that many sequences).

Workload: SmolLM2-135M-Instruct, 4 prompts x 4 generations per step, at most 32 completion
tokens, reward = the shared answer checker on reasoning-gym multiple-choice items. Each variant
trains `--steps` steps in its own process (vLLM must own its process); the first step is a
warm-up, the median of the others is reported with the process's peak RSS, then the ratios.
The machine (CPU capability, bf16 flags, cores) and what ``mixed_precision: auto`` resolves to
on it are printed first.

    python bench/train_step.py [--model data/models/base] [--steps 6] [--micro-batches 16,2] [--set lora=true ...]

``--micro-batches 16,2 --pipeline-only`` compares one pass per step with passes of 2.

``--set key=value`` overrides a field of rl_train.grpo for the pipeline variant (YAML values);
``mixed_precision`` comes from ``--precisions``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROMPTS, GENERATIONS, COMPLETION = 4, 4, 32


def items():
    import pandas as pd

    from supernova.schema import items_frame
    from supernova.sources import load_entry

    frames = []
    for name in ("syllogism", "family_relationships", "basic_arithmetic", "leg_counting"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": 16, "format": "mcq"}, "x", 0)
        frames.append(items_frame(t.items))
    return pd.concat(frames, ignore_index=True)


class StepTimer:
    """A trainer callback recording wall seconds per optimizer step."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class _CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                outer.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                outer.times.append(time.perf_counter() - outer.t)

        self.times: list[float] = []
        self.callback = _CB()


def plain(model: Path, steps: int, out: Path, precision: str = "no") -> list[float]:
    """TRL's GRPOTrainer with its defaults (gradient checkpointing, HF generate, the chat
    template's default system prompt) on this machine's device (the CUDA device when there is
    one, as the pipeline's runs), at ``precision`` (``bf16``: TRL's bf16 flag)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from supernova.answer import reward
    from supernova.hardware import torch_device
    from supernova.prompts import PromptConfig
    from supernova.training import grpo_dataset

    timer = StepTimer()
    args = GRPOConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=PROMPTS * GENERATIONS,
                      num_generations=GENERATIONS, max_completion_length=COMPLETION,
                      use_cpu=torch_device() == "cpu", bf16=precision == "bf16",
                      report_to="none", save_strategy="no", logging_steps=1, seed=0)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model), reward_funcs=[reward], args=args,
                          train_dataset=grpo_dataset(items(), PromptConfig(system=None)),
                          processing_class=AutoTokenizer.from_pretrained(model), callbacks=[timer.callback])
    trainer.train()
    return timer.times


def pipeline(model: Path, steps: int, out: Path, overrides: dict | None = None,
             micro_batch: int | str = "auto") -> list[float]:
    """The pipeline's run_grpo with the default run's settings (params.yaml rl_train.grpo,
    prompt, generation, compute) at this workload's size, in training passes of ``micro_batch``."""
    import dataclasses

    from supernova.config import from_section, load_params
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig
    from supernova.prompts import PromptConfig
    from supernova.rl_train import RLTrainConfig
    from supernova.training import run_grpo

    params = load_params()
    cfg = dataclasses.replace(from_section(RLTrainConfig, params, "rl_train").grpo, max_steps=steps,
                              prompts_per_step=PROMPTS, num_generations=GENERATIONS,
                              max_completion_length=COMPLETION, save_steps=0, **(overrides or {}))
    timer = StepTimer()
    run_grpo(model, items(), cfg, from_section(PromptConfig, params, "prompt"), out / "model",
             scratch_dir=out / "scratch", gen=from_section(GenerationConfig, params, "generation"),
             compute=dataclasses.replace(from_section(ComputeConfig, params, "compute"),
                                         train_micro_batch=micro_batch),
             callbacks=[timer.callback])
    return timer.times


def child(variant: str, model: Path, steps: int, overrides: dict, micro_batch: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        times = (plain(model, steps, Path(tmp), overrides.get("mixed_precision", "no")) if variant == "plain"
                 else pipeline(model, steps, Path(tmp), overrides,
                               micro_batch if micro_batch == "auto" else int(micro_batch)))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6    # Linux: KiB
    print("STEP_TIMES " + json.dumps({"times": times, "peak_rss_gb": peak_gb}))


def run_variant(variant: str, model: Path, steps: int, sets: list[str],
                micro_batch: str = "auto") -> tuple[list[float], float]:
    """(seconds of each step after the warm-up, peak RSS in GB) of ``variant`` in its own process."""
    proc = subprocess.run([sys.executable, __file__, "--variant", variant, "--model", str(model),
                           "--steps", str(steps), "--micro-batch", micro_batch,
                           *sum((["--set", kv] for kv in sets), [])],
                          capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("STEP_TIMES ")]
    if proc.returncode or not line:
        sys.exit(f"{variant} {sets} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(line[-1].split(" ", 1)[1])
    return out["times"][1:], out["peak_rss_gb"]  # drop the warm-up step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/models/base")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a rl_train.grpo field for the pipeline variant")
    ap.add_argument("--precisions", default="no,bf16", help="precisions to compare (comma-separated)")
    ap.add_argument("--pipeline-only", action="store_true", help="skip the plain TRL baseline")
    ap.add_argument("--micro-batches", default="auto",
                    help="run the pipeline at each of these compute.train_micro_batch values (comma-separated; "
                         "the first is compared with plain TRL)")
    ap.add_argument("--variant", choices=["plain", "pipeline"], help=argparse.SUPPRESS)
    ap.add_argument("--micro-batch", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    model = Path(args.model)
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    if args.variant:
        return child(args.variant, model, args.steps, overrides, args.micro_batch)
    if not (model / "config.json").exists():
        from supernova.model import prepare_base_model

        model = prepare_base_model("embedded:SmolLM2-135M-Instruct", Path(tempfile.mkdtemp()) / "smol")
    import torch

    from supernova.hardware import detect, resolve_precision

    hw = detect()
    print(f"machine: {'GPU ' + str(hw.gpu) if hw.device == 'cuda' else 'CPU'}; torch CPU capability "
          f"{hw.cpu_capability}; bf16 CPU flags: {', '.join(hw.cpu_flags) or 'none'}; {hw.cores} cores; "
          f"torch {torch.__version__}")
    print(f"workload: {PROMPTS} prompts x {GENERATIONS} generations, <= {COMPLETION} completion tokens, "
          f"{args.steps} steps (first dropped); mixed_precision: auto resolves to {resolve_precision('auto')} here")
    results, peaks = {}, {}
    micro_batches = [m for m in args.micro_batches.split(",") if m]
    for precision in args.precisions.split(","):
        sets = [f"mixed_precision='{precision}'", *args.set]
        runs = [("pipeline", m) for m in micro_batches]
        if not args.pipeline_only:
            runs.append(("plain", "-"))
        for variant, micro in runs:
            key = (variant, precision, micro)
            if variant == "plain":
                results[key], peaks[key] = run_variant("plain", model, args.steps, [f"mixed_precision='{precision}'"])
            else:
                results[key], peaks[key] = run_variant("pipeline", model, args.steps, sets, micro)
            t = results[key]
            print(f"  {variant:8s} mixed_precision={precision:4s} micro_batch={micro:4s} {statistics.median(t):6.2f} "
                  f"s/step  peak RSS {peaks[key]:.2f} GB   steps: {', '.join(f'{x:.1f}' for x in t)}", flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    for precision in args.precisions.split(","):
        for m in micro_batches[1:]:
            one, other = ("pipeline", precision, micro_batches[0]), ("pipeline", precision, m)
            print(f"pass size ({precision}): micro_batch {m} / {micro_batches[0]}: "
                  f"{med[other] / med[one]:.2f}x the time, {peaks[other] / peaks[one]:.2f}x the peak RSS "
                  f"({peaks[other]:.2f} vs {peaks[one]:.2f} GB)")
    if args.pipeline_only:
        return
    for precision in args.precisions.split(","):
        print(f"same precision ({precision}): plain TRL / pipeline = "
              f"{med['plain', precision, '-'] / med['pipeline', precision, micro_batches[0]]:.2f}x faster")
    best = {v: min((p for (w, p, _) in med if w == v), key=lambda p: med[v, p, "-" if v == "plain" else micro_batches[0]])
            for v in ("pipeline", "plain")}
    print(f"best precision on this machine: plain TRL ({best['plain']}) / pipeline ({best['pipeline']}) = "
          f"{med['plain', best['plain'], '-'] / med['pipeline', best['pipeline'], micro_batches[0]]:.2f}x faster")


if __name__ == "__main__":
    main()
