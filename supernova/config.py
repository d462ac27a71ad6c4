"""Reading params.yaml into the per-stage config dataclasses.

Each stage module defines one dataclass with documented fields (``ProbeConfig``, ``ScoreConfig``,
...); :func:`from_section` fills it from its params.yaml section, rejecting unknown keys and bad
values with a one-line error that names the full path of the key (``rl_train.grpo.max_steps``).
:func:`load_params` refuses a top-level section that no stage in dvc.yaml declares (a misspelled
``evalute:`` would otherwise be silently ignored).
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
PIPELINE_FILE = "dvc.yaml"

# Value rules by key name, the same in every section (checked after the types):
#: counts and sizes: integers >= 1 (``null`` where the field allows it)
AT_LEAST_ONE = {"max_steps", "batch_size", "size", "total_size", "target_size", "n", "k", "max_new_tokens",
                "max_completion_length", "prompts_per_step", "num_generations", "bootstrap", "proxy_layers",
                "clusters", "per_task_cap", "per_group_cap", "lora_r", "target_dev_size", "target_test_size",
                "max_prompt_tokens", "decontam_ngram", "length_target", "distractor_passages", "max_words",
                "train_top_layers", "max_model_len", "max_num_batched_tokens", "train_micro_batch", "checkpoints",
                "sample_items"}
#: rates, temperatures, penalties and step intervals: numbers >= 0
NON_NEGATIVE = {"temperature", "beta", "epsilon", "epsilon_high", "length_penalty", "save_steps", "kv_cache_gib"}
#: numbers > 0
POSITIVE = {"learning_rate"}
#: lists whose entries must be distinct
DISTINCT = {"tasks", "seeds", "manual_tasks", "k"}

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _type_error(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not fit the type hint ``hint`` (None if it does)."""
    args = typing.get_args(hint)
    if type(None) in args:                                    # X | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is tuple or hint is list or origin is list:
        if not isinstance(value, (list, tuple)):
            return f"must be a list, got {type(value).__name__} {value!r}"
        inner = [a for a in args if a is not Ellipsis][:1]
        for i, v in enumerate(value):
            why = _type_error(v, inner[0]) if inner else None
            if why:
                return f"entry {i}: {why}"
        return None
    if hint in _TYPE_NAMES:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if hint is float
              else isinstance(value, hint) and (hint is bool or not isinstance(value, bool)))
        return None if ok else f"must be {_TYPE_NAMES[hint]}, got {type(value).__name__} {value!r}"
    return None


def _value_error(name: str, value: Any) -> str | None:
    values = value if isinstance(value, (list, tuple)) else [value]
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if name in AT_LEAST_ONE and any(v < 1 for v in nums):
        return f"must be >= 1, got {value!r}"
    if name in NON_NEGATIVE and any(v < 0 for v in nums):
        return f"must be >= 0, got {value!r}"
    if name in POSITIVE and any(v <= 0 for v in nums):
        return f"must be > 0, got {value!r}"
    if name in DISTINCT and isinstance(value, (list, tuple)):
        seen = [v for i, v in enumerate(value) if v in value[:i]]
        if seen:
            return f"names {seen[0]!r} twice"
    return None


#: Sections that say how a stage uses the machine, never what it computes: no stage declares
#: them in dvc.yaml, so changing them (or moving to another machine) keeps every cached result.
EXECUTION_SECTIONS = ("compute",)


