"""Score: the utility of each source task for each target sub-task.

``method: rl`` (the SuperNova measurement): a short, compute-matched GRPO run per source task —
every task gets the same number of training items (subsampled or repeat-padded to
``target_size``), steps, group size and seed — whose checkpoints are measured on every target
sub-task's dev split, paired item by item with the base model on the same items:

* **teacher-forced** (:mod:`supernova.likelihood`, no sampling): the last ``checkpoints`` optimizer
  steps of the run are each scored on every dev item, in the training process (with
  ``train_top_layers``, from the base model's encoding of the items below the trained layers,
  which the baseline stage keeps), and averaged;
* **sampled** pass@k of the final model on ``sample_items`` dev items per sub-task (in GRPO's
  colocated vLLM engine where the rollouts ran on it, else on the model in memory, see
  :func:`supernova.training.grpo.run_grpo`).

Utility, per metric, = the checkpoint's value minus the base model's, with a paired bootstrap CI.
Each run also reports what it learned: the same metrics on ``heldout`` items of its own source
task that it never trains on (its in-task gain), the share of GRPO groups whose rewards were all
equal (they give no gradient), its reward curve and how far its gold-answer log-probabilities
moved from the base model's on the dev items. The trained models are not kept.

``method: gradient`` is a cheap proxy (see :mod:`supernova.gradproxy`).

**The format control** (``score.control``): a run with the same compute on the same kind of
prompts (source items of ``control_tasks``) whose answers carry no task signal — a multiple-choice
item's gold letter is replaced by a seeded random letter, a free-form answer by another item's
answer of the same task. Its reward is earned only by answering in the checker's format (and by
chance), so its utility is what learning the answer format alone buys; ``net`` utilities subtract
it. Scored like every task (``score@format_control-<round>``); mixing never chooses it.

**Schedules** (``score.schedule``): ``exhaustive`` (every task, every seed) or ``halving`` (see
:mod:`supernova.halving`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ParamsError
from .evaluation import EvalConfig, paired_gain, sample_and_check
from .generation import GenerationConfig
from .hardware import ComputeConfig, record
from .likelihood import Scorer, load_hidden, split_layer
from .schema import METRICS
from .prompts import PromptConfig
from .scoring import CONTROL, ScoreConfig, heldout_items, sampled_items, training_items
from .training.grpo import run_grpo

log = logging.getLogger(__name__)


def utility_rows(base: pd.DataFrame, trained: pd.DataFrame, base_tf: pd.DataFrame, trained_tf: pd.DataFrame,
                 task: str, seed: int, ev: EvalConfig, seconds: float, round_: str = "r0") -> pd.DataFrame:
    """UTILITY rows for one run: per target sub-task, sampled ``pass@<k>`` for every k (EVAL rows
    ``base``, ``trained``) and every teacher-forced metric defined on the sub-task (LIKELIHOOD rows
    ``base_tf``, ``trained_tf`` averaged over the scored checkpoints), each checkpoint - base with a
    paired item-bootstrap CI."""
    from .stats import bootstrap_diff_ci

    parsed = trained.groupby("task")[["parsed", "n"]].sum()
    parse = {t: float(r.parsed / r.n) for t, r in parsed.iterrows()}
    frames = []
    for k in ev.k:
        g = paired_gain(base, trained, k, iters=ev.bootstrap, seed=ev.seed)
        frames.append(pd.DataFrame({
            "source_task": task, "target_task": g["task"], "seed": seed, "round": round_, "metric": f"pass@{k}",
            "base": g["base"], "trained": g["trained"], "utility": g["gain"], "ci_low": g["ci_low"],
            "ci_high": g["ci_high"], "n_items": g["n_items"]}))
    merged = base_tf.merge(trained_tf, on=["task", "uid"], suffixes=("_b", "_t"))
    rows = []
    for target, g in merged.groupby("task", sort=True):
        for m in METRICS:
            b, t = g[f"{m}_b"].to_numpy(dtype=float), g[f"{m}_t"].to_numpy(dtype=float)
            ok = ~(np.isnan(b) | np.isnan(t))
            if not ok.any():
                continue
            lo, hi = bootstrap_diff_ci(t[ok], b[ok], iters=ev.bootstrap, seed=ev.seed)
            rows.append({"source_task": task, "target_task": target, "seed": seed, "round": round_, "metric": m,
                         "base": float(b[ok].mean()), "trained": float(t[ok].mean()),
                         "utility": float(t[ok].mean() - b[ok].mean()), "ci_low": lo, "ci_high": hi,
                         "n_items": int(ok.sum())})
    frames.append(pd.DataFrame(rows))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(method="rl", seconds=seconds, parse_rate=out["target_task"].map(parse))


def checkpoint_mean(rows: pd.DataFrame) -> pd.DataFrame:
    """LIKELIHOOD rows of a run's scored checkpoints averaged item by item over the steps."""
    return rows.groupby(["task", "uid"], sort=True)[list(METRICS)].mean().reset_index()


