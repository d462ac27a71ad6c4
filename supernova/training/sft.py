"""Supervised fine-tuning (TRL ``SFTTrainer``) on prompt → ``The answer is: <gold>``, and the
gold-answer batches that sft-select and the gradient proxy score with the same loss."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..generation import cuda_available
from ..hardware import log_resolved, resolve_precision
from ..model import load_trainable
from ..prompts import PromptConfig, gold_completion, messages
from .resume import fresh_scratch, live_callbacks, save_final
from .settings import SFTSettings


def gold_answer_batch(tok, rows: list[dict[str, Any]], prompt: PromptConfig, *, with_question: bool = True):
    """(input_ids, attention_mask, labels) for prompt + gold completion, with the loss on the
    completion only; ``with_question=False`` puts an empty user turn in place of the question
    (the denominator of the IFD ratio)."""
    import torch

    ids, labels = [], []
    for r in rows:
        conv = messages(r, prompt) if with_question else [{"role": "user", "content": ""}]
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
    from datasets import Dataset

    rows = items.to_dict("records")
    return Dataset.from_list([{"prompt": messages(r, prompt),
                               "completion": [{"role": "assistant", "content": gold_completion(r)}]}
                              for r in rows])


def run_sft(model_path: str | os.PathLike, items: pd.DataFrame, cfg: SFTSettings, prompt: PromptConfig,
            out_dir: str | os.PathLike, *, scratch_dir: str | os.PathLike, live_dir: str | None = None) -> dict[str, Any]:
    """Supervised fine-tuning on the gold answer lines; save the final model to ``out_dir``.
    Returns the last logged metrics and, under ``"compute"``, the precision the run resolved.

    SFT runs are short and keep no checkpoints (``save_strategy="no"``): an interrupted run
    starts over; ``scratch_dir`` holds the trainer output and the curves until the end."""
    from trl import SFTConfig, SFTTrainer

    precision = resolve_precision(cfg.mixed_precision)
    log_resolved(f"SFT ({Path(model_path).name})", mixed_precision=precision)
    scratch = Path(scratch_dir)
    fresh_scratch(scratch)
    model, tok = load_trainable(model_path, cfg.dtype, cfg.train_top_layers)
    args = SFTConfig(
        output_dir=str(scratch), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, logging_steps=1, save_strategy="no", seed=cfg.seed, data_seed=cfg.seed,
        use_cpu=not cuda_available(), bf16=precision == "bf16", gradient_checkpointing=False,
        report_to="none",
        completion_only_loss=True, max_length=1024,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(items, prompt), processing_class=tok,
                         callbacks=live_callbacks(scratch, live_dir, resume=False))
    trainer.train()
    save_final(trainer, tok, out_dir, merge_lora=False, scratch=scratch, live_dir=live_dir)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {**(logs[-1] if logs else {}), "compute": {"mixed_precision": precision}}
