"""``kind: hf`` — a Hugging Face dataset (hub id) or a local Parquet/JSONL/JSON/CSV file or folder.

Loaded with :func:`datasets.load_dataset`; no dataset script or other remote code is ever run
(``datasets`` 5 has no loader scripts, and none is asked for). ``columns`` maps the item fields to
dataset columns (defaults: ``question`` and ``answer``; ``choices``, ``answer_index``, ``skill`` and
``rationale`` are optional). ``rationale`` names a column of worked solutions shipped with the
data (MMLU-Pro's ``cot_content``, a dataset's explanation or solution field); each row's text is
kept as the item's ``meta["rationale"]``, where ``sft_select.targets: given`` finds it (an empty
or missing cell: no rationale).

Answers: a string, a list of strings (the first canonical, the rest aliases), a number or a
boolean (written as text). With a ``choices`` column the answer selects a choice: its text, a
letter ("B"), or an integer index (0-based); ``columns.answer_index`` names an integer column
giving the 0-based index instead (MMLU-Pro's ``answer_index``), which is used in place of
``answer`` and is never mistaken for an option's text.

Two kinds of multiple-choice rows are odd. In a source they are skipped and counted: rows whose
gold choice's text occurs twice among the choices (``ambiguous_choices``) and rows with fewer than
two choices (``fewer_than_two_choices``). A target (``role: target`` or ``eval``) keeps every row,
as the benchmark gives it: a repeated gold text is kept, its gold the row's own index or letter,
and counted (``kept_as_given: {gold_text_repeated: n}`` in ingest's report); a row with fewer than
two choices cannot be posed as multiple choice and stops ingest naming the file, task and row.

The task is ``task``, or each row's ``task_column`` value, or else the dataset's name (file stem
or the last part of the hub id, with ``-<name>`` for a config). A ``task_column`` value that is not
a valid task name ("computer science") becomes one ("computer_science"); ingest reports the
original as ``name_in_source``. ``tasks`` keeps only the rows of the tasks it names (by task name
or as the column spells them). With ``HF_HUB_OFFLINE=1`` a hub id that is not in the local cache
is a one-line error.

MMLU-Pro comes in two layouts, both read by this kind: the hub's (``TIGER-Lab/MMLU-Pro``, test
split exported to a local file; ``task_column: category``, 14 categories) and the copy SuperNova
evaluates (``evalchemy/eval/chat_benchmarks/MMLUPro_pass/data.json``, JSON Lines, 1,203 rows with
no ``category`` but ``src``, the question's origin: ``task_column: src``); both with
``columns: {choices: options, answer_index: answer_index}``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..answer import normalize
from ..errors import InputError, ParamsError
from ..formats import RawExample
from . import SOURCE, TaskItems, check_task_name, register, safe_task_name
from .common import build_task, describe, param_list, progress, rationale_meta

FIELDS = {
    "dataset": None,       # hub id, or a local .parquet/.jsonl/.json/.csv file or a folder of them
    "split": "train",
    "name": None,          # dataset config
    "task": None,          # task name (default: the dataset's name)
    "task_column": None,   # or: a column whose values name each row's task
    "tasks": None,         # keep only these tasks (task names or task_column values); None = all
    "columns": {},         # item field -> column: question, answer, choices, skill
}
log = logging.getLogger(__name__)
COLUMN_FIELDS = ("question", "answer", "choices", "answer_index", "skill", "rationale")
#: meta key (and ``kept_as_given`` reason) of a target row whose gold choice's text occurs twice
GOLD_TEXT_REPEATED = "gold_text_repeated"
LOCAL_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def is_local(dataset: str) -> bool:
    """Whether ``dataset`` names a local file or folder rather than a hub id."""
    return (Path(dataset).exists() or Path(dataset).suffix.lower() in LOCAL_BUILDERS
            or dataset.startswith((".", "/", "~")) or "\\" in dataset)


def hub_offline() -> bool:
    """Whether the hub may not be contacted (``HF_HUB_OFFLINE``)."""
    import datasets

    return bool(datasets.config.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def quiet_datasets():
    """Silence ``datasets``' own error log and progress bars: a failure is reported once, as one line."""
    import datasets

    logger = logging.getLogger("datasets")
    level, bars = logger.level, datasets.is_progress_bar_enabled()
    logger.setLevel(logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def root_cause(e: BaseException) -> BaseException:
    """The innermost explicitly chained exception (datasets wraps parse errors in DatasetGenerationError)."""
    while e.__cause__ is not None:
        e = e.__cause__
    return e


def is_blank(path: Path) -> bool:
    """Whether a file holds nothing but whitespace (``datasets`` fails on one without saying so)."""
    with open(path, "rb") as f:
        return not any(chunk.strip() for chunk in iter(lambda: f.read(1 << 16), b""))


def load_rows(dataset: str, name: str | None, split: str):
    """The split as a :class:`datasets.Dataset`; every failure is one :class:`InputError` line."""
    import datasets

    local = is_local(dataset)
    path = Path(dataset).expanduser()
    if local and not path.exists():
        raise InputError("no such file or folder", file=dataset, field="dataset")
    if local and path.is_file() and path.suffix.lower() not in LOCAL_BUILDERS:
        raise InputError(f"unsupported file type {path.suffix!r}; use one of {sorted(LOCAL_BUILDERS)}",
                         file=dataset, field="dataset")
    if local and path.is_file() and is_blank(path):
        raise InputError("empty file", file=dataset, field="dataset")
    try:
        with quiet_datasets():
            if local and path.is_file():
                return datasets.load_dataset(LOCAL_BUILDERS[path.suffix.lower()], data_files={split: str(path)},
                                             split=split)
            return datasets.load_dataset(str(path) if local else dataset, name=name, split=split)
    except Exception as e:  # datasets raises many types; each becomes one line naming the dataset
        if not local and hub_offline() and isinstance(e, (ConnectionError, OSError)):
            raise InputError("hub dataset is not in the local cache and HF_HUB_OFFLINE=1 is set "
                             "(download it once online, or give a local Parquet/JSONL/JSON/CSV path)",
                             file=dataset, field="dataset") from None
        cause = root_cause(e)
        text = str(cause).strip()
        field = "split" if "split" in str(e).lower() else "dataset"
        reason = f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__
        raise InputError(f"cannot load: {reason}", file=dataset, field=field) from None


def column_map(entry: dict[str, Any]) -> dict[str, str]:
    """Item field -> column, with the defaults filled in and the mapping checked."""
    columns = entry["columns"] or {}
    if not isinstance(columns, dict):
        raise ParamsError("must map item fields to column names", file="params.yaml", field="columns")
    unknown = sorted(set(columns) - set(COLUMN_FIELDS))
    if unknown:
        raise ParamsError(f"unknown item field; allowed: {list(COLUMN_FIELDS)}", file="params.yaml",
                          field=f"columns.{unknown[0]}")
    mapping = {"question": "question", **({} if "answer_index" in columns else {"answer": "answer"}), **columns}
    if "answer_index" in mapping and "choices" not in mapping:
        raise ParamsError("an answer index needs a choices column", file="params.yaml", field="columns.answer_index")
    for key, col in mapping.items():
        if not isinstance(col, str) or not col:
            raise ParamsError("must be a column name", file="params.yaml", field=f"columns.{key}")
    return mapping


def default_task(dataset: str, name: str | None) -> str:
    """The dataset's file stem or the last part of its hub id, with ``-<config>``."""
    base = Path(dataset).stem if is_local(dataset) else dataset.rstrip("/").split("/")[-1]
    return f"{base}-{name}" if name else base


def answer_texts(value: Any) -> list[str] | None:
    """A free-form answer cell as texts (None when it has no usable answer)."""
    if isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        return [value.strip()] if value.strip() else None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        texts = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        return texts or None
    return None


def choice_index(value: Any, choices: list[str]) -> int | None:
    """The gold choice selected by an answer cell: its text, a letter, or a 0-based index."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < len(choices) else None
    if not isinstance(value, str):
        return None
    hits = [i for i, c in enumerate(choices) if normalize(c) == normalize(value)]
    if hits:
        return hits[0]
    letter = value.strip().strip("()").upper()
    if len(letter) == 1 and "A" <= letter < chr(ord("A") + len(choices)):
        return ord(letter) - ord("A")
    return None


def row_example(row: dict[str, Any], cols: dict[str, str], index: int, meta: dict[str, Any], dataset: str,
                task: str, whole: bool = False) -> RawExample | str:
    """One row as an example, or the reason it is skipped. ``whole`` (a target): nothing is skipped;
    a row that cannot be posed is an error, an odd one is kept and marked in its meta."""
    question = row[cols["question"]]
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"row {index} (column {cols['question']!r}): must be a non-empty string, "
                         f"got {describe(question)}", file=dataset, task=task, field="columns.question")
    answer_col = cols.get("answer_index") or cols["answer"]
    answer = row[answer_col]
    where = f"row {index} (column {answer_col!r})"
    if "choices" not in cols:
        texts = answer_texts(answer)
        if texts is None:
            raise InputError(f"{where}: no usable answer, got {describe(answer)}", file=dataset, task=task,
                             field="columns.answer")
        return RawExample(question, texts, meta)
    choices = row[cols["choices"]]
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise InputError(f"row {index} (column {cols['choices']!r}): must be a list of strings, "
                         f"got {describe(choices)}", file=dataset, task=task, field="columns.choices")
    if len(choices) < 2:
        if whole:
            raise InputError(f"row {index} (column {cols['choices']!r}): {len(choices)} choice(s); a multiple-choice "
                             "item needs at least two, and a target keeps every row: fix the row or leave it out of "
                             "the file", file=dataset, task=task, field="columns.choices")
        return "fewer_than_two_choices"
    choices = [c.strip() for c in choices]
    if "answer_index" in cols:
        ok = isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices)
        idx = answer if ok else None
        if idx is None:
            raise InputError(f"{where}: must be a choice index 0..{len(choices) - 1}, got {answer!r}",
                             file=dataset, task=task, field="columns.answer_index")
    else:
        idx = choice_index(answer, choices)
    if idx is None:
        raise InputError(f"{where}: {answer!r} is not a choice, a letter or a choice index",
                         file=dataset, task=task, field="columns.answer")
    if sum(normalize(c) == normalize(choices[idx]) for c in choices) > 1:
        if not whole:
            return "ambiguous_choices"
        meta[GOLD_TEXT_REPEATED] = True
    return RawExample(question, [choices[idx]], meta, choices=choices, gold=idx)


def row_task(row: dict[str, Any], entry: dict[str, Any], fallback: str, dataset: str, index: int) -> tuple[str, str]:
    """The task a row belongs to, and its name as the dataset spells it."""
    column = entry["task_column"]
    if not column:
        return fallback, fallback
    value = row[column]
    name = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not name:
        what = "is empty" if isinstance(value, str) else f"must be a task name, got {describe(value)}"
        raise InputError(f"row {index} (column {column!r}): {what}", file=dataset, field="task_column")
    return safe_task_name(name, dataset), name


def check_entry(entry: dict[str, Any]) -> tuple[str, str]:
    """The validated ``dataset`` and ``split``."""
    dataset, split = entry["dataset"], entry["split"]
    if not isinstance(dataset, str) or not dataset.strip():
        raise ParamsError("required: a hub id or a local Parquet/JSONL/JSON/CSV path", file="params.yaml",
                          field="dataset")
    if not isinstance(split, str) or not split.strip():
        raise ParamsError("must be a split name such as train", file="params.yaml", field="split")
    if entry["task"] and entry["task_column"]:
        raise ParamsError("give task or task_column, not both", file="params.yaml", field="task_column")
    return dataset, split


@register("hf", FIELDS)
def load(entry: dict[str, Any], seed: int) -> list[TaskItems]:
    """One :class:`TaskItems` per task (one, or one per ``task_column`` value)."""
    dataset, split = check_entry(entry)
    cols = column_map(entry)
    fallback = check_task_name(entry["task"] or default_task(dataset, entry["name"]), file=dataset)
    ds = load_rows(dataset, entry["name"], split)
    needed = list(dict.fromkeys([*cols.values(), *([entry["task_column"]] if entry["task_column"] else [])]))
    for key, col in [*cols.items(), ("task_column", entry["task_column"])]:
        if col and col not in ds.column_names:
            field = "task_column" if key == "task_column" else f"columns.{key}"
            raise InputError(f"no column {col!r}; the split has {ds.column_names}", file=dataset,
                             task=None if entry["task_column"] else fallback, field=field)
    data = ds.select_columns(needed).to_dict()
    wanted = param_list(entry, "tasks")
    whole = entry["role"] != SOURCE
    grouped: dict[str, list[tuple[RawExample, str | None]]] = defaultdict(list)
    skipped: dict[str, dict[str, int]] = defaultdict(dict)
    spelled: dict[str, str] = {}
    for i in progress(range(len(ds)), f"hf {dataset}", "row"):
        row = {c: data[c][i] for c in needed}
        task, raw = row_task(row, entry, fallback, dataset, i)
        if spelled.setdefault(task, raw) != raw:
            raise InputError(f"row {i}: {raw!r} and {spelled[task]!r} both become task {task!r}", file=dataset,
                             task=task, field="task_column")
        if wanted is not None and task not in wanted and raw not in wanted:
            continue
        meta = {"dataset": dataset, "split": split, "row": i}
        if "rationale" in cols:
            meta.update(rationale_meta(row[cols["rationale"]], file=dataset, task=task,
                                       where=f"row {i} (column {cols['rationale']!r})", field="columns.rationale"))
        ex = row_example(row, cols, i, meta, dataset, task, whole)
        if isinstance(ex, str):
            skipped[task][ex] = skipped[task].get(ex, 0) + 1
            continue
        skill = row[cols["skill"]] if "skill" in cols else None
        grouped[task].append((ex, str(skill).strip() if skill not in (None, "") else None))
    if wanted is not None:
        missing = [w for w in wanted if not any(w in (task, raw) for task, raw in spelled.items())]
        if missing:
            available = ", ".join(sorted(spelled)[:8]) + (", ..." if len(spelled) > 8 else "")
            raise InputError(f"no task {missing[0]!r} (available: {available})", file=dataset, field="tasks")
    if not grouped:
        raise InputError(f"split {split!r} has no usable rows (skipped: {dict(skipped)})", file=dataset,
                         task=fallback, field="split")
    out = []
    for task, pairs in grouped.items():
        t = task_items(task, pairs, entry, dataset, split, skipped[task])
        repeated = sum(bool(it.meta.get(GOLD_TEXT_REPEATED)) for it in t.items)
        if repeated:
            t.kept_as_given[GOLD_TEXT_REPEATED] = repeated
        if spelled[task] != task:
            t.name_in_source = spelled[task]
            log.info("%s: %s %r is task %r", dataset, entry["task_column"], spelled[task], task)
        out.append(t)
    return out


def task_items(task: str, pairs: list[tuple[RawExample, str | None]], entry: dict[str, Any], dataset: str,
               split: str, skipped: dict[str, int]) -> TaskItems:
    """Items of one task; a ``skill`` column overrides the task-wide skill per row."""
    skill = entry["skill"] or task
    for ex, row_skill in pairs:
        ex.meta["skill"] = row_skill or skill
    t = build_task([ex for ex, _ in pairs], entry, source=f"hf:{dataset}:{split}", task=task, skill=skill,
                   origin=f"{dataset}:{split}" if not is_local(dataset) else dataset, skipped=skipped)
    for it in t.items:
        it.skill = it.meta.pop("skill")
    return t
