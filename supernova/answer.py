"""The one answer checker: probe, RL reward and evaluation all call :func:`is_correct`.

Convention: the model ends with ``The answer is: <answer>``; the text after the *last* marker is
compared with the gold answer after normalisation (case, surrounding markup and quotes, LaTeX
wrappers such as ``\\boxed{}``, a trailing period; ``(a)`` ≡ ``a`` for multiple choice; numeric
equality for numbers). An item may also carry, in ``meta``:

* ``aliases`` — other acceptable answers (SuperNI instances often list several outputs);
* ``constraint`` — an output constraint the checker enforces on top of correctness
  (``{"kind": "brackets"}``, ``{"kind": "max_words", "n": 40}``, ``{"kind": "end_with", "text": "DONE"}``).
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from typing import Any, Iterable, Mapping

MARKER = re.compile(r"the\s+(?:final\s+)?answer\s+is\s*[:：]?", re.IGNORECASE)
_LATEX_WRAPPERS = re.compile(r"\\(?:boxed|fbox|text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
# "(b)", "[b]", "b.", "b)", "b:", "b", "option b" — a bare letter followed by a word is not one ("a dog")
_LETTER = re.compile(r"^(?:[(\[]([a-z])[)\]]|([a-z])(?:[.):]|$)|(?:option|choice)\s+([a-z])\b)")
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?(?:\s*/\s*[-+]?\d+(?:\.\d*)?)?")
_ASSIGN = re.compile(r"^[a-z]\s*=\s*")


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
    """A number at the start of ``text`` (commas, ``$``, ``%`` and ``x =`` ignored), else None."""
    s = normalize(text).replace(",", "").replace("$", "").replace("%", "")
    s = _ASSIGN.sub("", s)
    m = _NUMBER.match(s)
    if not m:
        return None
    rest = s[m.end():].strip()
    if rest and not re.match(r"^[a-z]+$", rest):  # allow a trailing unit word ("292 legs")
        return None
    token = m.group(0).replace(" ", "")
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


def _answer_matches(pred: str, gold: str, answer_type: str, choices: list[str], aliases: Iterable[str]) -> bool:
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


def is_correct(completion: str, *, answer: str, answer_type: str, choices: Iterable[str] = (),
               meta: Mapping[str, Any] | str | None = None) -> bool:
    """Whether ``completion`` answers the item correctly (and honours its output constraint)."""
    raw = extract_answer(completion)
    if raw is None:
        return False
    m = _meta(meta)
    if m.get("constraint"):
        if not _constraint_ok(completion, raw, m["constraint"]):
            return False
        if m["constraint"].get("kind") == "brackets":
            raw = raw.strip().rstrip(".").strip()[1:-1]
        elif m["constraint"].get("kind") == "end_with":
            raw = raw.strip().removesuffix(str(m["constraint"]["text"])).strip()
    return _answer_matches(raw, str(answer), answer_type, list(choices), m.get("aliases", ()))


def reward(completions: list, answer: list[str], answer_type: list[str], choices: list, meta: list,
           **_: Any) -> list[float]:
    """TRL reward function: 1.0 for a correct completion, else 0.0 (same check as evaluation)."""
    out = []
    for comp, a, t, c, m in zip(completions, answer, answer_type, choices, meta):
        text = comp[-1]["content"] if isinstance(comp, list) else comp
        out.append(1.0 if is_correct(text, answer=a, answer_type=t, choices=c, meta=m) else 0.0)
    return out
