"""Stage score-control@<round>: the format control's utility for every target sub-task (see
supernova/score.py), from the seeds the round's promotion file gives it.

Usage: python stages/score_control.py <round>
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
from supernova.scoring import CONTROL, ScoreConfig, control_items


def main(params: dict) -> None:
    round_ = sys.argv[1]
    # the task list is not a dependency: the control draws from control_tasks, else every probed task
    cfg = from_section(ScoreConfig, params, "score")
    tasks = cfg.control_tasks or sorted(p.stem for p in paths.PROBE_DIR.glob("*.parquet"))
    probes = {t: read_table(paths.probe_file(t), PROBE) for t in tasks}
    score_unit(CONTROL, round_, lambda seed: control_items(probes, cfg.target_size, seed), None, cfg,
               from_section(EvalConfig, params, "evaluate"), from_section(PromptConfig, params, "prompt"),
               from_section(GenerationConfig, params, "generation"), from_section(ComputeConfig, params, "compute"))


if __name__ == "__main__":
    stage.run(f"score-control@{sys.argv[1] if len(sys.argv) > 1 else '?'}", main)
