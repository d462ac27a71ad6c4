"""rl-train: SFT on the small hard set, then GRPO on the mixture; either phase can be switched
off (``rl_train.sft.enabled``, ``rl_train.grpo.enabled``), so an SFT-only or a GRPO-only model is
the stage's trained model and evaluate scores it like any other.

Resumable: checkpoints go to ``data/scratch/rl-train``; after a crash or a kill, ``dvc repro``
resumes from the last one if nothing that determines the run (settings, items, start model's
bytes) has changed. The scratch folder is removed once the trained model is saved.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from . import paths
from .config import from_section
from .errors import ParamsError
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
        grpo: the GRPO phase on the mixture (``grpo.enabled: false`` skips it: the SFT model is
            the trained model). One of the two must run.
    """

    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)

    def __post_init__(self):
        if not (self.sft.enabled or self.grpo.enabled):
            raise ParamsError("rl_train.sft.enabled and rl_train.grpo.enabled are both false: nothing would be "
                              "trained", file="params.yaml", field="rl_train")


def rl_train(params: dict) -> None:
    """The stage: SFT from the base model (if enabled), GRPO from its result (if enabled); the
    trained model and the training curves (``metrics/train/{sft,grpo}``) are the outputs; a
    phase that did not run says so in its curves' place (:func:`publish_skipped`)."""
    cfg = from_section(RLTrainConfig, params, "rl_train")
    prompt = from_section(PromptConfig, params, "prompt")
    gen = from_section(GenerationConfig, params, "generation")
    compute = from_section(ComputeConfig, params, "compute")
    start, resolved = paths.BASE_MODEL, {}
    sft_live, grpo_live = str(paths.METRICS / "train" / "sft"), str(paths.METRICS / "train" / "grpo")
    if cfg.sft.enabled:
        # the SFT model is the GRPO run's start, or the trained model when GRPO is off
        sft_model = paths.TRAIN_SCRATCH / "sft-model" if cfg.grpo.enabled else paths.TRAINED_MODEL
        resolved["sft"] = run_sft(start, read_table(paths.SFT_SET, SFT), cfg.sft, prompt, sft_model,
                                  scratch_dir=paths.TRAIN_SCRATCH / "sft",
                                  live_dir=sft_live, compute=compute)["compute"]
        start = sft_model
    else:
        publish_skipped(sft_live)
    if cfg.grpo.enabled:
        resolved["grpo"] = run_grpo(start, read_table(paths.MIXTURE, ITEM), cfg.grpo, prompt, paths.TRAINED_MODEL,
                                    scratch_dir=paths.TRAIN_SCRATCH / "grpo", live_dir=grpo_live,
                                    gen=gen, compute=compute)["compute"]
    else:
        publish_skipped(grpo_live)
    write_json(paths.TRAINED_MODEL / paths.COMPUTE_RECORD, record(**resolved))
    shutil.rmtree(paths.TRAIN_SCRATCH, ignore_errors=True)  # the SFT model was only the GRPO start
