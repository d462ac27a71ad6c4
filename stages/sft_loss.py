"""Stage sft-loss: the base model's loss on the gold answer line of every probed item of the
scored source tasks (with and without its question), which sft-select ranks by."""

import pandas as pd

from supernova import paths, stage
from supernova.config import from_section
from supernova.model import load_for_training
from supernova.prompts import PromptConfig
from supernova.schema import PROBE, read_table, write_table
from supernova.sft_select import LOSSES, SFT_LOSS, SFTSelectConfig, item_losses


def main(params: dict) -> None:
    prompt = from_section(PromptConfig, params, "prompt")
    probed = pd.concat([read_table(paths.probe_file(t), PROBE) for t in params["score"]["tasks"]],
                       ignore_index=True)
    model, tok = load_for_training(paths.BASE_MODEL)
    model.eval()
    batch_size = from_section(SFTSelectConfig, params, "sft_select").batch_size
    write_table(LOSSES, item_losses(probed, model, tok, prompt, batch_size=batch_size), SFT_LOSS)


if __name__ == "__main__":
    stage.run("sft-loss", main)
