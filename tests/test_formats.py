"""Turning raw examples into verifiable items: label sets, distractors, exact and numeric."""

import pytest

from supernova.answer import is_correct
from supernova.errors import InputError
from supernova.formats import RawExample, make_items


def ex(q, *answers, **kw):
    return RawExample(question=q, answers=list(answers), **kw)


def test_label_set_becomes_mcq_with_fixed_choice_order():
    items, fmt = make_items([ex("q1", "Yes"), ex("q2", "No"), ex("q3", "yes")], source="s", task="t", skill="k")
    assert fmt == "mcq_labels"
    assert all(it.choices == ["No", "Yes"] for it in items)
    assert [it.answer for it in items] == ["B", "A", "B"]


def test_distractors_are_seeded_distinct_and_shuffle_the_gold_position():
    exs = [ex(f"q{i}", f"answer {i}") for i in range(20)]
    a, fmt = make_items(exs, source="s", task="t", skill="k", fmt="mcq", num_choices=4, label_set_max=8, seed=1)
    b, _ = make_items(exs, source="s", task="t", skill="k", fmt="mcq", num_choices=4, label_set_max=8, seed=1)
    c, _ = make_items(exs, source="s", task="t", skill="k", fmt="mcq", num_choices=4, label_set_max=8, seed=2)
    assert fmt == "mcq_distractors"
    assert [it.choices for it in a] == [it.choices for it in b]
    assert [it.choices for it in a] != [it.choices for it in c]
    for i, it in enumerate(a):
        assert len(set(it.choices)) == 4
        assert it.choices[ord(it.answer) - 65] == f"answer {i}"
    assert len({it.answer for it in a}) > 1


def test_auto_picks_numeric_for_numbers_and_exact_for_few_distinct_texts():
    items, fmt = make_items([ex(f"q{i}", str(i * 7)) for i in range(12)], source="s", task="t", skill="k")
    assert fmt == "numeric" and items[0].answer_type == "numeric" and items[0].choices == []
    items, fmt = make_items([ex("q1", "alpha beta", "ab"), ex("q2", "gamma")], source="s", task="t", skill="k",
                            fmt="exact")
    assert fmt == "exact"
    assert items[0].meta["aliases"] == ["ab"]
    assert is_correct("The answer is: ab", answer=items[0].answer, answer_type="exact", meta=items[0].meta)


def test_mcq_impossible_with_too_few_answers_names_task_and_field():
    with pytest.raises(InputError, match=r"task t: field format: cannot build multiple choice"):
        make_items([ex("q1", "same"), ex("q2", "same")], source="s", task="t", skill="k", fmt="mcq")


def test_given_choices_are_kept_and_gold_must_be_among_them():
    items, fmt = make_items([ex("q", "b", choices=["a", "b", "c"])], source="s", task="t", skill="k")
    assert fmt == "mcq_given" and items[0].answer == "B"
    with pytest.raises(InputError, match="gold answer is not among the choices"):
        make_items([ex("q", "z", choices=["a", "b"])], source="s", task="t", skill="k")


def test_uid_is_a_stable_content_hash():
    a, _ = make_items([ex("q1", "1"), ex("q2", "2")], source="s", task="t", skill="k", fmt="exact")
    b, _ = make_items([ex("q1", "1"), ex("q2", "2")], source="other", task="t", skill="k2", fmt="exact")
    assert [i.uid for i in a] == [i.uid for i in b]
    assert len({i.uid for i in a}) == 2
