"""``kind: reasoning_gym`` — offline procedural generators (reasoning-gym), the embedded default."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ParamsError
from ..formats import RawExample
from . import TaskItems, check_task_name, register
from .common import build_task, progress

log = logging.getLogger(__name__)


def generator_category(name: str) -> str:
    """The reasoning-gym package a generator lives in (arithmetic, logic, graphs, ...)."""
    from reasoning_gym.factory import DATASETS

    cls = DATASETS[name][0]
    parts = cls.__module__.split(".")
    return parts[1] if len(parts) > 2 else "general"


@register("reasoning_gym", {"name": None, "task": None, "n_items": 64, "config": {}})
def load(entry: dict[str, Any], seed: int) -> list[TaskItems]:
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    name = entry["name"]
    if name not in DATASETS:
        raise ParamsError(f"unknown reasoning-gym generator {name!r}", file="params.yaml",
                          task=str(name), field="name")
    task = check_task_name(entry["task"] or name)
    config = dict(entry["config"] or {})
    try:
        ds = reasoning_gym.create_dataset(name, size=int(entry["n_items"]), seed=int(seed), **config)
    except (TypeError, ValueError, AssertionError) as e:
        raise ParamsError(f"generator rejected its config: {e}", file="params.yaml", task=task,
                          field="config") from None
    examples, skipped = [], {}
    for i in progress(range(len(ds)), f"reasoning_gym {name}", "item"):
        row = ds[i]
        if row.get("answer") is None:  # validator-scored generators have no single gold answer
            skipped["no_gold_answer"] = skipped.get("no_gold_answer", 0) + 1
            continue
        examples.append(RawExample(question=row["question"], answers=[str(row["answer"])],
                                   meta={"generator": name, "index": i}))
    skill = entry["skill"] or generator_category(name)
    return [build_task(examples, entry, source=f"reasoning_gym:{name}", task=task, skill=skill,
                       origin=f"reasoning_gym:{name}", skipped=skipped)]
