"""SFT targets: what the SFT set teaches for each item the selection chose (``sft_select.targets``).

* ``answer`` — the answer line alone (:func:`supernova.prompts.gold_completion`).
* ``self`` — rejection sampling from the base model: the probe keeps every sample the checker
  accepted (PROBE ``correct_samples``); with ``prompt.style: cot`` they hold the base model's own
  reasoning. An item the probe never solved has no self trace.
* ``teacher`` — the model named by ``sft_select.teacher`` samples ``n`` completions of each chosen
  item under the pipeline's prompt (in ``teacher.style``, e.g. ``cot`` for reasoning traces under
  a direct pipeline), with the backend of the ``generation`` section; the ones the checker accepts
  are the item's traces.
* ``given`` — a rationale shipped with the source data (an ``hf`` or ``bigbench`` entry's
  ``columns.rationale``, kept in the item as ``meta["rationale"]``, e.g. MMLU-Pro's
  ``cot_content``). A rationale without an answer line the checker can read gets the gold answer
  line appended; one that states a wrong answer is rejected.

Whatever the source, every target is judged by :func:`supernova.answer.judge` — the checker of
probe, reward and evaluation — before it enters the set: a rejected one never does, and an item
left without an accepted target is left out of the set (the manifest counts and lists it). Of
several accepted traces of one item, ``trace_pick`` keeps the shortest (the first of equals, in
sample order) or a random one, seeded by ``sft_select.seed`` and the item's uid.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .answer import judge
from .evaluation import sample_and_check
from .generation import GenerationConfig, SamplingConfig, load_generator
from .hardware import ComputeConfig
from .model import generation_source
from .errors import ParamsError
from .prompts import INSTRUCTIONS, PromptConfig, gold_completion

TARGETS = ("answer", "self", "teacher", "given")
PICKS = ("shortest", "random")


@dataclass(frozen=True)
class TeacherConfig:
    """params.yaml section ``sft_select.teacher`` (read with ``targets: teacher``).

    Attributes:
        model: the teacher, named the way ``model.name_or_path`` names the base model
            (``embedded:...``, a local folder or a hub id); it samples with the backend and dtype
            of the ``generation`` section.
        n: completions sampled per chosen item; the checker keeps the correct ones.
        temperature: sampling temperature.
        max_new_tokens: completion budget (a trace cut off before its answer line is rejected).
        seed: sampling seed (also the weights of ``embedded:tiny-random``).
        style: the prompt style the teacher samples under: ``cot`` (it writes its reasoning, then
            the answer line) or ``direct``; ``null``: the pipeline's ``prompt.style``.
    """

    model: str | None = None
    n: int = 4
    temperature: float = 0.7
    max_new_tokens: int = 256
    seed: int = 0
    style: str | None = None

    def __post_init__(self):
        if self.style is not None and self.style not in INSTRUCTIONS:
            raise ParamsError(f"must be one of {sorted(INSTRUCTIONS)} or null, got {self.style!r}",
                              file="params.yaml", field="sft_select.teacher.style")

    def prompt(self, pipeline: PromptConfig) -> PromptConfig:
        """The prompt the teacher samples under: the pipeline's, in the teacher's ``style``."""
        if self.style is None or self.style == pipeline.style:
            return pipeline
        return PromptConfig(style=self.style, system=pipeline.system,
                            answer_prefix=pipeline.answer_prefix and self.style == "direct")

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(n=self.n, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                              seed=self.seed)


@dataclass
class Found:
    """An item's candidate targets, before the checker's verdict."""

    texts: list[str] = field(default_factory=list)  # in sample order
    sampled: int = 0         # completions drawn (self: the probe's; teacher: its own) or rationales found
    appended: bool = False   # given: the gold answer line was appended to a rationale that had none


def accepted(text: str, item: Mapping[str, Any]) -> bool:
    """Whether the shared checker judges ``text`` a correct completion of ``item``."""
    return judge(text, answer=item["answer"], answer_type=item["answer_type"], choices=item["choices"],
                 meta=item["meta"]).correct


def answer_found(items: pd.DataFrame) -> dict[str, Found]:
    return {r["uid"]: Found([gold_completion(r)], 1) for r in items.to_dict("records")}


def self_found(items: pd.DataFrame) -> dict[str, Found]:
    """The probe's accepted samples (PROBE ``correct_samples``) of each item, out of its ``n``."""
    return {r["uid"]: Found(list(r["correct_samples"]), int(r["n"])) for r in items.to_dict("records")}


