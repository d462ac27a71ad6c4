"""Stage score@<task>-<round>: the utility of one source task for every target sub-task, from the
seeds the round's promotion file gives it (none: empty outputs).

Usage: python stages/score.py <task> <round>
"""

import sys

from supernova import paths, stage
from supernova.config import from_section
from supernova.evaluation import EvalConfig
from supernova.generation import GenerationConfig
from supernova.hardware import ComputeConfig
from supernova.prompts import PromptConfig
from supernova.schema import PROBE, read_table
from supernova.score import score_unit
from supernova.scoring import ScoreConfig, training_items


def main(params: dict) -> None:
    task, round_ = sys.argv[1], sys.argv[2]
    # one stage per (task, round) of dvc.yaml's matrix: the task list, the schedule and the seeds
    # (they reach this stage through its promotion file) are not its dependencies, so the config
    # holds only the keys dvc.yaml declares for it
    cfg = from_section(ScoreConfig, params, "score")
    probed = read_table(paths.probe_file(task), PROBE)
    score_unit(task, round_, lambda seed: training_items(probed, task, cfg.target_size, seed, cfg.heldout), probed,
               cfg, from_section(EvalConfig, params, "evaluate"), from_section(PromptConfig, params, "prompt"),
               from_section(GenerationConfig, params, "generation"), from_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    stage.run(f"score@{'-'.join(sys.argv[1:3]) or '?'}", main)
