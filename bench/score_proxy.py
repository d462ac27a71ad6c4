"""The gradient-alignment proxy vs the RL utility on the same pool: compute and rank agreement.

Needs a finished `dvc repro` (reads the RL utility matrix and each RL run's wall time from
data/utility/utility.parquet), then computes the proxy for every scored source task with the
same training items and dev items, timing it (the target sub-tasks' gradients are computed once,
by the first task, as in the pipeline), and prints:

* compute: proxy seconds / RL seconds (all tasks), and per task;
* Spearman rank correlation between proxy and RL utility over (source task, target sub-task)
  pairs, and over source tasks' mean utility (what macro mixing ranks by).

    python bench/score_proxy.py [--layers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from supernova import paths
from supernova.config import from_section, load_params
from supernova.prompts import PromptConfig
from supernova.schema import ITEM, PROBE, UTILITY, read_table
from supernova.score import ScoreConfig, score_task_gradient
from supernova.utility import matrix, mean_by_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=None, help="top layers whose gradients are compared")
    args = ap.parse_args()
    params = load_params()
    cfg = from_section(ScoreConfig, params, "score")
    if args.layers:
        cfg = dataclasses.replace(cfg, proxy_layers=args.layers)
    prompt = from_section(PromptConfig, params, "prompt")
    rl = read_table(paths.UTILITY, UTILITY)
    rl = rl[rl["method"] == "rl"]
    if rl.empty:
        raise SystemExit("no RL utility in data/utility/utility.parquet: run `dvc repro` with score.method: rl first")
    dev = read_table(paths.TARGET_DEV, ITEM)
    with tempfile.TemporaryDirectory() as cache:  # target gradients: computed by the first task, reused
        proxy = pd.concat([score_task_gradient(t, read_table(paths.probe_file(t), PROBE), paths.BASE_MODEL, dev,
                                               cfg, prompt, Path(cache)) for t in cfg.tasks], ignore_index=True)
    m_rl, m_px = matrix(rl, cfg.k), matrix(proxy, cfg.k)
    pairs = m_rl.merge(m_px, on=["source_task", "target_task"], suffixes=("_rl", "_proxy"))
    rho_pairs = spearmanr(pairs["utility_rl"], pairs["utility_proxy"]).statistic
    means = mean_by_task(m_rl).merge(mean_by_task(m_px), on="source_task", suffixes=("_rl", "_proxy"))
    rho_tasks = spearmanr(means["mean_utility_rl"], means["mean_utility_proxy"]).statistic
    sec_rl = rl.groupby(["source_task", "seed"])["seconds"].first().groupby("source_task").sum()
    sec_px = proxy.groupby(["source_task", "seed"])["seconds"].first().groupby("source_task").sum()
    print(f"pool: {len(cfg.tasks)} source tasks x {pairs['target_task'].nunique()} target sub-tasks, "
          f"utility at pass@{cfg.k}, proxy over the top {cfg.proxy_layers} layers")
    print(f"{'task':28s} {'RL s':>8s} {'proxy s':>8s}   {'RL mean U':>9s} {'proxy mean cos':>14s}")
    for r in means.itertuples():
        print(f"{r.source_task:28s} {sec_rl[r.source_task]:8.1f} {sec_px[r.source_task]:8.1f}   "
              f"{r.mean_utility_rl:9.4f} {r.mean_utility_proxy:14.4f}")
    print(f"compute: proxy / RL = {sec_px.sum() / sec_rl.sum():.3f} ({sec_px.sum():.0f} s vs {sec_rl.sum():.0f} s; "
          f"goal <= 0.10)")
    print(f"Spearman over (task, sub-task) pairs: {rho_pairs:.3f} (n={len(pairs)}); over task means: "
          f"{rho_tasks:.3f} (n={len(means)}); goal >= 0.7")


if __name__ == "__main__":
    main()
