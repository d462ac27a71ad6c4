"""Successive halving vs exhaustive scoring on synthetic utility tables: hit rate and compute.

The tables resemble the default run's (metrics/utility.json): every cell positive (a shared
format gain), source tasks' mean utilities a few points apart, per-run measurement noise of a few
points (24 dev items per sub-task, n = 8) and a seed effect per run. Two regimes: differences at
the noise level (as measured on the default) and differences several times the noise (what a
research-sized run should see). Each trial draws every (task, seed) run once; halving and
exhaustive read the same runs. Exhaustive gives every task the finalists' number of seeds;
"even" spends halving's compute spread evenly over the tasks.

    python bench/halving.py [--tasks 8] [--trials 300]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from supernova.halving import HalvingConfig, simulate, synthetic_table

REGIMES = {   # true-table spread and per-run noise, utility units (pass@1 gain)
    "default-like (differences at the noise level)": dict(common=0.045, task_sd=0.012, cell_sd=0.015,
                                                          seed_sd=0.02, noise_sd=0.035),
    "separable (task differences ~3x the noise)": dict(common=0.045, task_sd=0.05, cell_sd=0.03,
                                                       seed_sd=0.02, noise_sd=0.035),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--targets", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1, help="round r0's seeds per task")
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--tables", type=int, default=5, help="true tables drawn per regime")
    ap.add_argument("--k", type=int, default=2, help="the top-k compared (macro's choice)")
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    print(f"{args.tasks} tasks x {args.targets} sub-tasks, r0 seeds {args.seeds}, top-{args.k}, "
          f"{args.tables} tables x {args.trials} trials per regime")
    for name, r in REGIMES.items():
        for rank_by in ("subtask", "mean"):
            cfg = HalvingConfig(rounds=3, eta=2, rank_by=rank_by)
            acc: dict[str, list[float]] = {}
            for t in range(args.tables):
                rng = np.random.default_rng(1000 + t)
                true = synthetic_table(args.tasks, args.targets, common=r["common"], task_sd=r["task_sd"],
                                       cell_sd=r["cell_sd"], rng=rng)
                res = simulate(true, seeds=args.seeds, cfg=cfg, seed_sd=r["seed_sd"], noise_sd=r["noise_sd"],
                               k=args.k, trials=args.trials, rng=rng)
                for key, v in res.items():
                    acc.setdefault(key, []).append(v)
            m = {key: float(np.mean(v)) for key, v in acc.items()}
            print(f"\n{name}; promote by {rank_by}")
            print(f"  compute: halving {m['halving_runs']:.0f} runs vs exhaustive {m['exhaustive_runs']:.0f} "
                  f"({m['finalist_seeds']:.0f} seeds x {args.tasks} tasks): fraction {m['compute_fraction']:.3f}")
            print(f"  halving finds exhaustive's top-{args.k}: {m['topk_vs_exhaustive']:.3f}; "
                  f"every sub-task's leader: {m['leaders_vs_exhaustive']:.3f}")
            print(f"  vs the true table: halving top-{args.k} {m['topk_vs_truth']:.3f}, leaders "
                  f"{m['leaders_vs_truth']:.3f}; exhaustive top-{args.k} {m['exhaustive_topk_vs_truth']:.3f}; "
                  f"even split of halving's compute ({m['even_seeds']:.0f} seeds/task) top-{args.k} "
                  f"{m['even_topk_vs_truth']:.3f}, leaders {m['even_leaders_vs_truth']:.3f}")


if __name__ == "__main__":
    main()
