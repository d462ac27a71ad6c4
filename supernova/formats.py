"""Turn a task's raw (question, answers) examples into verifiable items.

One rule for every source kind (``format`` option):

* ``mcq`` — multiple choice. If the task has a small label set (at most ``label_set_max``
  distinct answers) the choices are the labels, in a fixed order; otherwise each item gets
  ``num_choices - 1`` distractors drawn (seeded) from other examples' answers of the same task,
  with the gold position shuffled.
* ``exact`` — free-form answer; ``numeric`` when every gold answer parses as a number.
* ``auto`` — ``mcq`` for a label set, ``numeric`` for numbers, ``mcq`` with distractors when the
  task has enough distinct answers, ``exact`` otherwise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .answer import choice_letter, normalize, parse_number
from .errors import InputError, ParamsError
from .schema import Item

FORMATS = ("auto", "mcq", "exact")


@dataclass
class RawExample:
    question: str
    answers: list[str]                      # first is canonical, the rest are accepted aliases
    meta: dict[str, Any] = field(default_factory=dict)
    choices: list[str] | None = None        # given by the source (BIG-bench target_scores)
    gold: int | None = None                 # the gold choice's index, when the source gives one (its text may repeat)


def choose_format(examples: list[RawExample], fmt: str, *, label_set_max: int, num_choices: int) -> str:
    """The concrete format a task gets: ``mcq_labels``, ``mcq_distractors``, ``numeric`` or ``exact``."""
    if fmt not in FORMATS:
        raise ParamsError(f"must be one of {FORMATS}, got {fmt!r}", field="format")
    if examples and all(e.choices for e in examples):
        return "mcq_given"
    golds = {normalize(e.answers[0]) for e in examples}
    if fmt == "exact":
        return "numeric" if all(parse_number(e.answers[0]) is not None for e in examples) else "exact"
    if 2 <= len(golds) <= label_set_max:
        return "mcq_labels"
    if fmt == "auto" and all(parse_number(e.answers[0]) is not None for e in examples):
        return "numeric"
    if len(golds) >= num_choices:
        return "mcq_distractors"
    if fmt == "mcq":
        raise InputError(f"cannot build multiple choice: only {len(golds)} distinct answers "
                         f"(need a label set of 2..{label_set_max} or at least {num_choices})",
                         field="format")
    return "exact"


def make_items(examples: list[RawExample], *, source: str, task: str, skill: str, fmt: str = "auto",
               num_choices: int = 4, label_set_max: int = 8, seed: int = 0) -> tuple[list[Item], str]:
    """Verifiable items for one task, and the concrete format chosen."""
    if not examples:
        raise InputError("task has no examples", task=task)
    try:
        chosen = choose_format(examples, fmt, label_set_max=label_set_max, num_choices=num_choices)
    except (InputError, ParamsError) as e:
        raise type(e)(e.reason, task=task, field=e.field) from None
    items: list[Item] = []
    if chosen == "mcq_labels":
        labels: dict[str, str] = {}
        for e in examples:
            labels.setdefault(normalize(e.answers[0]), e.answers[0].strip())
        label_list = [labels[k] for k in sorted(labels)]
        label_norms = [normalize(x) for x in label_list]
    pool = list(dict.fromkeys(e.answers[0].strip() for e in examples))
    norm = {a: normalize(a) for a in pool}  # normalised once per task, not once per item
    for i, e in enumerate(examples):
        gold = e.answers[0].strip()
        meta = dict(e.meta)
        if chosen == "mcq_given":
            choices = list(e.choices or [])
            golds = [e.gold] if e.gold is not None else [j for j, c in enumerate(choices)
                                                           if normalize(c) == normalize(gold)]
            if not golds:
                raise InputError("gold answer is not among the choices", task=task, field="choices")
            items.append(Item(source, task, skill, e.question, choice_letter(golds[0]), choices, "mcq", meta))
        elif chosen == "mcq_labels":
            idx = label_norms.index(normalize(gold))
            items.append(Item(source, task, skill, e.question, choice_letter(idx), label_list, "mcq", meta))
        elif chosen == "mcq_distractors":
            rng = random.Random(f"{seed}:{task}:{i}")
            banned = {normalize(a) for a in e.answers}
            candidates = [a for a in pool if norm[a] not in banned]
            distractors: list[str] = []
            seen: set[str] = set()
            for a in rng.sample(candidates, len(candidates)):
                if norm[a] not in seen:
                    seen.add(norm[a])
                    distractors.append(a)
                if len(distractors) == num_choices - 1:
                    break
            choices = distractors + [gold]
            rng.shuffle(choices)
            items.append(Item(source, task, skill, e.question, choice_letter(choices.index(gold)),
                              choices, "mcq", meta))
        else:
            if len(e.answers) > 1:
                meta["aliases"] = [a.strip() for a in e.answers[1:]]
            items.append(Item(source, task, skill, e.question, gold, [], chosen, meta))
    return items, chosen
