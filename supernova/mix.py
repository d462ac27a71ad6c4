"""Mix: choose source tasks by strategy and draw a size-matched mixture from probe-kept items.

Strategies (``mix.strategy``):

* ``micro`` — for each target sub-task, its top-``k`` source tasks by utility; the union. Only a
  measured gain counts (utility above ``min_utility``): a sub-task that no task improves adds no
  task (the manifest lists it under ``subtasks_without_task``, with the best candidate), and equal
  utilities are ordered by mean utility. On a sub-task whose signal-to-noise ratio is below
  ``score.min_snr`` (the utility matrix's ``low_snr``) the order of its cells is noise: there the
  tasks are ranked by their mean utility over sub-tasks instead (macro's ranking), and the
  manifest lists the sub-task under ``low_snr_subtasks``. If no task improves any sub-task, micro
  falls back to macro's choice, and the manifest says so.
* ``macro`` — the top-``k`` source tasks by mean utility over sub-tasks.
* ``bottom`` — the ``k`` source tasks with the lowest mean utility (macro's opposite: trained
  against macro, it tests whether the ranking predicts training).

What "utility" means here: ``select_by: mean`` ranks by the point estimate, ``select_by: lcb`` by
the lower bound of its 95% CI (a gain counts only when it is separable from no gain); against the
base model (``score.baseline: base``) or net of the format control (``score.baseline: control``).
* ``random`` — ``k`` tasks drawn with the seed.
* ``all`` — every scored task.
* ``manual`` — the tasks listed in ``manual_tasks``.

The total number of items is the same whatever the strategy (``total_size``), spread evenly over
the chosen tasks (capped per task, the remainder going to tasks with items to spare), so
strategies compare data choice, not data amount.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .config import check_choice
from .errors import InputError, ParamsError
from .interventions import InterventionConfig
from .utility import mean_by_task

STRATEGIES = ("micro", "macro", "bottom", "random", "all", "manual")
SELECT_BY = ("mean", "lcb")


@dataclass(frozen=True)
class MixConfig:
    """params.yaml section ``mix``.

    Attributes:
        strategy: ``micro`` | ``macro`` | ``bottom`` | ``random`` | ``all`` | ``manual``.
        k: top-k per sub-task (micro), overall (macro), the bottom k (bottom), or the number of
            random tasks.
        total_size: items in the mixture, matched across strategies.
        per_task_cap: at most this many items from one task (``null``: no cap).
        manual_tasks: the task list for ``manual``.
        min_utility: micro counts a task for a sub-task only when its utility there (its lower
            confidence bound with ``select_by: lcb``) is above this.
        select_by: rank by the utility's point estimate (``mean``) or by the lower bound of its
            95% CI (``lcb``; needs RL utilities).
        seed: seed for random choices and item sampling.
        interventions: synthetic interventions applied to the mixture (see
            :class:`supernova.interventions.InterventionConfig`).
    """

    strategy: str = "micro"
    k: int = 1
    total_size: int = 64
    per_task_cap: int | None = None
    manual_tasks: tuple[str, ...] = ()
    min_utility: float = 0.0
    select_by: str = "mean"
    seed: int = 0
    interventions: InterventionConfig = field(default_factory=InterventionConfig)

    def __post_init__(self):
        check_choice(self.strategy, STRATEGIES, "mix.strategy")
        check_choice(self.select_by, SELECT_BY, "mix.select_by")
        if self.k < 1 or self.total_size < 1:
            raise ParamsError("k and total_size must be >= 1", file="params.yaml", field="mix")
        if self.strategy == "manual" and not self.manual_tasks:
            raise ParamsError("strategy manual needs a task list", file="params.yaml", field="mix.manual_tasks")


def ranking_columns(cfg: MixConfig, baseline: str = "base") -> tuple[str, str]:
    """(cell column, task-mean column) that the strategies rank by."""
    if cfg.select_by == "mean":
        return ("utility", "mean_utility") if baseline == "base" else ("net_utility", "net_mean_utility")
    return ("ci_low", "ci_low") if baseline == "base" else ("net_ci_low", "net_ci_low")


def _scores(m: pd.DataFrame, tasks: pd.DataFrame | None, cfg: MixConfig, baseline: str) -> tuple[pd.DataFrame, pd.Series]:
    cell, mean = ranking_columns(cfg, baseline)
    if tasks is None:
        if cell != "utility":
            raise ParamsError("ranking by a CI bound or net of the control needs the per-task table",
                              file="params.yaml", field="mix.select_by")
        means = mean_by_task(m).set_index("source_task")["mean_utility"]
    else:
        means = tasks.set_index("source_task")[mean]
    bad = m[cell].isna().any() or means.isna().any()
    if bad:
        why = ("needs confidence intervals (score.method: rl)" if cfg.select_by == "lcb"
               else "needs the format control (score.control: true)")
        raise ParamsError(f"ranking by {cell!r} {why}", file="params.yaml",
                          field="mix.select_by" if cfg.select_by == "lcb" else "score.baseline")
    return m.assign(score=m[cell]), means


def _top_by_mean(means: pd.Series, k: int, *, bottom: bool = False) -> dict[str, dict[str, Any]]:
    ranked = means.sort_values(ascending=bottom, kind="stable").head(k).index
    return {t: {"rank": rank} for rank, t in enumerate(ranked, 1)}


def low_snr(m: pd.DataFrame) -> dict[str, float | None]:
    """The sub-tasks the utility matrix flags as too noisy to rank on (``low_snr``), with their SNR."""
    if "low_snr" not in m.columns:
        return {}
    flagged = m[m["low_snr"].fillna(False).astype(bool)].drop_duplicates("target_task")
    return {r.target_task: (None if pd.isna(r.snr) else round(float(r.snr), 2)) for r in flagged.itertuples()}


def _top_per_subtask(m: pd.DataFrame, means: pd.Series, cfg: MixConfig) -> dict[str, dict[str, Any]]:
    """Micro: each sub-task's top-k tasks among those with a gain there (ties: higher mean first);
    on a low-SNR sub-task, by the mean over sub-tasks."""
    why: dict[str, dict[str, Any]] = {}
    noisy = low_snr(m)
    m = m.assign(mean_utility=lambda d: d.source_task.map(means))
    m = m.assign(score=[r.mean_utility if r.target_task in noisy else r.score for r in m.itertuples()])
    key = "utility" if cfg.select_by == "mean" else "utility_lcb"
    for target, g in m[m.score > cfg.min_utility].groupby("target_task", sort=True):
        top = g.sort_values(["score", "mean_utility", "source_task"], ascending=[False, False, True])
        for rank, r in enumerate(top.head(cfg.k).itertuples(), 1):
            entry = {"rank": rank, (f"mean_{key}" if target in noisy else key): round(float(r.score), 4)}
            if target in noisy:
                entry["ranked_by"] = "mean over sub-tasks (low SNR here)"
            why.setdefault(r.source_task, {"chosen_for": {}})["chosen_for"][target] = entry
    return why


def subtasks_without_task(m: pd.DataFrame, cfg: MixConfig, tasks: pd.DataFrame | None = None,
                          baseline: str = "base") -> dict[str, str]:
    """Micro: the sub-tasks that add no task, each with why (its best candidate's value)."""
    if cfg.strategy != "micro":
        return {}
    scored, means = _scores(m, tasks, cfg, baseline)
    noisy = low_snr(m)
    scored = scored.assign(score=[means[r.source_task] if r.target_task in noisy else r.score
                                  for r in scored.itertuples()])
    what = ("utility" if cfg.select_by == "mean" else "lower 95% bound of the utility") + (
        "" if baseline == "base" else " net of the format control")
    out = {}
    for target, g in scored.groupby("target_task", sort=True):
        best = g.sort_values(["score", "source_task"], ascending=[False, True]).iloc[0]
        if best.score <= cfg.min_utility:
            out[target] = (f"no task's {what} exceeds {cfg.min_utility} (best: {best.source_task}, "
                           f"{best.score:.4f})")
    return out


def choose_tasks(m: pd.DataFrame, cfg: MixConfig, tasks: pd.DataFrame | None = None,
                 baseline: str = "base") -> dict[str, dict[str, Any]]:
    """Chosen tasks → why: mean utility and, for micro, the sub-tasks it ranks top-k on. ``m`` is
    the utility matrix, ``tasks`` the per-task means with CIs (needed for ``select_by: lcb`` and
    ``baseline: control``)."""
    scored, means = _scores(m, tasks, cfg, baseline)
    names = sorted(means.index)
    if cfg.strategy == "micro":
        why = _top_per_subtask(scored, means, cfg) or {
            t: {**w, "fallback": f"no task's utility exceeds min_utility={cfg.min_utility} on any sub-task"}
            for t, w in _top_by_mean(means, cfg.k).items()}
    elif cfg.strategy == "macro":
        why = _top_by_mean(means, cfg.k)
    elif cfg.strategy == "bottom":
        why = _top_by_mean(means, cfg.k, bottom=True)
    elif cfg.strategy == "random":
        why = {t: {} for t in random.Random(cfg.seed).sample(names, min(cfg.k, len(names)))}
    elif cfg.strategy == "all":
        why = {t: {} for t in names}
    else:
        unknown = [t for t in cfg.manual_tasks if t not in means.index]
        if unknown:
            raise ParamsError(f"task {unknown[0]!r} was not scored; scored tasks: {names}", file="params.yaml",
                              field="mix.manual_tasks")
        why = {t: {} for t in cfg.manual_tasks}
    key = "mean_utility" if cfg.select_by == "mean" else "mean_utility_lcb"
    for t in why:
        why[t][key] = round(float(means[t]), 4)
    return dict(sorted(why.items()))


def allocate(available: dict[str, int], total: int, cap: int | None) -> dict[str, int]:
    """Spread ``total`` items evenly over tasks, within each task's availability and the cap."""
    limit = {t: min(n, cap) if cap else n for t, n in available.items()}
    alloc = {t: 0 for t in available}
    remaining = min(total, sum(limit.values()))
    while remaining > 0:
        open_tasks = [t for t in sorted(alloc) if alloc[t] < limit[t]]
        share = max(1, remaining // len(open_tasks))
        for t in open_tasks:
            add = min(share, limit[t] - alloc[t], remaining)
            alloc[t] += add
            remaining -= add
            if remaining == 0:
                break
    return alloc


def draw_items(probed: dict[str, pd.DataFrame], chosen: list[str], cfg: MixConfig) -> pd.DataFrame:
    """Probe-kept items of the chosen tasks, ``total_size`` in all (or every kept item if fewer)."""
    kept = {}
    for t in chosen:
        if t not in probed:
            raise InputError("no probe results for this task", task=t, field="mix")
        kept[t] = probed[t][probed[t]["kept"]]
    alloc = allocate({t: len(df) for t, df in kept.items()}, cfg.total_size, cfg.per_task_cap)
    parts = [kept[t].sample(n=alloc[t], random_state=cfg.seed) for t in chosen if alloc[t]]
    if not parts:
        raise InputError("the chosen tasks have no probe-kept items", field="mix")
    return pd.concat(parts, ignore_index=True).sort_values(["task", "uid"]).reset_index(drop=True)


def manifest(cfg: MixConfig, why: dict[str, dict[str, Any]], items: pd.DataFrame, probed: dict[str, pd.DataFrame],
             items_file: str, items_sha256: str, ranked_by: str, intervention_counts: dict[str, int],
             without_task: dict[str, str] | None = None, noisy: dict[str, float | None] | None = None) -> dict:
    """The human-readable record of the mixture, reviewed in pull requests (``noisy``: the low-SNR
    sub-tasks micro ranked by the mean over sub-tasks)."""
    counts = items["task"].value_counts()
    tasks = []
    for t, info in why.items():
        df = probed[t]
        entry = {"task": t, "skill": str(df["skill"].iloc[0]), "items": int(counts.get(t, 0)),
                 "kept_available": int(df["kept"].sum()),
                 "base_pass_rate": round(float(df["pass_rate"].mean()), 4), **info}
        tasks.append(entry)
    return {
        "strategy": cfg.strategy, "k": cfg.k, "ranked_by": ranked_by,
        "seed": cfg.seed, "total_items": int(len(items)), "tasks_chosen": len(tasks),
        "skills": sorted({t["skill"] for t in tasks}),
        "interventions": intervention_counts,
        "items_file": items_file, "items_sha256": items_sha256, "tasks": tasks,
        **({"subtasks_without_task": without_task} if without_task else {}),
        **({"low_snr_subtasks": {t: f"SNR {v} below score.min_snr: ranked by the mean over sub-tasks"
                                 for t, v in noisy.items()}} if noisy else {}),
    }
