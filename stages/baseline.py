"""Stage baseline: the base model on the target dev split (utility reference) and test split."""

from supernova import paths, stage
from supernova.config import from_section
from supernova.evaluation import EvalConfig, sample_and_check
from supernova.generation import GenerationConfig, load_generator
from supernova.hardware import ComputeConfig, record
from supernova.prompts import PromptConfig
from supernova.schema import EVAL, ITEM, read_table, write_table


def main(params: dict) -> None:
    ev = from_section(EvalConfig, params, "evaluate")
    prompt = from_section(PromptConfig, params, "prompt")
    gen = load_generator(paths.BASE_MODEL, from_section(GenerationConfig, params, "generation"),
                         from_section(ComputeConfig, params, "compute"), seed=ev.seed)
    try:
        for split, src, dst in (("dev", paths.TARGET_DEV, paths.BASELINE_DEV),
                                ("test", paths.TARGET_TEST, paths.BASELINE_TEST)):
            res = sample_and_check(gen, read_table(src, ITEM), prompt, ev.sampling, model="base",
                                   desc=f"baseline {split}")
            write_table(dst, res, EVAL, meta={"compute": record(generation=gen.settings)})
    finally:
        gen.close()


if __name__ == "__main__":
    stage.run("baseline", main)
