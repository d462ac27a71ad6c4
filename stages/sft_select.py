"""Stage sft-select: a small, hard, diverse SFT set from the mixture's tasks (ranked by sft-loss's
losses), each item with its SFT target (answer line or accepted trace); sft_set.yaml manifest."""

import pandas as pd

from supernova import paths, stage, traces
from supernova.config import from_section
from supernova.generation import GenerationConfig
from supernova.hardware import ComputeConfig
from supernova.io import file_sha256, read_yaml, write_yaml
from supernova.prompts import PromptConfig
from supernova.schema import PROBE, SFT, read_table, write_table
from supernova.sft_select import LOSSES, SFT_LOSS, SFTSelectConfig, manifest, select, targeted


def main(params: dict) -> None:
    cfg = from_section(SFTSelectConfig, params, "sft_select")
    prompt = from_section(PromptConfig, params, "prompt")
    if cfg.pool == "mixture":
        tasks = [t["task"] for t in read_yaml(paths.MIXTURE_MANIFEST)["tasks"]]
    else:
        tasks = list(params["score"]["tasks"])
    probed = pd.concat([read_table(paths.probe_file(t), PROBE) for t in tasks], ignore_index=True)
    chosen = select(probed, read_table(LOSSES, SFT_LOSS), cfg)
    found, teacher = traces.find(cfg.targets, chosen, prompt=prompt, teacher=cfg.teacher,
                                 generation=from_section(GenerationConfig, params, "generation"),
                                 compute=from_section(ComputeConfig, params, "compute"),
                                 scratch_dir=paths.TEACHER_SCRATCH)
    sft_set, counts = targeted(chosen, found, cfg)
    write_table(paths.SFT_SET, sft_set, SFT)
    band = probed["pass_rate"].between(*cfg.band)
    write_yaml(paths.SFT_MANIFEST, manifest(cfg, chosen, sft_set, counts, int(band.sum()), str(paths.SFT_SET),
                                            file_sha256(paths.SFT_SET), prompt_style=prompt.style,
                                            teacher_generator=teacher))


if __name__ == "__main__":
    stage.run("sft-select", main)
