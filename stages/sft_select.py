"""Stage sft-select: a small, hard, diverse SFT set from the mixture's tasks; sft_set.yaml manifest."""

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.io import file_sha256, read_yaml, write_yaml
from supernova.model import load_for_training
from supernova.prompts import PromptConfig
from supernova.schema import PROBE, SFT, read_table, write_table
from supernova.sft_select import SFTSelectConfig, manifest, select


def main(params: dict) -> None:
    cfg = from_section(SFTSelectConfig, params, "sft_select")
    prompt = from_section(PromptConfig, params, "prompt")
    if cfg.pool == "mixture":
        tasks = [t["task"] for t in read_yaml(paths.MIXTURE_MANIFEST)["tasks"]]
    else:
        tasks = list(params["score"]["tasks"])
    probed = pd.concat([read_table(paths.probe_file(t), PROBE) for t in tasks], ignore_index=True)
    model, tok = load_for_training(paths.BASE_MODEL)
    model.eval()
    chosen = select(probed, model, tok, prompt, cfg)
    write_table(paths.SFT_SET, chosen, SFT)
    band = probed["pass_rate"].between(*cfg.band)
    write_yaml(paths.SFT_MANIFEST, manifest(cfg, chosen, int(band.sum()), str(paths.SFT_SET),
                                            file_sha256(paths.SFT_SET)))


if __name__ == "__main__":
    stage.run("sft-select", main)
