"""``kind: superni`` — Super-NaturalInstructions task files, one JSON file per task.

Each instance becomes one example: the question is the task's ``Definition`` (unless
``definition: false``), then ``few_shot`` worked examples from ``Positive Examples``, then the
instance ``input``; the answers are the instance's ``output`` list (first canonical, the rest
accepted aliases). The task name is the file stem.

Malformed files are errors naming the file, task and field. Two situations are skipped and counted
instead (they occur in the upstream data and say nothing about the file's structure):

* ``blank_output`` — every output of the instance is an empty string;
* ``duplicate_id`` — an instance repeats an earlier instance's id with the same input and outputs
  (the same id with different content is an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError, ParamsError
from ..formats import RawExample
from . import TaskItems, check_task_name, register
from .common import (build_task, describe, json_files, nonempty_list, param_list, progress, read_json_file,
                     require_path, required_string)

FIELDS = {
    "path": None,          # a folder of task files, or one file
    "tasks": None,         # task ids ("task1146") or file stems to include; None = all
    "categories": None,    # keep tasks with one of these Categories
    "reasoning": None,     # keep tasks with one of these Reasoning tags
    "few_shot": 0,         # Positive Examples prepended as worked examples
    "definition": True,    # put the task's Definition into the question
}


def _strings(value: Any, *, file: str, task: str, field: str, allow_str: bool = False) -> list[str]:
    """``value`` checked to be a list of strings (or a bare string, when allowed)."""
    if allow_str and isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"must be a list of strings, got {describe(value)}", file=file, task=task, field=field)
    return value


def _tag_matches(tags: list[str], wanted: list[str]) -> bool:
    """Whether a tag equals a wanted one, or its top level does ("Mathematics -> Arithmetic")."""
    want = {w.strip().lower() for w in wanted}
    return any(t.strip().lower() in want or t.split("->")[0].strip().lower() in want for t in tags)


def task_files(path: Path, wanted: list[str] | None) -> list[Path]:
    """The task files under ``path`` (or ``path`` itself), restricted to ``wanted`` ids/stems."""
    files = json_files(path, "SuperNI task file")
    if not files:
        raise InputError("no SuperNI task files (*.json) in this folder", file=str(path), field="path")
    if wanted is None:
        return files
    keys = {f: {f.stem, f.stem.split("_")[0]} for f in files}
    missing = [w for w in wanted if not any(w in k for k in keys.values())]
    if missing:
        raise ParamsError(f"no task file for {missing[0]!r} in {path}", file="params.yaml", field="tasks")
    return [f for f in files if keys[f] & set(wanted)]


def task_document(file: Path, task: str) -> dict[str, Any]:
    """A SuperNI task file's object, with its tag fields checked."""
    doc = read_json_file(file, task=task)
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object with 'Instances', got {describe(doc)}", file=str(file), task=task)
    for name in ("Categories", "Reasoning"):
        _strings(doc.get(name, []), file=str(file), task=task, field=name)
    return doc


def definition_text(doc: dict[str, Any], file: str, task: str) -> str:
    """The task's ``Definition`` as one string (it is a list of strings in SuperNI)."""
    if "Definition" not in doc:
        raise InputError("missing (or set definition: false)", file=file, task=task, field="Definition")
    parts = _strings(doc["Definition"], file=file, task=task, field="Definition", allow_str=True)
    text = "\n".join(p.strip() for p in parts if p.strip())
    if not text:
        raise InputError("empty (or set definition: false)", file=file, task=task, field="Definition")
    return text


def worked_examples(doc: dict[str, Any], n: int, file: str, task: str) -> list[str]:
    """The first ``n`` ``Positive Examples`` rendered as worked examples (fewer if the task has fewer)."""
    if n <= 0:
        return []
    positives = doc.get("Positive Examples", [])
    if not isinstance(positives, list):
        raise InputError(f"must be a list, got {describe(positives)}", file=file, task=task,
                         field="Positive Examples")
    out = []
    for i, ex in enumerate(positives[:n]):
        where = f"Positive Examples[{i}]"
        if not isinstance(ex, dict) or not isinstance(ex.get("input"), str) or not isinstance(ex.get("output"), str):
            raise InputError("needs a string 'input' and a string 'output'", file=file, task=task, field=where)
        out.append(f"Example {i + 1}:\nInput: {ex['input'].strip()}\nOutput: {ex['output'].strip()}")
    return out


