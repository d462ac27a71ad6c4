"""``kind: bigbench`` — BIG-Bench Hard, BIG-Bench Extra Hard and BIG-bench ``task.json`` files.

Layouts (``path``):

* BBH: a folder of ``<name>.json`` files, or one file, each ``{"examples": [{"input", "target"}]}``
  (a ``canary`` key and other top-level keys are ignored); the sub-task is the file stem.
* BBEH: a folder of ``<subtask>/task.json`` folders with the same example form; the sub-task is
  the folder name (characters a task name cannot hold become ``_``). A folder without top-level
  ``<name>.json`` files is read this way, so every sub-folder of it must hold a ``task.json``.
* BIG-bench: ``task.json`` with ``examples: [{"input", "target_scores": {choice: score}}]`` —
  multiple choice with the given choices; the gold is the choice with the highest score, which
  must be positive. An example whose top score is shared by several choices has no single gold
  and is skipped (``ambiguous_gold``).

Targets must be strings; a list of strings is accepted as several correct answers (BIG-bench's
own convention, the first is canonical). Anything else (numbers, booleans, objects) is an error
naming the file, task and field: converting it would be guesswork about its printed form.

Multiple choice written into the input: when most inputs of a sub-task end with an ``Options:``
block — ``(A) text`` lines (BBH) or ``- text`` lines — the options are taken out of the question
and become the item's choices (the prompt shows them again in the same form), and the target —
a letter such as ``(B)`` or an option's text — selects the gold choice. The checker then accepts
the letter in any form (``B``, ``(B)``) as well as the option's text. Examples whose options block
cannot be read (``options_unreadable``, e.g. a truncated input), whose target is not one of their
options (``target_not_an_option``), or whose gold option's text occurs twice
(``ambiguous_options``) are skipped and counted. With ``format: exact`` a sub-task whose targets
are option texts (``- Yes``/``- No``) stays free-form; letter targets always need the choices.
If fewer than half of the inputs have an options block, letter targets stay exact answers with
the bare letter as an alias. A free-form item whose target is a letter among options written into
its input (an ``Options:`` block, or lines starting ``(A)``, ``(B)``, ... as BBEH writes some
sub-tasks) records how many there are (``num_options``), for the chance level.

``columns: {rationale: <key>}`` names a key of the examples that holds a worked solution (e.g. a
BBH example written with its chain of thought); its text becomes the item's ``meta["rationale"]``,
where ``sft_select.targets: given`` finds it (an example without the key: no rationale).

A free-form target made only of bracket symbols (``dyck_languages``: ``] ) }``) also accepts the
same symbols written without spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..answer import normalize
from ..errors import InputError, ParamsError
from ..formats import RawExample
from . import TaskItems, register, safe_task_name
from .common import (build_task, describe, json_files, nonempty_list, param_list, progress, rationale_meta,
                     read_json_file, require_path, required_string)

FIELDS = {
    "path": None,        # a BBH folder or file, a BBEH folder, or a BIG-bench task.json
    "tasks": None,       # sub-task names to include; None = all
    "verbatim": False,   # true: inputs and targets exactly as written, free-form (no options parsing)
    "dev_items": None,   # a JSON file of examples (BBEH's mini/data.json) that form the dev split
    "columns": {},       # {rationale: <example key>}: a worked solution kept as meta["rationale"]
}
COLUMN_FIELDS = ("rationale",)

_OPTIONS_HEADER = re.compile(r"(?m)^[ \t]*Options:[ \t]*$")
_LETTER_OPTION = re.compile(r"^\(([A-Z])\)\s*(.*)$")
_DASH_OPTION = re.compile(r"^-\s+(.*)$")
_LETTER_TARGET = re.compile(r"^\(([A-Z])\)$")
_BRACKETS = re.compile(r"^[()\[\]{}<>]+(?: [()\[\]{}<>]+)+$")


@dataclass
class Parsed:
    """One example as read from the file, before the sub-task's format is decided."""

    index: int
    text: str
    answers: list[str] = field(default_factory=list)
    scores: dict[str, float] | None = None
    rationale: dict[str, str] = field(default_factory=dict)   # {"rationale": text} or {}

    def meta(self, **extra: Any) -> dict[str, Any]:
        """The meta every example built from it starts with: its index and its rationale."""
        return {"index": self.index, **self.rationale, **extra}


