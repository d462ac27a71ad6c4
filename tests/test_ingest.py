"""Ingest: dedup, decontamination, prompt-length skips, the dev/test split, atomic outputs."""

import json
from pathlib import Path

import pandas as pd
import pytest

from supernova.errors import InputError, ParamsError
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


FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
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


def test_every_long_loop_shows_a_bar_labelled_with_the_stage_and_the_tokenizers_model(tiny_model, capsys):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    entries = [{"kind": "superni", "path": str(FIXTURES_DIR / "superni")},
               {"kind": "bigbench", "path": str(FIXTURES_DIR / "bbh"), "tasks": ["boolean_expressions"]}]
    ingest(cfg(sources=entries), seed=0, prompt=PromptConfig(), tokenizer=tok, context_length=2048)
    err = capsys.readouterr().err
    for label in ("ingest load sources", "ingest load targets", f"ingest superni {FIXTURES_DIR / 'superni'}",
                  f"ingest bigbench {FIXTURES_DIR / 'bbh'}",
                  f"ingest check sources and prompt lengths [{tok.name_or_path}]",
                  f"ingest check targets and prompt lengths [{tok.name_or_path}]",
                  "ingest dedup and 13-gram decontamination of sources"):
        assert f"{label}: " in err, label


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
    with pytest.raises(ParamsError, match=r"params.yaml: task src: field ingest.sources\[1\]: task defined twice"):
        ingest(cfg(sources=[entry, entry]), seed=0, prompt=PromptConfig())


BBEH = FIXTURES_DIR / "bbeh_official" / "bbeh"
BBEH_ENTRY = {"kind": "bigbench", "path": str(BBEH / "benchmark_tasks"), "dev_items": str(BBEH / "mini" / "data.json"),
              "format": "exact", "verbatim": True}


def bbeh_cfg(**kw):
    return cfg(targets=[BBEH_ENTRY], **kw)


def test_bbeh_layout_ingests_whole_with_the_official_split_and_the_bbeh_checker():
    from supernova.answer import AnswerConfig

    res = ingest(bbeh_cfg(), seed=0, prompt=PromptConfig(), answer=AnswerConfig(checker="bbeh"))
    assert len(res.dev) + len(res.test) == 11                     # every item, the exact repeat included
    assert res.dev.groupby("task").size().to_dict() == {
        "bbeh_boolean_expressions": 1, "bbeh_sarc_triples": 1, "bbeh_spatial_reasoning": 1}
    assert res.test.groupby("task").size().to_dict() == {
        "bbeh_boolean_expressions": 3, "bbeh_sarc_triples": 2, "bbeh_spatial_reasoning": 3}
    both = pd.concat([res.dev, res.test])
    assert both["uid"].is_unique
    pills = both[both["answer"] == "pill bottle"]
    assert len(pills) == 2 and sorted(pills["uid"].isin(res.dev["uid"])) == [False, True]   # one repeat in mini
    metas = [json.loads(m) for m in both["meta"]]
    assert {m["checker"] for m in metas} == {"bbeh"} and {m["split"] for m in metas} == {"dev", "test"}
    # inputs and targets as written: free-form, no options taken out, no multiple choice BBEH does not pose
    assert set(both["answer_type"]) == {"exact"} and not any(len(c) for c in both["choices"])
    dev_bool = res.dev[res.dev["task"] == "bbeh_boolean_expressions"].iloc[0]
    assert dev_bool["answer"] == "(C)" and dev_bool["question"].startswith("Which of the following")
    assert res.report["targets"]["bbeh_sarc_triples"] == {"dev": 1, "test": 2, "format": "exact", "origin":
                                                          str(BBEH / "benchmark_tasks/bbeh_sarc_triples/task.json"),
                                                          "dropped": {}}


def test_bbeh_items_score_by_bbehs_rules():
    from supernova.answer import AnswerConfig, is_correct

    res = ingest(bbeh_cfg(), seed=0, prompt=PromptConfig(), answer=AnswerConfig(checker="bbeh"))
    rows = {r["answer"]: r for r in pd.concat([res.dev, res.test]).to_dict("records")}

    def right(text, gold):
        r = rows[gold]
        return is_correct(text, answer=r["answer"], answer_type=r["answer_type"], choices=r["choices"], meta=r["meta"])

    assert right("The answer is: 1,0,1", "1, 0, 1") and right("The answer is: C", "(C)")
    assert right("kettle", "[kettle]") and not right("The answer is: 101", "1, 0, 1")


def test_an_entry_checker_overrides_the_pipeline_default():
    from supernova.answer import AnswerConfig

    entry = {**BBEH_ENTRY, "checker": "lenient", "tasks": ["bbeh_sarc_triples"]}
    res = ingest(cfg(targets=[entry]), seed=0, prompt=PromptConfig(), answer=AnswerConfig(checker="bbeh"))
    assert {json.loads(m)["checker"] for m in res.test["meta"]} == {"lenient"}
    assert {json.loads(m)["checker"] for m in res.dev["meta"]} == {"lenient"}
    assert {it.meta["checker"] for t in res.sources for it in t.items} == {"bbeh"}


