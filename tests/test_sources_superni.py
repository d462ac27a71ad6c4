"""kind: superni — SuperNI task files to items: question layout, answers, filters, skills, caps."""

from __future__ import annotations

from pathlib import Path

import pytest

from supernova.answer import is_correct
from supernova.errors import ParamsError
from supernova.ingest import IngestConfig, ingest
from supernova.prompts import PromptConfig
from supernova.sources import load_entry

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SUPERNI = str(FIXTURES / "superni")
SHARED = ROOT.parent / "shared" / "data"
CAPITALS = "task9001_country_capital_mini"
ARITHMETIC = "task9002_word_problems_mini"
ROOMS = "task9003_room_location_mini"


def load(**kw):
    return {t.task: t for t in load_entry({"kind": "superni", "path": SUPERNI, **kw}, "ingest.sources[0]", 0)}


def test_every_task_file_becomes_a_task_with_its_format_skill_and_origin():
    tasks = load()
    assert sorted(tasks) == [CAPITALS, ARITHMETIC, ROOMS]
    assert {n: t.format for n, t in tasks.items()} == {
        CAPITALS: "mcq_distractors", ARITHMETIC: "numeric", ROOMS: "mcq_labels"}
    assert tasks[CAPITALS].items[0].skill == "Misc."                       # no Reasoning: first Category
    assert tasks[ARITHMETIC].items[0].skill == "Numerical Reasoning"       # first Reasoning tag
    assert tasks[ROOMS].items[0].skill == "Commonsense Reasoning -> Spatial Reasoning"
    assert tasks[CAPITALS].origin == f"{SUPERNI}/{CAPITALS}.json"
    assert tasks[CAPITALS].items[0].source == f"superni:{SUPERNI}/{CAPITALS}.json"
    assert [it.meta["id"] for it in tasks[CAPITALS].items] == [f"task9001-{i}" for i in range(1, 13)]
    assert tasks[ROOMS].items[0].choices == ["No", "Yes"]


def test_question_is_definition_then_input_and_answers_keep_aliases():
    [t] = load(tasks=[CAPITALS], format="exact").values()
    italy = t.items[1]
    assert italy.question == ("In this task, you are given a country name and you need to return the capital city "
                              "of the given country.\n\nInput: Italy")
    assert (italy.answer, italy.answer_type, italy.meta["aliases"]) == ("Rome", "exact", ["Roma"])
    for line in ("The answer is: Rome", "The answer is: roma."):
        assert is_correct(line, answer=italy.answer, answer_type="exact", meta=italy.meta)
    assert not is_correct("The answer is: Milan", answer=italy.answer, answer_type="exact", meta=italy.meta)


def test_definition_can_be_left_out_and_few_shot_examples_prepended():
    [bare] = load(tasks=[CAPITALS], definition=False).values()
    assert bare.items[0].question == "France"
    [shots] = load(tasks=[CAPITALS], few_shot=2).values()
    q = shots.items[0].question
    assert q.index("return the capital city") < q.index("Example 1:\nInput: United States\nOutput: Washington") \
        < q.index("Example 2:\nInput: India\nOutput: New Delhi") < q.index("Input: France")
    [more] = load(tasks=[ARITHMETIC], few_shot=5).values()          # the task has one positive example
    assert "Example 1:" in more.items[0].question and "Example 2:" not in more.items[0].question


@pytest.mark.parametrize("field,value,expected", [
    ("tasks", ["task9002"], [ARITHMETIC]),                            # task id
    ("tasks", [ROOMS, CAPITALS], [CAPITALS, ROOMS]),                  # file stems
    ("categories", ["question answering"], [ARITHMETIC, ROOMS]),      # case-insensitive
    ("reasoning", ["Commonsense Reasoning"], [ROOMS]),                # top level of "A -> B"
    ("reasoning", ["Mathematics -> Arithmetic"], [ARITHMETIC]),
])
def test_filters(field, value, expected):
    assert sorted(load(**{field: value})) == expected


def test_filters_that_match_nothing_are_params_errors():
    with pytest.raises(ParamsError, match=r"params.yaml: field ingest.sources\[0\].reasoning: no task in .* matches"):
        load(reasoning=["Abductive Reasoning"])
    with pytest.raises(ParamsError, match=r"field ingest.sources\[0\].tasks: no task file for 'task42'"):
        load(tasks=["task42"])
    with pytest.raises(ParamsError, match=r"field ingest.sources\[0\].definition: must be true or false"):
        load(definition="yes")


def test_one_file_and_a_seeded_cap():
    path = f"{SUPERNI}/{CAPITALS}.json"
    [a] = load_entry({"kind": "superni", "path": path, "max_items": 3}, "x", 0)
    [b] = load_entry({"kind": "superni", "path": path, "max_items": 3}, "x", 0)
    [c] = load_entry({"kind": "superni", "path": path, "max_items": 3, "seed": 7}, "x", 0)
    assert a.task == CAPITALS and len(a.items) == 3
    assert [i.uid for i in a.items] == [i.uid for i in b.items]
    assert {i.meta["id"] for i in a.items} != {i.meta["id"] for i in c.items}


def test_ingest_reports_superni_formats_and_skills():
    cfg = IngestConfig(sources=[{"kind": "superni", "path": SUPERNI}],
                       targets=[{"kind": "bigbench", "path": str(FIXTURES / "bbh"), "format": "exact"}],
                       target_dev_size=1, target_test_size=2)
    rep = ingest(cfg, seed=0, prompt=PromptConfig()).report
    assert rep["sources"][ARITHMETIC] == {"items": 12, "format": "numeric", "skill": "Numerical Reasoning",
                                          "origin": f"{SUPERNI}/{ARITHMETIC}.json", "dropped": {}}
    assert rep["totals"]["source_tasks"] == 3 and rep["totals"]["target_subtasks"] == 6


@pytest.mark.skipif(not (SHARED / "superni" / "tasks").is_dir() or not (SHARED / "bbh" / "tasks").is_dir(),
                    reason="the development data (../shared/data) is not present")
def test_real_data_all_superni_tasks_and_all_bbh_files(tiny_model):
    """All 80 SuperNI tasks and all 27 BBH files ingest with the model's tokenizer (its time: bench/ingest.py)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    cfg = IngestConfig(sources=[{"kind": "superni", "path": str(SHARED / "superni" / "tasks"), "max_items": 48}],
                       targets=[{"kind": "bigbench", "path": str(SHARED / "bbh" / "tasks"), "format": "exact"}],
                       target_dev_size=4, target_test_size=8, max_prompt_tokens=768)
    rep = ingest(cfg, seed=0, prompt=PromptConfig(), tokenizer=tok, context_length=8192).report
    assert rep["totals"]["source_tasks"] == 80 and rep["totals"]["target_subtasks"] == 27
    assert all(s["items"] > 0 for s in rep["sources"].values())
    assert all(t["dev"] == 4 and t["test"] == 8 for t in rep["targets"].values())
    assert rep["sources"]["task388_torque_token_classification"]["dropped"]["blank_output"] == 2  # upstream [""]
    assert rep["targets"]["ruin_names"]["dropped"]["target_not_an_option"] == 2
