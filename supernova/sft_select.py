"""sft-select: a small SFT set of items that are hard for the base model, spread across tasks.

Following the data-quality theory for SFT (few, hard, target-aligned examples beat many easy
ones), candidates are the mixture tasks' items whose probe pass rate lies in ``band``; each is
scored by the base model's loss on the gold answer line (``score: loss``) or by the IFD ratio
loss(answer | question) / loss(answer) (``score: ifd``); the highest scores are taken round-robin
over groups (tasks, skills, or TF-IDF k-means clusters of the questions) so no group dominates.

The losses (:func:`item_losses`) are the sft-loss stage's, computed once for every probed item of
the scored tasks: they depend on the base model and the prompt alone, so a new size, band, order
or mixture reselects from them without another pass of the model.

The selection does not depend on ``targets`` (it ranks by the answer line), so every target
source is compared on the same items; what each chosen item is then taught — its answer line, or
a reasoning trace the shared checker accepts — is :mod:`supernova.traces`'s part.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import paths
from .errors import InputError, ParamsError
from .prompts import PromptConfig, gold_completion
from .schema import SFT
from .traces import PICKS, TARGETS, Found, TeacherConfig, excerpt, with_targets

log = logging.getLogger(__name__)
#: sft-loss's output. Its path and columns are defined here, beside the only code that writes and
#: reads them, rather than in paths.py and schema.py, on which every stage depends.
LOSSES = paths.DATA / "sft_loss" / "losses.parquet"
#: The base model's loss on every probed item of the scored tasks: the SFT set's columns of the same name.
SFT_LOSS = pa.schema([SFT.field(name) for name in ("task", "uid", "loss", "ifd")])
SCORES = ("loss", "ifd")
ORDERS = ("hardest", "easiest", "random")
DIVERSITY = ("task", "skill", "cluster")
POOLS = ("mixture", "scored")
TEACH = ("target", "answer")


@dataclass(frozen=True)
class SFTSelectConfig:
    """params.yaml section ``sft_select``.

    Attributes:
        n_items: items in the SFT set (small by design; sweep it with ``dvc exp run -S``).
        band: candidates' probe pass rate must lie in ``[low, high]``.
        score: ``loss`` or ``ifd`` — what "hard" means.
        diversity: group items by ``task``, ``skill`` or ``cluster`` (k-means on TF-IDF) and take
            the best of each group in turn.
        per_group_cap: at most this many items per group (``null``: no cap).
        order: which candidates each group gives first: the highest ``score`` (``hardest``, the
            theory's choice), the lowest (``easiest``), or a seeded ``random`` order (with
            ``band``, what the hard/easy/random comparison of :mod:`supernova.experiments` varies).
        clusters: number of k-means clusters for ``diversity: cluster``.
        batch_size: items per forward pass of the sft-loss stage.
        seed: seed for clustering.
        pool: draw candidates from the mixture's tasks (``mixture``) or from every scored source
            task (``scored``: the SFT set is then the same whatever the mixture, so that mixing
            strategies are compared with one SFT set).
        targets: what SFT teaches each chosen item (:mod:`supernova.traces`): ``answer`` (the
            answer line), ``self`` (a correct probe sample of the base model), ``teacher`` (a
            correct sample of ``teacher``) or ``given`` (the item's rationale from the source
            data). A chosen item without an accepted trace is left out of the set and counted.
        trace_pick: of several accepted traces of an item, the ``shortest`` or a ``random`` one
            (seeded by ``seed`` and the item's uid).
        teach: what an item with an accepted target is taught: that target (``target``), or its
            answer line alone (``answer``: the items ``targets`` found a trace for, without the
            reasoning, so that answer-only and traced SFT compare on the same items).
        teacher: the teacher model and its sampling settings (``targets: teacher``).
    """

    n_items: int = 16
    band: tuple[float, float] = (0.0, 0.5)
    score: str = "loss"
    diversity: str = "task"
    per_group_cap: int | None = None
    order: str = "hardest"
    clusters: int = 8
    batch_size: int = 16
    seed: int = 0
    pool: str = "mixture"
    targets: str = "answer"
    trace_pick: str = "shortest"
    teach: str = "target"
    teacher: TeacherConfig = field(default_factory=TeacherConfig)

    def __post_init__(self):
        if self.score not in SCORES:
            raise ParamsError(f"must be one of {SCORES}", file="params.yaml", field="sft_select.score")
        if self.order not in ORDERS:
            raise ParamsError(f"must be one of {ORDERS}", file="params.yaml", field="sft_select.order")
        if self.diversity not in DIVERSITY:
            raise ParamsError(f"must be one of {DIVERSITY}", file="params.yaml", field="sft_select.diversity")
        if self.n_items < 1:
            raise ParamsError("must be >= 1", file="params.yaml", field="sft_select.n_items")
        if self.pool not in POOLS:
            raise ParamsError(f"must be one of {POOLS}", file="params.yaml", field="sft_select.pool")
        if self.targets not in TARGETS:
            raise ParamsError(f"must be one of {TARGETS}", file="params.yaml", field="sft_select.targets")
        if self.trace_pick not in PICKS:
            raise ParamsError(f"must be one of {PICKS}", file="params.yaml", field="sft_select.trace_pick")
        if self.teach not in TEACH:
            raise ParamsError(f"must be one of {TEACH}", file="params.yaml", field="sft_select.teach")
        if self.targets == "teacher" and not self.teacher.model:
            raise ParamsError("targets: teacher needs a teacher model (embedded:..., a local folder or a hub id)",
                              file="params.yaml", field="sft_select.teacher.model")


def item_losses(items: pd.DataFrame, model, tok, prompt: PromptConfig, *, batch_size: int = 16,
                device: str | None = None) -> pd.DataFrame:
    """The SFT_LOSS rows of ``items``: the base model's loss on each gold answer line after its
    question, and the IFD ratio of that loss to the loss after an empty prompt; computed on
    ``device`` (default: :func:`supernova.hardware.torch_device`), where the model is moved."""
    from .hardware import apply_fp32_matmul, log_resolved, torch_device

    device = device or torch_device()
    apply_fp32_matmul()
    log_resolved(f"sft-loss pass ({model.config.name_or_path})", device=device)
    model.to(device)
    loss = answer_losses(model, tok, items, prompt, with_question=True, batch_size=batch_size)
    plain = answer_losses(model, tok, items, prompt, with_question=False, batch_size=batch_size)
    return pd.DataFrame({"task": items["task"].to_numpy(), "uid": items["uid"].to_numpy(),
                         "loss": loss, "ifd": loss / np.maximum(plain, 1e-8)})


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
    desc = f"sft-loss {what} [{model.config.name_or_path}]"
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


def round_robin(cands: pd.DataFrame, group: pd.Series, size: int, cap: int | None, order: str = "hardest",
                seed: int = 0) -> pd.DataFrame:
    """The first candidate of each group in turn (by ``order``: highest ``sft_score`` first, lowest
    first, or a seeded random order) until ``size`` items (or candidates run out)."""
    if order == "random":
        key = pd.Series(np.random.default_rng(seed).random(len(cands)), index=cands.index)
    else:
        key = cands["sft_score"] if order == "hardest" else -cands["sft_score"]
    ranked = cands.assign(_key=key)
    queues = {g: df.sort_values(["_key", "uid"], ascending=[False, True]).index.tolist()
              for g, df in ranked.groupby(group, sort=True)}
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


def select(probed: pd.DataFrame, losses: pd.DataFrame, cfg: SFTSelectConfig) -> pd.DataFrame:
    """The chosen items of ``probed`` (with their ``loss``, ``ifd`` and ``sft_score`` from ``losses``,
    SFT_LOSS rows), best-scored first within each group; a candidate without a loss row is a
    one-line error."""
    lo, hi = cfg.band
    cands = probed[(probed["pass_rate"] >= lo) & (probed["pass_rate"] <= hi)]
    if cands.empty:
        raise InputError(f"no candidate has a probe pass rate in [{lo}, {hi}]", field="sft_select.band")
    scored = cands.merge(losses[["uid", "loss", "ifd"]], on="uid", how="left", validate="one_to_one")
    missing = scored.loc[scored["loss"].isna(), "uid"].tolist()
    if missing:
        raise InputError(f"{len(missing)} candidate(s) have no loss row (first: {missing[0]}); rerun sft-loss",
                         file=str(LOSSES), task=str(scored.loc[scored["loss"].isna(), "task"].iloc[0]),
                         field="uid")
    scored["sft_score"] = scored[cfg.score]
    return round_robin(scored, groups(scored, cfg), cfg.n_items, cfg.per_group_cap, cfg.order, cfg.seed)


def targeted(chosen: pd.DataFrame, found: dict[str, Found],
             cfg: SFTSelectConfig) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The SFT set: the chosen items whose target the checker accepts, each with that target
    (:func:`supernova.traces.with_targets`) or, with ``teach: answer``, its answer line, and the
    per-item counts; a set left empty is a one-line error saying how many targets were found or
    sampled and how many were accepted."""
    sft_set, counts = with_targets(chosen, found, cfg.trace_pick, cfg.seed)
    if cfg.teach == "answer" and not sft_set.empty:
        sft_set["target"] = [gold_completion(r) for r in sft_set.to_dict("records")]
    if sft_set.empty:
        sampled = sum(c["sampled"] for c in counts.values())
        accepted = sum(c["accepted"] for c in counts.values())
        raise InputError(f"none of the {len(chosen)} chosen items has a target the answer checker accepts "
                         f"({sampled} {cfg.targets} traces found or sampled, {accepted} accepted)",
                         field="sft_select.targets")
    return sft_set, counts


def manifest(cfg: SFTSelectConfig, chosen: pd.DataFrame, sft_set: pd.DataFrame, counts: dict[str, dict[str, Any]],
             candidates: int, items_file: str, sha: str, *, prompt_style: str,
             teacher_generator: dict[str, Any] | None = None) -> dict:
    """sft_set.yaml: the selection, where the targets came from and how many the checker
    rejected, and every item of the set with an excerpt of its target. ``chosen`` is what the
    selection chose, ``sft_set`` those of them with an accepted target (``target`` column),
    ``counts`` :func:`supernova.traces.with_targets`'s per-item counts."""
    out: dict[str, Any] = {
        "size": int(len(sft_set)), "requested_size": cfg.n_items, "band": list(cfg.band), "score": cfg.score,
        "order": cfg.order,
        "diversity": cfg.diversity, "pool": cfg.pool, "candidates": int(candidates),
        "targets": cfg.targets, "teach": cfg.teach, "prompt_style": prompt_style,
    }
    if cfg.targets != "answer" or len(sft_set) < len(chosen):    # an answer line the checker rejects shows too
        missing = [u for u in chosen["uid"] if u not in set(sft_set["uid"])]
        sampled = sum(c["sampled"] for c in counts.values())
        accepted = sum(c["accepted"] for c in counts.values())
        out["traces"] = {
            "pick": cfg.trace_pick, "chosen": int(len(chosen)), "with_trace": int(len(sft_set)),
            "without_trace": len(missing), "without_trace_items": missing,
            "sampled": int(sampled), "accepted": int(accepted), "rejected": int(sampled - accepted),
        }
        if cfg.targets == "given":
            out["traces"]["answer_line_appended"] = sum(bool(c["appended"]) for c in counts.values())
        if cfg.targets == "teacher":
            out["teacher"] = {**asdict(cfg.teacher), **(teacher_generator or {})}
    out.update({
        "items_file": items_file, "items_sha256": sha,
        "per_task": {t: int(n) for t, n in sft_set["task"].value_counts().sort_index().items()},
        "mean_pass_rate": round(float(sft_set["pass_rate"].mean()), 4),
        "items": [item_entry(r, counts.get(r["uid"]), cfg.targets) for r in sft_set.to_dict("records")],
    })
    return out


def item_entry(r: dict[str, Any], counts: dict[str, Any] | None, targets: str) -> dict[str, Any]:
    """One item of sft_set.yaml: why it was chosen, and an excerpt of what it is taught."""
    entry = {"uid": r["uid"], "task": r["task"], "pass_rate": round(float(r["pass_rate"]), 4),
             "loss": round(float(r["loss"]), 4), "ifd": round(float(r["ifd"]), 4)}
    if targets != "answer" and counts:
        entry["accepted"] = f"{counts['accepted']}/{counts['sampled']}"
    entry["target_chars"] = len(r["target"])
    entry["target"] = excerpt(r["target"])
    return entry
