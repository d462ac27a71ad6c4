"""Synthetic interventions: each rewrites items verifiably; the checker enforces constraints."""

import json

import pandas as pd
import pytest

from supernova.answer import is_correct
from supernova.errors import ParamsError
from supernova.interventions import InterventionConfig, apply
from supernova.prompts import gold_completion, messages, PromptConfig
from supernova.schema import ITEM, Item, items_frame


def mixture(n=20):
    items = []
    for i in range(n):
        if i % 2:
            items.append(Item("s", "mcq_task", "logic", f"Is {i} odd?", "B", ["No", "Yes"], "mcq"))
        else:
            items.append(Item("s", "num_task", "arithmetic", f"What is {i} + 1?", str(i + 1), [], "numeric"))
    return items_frame(items)


def correct_completion(row):
    return gold_completion(row)


@pytest.mark.parametrize("name", ["anti_prior", "long_context", "multi_hop", "constraints"])
def test_each_intervention_rewrites_its_fraction_and_stays_checkable(name):
    df = mixture()
    out, counts = apply(df, InterventionConfig(**{name: 0.5}), seed=0)
    assert counts[name] == 10 and sum(counts.values()) == 10
    assert list(out.columns) == ITEM.names and len(out) == len(df)
    changed = out[out["source"] == f"intervention:{name}"]
    assert len(changed) == 10 and changed["uid"].is_unique and not set(changed["uid"]) & set(df["uid"])
    for row in changed.to_dict("records"):
        meta = json.loads(row["meta"])
        assert meta["intervention"] == name
        assert is_correct(correct_completion(row), answer=row["answer"], answer_type=row["answer_type"],
                          choices=row["choices"], meta=row["meta"])
        messages(row, PromptConfig())  # renders


def test_anti_prior_states_a_wrong_answer():
    out, _ = apply(mixture(), InterventionConfig(anti_prior=1.0), seed=0)
    for row in out.to_dict("records"):
        prior = json.loads(row["meta"])["misleading_prior"]
        assert prior in row["question"]
        assert not is_correct(f"The answer is: {prior.split(')')[0].strip('(') if row['answer_type'] == 'mcq' else prior}",
                              answer=row["answer"], answer_type=row["answer_type"], choices=row["choices"])


def test_multi_hop_answer_depends_on_the_first_problem():
    out, _ = apply(mixture(40), InterventionConfig(multi_hop=1.0), seed=1)
    orig = {r["uid"]: r for r in mixture(40).to_dict("records")}
    branches = set()
    for row in out.to_dict("records"):
        first, second, third = json.loads(row["meta"])["hop_items"]
        f = orig[first]
        gold_first = f"({f['answer']}) {f['choices'][ord(f['answer']) - 65]}" if f["answer_type"] == "mcq" else f["answer"]
        claim_true = f"If the answer to Problem 1 is {gold_first}," in row["question"]
        expected = orig[second if claim_true else third]["answer"]
        assert row["answer"] == expected
        branches.add(claim_true)
    assert branches == {True, False}


def test_constraints_fail_an_otherwise_correct_plain_answer():
    out, counts = apply(mixture(), InterventionConfig(constraints=1.0), seed=0)
    kinds = set()
    for row in out.to_dict("records"):
        c = json.loads(row["meta"])["constraint"]
        kinds.add(c["kind"])
        plain = "The answer is: " + (f"({row['answer']})" if row["answer_type"] == "mcq" else row["answer"])
        ok = is_correct(plain, answer=row["answer"], answer_type=row["answer_type"], choices=row["choices"],
                        meta=row["meta"])
        assert ok is (c["kind"] == "max_words")
    assert kinds == {"brackets", "end_with", "max_words"}


def test_interventions_are_seeded_and_off_by_default():
    df = mixture()
    assert apply(df, InterventionConfig(), 0)[0] is df
    a, _ = apply(df, InterventionConfig(anti_prior=0.3, long_context=0.3), 5)
    b, _ = apply(df, InterventionConfig(anti_prior=0.3, long_context=0.3), 5)
    pd.testing.assert_frame_equal(a, b)


def test_fractions_are_validated():
    with pytest.raises(ParamsError, match="mix.interventions"):
        InterventionConfig(anti_prior=0.8, multi_hop=0.5)


def test_every_rewritten_row_is_validated_not_only_the_first(monkeypatch):
    """A transform that breaks one row fails, wherever the shuffle put that row."""
    import supernova.interventions as iv
    from supernova.errors import InputError

    real = iv.TRANSFORMS["anti_prior"]
    calls = []

    def breaks_the_second(row, *args):
        calls.append(row["uid"])
        new = real(row, *args)
        return {**new, "answer_type": "bogus"} if len(calls) == 2 else new

    monkeypatch.setitem(iv.TRANSFORMS, "anti_prior", breaks_the_second)
    with pytest.raises(InputError, match="answer_type"):
        apply(mixture(), InterventionConfig(anti_prior=0.5), seed=0)
    assert len(calls) == 2