@dataclass
class ScoreInputs:
    """What every utility run of a stage is measured on."""

    dev: pd.DataFrame                  # target dev items (ITEM): the teacher-forced metrics use them all
    base_tf: pd.DataFrame              # LIKELIHOOD rows of the base model on ``dev``
    hidden: Path | None                # the base model's encoding of ``dev`` below the trained layers
    sampled: pd.DataFrame              # the dev items the sampled pass@k uses (ITEM)
    base_sampled: pd.DataFrame         # EVAL rows of the base model on ``sampled``
    heldout: pd.DataFrame | None = None  # the source task's held-out items (ITEM); None for the control


@dataclass
class ScoreResult:
    """A score stage's outputs (see :func:`score_unit`)."""

    utility: pd.DataFrame                    # UTILITY
    items: pd.DataFrame                      # SCORE_EVAL: the sampled pass@k, per item
    likelihood: pd.DataFrame                 # SCORE_LIKELIHOOD: every scored checkpoint, per item
    heldout_base: pd.DataFrame | None        # LIKELIHOOD: the base model on the held-out items
    runs: pd.DataFrame                       # RUNS
    resolved: dict | None                    # what the runs resolved on this machine


def score_task_rl(task: str, items_for_seed, base_model: Path, inputs: ScoreInputs, cfg: ScoreConfig,
                  ev: EvalConfig, prompt: PromptConfig, gen_cfg: GenerationConfig, scratch: Path,
                  seeds: tuple[int, ...], round_: str = "r0", compute: ComputeConfig = ComputeConfig()):
    """One compute-matched GRPO run of ``task`` per seed (``items_for_seed(seed)`` gives its
    training items), measured as the module docstring says."""
    from transformers import AutoTokenizer

    from .model import load_for_training
    from .training.grpo import StepHook

    if compute.processes > 1:
        raise ParamsError("a utility run scores its checkpoints in its training process; run score stages with "
                          "compute.processes: 1", file="params.yaml", field="compute.processes")
    tok = AutoTokenizer.from_pretrained(base_model, trust_remote_code=False)
    scorer = Scorer(tok, prompt, split=split_layer(base_model, cfg.grpo.train_top_layers))
    dev = scorer.prepare(inputs.dev)
    if scorer.split is not None:
        load_hidden(dev, inputs.hidden)
    held, base_held = None, None
    if inputs.heldout is not None and len(inputs.heldout):
        held = scorer.prepare(inputs.heldout)
        model, _ = load_for_training(base_model, cfg.grpo.dtype)
        base_held = scorer.encode(model.eval(), held).assign(model="base")
        del model
    steps = set(range(cfg.grpo.max_steps - cfg.checkpoints + 1, cfg.grpo.max_steps + 1))
    out, per_item, tf_rows, runs = [], [], [], []
    for seed in seeds:
        start = time.perf_counter()
        scored: list[pd.DataFrame] = []

        def score_checkpoint(model, step):
            scored.append(scorer.score(model, dev).assign(split="dev", step=step))
            if held is not None:
                scored.append(scorer.score(model, held).assign(split="heldout", step=step))

        run_dir = scratch / f"seed{seed}"
        trained = run_grpo(base_model, items_for_seed(seed), dataclasses.replace(cfg.grpo, seed=seed), prompt, None,
                           scratch_dir=run_dir / "run", gen=gen_cfg, compute=compute, eval_seed=ev.seed,
                           callbacks=[StepHook(steps, score_checkpoint)],
                           evaluate=lambda gen: sample_and_check(gen, inputs.sampled, prompt, ev.sampling,
                                                                 model=f"score:{task}", desc=f"score {task}"))
        seconds = time.perf_counter() - start
        res = trained["evaluation"]
        resolved = record(training=trained["compute"], evaluation=trained["evaluation_compute"])
        ckpts = pd.concat(scored, ignore_index=True).assign(model=f"score:{task}", source_task=task, seed=seed,
                                                            round=round_)
        dev_rows = ckpts[ckpts["split"] == "dev"]
        out.append(utility_rows(inputs.base_sampled, res, inputs.base_tf, checkpoint_mean(dev_rows), task, seed, ev,
                                seconds, round_=round_))
        per_item.append(res.assign(source_task=task, seed=seed, round=round_))
        tf_rows.append(ckpts)
        runs.append(run_record(task, seed, round_, trained["history"], seconds, inputs.base_tf,
                               dev_rows[dev_rows["step"] == max(steps)]))
        shutil.rmtree(run_dir, ignore_errors=True)
    return ScoreResult(pd.concat(out, ignore_index=True), pd.concat(per_item, ignore_index=True),
                       pd.concat(tf_rows, ignore_index=True), base_held, pd.DataFrame(runs), resolved)


