"""Sample a model on items and count correct answers; summarise as pass@k per sub-task.

:func:`sample_and_check` is the one routine that turns a model into per-item correct counts; probe
(on source items), the utility runs (on target dev items) and evaluate (on target test items) all
call it, with the shared prompt and the shared answer checker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .answer import judge
from .errors import ParamsError
from .generation import Generator, SamplingConfig
from .prompts import PromptConfig, messages, reply
from .schema import EVAL
from .stats import (arithmetic_mean, bbeh_adjusted_harmonic_mean, bootstrap_ci, bootstrap_diff_ci, chance_pass_at_k,
                    pass_at_k_items)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol (params.yaml section ``evaluate``), used for every model scored on
    target sub-tasks: the base model, each source task's RL probe, and the trained model.

    Attributes:
        n: samples per item; pass@k is estimated without bias from them.
        k: the k values reported (each must be <= n).
        temperature: sampling temperature (0.7 in the paper).
        max_new_tokens: completion budget.
        bootstrap: bootstrap resamples for confidence intervals.
        seed: sampling seed (per item, so two models see the same random stream).
    """

    n: int = 8
    k: tuple[int, ...] = (1, 2, 4, 8)
    temperature: float = 0.7
    max_new_tokens: int = 32
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self):
        if not self.k or max(self.k) > self.n or min(self.k) < 1:
            raise ParamsError(f"every k must lie in 1..n={self.n}, got {list(self.k)}",
                              file="params.yaml", field="evaluate.k")

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=self.n, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                              seed=self.seed)


def sample_and_check(generator: Generator, items: pd.DataFrame, prompt: PromptConfig,
                     sampling: SamplingConfig, *, model: str, desc: str, keep_correct: bool = False) -> pd.DataFrame:
    """Per-item counts (:data:`supernova.schema.EVAL` columns) of ``sampling.n`` samples each;
    with ``keep_correct``, also ``correct_samples``: the samples the checker accepted, in sample
    order (the probe keeps them as the base model's own reasoning traces)."""
    rows = items.to_dict("records")
    convs = [messages(r, prompt) for r in rows]
    outs = generator.generate(convs, sampling, keys=[r["uid"] for r in rows], desc=desc)
    records = []
    for r, conv, completions in zip(rows, convs, outs):
        texts = [reply(conv, t) for t in completions]
        verdicts = [judge(t, answer=r["answer"], answer_type=r["answer_type"], choices=r["choices"], meta=r["meta"])
                    for t in texts]
        records.append({"model": model, "task": r["task"], "uid": r["uid"], "n": len(texts),
                        "correct": sum(v.correct for v in verdicts), "parsed": sum(v.parsed for v in verdicts),
                        "sample": texts[0] if texts else "",
                        "correct_samples": [t for t, v in zip(texts, verdicts) if v.correct]})
    columns = EVAL.names + (["correct_samples"] if keep_correct else [])
    return pd.DataFrame.from_records(records, columns=columns)


def per_task_pass_at_k(results: pd.DataFrame, ks: tuple[int, ...], *, iters: int = 1000,
                       seed: int = 0) -> pd.DataFrame:
    """Rows (task, k, pass_at_k, ci_low, ci_high, n_items)."""
    rows = []
    for task, g in results.groupby("task", sort=True):
        for k in ks:
            v = pass_at_k_items(g["n"], g["correct"], k)
            lo, hi = bootstrap_ci(v, iters=iters, seed=seed)
            rows.append({"task": task, "k": int(k), "pass_at_k": float(v.mean()), "ci_low": lo, "ci_high": hi,
                         "n_items": int(len(g))})
    return pd.DataFrame(rows, columns=["task", "k", "pass_at_k", "ci_low", "ci_high", "n_items"])