def question_text(preamble: list[str], text: str) -> str:
    """The definition and worked examples, then the instance input."""
    if not preamble:
        return text
    return "\n\n".join([*preamble, f"Input: {text.strip()}"])


def instance_outputs(inst: dict[str, Any], file: str, task: str, where: str) -> list[str]:
    """The instance's distinct non-blank outputs (empty when all of them are blank)."""
    if "output" not in inst:
        raise InputError("missing", file=file, task=task, field=f"{where}.output")
    outputs = _strings(inst["output"], file=file, task=task, field=f"{where}.output")
    if not outputs:
        raise InputError("empty output list", file=file, task=task, field=f"{where}.output")
    return list(dict.fromkeys(o.strip() for o in outputs if o.strip()))


def instance_examples(doc: dict[str, Any], preamble: list[str], file: str,
                      task: str) -> tuple[list[RawExample], dict[str, int]]:
    """One example per instance, and the counts of skipped instances by reason."""
    instances = nonempty_list(doc, "Instances", file=file, task=task, empty="task has no instances")
    examples: list[RawExample] = []
    skipped: dict[str, int] = {}
    seen: dict[str, tuple[str, list]] = {}
    for i, inst in enumerate(instances):
        where = f"Instances[{i}]"
        if not isinstance(inst, dict):
            raise InputError(f"must be an object, got {describe(inst)}", file=file, task=task, field=where)
        text = required_string(inst, "input", file=file, task=task, where=where)
        outputs = instance_outputs(inst, file, task, where)
        uid = inst.get("id")
        if uid is not None:
            if not isinstance(uid, (str, int)) or isinstance(uid, bool):
                raise InputError(f"must be a string, got {describe(uid)}", file=file, task=task, field=f"{where}.id")
            uid = str(uid)
            if uid in seen:
                if seen[uid] != (text, inst["output"]):
                    raise InputError(f"instance id {uid!r} appears twice with different content",
                                     file=file, task=task, field=f"{where}.id")
                skipped["duplicate_id"] = skipped.get("duplicate_id", 0) + 1
                continue
            seen[uid] = (text, inst["output"])
        if not outputs:
            skipped["blank_output"] = skipped.get("blank_output", 0) + 1
            continue
        examples.append(RawExample(question=question_text(preamble, text), answers=outputs,
                                   meta={"id": uid, "index": i}))
    return examples, skipped


def task_skill(doc: dict[str, Any]) -> str:
    """The first ``Reasoning`` tag, else the first ``Categories`` entry, else ``general``."""
    for name in ("Reasoning", "Categories"):
        tags = [t.strip() for t in doc.get(name, []) if t.strip()]
        if tags:
            return tags[0]
    return "general"


def check_options(entry: dict[str, Any]) -> tuple[int, bool]:
    """The validated ``few_shot`` and ``definition`` fields."""
    few_shot, definition = entry["few_shot"], entry["definition"]
    if isinstance(few_shot, bool) or not isinstance(few_shot, int) or few_shot < 0:
        raise ParamsError(f"must be an integer >= 0, got {few_shot!r}", file="params.yaml", field="few_shot")
    if not isinstance(definition, bool):
        raise ParamsError(f"must be true or false, got {definition!r}", file="params.yaml", field="definition")
    return few_shot, definition


@register("superni", FIELDS)
def load(entry: dict[str, Any], seed: int) -> list[TaskItems]:
    """One :class:`TaskItems` per selected SuperNI task file."""
    path = require_path(entry["path"])
    few_shot, definition = check_options(entry)
    wanted, categories, reasoning = (param_list(entry, n) for n in ("tasks", "categories", "reasoning"))
    out = []
    for file in progress(task_files(path, wanted), f"superni {path}", "file"):
        task = check_task_name(file.stem, file=str(file))
        doc = task_document(file, task)
        if categories and not _tag_matches(doc.get("Categories", []), categories):
            continue
        if reasoning and not _tag_matches(doc.get("Reasoning", []), reasoning):
            continue
        preamble = ([definition_text(doc, str(file), task)] if definition else []) + \
            worked_examples(doc, few_shot, str(file), task)
        examples, skipped = instance_examples(doc, preamble, str(file), task)
        out.append(build_task(examples, entry, source=f"superni:{file}", task=task,
                              skill=entry["skill"] or task_skill(doc), origin=str(file), skipped=skipped))
    if not out:
        raise ParamsError(f"no task in {path} matches the categories/reasoning filters", file="params.yaml",
                          field="categories" if categories else "reasoning")
    return out