def discover(path: Path) -> list[tuple[str, Path]]:
    """(sub-task name, file) pairs for the layouts the kind accepts."""
    if path.is_file():
        json_files(path, "task file")
        raw = path.resolve().parent.name if path.name == "task.json" else path.stem
        return [(safe_task_name(raw, str(path)), path)]
    if (path / "task.json").is_file():
        return [(safe_task_name(path.resolve().name, str(path / "task.json")), path / "task.json")]
    files = json_files(path, "task file")
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in folders:
        if (d / "task.json").is_dir():
            raise InputError("is a folder, expected the sub-task's task.json file", file=str(d / "task.json"),
                             field="path")
    nested = [d for d in folders if (d / "task.json").is_file()]
    stray = [d for d in folders if d not in nested]
    if not files and stray:
        raise InputError("folder has no task.json (expected <subtask>/task.json folders or <name>.json files)",
                         file=str(stray[0]), field="path")
    if not files and not nested:
        raise InputError("no task files (expected <name>.json files or <subtask>/task.json folders)",
                         file=str(path), field="path")
    found = [(safe_task_name(p.stem, str(p)), p) for p in files] + \
        [(safe_task_name(d.name, str(d / "task.json")), d / "task.json") for d in nested]
    names: dict[str, Path] = {}
    for name, file in found:
        if name in names:
            raise InputError(f"sub-task name {name!r} is also used by {names[name]}", file=str(file), task=name,
                             field="path")
        names[name] = file
    return found


def select(found: list[tuple[str, Path]], wanted: list[str] | None, path: Path) -> list[tuple[str, Path]]:
    """The sub-tasks named in ``tasks`` (by task name or original file/folder name)."""
    if wanted is None:
        return found
    keys = {name: {name, file.stem if file.name != "task.json" else file.parent.name} for name, file in found}
    missing = [w for w in wanted if not any(w in k for k in keys.values())]
    if missing:
        available = ", ".join(sorted(keys)[:8]) + (", ..." if len(keys) > 8 else "")
        raise InputError(f"no sub-task {missing[0]!r} (available: {available})", file=str(path), field="tasks")
    return [(name, file) for name, file in found if keys[name] & set(wanted)]


def target_answers(value: Any, file: str, task: str, where: str) -> list[str]:
    """The accepted answers of a ``target``: a string, or a list of strings."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise InputError(f"target must be a string or a list of strings, got {describe(value)}",
                         file=file, task=task, field=f"{where}.target")
    answers = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not answers:
        raise InputError("empty target", file=file, task=task, field=f"{where}.target")
    return answers


def target_scores(value: Any, file: str, task: str, where: str) -> dict[str, float]:
    """A ``target_scores`` mapping checked: choice text -> number, at least one positive."""
    fld = f"{where}.target_scores"
    if not isinstance(value, dict) or len(value) < 2:
        raise InputError(f"must map at least two choices to scores, got {describe(value)}",
                         file=file, task=task, field=fld)
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in value.values()):
        raise InputError("scores must be numbers", file=file, task=task, field=fld)
    if not any(s > 0 for s in value.values()):
        raise InputError("no positive choice: one choice needs the top score > 0", file=file, task=task, field=fld)
    return {str(k).strip(): float(s) for k, s in value.items()}


def parse_examples(doc: Any, file: str, task: str, rationale: str | None = None) -> list[Parsed]:
    """The file's examples, each checked for a string input and a target or target_scores (and
    its ``rationale`` key's text kept, when one is named)."""
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object with 'examples', got {describe(doc)}", file=file, task=task)
    examples = nonempty_list(doc, "examples", file=file, task=task, empty="sub-task has no examples")
    out = []
    for i, ex in enumerate(examples):
        where = f"examples[{i}]"
        if not isinstance(ex, dict):
            raise InputError(f"must be an object, got {describe(ex)}", file=file, task=task, field=where)
        text = required_string(ex, "input", file=file, task=task, where=where)
        if "target_scores" in ex:
            p = Parsed(i, text, scores=target_scores(ex["target_scores"], file, task, where))
        elif "target" in ex:
            p = Parsed(i, text, answers=target_answers(ex["target"], file, task, where))
        else:
            raise InputError("needs a 'target' or 'target_scores'", file=file, task=task, field=where)
        if rationale:
            p.rationale = rationale_meta(ex.get(rationale), file=file, task=task, where=where,
                                         field=f"{where}.{rationale}")
        out.append(p)
    if any(p.scores for p in out) and not all(p.scores for p in out):
        first = next(p.index for p in out if not p.scores)
        raise InputError("target_scores missing (other examples of the sub-task have it)", file=file, task=task,
                         field=f"examples[{first}]")
    return out


