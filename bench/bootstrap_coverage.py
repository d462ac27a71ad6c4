"""Coverage of the utility CIs (supernova.stats.hierarchical_bootstrap) on synthetic runs with a
known gain.

Each trial draws the base model's per-item scores (n samples per item, item pass rates uniform in
[0.2, 0.6]) and one run per seed whose pass rate on every item is the base rate + ``gain`` + the
seed's effect, drawn once per run (normal, sd ``seed_sd``) and shared by every sub-task, as one
trained model is scored on all of them. It counts how often the 95% interval holds the true gain,
for each (task, sub-task) cell and for the mean over sub-tasks (the mean utility that macro
mixing ranks by).

    python bench/bootstrap_coverage.py [--trials 200] [--seeds 1 2 3 6] [--seed-sd 0.02 0.1]
"""

from __future__ import annotations

import argparse

import numpy as np

from supernova.stats import hierarchical_bootstrap


def trial(rng: np.random.Generator, seeds: int, subtasks: int, items: int, n: int, gain: float,
          seed_sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per-seed trained scores (seeds, items), base scores (items,), sub-task of each item)."""
    groups = np.repeat(np.arange(subtasks), items)
    p = rng.uniform(0.2, 0.6, len(groups))
    base = rng.binomial(n, p) / n
    effect = rng.normal(0, seed_sd, seeds)[:, None]
    return rng.binomial(n, np.clip(p[None] + gain + effect, 0, 1)) / n, base, groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--iters", type=int, default=400, help="bootstrap replicates per trial")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 6])
    ap.add_argument("--seed-sd", type=float, nargs="+", default=[0.02, 0.1])
    ap.add_argument("--subtasks", type=int, default=3)
    ap.add_argument("--items", type=int, default=32, help="dev items per sub-task")
    ap.add_argument("--n", type=int, default=8, help="samples per item")
    ap.add_argument("--gain", type=float, default=0.05)
    args = ap.parse_args()
    print(f"{args.subtasks} sub-tasks x {args.items} dev items, n = {args.n}, true gain {args.gain}, "
          f"{args.trials} trials of {args.iters} replicates; coverage of the 95% interval")
    print("| seed sd | seeds | per cell | mean over sub-tasks |\n|---|---|---|---|")
    for sd in args.seed_sd:
        for s in args.seeds:
            rng = np.random.default_rng(0)
            cell = mean = 0
            for i in range(args.trials):
                trained, base, groups = trial(rng, s, args.subtasks, args.items, args.n, args.gain, sd)
                reps = hierarchical_bootstrap([trained], base, groups, iters=args.iters, seed=i)[:, 0, :]
                lo, hi = np.quantile(reps, [0.025, 0.975], axis=0)
                cell += int(((lo <= args.gain) & (args.gain <= hi)).sum())
                mlo, mhi = np.quantile(reps.mean(axis=1), [0.025, 0.975])
                mean += int(mlo <= args.gain <= mhi)
            print(f"| {sd} | {s} | {cell / (args.trials * args.subtasks):.3f} | {mean / args.trials:.3f} |")


if __name__ == "__main__":
    main()
