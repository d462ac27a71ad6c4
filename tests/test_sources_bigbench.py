"""kind: bigbench — BBH files, BBEH folders and BIG-bench target_scores, checked by the shared checker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supernova.answer import is_correct
from supernova.errors import InputError
from supernova.prompts import PromptConfig, messages
from supernova.sources import load_entry
from supernova.sources.bigbench import split_options

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BBH = str(FIXTURES / "bbh")


def load(path: str = BBH, **kw):
    return {t.task: t for t in load_entry({"kind": "bigbench", "path": path, **kw}, "ingest.targets[0]", 0)}


def test_bbh_folder_formats_with_format_exact():
    tasks = load(format="exact")
    assert {n: t.format for n, t in tasks.items()} == {
        "boolean_expressions": "exact", "causal_judgement": "exact", "date_understanding": "mcq_given",
        "dyck_languages": "exact", "object_counting": "numeric", "word_sorting": "exact"}
    assert tasks["date_understanding"].skipped == {"options_unreadable": 1, "ambiguous_options": 1,
                                                   "target_not_an_option": 1}
    assert tasks["causal_judgement"].items[0].question.endswith("Options:\n- Yes\n- No")   # stays as written
    assert tasks["dyck_languages"].items[0].meta["spellings"] == ["]]"]       # lenient only: not BBEH's rule
    assert tasks["causal_judgement"].items[0].meta["num_options"] == 2         # for the chance level
    assert tasks["word_sorting"].items[0].skill == "word_sorting"


def test_bbh_letter_options_become_given_choices_and_render_as_in_bbh():
    [t] = load(tasks=["date_understanding"]).values()
    it = t.items[0]
    assert it.question == "Today is Christmas Eve of 1937. What is the date tomorrow in MM/DD/YYYY?"
    assert (it.answer, it.choices) == ("B", ["12/11/1937", "12/25/1937", "01/04/1938", "12/04/1937"])
    assert it.meta == {"index": 0, "target": "(B)"}
    prompt = messages(it.to_row(), PromptConfig())[0]["content"]
    assert "MM/DD/YYYY?\n\nOptions:\n(A) 12/11/1937\n(B) 12/25/1937\n(C) 01/04/1938\n(D) 12/04/1937\n\n" in prompt


def test_with_format_auto_dash_options_become_choices_too():
    tasks = load(tasks=["causal_judgement", "boolean_expressions"])
    causal = tasks["causal_judgement"]
    assert causal.format == "mcq_given" and causal.items[1].choices == ["Yes", "No"]
    assert causal.items[1].answer == "B" and "Options:" not in causal.items[1].question
    assert tasks["boolean_expressions"].format == "mcq_labels"


def check(it, line: str) -> bool:
    return is_correct(line, answer=it.answer, answer_type=it.answer_type, choices=it.choices, meta=it.meta)


@pytest.mark.parametrize("task,index,right,wrong", [
    ("date_understanding", 0, ["The answer is: (B)", "The answer is: B", "The answer is: 12/25/1937",
                               "The answer is: (B) 12/25/1937"], ["The answer is: (A)", "The answer is: 12/11/1937"]),
    ("causal_judgement", 1, ["The answer is: No", "the answer is: no."], ["The answer is: Yes", "The answer is: (B)"]),
    ("boolean_expressions", 0, ["The answer is: False"], ["The answer is: True"]),
    ("word_sorting", 1, ["The answer is: apple mango pea"], ["The answer is: pea mango apple"]),
    ("dyck_languages", 0, ["The answer is: ] ]", "The answer is: ]]"], ["The answer is: ]", "The answer is: ) )"]),
    ("dyck_languages", 1, ["The answer is: ) >", "The answer is: )>"], ["The answer is: > )"]),
    ("object_counting", 0, ["The answer is: 3", "The answer is: 3 instruments"], ["The answer is: 4"]),
])
def test_checker_judges_bbh_answer_lines(task, index, right, wrong):
    it = load(tasks=[task], format="exact")[task].items[index]
    assert all(check(it, line) for line in right), it
    assert not any(check(it, line) for line in wrong), it
    assert not check(it, right[0].removeprefix("The answer is: "))   # no answer line, no credit


def test_bbh_mcq_checked_by_letter_under_format_auto_too():
    causal = load(tasks=["causal_judgement"])["causal_judgement"].items[1]
    assert check(causal, "The answer is: (B)") and check(causal, "The answer is: No")
    assert not check(causal, "The answer is: (A)")


def test_bbeh_folders_sanitised_names_and_list_targets():
    tasks = load(str(FIXTURES / "bbeh"), format="exact")
    assert sorted(tasks) == ["bbeh_time_arithmetic", "bbeh_word_sorting"]
    film = tasks["bbeh_time_arithmetic"].items[2]
    assert film.answer == "19:40" and film.meta["aliases"] == ["7:40 pm"]
    assert check(film, "The answer is: 7:40 PM") and not check(film, "The answer is: 19:45")
    [one] = load(str(FIXTURES / "bbeh" / "bbeh_word_sorting"), format="exact").values()
    assert one.task == "bbeh_word_sorting" and one.origin.endswith("bbeh_word_sorting/task.json")


def test_bigbench_target_scores_give_the_choices_and_the_top_choice_is_gold():
    [t] = load(str(FIXTURES / "bigbench" / "emoji_movie" / "task.json")).values()
    assert (t.task, t.format, t.skipped) == ("emoji_movie", "mcq_given", {"ambiguous_gold": 1})
    assert [(it.answer, it.choices) for it in t.items] == [
        ("A", ["the lion king", "finding nemo", "frozen"]), ("B", ["the lion king", "finding nemo", "frozen"]),
        ("C", ["the lion king", "finding nemo", "frozen"])]
    assert t.items[0].skill == "visual reasoning"           # the task's first keyword
    assert check(t.items[2], "The answer is: (C)") and check(t.items[2], "The answer is: Frozen")


def test_one_file_tasks_filter_and_cap():
    [t] = load(f"{BBH}/object_counting.json", format="exact").values()
    assert t.task == "object_counting" and t.format == "numeric"
    capped = load(tasks=["word_sorting", "dyck_languages"], max_items=2, format="exact")
    assert sorted(capped) == ["dyck_languages", "word_sorting"] and all(len(t.items) == 2 for t in capped.values())
    with pytest.raises(InputError, match=r"field tasks: no sub-task 'nope' \(available: boolean_expressions"):
        load(tasks=["nope"])


@pytest.mark.parametrize("text,expected", [
    ("Q?\nOptions:\n(A) x\n(B) y", ("Q?", ["x", "y"], "letter")),
    ("Q?\nOptions:\n- Yes\n- No\n", ("Q?", ["Yes", "No"], "dash")),
    ("Q?\nOptions:\n(A) x\n(C) y", None),                      # letters out of order
    ("Q?\nOptions:\n(A) x", None),                             # truncated block
    ("Q? Options: (A) x (B) y", None),                         # not a block of lines
])
def test_split_options(text, expected):
    assert split_options(text) == expected


def test_lettered_options_in_a_bbeh_input_without_a_header_count_for_the_chance_level(tmp_path):
    from supernova.sources.bigbench import lettered_options

    question = "Which caption is the funniest?\n(A) one\n(B) two,\nover two lines\n(C) three\n"
    assert lettered_options(question) == 3
    assert lettered_options("(A) one\n(C) three") == 0 and lettered_options("No options. (A)") == 0
    assert lettered_options("(A) one\n(B) two\nPick one.\n(A) yes\n(B) no\n(C) maybe") == 3   # the last list
    sub = tmp_path / "bbeh_nycc"
    sub.mkdir()
    (sub / "task.json").write_text(json.dumps({"examples": [
        {"input": question, "target": "(B)"}, {"input": question, "target": "(D)"},
        {"input": "How many? Reply with a number.", "target": "3"}]}))
    [t] = load(str(tmp_path), format="exact", verbatim=True).values()
    assert [it.meta.get("num_options") for it in t.items] == [3, None, None]   # (D) is not among them
    assert t.items[0].question == question and t.items[0].answer_type == "exact"
