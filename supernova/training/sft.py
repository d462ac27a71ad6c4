"""Supervised fine-tuning (TRL ``SFTTrainer``) on prompt → each item's SFT target (the SFT set's
``target``: the answer line ``The answer is: <gold>`` or an accepted reasoning trace ending with
it), and the gold-answer batches that sft-select and the gradient proxy score."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..generation import cuda_available
from ..hardware import ComputeConfig, apply_threads, log_resolved, resolve_precision
from ..model import load_trainable
from ..prompts import PromptConfig, gold_completion, question_messages
from .launch import batch_facts, check_world, launch, micro_batches, per_device_batch, processes_record, world_size
from .resume import fresh_scratch, live_callbacks, save_final
from .settings import SFTSettings


def gold_answer_batch(tok, rows: list[dict[str, Any]], prompt: PromptConfig, *, with_question: bool = True):
    """(input_ids, attention_mask, labels) for prompt + gold completion, with the loss on the
    completion only; ``with_question=False`` puts an empty user turn in place of the question
    (the denominator of the IFD ratio)."""
    import torch

    ids, labels = [], []
    for r in rows:
        conv = question_messages(r, prompt) if with_question else [{"role": "user", "content": ""}]
        p_ids = tok(tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True),
                    add_special_tokens=False)["input_ids"]
        a_ids = tok(gold_completion(r) + tok.eos_token, add_special_tokens=False)["input_ids"]
        ids.append(p_ids + a_ids)
        labels.append([-100] * len(p_ids) + a_ids)
    width = max(len(x) for x in ids)
    pad = [tok.pad_token_id]
    return (torch.tensor([x + pad * (width - len(x)) for x in ids]),
            torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids]),
            torch.tensor([x + [-100] * (width - len(x)) for x in labels]))


def sft_dataset(items: pd.DataFrame, prompt: PromptConfig):
    """Prompt-completion rows: each item's prompt, and its ``target`` as the assistant's turn."""
    from datasets import Dataset

    rows = items.to_dict("records")
    return Dataset.from_list([{"prompt": question_messages(r, prompt),
                               "completion": [{"role": "assistant", "content": r["target"]}]}
                              for r in rows])


def run_sft(model_path: str | os.PathLike, items: pd.DataFrame, cfg: SFTSettings, prompt: PromptConfig,
            out_dir: str | os.PathLike, *, scratch_dir: str | os.PathLike, live_dir: str | None = None,
            compute: ComputeConfig = ComputeConfig(), callbacks: list | None = None) -> dict[str, Any]:
    """Supervised fine-tuning on ``items`` (SFT set rows, :data:`supernova.schema.SFT`: each
    item's ``target`` is its completion); save the final model to ``out_dir``.
    With ``compute.processes`` > 1 the run trains in that many processes
    (:mod:`supernova.training.launch`; ``callbacks``, trainer callbacks of a one-process run,
    cannot be passed to them). Returns the last logged metrics, the run's
    ``global_batch`` and ``steps``, and, under ``"compute"``, the precision and processes the
    run resolved.

    SFT runs are short and keep no checkpoints (``save_strategy="no"``): an interrupted run
    starts over; ``scratch_dir`` holds the trainer output and the curves until the end."""
    processes = compute.processes
    per_device_batch(cfg.batch_size, processes, "batch_size")
    if callbacks and processes > 1:
        raise ValueError("callbacks cannot be passed to training processes")
    precision = resolve_precision(cfg.mixed_precision)
    resolved = {"mixed_precision": precision, **processes_record(compute)}
    log_resolved(f"SFT ({Path(model_path).name})", **resolved)
    scratch = Path(scratch_dir)
    fresh_scratch(scratch)
    job = dict(model_path=str(model_path), cfg=cfg, prompt=prompt, out_dir=str(out_dir), scratch=scratch,
               live_dir=live_dir, precision=precision, compute=compute)
    trained = (launch(train_sft, items, schema="SFT", **job) if processes > 1
               else train_sft(items=items, callbacks=callbacks, **job))
    return {**trained, "compute": resolved}


def train_sft(model_path: str, items: pd.DataFrame, cfg: SFTSettings, prompt: PromptConfig, out_dir: str, *,
              scratch: Path, live_dir: str | None, precision: str, compute: ComputeConfig,
              callbacks: list | None = None) -> dict[str, Any]:
    """The SFT trainer's part of :func:`run_sft`, in this process: one of ``WORLD_SIZE``
    processes, training on its share of each global batch. Returns the last logged metrics with
    the batch and step count the trainer ran."""
    from trl import SFTConfig, SFTTrainer

    apply_threads(compute)
    per_device = per_device_batch(cfg.batch_size, world_size(), "batch_size")
    model, tok = load_trainable(model_path, cfg.dtype, cfg.train_top_layers)
    micro, passes = micro_batches(per_device, compute.resolved()["train_micro_batch"])
    args = SFTConfig(
        output_dir=str(scratch), max_steps=cfg.max_steps, per_device_train_batch_size=micro,
        gradient_accumulation_steps=passes, learning_rate=cfg.learning_rate, logging_steps=1, save_strategy="no",
        seed=cfg.seed, data_seed=cfg.seed, use_cpu=not cuda_available(), bf16=precision == "bf16",
        gradient_checkpointing=False, report_to="none", completion_only_loss=True, max_length=1024,
        ddp_find_unused_parameters=False,   # every trainable parameter takes part in each forward
    )
    check_world(args)
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(items, prompt), processing_class=tok,
                         callbacks=(live_callbacks(scratch, live_dir, resume=False) if args.process_index == 0 else [])
                         + list(callbacks or []))
    trainer.train()
    save_final(trainer, tok, out_dir, merge_lora=False, scratch=scratch, live_dir=live_dir)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {**(logs[-1] if logs else {}), **batch_facts(trainer)}
