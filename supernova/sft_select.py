"""sft-select: a small SFT set of items that are hard for the base model, spread across tasks.

Following the data-quality theory for SFT (few, hard, target-aligned examples beat many easy
ones), candidates are the mixture tasks' items whose probe pass rate lies in ``band``; each is
scored by the base model's loss on the gold answer line (``score: loss``) or by the IFD ratio
loss(answer | question) / loss(answer) (``score: ifd``); the highest scores are taken round-robin
over groups (tasks, skills, or TF-IDF k-means clusters of the questions) so no group dominates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, ParamsError
from .prompts import PromptConfig

log = logging.getLogger(__name__)
SCORES = ("loss", "ifd")
DIVERSITY = ("task", "skill", "cluster")
POOLS = ("mixture", "scored")


@dataclass(frozen=True)
class SFTSelectConfig:
    """params.yaml section ``sft_select``.

    Attributes:
        size: items in the SFT set (small by design; sweep it with ``dvc exp run -S``).
        band: candidates' probe pass rate must lie in ``[low, high]``.
        score: ``loss`` or ``ifd`` — what "hard" means.
        diversity: group items by ``task``, ``skill`` or ``cluster`` (k-means on TF-IDF) and take
            the best of each group in turn.
        per_group_cap: at most this many items per group (``null``: no cap).
        clusters: number of k-means clusters for ``diversity: cluster``.
        batch_size: items per forward pass when scoring.
        seed: seed for clustering.
        pool: draw candidates from the mixture's tasks (``mixture``) or from every scored source
            task (``scored``: the SFT set is then the same whatever the mixture, so that mixing
            strategies are compared with one SFT set).
    """

    size: int = 16
    band: tuple[float, float] = (0.0, 0.5)
    score: str = "loss"
    diversity: str = "task"
    per_group_cap: int | None = None
    clusters: int = 8
    batch_size: int = 16
    seed: int = 0
    pool: str = "mixture"

    def __post_init__(self):
        if self.score not in SCORES:
            raise ParamsError(f"must be one of {SCORES}", file="params.yaml", field="sft_select.score")
        if self.diversity not in DIVERSITY:
            raise ParamsError(f"must be one of {DIVERSITY}", file="params.yaml", field="sft_select.diversity")
        if self.size < 1:
            raise ParamsError("must be >= 1", file="params.yaml", field="sft_select.size")
        if self.pool not in POOLS:
            raise ParamsError(f"must be one of {POOLS}", file="params.yaml", field="sft_select.pool")


def answer_losses(model, tok, items: pd.DataFrame, prompt: PromptConfig, *, with_question: bool,
                  batch_size: int = 16) -> np.ndarray:
    """Mean token NLL of each item's gold completion, after its prompt (or after an empty prompt),
    computed on the device the model is on."""
    import torch
    from tqdm.auto import tqdm

    from .training.sft import gold_answer_batch

    rows = items.to_dict("records")
    losses = []
    what = "gold-answer loss" if with_question else "answer-only loss (IFD)"
    desc = f"sft-select {what} [{model.config.name_or_path}]"
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, unit="batch", leave=False):
        input_ids, mask, lab = (t.to(model.device) for t in gold_answer_batch(
            tok, rows[start:start + batch_size], prompt, with_question=with_question))
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].float()
        target = lab[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
        valid = (target != -100).float()
        losses.extend(((nll * valid).sum(1) / valid.sum(1)).tolist())
    return np.array(losses)


def groups(cands: pd.DataFrame, cfg: SFTSelectConfig) -> pd.Series:
    if cfg.diversity == "task":
        return cands["task"]
    if cfg.diversity == "skill":
        return cands["skill"]
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = max(1, min(cfg.clusters, len(cands)))
    x = TfidfVectorizer(max_features=4096).fit_transform(cands["question"])
    labels = KMeans(n_clusters=k, n_init=4, random_state=cfg.seed).fit_predict(x)
    return pd.Series([f"cluster{c}" for c in labels], index=cands.index)


def round_robin(cands: pd.DataFrame, group: pd.Series, size: int, cap: int | None) -> pd.DataFrame:
    """Highest ``sft_score`` of each group in turn until ``size`` items (or candidates run out)."""
    queues = {g: df.sort_values(["sft_score", "uid"], ascending=[False, True]).index.tolist()
              for g, df in cands.groupby(group, sort=True)}
    taken: list = []
    per: dict = {g: 0 for g in queues}
    while len(taken) < size and any(queues.values()):
        for g in sorted(queues):
            if queues[g] and (cap is None or per[g] < cap) and len(taken) < size:
                taken.append(queues[g].pop(0))
                per[g] += 1
            elif cap is not None and per[g] >= cap:
                queues[g] = []
    return cands.loc[taken].reset_index(drop=True)


def select(probed: pd.DataFrame, model, tok, prompt: PromptConfig, cfg: SFTSelectConfig,
           device: str | None = None) -> pd.DataFrame:
    """The SFT set (SFT schema columns), best-scored first within each group; the losses are
    computed on ``device`` (default: :func:`supernova.hardware.torch_device`), where the model is moved."""
    from .hardware import apply_fp32_matmul, log_resolved, torch_device

    device = device or torch_device()
    apply_fp32_matmul()
    log_resolved(f"sft-select loss pass ({model.config.name_or_path})", device=device)
    model.to(device)
    lo, hi = cfg.band
    cands = probed[(probed["pass_rate"] >= lo) & (probed["pass_rate"] <= hi)].copy()
    if cands.empty:
        raise InputError(f"no candidate has a probe pass rate in [{lo}, {hi}]", field="sft_select.band")
    cands["loss"] = answer_losses(model, tok, cands, prompt, with_question=True, batch_size=cfg.batch_size)
    plain = answer_losses(model, tok, cands, prompt, with_question=False, batch_size=cfg.batch_size)
    cands["ifd"] = cands["loss"] / np.maximum(plain, 1e-8)
    cands["sft_score"] = cands[cfg.score]
    return round_robin(cands, groups(cands, cfg), cfg.size, cfg.per_group_cap)


def manifest(cfg: SFTSelectConfig, chosen: pd.DataFrame, candidates: int, items_file: str, sha: str) -> dict:
    return {
        "size": int(len(chosen)), "requested_size": cfg.size, "band": list(cfg.band), "score": cfg.score,
        "diversity": cfg.diversity, "pool": cfg.pool, "candidates": int(candidates),
        "items_file": items_file, "items_sha256": sha,
        "per_task": {t: int(n) for t, n in chosen["task"].value_counts().sort_index().items()},
        "mean_pass_rate": round(float(chosen["pass_rate"].mean()), 4),
        "items": [{"uid": r.uid, "task": r.task, "pass_rate": round(float(r.pass_rate), 4),
                   "loss": round(float(r.loss), 4), "ifd": round(float(r.ifd), 4)} for r in chosen.itertuples()],
    }
