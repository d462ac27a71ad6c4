"""The one answer checker: probe, RL reward and evaluation all call :func:`judge` (or
:func:`is_correct`), so a completion is scored the same way wherever it is scored.

Two rule sets (``answer.checker`` in params.yaml; a source or target entry may override it with
its own ``checker`` field; ingest writes the choice into every item's ``meta["checker"]``, so the
stages that score completions read it from the item):

* ``bbeh`` — the rules of BIG-Bench Extra Hard's official evaluator (``bbeh/evaluate.py``), so
  that numbers are comparable with published BBEH results:

  1. the answer is the text after the markers ``The answer is:``, ``The final answer is ``,
     ``The final answer is: ``, ``The answer is `` — tried in this order, case-sensitively, each
     on what the previous one left (the text after its last occurrence, stripped); a completion
     without a marker is scored as a whole;
  2. one trailing period is removed; ``$...$`` around the whole answer, then a ``\\boxed{``,
     ``\\text{`` or ``\\texttt{`` wrapper that closes at the very end, are unwrapped;
  3. the prediction is lower-cased, ``", "`` becomes ``","``, ``**`` is removed, only its first
     line is kept and one more trailing period is removed; the gold answer is stripped,
     lower-cased and gets the same ``", "`` → ``","``;
  4. they match when equal; a three-character ``(x)`` on either side matches exactly ``x`` on the
     other (and nothing else); when both parse as floats with equal values; when equal after
     removing single quotes; when one is the other in square brackets; when the prediction is the
     gold answer followed by ``?``.

  Multiple-choice items compare with their gold letter; extra answers in ``meta["aliases"]`` are
  tried like the gold answer.
* ``lenient`` — format-robust: the text after the *last* ``the (final) answer is`` marker (any
  case) is compared with the gold answer after normalisation (case, surrounding markup and quotes,
  LaTeX wrappers such as ``\\boxed{}``, a trailing period; for multiple choice the letter in any
  form — ``B``, ``(B)``, ``B)``, ``option B`` — or the option's text; numeric equality, with
  thousands separators, ``$``, ``%`` and a trailing unit word ignored). A completion without a
  marker is wrong. Besides ``aliases`` it accepts ``meta["spellings"]`` (equivalent spellings a
  source kind derives, such as a bare letter for ``(A)``).

Under both, a comma-separated list (``0,1,1``) is never a number. An item may also carry
``meta["constraint"]``, an output constraint enforced on top of correctness
(``{"kind": "brackets"}``, ``{"kind": "max_words", "n": 40}``, ``{"kind": "end_with", "text": "DONE"}``).

A completion *has an answer* (counted in the parse rate) when it contains the checker's marker
followed by a non-empty answer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping, NamedTuple

from .errors import ParamsError

CHECKERS = ("bbeh", "lenient")

MARKER = re.compile(r"the\s+(?:final\s+)?answer\s+is\s*[:：]?", re.IGNORECASE)
_LATEX_WRAPPERS = re.compile(r"\\(?:boxed|fbox|text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
# "(b)", "[b]", "b.", "b)", "b:", "b", "option b" — a bare letter followed by a word is not one ("a dog")
_LETTER = re.compile(r"^(?:[(\[]([a-z])[)\]]|([a-z])(?:[.):]|$)|(?:option|choice)\s+([a-z])\b)")
# commas only as thousands separators: "1,372" is a number, "0,1,1" and "1, 2" are lists
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
                     r"(?:\s*/\s*[-+]?\d+(?:\.\d*)?)?")
_ASSIGN = re.compile(r"^[a-z]\s*=\s*")

#: BBEH's answer markers, in the order its evaluator tries them (case-sensitive).
BBEH_MARKERS = ("The answer is:", "The final answer is ", "The final answer is: ", "The answer is ")
#: LaTeX wrappers BBEH's evaluator removes when they close at the end of the answer, in its order.
BBEH_WRAPPERS = ("boxed{", "text{", "texttt{")


@dataclass(frozen=True)
class AnswerConfig:
    """params.yaml section ``answer``.

    Attributes:
        checker: the rule set that decides correctness everywhere (probe, RL reward, evaluation):
            ``bbeh`` (BBEH's official evaluator) or ``lenient`` (format-robust). A source or
            target entry's own ``checker`` field overrides it for that entry's items.
    """

    checker: str = "lenient"

    def __post_init__(self):
        check_checker(self.checker, "answer.checker")


def check_checker(name: Any, field: str) -> str:
    if name not in CHECKERS:
        raise ParamsError(f"must be one of {list(CHECKERS)}, got {name!r}", file="params.yaml", field=field)
    return name


class Verdict(NamedTuple):
    """How one completion fares: whether it has an answer the checker can read, and whether it is right."""

    parsed: bool
    correct: bool


# ---------------------------------------------------------------------------------------------
# bbeh: BIG-Bench Extra Hard's official rules


def bbeh_extract(completion: str) -> tuple[str, bool]:
    """(the answer text by BBEH's rules 1-2, whether a marker was found)."""
    text = completion.strip()
    found = False
    for marker in BBEH_MARKERS:
        if marker in text:
            text = text.rsplit(marker, 1)[-1].strip()
            found = True
    text = text.removesuffix(".")
    if text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    for wrapper in BBEH_WRAPPERS:
        if wrapper in text and text.endswith("}"):
            text = text[:-1].split(wrapper)[1]
    return text, found


def bbeh_prediction(completion: str) -> str:
    """The prediction as BBEH compares it (rules 1-3)."""
    return _bbeh_clean(bbeh_extract(completion)[0])


def _bbeh_clean(extracted: str) -> str:
    text = extracted.lower().replace(", ", ",").replace("**", "")
    return text.split("\n")[0].removesuffix(".")


def bbeh_reference(gold: str) -> str:
    return str(gold).strip().lower().replace(", ", ",")


def _bbeh_float(text: str) -> float | None:
    if "," in text:  # float() would not take a list anyway; stated for clarity
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _parenthesised(text: str) -> bool:
    return len(text) == 3 and text[0] == "(" and text[-1] == ")"


def bbeh_match(pred: str, ref: str) -> bool:
    """BBEH's fuzzy match (rule 4) of a preprocessed prediction and reference."""
    if pred == ref:
        return True
    if _parenthesised(pred):
        return pred[1] == ref
    if _parenthesised(ref):
        return ref[1] == pred
    p, r = _bbeh_float(pred), _bbeh_float(ref)
    if p is not None and r is not None and p == r:
        return True
    if pred.replace("'", "") == ref.replace("'", ""):
        return True
    if pred == f"[{ref}]" or ref == f"[{pred}]":
        return True
    return pred.endswith("?") and pred[:-1] == ref


# ---------------------------------------------------------------------------------------------
# lenient: format-robust rules


def extract_answer(text: str) -> str | None:
    """The raw text after the last answer marker (first line only), or None without a marker."""
    found = None
    for found in MARKER.finditer(text):
        pass
    if found is None:
        return None
    rest = text[found.end():].strip()
    return rest.splitlines()[0].strip() if rest else ""


def normalize(text: str) -> str:
    """Lower-case, unwrap LaTeX and markup, drop quotes and a trailing period, squeeze spaces."""
    s = str(text).strip()
    for _ in range(3):
        s = _LATEX_WRAPPERS.sub(r"\1", s)
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "").replace("$", "")
    prev = None
    while s != prev:  # peel markup, quotes and a trailing period in any nesting order
        prev = s
        s = s.strip().strip("*_`").strip().strip("\"'“”‘’«»").strip().rstrip(".。").strip()
    return " ".join(s.lower().split())


def parse_number(text: str) -> float | None:
    """A number at the start of ``text`` (thousands separators, ``$``, ``%`` and ``x =`` ignored),
    else None. A comma-separated list is not a number."""
    s = _ASSIGN.sub("", normalize(text).replace("$", "").replace("%", ""))
    m = _NUMBER.match(s)
    if not m:
        return None
    rest = s[m.end():].strip()
    if rest and not re.match(r"^[a-z]+$", rest):  # allow a trailing unit word ("292 legs")
        return None
    token = m.group(0).replace(" ", "").replace(",", "")
    try:
        if "/" in token:
            num, den = token.split("/")
            return float(Fraction(num) / Fraction(den))
        return float(token)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_equal(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def choice_letter(index: int) -> str:
    return chr(ord("A") + index)


def _letter(pred: str) -> str | None:
    m = _LETTER.match(normalize(pred))
    return next((g for g in m.groups() if g), None) if m else None


def _lenient_matches(pred: str, gold: str, answer_type: str, choices: list[str], aliases: Iterable[str]) -> bool:
    if answer_type == "mcq":
        gold_letter = gold.strip().strip("()").lower()
        letter = _letter(pred)
        if letter is not None and ord(letter) - ord("a") >= len(choices):
            letter = None
        if letter is not None:  # "(B)", "(B) <option text>", "(B). <explanation>"
            return letter == gold_letter
        idx = ord(gold_letter) - ord("a")
        return 0 <= idx < len(choices) and normalize(pred) == normalize(choices[idx])
    for g in [gold, *aliases]:
        if normalize(pred) == normalize(g):
            return True
        gn = parse_number(g)
        if gn is not None:
            pn = parse_number(pred)
            if pn is not None and numbers_equal(pn, gn):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# the shared entry points


def _constraint_ok(completion: str, raw_answer: str, constraint: Mapping[str, Any] | None) -> bool:
    if not constraint:
        return True
    kind = constraint.get("kind")
    if kind == "brackets":
        return raw_answer.startswith("[") and raw_answer.rstrip(".").endswith("]")
    if kind == "max_words":
        return len(completion.split()) <= int(constraint["n"])
    if kind == "end_with":
        return completion.rstrip().endswith(str(constraint["text"]))
    raise ValueError(f"unknown constraint kind {kind!r}")


def _meta(meta: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    if meta is None:
        return {}
    if isinstance(meta, str):
        return json.loads(meta) if meta else {}
    return meta


def item_checker(meta: Mapping[str, Any] | str | None) -> str:
    """The checker an item is scored with (``lenient`` for items ingested before the choice existed)."""
    return _meta(meta).get("checker") or "lenient"


def judge(completion: str, *, answer: str, answer_type: str, choices: Iterable[str] = (),
          meta: Mapping[str, Any] | str | None = None) -> Verdict:
    """Whether ``completion`` has a readable answer, and whether it answers the item correctly (and
    honours its output constraint), by the item's checker."""
    m = _meta(meta)
    checker = item_checker(m)
    if checker == "bbeh":
        raw, found = bbeh_extract(completion)
        parsed = found and bool(raw.strip())
    elif checker == "lenient":
        extracted = extract_answer(completion)
        if extracted is None:
            return Verdict(False, False)
        raw, parsed = extracted, bool(extracted)
    else:
        raise ValueError(f"unknown checker {checker!r} (known: {list(CHECKERS)})")
    constraint = m.get("constraint")
    if constraint:
        if not _constraint_ok(completion, raw, constraint):
            return Verdict(parsed, False)
        if constraint.get("kind") == "brackets":
            raw = raw.strip().rstrip(".").strip()[1:-1]
        elif constraint.get("kind") == "end_with":
            raw = raw.strip().removesuffix(str(constraint["text"])).strip()
    aliases = list(m.get("aliases", ()))
    if checker == "bbeh":
        pred = _bbeh_clean(raw)
        return Verdict(parsed, any(bbeh_match(pred, bbeh_reference(g)) for g in [answer, *aliases]))
    aliases += list(m.get("spellings", ()))
    return Verdict(parsed, _lenient_matches(raw, str(answer), answer_type, list(choices), aliases))


def is_correct(completion: str, *, answer: str, answer_type: str, choices: Iterable[str] = (),
               meta: Mapping[str, Any] | str | None = None) -> bool:
    """Whether ``completion`` answers the item correctly (see :func:`judge`)."""
    return judge(completion, answer=answer, answer_type=answer_type, choices=choices, meta=meta).correct


def reward(completions: list, answer: list[str], answer_type: list[str], choices: list, meta: list,
           **_: Any) -> list[float]:
    """TRL reward function: 1.0 for a correct completion, else 0.0 (same check as evaluation)."""
    out = []
    for comp, a, t, c, m in zip(completions, answer, answer_type, choices, meta):
        text = comp[-1]["content"] if isinstance(comp, list) else comp
        out.append(1.0 if is_correct(text, answer=a, answer_type=t, choices=c, meta=m) else 0.0)
    return out
