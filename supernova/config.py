"""Reading params.yaml into the per-stage config dataclasses.

Each stage module defines one dataclass with documented fields (``ProbeConfig``, ``ScoreConfig``,
...); :func:`from_section` fills it from its params.yaml section, rejecting unknown keys with a
one-line error that names the key.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ParamsError
from .io import read_yaml

T = TypeVar("T")
PARAMS_FILE = "params.yaml"


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ParamsError("not found (run from the project root)", file=str(p))
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ParamsError("must be a mapping of sections", file=str(p))
    return data


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; nested dataclass fields are built recursively."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParamsError(f"unknown key; allowed: {sorted(fields)}", file=PARAMS_FILE,
                          field=f"{where}.{unknown[0]}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}.{name}")
        elif hint is not None and typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except (TypeError, ValueError) as e:
        raise ParamsError(str(e), file=PARAMS_FILE, field=where) from None


def from_section(cls: type[T], params: dict[str, Any], section: str) -> T:
    return from_dict(cls, params.get(section), section)
