"""The evaluation report: metrics/eval.json and its plot data, metrics/decision.json, and what is
printed from them (for the workspace here, for several experiments in :mod:`supernova.experiments`).

    python -m supernova.report [--k 8]      # what the run decided and how far to trust it, then base vs trained
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

from .io import read_json, read_yaml

from .evaluation import (AGGREGATES, EvalConfig, chance_by_task, mean_gain_ci, paired_gain, parse_rate,
                         per_task_pass_at_k, summary)

EVAL = "metrics/eval.json"
UTILITY = "metrics/utility.json"
MIXTURE = "mixture.yaml"
DECISION = "metrics/decision.json"


def _with_ci(value: float, low: float, high: float) -> dict[str, float]:
    """A metric with its CI as scalar keys (DVC's metrics show/diff keep only scalars)."""
    return {"value": round(value, 4), "ci_low": round(low, 4), "ci_high": round(high, 4)}


def _overall_parse_rate(results: pd.DataFrame) -> float:
    """The share of all completions of ``results`` with an answer the checker can read."""
    n = int(results["n"].sum())
    return round(float(results["parsed"].sum() / n), 4) if n else 0.0


def _block(base: pd.DataFrame, trained: pd.DataFrame, ev: EvalConfig, chance: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Aggregates, gains and per-sub-task entries (pass@k with CIs, gain, chance level, parse rate)
    of base vs trained on one set of sub-tasks; over all of them, the chance level's aggregates
    (those of a uniform guesser, computed as pass@k's) and the parse rates."""
    tb = per_task_pass_at_k(base, ev.k, iters=ev.bootstrap, seed=ev.seed)
    tt = per_task_pass_at_k(trained, ev.k, iters=ev.bootstrap, seed=ev.seed)
    sb, st = summary(tb), summary(tt)
    zero = {f"pass@{k}": 0.0 for k in ev.k}
    guesser = tb.assign(pass_at_k=[chance.get(r.task, zero)[f"pass@{r.k}"] for r in tb.itertuples()])
    block: dict[str, Any] = {"base": sb, "trained": st, "gain": {}, "chance": summary(guesser),
                             "parse_rate": {"base": _overall_parse_rate(base), "trained": _overall_parse_rate(trained)},
                             "subtasks": {}}
    for key in sb:
        block["gain"][key] = {m: round(st[key][m] - sb[key][m], 4) for m in AGGREGATES}
        _, lo, hi = mean_gain_ci(base, trained, int(key.split("@")[1]), iters=ev.bootstrap, seed=ev.seed)
        block["gain"][key].update(mean_over_subtasks_ci_low=round(lo, 4), mean_over_subtasks_ci_high=round(hi, 4))
    gains = {k: paired_gain(base, trained, k, iters=ev.bootstrap, seed=ev.seed) for k in ev.k}
    parsed_b, parsed_t = parse_rate(base), parse_rate(trained)
    for task in sorted(tb["task"].unique()):
        entry: dict[str, Any] = {}
        for name, t in (("base", tb), ("trained", tt)):
            rows = t[t["task"] == task]
            entry[name] = {f"pass@{r.k}": _with_ci(r.pass_at_k, r.ci_low, r.ci_high) for r in rows.itertuples()}
        entry["gain"] = {}
        for k, g in gains.items():
            r = g[g["task"] == task].iloc[0]
            entry["gain"][f"pass@{k}"] = _with_ci(r.gain, r.ci_low, r.ci_high)
        entry["items"] = int(tb[tb["task"] == task]["n_items"].iloc[0])
        entry["chance"] = chance.get(task, zero)
        entry["parse_rate"] = {"base": parsed_b[task], "trained": parsed_t[task]}
        block["subtasks"][task] = entry
    return block


def likelihood_block(base: pd.DataFrame, trained: pd.DataFrame, ev: EvalConfig) -> dict[str, Any]:
    """Per teacher-forced metric (:data:`supernova.likelihood.METRICS`, where the items have it): the
    mean over sub-tasks of base and trained, and the gain with a 95% CI from a paired bootstrap of
    the items within each sub-task. They move where a sampled pass@k on few items cannot."""
    import numpy as np

    from .schema import METRICS
    from .stats import hierarchical_bootstrap

    merged = base.merge(trained, on=["task", "uid"], suffixes=("_b", "_t")).sort_values(["task", "uid"])
    out: dict[str, Any] = {}
    for m in METRICS:
        ok = merged[f"{m}_b"].notna() & merged[f"{m}_t"].notna()
        if not ok.any():
            continue
        g = merged[ok]
        groups = g["task"].to_numpy()
        b, t = g[f"{m}_b"].to_numpy(dtype=float), g[f"{m}_t"].to_numpy(dtype=float)
        labels = np.unique(groups)
        mb = float(np.mean([b[groups == x].mean() for x in labels]))
        mt = float(np.mean([t[groups == x].mean() for x in labels]))
        reps = hierarchical_bootstrap([t[None]], b, groups, iters=ev.bootstrap, seed=ev.seed)[:, 0].mean(axis=1)
        out[m] = {"base": round(mb, 4), "trained": round(mt, 4), "gain": round(mt - mb, 4),
                  "ci_low": round(float(np.quantile(reps, 0.025)), 4),
                  "ci_high": round(float(np.quantile(reps, 0.975)), 4), "subtasks": int(len(labels))}
    return out


def eval_only_tasks(items: pd.DataFrame) -> set[str]:
    """Sub-tasks of evaluation-only targets (``role: eval``; reported as out-of-distribution)."""
    roles = items["meta"].map(lambda m: json.loads(m or "{}").get("role"))
    return set(items.loc[roles == "eval", "task"])


def eval_report(base: pd.DataFrame, trained: pd.DataFrame, ev: EvalConfig, items: pd.DataFrame,
                base_tf: pd.DataFrame | None = None,
                trained_tf: pd.DataFrame | None = None) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """(metrics/eval.json content, pass@k curve rows, per-sub-task bar rows) for base vs trained on
    the test ``items``, sampled (EVAL rows) and, where given, teacher-forced (LIKELIHOOD rows
    ``base_tf``, ``trained_tf``: the ``likelihood`` block). Evaluation-only targets get their own
    block, ``ood``; the top-level aggregates and the curve cover the other targets only."""
    ood = eval_only_tasks(items)
    chance = chance_by_task(items, ev.k)
    ind_b, ind_t = base[~base["task"].isin(ood)], trained[~trained["task"].isin(ood)]
    metrics = _block(ind_b, ind_t, ev, chance)
    with_tf = base_tf is not None and trained_tf is not None
    if with_tf:
        metrics["likelihood"] = likelihood_block(base_tf[~base_tf["task"].isin(ood)],
                                                 trained_tf[~trained_tf["task"].isin(ood)], ev)
    if ood:
        metrics["ood"] = _block(base[base["task"].isin(ood)], trained[trained["task"].isin(ood)], ev, chance)
        if with_tf:
            metrics["ood"]["likelihood"] = likelihood_block(base_tf[base_tf["task"].isin(ood)],
                                                            trained_tf[trained_tf["task"].isin(ood)], ev)
    sb, st = metrics["base"], metrics["trained"]
    curve = [{"k": int(k), "base": sb[f"pass@{k}"]["mean_over_subtasks"],
              "trained": st[f"pass@{k}"]["mean_over_subtasks"]} for k in ev.k]
    k1 = min(ev.k)
    bars = []
    for block in [metrics] + ([metrics["ood"]] if ood else []):
        for task, entry in block["subtasks"].items():
            for model in ("base", "trained"):
                v = entry[model][f"pass@{k1}"]
                bars.append({"subtask": task, "model": model, f"pass@{k1}": v["value"], "ci_low": v["ci_low"],
                             "ci_high": v["ci_high"], "chance": entry["chance"][f"pass@{k1}"]})
    return metrics, curve, bars


def _cell(entry: dict[str, Any]) -> str:
    return f"{100 * entry['value']:.1f} [{100 * entry['ci_low']:.1f}, {100 * entry['ci_high']:.1f}]"


def _means(m: dict[str, float]) -> str:
    return " / ".join(f"{100 * m[a]:.1f}" for a in AGGREGATES)


def _tables(results: dict[str, dict[str, Any]], k: int, title: str) -> list[str]:
    any_run = next(iter(results.values()))
    subtasks = sorted(any_run["subtasks"])
    key = f"pass@{k}"
    lines = [f"### {title}: pass@{k} per sub-task (%, 95% bootstrap CI)", "",
             "| model | " + " | ".join(subtasks) + " | mean over sub-tasks | BBEH adjusted HM | mean over items |",
             "|---" * (len(subtasks) + 4) + "|"]
    rows = [("base", any_run, "base")] + [(n, r, "trained") for n, r in results.items()]
    for name, res, which in rows:
        cells = [_cell(res["subtasks"][t][which][key]) for t in subtasks]
        m = res[which][key]
        lines.append(f"| {name} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{100 * m[a]:.1f}" for a in AGGREGATES) + " |")
    names = list(results)
    lines += ["", f"### {title}: chance level and parse rate per sub-task (%)", "",
              f"| sub-task | items | chance pass@{k} | parse rate base | "
              + " | ".join(f"parse rate {n}" for n in names) + " |",
              "|---" * (len(names) + 4) + "|"]
    for t in subtasks:
        e = any_run["subtasks"][t]
        lines.append(f"| {t} | {e['items']} | {100 * e['chance'][key]:.1f} | {100 * e['parse_rate']['base']:.1f} | "
                     + " | ".join(f"{100 * results[n]['subtasks'][t]['parse_rate']['trained']:.1f}" for n in names)
                     + " |")
    overall = all("chance" in r and "parse_rate" in r for r in results.values())   # reports before them lack both
    if overall:
        items = sum(any_run["subtasks"][t]["items"] for t in subtasks)
        lines.append(f"| all (over items) | {items} | {100 * any_run['chance'][key]['mean_over_items']:.1f} | "
                     f"{100 * any_run['parse_rate']['base']:.1f} | "
                     + " | ".join(f"{100 * results[n]['parse_rate']['trained']:.1f}" for n in names) + " |")
    ks = list(any_run["base"])
    lines += ["", f"### {title}: means (%): over sub-tasks / BBEH adjusted harmonic / over items", "",
              "| model | " + " | ".join(ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for name, res, which in rows + ([("chance", any_run, "chance")] if overall else []):
        lines.append(f"| {name} | " + " | ".join(_means(res[which][kk]) for kk in ks) + " |")
    return lines


def table(results: dict[str, dict[str, Any]], k: int) -> str:
    """Markdown: pass@k per sub-task with CIs (base first) and the three aggregates, chance level
    and parse rate per sub-task and over all of them, the aggregates for every k with the chance
    level's; then the same for evaluation-only (out-of-distribution) targets, if any."""
    lines = _tables(results, k, "Targets")
    if all("ood" in r for r in results.values()):
        lines += [""] + _tables({n: r["ood"] for n, r in results.items()}, k,
                                "Out-of-distribution (evaluation-only) targets")
    return "\n".join(lines) + "\n"


def decision(utility: dict[str, Any], mixture: dict[str, Any], evaluation: dict[str, Any]) -> dict[str, Any]:
    """metrics/decision.json: the few figures a curation choice is decided on: how far the ranking
    of source tasks can be trusted (by the metric mixing ranked by), what was chosen, and the
    trained model against the base model and against chance (pass@k at the smallest k, mean over
    sub-tasks)."""
    def get(d, *keys):
        for key in keys:
            d = d.get(key) if isinstance(d, dict) else None
        return d

    k = min(int(key.split("@")[1]) for key in evaluation["base"])
    key = f"pass@{k}"
    base, trained = evaluation["base"][key]["mean_over_subtasks"], evaluation["trained"][key]["mean_over_subtasks"]
    chance = get(evaluation, "chance", key, "mean_over_subtasks")
    gain = evaluation["gain"][key]
    learning = utility.get("learning") or {}
    return {
        "ranking": {
            "metric": utility.get("metric"),
            "reliability": get(utility, "reliability", "reliability"),
            "decision_accuracy": get(utility, "decision_accuracy", "overall"),
            "snr": get(utility, "snr", "mean_over_subtasks", "snr"),
            "separable_subtasks": utility.get("separable_subtasks"),
            "subtasks": utility.get("target_subtasks"),
            "low_snr_subtasks": len(get(utility, "snr", "low_snr") or []),
            "runs_learned": learning.get("learned"),
            "runs": learning.get("runs"),
        },
        "mixture": {"strategy": mixture.get("strategy"), "tasks": mixture.get("tasks_chosen"),
                    "items": mixture.get("total_items")},
        "trained": {key: {"base": base, "trained": trained, "chance": chance, "gain": gain["mean_over_subtasks"],
                          "gain_ci_low": gain.get("mean_over_subtasks_ci_low"),
                          "gain_ci_high": gain.get("mean_over_subtasks_ci_high"),
                          "trained_minus_chance": None if chance is None else round(trained - chance, 4)}},
    }


def _pp(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def decision_lines(utility: dict[str, Any], mixture: dict[str, Any], evaluation: dict[str, Any]) -> list[str]:
    """What to read before any table: whether the ranking can be trusted, what was chosen per
    sub-task and whether that choice was separable, which runs learned, and the trained model
    against base and chance."""
    d = decision(utility, mixture, evaluation)
    r = d["ranking"]
    lines = [f"Ranked by {r['metric']}: reliability {r['reliability']} (seed halves), decision accuracy "
             f"{r['decision_accuracy']} (pairs ordered alike by seed halves), SNR {r['snr']} (mean over sub-tasks); "
             f"{r['separable_subtasks']} of {r['subtasks']} sub-tasks with a separable top task"
             + (f"; low SNR on {r['low_snr_subtasks']}" if r["low_snr_subtasks"] else "")]
    separation = utility.get("separation") or {}
    noisy = mixture.get("low_snr_subtasks") or {}
    chosen: dict[str, list[str]] = {}
    for t in mixture.get("tasks") or []:
        for sub in (t.get("chosen_for") or {}):
            chosen.setdefault(sub, []).append(t["task"])
    if chosen or mixture.get("strategy") != "micro":
        lines.append(f"Mixture ({mixture.get('strategy')}): " + ", ".join(t["task"] for t in mixture.get("tasks") or []))
    for sub in sorted(set(chosen) | set(mixture.get("subtasks_without_task") or {})):
        sep = separation.get(sub, {})
        why = ("low SNR: ranked by the mean over sub-tasks" if sub in noisy
               else "separable" if sep.get("separable") else "not separable from the next")
        lines.append(f"  {sub}: {', '.join(chosen.get(sub, [])) or 'no task'} ({why})")
    learning = utility.get("learning") or {}
    if learning.get("runs"):
        tasks = learning.get("tasks") or {}
        flat = [t for t, v in tasks.items() if not v.get("separable_from_0")]
        lines.append(f"Runs that learned (in-task gain above 0): {learning['learned']} of {learning['runs']}"
                     + (f"; no separable in-task gain: {', '.join(flat)}" if flat else ""))
    key = next(iter(d["trained"]))
    t = d["trained"][key]
    verdict = ("separable from 0" if (t["gain_ci_low"] or 0) > 0 else
               "below 0" if (t["gain_ci_high"] if t["gain_ci_high"] is not None else 0) < 0 else "inside its noise")
    lines.append(f"Trained vs base vs chance ({key}, mean over sub-tasks, %): {_pp(t['trained'])} vs {_pp(t['base'])} "
                 f"vs {_pp(t['chance'])}; gain {_pp(t['gain'])} [{_pp(t['gain_ci_low'])}, {_pp(t['gain_ci_high'])}] "
                 f"({verdict}); trained - chance {_pp(t['trained_minus_chance'])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.report", description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=None, help="the k of the per-sub-task table (default: the largest)")
    args = ap.parse_args(argv)
    try:
        with open(EVAL, encoding="utf-8") as f:
            res = json.load(f)
    except FileNotFoundError:
        print(f"report: error: {EVAL} not found (run `dvc repro` first)", file=sys.stderr)
        return 2
    k = args.k or max(int(key.split("@")[1]) for key in res["base"])
    try:
        print("\n".join(decision_lines(read_json(UTILITY), read_yaml(MIXTURE), res)) + "\n")
    except FileNotFoundError:      # a workspace evaluated without the utility stage (a proxy-free profile)
        pass
    print(table({"trained": res}, k), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
