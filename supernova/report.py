"""The evaluation report: metrics/eval.json and its plot data, and the Markdown tables printed
from it (for the workspace here, for several experiments in :mod:`supernova.experiments`).

    python -m supernova.report [--k 8]      # the workspace's base vs trained table
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

from .evaluation import (AGGREGATES, EvalConfig, chance_by_task, paired_gain, parse_rate, per_task_pass_at_k,
                         summary)

EVAL = "metrics/eval.json"


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


def eval_only_tasks(items: pd.DataFrame) -> set[str]:
    """Sub-tasks of evaluation-only targets (``role: eval``; reported as out-of-distribution)."""
    roles = items["meta"].map(lambda m: json.loads(m or "{}").get("role"))
    return set(items.loc[roles == "eval", "task"])


def eval_report(base: pd.DataFrame, trained: pd.DataFrame, ev: EvalConfig,
                items: pd.DataFrame) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """(metrics/eval.json content, pass@k curve rows, per-sub-task bar rows) for base vs trained on
    the test ``items``. Evaluation-only targets get their own block, ``ood``; the top-level
    aggregates and the curve cover the other targets only."""
    ood = eval_only_tasks(items)
    chance = chance_by_task(items, ev.k)
    ind_b, ind_t = base[~base["task"].isin(ood)], trained[~trained["task"].isin(ood)]
    metrics = _block(ind_b, ind_t, ev, chance)
    if ood:
        metrics["ood"] = _block(base[base["task"].isin(ood)], trained[trained["task"].isin(ood)], ev, chance)
    sb, st = metrics["base"], metrics["trained"]
    curve = [{"k": int(k), "base": sb[f"pass@{k}"]["mean_over_subtasks"],
              "trained": st[f"pass@{k}"]["mean_over_subtasks"]} for k in ev.k]
    k1 = min(ev.k)
    bars = []
    for block in [metrics] + ([metrics["ood"]] if ood else []):
        for task, entry in block["subtasks"].items():
            for model in ("base", "trained"):
                bars.append({"subtask": task, "model": model, f"pass@{k1}": entry[model][f"pass@{k1}"]["value"]})
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
    print(table({"trained": res}, k), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
