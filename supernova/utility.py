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


def matrix(utility: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over seeds of the utility by ``metric``: rows (source_task, target_task, utility, ci_low,
    ci_high, spread), where spread is the standard deviation across seeds (0 for one seed) and the
    CI bounds are the per-run bounds averaged (no seed variance: use :func:`estimate`)."""
    u = utility[utility["metric"] == metric]
    if u.empty:
        raise ValueError(f"no utility rows by {metric}")
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
    """Per-item values of one metric for every scored unit, aligned on the dev items that have it
    (``parse`` is the sampled completions' parse share; NaN for a teacher-forced metric)."""

    units: list[str]                 # source tasks (and the control), in this order
    per_seed: list[np.ndarray]       # per unit: (seeds, items)
    seeds: list[list[int]]           # per unit: the seeds of its rows
    parse: list[np.ndarray]          # per unit: (seeds, items) parse share of the completions
    base: np.ndarray                 # (items,)
    base_parse: np.ndarray           # (items,)
    groups: np.ndarray               # (items,) target sub-task of each item
    targets: list[str]               # sorted sub-tasks (the bootstrap's group order)


def item_scores(runs: pd.DataFrame, base: pd.DataFrame, units: list[str], k: int, *, file: str) -> Scores:
    """Per-item pass@k: SCORE_EVAL rows (``runs``, every seed and round) aligned with the base
    model's EVAL rows on the sampled dev items; every run must cover every one of them."""
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


def likelihood_scores(rows: pd.DataFrame, base: pd.DataFrame, units: list[str], metric: str, *,
                      file: str) -> Scores | None:
    """Per-item values of a teacher-forced ``metric``: each run's checkpoints averaged item by item
    (SCORE_LIKELIHOOD ``rows`` of the dev split), aligned with the base model's LIKELIHOOD rows on
    the dev items that have the metric (None if none has it)."""
    base = base[base[metric].notna()].sort_values(["task", "uid"]).reset_index(drop=True)
    if base.empty:
        return None
    order = pd.Index(base["uid"])
    per_seed, seeds = [], []
    for unit in units:
        mine = rows[rows["source_task"] == unit]
        if mine.empty:
            raise InputError("no scoring run of this task (run its score stages)", file=file, task=unit, field="seed")
        mats, ss = [], []
        for s, g in mine.groupby("seed", sort=True):
            g = g.groupby("uid")[metric].mean()
            missing = order.difference(g.index)
            if len(missing):
                raise InputError(f"seed {s}: no result for dev item {missing[0]}", file=file, task=unit, field="uid")
            mats.append(g.loc[order].to_numpy(dtype=float))
            ss.append(int(s))
        per_seed.append(np.stack(mats))
        seeds.append(ss)
    nan = np.full(len(base), np.nan)
    return Scores(units=list(units), per_seed=per_seed, seeds=seeds, parse=[np.tile(nan, (len(m), 1)) for m in per_seed],
                  base=base[metric].to_numpy(dtype=float), base_parse=nan, groups=base["task"].to_numpy(),
                  targets=sorted(base["task"].unique()))


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


def estimate(sc: Scores, sources: list[str], control: str | None, metric: str, *, iters: int = 1000,
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
            rows.append({"source_task": s, "target_task": t, "metric": metric, "utility": point[i, g],
                         "ci_low": lo[i, g],
                         "ci_high": hi[i, g], "net_utility": net_point[i, g], "net_ci_low": nlo[i, g],
                         "net_ci_high": nhi[i, g], "control_utility": control_point[g],
                         "seeds": len(sc.seeds[j]), "n_items": int(cols.sum()),
                         "parse_rate": float(sc.parse[j][:, cols].mean()), "snr": float("nan"), "low_snr": False})
    mean_reps, net_mean_reps = reps.mean(axis=2), net_reps.mean(axis=2)
    mlo, mhi = _ci(mean_reps)
    nmlo, nmhi = _ci(net_mean_reps) if control is not None else (net_point.mean(1), net_point.mean(1))
    tasks = pd.DataFrame({"source_task": sources, "metric": metric, "mean_utility": point.mean(axis=1), "ci_low": mlo,
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


def plot_data(m: pd.DataFrame, tasks: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """(heatmap rows, sorted bar rows) for dvc plots, each value with its 95% CI (the heatmap's
    cell label carries it, so a point value is not read without its interval)."""
    def label(v, lo, hi):
        return f"{v:.2g}" if _r(lo) is None else f"{v:.2g} [{lo:.2g}, {hi:.2g}]"

    heat = [{"source_task": r.source_task, "target_task": r.target_task, "utility": _r(r.utility),
             "ci_low": _r(r.ci_low), "ci_high": _r(r.ci_high), "label": label(r.utility, r.ci_low, r.ci_high)}
            for r in m.itertuples()]
    t = tasks.set_index("source_task")
    bars = [{"source_task": r.source_task, "mean_utility": _r(r.mean_utility),
             "ci_low": _r(t.loc[r.source_task, "ci_low"]), "ci_high": _r(t.loc[r.source_task, "ci_high"])}
            for r in mean_by_task(m).itertuples()]
    return heat, bars


def _r(x: float | None) -> float | None:
    """A JSON-safe rounded number (None where undefined)."""
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def summary(m: pd.DataFrame, metric: str, method: str, tasks: pd.DataFrame | None = None,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ranking by mean utility under ``metric`` (raw and, with a control, net, with CIs) and
    what :func:`estimate`/:func:`reliability` add (``extra``)."""
    means = mean_by_task(m)
    out: dict[str, Any] = {
        "metric": metric, "method": method, "source_tasks": int(m["source_task"].nunique()),
        "target_subtasks": int(m["target_task"].nunique()),
        "best_task": means.iloc[0]["source_task"], "best_mean_utility": _r(means.iloc[0]["mean_utility"]),
        "worst_task": means.iloc[-1]["source_task"], "worst_mean_utility": _r(means.iloc[-1]["mean_utility"]),
        "best_minus_worst": _r(means.iloc[0]["mean_utility"] - means.iloc[-1]["mean_utility"]),
        "mean_utility": {r.source_task: _r(r.mean_utility) for r in means.itertuples()},
    }
    if tasks is not None:
        t = tasks.set_index("source_task").loc[means["source_task"]]
        out["tasks"] = {s: {"raw": {"value": _r(r.mean_utility), "ci_low": _r(r.ci_low), "ci_high": _r(r.ci_high)},
                            "net": {"value": _r(r.net_mean_utility), "ci_low": _r(r.net_ci_low),
                                    "ci_high": _r(r.net_ci_high)},
                            "seeds": int(r.seeds)} for s, r in t.iterrows()}
    out.update(extra or {})
    return out


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs ordered the same by ``a`` and ``b`` (Signal and Noise's ``decision_acc_fast``)."""
    upper = np.triu(np.ones((len(a), len(a)), dtype=bool), k=1)
    return float(((a[:, None] > a[None, :]) == (b[:, None] > b[None, :]))[upper].mean())


def decision_accuracy(sc: Scores, sources: list[str], *, splits: int = 200, seed: int = 0) -> dict[str, Any]:
    """How often two independent halves of each task's seeds order a pair of source tasks the same
    way, by mean utility over sub-tasks (``overall``) and per sub-task, averaged over ``splits``
    random splits: 1 is a ranking that replicates pair by pair, 0.5 a coin flip. Needs two or
    more seeds per task."""
    idx = [sc.units.index(s) for s in sources]
    per_seed = [sc.per_seed[j] for j in idx]
    if len(sources) < 2 or not all(len(m) >= 2 for m in per_seed):
        return {"halves": None, "note": "needs two or more seeds per task and two tasks"}
    rng = np.random.default_rng(seed)
    overall, per_target = [], {t: [] for t in sc.targets}
    for _ in range(splits):
        halves = _seed_halves(per_seed, rng)
        cells = []
        for h in halves:
            cells.append(np.array([[m[rows][:, sc.groups == t].mean() for t in sc.targets]
                                   for m, rows in zip(per_seed, h)]))
        overall.append(_agreement(cells[0].mean(1), cells[1].mean(1)))
        for g, t in enumerate(sc.targets):
            per_target[t].append(_agreement(cells[0][:, g], cells[1][:, g]))
    return {"halves": "seeds", "splits": splits, "overall": _r(np.mean(overall)),
            "per_subtask": {t: _r(np.mean(v)) for t, v in per_target.items()}}


def _run_cells(sc: Scores, j: int) -> np.ndarray:
    """(seeds, targets): each run's utility per sub-task (mean over items of run - base)."""
    return np.array([[row[sc.groups == t].mean() - sc.base[sc.groups == t].mean() for t in sc.targets]
                     for row in sc.per_seed[j]])


def signal_noise(sc: Scores, sources: list[str], *, min_snr: float,
                 checkpoint_noise: dict[str, float] | None = None) -> dict[str, Any]:
    """Signal and Noise's SNR per sub-task and for the mean over sub-tasks: signal = the spread
    (max - min) of the source tasks' mean utilities, noise = the standard deviation of one run's
    utility between seeds (pooled over tasks; with one seed per task, between a run's last
    checkpoints, ``checkpoint_noise``, where given), SNR = signal / noise. Sub-tasks whose SNR is
    below ``min_snr`` are ``low_snr``."""
    idx = [sc.units.index(s) for s in sources]
    cells = [_run_cells(sc, j) for j in idx]
    means = np.array([c.mean(0) for c in cells])                       # (tasks, targets)
    with_seeds = [c for c in cells if len(c) >= 2]
    if with_seeds:
        var = np.mean([c.var(0, ddof=1) for c in with_seeds], axis=0)
        var_mean = float(np.mean([c.mean(1).var(ddof=1) for c in with_seeds]))
        noise = dict(zip(sc.targets, np.sqrt(var)))
        noise_mean, kind = float(np.sqrt(var_mean)), "seeds"
    elif checkpoint_noise:
        noise = {t: checkpoint_noise.get(t, float("nan")) for t in sc.targets}
        noise_mean, kind = checkpoint_noise.get("mean", float("nan")), "checkpoints"
    else:
        return {"noise": None, "note": "one seed per task and no checkpoints to vary: no noise estimate"}
    out: dict[str, Any] = {"noise_from": kind, "per_subtask": {}}
    for g, t in enumerate(sc.targets):
        signal = float(np.ptp(means[:, g])) if len(means) else float("nan")
        snr = signal / noise[t] if noise[t] > 0 else float("inf")
        out["per_subtask"][t] = {"signal": _r(signal), "noise": _r(noise[t]), "snr": _r(snr)}
    signal = float(np.ptp(means.mean(1))) if len(means) else float("nan")
    out["mean_over_subtasks"] = {"signal": _r(signal), "noise": _r(noise_mean),
                                 "snr": _r(signal / noise_mean if noise_mean > 0 else float("inf"))}
    out["low_snr"] = sorted(t for t, v in out["per_subtask"].items() if v["snr"] is not None and v["snr"] < min_snr)
    out["min_snr"] = min_snr
    return out


def checkpoint_noise(rows: pd.DataFrame, base: pd.DataFrame, sources: list[str], metric: str) -> dict[str, float]:
    """Pooled standard deviation of a run's utility between its scored checkpoints, per sub-task
    and for the mean over sub-tasks (Signal and Noise's noise when each task has one run)."""
    b = base[base[metric].notna()][["task", "uid", metric]].rename(columns={metric: "base_value"})
    r = rows[rows["source_task"].isin(sources)].merge(b, on=["task", "uid"])
    if r.empty or r["step"].nunique() < 2:
        return {}
    r = r.assign(gain=r[metric] - r["base_value"])
    cell = r.groupby(["source_task", "seed", "task", "step"])["gain"].mean().reset_index()
    per_t = cell.groupby(["source_task", "seed", "task"])["gain"].var(ddof=1).groupby("task").mean()
    mean = cell.groupby(["source_task", "seed", "step"])["gain"].mean().groupby(["source_task", "seed"]).var(ddof=1)
    return {**{t: float(np.sqrt(v)) for t, v in per_t.items()}, "mean": float(np.sqrt(mean.mean()))}


def in_task_gain(rows: pd.DataFrame, base: pd.DataFrame, metrics: list[str], *, iters: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    """Each source task's gain on its own held-out items (SCORE_LIKELIHOOD ``rows`` of the heldout
    split against the base model's LIKELIHOOD ``base`` rows), per metric: the mean over its runs
    (checkpoints averaged) with a 95% CI from the hierarchical bootstrap over seeds and items, and
    per run with an item-bootstrap CI."""
    from .stats import bootstrap_ci

    out: dict[str, Any] = {}
    for task, mine in rows.groupby("source_task", sort=True):
        b = base[base["task"] == task].set_index("uid")
        res: dict[str, Any] = {}
        for metric in metrics:
            bm = b[metric].dropna()
            if bm.empty:
                continue
            per_run = mine[mine["uid"].isin(bm.index)].groupby(["seed", "uid"])[metric].mean().unstack("uid")[bm.index]
            gains = per_run.to_numpy(dtype=float) - bm.to_numpy(dtype=float)[None]
            reps = hierarchical_bootstrap([per_run.to_numpy(dtype=float)], bm.to_numpy(dtype=float),
                                          np.zeros(len(bm), dtype=int), iters=iters, seed=seed)[:, 0, 0]
            lo, hi = _ci(reps)
            runs = {}
            for s, g in zip(per_run.index, gains):
                rlo, rhi = bootstrap_ci(g, iters=iters, seed=seed)
                runs[int(s)] = {"gain": _r(g.mean()), "ci_low": _r(rlo), "ci_high": _r(rhi)}
            res[metric] = {"gain": _r(gains.mean()), "ci_low": _r(lo), "ci_high": _r(hi), "n_items": int(len(bm)),
                           "runs": runs}
        out[task] = res
    return out


def learned_seeds(res: dict[str, Any]) -> tuple[list, bool]:
    """One metric's in-task gain of one task (:func:`in_task_gain`): the seeds whose gain's CI lies
    above 0, and whether the gain over seeds is separable from 0."""
    return (sorted(s for s, r in res["runs"].items() if r["ci_low"] is not None and r["ci_low"] > 0),
            bool((res["ci_low"] or 0) > 0))


def learning(in_task: dict[str, Any], metric: str) -> dict[str, Any]:
    """Which runs learned: a run whose in-task gain's CI lies above 0 by ``metric`` (by
    ``gold_logprob_token`` on a task whose held-out items lack it) learned something; any other
    measured nothing its utilities can be read for."""
    out: dict[str, Any] = {"runs": 0, "learned": 0, "tasks": {}}
    for task, res in in_task.items():
        m = metric if metric in res else "gold_logprob_token"
        if m not in res:
            continue
        runs = res[m]["runs"]
        learned, separable = learned_seeds(res[m])
        out["runs"] += len(runs)
        out["learned"] += len(learned)
        out["tasks"][task] = {"metric": m, "gain": res[m]["gain"], "ci_low": res[m]["ci_low"],
                              "ci_high": res[m]["ci_high"], "separable_from_0": separable,
                              "seeds_learned": learned, "seeds": sorted(runs)}
    return out


def learning_by_metric(in_task: dict[str, Any]) -> dict[str, Any]:
    """For every metric of the held-out items, over the tasks whose items have it: runs measured,
    runs whose in-task gain's CI lies above 0, and the tasks whose gain over seeds is separable
    from 0 (what :func:`learning` reports for the ranking metric alone)."""
    out: dict[str, Any] = {}
    for task, res in sorted(in_task.items()):
        for m, r in res.items():
            o = out.setdefault(m, {"runs": 0, "learned": 0, "separable_tasks": []})
            learned, separable = learned_seeds(r)
            o["runs"] += len(r["runs"])
            o["learned"] += len(learned)
            if separable:
                o["separable_tasks"].append(task)
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


def _seed_means(sc: Scores, sources: list[str]) -> list[np.ndarray]:
    """Per source task, each run's utility averaged over sub-tasks (one value per seed)."""
    return [_run_cells(sc, sc.units.index(s)).mean(axis=1) for s in sources]


def agreement(scores: dict[str, Scores], reference: str, sources: list[str], *, iters: int = 1000,
              seed: int = 0) -> dict[str, Any]:
    """How far each metric's ranking of the source tasks (by mean utility over sub-tasks) agrees
    with ``reference``'s (the sampled pass@k): the share of task pairs ordered alike (decision
    accuracy) and Spearman's rho, each with a 95% CI from resampling each task's runs (the same
    draw for both metrics: they measured the same runs)."""
    from scipy.stats import spearmanr

    ref = _seed_means(scores[reference], sources)
    rng = np.random.default_rng(seed)
    draws = [[rng.integers(0, len(r), len(r)) for r in ref] for _ in range(iters)]
    out: dict[str, Any] = {}
    for name, sc in scores.items():
        if name == reference:
            continue
        mine = _seed_means(sc, sources)
        a, b = np.array([m.mean() for m in mine]), np.array([r.mean() for r in ref])
        acc, rho = [], []
        for d in draws:
            x = np.array([m[i].mean() for m, i in zip(mine, d)])
            y = np.array([r[i].mean() for r, i in zip(ref, d)])
            acc.append(_agreement(x, y))
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                rho.append(spearmanr(x, y).statistic)
        point_rho = spearmanr(a, b).statistic if np.ptp(a) > 0 and np.ptp(b) > 0 else float("nan")
        out[name] = {"decision_accuracy": _r(_agreement(a, b)), "decision_accuracy_ci_low": _r(np.quantile(acc, 0.025)),
                     "decision_accuracy_ci_high": _r(np.quantile(acc, 0.975)), "spearman": _r(point_rho),
                     "spearman_ci_low": _r(np.quantile(rho, 0.025)) if rho else None,
                     "spearman_ci_high": _r(np.quantile(rho, 0.975)) if rho else None}
    return {"reference": reference, "metrics": out}


def metric_names(k: int) -> list[str]:
    """Every metric a utility run records: the sampled ``pass@<k>``, then the teacher-forced ones."""
    from .schema import METRICS

    return [f"pass@{k}", *METRICS]


@dataclass
class MetricReport:
    """One metric's utility matrix and how far it can be trusted."""

    estimate: UtilityEstimate
    report: dict[str, Any]


def metric_report(sc: Scores, sources: list[str], control: str | None, metric: str, *, min_snr: float,
                  ckpt_noise: dict[str, float] | None, iters: int, seed: int) -> MetricReport:
    """:func:`estimate`, the seed-half and item-half reliabilities, decision accuracy and SNR of one
    metric."""
    est = estimate(sc, list(sources), control, metric, iters=iters, seed=seed)
    splits = max(20, iters // 5)
    report = {
        "reliability": reliability(sc, list(sources), splits=splits, seed=seed, halves="seeds"),
        "item_reliability": reliability(sc, list(sources), splits=splits, seed=seed, halves="items"),
        "decision_accuracy": decision_accuracy(sc, list(sources), splits=splits, seed=seed),
        "snr": signal_noise(sc, list(sources), min_snr=min_snr, checkpoint_noise=ckpt_noise),
        "separable_subtasks": int(sum(v["separable"] for v in est.separation.values())),
        "separation": est.separation,
        "dev_items": {t: int((sc.groups == t).sum()) for t in sc.targets},
    }
    return MetricReport(est, report)


def build(runs: pd.DataFrame, items: pd.DataFrame, likelihood: pd.DataFrame, heldout_base: pd.DataFrame,
          base_dev: pd.DataFrame, base_tf: pd.DataFrame, run_records: pd.DataFrame, sources: list[str],
          control: str | None, cfg, base_pass_rate: dict[str, float], *, iters: int = 1000, seed: int = 0,
          file: str = "data/score") -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(utility matrix, per-task means, metrics/utility.json) by ``cfg.ranking_metric`` (a
    :class:`supernova.score.ScoreConfig`), from every run's UTILITY rows (``runs``) and, for RL,
    their per-item results: sampled (``items`` against the base's ``base_dev``) and teacher-forced
    (``likelihood`` against ``base_tf`` on the dev items, ``heldout_base`` on each task's held-out
    items), and their RUNS records. Every metric gets its reliability, decision accuracy and SNR
    under ``metrics``."""
    metric = cfg.ranking_metric
    units = list(sources) + ([control] if control else [])
    schedule = {r: {"tasks": sorted(set(g["source_task"]) - {control}), "runs": int(
        g[g["source_task"] != control].groupby(["source_task", "seed"]).ngroups)}
        for r, g in runs[runs["metric"] == metric].groupby("round", sort=True)}
    if cfg.method != "rl":   # a proxy: no per-item results to resample, no CIs
        u = runs[runs["source_task"].isin(sources) & (runs["metric"] == metric)]
        nan = float("nan")
        m = matrix(u, metric).assign(metric=metric, ci_low=nan, ci_high=nan, net_utility=nan, net_ci_low=nan,
                                     net_ci_high=nan, control_utility=nan, parse_rate=nan, snr=nan, low_snr=False,
                                     n_items=lambda d: [int(u[(u.source_task == s) & (u.target_task == t)]["n_items"]
                                                            .iloc[0]) for s, t in zip(d.source_task, d.target_task)])
        tasks = mean_by_task(m).assign(metric=metric, ci_low=nan, ci_high=nan, net_mean_utility=nan, net_ci_low=nan,
                                       net_ci_high=nan, seeds=lambda d: d.source_task.map(
                                           m.groupby("source_task")["seeds"].max()))
        return m, tasks, summary(m, metric, cfg.method, extra={"schedule": schedule})
    dev_rows = likelihood[likelihood["split"] == "dev"]
    sampled = item_scores(items, base_dev, units, cfg.k, file=file)
    reports: dict[str, MetricReport] = {}
    scores: dict[str, Scores] = {}
    for name in metric_names(cfg.k):
        sc = sampled if name == f"pass@{cfg.k}" else likelihood_scores(dev_rows, base_tf, units, name, file=file)
        if sc is None:
            continue
        scores[name] = sc
        noise = None if name.startswith("pass@") else checkpoint_noise(dev_rows, base_tf, list(sources), name)
        reports[name] = metric_report(sc, list(sources), control, name, min_snr=cfg.min_snr, ckpt_noise=noise,
                                      iters=iters, seed=seed)
    if metric not in reports:
        raise InputError(f"no dev item has the metric {metric} (multiple-choice metrics need multiple-choice targets)",
                         file="params.yaml", field="score.metric")
    chosen = reports[metric]
    parse = {"base": {t: _r(sampled.base_parse[sampled.groups == t].mean()) for t in sampled.targets}}
    if control:
        c = units.index(control)
        parse["control"] = {t: _r(sampled.parse[c][:, sampled.groups == t].mean()) for t in sampled.targets}
    parse["checkpoints"] = {s: {t: _r(sampled.parse[units.index(s)][:, sampled.groups == t].mean())
                                for t in sampled.targets} for s in sources}
    snr = chosen.report["snr"].get("per_subtask", {})
    low = set(chosen.report["snr"].get("low_snr", []))
    mat = chosen.estimate.matrix.assign(
        parse_rate=[parse["checkpoints"][r.source_task].get(r.target_task) for r in chosen.estimate.matrix.itertuples()],
        snr=[(snr.get(t) or {}).get("snr") for t in chosen.estimate.matrix["target_task"]],
        low_snr=[t in low for t in chosen.estimate.matrix["target_task"]])
    heldout = likelihood[likelihood["split"] == "heldout"]
    in_task = in_task_gain(heldout, heldout_base, [n for n in metric_names(cfg.k) if not n.startswith("pass@")],
                           iters=iters, seed=seed) if len(heldout) else {}
    extra = {
        "ci": "95%, hierarchical bootstrap over seeds and dev items",
        **chosen.report,
        "control": None if control is None else {
            "task": control, "seeds": len(sampled.seeds[units.index(control)]),
            "utility": {r.target_task: _r(r.control_utility) for r in mat.drop_duplicates("target_task")
                        .itertuples()}},
        "learning": learning(in_task, metric),
        "learning_by_metric": learning_by_metric(in_task),
        "in_task": in_task,
        "runs": {r.source_task + f"/seed{r.seed}": {"zero_std_share": _r(r.zero_std_share),
                                                    "reward_first": _r(r.reward_first), "reward_last": _r(r.reward_last),
                                                    "logprob_drift": _r(r.logprob_drift), "seconds": _r(r.seconds)}
                 for r in run_records.itertuples()},
        "metrics": {name: {k: v for k, v in rep.report.items() if k != "separation"} for name, rep in reports.items()},
        "agreement_with_pass_at_k": agreement(scores, f"pass@{cfg.k}", list(sources), iters=iters, seed=seed),
        "difficulty_vs_utility": difficulty(chosen.estimate.tasks, base_pass_rate, seed=seed),
        "parse_rate": parse,
        "schedule": schedule,
    }
    return mat, chosen.estimate.tasks, summary(mat, metric, cfg.method, chosen.estimate.tasks, extra)
