"""Assemble the utility matrix from the per-run score outputs: CIs, reliability, plot data, summary.

The RL utility of a cell (source task, target sub-task) is the mean over the task's runs (seeds,
over every scoring round) of pass@k(checkpoint) - pass@k(base) on the sub-task's dev items. Its
95% CI comes from a hierarchical bootstrap that resamples seeds and items
(:func:`supernova.stats.hierarchical_bootstrap`), with the same item draw for every task, the
control and the base model, so differences stay paired. Also reported:

* ``net`` utilities: minus the format control's utility on the same sub-task (from the same
  replicates);
* per sub-task, whether the top task is **separated** from the next (lower bound of the
  difference > 0), the two chosen on one half of the data and tested on the other
  (:func:`separation_of_top`);
* the **reliability of the ranking**: the Spearman correlation of per-task mean utility between
  two independent halves of the data, averaged over random splits, with a bootstrap CI, and its
  Spearman-Brown projection to the whole data, 2r / (1 + r), 0 for r < 0
  (:func:`supernova.stats.spearman_brown`). ``reliability`` splits each task's seeds (would the
  ranking replicate with new runs? it needs two or more seeds per task); ``item_reliability``
  splits the dev items of the same runs, which measures item noise only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .errors import InputError
from .stats import hierarchical_bootstrap, pass_at_k_items, spearman_brown, spearman_ci


def matrix(utility: pd.DataFrame, k: int) -> pd.DataFrame:
    """Mean over seeds of the utility at pass@k: rows (source_task, target_task, utility, ci_low,
    ci_high, spread), where spread is the standard deviation across seeds (0 for one seed) and the
    CI bounds are the per-run bounds averaged (no seed variance: use :func:`bootstrap_matrix`)."""
    u = utility[utility["k"] == k]
    if u.empty:
        raise ValueError(f"no utility rows at k={k}")
    g = u.groupby(["source_task", "target_task"], sort=True)
    out = g.agg(utility=("utility", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean"),
                spread=("utility", lambda s: float(s.std(ddof=0))), seeds=("seed", "nunique")).reset_index()
    return out


def mean_by_task(m: pd.DataFrame) -> pd.DataFrame:
    """Mean utility of each source task over target sub-tasks, best first."""
    out = m.groupby("source_task", sort=True)["utility"].mean().reset_index(name="mean_utility")
    return out.sort_values(["mean_utility", "source_task"], ascending=[False, True]).reset_index(drop=True)


@dataclass
class Scores:
    """Per-item pass@k of every scored unit, aligned on the dev items."""

    units: list[str]                 # source tasks (and the control), in this order
    per_seed: list[np.ndarray]       # per unit: (seeds, items)
    seeds: list[list[int]]           # per unit: the seeds of its rows
    parse: list[np.ndarray]          # per unit: (seeds, items) parse share of the completions
    base: np.ndarray                 # (items,)
    base_parse: np.ndarray           # (items,)
    groups: np.ndarray               # (items,) target sub-task of each item
    targets: list[str]               # sorted sub-tasks (the bootstrap's group order)


def item_scores(runs: pd.DataFrame, base: pd.DataFrame, units: list[str], k: int, *, file: str) -> Scores:
    """Align SCORE_EVAL rows (``runs``, every seed and round) with the base model's EVAL rows on the
    dev items; every run must cover every dev item."""
    base = base.sort_values(["task", "uid"]).reset_index(drop=True)
    order = pd.Index(base["uid"])
    per_seed, seeds, parse = [], [], []
    for unit in units:
        rows = runs[runs["source_task"] == unit]
        if rows.empty:
            raise InputError("no scoring run of this task (run its score stages)", file=file, task=unit, field="seed")
        mats, pmats, ss = [], [], []
        for s, g in rows.groupby("seed", sort=True):
            g = g.set_index("uid")
            missing = order.difference(g.index)
            if len(missing):
                raise InputError(f"seed {s}: no result for dev item {missing[0]}", file=file, task=unit, field="uid")
            g = g.loc[order]
            mats.append(pass_at_k_items(g["n"], g["correct"], k))
            pmats.append((g["parsed"] / g["n"]).to_numpy(dtype=float))
            ss.append(int(s))
        per_seed.append(np.stack(mats))
        parse.append(np.stack(pmats))
        seeds.append(ss)
    return Scores(units=list(units), per_seed=per_seed, seeds=seeds, parse=parse,
                  base=pass_at_k_items(base["n"], base["correct"], k),
                  base_parse=(base["parsed"] / base["n"]).to_numpy(dtype=float),
                  groups=base["task"].to_numpy(), targets=sorted(base["task"].unique()))


def _ci(reps: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return np.quantile(reps, 0.025, axis=axis), np.quantile(reps, 0.975, axis=axis)


def _point(sc: Scores) -> np.ndarray:
    """(units, targets): mean over seeds and items of the gain over base."""
    out = np.empty((len(sc.units), len(sc.targets)))
    for g, t in enumerate(sc.targets):
        cols = sc.groups == t
        for j, m in enumerate(sc.per_seed):
            out[j, g] = m[:, cols].mean() - sc.base[cols].mean()
    return out


@dataclass
class UtilityEstimate:
    matrix: pd.DataFrame             # UTILITY_MATRIX rows
    tasks: pd.DataFrame              # TASK_UTILITY rows
    separation: dict[str, Any]       # per target sub-task
    point: np.ndarray                # (sources, targets) raw utility
    reps: np.ndarray                 # (iters, sources, targets) raw replicates


def estimate(sc: Scores, sources: list[str], control: str | None, k: int, *, iters: int = 1000,
             seed: int = 0) -> UtilityEstimate:
    """The utility matrix, per-task means and per-sub-task separation, raw and net of ``control``."""
    reps_all = hierarchical_bootstrap(sc.per_seed, sc.base, sc.groups, iters=iters, seed=seed)
    point_all = _point(sc)
    src = [sc.units.index(s) for s in sources]
    point, reps = point_all[src], reps_all[:, src]
    if control is not None:
        c = sc.units.index(control)
        net_point, net_reps = point - point_all[c][None], reps - reps_all[:, c][:, None]
        control_point = point_all[c]
    else:
        net_point = np.full_like(point, np.nan)
        net_reps = np.full_like(reps, np.nan)
        control_point = np.full(len(sc.targets), np.nan)
    lo, hi = _ci(reps)
    nlo, nhi = _ci(net_reps) if control is not None else (net_point, net_point)
    rows = []
    for i, s in enumerate(sources):
        j = src[i]
        for g, t in enumerate(sc.targets):
            cols = sc.groups == t
            rows.append({"source_task": s, "target_task": t, "k": k, "utility": point[i, g], "ci_low": lo[i, g],
                         "ci_high": hi[i, g], "net_utility": net_point[i, g], "net_ci_low": nlo[i, g],
                         "net_ci_high": nhi[i, g], "control_utility": control_point[g],
                         "seeds": len(sc.seeds[j]), "n_items": int(cols.sum()),
                         "parse_rate": float(sc.parse[j][:, cols].mean())})
    mean_reps, net_mean_reps = reps.mean(axis=2), net_reps.mean(axis=2)
    mlo, mhi = _ci(mean_reps)
    nmlo, nmhi = _ci(net_mean_reps) if control is not None else (net_point.mean(1), net_point.mean(1))
    tasks = pd.DataFrame({"source_task": sources, "k": k, "mean_utility": point.mean(axis=1), "ci_low": mlo,
                          "ci_high": mhi, "net_mean_utility": net_point.mean(axis=1), "net_ci_low": nmlo,
                          "net_ci_high": nmhi, "seeds": [len(sc.seeds[j]) for j in src]})
    separation = separation_of_top(sc, sources, iters=iters, seed=seed)
    return UtilityEstimate(pd.DataFrame(rows), tasks, separation, point, reps)


def separation_of_top(sc: Scores, sources: list[str], *, iters: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per target sub-task: is the top source task ahead of the next? The two are chosen on one
    half of the data and their difference is tested on the other half, so the noise that put them
    in that order does not also decide the test (choosing and testing on the same data calls equal
    tasks separable too often). The halves are each task's seeds when every task has two or more
    (the test half gets the larger part), else the dev items of the sub-task; the difference's 95%
    CI comes from the hierarchical bootstrap on the test half, and ``separable`` means its lower
    bound is above 0. ``top_on_all_data`` is the top task by the point estimate on all the data."""
    idx = [sc.units.index(s) for s in sources]
    if len(idx) < 2:
        return {}
    per_seed = [sc.per_seed[j] for j in idx]
    rng = np.random.default_rng(seed)
    by_seed = all(len(m) >= 2 for m in per_seed)
    everything = np.ones(len(sc.groups), dtype=bool)
    if by_seed:
        pick_rows, test_rows = _seed_halves(per_seed, rng)
        pick_cols, test_cols = everything, everything
    else:
        pick_rows = test_rows = [np.arange(len(m)) for m in per_seed]
        pick_cols = _item_half(sc.groups, sc.targets, rng)
        test_cols = ~pick_cols
    full = _point(sc)[idx]
    out = {}
    for g, t in enumerate(sc.targets):
        in_t = sc.groups == t
        pc, tc = np.flatnonzero(in_t & pick_cols), np.flatnonzero(in_t & test_cols)
        if not len(pc):
            out[t] = {"separable": False, "note": "one dev item: no halves to choose on and test on"}
            continue
        picked = [m[r][:, pc].mean() for m, r in zip(per_seed, pick_rows)]
        a, b = sorted(range(len(idx)), key=lambda i: (-picked[i], sources[i]))[:2]
        test = [per_seed[i][test_rows[i]][:, tc] for i in (a, b)]
        reps = hierarchical_bootstrap(test, sc.base[tc], np.zeros(len(tc), dtype=int), iters=iters,
                                      seed=int(rng.integers(2 ** 31)))
        d_lo, d_hi = _ci(reps[:, 0, 0] - reps[:, 1, 0])
        out[t] = {"top": sources[a], "next": sources[b], "halves": "seeds" if by_seed else "items",
                  "difference": round(float(test[0].mean() - test[1].mean()), 4),
                  "ci_low": round(float(d_lo), 4), "ci_high": round(float(d_hi), 4), "separable": bool(d_lo > 0),
                  "top_on_all_data": sources[min(range(len(idx)), key=lambda i: (-full[i, g], sources[i]))]}
    return out


