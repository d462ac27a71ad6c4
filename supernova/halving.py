"""Scoring schedules: every task with every seed (``exhaustive``), or successive halving.

``score.schedule: halving`` (Karnin et al. 2013; Jamieson & Talwalkar 2016): round ``r0`` runs
every source task with ``score.seeds``; each later round keeps the best ``ceil(n / eta)`` of the
tasks the previous round ran and gives each ``eta`` times the previous round's number of *new*
seeds, so every round costs about the same and the finalists' utilities rest on the most seeds.
Every run has the same compute (``score.grpo``), so utilities stay comparable across rounds and
tasks; a task's utility is the mean over all its seeds. ``halving.budget`` caps the total number
of runs (source task x seed): a round that would exceed it gets fewer seeds per task, or none.

How the rounds map onto DVC: dvc.yaml cannot compute a stage list, nor refer from round r to
round r - 1 by arithmetic, so it lists the rounds it supports (:data:`ROUNDS`) as fixed stages.
``promote-<round>`` reads the earlier rounds' outputs and writes one small file per task
(``data/halving/<round>/<task>.json``: promoted or not, and its seeds); ``score@<task>-<round>``
depends on that task's file only. Adding a task reruns the promote stages, but a task whose
decision and seeds are unchanged keeps its cached run; a round a task is not promoted to writes
empty outputs in a second. The exhaustive schedule is the same stages with every later round empty.

The format control (``score.control``) is promoted to every round that runs, with that round's
seeds: it has as many runs as the finalists, and the same compute per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParamsError

#: The scoring rounds dvc.yaml defines (one ``promote-<round>`` stage and one ``score@<task>-<round>``
#: stage per task each).
ROUNDS = ("r0", "r1", "r2")
SCHEDULES = ("exhaustive", "halving")
RANK_BY = ("mean", "subtask")


@dataclass(frozen=True)
class HalvingConfig:
    """params.yaml ``score.halving`` (used when ``score.schedule: halving``).

    Attributes:
        rounds: scoring rounds, 2..3 (dvc.yaml defines r0, r1, r2).
        eta: each round keeps the best ``ceil(n / eta)`` tasks and gives each ``eta`` times the
            previous round's number of new seeds.
        budget: at most this many runs (source task x seed) in all (``null``: no cap); must
            cover round r0 (every task with ``score.seeds``). The control's runs are not counted.
        rank_by: what "best" means when promoting: ``mean`` (mean utility over target sub-tasks,
            what macro mixing ranks by) or ``subtask`` (the task's best rank on any sub-task, ties
            by mean: keeps each sub-task's leaders, what micro mixing picks).
    """

    rounds: int = 3
    eta: int = 2
    budget: int | None = None
    rank_by: str = "subtask"

    def __post_init__(self):
        if not 2 <= self.rounds <= len(ROUNDS):
            raise ParamsError(f"must be in 2..{len(ROUNDS)} (dvc.yaml defines rounds {list(ROUNDS)})",
                              file="params.yaml", field="score.halving.rounds")
        if self.eta < 2:
            raise ParamsError("must be >= 2", file="params.yaml", field="score.halving.eta")
        if self.rank_by not in RANK_BY:
            raise ParamsError(f"must be one of {RANK_BY}, got {self.rank_by!r}", file="params.yaml",
                              field="score.halving.rank_by")


@dataclass(frozen=True)
class RoundPlan:
    """How many tasks a round runs and which seeds each of them gets."""

    round: str
    tasks: int
    seeds: tuple[int, ...]

    @property
    def runs(self) -> int:
        return self.tasks * len(self.seeds)


def plan(n_tasks: int, seeds: tuple[int, ...], schedule: str, cfg: HalvingConfig) -> list[RoundPlan]:
    """The rounds of a schedule, deterministic from params (one entry per :data:`ROUNDS` entry)."""
    if schedule == "exhaustive":
        return [RoundPlan(ROUNDS[0], n_tasks, tuple(seeds))] + [RoundPlan(r, 0, ()) for r in ROUNDS[1:]]
    if cfg.budget is not None and cfg.budget < n_tasks * len(seeds):
        raise ParamsError(f"budget {cfg.budget} does not cover round r0 ({n_tasks} tasks x {len(seeds)} seeds)",
                          file="params.yaml", field="score.halving.budget")
    out = [RoundPlan(ROUNDS[0], n_tasks, tuple(seeds))]
    spent, n, next_seed, per_task = n_tasks * len(seeds), n_tasks, max(seeds) + 1, len(seeds)
    for i, r in enumerate(ROUNDS[1:], 1):
        n, per_task = math.ceil(n / cfg.eta), per_task * cfg.eta
        if cfg.budget is not None:
            per_task = min(per_task, (cfg.budget - spent) // n)
        if i >= cfg.rounds or per_task <= 0 or n < 1 or out[-1].tasks <= 1:
            out.append(RoundPlan(r, 0, ()))
            per_task = 0
            continue
        new = tuple(range(next_seed, next_seed + per_task))
        out.append(RoundPlan(r, n, new))
        spent, next_seed = spent + n * per_task, next_seed + per_task
    return out


def ranking(utility: pd.DataFrame, rank_by: str) -> pd.DataFrame:
    """Tasks best first from UTILITY-like rows (``source_task``, ``target_task``, ``utility``, any
    seeds): columns source_task, mean_utility, best_rank (1 = leads some sub-task)."""
    cells = utility.groupby(["source_task", "target_task"], sort=True)["utility"].mean().reset_index()
    cells["rank"] = cells.groupby("target_task")["utility"].rank(ascending=False, method="min")
    out = cells.groupby("source_task").agg(mean_utility=("utility", "mean"), best_rank=("rank", "min")).reset_index()
    keys = ["mean_utility", "source_task"] if rank_by == "mean" else ["best_rank", "mean_utility", "source_task"]
    asc = [False, True] if rank_by == "mean" else [True, False, True]
    return out.sort_values(keys, ascending=asc).reset_index(drop=True)


def promote(round_: str, tasks: list[str], earlier: pd.DataFrame, rounds: list[RoundPlan],
            rank_by: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Decide which ``tasks`` run in ``round_``: ({task: {"promoted", "seeds"}}, the decision's record).

    ``earlier`` holds the UTILITY rows (at the ranking k) of every earlier round; the candidates
    are the tasks the previous round ran, ranked on all their seeds so far."""
    idx = [p.round for p in rounds].index(round_)
    this = rounds[idx]
    if idx == 0 or this.tasks == 0:
        chosen = list(tasks) if idx == 0 else []
        record = {"round": round_, "runs": this.runs, "promoted": chosen}
    else:
        prev = rounds[idx - 1].round
        ran = sorted(set(earlier.loc[earlier["round"] == prev, "source_task"]) & set(tasks))
        ranked = ranking(earlier[earlier["source_task"].isin(ran)], rank_by)
        chosen = ranked["source_task"].head(this.tasks).tolist()
        record = {"round": round_, "runs": len(chosen) * len(this.seeds), "rank_by": rank_by, "promoted": chosen,
                  "ranking": [{"task": r.source_task, "mean_utility": round(float(r.mean_utility), 4),
                               "best_rank": int(r.best_rank)} for r in ranked.itertuples()]}
    decisions = {t: {"round": round_, "task": t, "promoted": t in chosen, "seeds": list(this.seeds) if t in chosen
                     else []} for t in tasks}
    return decisions, record


# ---------------------------------------------------------------------------------------------
# Simulation on a synthetic utility table: how often halving finds the exhaustive top-k.


def synthetic_table(n_tasks: int, n_targets: int, *, common: float, task_sd: float, cell_sd: float,
                    rng: np.random.Generator) -> np.ndarray:
    """True utilities (tasks, targets): a shared gain (the format effect), a per-task effect and a
    task x sub-task interaction, all normal."""
    return (common + rng.normal(0, task_sd, (n_tasks, 1)) + rng.normal(0, cell_sd, (n_tasks, n_targets)))


def _draws(true: np.ndarray, n_seeds: int, seed_sd: float, noise_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Measured utilities (seeds, tasks, targets): per run, a seed effect on the task (shared by
    its sub-tasks) and per-cell measurement noise (the dev items' sampling)."""
    s, (t, g) = n_seeds, true.shape
    return true[None] + rng.normal(0, seed_sd, (s, t, 1)) + rng.normal(0, noise_sd, (s, t, g))


def _rows(draws: np.ndarray, tasks: list[int], seeds: list[int], round_: str) -> pd.DataFrame:
    sub = draws[np.ix_(seeds, tasks)]
    s, t, g = np.meshgrid(seeds, tasks, range(draws.shape[2]), indexing="ij")
    return pd.DataFrame({"source_task": t.ravel(), "target_task": g.ravel(), "seed": s.ravel(), "round": round_,
                         "utility": sub.ravel()})


def top_k(utility: pd.DataFrame, k: int) -> set:
    """The k tasks with the highest mean utility (macro's choice)."""
    return set(ranking(utility, "mean")["source_task"].head(k))


def leaders(utility: pd.DataFrame) -> dict:
    """Each sub-task's top task (micro's choice with k = 1)."""
    cells = utility.groupby(["target_task", "source_task"])["utility"].mean().reset_index()
    return {t: g.sort_values(["utility", "source_task"], ascending=[False, True]).iloc[0]["source_task"]
            for t, g in cells.groupby("target_task")}


def simulate(true: np.ndarray, *, seeds: int, cfg: HalvingConfig, seed_sd: float, noise_sd: float, k: int,
             trials: int, rng: np.random.Generator) -> dict[str, float]:
    """Halving vs exhaustive on ``true`` utilities, over ``trials`` independent measurements.

    Runs are shared: seed s of task t measures the same in both schedules. Exhaustive gives every
    task the finalists' number of seeds. Returns the share of trials where halving's top-k by mean
    (finalists first) equals exhaustive's, where every sub-task leader among halving's finalists
    equals exhaustive's leader, the same two against the true table, for halving and for an
    exhaustive schedule spending halving's compute evenly, and halving's compute fraction."""
    n_tasks, n_targets = true.shape
    rounds = plan(n_tasks, tuple(range(seeds)), "halving", cfg)
    n_exh = sum(len(p.seeds) for p in rounds if p.tasks)
    halving_runs = sum(p.runs for p in rounds)
    even = max(1, halving_runs // n_tasks)
    true_rows = _rows(true[None], list(range(n_tasks)), [0], "true")
    true_top, true_lead = top_k(true_rows, k), leaders(true_rows)
    hits = {"topk_vs_exhaustive": 0, "leaders_vs_exhaustive": 0, "topk_vs_truth": 0, "leaders_vs_truth": 0,
            "exhaustive_topk_vs_truth": 0, "even_topk_vs_truth": 0, "even_leaders_vs_truth": 0}
    tasks = list(range(n_tasks))
    for _ in range(trials):
        draws = _draws(true, n_exh, seed_sd, noise_sd, rng)
        exh = _rows(draws, tasks, list(range(n_exh)), "r0")
        ev = _rows(draws, tasks, list(range(min(even, n_exh))), "r0")
        seen = pd.DataFrame(columns=exh.columns)
        reached = {t: 0 for t in tasks}
        for i, p in enumerate(rounds):
            if not p.tasks:
                break
            decisions, _ = promote(p.round, tasks, seen, rounds, cfg.rank_by)
            ran = [t for t, d in decisions.items() if d["promoted"]]
            seen = pd.concat([seen, _rows(draws, ran, list(p.seeds), p.round)], ignore_index=True)
            for t in ran:
                reached[t] = i
        order = ranking(seen, "mean").assign(reached=lambda d: d["source_task"].map(reached))
        order = order.sort_values(["reached", "mean_utility"], ascending=[False, False])
        h_top, h_lead = set(order["source_task"].head(k)), leaders(seen)
        e_top, e_lead = top_k(exh, k), leaders(exh)
        hits["topk_vs_exhaustive"] += h_top == e_top
        hits["leaders_vs_exhaustive"] += h_lead == e_lead
        hits["topk_vs_truth"] += h_top == true_top
        hits["leaders_vs_truth"] += h_lead == true_lead
        hits["exhaustive_topk_vs_truth"] += e_top == true_top
        hits["even_topk_vs_truth"] += top_k(ev, k) == true_top
        hits["even_leaders_vs_truth"] += leaders(ev) == true_lead
    out = {name: v / trials for name, v in hits.items()}
    out.update(compute_fraction=halving_runs / (n_tasks * n_exh), halving_runs=halving_runs,
               exhaustive_runs=n_tasks * n_exh, finalist_seeds=n_exh, even_seeds=even)
    return out
