"""The gradient-alignment proxy vs the RL utility on the same pool: compute and rank agreement.

Needs a finished `dvc repro` (reads the RL utility matrix and each RL run's wall time from
data/utility/utility.parquet), then computes the proxy for every scored source task with the
same training items and dev items, timing it (the target sub-tasks' gradients are computed once,
by the first task, as in the pipeline), and prints:

* compute: proxy seconds / RL seconds (all tasks), and per task;
* Spearman rank correlation between proxy and RL utility over (source task, target sub-task)
  pairs, and over source tasks' mean utility (what macro mixing ranks by), each with a 95%
  bootstrap CI; and the reliability of the RL ranking itself (metrics/utility.json, over seeds and
  over dev items): a proxy can agree with the RL utility no better than the RL utility agrees
  with itself.

    python bench/score_proxy.py [--layers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import pandas as pd

from supernova import paths
from supernova.config import from_section, load_params
from supernova.prompts import PromptConfig
from supernova.schema import ITEM, PROBE, UTILITY, read_table
from supernova.score import score_task_gradient
from supernova.scoring import ScoreConfig
from supernova.stats import spearman_ci
from supernova.utility import matrix, mean_by_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=None, help="top layers whose gradients are compared")
    args = ap.parse_args()
    params = load_params()
    cfg = from_section(ScoreConfig, params, "score").require_tasks()
    if args.layers:
        cfg = dataclasses.replace(cfg, proxy_layers=args.layers)
    prompt = from_section(PromptConfig, params, "prompt")
    rl = read_table(paths.UTILITY, UTILITY)
    rl = rl[(rl["method"] == "rl") & rl["source_task"].isin(cfg.tasks)]   # not the format control
    if rl.empty:
        raise SystemExit("no RL utility in data/utility/utility.parquet: run `dvc repro` with score.method: rl first")
    dev = read_table(paths.TARGET_DEV, ITEM)
    with tempfile.TemporaryDirectory() as cache:  # target gradients: computed by the first task, reused
        proxy = pd.concat([score_task_gradient(t, read_table(paths.probe_file(t), PROBE), paths.BASE_MODEL, dev,
                                               cfg, prompt, Path(cache))[0] for t in cfg.tasks],
                          ignore_index=True)
    m_rl, m_px = matrix(rl, cfg.ranking_metric), matrix(proxy, "gradient")
    pairs = m_rl.merge(m_px, on=["source_task", "target_task"], suffixes=("_rl", "_proxy"))
    rho_pairs = spearman_ci(pairs["utility_rl"], pairs["utility_proxy"])
    means = mean_by_task(m_rl).merge(mean_by_task(m_px), on="source_task", suffixes=("_rl", "_proxy"))
    rho_tasks = spearman_ci(means["mean_utility_rl"], means["mean_utility_proxy"])
    sec_rl = rl.groupby(["source_task", "seed"])["seconds"].first().groupby("source_task").sum()
    sec_px = proxy.groupby(["source_task", "seed"])["seconds"].first().groupby("source_task").sum()
    print(f"pool: {len(cfg.tasks)} source tasks x {pairs['target_task'].nunique()} target sub-tasks, "
          f"RL utility by {cfg.ranking_metric}, proxy over the top {cfg.proxy_layers} layers")
    print(f"{'task':28s} {'RL s':>8s} {'proxy s':>8s}   {'RL mean U':>9s} {'proxy mean cos':>14s}")
    for r in means.itertuples():
        print(f"{r.source_task:28s} {sec_rl[r.source_task]:8.1f} {sec_px[r.source_task]:8.1f}   "
              f"{r.mean_utility_rl:9.4f} {r.mean_utility_proxy:14.4f}")
    print(f"compute: proxy / RL = {sec_px.sum() / sec_rl.sum():.3f} ({sec_px.sum():.0f} s vs {sec_rl.sum():.0f} s; "
          f"goal <= 0.10)")
    print("Spearman over (task, sub-task) pairs: {:.3f} [{:.3f}, {:.3f}] (n={}); over task means: "
          "{:.3f} [{:.3f}, {:.3f}] (n={}); goal >= 0.7".format(*rho_pairs, len(pairs), *rho_tasks, len(means)))
    try:
        metrics = json.loads(Path("metrics/utility.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    shown = False
    for key, what in (("reliability", "reliability of the RL ranking (halves of each task's seeds)"),
                      ("item_reliability", "item reliability of the RL ranking (halves of the dev items of the "
                                           "same runs: item noise only)")):
        rel = metrics.get(key) or {}
        if rel.get("reliability") is not None:
            print(f"{what}, Spearman-Brown: {rel['reliability']:.3f} [{rel['reliability_ci_low']:.3f}, "
                  f"{rel['reliability_ci_high']:.3f}]")
            shown = True
    if shown:
        print("a proxy cannot be judged against an RL ranking that does not replicate")
    else:
        print("reliability of the RL ranking: not in metrics/utility.json (run `dvc repro utility`)")

if __name__ == "__main__":
    main()
