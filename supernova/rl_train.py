"""rl-train: SFT on the small hard set (optional), then GRPO on the mixture."""

from __future__ import annotations

from dataclasses import dataclass, field

from .training import GRPOSettings, SFTSettings


@dataclass(frozen=True)
class RLTrainConfig:
    """params.yaml section ``rl_train``.

    Attributes:
        sft: the SFT phase (``sft.enabled: false`` skips it).
        grpo: the GRPO phase on the mixture.
    """

    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
