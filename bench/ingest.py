"""Ingest time on the development data: every SuperNI task and every BBH file, against a budget.

Workload: all task files under ``--superni`` (every instance, ``format: auto``) as sources and all
BBH files under ``--bbh`` as targets (dev 4 / test 8 per sub-task), with SmolLM2's tokenizer for
the prompt-length check, exactly as the ingest stage runs it (loading, dedup, 13-gram
decontamination, split, Parquet and metrics written to a temporary folder). Timed ``--repeats``
times; the script prints the median seconds and its ratio to the 120-second budget.

    python bench/ingest.py [--superni ../shared/data/superni/tasks] [--bbh ../shared/data/bbh/tasks]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

BUDGET_S = 120.0


def run_once(superni: Path, bbh: Path, tok, ctx: int) -> tuple[float, dict]:
    from supernova.ingest import IngestConfig, ingest, write_ingest
    from supernova.prompts import PromptConfig

    cfg = IngestConfig(sources=[{"kind": "superni", "path": str(superni)}],
                       targets=[{"kind": "bigbench", "path": str(bbh), "format": "exact"}],
                       target_dev_size=4, target_test_size=8)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        t = time.perf_counter()
        result = ingest(cfg, seed=0, prompt=PromptConfig(), tokenizer=tok, context_length=ctx)
        write_ingest(result, out / "sources", out / "dev.parquet", out / "test.parquet", out / "ingest.json")
        return time.perf_counter() - t, result.report["totals"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--superni", default="../shared/data/superni/tasks")
    ap.add_argument("--bbh", default="../shared/data/bbh/tasks")
    ap.add_argument("--model", default="data/models/base", help="prepared model folder (for its tokenizer)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from supernova.model import context_length, prepare_base_model

    model = Path(args.model)
    if not (model / "config.json").exists():
        model = prepare_base_model("embedded:SmolLM2-135M-Instruct", Path(tempfile.mkdtemp()) / "smol")
    tok = AutoTokenizer.from_pretrained(model)
    runs, totals = [], {}
    for _ in range(args.repeats):
        seconds, totals = run_once(Path(args.superni), Path(args.bbh), tok, context_length(model))
        runs.append(seconds)
    med = statistics.median(runs)
    print(f"workload: {totals['source_tasks']} SuperNI tasks ({totals['source_items']} items), "
          f"{totals['target_subtasks']} BBH sub-tasks ({totals['dev_items']} dev + {totals['test_items']} test)")
    print(f"ingest: median {med:.1f} s   runs: {', '.join(f'{r:.1f}' for r in runs)}")
    print(f"ratio to the {BUDGET_S:.0f} s budget: {med / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
