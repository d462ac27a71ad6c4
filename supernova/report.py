"""Print the evaluation of the workspace: pass@k per target sub-task, base vs trained, with CIs.

    python -m supernova.report [--k 8]
"""

from __future__ import annotations

import argparse
import json
import sys

from .experiments import EVAL, table


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
