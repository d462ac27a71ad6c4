"""Stage utility: the utility matrix by the metric mixing ranks by, with hierarchical-bootstrap CIs
(raw and net of the format control), per-task means; for every metric, how far its ranking can be
trusted (reliability, decision accuracy, SNR); each run's in-task gain; heatmap and sorted-bar
plot data; metrics/utility.json."""

import logging

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.halving import ROUNDS
from supernova.io import write_json
from supernova.schema import (EVAL, LIKELIHOOD, PROBE, RUNS, SCORE_EVAL, SCORE_LIKELIHOOD, TASK_UTILITY, UTILITY,
                              UTILITY_MATRIX, read_table, write_table)
from supernova.scoring import CONTROL, ScoreConfig
from supernova.utility import build, plot_data


def main(params: dict) -> None:
    cfg = from_section(ScoreConfig, params, "score").require_tasks()
    units = cfg.units

    def gather(name, schema):
        return pd.concat([read_table(paths.score_dir(r, t) / name, schema) for r in ROUNDS for t in units],
                         ignore_index=True)

    runs = gather("utility.parquet", UTILITY)
    write_table(paths.UTILITY, runs, UTILITY)
    base_rate = {t: float(read_table(paths.probe_file(t), PROBE)["pass_rate"].mean()) for t in cfg.tasks}
    m, tasks, metrics = build(runs, gather("items.parquet", SCORE_EVAL), gather("likelihood.parquet", SCORE_LIKELIHOOD),
                              gather("heldout_base.parquet", LIKELIHOOD), read_table(paths.BASELINE_DEV, EVAL),
                              read_table(paths.BASELINE_DEV_LIKELIHOOD, LIKELIHOOD), gather("runs.parquet", RUNS),
                              list(cfg.tasks), CONTROL if cfg.control else None, cfg, base_rate,
                              iters=cfg.bootstrap, seed=params.get("seed", 0), file=str(paths.SCORE_DIR))
    write_table(paths.UTILITY_MATRIX, m, UTILITY_MATRIX)
    write_table(paths.TASK_UTILITY, tasks, TASK_UTILITY)
    heat, bars = plot_data(m, tasks)
    write_json(paths.METRICS / "plots" / "utility_heatmap.json", heat)
    write_json(paths.METRICS / "plots" / "utility_mean.json", bars)
    write_json(paths.METRICS / "utility.json", metrics)
    for task, info in (metrics.get("learning") or {}).get("tasks", {}).items():
        flat = [s for s in info["seeds"] if s not in info["seeds_learned"]]
        if flat:
            logging.getLogger("utility").warning(
                "%s: seed(s) %s show no in-task gain above 0 by %s: those runs measured nothing their "
                "utilities can be read for", task, ", ".join(map(str, flat)), info["metric"])


if __name__ == "__main__":
    stage.run("utility", main)
