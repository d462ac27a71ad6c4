"""Stage utility: the utility matrix (Parquet), heatmap and sorted-bar plot data, metrics/utility.json."""

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.errors import ParamsError
from supernova.io import write_json
from supernova.schema import UTILITY, read_table, write_table
from supernova.score import ScoreConfig
from supernova.utility import matrix, plot_data, summary


def main(params: dict) -> None:
    cfg = from_section(ScoreConfig, params, "score")
    k = cfg.k
    if not cfg.tasks:
        raise ParamsError("list the source tasks to score", file="params.yaml", field="score.tasks")
    rows = pd.concat([read_table(paths.score_file(t), UTILITY) for t in cfg.tasks], ignore_index=True)
    write_table(paths.UTILITY, rows, UTILITY)
    m = matrix(rows, k)
    heat, bars = plot_data(m)
    write_json(paths.METRICS / "plots" / "utility_heatmap.json", heat)
    write_json(paths.METRICS / "plots" / "utility_mean.json", bars)
    write_json(paths.METRICS / "utility.json", summary(m, k, cfg.method))


if __name__ == "__main__":
    stage.run("utility", main)
