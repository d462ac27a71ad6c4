"""Stage score@<task>-<round>: the utility of one source task (or the format control) for every
target sub-task, from the seeds the round's promotion file gives it (none: empty outputs).

Usage: python stages/score.py <task> <round>
"""

import json
import sys

from supernova import paths, stage
from supernova.config import from_section
from supernova.errors import ParamsError


def main(params: dict) -> None:
    from supernova.schema import SCORE_EVAL, UTILITY, write_table
    from supernova.score import CONTROL, ScoreConfig

    task, round_ = sys.argv[1], sys.argv[2]
    cfg = from_section(ScoreConfig, params, "score")
    if task not in cfg.tasks and task != CONTROL:
        raise ParamsError(f"task {task!r} is not in score.tasks", file="params.yaml", field="score.tasks")
    decision = json.loads(paths.promotion_file(round_, task).read_text())
    out = paths.score_dir(round_, task)
    if decision["promoted"]:
        rows, items = run(task, round_, tuple(decision["seeds"]), cfg, params)
    else:
        import pandas as pd
        rows, items = pd.DataFrame(columns=UTILITY.names), pd.DataFrame(columns=SCORE_EVAL.names)
    write_table(out / "utility.parquet", rows, UTILITY)
    write_table(out / "items.parquet", items, SCORE_EVAL)


def run(task, round_, seeds, cfg, params):
    import pandas as pd

    from supernova.evaluation import EvalConfig
    from supernova.generation import GenerationConfig
    from supernova.prompts import PromptConfig
    from supernova.schema import EVAL, ITEM, PROBE, SCORE_EVAL, read_table
    from supernova.score import CONTROL, control_items, score_task_gradient, score_task_rl, training_items

    ev = from_section(EvalConfig, params, "evaluate")
    prompt = from_section(PromptConfig, params, "prompt")
    dev = read_table(paths.TARGET_DEV, ITEM)
    if task == CONTROL:
        probes = {t: read_table(paths.probe_file(t), PROBE) for t in (cfg.control_tasks or cfg.tasks)}
        probed = None
        items_for_seed = lambda seed: control_items(probes, cfg.target_size, seed)  # noqa: E731
    else:
        probed = read_table(paths.probe_file(task), PROBE)
        items_for_seed = lambda seed: training_items(probed, task, cfg.target_size, seed)  # noqa: E731
    if cfg.method == "rl":
        return score_task_rl(task, items_for_seed, paths.BASE_MODEL, dev, read_table(paths.BASELINE_DEV, EVAL), cfg,
                             ev, prompt, from_section(GenerationConfig, params, "generation"),
                             paths.SCORE_SCRATCH / round_ / task, seeds, round_)
    if probed is None:
        raise ParamsError("the format control needs score.method: rl", file="params.yaml", field="score.control")
    rows = score_task_gradient(task, probed, paths.BASE_MODEL, dev, cfg, prompt, paths.SCORE_SCRATCH, seeds, round_)
    return rows, pd.DataFrame(columns=SCORE_EVAL.names)


if __name__ == "__main__":
    stage.run(f"score@{'-'.join(sys.argv[1:3]) or '?'}", main)