def split_options(text: str) -> tuple[str, list[str], str] | None:
    """(question without the block, option texts, "letter" | "dash") for an input ending in an
    ``Options:`` block, else None."""
    headers = list(_OPTIONS_HEADER.finditer(text))
    if not headers:
        return None
    head = headers[-1]
    lines = [ln.strip() for ln in text[head.end():].splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    letters = [_LETTER_OPTION.match(ln) for ln in lines]
    if all(letters) and [m.group(1) for m in letters] == [chr(ord("A") + i) for i in range(len(lines))]:
        return text[:head.start()].rstrip(), [m.group(2).strip() for m in letters], "letter"
    dashes = [_DASH_OPTION.match(ln) for ln in lines]
    if all(dashes):
        return text[:head.start()].rstrip(), [m.group(1).strip() for m in dashes], "dash"
    return None


def gold_index(target: str, options: list[str], style: str) -> int | str:
    """The gold option's index, or the skip reason when the target does not pick one option."""
    m = _LETTER_TARGET.match(target)
    if m and style == "letter":
        idx = ord(m.group(1)) - ord("A")
        if idx >= len(options):
            return "target_not_an_option"
    else:
        hits = [i for i, o in enumerate(options) if normalize(o) == normalize(target)]
        if not hits:
            return "target_not_an_option"
        idx = hits[0]
    if sum(normalize(o) == normalize(options[idx]) for o in options) > 1:
        return "ambiguous_options"
    return idx


def free_form_spellings(answers: list[str]) -> list[str]:
    """Spellings of the answers the lenient checker should also accept (bare letter, unspaced
    brackets); BBEH's rules do not take them."""
    out = []
    for a in answers:
        m = _LETTER_TARGET.match(a)
        if m:
            out.append(m.group(1))
        elif _BRACKETS.match(a):
            out.append(a.replace(" ", ""))
    return [s for s in dict.fromkeys(out) if s not in answers]


def lettered_options(text: str) -> int:
    """How many options the input's last lettered list has: lines starting ``(A) ``, ``(B) ``, ...
    in letter order from its last ``(A)`` line on (an option may run over several lines), with no
    ``Options:`` header needed (BBEH's disambiguation_qa, nycc and boolean_expressions write their
    options so); 0 when there is no such list of two or more."""
    lines = [ln.strip() for ln in text.splitlines()]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("(A)")]
    if not starts:
        return 0
    letters = [m.group(1) for ln in lines[starts[-1]:] if (m := _LETTER_OPTION.match(ln))]
    return len(letters) if len(letters) >= 2 and letters == [chr(ord("A") + i) for i in range(len(letters))] else 0


def free_form_example(p: Parsed) -> RawExample:
    """An example kept as written: the input is the question, the targets the answers."""
    meta: dict[str, Any] = p.meta()
    spellings = free_form_spellings(p.answers)
    if spellings:
        meta["spellings"] = spellings
    # multiple choice written into the input: the number of options, for the chance level
    block = split_options(p.text)
    if block is not None and isinstance(gold_index(p.answers[0], block[1], block[2]), int):
        meta["num_options"] = len(block[1])
    elif block is None and (m := _LETTER_TARGET.match(p.answers[0])):
        n = lettered_options(p.text)
        if ord(m.group(1)) - ord("A") < n:
            meta["num_options"] = n
    return RawExample(p.text, list(p.answers), meta)


def scored_examples(parsed: list[Parsed]) -> tuple[list[RawExample], dict[str, int]]:
    """BIG-bench multiple choice: the given choices, gold = the single top-scoring one."""
    examples, skipped = [], {}
    for p in parsed:
        choices = list(p.scores)
        top = max(p.scores.values())
        golds = [c for c in choices if p.scores[c] == top]
        if len(golds) > 1 or sum(normalize(c) == normalize(golds[0]) for c in choices) > 1:
            skipped["ambiguous_gold"] = skipped.get("ambiguous_gold", 0) + 1
            continue
        examples.append(RawExample(p.text, [golds[0]], p.meta(), choices=choices))
    return examples, skipped


def option_examples(parsed: list[Parsed],
                    blocks: list[tuple[str, list[str], str] | None]) -> tuple[list[RawExample], dict[str, int]]:
    """Multiple choice from the options written into each input (inputs without a readable block
    are skipped)."""
    examples, skipped = [], {}
    for p, block in zip(parsed, blocks):
        if block is None:
            skipped["options_unreadable"] = skipped.get("options_unreadable", 0) + 1
            continue
        question, options, style = block
        idx = gold_index(p.answers[0], options, style)
        if isinstance(idx, str):
            skipped[idx] = skipped.get(idx, 0) + 1
            continue
        examples.append(RawExample(question, [options[idx]], p.meta(target=p.answers[0]), choices=options))
    return examples, skipped


