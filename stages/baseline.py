"""Stage baseline: the base model on the target dev split (the utility runs' reference: sampled on
the items the sampled pass@k uses, teacher-forced on every item, its encoding below the layers
utility runs train kept) and on the test split (sampled and teacher-forced)."""

from supernova import paths, stage
from supernova.config import from_section
from supernova.evaluation import EvalConfig, sample_and_check
from supernova.generation import GenerationConfig, load_generator
from supernova.hardware import ComputeConfig, record
from supernova.prompts import PromptConfig
from supernova.schema import EVAL, ITEM, LIKELIHOOD, read_table, write_table
from supernova.likelihood import score_model
from supernova.scoring import ScoreConfig, sampled_items


def main(params: dict) -> None:
    ev = from_section(EvalConfig, params, "evaluate")
    prompt = from_section(PromptConfig, params, "prompt")
    score = from_section(ScoreConfig, params, "score")
    dev = read_table(paths.TARGET_DEV, ITEM)
    gen = load_generator(paths.BASE_MODEL, from_section(GenerationConfig, params, "generation"),
                         from_section(ComputeConfig, params, "compute"), seed=ev.seed)
    try:
        for split, items, dst in (("dev", sampled_items(dev, score.sample_items), paths.BASELINE_DEV),
                                  ("test", read_table(paths.TARGET_TEST, ITEM), paths.BASELINE_TEST)):
            res = sample_and_check(gen, items, prompt, ev.sampling, model="base", desc=f"baseline {split}")
            write_table(dst, res, EVAL, meta={"compute": record(generation=gen.settings)})
    finally:
        gen.close()
    write_table(paths.BASELINE_DEV_LIKELIHOOD, score_model(
        paths.BASE_MODEL, dev, prompt, dtype=score.grpo.dtype, train_top_layers=score.grpo.train_top_layers,
        hidden_path=paths.BASELINE_DEV_HIDDEN), LIKELIHOOD)
    write_table(paths.BASELINE_TEST_LIKELIHOOD, score_model(paths.BASE_MODEL, read_table(paths.TARGET_TEST, ITEM), prompt),
                LIKELIHOOD)


if __name__ == "__main__":
    stage.run("baseline", main)
