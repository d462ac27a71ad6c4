"""What the utility runs are given: the ``score`` section's config and the items each run trains
and is measured on (compute-matched training items, each task's held-out items, the dev items the
sampled pass@k uses, the format control's items). :mod:`supernova.score` runs them."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import check_choice
from .errors import InputError, ParamsError
from .halving import SCHEDULES, HalvingConfig
from .schema import METRICS
from .schema import item_uid
from .training.settings import GRPOSettings

log = logging.getLogger(__name__)
METHODS = ("rl", "gradient")
#: What ``score.metric`` may name.
RANKABLE = ("pass@k",) + METRICS
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
        metric: what mixing (and halving) ranks by: a teacher-forced metric of
            :data:`supernova.likelihood.METRICS` or ``pass@k`` (the sampled pass@k at ``k``). Every
            run records every metric.
        k: the k of ``pass@k`` (every k of ``evaluate.k`` is kept in the table).
        checkpoints: the last N optimizer steps of a run whose teacher-forced metrics are averaged
            (Signal and Noise's checkpoint averaging).
        heldout: items of each source task held out of its runs' training and scored like the dev
            items, for the run's in-task gain (0: none).
        sample_items: dev items per sub-task that the sampled pass@k uses (the first ones by uid;
            ``null``: all); the teacher-forced metrics use every dev item.
        min_snr: a target sub-task whose signal-to-noise ratio (spread of the task utilities over
            one run's seed-to-seed spread, :func:`supernova.utility.signal_noise`) is below this is
            flagged, and micro mixing ranks by the mean over sub-tasks there.
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
    metric: str = "pass@k"
    k: int = 1
    checkpoints: int = 1
    heldout: int = 0
    sample_items: int | None = None
    min_snr: float = 2.0
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
        check_choice(self.metric, RANKABLE, "score.metric")
        if self.checkpoints > self.grpo.max_steps:
            raise ParamsError(f"a run of {self.grpo.max_steps} steps has no {self.checkpoints} last checkpoints",
                              file="params.yaml", field="score.checkpoints")
        if self.heldout < 0:
            raise ParamsError("must be >= 0", file="params.yaml", field="score.heldout")
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
    def ranking_metric(self) -> str:
        """The metric name utility rows carry for what mixing ranks by (``pass@1``,
        ``gold_logprob_token``, ...; the gradient proxy's rows carry ``gradient``)."""
        if self.method == "gradient":
            return "gradient"
        return f"pass@{self.k}" if self.metric == "pass@k" else self.metric

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


def heldout_items(probed: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` items of a source task that its utility runs never train on (the first by uid,
    kept by the probe filter or not): its in-task gain is measured on them."""
    return probed.sort_values("uid").head(n).reset_index(drop=True)


def training_items(probed: pd.DataFrame, task: str, target_size: int, seed: int, heldout: int = 0) -> pd.DataFrame:
    """The task's probe-kept items but the ``heldout`` ones (all of those if the filter kept none),
    compute-matched."""
    pool = probed[~probed["uid"].isin(heldout_items(probed, heldout)["uid"])]
    if pool.empty:
        raise InputError(f"{len(probed)} probed items and {heldout} held out leave none to train on", task=task,
                         field="score.heldout")
    kept = pool[pool["kept"]]
    if kept.empty:
        log.warning("task %s: the probe filter kept no items; training on all %d", task, len(pool))
        kept = pool
    return compute_matched(kept, target_size, seed)


def sampled_items(dev: pd.DataFrame, per_task: int | None) -> pd.DataFrame:
    """The dev items the sampled pass@k uses: the first ``per_task`` of each sub-task by uid (all
    with ``None``)."""
    if per_task is None:
        return dev
    return dev.sort_values(["task", "uid"]).groupby("task", sort=True).head(per_task).reset_index(drop=True)


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
