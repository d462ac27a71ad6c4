"""Assemble the utility matrix from the per-task score outputs; plot data and a summary."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .errors import ParamsError

#: The ``k`` of utility rows that hold for every k (the gradient proxy measures no pass@k).
ANY_K = 0


def matrix(utility: pd.DataFrame, k: int) -> pd.DataFrame:
    """Mean over seeds of the utility at pass@k: rows (source_task, target_task, utility, ci_low,
    ci_high, spread), where spread is the standard deviation across seeds (0 for one seed)."""
    u = utility[(utility["k"] == k) | (utility["k"] == ANY_K)]
    if u.empty:
        raise ParamsError(f"no utility rows at pass@{k}; the scores hold k in {sorted(set(utility['k']))} "
                          "(evaluate.k when score.method is rl)", file="params.yaml", field="score.k")
    g = u.groupby(["source_task", "target_task"], sort=True)
    out = g.agg(utility=("utility", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean"),
                spread=("utility", lambda s: float(s.std(ddof=0))), seeds=("seed", "nunique")).reset_index()
    return out


def mean_by_task(m: pd.DataFrame) -> pd.DataFrame:
    """Mean utility of each source task over target sub-tasks, best first."""
    out = m.groupby("source_task", sort=True)["utility"].mean().reset_index(name="mean_utility")
    return out.sort_values(["mean_utility", "source_task"], ascending=[False, True]).reset_index(drop=True)


def plot_data(m: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """(heatmap rows, sorted bar rows) for dvc plots."""
    heat = [{"source_task": r.source_task, "target_task": r.target_task, "utility": round(float(r.utility), 4)}
            for r in m.itertuples()]
    bars = [{"source_task": r.source_task, "mean_utility": round(float(r.mean_utility), 4)}
            for r in mean_by_task(m).itertuples()]
    return heat, bars


def summary(m: pd.DataFrame, k: int, method: str) -> dict[str, Any]:
    means = mean_by_task(m)
    return {
        "k": k, "method": method, "source_tasks": int(m["source_task"].nunique()),
        "target_subtasks": int(m["target_task"].nunique()),
        "best_task": means.iloc[0]["source_task"], "best_mean_utility": round(float(means.iloc[0]["mean_utility"]), 4),
        "worst_task": means.iloc[-1]["source_task"],
        "worst_mean_utility": round(float(means.iloc[-1]["mean_utility"]), 4),
        "best_minus_worst": round(float(means.iloc[0]["mean_utility"] - means.iloc[-1]["mean_utility"]), 4),
        "mean_utility": {r.source_task: round(float(r.mean_utility), 4) for r in means.itertuples()},
    }
