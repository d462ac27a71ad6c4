"""kind: hf — local Parquet/JSONL/CSV files through datasets.load_dataset, column mapping, tasks, offline."""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd
import pytest

from supernova.answer import is_correct
from supernova.errors import InputError, ParamsError
from supernova.sources import load_entry
from supernova.sources.hf import answer_texts, choice_index, default_task

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hf"


def load(dataset, **kw):
    return {t.task: t for t in load_entry({"kind": "hf", "dataset": str(dataset), **kw}, "ingest.sources[0]", 0)}


def test_jsonl_with_alias_lists_and_a_skill_column():
    [t] = load(FIXTURES / "qa.jsonl", task="trivia", format="exact",
               columns={"answer": "answers", "skill": "topic"}).values()
    assert (t.task, t.format, len(t.items)) == ("trivia", "exact", 5)
    ocean = t.items[2]
    assert (ocean.answer, ocean.meta["aliases"], ocean.skill) == ("Pacific Ocean", ["Pacific"], "geography")
    assert ocean.meta == {"dataset": str(FIXTURES / "qa.jsonl"), "split": "train", "row": 2, "aliases": ["Pacific"]}
    assert t.items[4].skill == "trivia"                 # empty skill cell: the task's skill
    assert is_correct("The answer is: pacific", answer=ocean.answer, answer_type="exact", meta=ocean.meta)


def test_csv_numbers_default_task_name_and_any_split_name():
    [t] = load(FIXTURES / "numbers.csv", split="test", format="exact",
               columns={"question": "q", "answer": "a"}).values()
    assert (t.task, t.format, [it.answer for it in t.items]) == ("numbers", "numeric", ["4", "42", "8", "7"])
    assert t.items[0].source == f"hf:{FIXTURES / 'numbers.csv'}:test"


def test_choices_column_with_index_answers_and_a_task_column():
    tasks = load(FIXTURES / "mcq.jsonl", task_column="subject",
                 columns={"question": "prompt", "choices": "options", "answer": "label"})
    assert sorted(tasks) == ["astronomy", "chemistry"]
    astro, chem = tasks["astronomy"], tasks["chemistry"]
    assert astro.format == "mcq_given" and [it.answer for it in astro.items] == ["B", "A"]
    assert chem.skipped == {"ambiguous_choices": 1}                 # "Oxygen" twice among the choices
    assert [it.answer for it in chem.items] == ["B", "B"]
    gold = chem.items[1]
    assert is_correct("The answer is: (B)", answer=gold.answer, answer_type="mcq", choices=gold.choices)
    assert is_correct("The answer is: Au", answer=gold.answer, answer_type="mcq", choices=gold.choices)


def test_answer_given_as_choice_text_or_letter():
    [t] = load(FIXTURES / "mcq_text.jsonl", task="planets", columns={
        "question": "prompt", "choices": "options", "answer": "label"}).values()
    assert [it.answer for it in t.items] == ["A", "B", "B"]


def test_parquet_file_and_a_cap(tmp_path):
    path = tmp_path / "arith.parquet"
    pd.DataFrame({"question": [f"What is {i} + {i}?" for i in range(12)],
                  "answer": [2 * i for i in range(12)]}).to_parquet(path)
    [t] = load(path, max_items=5).values()
    assert (t.task, t.format, len(t.items)) == ("arith", "numeric", 5)
    assert all(int(it.answer) == 2 * it.meta["row"] for it in t.items)


@pytest.mark.parametrize("value,expected", [
    ("Oslo", ["Oslo"]), (42, ["42"]), (2.5, ["2.5"]), (True, ["True"]),
    (["red", "blue", "red"], ["red", "blue"]), ("  ", None), (None, None), ([], None), ({"a": 1}, None),
])
def test_answer_cells(value, expected):
    assert answer_texts(value) == expected


@pytest.mark.parametrize("value,expected", [
    (1, 1), (3, None), ("b", 1), ("(C)", 2), ("Mars", 2), ("mars", 2), ("Pluto", None), (True, None),
])
def test_choice_index(value, expected):
    assert choice_index(value, ["Venus", "Mercury", "Mars"]) == expected


def test_default_task_names():
    assert default_task("openai/gsm8k", "main") == "gsm8k-main"
    assert default_task("data/train.parquet", None) == "train"


@pytest.mark.parametrize("entry,error,where", [
    ({"task": "a", "task_column": "b"}, ParamsError, "field ingest.sources.0..task_column: give task or task_column"),
    ({"columns": {"prompt": "question"}}, ParamsError, "field ingest.sources.0..columns.prompt: unknown item field"),
    ({"split": ""}, ParamsError, "field ingest.sources.0..split"),
    ({"columns": {"question": "nope"}}, InputError, "task qa: field columns.question: no column 'nope'"),
    ({"columns": {"answer": "answers"}, "task_column": "topic"}, InputError,
     r"field task_column: row 4 \(column 'topic'\): is empty"),
])
def test_bad_entries_are_one_line(entry, error, where):
    with pytest.raises(error, match=where) as caught:
        load(FIXTURES / "qa.jsonl", **entry)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not datasets.config.HF_HUB_OFFLINE, reason="needs HF_HUB_OFFLINE=1")
