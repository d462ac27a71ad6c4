"""Stage probe: base-model pass rates on every source item (one Parquet per task), metrics/probe.json."""

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.generation import GenerationConfig, load_generator
from supernova.hardware import ComputeConfig, record
from supernova.io import atomic_path, write_json
from supernova.probe import ProbeConfig, overall_summary, probe_items, task_summary
from supernova.prompts import PromptConfig
from supernova.schema import ITEM, PROBE, read_table, write_table


def main(params: dict) -> None:
    cfg = from_section(ProbeConfig, params, "probe")
    prompt = from_section(PromptConfig, params, "prompt")
    files = sorted(paths.SOURCE_ITEMS.glob("*.parquet"))
    items = pd.concat([read_table(f, ITEM) for f in files], ignore_index=True)
    gen = load_generator(paths.BASE_MODEL, from_section(GenerationConfig, params, "generation"),
                         from_section(ComputeConfig, params, "compute"), seed=cfg.seed)
    try:
        probed = probe_items(gen, items, prompt, cfg)
    finally:
        gen.close()
    per_task = {}
    with atomic_path(paths.PROBE_DIR, is_dir=True) as tmp:
        for task, df in probed.groupby("task", sort=True):
            write_table(tmp / f"{task}.parquet", df, PROBE)
            per_task[task] = task_summary(df, cfg)
    write_json(paths.METRICS / "probe.json", {"overall": overall_summary(per_task), "tasks": per_task,
                                              "compute": record(generation=gen.settings)})


if __name__ == "__main__":
    stage.run("probe", main)
