"""Stage promote-<round>: which tasks a scoring round runs, with which seeds (one JSON file per
task, so a task's cached run survives a change of the others' decisions); see supernova.halving.

Usage: python stages/promote.py <round>
"""

import sys

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.halving import ROUNDS, plan, promote
from supernova.io import atomic_path, write_json
from supernova.schema import UTILITY, read_table
from supernova.scoring import CONTROL, ScoreConfig


def main(params: dict) -> None:
    round_ = sys.argv[1]
    cfg = from_section(ScoreConfig, params, "score").require_tasks()
    rounds = plan(len(cfg.tasks), cfg.seeds, cfg.schedule, cfg.halving)
    earlier = [read_table(paths.score_dir(r, t) / "utility.parquet", UTILITY)
               for r in ROUNDS[:ROUNDS.index(round_)] for t in cfg.tasks]
    rows = pd.concat(earlier, ignore_index=True) if earlier else pd.DataFrame(columns=UTILITY.names)
    decisions, record = promote(round_, list(cfg.tasks), rows[rows["metric"] == cfg.ranking_metric], rounds,
                                cfg.halving.rank_by)
    runs_this_round = bool(record["promoted"])
    this = rounds[ROUNDS.index(round_)]
    decisions[CONTROL] = {"round": round_, "task": CONTROL, "promoted": cfg.control and runs_this_round,
                          "seeds": list(this.seeds) if cfg.control and runs_this_round else []}
    with atomic_path(paths.HALVING_DIR / round_, is_dir=True) as tmp:
        for task, d in decisions.items():
            write_json(tmp / f"{task}.json", d)
        write_json(tmp / "decision.json", {"schedule": cfg.schedule, **record})


if __name__ == "__main__":
    stage.run(f"promote-{sys.argv[1] if len(sys.argv) > 1 else '?'}", main)
