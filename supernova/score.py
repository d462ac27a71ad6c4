"""Score: the utility of each source task for each target sub-task.

``method: rl`` (the SuperNova measurement): a short, compute-matched GRPO run per source task —
every task gets the same number of training items (subsampled or repeat-padded to
``target_size``), steps, group size and seed — then the trained model is evaluated on every
target sub-task's dev split (in GRPO's colocated vLLM engine where the rollouts ran on it, see
:func:`supernova.training.grpo.run_grpo`). Utility = its pass@k minus the base model's on the same
items, with a paired bootstrap CI. The trained models are not kept: only the evaluation counts.

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

from .config import check_choice
from .errors import InputError, ParamsError
from .evaluation import EvalConfig, paired_gain, sample_and_check
from .generation import GenerationConfig
from .hardware import ComputeConfig, record
from .halving import SCHEDULES, HalvingConfig
from .prompts import PromptConfig
from .schema import item_uid
from .training import GRPOSettings, run_grpo

log = logging.getLogger(__name__)
METHODS = ("rl", "gradient")
BASELINES = ("base", "control")
#: The format control's task name (reserved: no source task may use it).
CONTROL = "format_control"


@dataclass(frozen=True)
class ScoreConfig:
    """params.yaml section ``score``.

    Attributes:
        tasks: the source tasks to score; dvc.yaml runs one cached ``score@<task>`` stage per
            entry, so adding a task runs one new probe run and nothing else.
        method: ``rl`` (compute-matched GRPO runs) or ``gradient`` (gradient-alignment proxy).
        target_size: training items per task (subsample, or repeat-pad a smaller task).
        seeds: one RL run per seed (``halving``: round r0's seeds); the utility matrix averages
            them and its CIs resample them (seeds and items: a hierarchical bootstrap).
        k: the pass@k whose gain is the utility that mixing ranks by (every k of
            ``evaluate.k`` is kept in the table).
        proxy_layers: top decoder layers whose gradients the ``gradient`` proxy compares.
        grpo: GRPO settings of every utility run (identical for all tasks: compute-matched).
        schedule: ``exhaustive`` (every task runs every seed) or ``halving`` (successive halving
            over rounds; see :mod:`supernova.halving`).
        halving: the halving schedule's rounds, eta, budget and promotion rule.
        control: run the format control (task ``format_control``), with the same compute.
        control_tasks: source tasks whose prompts the control uses (empty: every probed source
            task, so the control reruns when ingest gains a source, not when ``tasks`` changes).
        baseline: what mixing ranks utility against: ``base`` (raw: gain over the base model) or
            ``control`` (net: gain over the format control; needs ``control: true``).
        bootstrap: resamples of the hierarchical bootstrap and of the reliability estimate.
    """

    tasks: tuple[str, ...] = ()
    method: str = "rl"
    target_size: int = 8
    seeds: tuple[int, ...] = (0,)
    k: int = 1
    proxy_layers: int = 2
    grpo: GRPOSettings = field(default_factory=GRPOSettings)
    schedule: str = "exhaustive"
    halving: HalvingConfig = field(default_factory=HalvingConfig)
    control: bool = True
    control_tasks: tuple[str, ...] = ()
    baseline: str = "base"
    bootstrap: int = 1000

    def __post_init__(self):
        check_choice(self.method, METHODS, "score.method")
        if self.grpo.seed != GRPOSettings.seed:
            raise ParamsError("each utility run takes its seed from score.seeds; remove this key",
                              file="params.yaml", field="score.grpo.seed")
        if not self.grpo.enabled:
            raise ParamsError("a utility run is a GRPO run and cannot be switched off; remove this key",
                              file="params.yaml", field="score.grpo.enabled")
        if CONTROL in self.tasks:
            raise ParamsError(f"{CONTROL!r} is the format control's name, not a source task", file="params.yaml",
                              field="score.tasks")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ParamsError("list one or more distinct seeds", file="params.yaml", field="score.seeds")
        check_choice(self.schedule, SCHEDULES, "score.schedule")
        check_choice(self.baseline, BASELINES, "score.baseline")
        if self.baseline == "control" and not self.control:
            raise ParamsError("baseline control needs the format control (score.control: true)",
                              file="params.yaml", field="score.baseline")

    def require_tasks(self) -> "ScoreConfig":
        """``self``, checked to list source tasks (stages that run one unit build the config
        without the task list, which they do not depend on)."""
        if not self.tasks:
            raise ParamsError("list the source tasks to score", file="params.yaml", field="score.tasks")
        unknown = [t for t in self.control_tasks if t not in self.tasks]
        if unknown:
            raise ParamsError(f"task {unknown[0]!r} is not in score.tasks", file="params.yaml",
                              field="score.control_tasks")
        return self

    @property
    def units(self) -> list[str]:
        """Everything scored: the source tasks, then the control if it is on."""
        return list(self.tasks) + ([CONTROL] if self.control else [])


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


def control_items(probed: dict[str, pd.DataFrame], target_size: int, seed: int) -> pd.DataFrame:
    """The format control's training items: a seeded draw of ``target_size`` source items of
    ``probed``'s tasks (all items, kept or not) whose answers carry no task signal: a multiple-choice gold letter becomes a seeded random
    letter, a free-form answer another item's answer of the same task. Every item is kept."""
    rng = np.random.default_rng(seed)
    parts = []
    for task in sorted(probed):
        df = probed[task].sort_values("uid").reset_index(drop=True)
        if df.empty:
            raise InputError("no items for the format control", task=task, field="score.control_tasks")
        answers = df["answer"].to_numpy(copy=True)
        shuffled = answers[rng.permutation(len(df))]
        new = [chr(ord("A") + int(rng.integers(len(c)))) if t == "mcq" and len(c) else str(a)
               for t, c, a in zip(df["answer_type"], df["choices"], shuffled)]
        parts.append(df.assign(answer=new, source=[f"control:{s}" for s in df["source"]], task=CONTROL,
                               order=np.arange(len(df))))
    pool = pd.concat(parts, ignore_index=True).sort_values(["order", "source"], kind="stable")
    pool["uid"] = [item_uid(CONTROL, q, a, list(c), occurrence=i) for i, (q, a, c)
                   in enumerate(zip(pool["question"], pool["answer"], pool["choices"]))]
    return compute_matched(pool.drop(columns="order").assign(kept=True).reset_index(drop=True), target_size, seed)


def utility_rows(base: pd.DataFrame, trained: pd.DataFrame, task: str, seed: int, ev: EvalConfig,
                 seconds: float, method: str = "rl", round_: str = "r0") -> pd.DataFrame:
    """UTILITY rows for one source task and seed: per target sub-task and k."""
    parsed = trained.groupby("task")[["parsed", "n"]].sum()
    frames = []
    for k in ev.k:
        g = paired_gain(base, trained, k, iters=ev.bootstrap, seed=ev.seed)
        frames.append(pd.DataFrame({
            "source_task": task, "target_task": g["task"], "seed": seed, "round": round_, "k": k,
            "base": g["base"], "trained": g["trained"], "utility": g["gain"], "ci_low": g["ci_low"],
            "ci_high": g["ci_high"], "n_items": g["n_items"], "method": method, "seconds": seconds,
            "parse_rate": [float(parsed.loc[t, "parsed"] / parsed.loc[t, "n"]) for t in g["task"]]}))
    return pd.concat(frames, ignore_index=True)


def score_task_rl(task: str, items_for_seed, base_model: Path, dev: pd.DataFrame, base_dev: pd.DataFrame,
                  cfg: ScoreConfig, ev: EvalConfig, prompt: PromptConfig, gen_cfg: GenerationConfig,
                  scratch: Path, seeds: tuple[int, ...], round_: str = "r0",
                  compute: ComputeConfig = ComputeConfig()) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(UTILITY rows, SCORE_EVAL rows) of ``task`` from one compute-matched GRPO run per seed, and
    the precision and backends the runs resolved (:func:`supernova.hardware.record`);
    ``items_for_seed(seed)`` gives the run's training items."""
    out, per_item = [], []
    for seed in seeds:
        start = time.perf_counter()
        items = items_for_seed(seed)
        settings = dataclasses.replace(cfg.grpo, seed=seed)
        run_dir = scratch / f"seed{seed}"
        trained = run_grpo(base_model, items, settings, prompt, None, scratch_dir=run_dir / "run",
                           gen=gen_cfg, compute=compute, eval_seed=ev.seed,
                           evaluate=lambda gen: sample_and_check(gen, dev, prompt, ev.sampling, model=f"score:{task}",
                                                                 desc=f"score {task}"))
        res = trained["evaluation"]
        resolved = record(training=trained["compute"], evaluation=trained["evaluation_compute"])
        out.append(utility_rows(base_dev, res, task, seed, ev, time.perf_counter() - start, round_=round_))
        per_item.append(res.assign(source_task=task, seed=seed, round=round_))
        shutil.rmtree(run_dir, ignore_errors=True)
    return pd.concat(out, ignore_index=True), pd.concat(per_item, ignore_index=True), resolved


def score_task_gradient(task: str, probed: pd.DataFrame, base_model: Path, dev: pd.DataFrame, cfg: ScoreConfig,
                        prompt: PromptConfig, cache_dir: Path | None = None, seeds: tuple[int, ...] | None = None,
                        round_: str = "r0", *, ks: tuple[int, ...]) -> tuple[pd.DataFrame, dict]:
    """Utility rows of ``task`` from the gradient-alignment proxy (one per seed's item sample and
    target sub-task) and the precision it computed in; target gradients are shared through
    ``cache_dir``. The proxy has no pass@k: its rows are written at every k of ``ks`` (the RL
    path's ``evaluate.k``), so that ranking at any of them finds them, as for RL rows."""
    from .gradproxy import gradient_alignment, proxy_precision

    out = []
    for seed in cfg.seeds if seeds is None else seeds:
        start = time.perf_counter()
        items = training_items(probed, task, cfg.target_size, seed)
        cos = gradient_alignment(base_model, items, dev, prompt, cfg.proxy_layers, cache_dir,
                                 precision=cfg.grpo.mixed_precision)
        sizes, seconds = dev.groupby("task").size(), time.perf_counter() - start
        out += [pd.DataFrame({
            "source_task": task, "target_task": list(cos), "seed": seed, "round": round_, "k": k,
            "base": float("nan"), "trained": float("nan"), "utility": list(cos.values()), "ci_low": float("nan"),
            "ci_high": float("nan"), "n_items": [int(sizes[t]) for t in cos], "method": "gradient",
            "seconds": seconds, "parse_rate": float("nan")}) for k in ks]
    return pd.concat(out, ignore_index=True), record(proxy={"mixed_precision": proxy_precision(cfg.grpo.mixed_precision)})


def score_unit(task: str, round_: str, items_for_seed, probed: pd.DataFrame | None, cfg: ScoreConfig,
               ev: EvalConfig, prompt: PromptConfig, gen_cfg: GenerationConfig, compute: ComputeConfig) -> None:
    """One ``score@<task>-<round>`` (or ``score-control@<round>``) stage: the runs of the seeds the
    round's promotion file gives ``task`` (none: empty outputs), written to its score folder with
    what the runs resolved on this machine in the utility file's metadata."""
    import json

    from . import paths
    from .schema import EVAL, ITEM, SCORE_EVAL, UTILITY, read_table, write_table

    decision = json.loads(paths.promotion_file(round_, task).read_text())
    rows, items, resolved = pd.DataFrame(columns=UTILITY.names), pd.DataFrame(columns=SCORE_EVAL.names), None
    if decision["promoted"]:
        seeds = tuple(decision["seeds"])
        dev = read_table(paths.TARGET_DEV, ITEM)
        if cfg.method == "rl":
            rows, items, resolved = score_task_rl(task, items_for_seed, paths.BASE_MODEL, dev,
                                                  read_table(paths.BASELINE_DEV, EVAL), cfg, ev, prompt, gen_cfg,
                                                  paths.SCORE_SCRATCH / round_ / task, seeds, round_, compute)
        elif probed is None:
            raise ParamsError("the format control needs score.method: rl", file="params.yaml", field="score.control")
        else:
            rows, resolved = score_task_gradient(task, probed, paths.BASE_MODEL, dev, cfg, prompt,
                                                 paths.SCORE_SCRATCH, seeds, round_, ks=ev.k)
    out = paths.score_dir(round_, task)
    write_table(out / "utility.parquet", rows, UTILITY, meta={"compute": resolved})
    write_table(out / "items.parquet", items, SCORE_EVAL)
