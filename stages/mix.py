"""Stage mix: choose tasks by strategy, draw the mixture, apply interventions; write the
mixture (Parquet) and its manifest (mixture.yaml, tracked in git)."""

from supernova import interventions, paths, stage
from supernova.config import from_section
from supernova.io import file_sha256, write_yaml
from supernova.mix import MixConfig, choose_tasks, draw_items, manifest
from supernova.schema import ITEM, PROBE, UTILITY, read_table, write_table
from supernova.score import ScoreConfig
from supernova.utility import matrix


def main(params: dict) -> None:
    cfg = from_section(MixConfig, params, "mix")
    score = from_section(ScoreConfig, params, "score")
    m = matrix(read_table(paths.UTILITY, UTILITY), score.k)
    why = choose_tasks(m, cfg)
    probed = {t: read_table(paths.probe_file(t), PROBE) for t in score.tasks}
    items = draw_items(probed, list(why), cfg)
    items, counts = interventions.apply(items, cfg.interventions, cfg.seed)
    write_table(paths.MIXTURE, items, ITEM)
    write_yaml(paths.MIXTURE_MANIFEST, manifest(
        cfg, why, items, probed, str(paths.MIXTURE), file_sha256(paths.MIXTURE),
        f"{score.method} utility at pass@{score.k}", counts))


if __name__ == "__main__":
    stage.run("mix", main)