def paired_gain(base: pd.DataFrame, trained: pd.DataFrame, k: int, *, iters: int = 1000,
                seed: int = 0) -> pd.DataFrame:
    """Per task: pass@k of ``trained`` minus ``base`` on the same items, with a paired bootstrap CI."""
    merged = base.merge(trained, on=["task", "uid"], suffixes=("_b", "_t"))
    rows = []
    for task, g in merged.groupby("task", sort=True):
        b = pass_at_k_items(g["n_b"], g["correct_b"], k)
        t = pass_at_k_items(g["n_t"], g["correct_t"], k)
        lo, hi = bootstrap_diff_ci(t, b, iters=iters, seed=seed)
        rows.append({"task": task, "k": k, "base": float(b.mean()), "trained": float(t.mean()),
                     "gain": float(t.mean() - b.mean()), "ci_low": lo, "ci_high": hi, "n_items": int(len(g))})
    return pd.DataFrame(rows, columns=["task", "k", "base", "trained", "gain", "ci_low", "ci_high", "n_items"])


def mean_gain_ci(base: pd.DataFrame, trained: pd.DataFrame, k: int, *, iters: int = 1000,
                 seed: int = 0) -> tuple[float, float, float]:
    """The gain in pass@k of the mean over sub-tasks (``trained`` - ``base`` on the same items), with
    a 95% CI from a paired bootstrap of the items within each sub-task."""
    import numpy as np

    from .stats import hierarchical_bootstrap

    merged = base.merge(trained, on=["task", "uid"], suffixes=("_b", "_t")).sort_values(["task", "uid"])
    b = pass_at_k_items(merged["n_b"], merged["correct_b"], k)
    t = pass_at_k_items(merged["n_t"], merged["correct_t"], k)
    groups = merged["task"].to_numpy()
    point = float(np.mean([t[groups == g].mean() - b[groups == g].mean() for g in np.unique(groups)]))
    reps = hierarchical_bootstrap([t[None]], b, groups, iters=iters, seed=seed)[:, 0].mean(axis=1)
    return point, float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))


#: The aggregates reported for every k, named so that none is mistaken for another.
AGGREGATES = {
    "mean_over_subtasks": "arithmetic mean over sub-tasks (the SuperNova paper's headline)",
    "bbeh_adjusted_harmonic_mean": "harmonic mean over sub-tasks of (pass@k in % + 1), BBEH's headline",
    "mean_over_items": "mean over items, every item weighing the same (micro average)",
}


def summary(table: pd.DataFrame, value: str = "pass_at_k") -> dict[str, Any]:
    """Per-k aggregates (:data:`AGGREGATES`) of a per-task table with ``n_items``."""
    out: dict[str, Any] = {}
    for k, g in table.groupby("k", sort=True):
        out[f"pass@{k}"] = {
            "mean_over_subtasks": round(arithmetic_mean(g[value]), 4),
            "bbeh_adjusted_harmonic_mean": round(bbeh_adjusted_harmonic_mean(g[value]), 4),
            "mean_over_items": round(float((g[value] * g["n_items"]).sum() / g["n_items"].sum()), 4),
        }
    return out


def item_options(item: dict[str, Any]) -> int:
    """How many options a guesser picks from: the choices of a multiple-choice item, the options
    written into a free-form question when its kind recorded them, else 0 (free-form)."""
    if item["answer_type"] == "mcq":
        return len(item["choices"])
    meta = json.loads(item["meta"] or "{}") if isinstance(item["meta"], str) else (item["meta"] or {})
    return int(meta.get("num_options", 0))


def chance_by_task(items: pd.DataFrame, ks: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Per sub-task, the pass@k of a uniform guesser (mean over items; free-form items count 0)."""
    out: dict[str, dict[str, float]] = {}
    for task, g in items.groupby("task", sort=True):
        opts = [item_options(r) for r in g.to_dict("records")]
        out[task] = {f"pass@{k}": round(float(sum(chance_pass_at_k(m, k) for m in opts) / len(opts)), 4) for k in ks}
    return out


def parse_rate(results: pd.DataFrame) -> dict[str, float]:
    """Per sub-task, the share of completions with an answer the checker can read."""
    g = results.groupby("task", sort=True)[["parsed", "n"]].sum()
    return {task: round(float(r.parsed / r.n), 4) if r.n else 0.0 for task, r in g.iterrows()}
