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

from .evaluation import EvalConfig, paired_gain, per_task_pass_at_k, summary

EVAL = "metrics/eval.json"


def _with_ci(value: float, low: float, high: float) -> dict[str, float]:
    """A metric with its CI as scalar keys (DVC's metrics show/diff keep only scalars)."""
    return {"value": round(value, 4), "ci_low": round(low, 4), "ci_high": round(high, 4)}


def eval_report(base: pd.DataFrame, trained: pd.DataFrame, ev: EvalConfig) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """(metrics/eval.json content, pass@k curve rows, per-sub-task bar rows) for base vs trained."""
    tb = per_task_pass_at_k(base, ev.k, iters=ev.bootstrap, seed=ev.seed)
    tt = per_task_pass_at_k(trained, ev.k, iters=ev.bootstrap, seed=ev.seed)
    sb, st = summary(tb), summary(tt)
    metrics: dict[str, Any] = {"base": sb, "trained": st, "gain": {}, "subtasks": {}}
    for key in sb:
        metrics["gain"][key] = {m: round(st[key][m] - sb[key][m], 4) for m in ("mean", "harmonic_mean")}
    gains = {k: paired_gain(base, trained, k, iters=ev.bootstrap, seed=ev.seed) for k in ev.k}
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
        metrics["subtasks"][task] = entry
    curve = [{"k": int(k), "base": sb[f"pass@{k}"]["mean"], "trained": st[f"pass@{k}"]["mean"]} for k in ev.k]
    k1 = min(ev.k)
    bars = []
    for task in sorted(tb["task"].unique()):
        b = tb[(tb["task"] == task) & (tb["k"] == k1)].iloc[0]
        t = tt[(tt["task"] == task) & (tt["k"] == k1)].iloc[0]
        bars.append({"subtask": task, "model": "base", f"pass@{k1}": round(b.pass_at_k, 4)})
        bars.append({"subtask": task, "model": "trained", f"pass@{k1}": round(t.pass_at_k, 4)})
    return metrics, curve, bars


def _cell(entry: dict[str, Any]) -> str:
    return f"{100 * entry['value']:.1f} [{100 * entry['ci_low']:.1f}, {100 * entry['ci_high']:.1f}]"


def table(results: dict[str, dict[str, Any]], k: int) -> str:
    """Markdown: pass@k per sub-task with CIs (base first), then means over sub-tasks for every k."""
    any_run = next(iter(results.values()))
    subtasks = sorted(any_run["subtasks"])
    key = f"pass@{k}"
    lines = [f"### pass@{k} per target sub-task (%, 95% bootstrap CI)", "",
             "| model | " + " | ".join(subtasks) + " | mean | harmonic mean |",
             "|---" * (len(subtasks) + 3) + "|"]
    rows = [("base", any_run, "base")] + [(n, r, "trained") for n, r in results.items()]
    for name, res, which in rows:
        cells = [_cell(res["subtasks"][t][which][key]) for t in subtasks]
        m = res[which][key]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * m['mean']:.1f} | {100 * m['harmonic_mean']:.1f} |")
    ks = list(any_run["base"])
    lines += ["", "### Mean over sub-tasks (%): arithmetic / harmonic", "",
              "| model | " + " | ".join(ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for name, res, which in rows:
        lines.append(f"| {name} | " + " | ".join(
            f"{100 * res[which][kk]['mean']:.1f} / {100 * res[which][kk]['harmonic_mean']:.1f}" for kk in ks) + " |")
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
