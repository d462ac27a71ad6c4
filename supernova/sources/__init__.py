"""Source kinds: each turns one ``ingest.sources``/``ingest.targets`` entry into per-task items.

A kind is a function ``load(entry: dict, seed: int) -> list[TaskItems]`` registered with
:func:`register`; the entry's ``kind`` field selects it. Every kind builds its items through
:func:`supernova.formats.make_items`, so the multiple-choice and exact formats are the same
whatever the origin. A loader sees the entry's ``role`` resolved: ``source``, ``target`` or
``eval`` (the ``hf`` kind keeps every row of a target, where it skips the odd rows of a source).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..answer import check_checker
from ..errors import InputError, ParamsError
from ..schema import Item

TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Entry fields every kind accepts, with their defaults.
COMMON_FIELDS: dict[str, Any] = {
    "kind": None,
    "format": "auto",       # auto | mcq | exact
    "num_choices": 4,       # options per multiple-choice item built with distractors
    "label_set_max": 8,     # at most this many distinct answers make a label set
    "max_items": None,      # cap per task (after shuffling with the seed)
    "seed": None,           # defaults to the pipeline seed
    "skill": None,          # override the skill the kind derives
    "checker": None,        # bbeh | lenient: overrides answer.checker for this entry's items
    "role": None,           # targets only: "eval" = evaluation only (all items to test; see ingest)
}
ROLES = ("target", "eval")
SOURCE = "source"          # the role a loader sees for an entry of ingest.sources


@dataclass
class TaskItems:
    """The items one task contributes, with what ingest reports about it."""

    task: str
    items: list[Item]
    format: str
    origin: str                       # file or generator the items came from
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> count
    kept_as_given: dict[str, int] = field(default_factory=dict)  # odd items a target keeps as given: reason -> count
    name_in_source: str | None = None  # the task's name as the source spells it, when it had to be changed
    checker: str | None = None        # the entry's checker override
    role: str = "target"              # targets: "target" (dev + test) or "eval" (test only)


Loader = Callable[[dict, int], list[TaskItems]]
KINDS: dict[str, tuple[Loader, dict[str, Any]]] = {}


def register(kind: str, fields: dict[str, Any]):
    """Register a loader for ``kind`` accepting ``fields`` (name -> default; None = optional)."""
    def deco(fn: Loader) -> Loader:
        KINDS[kind] = (fn, fields)
        return fn
    return deco


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_task_name(raw: str, file: str) -> str:
    """``raw`` (a file stem, folder name or category value) made a valid task name: every run of
    other characters becomes ``_`` ("computer science" → "computer_science")."""
    name = _UNSAFE.sub("_", raw.strip()).strip("_.-")
    return check_task_name(name or raw, file=file)


def check_task_name(name: str, *, file: str | None = None) -> str:
    if not TASK_NAME.match(name or ""):
        raise InputError(f"task name {name!r} must match {TASK_NAME.pattern} (it names artifact files)",
                         file=file, task=name, field="task")
    return name


def resolve_entry(entry: Any, where: str, seed: int) -> dict[str, Any]:
    """Validate an entry against its kind's fields and fill in defaults."""
    if not isinstance(entry, dict):
        raise ParamsError(f"each entry must be a mapping with a 'kind', got {type(entry).__name__}",
                          file="params.yaml", field=where)
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ParamsError(f"unknown kind {kind!r}; known kinds: {sorted(KINDS)}", file="params.yaml",
                          field=f"{where}.kind")
    _, fields = KINDS[kind]
    allowed = {**COMMON_FIELDS, **fields}
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ParamsError(f"unknown field for kind {kind}; allowed: {sorted(allowed)}",
                          file="params.yaml", field=f"{where}.{unknown[0]}")
    resolved = {**allowed, **entry}
    if resolved["seed"] is None:
        resolved["seed"] = seed
    return resolved


def load_entry(entry: Any, where: str, seed: int) -> list[TaskItems]:
    """The tasks of one entry; a bad field of the entry is reported with the entry's place in
    params.yaml (``ingest.sources[2].tasks``)."""
    resolved = resolve_entry(entry, where, seed)
    loader, _ = KINDS[resolved["kind"]]
    if resolved["checker"] is not None:
        check_checker(resolved["checker"], f"{where}.checker")
    role = resolved["role"] or "target"
    is_target = where.startswith("ingest.targets")
    if role not in ROLES or (role != "target" and not is_target):
        allowed = list(ROLES) if is_target else ["target (sources have no role)"]
        raise ParamsError(f"must be one of {allowed}, got {resolved['role']!r}", file="params.yaml",
                          field=f"{where}.role")
    resolved["role"] = role if is_target else SOURCE
    try:
        tasks = loader(resolved, resolved["seed"])
    except ParamsError as e:
        if e.file == "params.yaml" and e.field and not e.field.startswith(where):
            raise ParamsError(e.reason, file=e.file, task=e.task, field=f"{where}.{e.field}") from None
        raise
    for t in tasks:
        t.checker, t.role = resolved["checker"], role
    return tasks


def format_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    return {"fmt": entry["format"], "num_choices": int(entry["num_choices"]),
            "label_set_max": int(entry["label_set_max"]), "seed": int(entry["seed"])}


# Register the built-in kinds.
from . import bigbench, hf, reasoning_gym, superni  # noqa: E402,F401
