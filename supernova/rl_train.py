"""rl-train: SFT on the small hard set (optional), then GRPO on the mixture.

Resumable: checkpoints go to ``data/scratch/rl-train``; after a crash or a kill, ``dvc repro``
resumes from the last one if nothing that determines the run (settings, items, start model's
bytes) has changed. The scratch folder is removed once the trained model is saved.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from . import paths
from .config import from_section
from .generation import GenerationConfig
from .hardware import ComputeConfig, record
from .io import write_json
from .prompts import PromptConfig
from .schema import ITEM, SFT, read_table
from .training.grpo import run_grpo
from .training.resume import publish_skipped
from .training.settings import GRPOSettings, SFTSettings
from .training.sft import run_sft


@dataclass(frozen=True)
class RLTrainConfig:
    """params.yaml section ``rl_train``.

    Attributes:
        sft: the SFT phase (``sft.enabled: false`` skips it).
        grpo: the GRPO phase on the mixture.
    """

    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)


def rl_train(params: dict) -> None:
    """The stage: SFT from the base model (if enabled), GRPO from its result; the trained model
    and the training curves (``metrics/train/{sft,grpo}``) are the outputs."""
    cfg = from_section(RLTrainConfig, params, "rl_train")
    prompt = from_section(PromptConfig, params, "prompt")
    gen = from_section(GenerationConfig, params, "generation")
    compute = from_section(ComputeConfig, params, "compute")
    start, resolved = paths.BASE_MODEL, {}
    sft_live = str(paths.METRICS / "train" / "sft")
    if cfg.sft.enabled:
        sft_model = paths.TRAIN_SCRATCH / "sft-model"
        resolved["sft"] = run_sft(start, read_table(paths.SFT_SET, SFT), cfg.sft, prompt, sft_model,
                                  scratch_dir=paths.TRAIN_SCRATCH / "sft",
                                  live_dir=sft_live, compute=compute)["compute"]
        start = sft_model
    else:
        publish_skipped(sft_live)
    resolved["grpo"] = run_grpo(start, read_table(paths.MIXTURE, ITEM), cfg.grpo, prompt, paths.TRAINED_MODEL,
                                scratch_dir=paths.TRAIN_SCRATCH / "grpo", live_dir=str(paths.METRICS / "train" / "grpo"),
                                gen=gen, compute=compute)["compute"]
    write_json(paths.TRAINED_MODEL / paths.COMPUTE_RECORD, record(**resolved))
    shutil.rmtree(paths.TRAIN_SCRATCH, ignore_errors=True)  # the SFT model was only the GRPO start