def _half_means(per_seed: list[np.ndarray], base: np.ndarray, groups: np.ndarray, targets: list[str],
                seed_halves: list[np.ndarray] | None, item_half: np.ndarray | None,
                rng: np.random.Generator | None) -> np.ndarray:
    """Per-unit mean utility over sub-tasks on one half (a seed subset per unit, or an item subset),
    optionally with seeds and items resampled within the half."""
    out = np.empty(len(per_seed))
    for j, m in enumerate(per_seed):
        rows = m if seed_halves is None else m[seed_halves[j]]
        if rng is not None:
            rows = rows[rng.integers(0, len(rows), len(rows))]
        vals = []
        for t in targets:
            cols = np.flatnonzero((groups == t) & (item_half if item_half is not None else True))
            if rng is not None:
                cols = cols[rng.integers(0, len(cols), len(cols))]
            vals.append(rows[:, cols].mean() - base[cols].mean())
        out[j] = np.mean(vals)
    return out


def _seed_halves(per_seed: list[np.ndarray], rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Two disjoint halves of each unit's seeds (row indices), drawn at random: [first, second]."""
    perms = [rng.permutation(len(m)) for m in per_seed]
    return [[p[: len(p) // 2] for p in perms], [p[len(p) // 2:] for p in perms]]


def _item_half(groups: np.ndarray, targets: list[str], rng: np.random.Generator) -> np.ndarray:
    """A random half of the dev items within each sub-task (a boolean mask; its complement is the
    other half)."""
    half = np.zeros(len(groups), dtype=bool)
    for t in targets:
        cols = np.flatnonzero(groups == t)
        half[rng.permutation(cols)[: len(cols) // 2]] = True
    return half


def reliability(sc: Scores, sources: list[str], *, splits: int = 200, seed: int = 0,
                halves: str = "seeds") -> dict[str, Any]:
    """How far the ranking of source tasks by mean utility replicates: Spearman's rho between two
    independent halves, averaged over ``splits`` random splits; its CI from the same splits with
    seeds and items resampled within each half; ``reliability`` and its CI projected to the whole
    data by Spearman-Brown.

    ``halves="seeds"``: each task's seeds split in two (every task needs two or more): would the
    ranking replicate with new runs? ``halves="items"``: the dev items split in two within each
    sub-task, all seeds in both halves: the *item reliability*, which measures item noise only
    (the same runs on other items), not run-to-run variation."""
    if halves not in ("seeds", "items"):
        raise ValueError(f"halves must be 'seeds' or 'items', got {halves!r}")
    idx = [sc.units.index(s) for s in sources]
    per_seed = [sc.per_seed[j] for j in idx]
    if len(sources) < 3:
        return {"halves": None, "note": "fewer than 3 source tasks: no rank correlation"}
    if halves == "seeds" and not all(len(m) >= 2 for m in per_seed):
        return {"halves": None, "note": "needs two or more seeds per task (score.seeds): no seed halves; "
                                        "item_reliability splits the dev items of the same runs"}
    rng = np.random.default_rng(seed)
    point, boot = [], []
    for _ in range(splits):
        if halves == "seeds":
            args = [(h, None) for h in _seed_halves(per_seed, rng)]
        else:
            half = _item_half(sc.groups, sc.targets, rng)
            args = [(None, half), (None, ~half)]
        for resample, sink in ((None, point), (rng, boot)):
            a, b = (_half_means(per_seed, sc.base, sc.groups, sc.targets, sh, ih, resample) for sh, ih in args)
            if np.ptp(a) > 0 and np.ptp(b) > 0:
                sink.append(spearmanr(a, b).statistic)
    r = float(np.mean(point)) if point else float("nan")
    lo, hi = (np.quantile(boot, [0.025, 0.975]) if boot else (float("nan"), float("nan")))
    return {"halves": halves, "splits": splits,
            "split_half_spearman": _r(r), "split_half_ci_low": _r(lo), "split_half_ci_high": _r(hi),
            "reliability": _r(spearman_brown(r)), "reliability_ci_low": _r(spearman_brown(float(lo))),
            "reliability_ci_high": _r(spearman_brown(float(hi)))}


def plot_data(m: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """(heatmap rows, sorted bar rows) for dvc plots."""
    heat = [{"source_task": r.source_task, "target_task": r.target_task, "utility": round(float(r.utility), 4)}
            for r in m.itertuples()]
    bars = [{"source_task": r.source_task, "mean_utility": round(float(r.mean_utility), 4)}
            for r in mean_by_task(m).itertuples()]
    return heat, bars


def _r(x: float | None) -> float | None:
    """A JSON-safe rounded number (None where undefined)."""
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def summary(m: pd.DataFrame, k: int, method: str, tasks: pd.DataFrame | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """metrics/utility.json: the ranking by mean utility (raw and, with a control, net, with CIs)
    and what :func:`estimate`/:func:`reliability` add (``extra``)."""
    means = mean_by_task(m)
    out: dict[str, Any] = {
        "k": k, "method": method, "source_tasks": int(m["source_task"].nunique()),
        "target_subtasks": int(m["target_task"].nunique()),
        "best_task": means.iloc[0]["source_task"], "best_mean_utility": round(float(means.iloc[0]["mean_utility"]), 4),
        "worst_task": means.iloc[-1]["source_task"],
        "worst_mean_utility": round(float(means.iloc[-1]["mean_utility"]), 4),
        "best_minus_worst": round(float(means.iloc[0]["mean_utility"] - means.iloc[-1]["mean_utility"]), 4),
        "mean_utility": {r.source_task: round(float(r.mean_utility), 4) for r in means.itertuples()},
    }
    if tasks is not None:
        t = tasks.set_index("source_task").loc[means["source_task"]]
        out["tasks"] = {s: {"raw": {"value": _r(r.mean_utility), "ci_low": _r(r.ci_low), "ci_high": _r(r.ci_high)},
                            "net": {"value": _r(r.net_mean_utility), "ci_low": _r(r.net_ci_low),
                                    "ci_high": _r(r.net_ci_high)},
                            "seeds": int(r.seeds)} for s, r in t.iterrows()}
    out.update(extra or {})
    return out


def difficulty(tasks: pd.DataFrame, base_pass_rate: dict[str, float], *, iters: int = 2000,
               seed: int = 0) -> dict[str, Any]:
    """Spearman's rho (with CI) between a source task's base pass rate (probe) and its mean utility,
    raw and net: does difficulty predict utility?"""
    t = tasks[tasks["source_task"].isin(list(base_pass_rate))]
    x = t["source_task"].map(base_pass_rate).to_numpy(dtype=float)
    out: dict[str, Any] = {"n_tasks": int(len(t))}
    for name, col in (("raw", "mean_utility"), ("net", "net_mean_utility")):
        y = t[col].to_numpy(dtype=float)
        if np.isnan(y).any():
            continue
        rho, lo, hi = spearman_ci(x, y, iters=iters, seed=seed)
        out[name] = {"spearman": _r(rho), "ci_low": _r(lo), "ci_high": _r(hi)}
    return out


def build(runs: pd.DataFrame, items: pd.DataFrame, base_dev: pd.DataFrame, sources: list[str],
          control: str | None, k: int, method: str, base_pass_rate: dict[str, float], *, iters: int = 1000,
          seed: int = 0, file: str = "data/score") -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(utility matrix, per-task means, metrics/utility.json) from every run's UTILITY rows
    (``runs``) and, for RL, their per-item results (``items``)."""
    units = list(sources) + ([control] if control else [])
    schedule = {r: {"tasks": sorted(set(g["source_task"]) - {control}), "runs": int(
        g[g["source_task"] != control].groupby(["source_task", "seed"]).ngroups)}
        for r, g in runs[runs["k"] == k].groupby("round", sort=True)}
    if method != "rl":   # a proxy: no per-item results to resample, no CIs
        u = runs[runs["source_task"].isin(sources) & (runs["k"] == k)]
        nan = float("nan")
        m = matrix(u, k).assign(k=k, ci_low=nan, ci_high=nan, net_utility=nan, net_ci_low=nan, net_ci_high=nan,
                                control_utility=nan, parse_rate=nan,
                                n_items=lambda d: [int(u[(u.source_task == s) & (u.target_task == t)]["n_items"]
                                                       .iloc[0]) for s, t in zip(d.source_task, d.target_task)])
        tasks = mean_by_task(m).assign(k=k, ci_low=nan, ci_high=nan, net_mean_utility=nan, net_ci_low=nan,
                                       net_ci_high=nan, seeds=lambda d: d.source_task.map(
                                           m.groupby("source_task")["seeds"].max()))
        return m, tasks, summary(m, k, method, extra={"schedule": schedule})
    sc = item_scores(items, base_dev, units, k, file=file)
    est = estimate(sc, list(sources), control, k, iters=iters, seed=seed)
    splits = max(20, iters // 5)
    rel = reliability(sc, list(sources), splits=splits, seed=seed, halves="seeds")
    item_rel = reliability(sc, list(sources), splits=splits, seed=seed, halves="items")
    parse = {"base": {t: _r(sc.base_parse[sc.groups == t].mean()) for t in sc.targets}}
    if control:
        c = units.index(control)
        parse["control"] = {t: _r(sc.parse[c][:, sc.groups == t].mean()) for t in sc.targets}
    parse["checkpoints"] = {s: {r.target_task: _r(r.parse_rate) for r in g.itertuples()}
                            for s, g in est.matrix.groupby("source_task")}
    extra = {
        "ci": "95%, hierarchical bootstrap over seeds and dev items",
        "reliability": rel,
        "item_reliability": item_rel,
        "separable_subtasks": int(sum(v["separable"] for v in est.separation.values())),
        "separation": est.separation,
        "control": None if control is None else {
            "task": control, "seeds": len(sc.seeds[units.index(control)]),
            "utility": {r.target_task: _r(r.control_utility) for r in est.matrix.drop_duplicates("target_task")
                        .itertuples()}},
        "difficulty_vs_utility": difficulty(est.tasks, base_pass_rate, seed=seed),
        "parse_rate": parse,
        "schedule": schedule,
    }
    return est.matrix, est.tasks, summary(est.matrix, k, method, est.tasks, extra)
