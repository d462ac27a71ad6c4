"""Ingest: source and target entries → verifiable items, deduplicated and decontaminated.

Sources become one Parquet file per task (so a new task leaves the others' files, and the stages
that depend on them, untouched); targets are split per sub-task into a dev split (used to measure
utility) and a held-out test split (used only by evaluate).

A target benchmark stays whole: deduplication and the prompt-length filter apply to sources only.
A target item whose prompt is too long stops ingest with an error naming it; an item a benchmark
lists twice is kept twice (the repeat gets its own uid). The split is the benchmark's own when its
kind gives one (``meta["split"]``, e.g. BBEH's mini set as dev; its test split drawn down to
``target_test_size`` items per sub-task unless that is ``null``), else a seeded draw of
``target_dev_size`` dev and ``target_test_size`` test items per sub-task. A target entry with
``role: eval`` is evaluated only: all its items go to test (``meta["role"] = "eval"``), none to
dev, so scoring, utility and mixing never see it; evaluate reports it as out-of-distribution.
Odd items a target keeps as the benchmark gives them (a source kind's ``kept_as_given``, e.g. an
MMLU-Pro question whose gold option's text occurs twice) are counted in the report.

Every item records the answer checker it is scored with (``meta["checker"]``: the entry's
``checker``, else ``answer.checker``).
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

from .answer import AnswerConfig, normalize
from .errors import InputError, ParamsError
from .io import atomic_path, write_json
from .prompts import PromptConfig, messages, template_kwargs
from .schema import ITEM, Item, conform, item_uid, items_frame
from .sources import TaskItems, load_entry
from .sources.common import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """params.yaml section ``ingest``.

    Attributes:
        sources: candidate source tasks, a list of ``{kind: ..., ...}`` entries.
        targets: target sub-tasks (the benchmark), same entry form; each task is one sub-task.
        target_dev_size: items per sub-task in the dev split (utility is measured there), when the
            benchmark gives no split of its own (BBEH's mini set is its dev split, kept whole); at
            most half a sub-task's items, or all that ``target_test_size`` leaves where that is more.
        target_test_size: items per sub-task in the test split (``null``: all the rest); of a
            benchmark's own test split, a seeded draw of that many.
        decontam_ngram: a source item sharing any word n-gram of this length with a target item
            (or equal to one, when shorter) is dropped.
        dedup: drop exact duplicates (same normalised question and answer) among source items
            (a target benchmark keeps its items as they are).
        max_prompt_tokens: source items whose rendered prompt is longer are skipped and counted
            (capped by the model's context length); a target item that long is an error.
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


def _load_all(entries: list, where: str, seed: int, seen: dict[str, tuple[str, str]]) -> list[TaskItems]:
    """The tasks of every entry under ``where`` (``ingest.sources``). ``seen`` maps the tasks loaded
    so far, sources' and targets', to (entry, origin): a task named twice, whether by the same
    source listed twice or by two files of the same name, and a source that is also a target, are
    errors naming both entries."""
    tasks: list[TaskItems] = []
    for i, entry in enumerate(progress(entries, f"load {where.split('.')[-1]}", "entry", leave=True)):
        here = f"{where}[{i}]"
        for t in load_entry(entry, here, seed):
            if t.task in seen:
                other, origin = seen[t.task]
                what = ("a task cannot be both a source and a target" if other.startswith("ingest.sources")
                        and where == "ingest.targets" else "task defined twice")
                raise ParamsError(f"{what}: {here} reads it from {t.origin}, {other} from {origin}",
                                  file="params.yaml", task=t.task, field=here)
            seen[t.task] = (here, t.origin)
            tasks.append(t)
    return tasks


def _prompt_lengths(items: list[Item], tokenizer, prompt: PromptConfig) -> list[int]:
    if tokenizer is None or not items:
        return [0] * len(items)
    convs = [messages(it.to_row(), prompt) for it in items]
    texts = [tokenizer.apply_chat_template(c, tokenize=False, **template_kwargs(c)) for c in convs]
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


def _item_place(it: Item, position: int) -> str:
    """How an error names an item: its index in the source file when known, else its position."""
    if "index" in it.meta:
        return f"example {it.meta['index']}"
    if "row" in it.meta:
        return f"row {it.meta['row']}"
    return f"item {position}"


def _keep_whole(t: TaskItems, lengths: list[int], max_tokens: int, limit_field: str) -> None:
    """A target keeps every item: a prompt over the budget is an error naming the item."""
    for i, (it, n) in enumerate(zip(t.items, lengths)):
        if n > max_tokens:
            raise InputError(f"{_item_place(it, i)}: the prompt has {n} tokens, over the budget of {max_tokens}; "
                             f"a target benchmark keeps every item, so raise {limit_field} (and the model's "
                             f"context) or leave the item out of the benchmark's files", file=t.origin, task=t.task,
                             field="question")


def _unique_uids(targets: list[TaskItems]) -> None:
    """An item a benchmark lists twice stays twice: the repeat's uid hashes its occurrence number."""
    seen: dict[str, int] = {}
    for t in targets:
        for it in t.items:
            n = seen.get(it.uid, 0)
            seen[it.uid] = n + 1
            if n:
                it.uid = item_uid(it.task, it.question, it.answer, it.choices, occurrence=n)
                it.meta["occurrence"] = n


def _split(t: TaskItems, cfg: IngestConfig, seed: int) -> tuple[list[Item], list[Item]]:
    """(dev, test) of one target sub-task."""
    if t.role == "eval":
        return [], list(t.items)
    given = [it.meta.get("split") for it in t.items]
    if any(given):
        dev = [it for it in t.items if it.meta.get("split") == "dev"]
        if not dev:
            raise InputError("the benchmark's dev split has no item of this sub-task", file=t.origin, task=t.task)
        test = [it for it in t.items if it.meta.get("split") != "dev"]
        if cfg.target_test_size is not None and cfg.target_test_size < len(test):
            test = random.Random(f"{seed}:test:{t.task}").sample(test, cfg.target_test_size)
        return dev, test
    items = list(t.items)
    random.Random(f"{seed}:split:{t.task}").shuffle(items)
    if len(items) < 2:
        raise InputError(f"a target sub-task needs at least 2 items for a dev and a test split, has {len(items)}",
                         file=t.origin, task=t.task)
    # dev gets half the items, or more where the test split still gets all target_test_size of its own;
    # test is taken from the end, so a new target_dev_size moves no test item while the test split is full
    room = len(items) // 2 if cfg.target_test_size is None else max(len(items) // 2, len(items) - cfg.target_test_size)
    n_dev = min(cfg.target_dev_size, room)
    n_test = len(items) - n_dev if cfg.target_test_size is None else min(cfg.target_test_size, len(items) - n_dev)
    return items[:n_dev], items[len(items) - n_test:]


def ingest(cfg: IngestConfig, *, seed: int, prompt: PromptConfig, tokenizer=None,
           context_length: int | None = None, answer: AnswerConfig = AnswerConfig()) -> IngestResult:
    """Load, check, deduplicate, decontaminate and split. Raises :class:`InputError` on bad input."""
    loaded: dict[str, tuple[str, str]] = {}
    sources = _load_all(cfg.sources, "ingest.sources", seed, loaded)
    targets = _load_all(cfg.targets, "ingest.targets", seed, loaded)
    if all(t.role == "eval" for t in targets):
        raise ParamsError("every target is evaluation-only (role: eval); utility needs at least one target "
                          "with a dev split", file="params.yaml", field="ingest.targets")
    max_tokens = min(cfg.max_prompt_tokens, context_length or cfg.max_prompt_tokens)
    limit_field = ("ingest.max_prompt_tokens" if max_tokens == cfg.max_prompt_tokens
                   else f"the model's context length ({context_length})")

    model = getattr(tokenizer, "name_or_path", None) or "no tokenizer"
    for group, name in ((sources, "sources"), (targets, "targets")):
        with progress(None, f"check {name} and prompt lengths [{model}]", "item", leave=True,
                      total=sum(len(t.items) for t in group)) as bar:
            for t in group:
                n = len(t.items)
                for it in t.items:
                    if not it.question.strip():
                        raise InputError("empty question", file=t.origin, task=t.task, field="question")
                    if not str(it.answer).strip():
                        raise InputError("empty answer", file=t.origin, task=t.task, field="answer")
                    it.meta["checker"] = t.checker or answer.checker
                    if t.role == "eval":
                        it.meta["role"] = "eval"
                lengths = _prompt_lengths(t.items, tokenizer, prompt)
                if group is targets:
                    _keep_whole(t, lengths, max_tokens, limit_field)
                else:
                    by_uid = dict(zip((it.uid for it in t.items), lengths))
                    _filter(t, lambda it: by_uid[it.uid] <= max_tokens, "too_long")
                bar.update(n)
    _unique_uids(targets)

    seen: set[str] = set()

    def first(it: Item) -> bool:
        key = _content_key(it)
        if key in seen:
            return False
        seen.add(key)
        return True

    decon = Decontaminator([it.question for t in targets for it in t.items], cfg.decontam_ngram)
    what = f"{'dedup and ' if cfg.dedup else ''}{cfg.decontam_ngram}-gram decontamination of sources"
    for t in progress(sources, what, "task", leave=True):
        if cfg.dedup:
            _filter(t, first, "duplicate")
        _filter(t, lambda it: not decon.contaminated(it.question), "contaminated")

    for t in sources:
        if not t.items:
            raise InputError(f"no items left after filtering (dropped: {t.skipped})", file=t.origin, task=t.task)

    dev_rows, test_rows = [], []
    for t in targets:
        dev, test = _split(t, cfg, seed)
        dev_rows += dev
        test_rows += test
        t.skipped["split_dev"], t.skipped["split_test"] = len(dev), len(test)

    report = {
        "sources": {t.task: {"items": len(t.items), "format": t.format, "skill": t.items[0].skill,
                             "origin": t.origin, "dropped": {k: v for k, v in sorted(t.skipped.items())}}
                    for t in sources},
        "targets": {t.task: {"dev": t.skipped.pop("split_dev"), "test": t.skipped.pop("split_test"),
                             "format": t.format, "origin": t.origin,
                             "dropped": {k: v for k, v in sorted(t.skipped.items())},
                             **({"kept_as_given": dict(sorted(t.kept_as_given.items()))} if t.kept_as_given else {}),
                             **({"role": "eval"} if t.role == "eval" else {}),
                             **({"name_in_source": t.name_in_source} if t.name_in_source else {})}
                    for t in targets},
    }
    report["totals"] = {
        "source_tasks": len(sources), "source_items": sum(len(t.items) for t in sources),
        "target_subtasks": len(targets), "dev_items": len(dev_rows), "test_items": len(test_rows),
        "dropped_duplicate": sum(t.skipped.get("duplicate", 0) for t in sources + targets),
        "dropped_contaminated": sum(t.skipped.get("contaminated", 0) for t in sources),
        "dropped_too_long": sum(t.skipped.get("too_long", 0) for t in sources),
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
