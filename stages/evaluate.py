"""Stage evaluate: the trained model on the target test split vs the base model, sampled (pass@k)
and teacher-forced; metrics/eval.json (evaluation-only targets in their own ``ood`` block) and plot
data (pass@k curve, per-sub-task bars)."""

from supernova import paths, stage
from supernova.config import from_section
from supernova.evaluation import EvalConfig, sample_and_check
from supernova.report import eval_report
from supernova.generation import GenerationConfig, load_generator
from supernova.hardware import ComputeConfig, record
from supernova.io import read_json, write_json
from supernova.likelihood import score_model
from supernova.prompts import PromptConfig
from supernova.schema import EVAL, ITEM, LIKELIHOOD, read_meta, read_table, write_table


def main(params: dict) -> None:
    ev = from_section(EvalConfig, params, "evaluate")
    prompt = from_section(PromptConfig, params, "prompt")
    items = read_table(paths.TARGET_TEST, ITEM)
    gen = load_generator(paths.TRAINED_MODEL, from_section(GenerationConfig, params, "generation"),
                         from_section(ComputeConfig, params, "compute"), seed=ev.seed)
    try:
        trained = sample_and_check(gen, items, prompt, ev.sampling, model="trained", desc="evaluate")
    finally:
        gen.close()
    resolved = {"evaluate": record(generation=gen.settings), "baseline": read_meta(paths.BASELINE_TEST).get("compute"),
                "rl_train": read_json(paths.TRAINED_MODEL / paths.COMPUTE_RECORD)}
    write_table(paths.TRAINED_EVAL, trained, EVAL, meta={"compute": resolved["evaluate"]})
    trained_tf = score_model(paths.TRAINED_MODEL, items, prompt, model="trained")
    write_table(paths.TRAINED_LIKELIHOOD, trained_tf, LIKELIHOOD)
    metrics, curve, bars = eval_report(read_table(paths.BASELINE_TEST, EVAL), trained, ev, items,
                                       read_table(paths.BASELINE_TEST_LIKELIHOOD, LIKELIHOOD), trained_tf)
    metrics["compute"] = resolved
    write_json(paths.METRICS / "eval.json", metrics)
    write_json(paths.METRICS / "plots" / "eval_passk.json", curve)
    write_json(paths.METRICS / "plots" / "eval_subtasks.json", bars)


if __name__ == "__main__":
    stage.run("evaluate", main)
