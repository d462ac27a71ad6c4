"""The shared answer checker: table-driven tricky cases."""

import pytest

from supernova.answer import extract_answer, is_correct, normalize, parse_number, reward

MCQ = dict(answer_type="mcq", choices=["grandfather", "mother", "son", "wife"])

CASES = [
    # (completion, gold, kind, expected)
    ("The answer is: (B)", "B", MCQ, True),
    ("The answer is: (b).", "B", MCQ, True),
    ("the answer is b", "B", MCQ, True),
    ("The answer is: B) mother", "B", MCQ, True),
    ("The answer is: (B). Because the mother...", "B", MCQ, True),
    ("The answer is: mother", "B", MCQ, True),
    ("The answer is: **Mother**", "B", MCQ, True),
    ("The answer is: (C)", "B", MCQ, False),
    ("The answer is: option B", "B", MCQ, True),
    ("The answer is: [B]", "B", MCQ, True),
    ("The answer is: (E)", "B", MCQ, False),          # not one of the options
    ("The answer is: a son", "C", MCQ, False),        # a bare article is not option (A)
    ("(B)", "B", MCQ, False),                         # no marker: no answer
    ("The answer is: (A)\nwait, The answer is: (B)", "B", MCQ, True),  # the last marker counts
    ("The answer is: 42", "42", dict(answer_type="numeric"), True),
    ("The answer is: 42.0", "42", dict(answer_type="numeric"), True),
    ("The answer is: 1,234", "1234", dict(answer_type="numeric"), True),
    ("The answer is: $\\boxed{7}$", "7", dict(answer_type="numeric"), True),
    ("The answer is: \\(\\frac{}{}\\) 3/4", "0.75", dict(answer_type="numeric"), False),
    ("The answer is: 3/4", "0.75", dict(answer_type="numeric"), True),
    ("The answer is: x = 13", "13", dict(answer_type="numeric"), True),
    ("The answer is: 292 legs.", "292", dict(answer_type="numeric"), True),
    ("The answer is: 292 + 1", "292", dict(answer_type="numeric"), False),
    ("The answer is: 43", "42", dict(answer_type="numeric"), False),
    ("The answer is: -4", "-4", dict(answer_type="exact"), True),
    ("The answer is: \"Mother-in-law\".", "mother-in-law", dict(answer_type="exact"), True),
    ("The answer is: \\text{Friday}", "Friday", dict(answer_type="exact"), True),
    ("The answer is: `ainomma`", "ainomma", dict(answer_type="exact"), True),
    ("The answer is: ainomm", "ainomma", dict(answer_type="exact"), False),
    ("The final answer is: Paris", "Paris", dict(answer_type="exact"), True),
    ("The answer is: France", "Paris", dict(answer_type="exact", meta={"aliases": ["France"]}), True),
    ("The answer is:", "Paris", dict(answer_type="exact"), False),
]


@pytest.mark.parametrize("completion,gold,kind,expected", CASES)
def test_is_correct(completion, gold, kind, expected):
    assert is_correct(completion, answer=gold, **kind) is expected


@pytest.mark.parametrize("text,expected", [
    ("no marker here", None),
    ("The answer is: 5\nmore text", "5"),
    ("THE ANSWER IS 5", "5"),
    ("The answer is: ", ""),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("  **Yes.** ", "yes"), ("$x$", "x"), ("\\boxed{\\text{No}}", "no"), ("'a  b'", "a b"), ("“Tokyo”.", "tokyo"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text,expected", [("7", 7.0), ("-3.5", -3.5), ("1e3", 1000.0), ("2/8", 0.25),
                                           ("$1,000", 1000.0), ("50%", 50.0), ("seven", None), ("1/0", None)])
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("constraint,completion,expected", [
    ({"kind": "brackets"}, "The answer is: [42]", True),
    ({"kind": "brackets"}, "The answer is: 42", False),
    ({"kind": "end_with", "text": "DONE"}, "The answer is: 42\nDONE", True),
    ({"kind": "end_with", "text": "DONE"}, "The answer is: 42 DONE", True),
    ({"kind": "end_with", "text": "DONE"}, "The answer is: 42", False),
    ({"kind": "max_words", "n": 5}, "The answer is: 42", True),
    ({"kind": "max_words", "n": 5}, "well well well The answer is: 42", False),
])
def test_constraints_are_enforced(constraint, completion, expected):
    assert is_correct(completion, answer="42", answer_type="numeric", meta={"constraint": constraint}) is expected


def test_reward_reads_chat_completions_and_json_meta():
    out = reward(
        completions=[[{"role": "assistant", "content": "The answer is: (B)"}],
                     [{"role": "assistant", "content": "The answer is: (A)"}], "The answer is: 3"],
        answer=["B", "B", "3"], answer_type=["mcq", "mcq", "numeric"], choices=[["x", "y"], ["x", "y"], []],
        meta=["{}", "{}", ""])
    assert out == [1.0, 0.0, 1.0]
