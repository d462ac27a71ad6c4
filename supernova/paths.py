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
BASELINE_DEV_LIKELIHOOD = DATA / "baseline" / "dev_likelihood.parquet"   # LIKELIHOOD of the base on every dev item
BASELINE_DEV_HIDDEN = DATA / "baseline" / "dev_hidden.safetensors"       # its encoding below the trained layers
BASELINE_TEST_LIKELIHOOD = DATA / "baseline" / "test_likelihood.parquet"  # LIKELIHOOD of the base on every test item
SCORE_DIR = DATA / "score"                         # <round>/<task>/: see supernova.score.score_unit
HALVING_DIR = DATA / "halving"                     # <round>/<task>.json: which tasks a round runs
UTILITY = DATA / "utility" / "utility.parquet"     # per run (task, seed): UTILITY rows
UTILITY_MATRIX = DATA / "utility" / "matrix.parquet"
TASK_UTILITY = DATA / "utility" / "tasks.parquet"
MIXTURE = DATA / "mix" / "mixture.parquet"
MIXTURE_MANIFEST = Path("mixture.yaml")
SFT_SET = DATA / "sft" / "sft.parquet"
SFT_MANIFEST = Path("sft_set.yaml")
TRAINED_MODEL = DATA / "models" / "trained"
#: inside the trained model's folder: the precision and engines rl-train resolved on its machine
COMPUTE_RECORD = "compute.json"
TRAIN_SCRATCH = DATA / "scratch" / "rl-train"
SCORE_SCRATCH = DATA / "scratch" / "score"
TEACHER_SCRATCH = DATA / "scratch" / "sft-teacher"   # an embedded teacher model, converted for sft-select
TRAINED_EVAL = DATA / "eval" / "trained.parquet"
TRAINED_LIKELIHOOD = DATA / "eval" / "trained_likelihood.parquet"



def probe_file(task: str) -> Path:
    return PROBE_DIR / f"{task}.parquet"


def score_dir(round_: str, task: str) -> Path:
    """One score stage's outputs: ``utility.parquet`` (UTILITY), ``items.parquet`` (SCORE_EVAL),
    ``likelihood.parquet`` (SCORE_LIKELIHOOD), ``heldout_base.parquet`` (LIKELIHOOD) and
    ``runs.parquet`` (RUNS)."""
    return SCORE_DIR / round_ / task


def promotion_file(round_: str, task: str) -> Path:
    return HALVING_DIR / round_ / f"{task}.json"
