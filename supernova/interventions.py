"""Synthetic interventions on the mixture — options to test with ``dvc exp run``, not assumed wins.

Each intervention rewrites a seeded fraction of the mixture's items in place (so the mixture size
stays matched) and marks them (``source = "intervention:<name>"``, ``meta.intervention``):

* ``anti_prior`` — the question states a misleading prior (a wrong answer presented as the usual
  guess); the gold answer contradicts it.
* ``long_context`` — the question is embedded among distractor passages (other items' questions).
* ``multi_hop`` — two items composed so the second needs the first's answer: "if the answer to
  problem 1 is X, answer problem 2, otherwise problem 3"; X is true or false at random.
* ``constraints`` — an output constraint (brackets, a closing word, a word limit) that the answer
  checker enforces.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .answer import choice_letter
from .errors import ParamsError
from .prompts import render_question
from .schema import Item, item_uid

NAMES = ("anti_prior", "long_context", "multi_hop", "constraints")


@dataclass(frozen=True)
class InterventionConfig:
    """Fractions of mixture items rewritten by each intervention (0 = off), and their knobs.

    Attributes:
        anti_prior: fraction rewritten with a misleading prior.
        long_context: fraction embedded among distractor passages.
        multi_hop: fraction replaced by two-hop compositions.
        constraints: fraction given an enforced output constraint.
        distractor_passages: passages around a long-context item.
        max_words: word limit of the ``max_words`` constraint.
    """

    anti_prior: float = 0.0
    long_context: float = 0.0
    multi_hop: float = 0.0
    constraints: float = 0.0
    distractor_passages: int = 3
    max_words: int = 40

    def __post_init__(self):
        fr = [getattr(self, n) for n in NAMES]
        if any(f < 0 or f > 1 for f in fr) or sum(fr) > 1:
            raise ParamsError(f"fractions must lie in [0, 1] and sum to at most 1, got {dict(zip(NAMES, fr))}",
                              file="params.yaml", field="mix.interventions")

    def active(self) -> bool:
        return any(getattr(self, n) > 0 for n in NAMES)


def _gold_text(row: dict[str, Any]) -> str:
    if row["answer_type"] == "mcq":
        return f"({row['answer']}) {row['choices'][ord(row['answer']) - ord('A')]}"
    return str(row["answer"])


def _wrong_text(row: dict[str, Any], pool: list[dict[str, Any]], rng: random.Random) -> str | None:
    if row["answer_type"] == "mcq":
        wrong = [i for i in range(len(row["choices"])) if choice_letter(i) != row["answer"]]
        i = rng.choice(wrong)
        return f"({choice_letter(i)}) {row['choices'][i]}"
    others = [str(r["answer"]) for r in pool if r["task"] == row["task"] and str(r["answer"]) != str(row["answer"])]
    return rng.choice(others) if others else None


def _with(row: dict[str, Any], name: str, question: str, **changes: Any) -> dict[str, Any]:
    meta = json.loads(row["meta"] or "{}")
    meta.update(changes.pop("meta", {}))
    meta["intervention"] = name
    new = {**row, **changes, "question": question, "source": f"intervention:{name}",
           "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)}
    new["uid"] = item_uid(new["task"], new["question"], new["answer"], new["choices"])
    return new


def anti_prior(row, pool, rng, cfg):
    wrong = _wrong_text(row, pool, rng)
    if wrong is None:
        return None
    q = f"Most people answer {wrong} to the following question, but they are usually wrong.\n\n{row['question']}"
    return _with(row, "anti_prior", q, meta={"misleading_prior": wrong})


def long_context(row, pool, rng, cfg):
    others = [r for r in pool if r["uid"] != row["uid"]]
    if not others:
        return None
    passages = [render_question(r) for r in rng.sample(others, min(cfg.distractor_passages, len(others)))]
    pos = rng.randint(0, len(passages))
    blocks = [f"Passage: {p}" for p in passages]
    blocks.insert(pos, f"Question: {row['question']}")
    q = ("Only one of the blocks below is the question to answer; the passages are unrelated.\n\n"
         + "\n\n".join(blocks))
    return _with(row, "long_context", q)


def multi_hop(row, pool, rng, cfg):
    firsts = [r for r in pool if r["uid"] != row["uid"]]
    alts = [r for r in pool if r["uid"] != row["uid"] and r["answer_type"] == row["answer_type"]]
    if not firsts or not alts:
        return None
    first, alt = rng.choice(firsts), rng.choice(alts)
    truth = _gold_text(first)
    claim_true = rng.random() < 0.5
    claim = truth if claim_true else _wrong_text(first, pool, rng)
    if claim is None:
        return None
    chosen = row if claim_true else alt
    q = (f"Problem 1:\n{render_question(first)}\n\nProblem 2:\n{render_question(row)}\n\n"
         f"Problem 3:\n{render_question(alt)}\n\n"
         f"If the answer to Problem 1 is {claim}, answer Problem 2; otherwise answer Problem 3.")
    answer, atype, aliases = str(chosen["answer"]), chosen["answer_type"], []
    if atype == "mcq":  # the options are in the text; the answer is a letter, checked as exact
        atype, aliases = "exact", [f"({answer})"]
    meta = {"hop_items": [first["uid"], row["uid"], alt["uid"]], "aliases": aliases}
    return _with(row, "multi_hop", q, answer=answer, answer_type=atype, choices=[], meta=meta)


CONSTRAINTS = (
    ({"kind": "brackets"}, "Write the final answer inside square brackets, as in: The answer is: [your answer]"),
    ({"kind": "end_with", "text": "DONE"}, "End your reply with the word DONE."),
    ({"kind": "max_words", "n": None}, "Use at most {n} words in total."),
)


def constraints(row, pool, rng, cfg):
    spec, text = CONSTRAINTS[rng.randrange(len(CONSTRAINTS))]
    spec = dict(spec)
    if spec["kind"] == "max_words":
        spec["n"] = cfg.max_words
        text = text.format(n=cfg.max_words)
    return _with(row, "constraints", f"{row['question']}\n\n{text}", meta={"constraint": spec})


TRANSFORMS = {"anti_prior": anti_prior, "long_context": long_context, "multi_hop": multi_hop,
              "constraints": constraints}


def apply(items: pd.DataFrame, cfg: InterventionConfig, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rewrite seeded, disjoint fractions of ``items``; returns the new items and counts applied."""
    counts = {n: 0 for n in NAMES}
    if not cfg.active():
        return items, counts
    originals = items.to_dict("records")
    rows = list(originals)
    rng = random.Random(f"{seed}:interventions")
    order = list(range(len(rows)))
    rng.shuffle(order)
    start = 0
    for name in NAMES:
        n = round(getattr(cfg, name) * len(rows))
        for i in order[start:start + n]:
            new = TRANSFORMS[name](originals[i], originals, rng, cfg)
            if new is not None:
                Item.from_row(new)  # every rewritten row must still be a valid item
                rows[i] = new
                counts[name] += 1
        start += n
    return pd.DataFrame(rows, columns=items.columns), counts