def run_record(task: str, seed: int, round_: str, history: list[dict], seconds: float, base_tf: pd.DataFrame,
               last: pd.DataFrame) -> dict:
    """A RUNS row: the reward curve's first and last quarter, the share of groups with equal rewards,
    and the last checkpoint's mean |gold log-prob per token - base| on the dev items."""
    rewards = [h["reward"] for h in history if h.get("reward") is not None]
    zero = [h["frac_reward_zero_std"] for h in history if h.get("frac_reward_zero_std") is not None]
    q = max(1, len(rewards) // 4)
    drift = base_tf.merge(last, on=["task", "uid"], suffixes=("_b", "_t"))
    return {"source_task": task, "seed": seed, "round": round_, "steps": len(history), "seconds": seconds,
            "reward_first": float(np.mean(rewards[:q])) if rewards else float("nan"),
            "reward_last": float(np.mean(rewards[-q:])) if rewards else float("nan"),
            "zero_std_share": float(np.mean(zero)) if zero else float("nan"),
            "logprob_drift": float((drift["gold_logprob_token_t"] - drift["gold_logprob_token_b"]).abs().mean())}


def score_task_gradient(task: str, probed: pd.DataFrame, base_model: Path, dev: pd.DataFrame, cfg: ScoreConfig,
                        prompt: PromptConfig, cache_dir: Path | None = None, seeds: tuple[int, ...] | None = None,
                        round_: str = "r0") -> tuple[pd.DataFrame, dict]:
    """Utility rows of ``task`` from the gradient-alignment proxy (one per seed's item sample and
    target sub-task, metric ``gradient``) and the precision it computed in; target gradients are
    shared through ``cache_dir``."""
    from .gradproxy import gradient_alignment, proxy_precision

    out = []
    for seed in cfg.seeds if seeds is None else seeds:
        start = time.perf_counter()
        items = training_items(probed, task, cfg.target_size, seed)
        cos = gradient_alignment(base_model, items, dev, prompt, cfg.proxy_layers, cache_dir,
                                 precision=cfg.grpo.mixed_precision)
        sizes, seconds = dev.groupby("task").size(), time.perf_counter() - start
        out.append(pd.DataFrame({
            "source_task": task, "target_task": list(cos), "seed": seed, "round": round_, "metric": "gradient",
            "base": float("nan"), "trained": float("nan"), "utility": list(cos.values()), "ci_low": float("nan"),
            "ci_high": float("nan"), "n_items": [int(sizes[t]) for t in cos], "method": "gradient",
            "seconds": seconds, "parse_rate": float("nan")}))
    return pd.concat(out, ignore_index=True), record(proxy={"mixed_precision": proxy_precision(cfg.grpo.mixed_precision)})


def score_unit(task: str, round_: str, items_for_seed, probed: pd.DataFrame | None, cfg: ScoreConfig,
               ev: EvalConfig, prompt: PromptConfig, gen_cfg: GenerationConfig, compute: ComputeConfig) -> None:
    """One ``score@<task>-<round>`` (or ``score-control@<round>``, ``probed`` None) stage: the runs of
    the seeds the round's promotion file gives ``task`` (none: empty outputs), written to its score
    folder (:func:`supernova.paths.score_dir`) with what the runs resolved on this machine in the
    utility file's metadata."""
    import json

    from . import paths
    from .schema import (EVAL, ITEM, LIKELIHOOD, RUNS, SCORE_EVAL, SCORE_LIKELIHOOD, UTILITY, read_table,
                         write_table)

    decision = json.loads(paths.promotion_file(round_, task).read_text())
    empty = ScoreResult(pd.DataFrame(columns=UTILITY.names), pd.DataFrame(columns=SCORE_EVAL.names),
                        pd.DataFrame(columns=SCORE_LIKELIHOOD.names), None, pd.DataFrame(columns=RUNS.names), None)
    result = empty
    if decision["promoted"]:
        seeds = tuple(decision["seeds"])
        dev = read_table(paths.TARGET_DEV, ITEM)
        if cfg.method == "rl":
            inputs = ScoreInputs(dev=dev, base_tf=read_table(paths.BASELINE_DEV_LIKELIHOOD, LIKELIHOOD),
                                 hidden=paths.BASELINE_DEV_HIDDEN, sampled=sampled_items(dev, cfg.sample_items),
                                 base_sampled=read_table(paths.BASELINE_DEV, EVAL),
                                 heldout=None if probed is None else heldout_items(probed, cfg.heldout))
            result = score_task_rl(task, items_for_seed, paths.BASE_MODEL, inputs, cfg, ev, prompt, gen_cfg,
                                   paths.SCORE_SCRATCH / round_ / task, seeds, round_, compute)
        elif probed is None:
            raise ParamsError("the format control needs score.method: rl", file="params.yaml", field="score.control")
        else:
            rows, resolved = score_task_gradient(task, probed, paths.BASE_MODEL, dev, cfg, prompt,
                                                 paths.SCORE_SCRATCH, seeds, round_)
            result = dataclasses.replace(empty, utility=rows, resolved=resolved)
    out = paths.score_dir(round_, task)
    write_table(out / "utility.parquet", result.utility, UTILITY, meta={"compute": result.resolved})
    write_table(out / "items.parquet", result.items, SCORE_EVAL)
    write_table(out / "likelihood.parquet", result.likelihood, SCORE_LIKELIHOOD)
    write_table(out / "heldout_base.parquet", result.heldout_base if result.heldout_base is not None
                else pd.DataFrame(columns=LIKELIHOOD.names), LIKELIHOOD)
    write_table(out / "runs.parquet", result.runs, RUNS)
