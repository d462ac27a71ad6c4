"""``kind: reasoning_gym`` — offline procedural generators (reasoning-gym), the embedded default."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
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


def generate(name: str, n_items: int, seed: int, config: dict[str, Any]) -> list[tuple[str, Any]]:
    """(question, answer) of the generator's items. Some generators iterate over sets of strings
    (``isomorphic_strings``), whose order follows the process's hash seed, so the same ``seed``
    gives other items in another process; the items are made in a process started with
    ``PYTHONHASHSEED=0``, hash randomization off (this one, where it started so)."""
    if sys.flags.hash_randomization == 0:
        return _rows(name, n_items, seed, config)
    return _fixed_hash_pool().submit(_rows, name, n_items, seed, config).result()


def _rows(name: str, n_items: int, seed: int, config: dict[str, Any]) -> list[tuple[str, Any]]:
    import reasoning_gym

    ds = reasoning_gym.create_dataset(name, size=n_items, seed=seed, **config)
    return [(ds[i]["question"], ds[i].get("answer")) for i in range(len(ds))]


@functools.cache
def _fixed_hash_pool() -> ProcessPoolExecutor:
    """One worker process, started with ``PYTHONHASHSEED=0`` and kept for later calls."""
    previous = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(int).result()  # start the worker while the variable is set
    finally:
        if previous is None:
            del os.environ["PYTHONHASHSEED"]
        else:
            os.environ["PYTHONHASHSEED"] = previous
    return pool


@register("reasoning_gym", {"name": None, "task": None, "n_items": 64, "config": {}})
def load(entry: dict[str, Any], seed: int) -> list[TaskItems]:
    from reasoning_gym.factory import DATASETS

    name = entry["name"]
    if name not in DATASETS:
        raise ParamsError(f"unknown reasoning-gym generator {name!r}", file="params.yaml",
                          task=str(name), field="name")
    task = check_task_name(entry["task"] or name)
    config = dict(entry["config"] or {})
    try:
        rows = generate(name, int(entry["n_items"]), int(seed), config)
    except (TypeError, ValueError, AssertionError) as e:
        raise ParamsError(f"generator rejected its config: {e}", file="params.yaml", task=task,
                          field="config") from None
    examples, skipped = [], {}
    for i, (question, answer) in enumerate(progress(rows, f"reasoning_gym {name}", "item")):
        if answer is None:  # validator-scored generators have no single gold answer
            skipped["no_gold_answer"] = skipped.get("no_gold_answer", 0) + 1
            continue
        examples.append(RawExample(question=question, answers=[str(answer)], meta={"generator": name, "index": i}))
    skill = entry["skill"] or generator_category(name)
    return [build_task(examples, entry, source=f"reasoning_gym:{name}", task=task, skill=skill,
                       origin=f"reasoning_gym:{name}", skipped=skipped)]