def check_choice(value: str, allowed: tuple[str, ...], field: str) -> None:
    """One line naming ``field`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ParamsError(f"must be one of {allowed}, got {value!r}", file="params.yaml", field=field)


def declared_sections(pipeline: str | Path = PIPELINE_FILE) -> set[str]:
    """The top-level params.yaml keys that some stage of ``pipeline`` declares in ``params:``."""
    stages = (read_yaml(pipeline) or {}).get("stages", {})
    names = set()
    for st in stages.values():
        for p in (st.get("do", st) or {}).get("params", []):
            if isinstance(p, str):
                names.add(p.split(".", 1)[0])
    return names


#: Keys that DVC's run-cache leaves out of a stage's key at any depth, params included
#: (``dvc.stage.cache._get_cache_hash`` drops a file's ``size`` and ``nfiles``): after a change
#: to a param of that name, ``dvc repro`` would restore the outputs of another value's run.
RUN_CACHE_BLIND = ("size", "nfiles")


def run_cache_blind(data: Any, where: str = "") -> list[str]:
    """The params paths in ``data`` whose last key is one of :data:`RUN_CACHE_BLIND`."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in
                ([f"{where}{k}"] if k in RUN_CACHE_BLIND else []) + run_cache_blind(v, f"{where}{k}.")]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in run_cache_blind(v, f"{where[:-1]}[{i}].")]
    return []


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as a dict; with a dvc.yaml beside it, every top-level section must be one that
    a stage declares, and no key may be one DVC's run-cache ignores (:data:`RUN_CACHE_BLIND`)."""
    p = Path(path)
    if not p.exists():
        raise ParamsError("not found (run from the project root)", file=str(p))
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ParamsError("must be a mapping of sections", file=str(p))
    pipeline = p.parent / PIPELINE_FILE
    if pipeline.exists():
        known = declared_sections(pipeline) | set(EXECUTION_SECTIONS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParamsError(f"unknown section; no stage in dvc.yaml reads it (known: {sorted(known)})",
                              file=str(p), field=unknown[0])
        blind = run_cache_blind(data)
        if blind:
            raise ParamsError("DVC's run-cache ignores a key of this name, so changing it would restore another "
                              "value's outputs; item counts are called n_items", file=str(p), field=blind[0])
    return data


def _full_path(e: ParamsError, where: str) -> ParamsError:
    """``e`` with its field named from the params.yaml root (``num_generations`` raised inside
    ``rl_train.grpo`` becomes ``rl_train.grpo.num_generations``)."""
    field = e.field or ""
    if field == where or field.startswith(f"{where}.") or field.startswith(f"{where.split('.')[0]}."):
        return e
    return ParamsError(e.reason, file=e.file or PARAMS_FILE, task=e.task,
                       field=f"{where}.{field}" if field else where)


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; nested dataclass fields are built recursively."""
    if data is not None and not isinstance(data, dict):
        raise ParamsError(f"must be a mapping, got {type(data).__name__} {data!r}", file=PARAMS_FILE, field=where)
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
        why = None if dataclasses.is_dataclass(hint) else (_type_error(value, hint) or _value_error(name, value))
        if why:
            raise ParamsError(why, file=PARAMS_FILE, field=f"{where}.{name}")
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}.{name}")
        elif hint is not None and typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ParamsError as e:
        raise _full_path(e, where) from None
    except (TypeError, ValueError) as e:
        raise ParamsError(str(e), file=PARAMS_FILE, field=where) from None


def from_section(cls: type[T], params: dict[str, Any], section: str) -> T:
    """``cls`` from ``params[section]``. From a stage's :class:`StageParams` the config holds only
    the keys the stage declares in dvc.yaml: every other field is sealed, and reading it raises a
    one-line ParamsError naming the key and the stage (instead of silently taking its default)."""
    obj = from_dict(cls, params.get(section), section)
    if isinstance(params, StageParams):
        _seal(obj, section, params.declared, params.stage)
    return obj


def _covered(path: str, declared: frozenset[str]) -> bool:
    """``path`` or a section above it is declared."""
    return any(path == d or path.startswith(f"{d}.") for d in declared)


def _partly(path: str, declared: frozenset[str]) -> bool:
    """Some key below ``path`` is declared (not ``path`` itself)."""
    return any(d.startswith(f"{path}.") for d in declared)


def _undeclared(path: str, stage: str) -> ParamsError:
    return ParamsError(f"stage {stage} reads this key, but the stage's params in dvc.yaml do not list it: "
                       "declare it there (so that changing it reruns the stage) or do not read it",
                       file=PIPELINE_FILE, field=path)


class StageParams(dict):
    """params.yaml as one stage of dvc.yaml sees it: only the keys it declares in its ``params:``
    (a whole section, or single keys such as ``score.k``) and the execution sections. Reading any
    other key (``params["x"]``, ``params.get("x")``, ``"x" in params``, or a field of a config
    that :func:`from_section` built from it) raises a one-line ParamsError naming the key and the
    stage; a key that is declared but absent from params.yaml reads as absent."""

    def __init__(self, data: dict[str, Any], declared, stage: str, prefix: str = ""):
        self.declared, self.stage, self.prefix = frozenset(declared), stage, prefix
        kept = {}
        for key, value in (data or {}).items():
            path = f"{prefix}{key}"
            if _covered(path, self.declared):
                kept[key] = value
            elif _partly(path, self.declared) and isinstance(value, dict):
                kept[key] = StageParams(value, self.declared, stage, f"{path}.")
        super().__init__(kept)

    def _readable(self, key: Any) -> bool:
        path = f"{self.prefix}{key}"
        if not (_covered(path, self.declared) or _partly(path, self.declared)):
            raise _undeclared(path, self.stage)
        return True

    def __getitem__(self, key):
        self._readable(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._readable(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        return self._readable(key) and super().__contains__(key)


def declared_params(stage: str, pipeline: str | Path = PIPELINE_FILE) -> list[str]:
    """The params.yaml keys that ``stage`` (a dvc.yaml stage name; ``score@task-r0`` is an entry
    of the ``score`` matrix) declares, plus the execution sections."""
    stages = (read_yaml(pipeline) or {}).get("stages", {})
    name = stage.split("@", 1)[0]
    if name not in stages:
        raise ParamsError(f"no stage {name!r} here", file=str(pipeline), field="stages")
    entries = (stages[name].get("do", stages[name]) or {}).get("params", [])
    keys = [p for p in entries if isinstance(p, str)]
    keys += [k for p in entries if isinstance(p, dict) for k in (p.get(PARAMS_FILE) or [])]
    return keys + list(EXECUTION_SECTIONS)


def stage_params(params: dict[str, Any], stage: str, pipeline: str | Path = PIPELINE_FILE) -> dict[str, Any]:
    """``params`` as ``stage`` may read them (:class:`StageParams`); unrestricted where there is no
    dvc.yaml (no pipeline whose caches could go stale)."""
    if not Path(pipeline).exists():
        return params
    return StageParams(params, declared_params(stage, pipeline), stage)


def _seal(obj: Any, where: str, declared: frozenset[str], stage: str) -> None:
    """Make reading a field of config ``obj`` (at params path ``where``) that ``declared`` does
    not cover raise; nested configs declared in part are sealed field by field."""
    sealed = {}
    for f in dataclasses.fields(obj):
        path = f"{where}.{f.name}"
        if _covered(path, declared):
            continue
        value = object.__getattribute__(obj, f.name)
        if _partly(path, declared) and dataclasses.is_dataclass(value):
            _seal(value, path, declared, stage)
        else:
            sealed[f.name] = path
    if sealed:
        object.__setattr__(obj, "_undeclared", (sealed, stage))
        object.__setattr__(obj, "__class__", _sealed_class(type(obj)))


_SEALED: dict[type, type] = {}


def _sealed_class(cls: type) -> type:
    """A subclass of config class ``cls`` whose instances raise on reading a field listed in
    their ``_undeclared`` (and show it as ``<not declared>`` in their repr)."""
    if cls in _SEALED.values():
        return cls
    if cls not in _SEALED:
        def __getattribute__(self, name):
            sealed = object.__getattribute__(self, "__dict__").get("_undeclared")
            if sealed and name in sealed[0]:
                raise _undeclared(sealed[0][name], sealed[1])
            return object.__getattribute__(self, name)

        def __repr__(self):
            sealed = (object.__getattribute__(self, "__dict__").get("_undeclared") or ({}, ""))[0]
            shown = ", ".join(f"{f.name}={'<not declared>' if f.name in sealed else repr(getattr(self, f.name))}"
                              for f in dataclasses.fields(self))
            return f"{cls.__qualname__}({shown})"

        _SEALED[cls] = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__, "__repr__": __repr__,
                                                   "__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                                   "__doc__": cls.__doc__})
    return _SEALED[cls]


def check_entries(entries: dict[str, list], section: str = "ingest") -> None:
    """Source and target entries are mappings, none is named twice, and no source is also a target."""
    seen: dict[str, str] = {}
    for name, items in entries.items():
        for i, entry in enumerate(items):
            where = f"{section}.{name}[{i}]"
            if not isinstance(entry, dict):
                raise ParamsError(f"an entry must be a mapping {{kind: ..., ...}}, got {type(entry).__name__} "
                                  f"{entry!r}", file=PARAMS_FILE, field=where)
            key = repr(sorted(entry.items(), key=lambda kv: kv[0]))
            if key in seen:
                raise ParamsError(f"the same entry as {seen[key]}", file=PARAMS_FILE, field=where)
            seen[key] = where


def check_data_root(root: str, entries: dict[str, list], section: str = "ingest") -> None:
    """Every local file an entry names (``path``, or a ``dataset`` that exists locally) lies under
    ``root``, the folder the ingest stage depends on; otherwise editing it would rerun nothing."""
    if not isinstance(root, str) or not Path(root).is_dir():
        raise ParamsError(f"must be a folder (relative to the project root), got {root!r}", file=PARAMS_FILE,
                          field="data_root")
    base = Path(root).resolve()
    for name, items in entries.items():
        for i, entry in enumerate(items):
            for key in ("path", "dataset"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if not isinstance(value, str) or (key == "dataset" and not Path(value).exists()):
                    continue
                if not Path(value).resolve().is_relative_to(base):
                    raise ParamsError(f"{value} lies outside data_root ({root}), so ingest would not rerun when "
                                      "it changes; move it there or point data_root at a folder holding it",
                                      file=PARAMS_FILE, field=f"{section}.{name}[{i}].{key}")
