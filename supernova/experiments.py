"""The mixing comparison the SuperNova paper reports, as DVC experiments, and its Markdown table.

    python -m supernova.experiments                 # run the variants, then write metrics/experiments.md
    python -m supernova.experiments --table-only    # rebuild the table from `dvc exp show`
    python -m supernova.experiments --sweep sft_select.size=2,4,16,32,8 --out metrics/sft_size_sweep.md

Each variant is one ``dvc exp run -n <name> -S ...`` on top of the committed params: the strategies
``all``, ``random``, ``macro``, ``micro`` and ``micro`` with the anti-prior intervention. The utility runs (score@*) are cached,
so each variant retrains only from ``mix`` on. The table takes each experiment's
metrics/eval.json from ``dvc exp show --json`` and lists, per target sub-task, pass@k with its
95% bootstrap CI, for the base model and each variant, then the means over sub-tasks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from .io import write_text
from .report import EVAL, table

VARIANTS: dict[str, list[str]] = {
    "all": ["mix.strategy=all"],
    "random": ["mix.strategy=random"],
    "macro": ["mix.strategy=macro"],
    "micro-anti-prior": ["mix.strategy=micro", "mix.interventions.anti_prior=0.25"],
    "micro": ["mix.strategy=micro"],
}


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.experiments", description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--sweep", metavar="KEY=V1,V2,...", help="instead of the mixing variants, one per value")
    ap.add_argument("--k", type=int, default=None, help="the k of the per-sub-task table (default: the largest)")
    ap.add_argument("--out", default="metrics/experiments.md")
    ap.add_argument("--table-only", action="store_true", help="do not run; tabulate existing experiments")
    args = ap.parse_args(argv)
    variants = sweep_variants(args.sweep) if args.sweep else {n: VARIANTS[n] for n in args.variants}
    if not args.table_only:
        if not params_committed():
            raise SystemExit("experiments: params.yaml has uncommitted changes; the variants are defined "
                             "relative to the committed params, so commit them first")
        for name, sets in variants.items():
            run_variant(name, sets)
        subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], check=True)
    results = exp_metrics(list(variants))
    k = args.k or max(int(key.split("@")[1]) for key in next(iter(results.values()))["base"])
    text = table(results, k)
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