def teacher_found(generator, items: pd.DataFrame, prompt: PromptConfig, cfg: TeacherConfig) -> dict[str, Found]:
    """``cfg.n`` samples of ``generator`` per item under ``prompt``; the accepted ones are kept."""
    res = sample_and_check(generator, items, prompt, cfg.sampling, model="teacher", desc="teacher traces",
                           keep_correct=True)
    return {r["uid"]: Found(list(r["correct_samples"]), int(r["n"])) for r in res.to_dict("records")}


def given_found(items: pd.DataFrame) -> dict[str, Found]:
    """Each item's ``meta["rationale"]``; one without an answer line the checker can read gets
    the gold answer line appended (a rationale naming a wrong answer stays as it is, and is rejected)."""
    out = {}
    for r in items.to_dict("records"):
        meta = json.loads(r["meta"] or "{}") if isinstance(r["meta"], str) else (r["meta"] or {})
        text = meta.get("rationale")
        if not isinstance(text, str) or not text.strip():
            out[r["uid"]] = Found()
            continue
        text = text.strip()
        parsed = judge(text, answer=r["answer"], answer_type=r["answer_type"], choices=r["choices"],
                       meta=r["meta"]).parsed
        out[r["uid"]] = Found([text if parsed else f"{text}\n{gold_completion(r)}"], 1, appended=not parsed)
    return out


def find(targets: str, items: pd.DataFrame, *, prompt: PromptConfig, teacher: TeacherConfig,
         generation: GenerationConfig, compute: ComputeConfig,
         scratch_dir: str | Path) -> tuple[dict[str, Found], dict[str, Any]]:
    """Candidate targets of every item for ``targets``, and what the teacher's generator
    resolved (``{}`` for the other sources). The teacher is loaded with
    :func:`supernova.model.generation_source` (an embedded one converted in ``scratch_dir``,
    removed afterwards) and :func:`supernova.generation.load_generator`."""
    if targets == "answer":
        return answer_found(items), {}
    if targets == "self":
        return self_found(items), {}
    if targets == "given":
        return given_found(items), {}
    where = generation_source(teacher.model, scratch_dir, seed=teacher.seed, field="sft_select.teacher.model")
    try:
        gen = load_generator(where, generation, compute, seed=teacher.seed)
        try:
            found = teacher_found(gen, items, teacher.prompt(prompt), teacher)
        finally:
            gen.close()
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return found, {k: gen.settings[k] for k in ("backend", "dtype") if k in gen.settings}


def pick(texts: list[str], how: str, seed: int, uid: str) -> str:
    """One of an item's accepted traces: the shortest (the first of equals), or a random one
    seeded by ``seed`` and the item's ``uid``."""
    if how == "shortest":
        return min(texts, key=len)
    return random.Random(f"{seed}:{uid}").choice(texts)


def with_targets(items: pd.DataFrame, found: dict[str, Found], how: str,
                 seed: int) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """``items`` that have an accepted target, with that target in a ``target`` column, in their
    order; and for every item its counts (``sampled``, ``candidates``, ``accepted``, ``appended``).
    Each candidate is judged here, whatever judged it before: only accepted ones are picked."""
    kept, counts = [], {}
    for r in items.to_dict("records"):
        f = found.get(r["uid"], Found())
        ok = [t for t in f.texts if accepted(t, r)]
        counts[r["uid"]] = {"sampled": f.sampled, "candidates": len(f.texts), "accepted": len(ok),
                            "appended": f.appended}
        if ok:
            kept.append({**r, "target": pick(ok, how, seed, r["uid"])})
    return pd.DataFrame(kept, columns=[*(c for c in items.columns if c != "target"), "target"]), counts


def excerpt(text: str, head: int = 160, tail: int = 80) -> str:
    """A reviewable excerpt: the whole text when short, else its first ``head`` and last ``tail``
    characters around a note of how many were left out."""
    text = text.strip()
    left = len(text) - head - tail
    if left <= 24:
        return text
    return f"{text[:head]} [... {left} characters ...] {text[-tail:]}"
