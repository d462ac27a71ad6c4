"""The shared answer checker: table-driven tricky cases."""

import pytest

from supernova.answer import extract_answer, is_correct, judge, normalize, parse_number, reward

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


# BBEH's official rules (bbeh/evaluate.py), and where the lenient checker differs. Each row:
# completion, gold, lenient verdict, bbeh verdict.
DISAGREEMENTS = [
    ("The answer is: no,unknown,no", "no, unknown, no", False, True),   # ", " -> "," on both sides
    ("thursday", "[thursday]", False, True),                            # no marker: the whole text; [x] == x
    ("The answer is: (F)", "F", False, True),                           # (a) == a against a bare letter
    ("So it is 17", "17", False, False),                                # no marker: the whole text is scored
    ("17", "17", False, True),
    ("The answer is: yes?", "yes", False, True),                        # a trailing "?"
    ("The answer is: 11", "0,1,1", False, False),                       # a list is never a number
    ("The answer is: 1,372", "1372", True, False),                      # no thousands separators in BBEH
    ("The answer is: 50%", "50", True, False),
    ("the answer is: Paris", "Paris", True, False),                     # BBEH's markers are case-sensitive
    ("The answer is: 'tom'", "tom", True, True),
    ("The answer is: \"tom\"", "tom", True, False),                     # BBEH removes single quotes only
    ("Alright! The final answer is: 2, 3, 4", "2,3,4", False, True),
    ("Ok The final answer is: \\boxed{4}.", "4", True, True),
    ("Ok The answer is: **25**\nHere's why.", "25.0", True, True),      # ** removed, first line, float equality
    ("The answer is: \\boxed{4} apples", "4", True, False),             # LaTeX unwrapped only at the ends
    ("The answer is: $7$", "7", True, True),
    ("The answer is: (A) because", "A", False, False),
    ("The answer is: (A)", "(a)", True, True),
    ("The answer is: a", "(A)", False, True),
    ("The answer is: 2 The answer is: 3", "3", True, True),             # the last occurrence of a marker
    ("The answer is: 3\nThe final answer is 4", "4", True, True),       # markers tried in order, each on the rest
    ("The answer is: five.", "five", True, True),
    ("The answer is: 4..", "4", True, True),                            # a period removed twice (extract, preprocess)
    ("The answer is: five...", "five", True, False),
]


@pytest.mark.parametrize("completion,gold,lenient,bbeh", DISAGREEMENTS)
def test_checkers_bbeh_rules_and_lenient(completion, gold, lenient, bbeh):
    for checker, expected in (("lenient", lenient), ("bbeh", bbeh)):
        got = is_correct(completion, answer=gold, answer_type="exact", meta={"checker": checker})
        assert got is expected, f"{checker}: {completion!r} vs {gold!r}"


@pytest.mark.parametrize("completion,checker,parsed", [
    ("The answer is: 4", "bbeh", True), ("the answer is: 4", "bbeh", False), ("4", "bbeh", False),
    ("The answer is:", "bbeh", False), ("The answer is: 4", "lenient", True), ("the answer is 4", "lenient", True),
    ("4", "lenient", False), ("The answer is: ", "lenient", False),
])
def test_parse_rate_counts_a_marker_with_an_answer(completion, checker, parsed):
    assert judge(completion, answer="4", answer_type="exact", meta={"checker": checker}).parsed is parsed


def test_bbeh_multiple_choice_compares_the_letter_and_takes_aliases():
    mcq = dict(answer="B", answer_type="mcq", choices=["x", "y"], meta={"checker": "bbeh"})
    assert is_correct("The answer is: (B)", **mcq) and is_correct("The answer is: b", **mcq)
    assert not is_correct("The answer is: y", **mcq)                  # BBEH compares the target, not option text
    meta = {"checker": "bbeh", "aliases": ["France"], "spellings": ["FR"]}
    assert is_correct("The answer is: France", answer="Paris", answer_type="exact", meta=meta)
    assert not is_correct("The answer is: FR", answer="Paris", answer_type="exact", meta=meta)   # lenient only


def test_the_constraint_is_enforced_under_bbeh_too():
    meta = {"checker": "bbeh", "constraint": {"kind": "brackets"}}
    assert is_correct("The answer is: [42]", answer="42", answer_type="numeric", meta=meta)
    assert not is_correct("The answer is: 42", answer="42", answer_type="numeric", meta=meta)


def test_unknown_checker_is_a_params_error():
    from supernova.answer import AnswerConfig
    from supernova.errors import ParamsError

    with pytest.raises(ParamsError, match="answer.checker"):
        AnswerConfig(checker="strict")
