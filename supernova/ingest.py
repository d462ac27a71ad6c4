"""Ingest: source and target entries → verifiable items, deduplicated and decontaminated.

Sources become one Parquet file per task (so a new task leaves the others' files, and the stages
that depend on them, untouched); targets are split per sub-task into a dev split (used to measure
utility) and a held-out test split (used only by evaluate).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from .answer import normalize
from .errors import InputError, ParamsError
from .io import atomic_path, write_json
from .prompts import PromptConfig, messages
from .schema import ITEM, Item, conform, items_frame
from .sources import TaskItems, load_entry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """params.yaml section ``ingest``.

    Attributes:
        sources: candidate source tasks, a list of ``{kind: ..., ...}`` entries.
        targets: target sub-tasks (the benchmark), same entry form; each task is one sub-task.
        target_dev_size: items per sub-task in the dev split (utility is measured there).
        target_test_size: items per sub-task in the test split (``null``: all the rest).
        decontam_ngram: a source item sharing any word n-gram of this length with a target item
            (or equal to one, when shorter) is dropped.
        dedup: drop exact duplicates (same normalised question and answer) inside the pool.
        max_prompt_tokens: items whose rendered prompt is longer are skipped and counted
            (capped by the model's context length).
    """

    sources: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    target_dev_size: int = 16
    target_test_size: int | None = 32
    decontam_ngram: int = 13
    dedup: bool = True
    max_prompt_tokens: int = 1024

    def __post_init__(self):
        if not self.sources:
            raise ParamsError("at least one source entry is needed", file="params.yaml", field="ingest.sources")
        if not self.targets:
            raise ParamsError("at least one target entry is needed", file="params.yaml", field="ingest.targets")
        if self.decontam_ngram < 1:
            raise ParamsError("must be >= 1", file="params.yaml", field="ingest.decontam_ngram")


_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> set[int]:
    return {hash(tuple(tokens[i:i + n])) for i in range(len(tokens) - n + 1)}


class Decontaminator:
    """Word n-gram overlap against a reference (target) set, after normalisation."""

    def __init__(self, reference_texts: list[str], n: int):
        self.n = n
        self.grams: set[int] = set()
        self.short: set[str] = set()
        for t in reference_texts:
            w = words(t)
            self.grams |= ngrams(w, n)
            self.short.add(" ".join(w))

    def contaminated(self, text: str) -> bool:
        w = words(text)
        if " ".join(w) in self.short:
            return True
        return any(g in self.grams for g in ngrams(w, self.n))


def _content_key(it: Item) -> str:
    """Same question and answer up to case, markup and whitespace (so "1 + 1 ?" == "1+1?")."""
    gold = it.answer
    if it.answer_type == "mcq":
        gold = it.choices[ord(it.answer) - ord("A")]
    return "".join(normalize(it.question).split()) + "\x00" + "".join(normalize(gold).split())


def _load_all(entries: list, where: str, seed: int) -> list[TaskItems]:
    tasks: list[TaskItems] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries):
        for t in load_entry(entry, f"{where}[{i}]", seed):
            if t.task in seen:
                raise InputError(f"task defined twice (also by {seen[t.task]})", file=t.origin, task=t.task,
                                 field="task")
            seen[t.task] = t.origin
            tasks.append(t)
    return tasks


def _prompt_lengths(items: list[Item], tokenizer, prompt: PromptConfig) -> list[int]:
    if tokenizer is None or not items:
        return [0] * len(items)
    texts = [tokenizer.apply_chat_template(messages(it.to_row(), prompt), tokenize=False,
                                           add_generation_prompt=True) for it in items]
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(e) for e in enc]


def _filter(task: TaskItems, keep_fn, reason: str) -> None:
    kept = [it for it in task.items if keep_fn(it)]
    dropped = len(task.items) - len(kept)
    if dropped:
        task.skipped[reason] = task.skipped.get(reason, 0) + dropped
    task.items = kept


@dataclass
class IngestResult:
    sources: list[TaskItems]
    dev: pd.DataFrame
    test: pd.DataFrame
    report: dict[str, Any]


def ingest(cfg: IngestConfig, *, seed: int, prompt: PromptConfig, tokenizer=None,
           context_length: int | None = None) -> IngestResult:
    """Load, check, deduplicate, decontaminate and split. Raises :class:`InputError` on bad input."""
    sources = _load_all(cfg.sources, "ingest.sources", seed)
    targets = _load_all(cfg.targets, "ingest.targets", seed)
    max_tokens = min(cfg.max_prompt_tokens, context_length or cfg.max_prompt_tokens)

    for group in (sources, targets):
        for t in group:
            for it in t.items:
                if not it.question.strip():
                    raise InputError("empty question", file=t.origin, task=t.task, field="question")
                if not str(it.answer).strip():
                    raise InputError("empty answer", file=t.origin, task=t.task, field="answer")
            lengths = dict(zip((it.uid for it in t.items), _prompt_lengths(t.items, tokenizer, prompt)))
            _filter(t, lambda it: lengths[it.uid] <= max_tokens, "too_long")

    if cfg.dedup:
        for group in (sources, targets):
            seen: set[str] = set()
            for t in group:
                def first(it: Item) -> bool:
                    key = _content_key(it)
                    if key in seen:
                        return False
                    seen.add(key)
                    return True
                _filter(t, first, "duplicate")

    decon = Decontaminator([it.question for t in targets for it in t.items], cfg.decontam_ngram)
    for t in sources:
        _filter(t, lambda it: not decon.contaminated(it.question), "contaminated")

    for t in sources:
        if not t.items:
            raise InputError(f"no items left after filtering (dropped: {t.skipped})", file=t.origin, task=t.task)

    dev_rows, test_rows = [], []
    for t in targets:
        items = list(t.items)
        random.Random(f"{seed}:split:{t.task}").shuffle(items)
        if len(items) < 2:
            raise InputError(f"a target sub-task needs at least 2 items for a dev and a test split, has {len(items)}",
                             file=t.origin, task=t.task)
        n_dev = min(cfg.target_dev_size, len(items) // 2)
        dev = items[:n_dev]
        test = items[n_dev:] if cfg.target_test_size is None else items[n_dev:n_dev + cfg.target_test_size]
        dev_rows += dev
        test_rows += test
        t.skipped["split_dev"], t.skipped["split_test"] = len(dev), len(test)

    report = {
        "sources": {t.task: {"items": len(t.items), "format": t.format, "skill": t.items[0].skill,
                             "origin": t.origin, "dropped": {k: v for k, v in sorted(t.skipped.items())}}
                    for t in sources},
        "targets": {t.task: {"dev": t.skipped.pop("split_dev"), "test": t.skipped.pop("split_test"),
                             "format": t.format, "origin": t.origin,
                             "dropped": {k: v for k, v in sorted(t.skipped.items())}}
                    for t in targets},
    }
    report["totals"] = {
        "source_tasks": len(sources), "source_items": sum(len(t.items) for t in sources),
        "target_subtasks": len(targets), "dev_items": len(dev_rows), "test_items": len(test_rows),
        "dropped_duplicate": sum(t.skipped.get("duplicate", 0) for t in sources + targets),
        "dropped_contaminated": sum(t.skipped.get("contaminated", 0) for t in sources),
        "dropped_too_long": sum(t.skipped.get("too_long", 0) for t in sources + targets),
    }
    return IngestResult(sources, items_frame(dev_rows), items_frame(test_rows), report)


def write_ingest(result: IngestResult, sources_dir: Path, dev_path: Path, test_path: Path, metrics_path: Path) -> None:
    """Write every artifact of ingest, each atomically (a failure leaves the previous ones)."""
    with atomic_path(sources_dir, is_dir=True) as tmp:
        for t in result.sources:
            pq.write_table(conform(items_frame(t.items), ITEM), tmp / f"{t.task}.parquet")
    assert dev_path.parent == test_path.parent
    with atomic_path(dev_path.parent, is_dir=True) as tmp:
        pq.write_table(conform(result.dev, ITEM), tmp / dev_path.name)
        pq.write_table(conform(result.test, ITEM), tmp / test_path.name)
    write_json(metrics_path, result.report)
