"""Helpers shared by the file-based source kinds: strict JSON reading, entry fields, and the
one place where a task's examples become capped items."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError, ParamsError
from ..formats import RawExample, make_items
from . import TaskItems, format_kwargs


def progress(iterable: Iterable | None, label: str, unit: str, *, total: int | None = None, leave: bool = False):
    """A tqdm bar labelled ``ingest <label>`` over ``iterable`` (or, with None, updated by hand up
    to ``total``); every long loop of ingest shows one."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=f"ingest {label}", unit=unit, total=total, leave=leave)


def read_json_file(path: Path, *, task: str | None = None) -> Any:
    """The parsed content of a JSON file read as strict UTF-8 (a leading BOM is allowed)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=str(path), task=task) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start}",
                         file=str(path), task=task) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InputError("empty file, expected JSON", file=str(path), task=task)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})",
                         file=str(path), task=task) from None


def require_path(value: Any) -> Path:
    """The entry's ``path`` as an existing file or folder."""
    if not isinstance(value, str) or not value.strip():
        raise ParamsError("required: a folder of task files or one file", file="params.yaml", field="path")
    path = Path(value)
    if not path.exists():
        raise InputError("no such file or folder", file=value, field="path")
    return path


def param_list(entry: dict[str, Any], name: str) -> list[str] | None:
    """An optional list-of-strings entry field (a single string counts as a one-element list)."""
    value = entry.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ParamsError("must be a list of non-empty strings", file="params.yaml", field=name)
    return value


JSON_TYPES = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number",
              type(None): "null"}


def describe(value: Any) -> str:
    """A short description of a JSON value's type, for error messages ("a list of objects")."""
    if isinstance(value, list):
        kinds = sorted({JSON_TYPES.get(type(v), type(v).__name__) for v in value})
        return f"a list of {'/'.join(k + 's' for k in kinds)}" if kinds else "an empty list"
    if value is None:
        return "null"
    name = JSON_TYPES.get(type(value), type(value).__name__)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def json_files(path: Path, what: str) -> list[Path]:
    """``path`` itself when it is a ``.json`` file, else the ``*.json`` files in the folder ``path``;
    a ``.json`` name that is a folder, or a ``path`` that is a file of another type, is an error
    (``what`` names one file: "SuperNI task file")."""
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise InputError(f"is a {path.suffix or 'extension-less'} file, expected a folder of {what}s or one "
                             f"{what} (.json)", file=str(path), field="path")
        return [path]
    found = sorted(path.glob("*.json"))
    for p in found:
        if not p.is_file():
            raise InputError(f"is a folder, expected a {what} (a .json file)", file=str(p), field="path")
    return found


def rationale_meta(value: Any, *, file: str, task: str, where: str, field: str) -> dict[str, str]:
    """``{"rationale": text}`` for a rationale that holds text (the item's ``meta``, where
    ``sft_select.targets: given`` finds it); ``{}`` for an empty or missing one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if not isinstance(value, str):
        raise InputError(f"{where}: a rationale must be a string, got {describe(value)}", file=file, task=task,
                         field=field)
    return {"rationale": value.strip()}


def required_string(obj: dict[str, Any], key: str, *, file: str, task: str, where: str) -> str:
    """``obj[key]``, checked to be present and a non-blank string."""
    field = f"{where}.{key}"
    if key not in obj:
        raise InputError("missing", file=file, task=task, field=field)
    value = obj[key]
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {describe(value)}", file=file, task=task, field=field)
    if not value.strip():
        raise InputError("empty string", file=file, task=task, field=field)
    return value


def nonempty_list(doc: dict[str, Any], key: str, *, file: str, task: str, empty: str) -> list:
    """``doc[key]``, checked to be present and a non-empty list (``empty`` says what is missing)."""
    if key not in doc:
        raise InputError("missing", file=file, task=task, field=key)
    value = doc[key]
    if not isinstance(value, list):
        raise InputError(f"must be a list, got {describe(value)}", file=file, task=task, field=key)
    if not value:
        raise InputError(empty, file=file, task=task, field=key)
    return value


def build_task(examples: list[RawExample], entry: dict[str, Any], *, source: str, task: str, skill: str,
               origin: str, skipped: dict[str, int], fmt: str | None = None) -> TaskItems:
    """Items for one task through :func:`make_items`, capped at ``max_items`` after a seeded shuffle.

    Errors from building the items are re-raised naming ``origin`` as the file.
    """
    kwargs = format_kwargs(entry)
    if fmt is not None:
        kwargs["fmt"] = fmt
    if not examples and skipped:
        raise InputError(f"no usable examples (skipped: {dict(sorted(skipped.items()))})", file=origin, task=task)
    examples = list(examples)
    cap = entry.get("max_items")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ParamsError(f"must be a positive integer or null, got {cap!r}", file="params.yaml", field="max_items")
    if cap:
        random.Random(f"{kwargs['seed']}:{task}").shuffle(examples)
    try:
        items, chosen = make_items(examples, source=source, task=task, skill=skill, **kwargs)
    except InputError as e:
        raise InputError(e.reason, file=e.file or origin, task=task, field=e.field) from None
    except ParamsError as e:
        raise ParamsError(e.reason, file="params.yaml", task=task, field=e.field) from None
    if cap:
        items = items[:cap]
    return TaskItems(task=task, items=items, format=chosen, origin=origin, skipped=dict(skipped))
