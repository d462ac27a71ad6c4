"""Score: the utility of each source task for each target sub-task.

``method: rl`` (the SuperNova measurement): a short, compute-matched GRPO run per source task —
every task gets the same number of training items (subsampled or repeat-padded to
``target_size``), steps, group size and seed — then the checkpoint is evaluated on every target
sub-task's dev split. Utility = its pass@k minus the base model's on the same items, with a
paired bootstrap CI. Checkpoints are scratch: only the evaluation counts are kept.

``method: gradient`` is a cheap proxy (see :mod:`supernova.gradproxy`); it has no pass@k, so its
rows hold for every k (``k = 0``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import InputError, ParamsError
from .evaluation import EvalConfig, paired_gain, sample_and_check
from .generation import GenerationConfig, load_generator
from .hardware import ComputeConfig, record
from .prompts import PromptConfig
from .training.grpo import run_grpo
from .utility import ANY_K
from .training.settings import GRPOSettings

log = logging.getLogger(__name__)
METHODS = ("rl", "gradient")


@dataclass(frozen=True)
class ScoreConfig:
    """params.yaml section ``score``.

    Attributes:
        tasks: the source tasks to score; dvc.yaml runs one cached ``score@<task>`` stage per
            entry, so adding a task runs one new probe run and nothing else.
        method: ``rl`` (compute-matched GRPO runs) or ``gradient`` (gradient-alignment proxy).
        target_size: training items per task (subsample, or repeat-pad a smaller task).
        seeds: one RL run per seed; the utility table keeps each and the mean/spread.
        k: the pass@k whose gain is the utility that mixing ranks by (every k of
            ``evaluate.k`` is kept in the table, so score@* does not read it).
        proxy_layers: top decoder layers whose gradients the ``gradient`` proxy compares.
        grpo: GRPO settings of every utility run (identical for all tasks: compute-matched);
            its seed comes from ``seeds``, so ``grpo.seed`` cannot be set.
    """

    tasks: tuple[str, ...] = ()
    method: str = "rl"
    target_size: int = 8
    seeds: tuple[int, ...] = (0,)
    k: int = 1
    proxy_layers: int = 2
    grpo: GRPOSettings = field(default_factory=GRPOSettings)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ParamsError(f"must be one of {METHODS}, got {self.method!r}", file="params.yaml",
                              field="score.method")
        if self.grpo.seed != GRPOSettings.seed:
            raise ParamsError("each utility run takes its seed from score.seeds; remove this key",
                              file="params.yaml", field="score.grpo.seed")


def compute_matched(items: pd.DataFrame, target_size: int, seed: int) -> pd.DataFrame:
    """Exactly ``target_size`` rows: a seeded subsample, or whole copies plus a seeded remainder."""
    if items.empty:
        raise InputError("no items to train on", task=None)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    reps, rem = divmod(target_size, len(items))
    idx = order * reps + order[:rem]
    return items.iloc[idx].reset_index(drop=True)


def training_items(probed: pd.DataFrame, task: str, target_size: int, seed: int) -> pd.DataFrame:
    """The task's probe-kept items (all items if the filter kept none), compute-matched."""
    kept = probed[probed["kept"]]
    if kept.empty:
        log.warning("task %s: the probe filter kept no items; training on all %d", task, len(probed))
        kept = probed
    return compute_matched(kept, target_size, seed)


def utility_rows(base: pd.DataFrame, trained: pd.DataFrame, task: str, seed: int, ev: EvalConfig,
                 seconds: float, method: str = "rl") -> pd.DataFrame:
    """UTILITY rows for one source task and seed: per target sub-task and k."""
    frames = []
    for k in ev.k:
        g = paired_gain(base, trained, k, iters=ev.bootstrap, seed=ev.seed)
        frames.append(pd.DataFrame({
            "source_task": task, "target_task": g["task"], "seed": seed, "k": k, "base": g["base"],
            "trained": g["trained"], "utility": g["gain"], "ci_low": g["ci_low"], "ci_high": g["ci_high"],
            "n_items": g["n_items"], "method": method, "seconds": seconds}))
    return pd.concat(frames, ignore_index=True)


def score_task_rl(task: str, probed: pd.DataFrame, base_model: Path, dev: pd.DataFrame, base_dev: pd.DataFrame,
                  cfg: ScoreConfig, ev: EvalConfig, prompt: PromptConfig, gen_cfg: GenerationConfig,
                  scratch: Path, compute: ComputeConfig = ComputeConfig()) -> tuple[pd.DataFrame, dict]:
    """Utility rows of ``task`` from one compute-matched GRPO run per seed, and the precision and
    backends the runs resolved (:func:`supernova.hardware.record`)."""
    out = []
    for seed in cfg.seeds:
        start = time.perf_counter()
        items = training_items(probed, task, cfg.target_size, seed)
        settings = dataclasses.replace(cfg.grpo, seed=seed)
        ckpt = scratch / f"seed{seed}" / "model"
        trained = run_grpo(base_model, items, settings, prompt, ckpt, scratch_dir=scratch / f"seed{seed}" / "run",
                           gen=gen_cfg, compute=compute)
        gen = load_generator(ckpt, gen_cfg, compute, seed=ev.seed)
        resolved = record(training=trained["compute"], evaluation=gen.settings)
        try:
            res = sample_and_check(gen, dev, prompt, ev.sampling, model=f"score:{task}", desc=f"score {task}")
        finally:
            gen.close()
        out.append(utility_rows(base_dev, res, task, seed, ev, time.perf_counter() - start))
        shutil.rmtree(scratch / f"seed{seed}", ignore_errors=True)
    return pd.concat(out, ignore_index=True), resolved


def score_task_gradient(task: str, probed: pd.DataFrame, base_model: Path, dev: pd.DataFrame, cfg: ScoreConfig,
                        prompt: PromptConfig, cache_dir: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Utility rows of ``task`` from the gradient-alignment proxy (one per seed's item sample)
    and the precision it computed in; target gradients are shared through ``cache_dir``."""
    from .gradproxy import gradient_alignment, proxy_precision

    out = []
    for seed in cfg.seeds:
        start = time.perf_counter()
        items = training_items(probed, task, cfg.target_size, seed)
        cos = gradient_alignment(base_model, items, dev, prompt, cfg.proxy_layers, cache_dir,
                                 precision=cfg.grpo.mixed_precision)
        sizes = dev.groupby("task").size()
        out.append(pd.DataFrame({
            "source_task": task, "target_task": list(cos), "seed": seed, "k": ANY_K, "base": float("nan"),
            "trained": float("nan"), "utility": list(cos.values()), "ci_low": float("nan"),
            "ci_high": float("nan"), "n_items": [int(sizes[t]) for t in cos], "method": "gradient",
            "seconds": time.perf_counter() - start}))
    return pd.concat(out, ignore_index=True), record(proxy={"mixed_precision": proxy_precision(cfg.grpo.mixed_precision)})
