"""Ingest: dedup, decontamination, prompt-length skips, the dev/test split, atomic outputs."""

import json

import pandas as pd
import pytest

from supernova.errors import InputError
from supernova.ingest import Decontaminator, IngestConfig, ingest, write_ingest
from supernova.prompts import PromptConfig
from supernova.schema import ITEM, read_table
from supernova.sources import TaskItems, register
from supernova.formats import RawExample, make_items

# An in-memory source kind for tests: {kind: memory, task: ..., rows: [[question, answer], ...]}


@register("memory", {"task": None, "rows": []})
def _memory(entry, seed):
    exs = [RawExample(q, [a]) for q, a in entry["rows"]]
    items, fmt = make_items(exs, source="memory", task=entry["task"], skill="test", fmt=entry["format"], seed=seed)
    return [TaskItems(entry["task"], items, fmt, f"memory:{entry['task']}")]


LONG_TARGET = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat today"


def cfg(**kw):
    base = dict(
        sources=[{"kind": "memory", "task": "src", "format": "exact", "rows": [
            ["What is 1 + 1?", "2"], ["What is 1 + 1 ?", "2"],            # duplicate after normalisation
            [f"Context: {LONG_TARGET}. Who sleeps?", "cat"],              # shares a 13-gram with a target
            ["What is 2 + 3?", "5"], ["x " * 400, "1"]]}],                # last one is too long
        targets=[{"kind": "memory", "task": "tgt", "format": "exact",
                  "rows": [[f"{LONG_TARGET}?", "yes"]] + [[f"target question {i}", str(i)] for i in range(9)]}],
        target_dev_size=3, target_test_size=4, max_prompt_tokens=200)
    base.update(kw)
    return IngestConfig(**base)


def test_dedup_decontam_too_long_and_split(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    res = ingest(cfg(), seed=0, prompt=PromptConfig(), tokenizer=tok, context_length=2048)
    [src] = res.sources
    assert [it.question for it in src.items] == ["What is 1 + 1?", "What is 2 + 3?"]
    assert src.skipped == {"duplicate": 1, "contaminated": 1, "too_long": 1}
    assert len(res.dev) == 3 and len(res.test) == 4
    assert not set(res.dev["uid"]) & set(res.test["uid"])
    rep = res.report
    assert rep["sources"]["src"]["dropped"] == {"contaminated": 1, "duplicate": 1, "too_long": 1}
    assert rep["targets"]["tgt"]["dev"] == 3 and rep["totals"]["dropped_contaminated"] == 1
    again = ingest(cfg(), seed=0, prompt=PromptConfig(), tokenizer=tok, context_length=2048)
    assert again.dev["uid"].tolist() == res.dev["uid"].tolist()


def test_decontaminator_short_and_long_texts():
    d = Decontaminator([LONG_TARGET, "Short target?"], n=13)
    assert d.contaminated("prefix " + LONG_TARGET.upper() + " suffix")
    assert d.contaminated("short   TARGET")
    assert not d.contaminated("the quick brown fox jumps over the lazy dog")


def test_write_is_atomic_and_readable_by_datasets(tmp_path, tiny_model):
    from datasets import load_dataset

    res = ingest(cfg(), seed=0, prompt=PromptConfig())
    write_ingest(res, tmp_path / "sources", tmp_path / "targets" / "dev.parquet", tmp_path / "targets" / "test.parquet",
                 tmp_path / "ingest.json")
    df = read_table(tmp_path / "sources" / "src.parquet", ITEM)
    assert list(df.columns) == ITEM.names
    ds = load_dataset("parquet", data_files=str(tmp_path / "targets" / "dev.parquet"), split="train")
    assert ds.column_names == ITEM.names and len(ds) == 3
    assert json.loads((tmp_path / "ingest.json").read_text())["totals"]["source_items"] == 3
    assert not [p for p in tmp_path.rglob(".*") if p.name.startswith(".")]


def test_task_left_empty_is_an_error():
    bad = cfg(sources=[{"kind": "memory", "task": "src", "format": "exact", "rows": [[f"{LONG_TARGET}?", "x"]]}])
    with pytest.raises(InputError, match=r"memory:src: task src: no items left after filtering"):
        ingest(bad, seed=0, prompt=PromptConfig())


def test_same_task_twice_is_an_error():
    entry = {"kind": "memory", "task": "src", "format": "exact", "rows": [["q", "1"]]}
    with pytest.raises(InputError, match="task defined twice"):
        ingest(cfg(sources=[entry, entry]), seed=0, prompt=PromptConfig())