def subtask_examples(parsed: list[Parsed], fmt: str,
                     verbatim: bool = False) -> tuple[list[RawExample], dict[str, int], str | None]:
    """The sub-task's examples, skip counts, and a format override (None keeps the entry's)."""
    if verbatim and not parsed[0].scores:
        return [free_form_example(p) for p in parsed], {}, "exact"
    if parsed[0].scores:
        examples, skipped = scored_examples(parsed)
        return examples, skipped, None
    blocks = [split_options(p.text) for p in parsed]
    letters = any(_LETTER_TARGET.match(p.answers[0]) for p in parsed)
    if 2 * sum(b is not None for b in blocks) > len(blocks) and (letters or fmt != "exact"):
        examples, skipped = option_examples(parsed, blocks)
        return examples, skipped, None
    examples = [free_form_example(p) for p in parsed]
    return examples, {}, "exact" if letters else None


def task_skill(doc: Any, task: str) -> str:
    """BIG-bench's first keyword when the file has them, else the sub-task name."""
    keywords = doc.get("keywords") if isinstance(doc, dict) else None
    if isinstance(keywords, list) and keywords and isinstance(keywords[0], str) and keywords[0].strip():
        return keywords[0].strip()
    return task


def dev_examples(value: Any) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The file and the (input, targets) pairs of a ``dev_items`` file (BBEH's ``mini/data.json``
    layout: ``{"examples": [{"input", "target"}]}``)."""
    if not isinstance(value, str) or not value.strip():
        raise ParamsError("must be the path of a JSON file of examples", file="params.yaml", field="dev_items")
    if Path(value).is_dir():
        raise InputError("is a folder, expected a JSON file of examples", file=value, field="dev_items")
    if not Path(value).is_file():
        raise InputError("no such file", file=value, field="dev_items")
    file = value
    parsed = parse_examples(read_json_file(Path(file)), file, "dev_items")
    if any(p.scores for p in parsed):
        raise InputError("dev examples need a target, not target_scores", file=file, field="examples")
    return file, [(p.text, tuple(p.answers)) for p in parsed]


def official_dev(tasks: list[TaskItems], parsed: dict[str, list[Parsed]], dev_file: str,
                 wanted: list[tuple[str, tuple[str, ...]]], complete: bool) -> None:
    """Mark each item's ``meta["split"]``: ``dev`` when its example (input and target) is in the
    dev file, else ``test``; an example listed twice in both takes one occurrence each time. With every sub-task
    loaded (``complete``), a dev example that matches none is an error."""
    where: dict[tuple[str, tuple[str, ...]], list[tuple[str, int]]] = {}
    for t in tasks:
        for p in parsed[t.task]:
            where.setdefault((p.text, tuple(p.answers)), []).append((t.task, p.index))
    chosen: dict[str, set[int]] = {t.task: set() for t in tasks}
    for i, key in enumerate(wanted):
        spots = where.get(key)
        if not spots:
            if complete:
                raise InputError("matches no example (same input and target) of any sub-task", file=dev_file,
                                 field=f"examples[{i}]")
            continue
        task, index = spots.pop(0)
        chosen[task].add(index)
    for t in tasks:
        for it in t.items:
            it.meta["split"] = "dev" if it.meta.get("index") in chosen[t.task] else "test"


def rationale_key(columns: Any) -> str | None:
    """The example key ``columns.rationale`` names (None without one)."""
    columns = columns or {}
    if not isinstance(columns, dict):
        raise ParamsError("must map item fields to example keys", file="params.yaml", field="columns")
    unknown = sorted(set(columns) - set(COLUMN_FIELDS))
    if unknown:
        raise ParamsError(f"unknown item field; allowed: {list(COLUMN_FIELDS)}", file="params.yaml",
                          field=f"columns.{unknown[0]}")
    key = columns.get("rationale")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ParamsError("must be an example key", file="params.yaml", field="columns.rationale")
    return key


@register("bigbench", FIELDS)
def load(entry: dict[str, Any], seed: int) -> list[TaskItems]:
    """One :class:`TaskItems` per sub-task found under ``path``."""
    path = require_path(entry["path"])
    if not isinstance(entry["verbatim"], bool):
        raise ParamsError(f"must be true or false, got {entry['verbatim']!r}", file="params.yaml", field="verbatim")
    dev = dev_examples(entry["dev_items"]) if entry["dev_items"] is not None else None
    rationale = rationale_key(entry["columns"])
    out, parsed_by_task = [], {}
    wanted = param_list(entry, "tasks")
    for task, file in progress(select(discover(path), wanted, path), f"bigbench {path}", "file"):
        doc = read_json_file(file, task=task)
        parsed = parse_examples(doc, str(file), task, rationale)
        parsed_by_task[task] = parsed
        examples, skipped, fmt = subtask_examples(parsed, entry["format"], entry["verbatim"])
        out.append(build_task(examples, entry, source=f"bigbench:{file}", task=task,
                              skill=entry["skill"] or task_skill(doc, task), origin=str(file),
                              skipped=skipped, fmt=fmt))
    if dev is not None:
        official_dev(out, parsed_by_task, dev[0], dev[1], complete=wanted is None)
    return out