def test_a_target_item_over_the_prompt_budget_stops_ingest_naming_it(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    with pytest.raises(InputError) as e:
        ingest(bbeh_cfg(max_prompt_tokens=60), seed=0, prompt=PromptConfig(), tokenizer=tok)
    msg = str(e.value)
    assert "bbeh_boolean_expressions" in msg and "example 0: the prompt has" in msg and "over the budget of 60" in msg
    assert "ingest.max_prompt_tokens" in msg and "task.json" in msg


def test_target_duplicates_are_kept_and_source_duplicates_dropped():
    rows = [["same question", "1"], ["same question", "1"], ["other", "2"], ["third", "3"]]
    res = ingest(cfg(targets=[{"kind": "memory", "task": "tgt", "format": "exact", "rows": rows}]),
                 seed=0, prompt=PromptConfig())
    assert len(res.dev) + len(res.test) == 4 and pd.concat([res.dev, res.test])["uid"].is_unique
    assert res.report["targets"]["tgt"]["dropped"] == {}
    assert res.report["sources"]["src"]["dropped"]["duplicate"] == 1


def test_an_eval_only_target_goes_to_test_whole_and_never_to_dev():
    mmlu = {"kind": "hf", "dataset": str(FIXTURES_DIR / "mmlu_pro" / "test.jsonl"), "split": "test", "role": "eval",
            "task_column": "category", "columns": {"choices": "options", "answer_index": "answer_index"}}
    res = ingest(cfg(targets=[cfg().targets[0], mmlu]), seed=0, prompt=PromptConfig())
    assert set(res.dev["task"]) == {"tgt"}
    ood = res.test[res.test["task"].isin(["computer_science", "math"])]
    assert len(ood) == 9 and {json.loads(m)["role"] for m in ood["meta"]} == {"eval"}
    assert res.report["targets"]["computer_science"] == {
        "dev": 0, "test": 4, "format": "mcq_given", "origin": mmlu["dataset"], "dropped": {}, "role": "eval",
        "name_in_source": "computer science"}
    assert res.report["targets"]["math"]["dropped"] == {}                     # kept whole, the odd row counted
    assert res.report["targets"]["math"]["kept_as_given"] == {"gold_text_repeated": 1}


def test_a_benchmarks_own_test_split_is_drawn_down_to_target_test_size_and_its_dev_split_kept():
    whole = ingest(bbeh_cfg(target_test_size=None), seed=0, prompt=PromptConfig())
    drawn = ingest(bbeh_cfg(target_test_size=2), seed=0, prompt=PromptConfig())
    assert whole.test.groupby("task").size().to_dict() == {
        "bbeh_boolean_expressions": 3, "bbeh_sarc_triples": 2, "bbeh_spatial_reasoning": 3}
    assert drawn.test.groupby("task").size().to_dict() == {
        "bbeh_boolean_expressions": 2, "bbeh_sarc_triples": 2, "bbeh_spatial_reasoning": 2}
    assert set(drawn.test["uid"]) < set(whole.test["uid"]) and drawn.dev.equals(whole.dev)
    again = ingest(bbeh_cfg(target_test_size=2), seed=0, prompt=PromptConfig())
    assert again.test["uid"].tolist() == drawn.test["uid"].tolist()             # seeded


def test_role_is_for_targets_only():
    from supernova.errors import ParamsError

    src = {**cfg().sources[0], "role": "eval"}
    with pytest.raises(ParamsError, match=r"ingest.sources\[0\].role"):
        ingest(cfg(sources=[src]), seed=0, prompt=PromptConfig())


def test_dev_split_takes_what_the_test_split_leaves_beyond_half_the_items(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = [[f"target question {i}", str(i)] for i in range(12)]
    target = [{"kind": "memory", "task": "tgt", "format": "exact", "rows": rows}]
    sizes = {}
    for dev, test in ((8, 4), (8, 8), (16, None)):
        res = ingest(cfg(targets=target, target_dev_size=dev, target_test_size=test), seed=0, prompt=PromptConfig(),
                     tokenizer=tok, context_length=2048)
        assert not set(res.dev["uid"]) & set(res.test["uid"])
        sizes[dev, test] = (len(res.dev), len(res.test))
    assert sizes == {(8, 4): (8, 4), (8, 8): (6, 6), (16, None): (6, 6)}


def test_test_split_keeps_its_items_when_the_dev_size_changes(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = [[f"target question {i}", str(i)] for i in range(12)]
    target = [{"kind": "memory", "task": "tgt", "format": "exact", "rows": rows}]
    tests = [set(ingest(cfg(targets=target, target_dev_size=dev, target_test_size=4), seed=0, prompt=PromptConfig(),
                        tokenizer=tok, context_length=2048).test["uid"]) for dev in (2, 5, 8)]
    assert len(tests[0]) == 4 and tests[0] == tests[1] == tests[2]
