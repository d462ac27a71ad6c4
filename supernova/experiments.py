"""The mixing comparison the SuperNova paper reports, as DVC experiments, with seeds and a verdict.

    python -m supernova.experiments                 # variants x 3 seeds, then metrics/experiments.md
    python -m supernova.experiments --mode paper    # RL only (no SFT), as in the paper
    python -m supernova.experiments --table-only    # rebuild the table from `dvc exp show`
    python -m supernova.experiments --sweep sft_select.size=2,4,16,32,8 --out metrics/sft_size_sweep.md
    python -m supernova.experiments --variants macro bottom --out metrics/ranking_check.md   # does the ranking predict training?

Each variant (the strategies ``all``, ``random``, ``macro``, ``micro`` and ``micro`` with the
anti-prior intervention by default; ``bottom``, the tasks the ranking puts last, on request) is
trained once per seed: one ``dvc exp run -n <variant>-s<seed> -S ...``
(``paper-<variant>-s<seed>`` in paper mode) on top of the committed params, with
``rl_train.grpo.seed``, ``rl_train.sft.seed`` and ``mix.seed`` set to the seed. The utility runs
(score@*) are cached, so each run retrains only from ``mix`` on. In the default mode SFT stays on
with one SFT set for every variant (``sft_select.pool=scored``: drawn from every scored task, not
from the mixture), so the variants differ only in the RL mixture; ``--mode paper`` turns SFT off
(SuperNova's comparison is RL only).

The table (from each experiment's metrics/eval.json in ``dvc exp show --json``) gives, per target
sub-task and for the mean over sub-tasks, each variant's mean pass@k over seeds with a 95%
Student-t CI across seeds (the test items fixed), then the seed-paired differences micro - macro
and each variant - base with their CIs: an interval that excludes 0 is a verdict.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from .io import write_text
from .report import EVAL, table
from .stats import mean_t_ci

VARIANTS: dict[str, list[str]] = {
    "all": ["mix.strategy=all"],
    "random": ["mix.strategy=random"],
    "macro": ["mix.strategy=macro"],
    "micro-anti-prior": ["mix.strategy=micro", "mix.interventions.anti_prior=0.25"],
    "micro": ["mix.strategy=micro"],
    # the tasks the ranking puts last, against macro's first: does the ranking predict training?
    "bottom": ["mix.strategy=bottom"],
}
MODES: dict[str, list[str]] = {
    "default": ["sft_select.pool=scored"],
    "paper": ["rl_train.sft.enabled=false"],
}
SEED_KEYS = ("rl_train.grpo.seed", "rl_train.sft.seed", "mix.seed")
#: The paired differences reported (first minus second; "base" is the untrained model).
CONTRASTS = [("micro", "macro"), ("macro", "bottom")]


def params_committed() -> bool:
    return subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "params.yaml"]).returncode == 0


def run_variant(name: str, sets: list[str]) -> None:
    """``dvc exp run`` of one variant on top of the committed params (an experiment leaves its
    params in the workspace, so they are reset first); a same-named experiment is replaced."""
    subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], check=True)
    subprocess.run(["dvc", "exp", "remove", name], capture_output=True)  # absent is fine
    cmd = ["dvc", "exp", "run", "-n", name] + [a for s in sets for a in ("-S", s)]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def exp_metrics(names: list[str]) -> dict[str, dict[str, Any]]:
    """metrics/eval.json of each named experiment, from ``dvc exp show --json``."""
    out = subprocess.run(["dvc", "exp", "show", "--json", "-A"], check=True, capture_output=True, text=True).stdout
    found: dict[str, dict[str, Any]] = {}
    for commit in json.loads(out):
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name = rev.get("name")
                data = ((rev.get("data") or {}).get("metrics") or {}).get(EVAL, {}).get("data")
                if name in names and data and name not in found:
                    found[name] = data
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"experiments: no {EVAL} for {missing} in `dvc exp show` (run them first)")
    return {n: found[n] for n in names}


def sweep_variants(spec: str) -> dict[str, list[str]]:
    """``key=v1,v2`` → one variant per value, named ``<last key part>-<value>``."""
    key, _, values = spec.partition("=")
    if not key or not values:
        raise SystemExit(f"experiments: --sweep takes key=v1,v2,..., got {spec!r}")
    return {f"{key.rsplit('.', 1)[-1]}-{v}": [f"{key}={v}"] for v in values.split(",")}


def run_name(variant: str, seed: int, mode: str) -> str:
    """The experiment's name: ``<variant>-s<seed>``, prefixed by the mode unless it is ``default``
    (so the two modes' runs of a variant do not replace each other)."""
    return f"{variant}-s{seed}" if mode == "default" else f"{mode}-{variant}-s{seed}"


def seeded(variants: dict[str, list[str]], seeds: list[int], mode: str) -> dict[str, list[str]]:
    """One run per variant and seed (:func:`run_name`) with the seed keys and the mode's sets."""
    return {run_name(name, seed, mode): sets + MODES[mode] + [f"{key}={seed}" for key in SEED_KEYS]
            for name in variants for seed in seeds for sets in [variants[name]]}


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f}"


