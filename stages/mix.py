"""Stage mix: choose tasks by strategy, draw the mixture, apply interventions; write the
mixture (Parquet) and its manifest (mixture.yaml, tracked in git)."""

from supernova import interventions, paths, stage
from supernova.config import from_section
from supernova.io import file_sha256, write_yaml
from supernova.mix import MixConfig, choose_tasks, draw_items, low_snr, manifest, subtasks_without_task
from supernova.schema import ITEM, PROBE, TASK_UTILITY, UTILITY_MATRIX, read_table, write_table
from supernova.scoring import ScoreConfig


def main(params: dict) -> None:
    cfg = from_section(MixConfig, params, "mix")
    score = from_section(ScoreConfig, params, "score").require_tasks()
    m = read_table(paths.UTILITY_MATRIX, UTILITY_MATRIX)
    tasks = read_table(paths.TASK_UTILITY, TASK_UTILITY)
    why = choose_tasks(m, cfg, tasks, score.baseline)
    probed = {t: read_table(paths.probe_file(t), PROBE) for t in score.tasks}
    items = draw_items(probed, list(why), cfg)
    items, counts = interventions.apply(items, cfg.interventions, cfg.seed)
    write_table(paths.MIXTURE, items, ITEM)
    ranked_by = (f"{score.method} utility by {score.ranking_metric}, "
                 f"{'point estimate' if cfg.select_by == 'mean' else 'lower 95% bound'}"
                 f", {'over the base model' if score.baseline == 'base' else 'net of the format control'}")
    write_yaml(paths.MIXTURE_MANIFEST, manifest(
        cfg, why, items, probed, str(paths.MIXTURE), file_sha256(paths.MIXTURE), ranked_by, counts,
        subtasks_without_task(m, cfg, tasks, score.baseline), low_snr(m) if cfg.strategy == "micro" else None))


if __name__ == "__main__":
    stage.run("mix", main)
