"""Probe: sample the base model on every source item; per-item pass rates and a difficulty filter.

The filter keeps items whose pass rate lies inside ``band`` and, like DAPO's dynamic sampling,
can drop items the base model always solves or never solves (their RL groups carry no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParamsError
from .evaluation import sample_and_check
from .generation import Generator, SamplingConfig
from .prompts import PromptConfig
from .stats import pass_at_k_items


@dataclass(frozen=True)
class ProbeConfig:
    """params.yaml section ``probe``.

    Attributes:
        n: samples per item. With 16, an item of true pass rate 0.15 shows 0/16 7% of the time
            (0/4: 52%), so ``drop_all_wrong`` and ``band`` mean something; the probe is cached, so
            the cost is paid once.
        temperature: sampling temperature.
        max_new_tokens: completion budget.
        k: pass@k values reported per task.
        band: keep items with ``band[0] <= pass_rate <= band[1]``.
        drop_all_correct: drop items solved by every sample.
        drop_all_wrong: drop items solved by no sample.
        seed: sampling seed.
    """

    n: int = 16
    temperature: float = 0.7
    max_new_tokens: int = 32
    k: tuple[int, ...] = (1, 4)
    band: tuple[float, float] = (0.0, 1.0)
    drop_all_correct: bool = True
    drop_all_wrong: bool = False
    seed: int = 0

    def __post_init__(self):
        if len(self.band) != 2 or not 0 <= self.band[0] <= self.band[1] <= 1:
            raise ParamsError(f"must be [low, high] within [0, 1], got {list(self.band)}", file="params.yaml",
                              field="probe.band")
        if max(self.k) > self.n:
            raise ParamsError(f"every k must be <= n={self.n}", file="params.yaml", field="probe.k")

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=self.n, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                              seed=self.seed)


def drop_reason(correct: int, n: int, cfg: ProbeConfig) -> str:
    if cfg.drop_all_correct and correct == n:
        return "all_correct"
    if cfg.drop_all_wrong and correct == 0:
        return "all_wrong"
    rate = correct / n
    if rate < cfg.band[0]:
        return "below_band"
    if rate > cfg.band[1]:
        return "above_band"
    return ""


def probe_items(generator: Generator, items: pd.DataFrame, prompt: PromptConfig, cfg: ProbeConfig) -> pd.DataFrame:
    """``items`` with the PROBE columns added (n, correct, pass_rate, kept, drop_reason, and
    correct_samples: every sample the checker accepted, from which sft-select takes ``self`` traces)."""
    res = sample_and_check(generator, items, prompt, cfg.sampling, model="base", desc="probe", keep_correct=True)
    out = items.merge(res[["uid", "n", "correct", "correct_samples"]], on="uid", how="left", validate="one_to_one")
    out["pass_rate"] = out["correct"] / out["n"]
    out["drop_reason"] = [drop_reason(int(c), int(n), cfg) for c, n in zip(out["correct"], out["n"])]
    out["kept"] = out["drop_reason"] == ""
    return out


def task_summary(df: pd.DataFrame, cfg: ProbeConfig) -> dict[str, Any]:
    """What metrics/probe.json reports for one task."""
    rate = df["pass_rate"].to_numpy()
    out: dict[str, Any] = {
        "items": int(len(df)), "kept": int(df["kept"].sum()),
        "mean_pass_rate": round(float(rate.mean()), 4),
        "share_all_wrong": round(float((df["correct"] == 0).mean()), 4),
        "share_all_correct": round(float((df["correct"] == df["n"]).mean()), 4),
    }
    for k in cfg.k:
        out[f"pass@{k}"] = round(float(pass_at_k_items(df["n"], df["correct"], k).mean()), 4)
    reasons = df.loc[~df["kept"], "drop_reason"].value_counts()
    out["dropped"] = {r: int(reasons.get(r, 0)) for r in ("all_correct", "all_wrong", "below_band", "above_band")}
    return out


def overall_summary(per_task: dict[str, dict[str, Any]]) -> dict[str, Any]:
    items = sum(v["items"] for v in per_task.values())
    kept = sum(v["kept"] for v in per_task.values())
    return {"items": items, "kept": kept,
            "mean_pass_rate": round(float(np.mean([v["mean_pass_rate"] for v in per_task.values()])), 4)}
