"""Stage rl-train: SFT on the SFT set, then GRPO on the mixture; the final model is a DVC output.

Resumable: checkpoints go to data/scratch/rl-train; after a crash or a kill, `dvc repro` resumes
from the last one if nothing that determines the run (settings, items, start model's bytes) has
changed. The scratch folder is removed once the trained model is saved.
"""

import shutil

from supernova import paths, stage
from supernova.config import from_section
from supernova.generation import GenerationConfig
from supernova.prompts import PromptConfig
from supernova.rl_train import RLTrainConfig
from supernova.schema import ITEM, SFT, read_table
from supernova.training import run_grpo, run_sft


def main(params: dict) -> None:
    cfg = from_section(RLTrainConfig, params, "rl_train")
    prompt = from_section(PromptConfig, params, "prompt")
    gen = from_section(GenerationConfig, params, "generation")
    start = paths.BASE_MODEL
    if cfg.sft.enabled:
        sft_model = paths.TRAIN_SCRATCH / "sft-model"
        run_sft(start, read_table(paths.SFT_SET, SFT), cfg.sft, prompt, sft_model,
                scratch_dir=paths.TRAIN_SCRATCH / "sft", live_dir=str(paths.METRICS / "train" / "sft"))
        start = sft_model
    run_grpo(start, read_table(paths.MIXTURE, ITEM), cfg.grpo, prompt, paths.TRAINED_MODEL,
             scratch_dir=paths.TRAIN_SCRATCH / "grpo", live_dir=str(paths.METRICS / "train" / "grpo"), gen=gen)
    shutil.rmtree(paths.TRAIN_SCRATCH, ignore_errors=True)  # the SFT model was only the GRPO start


if __name__ == "__main__":
    stage.run("rl-train", main)
