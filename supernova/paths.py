"""Where each artifact lives (mirrors the outs of dvc.yaml)."""

from pathlib import Path

DATA = Path("data")
METRICS = Path("metrics")

BASE_MODEL = DATA / "models" / "base"
SOURCE_ITEMS = DATA / "items" / "sources"          # <task>.parquet
TARGET_DEV = DATA / "items" / "targets" / "dev.parquet"
TARGET_TEST = DATA / "items" / "targets" / "test.parquet"
PROBE_DIR = DATA / "probe"                         # <task>.parquet
BASELINE_DEV = DATA / "baseline" / "dev.parquet"
BASELINE_TEST = DATA / "baseline" / "test.parquet"
SCORE_DIR = DATA / "score"                         # <task>.parquet (per-item eval of the task's RL probe)
UTILITY = DATA / "utility" / "utility.parquet"
MIXTURE = DATA / "mix" / "mixture.parquet"
MIXTURE_MANIFEST = Path("mixture.yaml")
SFT_SET = DATA / "sft" / "sft.parquet"
SFT_MANIFEST = Path("sft_set.yaml")
TRAINED_MODEL = DATA / "models" / "trained"
#: inside the trained model's folder: the precision and engines rl-train resolved on its machine
COMPUTE_RECORD = "compute.json"
TRAIN_SCRATCH = DATA / "scratch" / "rl-train"
SCORE_SCRATCH = DATA / "scratch" / "score"
TRAINED_EVAL = DATA / "eval" / "trained.parquet"



def probe_file(task: str) -> Path:
    return PROBE_DIR / f"{task}.parquet"


def score_file(task: str) -> Path:
    return SCORE_DIR / f"{task}.parquet"