def _cell(values: list[float], low: float = 0.0) -> str:
    """Mean and 95% t-CI, the bounds clipped to the metric's range: [0, 1] for a pass@k, [-1, 1]
    (``low=-1``) for a difference of two."""
    m, lo, hi = mean_t_ci(values)
    if len(values) < 2:
        return _pct(m)
    return f"{_pct(m)} [{_pct(max(lo, low))}, {_pct(min(hi, 1.0))}]"


def seed_table(results: dict[str, dict[int, dict[str, Any]]], k: int, *, mode: str = "default",
               contrasts: list[tuple[str, str]] = CONTRASTS) -> str:
    """Markdown: per sub-task and mean over sub-tasks, each variant's mean pass@k over seeds with a
    95% t-CI across seeds; then seed-paired differences (contrasts, and each variant - base)."""
    key = f"pass@{k}"
    first = next(iter(next(iter(results.values())).values()))
    subtasks = sorted(first["subtasks"])
    cols = subtasks + ["mean over sub-tasks"]

    def values(run: dict[str, Any], which: str = "trained") -> list[float]:
        return ([run["subtasks"][t][which][key]["value"] for t in subtasks]
                + [run[which][key]["mean_over_subtasks"]])

    seeds = sorted({s for runs in results.values() for s in runs})
    lines = [f"### pass@{k} (%), mean over {len(seeds)} seeds {seeds} with a 95% t-CI across seeds "
             f"(mode: {mode})", "", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
             "| base | " + " | ".join(_pct(v) for v in values(first, "base")) + " |"]
    per = {name: [values(run) for _, run in sorted(runs.items())] for name, runs in results.items()}
    for name, rows in per.items():
        lines.append(f"| {name} | " + " | ".join(_cell([r[i] for r in rows]) for i in range(len(cols))) + " |")
    base = values(first, "base")
    pairs = [(a, b) for a, b in contrasts if a in results and b in results] + [(n, "base") for n in results]
    lines += ["", f"### Paired differences of pass@{k} (percentage points, same seed; 95% t-CI across seeds)", "",
              "| difference | " + " | ".join(cols) + " | verdict (mean over sub-tasks) |",
              "|---" * (len(cols) + 2) + "|"]
    for a, b in pairs:
        common = sorted(set(results[a]) & (set(results[b]) if b != "base" else set(results[a])))
        diffs = [[x - y for x, y in zip(values(results[a][s]), base if b == "base" else values(results[b][s]))]
                 for s in common]
        cells = [_cell([d[i] for d in diffs], low=-1.0) for i in range(len(cols))]
        _, lo, hi = mean_t_ci([d[-1] for d in diffs])
        verdict = ("undecided (one seed)" if len(diffs) < 2 else f"{a} better" if lo > 0
                   else f"{b} better" if hi < 0 else "no significant difference")
        lines.append(f"| {a} − {b} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def group_by_variant(found: dict[str, dict[str, Any]], variants: list[str], seeds: list[int], mode: str) -> dict:
    return {v: {s: found[run_name(v, s, mode)] for s in seeds} for v in variants}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.experiments", description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != "bottom"], choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per variant (0..N-1)")
    ap.add_argument("--mode", choices=list(MODES), default="default",
                    help="default: SFT on with one SFT set for all variants; paper: RL only")
    ap.add_argument("--sweep", metavar="KEY=V1,V2,...", help="instead of the mixing variants, one per value")
    ap.add_argument("--k", type=int, default=None, help="the k of the per-sub-task table (default: 1)")
    ap.add_argument("--out", default="metrics/experiments.md")
    ap.add_argument("--table-only", action="store_true", help="do not run; tabulate existing experiments")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        raise SystemExit("experiments: --seeds must be >= 1")
    variants = sweep_variants(args.sweep) if args.sweep else {n: VARIANTS[n] for n in args.variants}
    seeds = list(range(args.seeds))
    runs = seeded(variants, seeds, args.mode)
    if not args.table_only:
        if not params_committed():
            raise SystemExit("experiments: params.yaml has uncommitted changes; the variants are defined "
                             "relative to the committed params, so commit them first")
        for name, sets in runs.items():
            run_variant(name, sets)
        subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], check=True)
    results = group_by_variant(exp_metrics(list(runs)), list(variants), seeds, args.mode)
    text = seed_table(results, args.k or 1, mode=args.mode)
    if args.k is None:   # also the largest k's per-sub-task CIs of seed 0, as before
        first = {v: r[seeds[0]] for v, r in results.items()}
        kmax = max(int(key.split("@")[1]) for key in next(iter(first.values()))["base"])
        text += "\n" + seed_table(results, kmax, mode=args.mode) + "\n" + table(first, kmax)
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
