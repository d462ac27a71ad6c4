"""Stage score@<task>: the utility of one source task for every target sub-task.

Usage: python stages/score.py <task>
"""

import sys

from supernova import paths, stage
from supernova.config import from_section
from supernova.evaluation import EvalConfig
from supernova.generation import GenerationConfig
from supernova.hardware import ComputeConfig
from supernova.prompts import PromptConfig
from supernova.schema import EVAL, ITEM, PROBE, UTILITY, read_table, write_table
from supernova.score import ScoreConfig, score_task_gradient, score_task_rl


def main(params: dict) -> None:
    task = sys.argv[1]
    # one stage per entry of score.tasks (dvc.yaml's foreach); the list itself and score.k (the
    # rows keep every k) are not this stage's dependencies
    cfg = from_section(ScoreConfig, params, "score", ignore=("tasks", "k"))
    ev = from_section(EvalConfig, params, "evaluate")
    prompt = from_section(PromptConfig, params, "prompt")
    probed = read_table(paths.probe_file(task), PROBE)
    dev = read_table(paths.TARGET_DEV, ITEM)
    if cfg.method == "rl":
        rows, resolved = score_task_rl(task, probed, paths.BASE_MODEL, dev, read_table(paths.BASELINE_DEV, EVAL),
                                       cfg, ev, prompt, from_section(GenerationConfig, params, "generation"),
                                       paths.SCORE_SCRATCH / task, from_section(ComputeConfig, params, "compute"))
    else:
        rows, resolved = score_task_gradient(task, probed, paths.BASE_MODEL, dev, cfg, prompt, paths.SCORE_SCRATCH)
    write_table(paths.score_file(task), rows, UTILITY, meta={"compute": resolved})


if __name__ == "__main__":
    stage.run(f"score@{sys.argv[1] if len(sys.argv) > 1 else '?'}", main)
