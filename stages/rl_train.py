"""Stage rl-train: SFT on the SFT set, then GRPO on the mixture (see supernova/rl_train.py)."""

from supernova import stage
from supernova.rl_train import rl_train

if __name__ == "__main__":
    stage.run("rl-train", rl_train)