def test_hub_id_offline_is_a_clear_error():
    with pytest.raises(InputError) as caught:
        load("someorg/not-a-cached-dataset", name="main")
    assert str(caught.value) == (
        "someorg/not-a-cached-dataset: field dataset: hub dataset is not in the local cache and HF_HUB_OFFLINE=1 "
        "is set (download it once online, or give a local Parquet/JSONL/JSON/CSV path)")


MMLU_PRO = Path(__file__).resolve().parent / "fixtures" / "mmlu_pro" / "test.jsonl"


MMLU_COLUMNS = {"choices": "options", "answer_index": "answer_index"}


def test_mmlu_pro_layout_categories_become_task_names_and_index_answers():
    tasks = load(MMLU_PRO, split="test", task_column="category", columns=MMLU_COLUMNS)
    assert sorted(tasks) == ["computer_science", "math"]
    cs, math = tasks["computer_science"], tasks["math"]
    assert cs.name_in_source == "computer science" and math.name_in_source is None
    assert math.skipped == {"ambiguous_choices": 1} and len(math.items) == 4    # a source skips "'1'" beside "1"
    grade = cs.items[2]                     # option texts are letters: the index, not the letter, picks the gold
    assert (grade.answer, grade.choices[0]) == ("A", "B")
    assert len(cs.items[3].choices) == 10 and cs.items[3].answer == "B"


def load_target(dataset, role="eval", **kw):
    entry = {"kind": "hf", "dataset": str(dataset), "split": "test", "role": role, **kw}
    return {t.task: t for t in load_entry(entry, "ingest.targets[1]", 0)}


@pytest.mark.parametrize("role", ["eval", "target"])
def test_a_target_keeps_a_repeated_gold_text_scored_by_its_index_and_counts_it(role):
    math = load_target(MMLU_PRO, role, task_column="category", columns=MMLU_COLUMNS)["math"]
    assert len(math.items) == 5 and math.skipped == {} and math.kept_as_given == {"gold_text_repeated": 1}
    [odd] = [it for it in math.items if it.meta.get("gold_text_repeated")]
    assert (odd.choices, odd.answer) == (["'1'", "0", "1", "-1"], "C")            # the row's answer_index 2, not A
    assert is_correct("The answer is: (C)", answer=odd.answer, answer_type="mcq", choices=odd.choices)
    assert not is_correct("The answer is: (A)", answer=odd.answer, answer_type="mcq", choices=odd.choices)


SUPERNOVA_MMLU = MMLU_PRO.parent / "supernova.json"


def test_supernovas_mmlu_pro_copy_reads_by_src_and_tasks_selects():
    every = load_target(SUPERNOVA_MMLU, task_column="src", columns=MMLU_COLUMNS)
    assert sorted(every) == ["ori_mmlu-elementary_mathematics", "ori_mmlu-high_school_biology",
                             "ori_mmlu-high_school_psychology", "ori_mmlu-professional_law", "stemez-Business"]
    heart = every["ori_mmlu-high_school_biology"].items[0]
    assert (heart.answer, heart.choices[2], heart.answer_type) == ("C", "Heart", "mcq")
    chosen = load_target(SUPERNOVA_MMLU, task_column="src", columns=MMLU_COLUMNS, max_items=1,
                         tasks=["stemez-Business", "ori_mmlu-high_school_psychology"])
    assert {t: len(v.items) for t, v in chosen.items()} == {"stemez-Business": 1, "ori_mmlu-high_school_psychology": 1}
    spelled = load_target(MMLU_PRO, task_column="category", columns=MMLU_COLUMNS, tasks=["computer science"])
    assert list(spelled) == ["computer_science"]                          # as the column spells it, or as the task
    with pytest.raises(InputError, match=r"field tasks: no task 'stemez-Biology' \(available: ori_mmlu-"):
        load_target(SUPERNOVA_MMLU, task_column="src", columns=MMLU_COLUMNS, tasks=["stemez-Biology"])


def test_letter_answers_can_be_read_as_option_text_which_is_why_the_index_column_exists():
    tasks = load(MMLU_PRO, split="test", task_column="category", columns={"choices": "options"})
    assert tasks["computer_science"].items[2].answer == "B"   # "A" matched the option whose text is "A"


def test_answer_index_out_of_range_is_one_line_naming_the_row(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"question": "q?", "options": ["x", "y"], "answer_index": 5}\n')
    with pytest.raises(InputError, match=r"row 0 \(column 'answer_index'\): must be a choice index 0..1, got 5"):
        load(f, columns={"choices": "options", "answer_index": "answer_index"})
