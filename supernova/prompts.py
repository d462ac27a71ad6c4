"""How an item is shown to the model, and what a gold completion looks like (for SFT).

Every stage that talks to a model (probe, score, rl-train, evaluate) builds its chat messages
here, so the base model, the RL probes and the trained model all see the same prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .answer import choice_letter
from .errors import ParamsError

INSTRUCTIONS = {
    "direct": "Reply with only the final answer, in the form: The answer is: <answer>",
    "cot": "Think step by step, then end with: The answer is: <answer>",
}
MCQ_HINT = " (for multiple choice, <answer> is the option letter, such as (A))"


@dataclass(frozen=True)
class PromptConfig:
    """Prompt settings shared by every stage (params.yaml section ``prompt``).

    Attributes:
        style: ``direct`` (answer only; right for very small models and short budgets) or ``cot``
            (think step by step, then the answer line).
        system: system message; ``None`` keeps the chat template's default one. A short system
            message shortens every sequence, which matters for speed on a CPU.
    """

    style: str = "direct"
    system: str | None = None

    def __post_init__(self):
        if self.style not in INSTRUCTIONS:
            raise ParamsError(f"must be one of {sorted(INSTRUCTIONS)}, got {self.style!r}",
                              file="params.yaml", field="prompt.style")


def render_question(item: Mapping[str, Any]) -> str:
    """The question text with its lettered options, if any."""
    text = str(item["question"]).rstrip()
    choices = list(item.get("choices") or [])
    if item.get("answer_type") == "mcq" and choices:
        opts = "\n".join(f"({choice_letter(i)}) {c}" for i, c in enumerate(choices))
        text = f"{text}\n\nOptions:\n{opts}"
    return text


def messages(item: Mapping[str, Any], cfg: PromptConfig) -> list[dict[str, str]]:
    """Chat messages for ``item``: optional system message, then the question and instruction."""
    instruction = INSTRUCTIONS[cfg.style]
    if item.get("answer_type") == "mcq":
        instruction += MCQ_HINT
    out = [] if cfg.system is None else [{"role": "system", "content": cfg.system}]
    out.append({"role": "user", "content": f"{render_question(item)}\n\n{instruction}"})
    return out


def gold_completion(item: Mapping[str, Any]) -> str:
    """The completion SFT teaches: the answer line in the checker's convention (honouring an
    output constraint the item carries)."""
    answer = str(item["answer"])
    if item.get("answer_type") == "mcq":
        answer = f"({answer})"
    meta = item.get("meta") or {}
    constraint = (json.loads(meta) if isinstance(meta, str) else meta).get("constraint") or {}
    if constraint.get("kind") == "brackets":
        answer = f"[{answer}]"
    text = f"The answer is: {answer}"
    if constraint.get("kind") == "end_with":
        text += f"\n{constraint['text']}"
    return text
