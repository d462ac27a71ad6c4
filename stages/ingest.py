"""Stage ingest: source and target entries → verifiable items (per-task Parquet), metrics/ingest.json."""

from supernova import paths, stage
from supernova.answer import AnswerConfig
from supernova.config import check_data_root, check_entries, from_section
from supernova.ingest import IngestConfig, ingest, write_ingest
from supernova.model import context_length
from supernova.prompts import PromptConfig


def main(params: dict) -> None:
    from transformers import AutoTokenizer

    cfg = from_section(IngestConfig, params, "ingest")
    entries = {"sources": cfg.sources, "targets": cfg.targets}
    check_entries(entries)
    check_data_root(params.get("data_root"), entries)
    tok = AutoTokenizer.from_pretrained(paths.BASE_MODEL, trust_remote_code=False)
    result = ingest(cfg, seed=params.get("seed", 0), prompt=from_section(PromptConfig, params, "prompt"),
                    tokenizer=tok, context_length=context_length(paths.BASE_MODEL),
                    answer=from_section(AnswerConfig, params, "answer"))
    write_ingest(result, paths.SOURCE_ITEMS, paths.TARGET_DEV, paths.TARGET_TEST, paths.METRICS / "ingest.json")


if __name__ == "__main__":
    stage.run("ingest", main)
