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
#: What the checker reads the answer after; gold completions and teacher-forced scoring write it.
ANSWER_MARKER = "The answer is:"


@dataclass(frozen=True)
class PromptConfig:
    """Prompt settings shared by every stage (params.yaml section ``prompt``).

    Attributes:
        style: ``direct`` (answer only; right for very small models and short budgets) or ``cot``
            (think step by step, then the answer line).
        system: system message; ``None`` keeps the chat template's default one. A short system
            message shortens every sequence, which matters for speed on a CPU.
        answer_prefix: (``direct`` only) the assistant's turn starts with the answer marker
            (``The answer is:``), so the model writes only the answer, and its answer is the first
            line it writes: what is sampled, rewarded and scored is the answer, not whether a small
            model keeps to the answer format.
    """

    style: str = "direct"
    system: str | None = None
    answer_prefix: bool = False

    def __post_init__(self):
        if self.style not in INSTRUCTIONS:
            raise ParamsError(f"must be one of {sorted(INSTRUCTIONS)}, got {self.style!r}",
                              file="params.yaml", field="prompt.style")
        if self.answer_prefix and self.style != "direct":
            raise ParamsError("the answer marker can open the reply only with style direct (a reasoning reply "
                              "ends with it)", file="params.yaml", field="prompt.answer_prefix")


def render_question(item: Mapping[str, Any]) -> str:
    """The question text with its lettered options, if any."""
    text = str(item["question"]).rstrip()
    choices = list(item.get("choices") or [])
    if item.get("answer_type") == "mcq" and choices:
        opts = "\n".join(f"({choice_letter(i)}) {c}" for i, c in enumerate(choices))
        text = f"{text}\n\nOptions:\n{opts}"
    return text


def question_messages(item: Mapping[str, Any], cfg: PromptConfig) -> list[dict[str, str]]:
    """Chat messages for ``item``: optional system message, then the question and instruction."""
    instruction = INSTRUCTIONS[cfg.style]
    if item.get("answer_type") == "mcq":
        instruction += MCQ_HINT
    out = [] if cfg.system is None else [{"role": "system", "content": cfg.system}]
    out.append({"role": "user", "content": f"{render_question(item)}\n\n{instruction}"})
    return out


def messages(item: Mapping[str, Any], cfg: PromptConfig) -> list[dict[str, str]]:
    """The conversation a model continues for ``item``: :func:`question_messages`, and with
    ``answer_prefix`` the assistant's turn opened by :data:`ANSWER_MARKER`."""
    out = question_messages(item, cfg)
    if cfg.answer_prefix:
        out.append({"role": "assistant", "content": ANSWER_MARKER})
    return out


def opened(conversation: list[Mapping[str, Any]]) -> str:
    """The text the assistant's turn already holds when ``conversation`` ends with it (the answer
    prefix), else ""; a completion of the conversation is judged with it in front."""
    last = conversation[-1] if conversation else {}
    return str(last.get("content", "")) if last.get("role") == "assistant" else ""


def reply(conversation: list[Mapping[str, Any]], completion: str) -> str:
    """The assistant's reply that is judged: a completion of an opened turn (the answer prefix) is
    its first line, after the opening; any other completion is judged whole."""
    head = opened(conversation)
    return head + completion.split("\n", 1)[0] if head else completion


def template_kwargs(conversation: list[Mapping[str, Any]]) -> dict[str, bool]:
    """How a chat template renders ``conversation`` for a model to continue: a new assistant turn,
    or the opened one continued."""
    cont = conversation[-1].get("role") == "assistant"
    return {"add_generation_prompt": not cont, "continue_final_message": cont}


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
    text = f"{ANSWER_MARKER} {answer}"
    if constraint.get("kind") == "end_with":
        text += f"\n{constraint['text']}"
    return text


def answer_context(item: Mapping[str, Any], cfg: PromptConfig, tok) -> str:
    """The text a teacher-forced answer is scored after: ``item``'s chat prompt with the assistant
    turn opened by :data:`ANSWER_MARKER` (the chat template rendered by ``tok``)."""
    conv = question_messages(item, cfg) + [{"role": "assistant", "content": ANSWER_MARKER}]
    return tok.apply_chat_template(conv, tokenize=False, continue_final_message=True)


def cloze_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A multiple-choice ``item`` posed as its question alone (the cloze form: no options listed)."""
    return {**item, "answer_type": "exact", "choices": []}
