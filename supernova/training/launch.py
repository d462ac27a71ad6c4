"""One GRPO or SFT run split data-parallel over ``compute.processes`` training processes.

The stage's process (the parent) writes a job: the trainer function to call (``train_grpo`` or
``train_sft``), the training items as Parquet and its other arguments as JSON. It starts
``python -m supernova.training.launch <job.json>`` under ``torchrun --standalone`` (on a CPU a
gloo job) or ``accelerate launch --config_file <compute.accelerate_config>`` (DDP or DeepSpeed
ZeRO-3 on GPUs), waits, and reads the result the main process wrote. Every process rebuilds the
arguments from the job and trains its share of each batch.

The run's global batch — completions per optimizer step for GRPO, items for SFT — stays what
the settings say whatever the number of processes: TRL's global batch is
``per_device_train_batch_size × processes × gradient_accumulation_steps``, so each process takes
``global / processes`` (:func:`per_device_batch`; a batch that does not divide is a one-line
error), in passes of at most ``compute.train_micro_batch`` sequences accumulated into one step
(:func:`micro_batches`). The run sees the same data in the same number of steps as under one
process.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import ParamsError, PipelineError
from ..hardware import ComputeConfig, Hardware, detect
from ..io import read_yaml

log = logging.getLogger(__name__)


def per_device_batch(global_batch: int, processes: int, what: str) -> int:
    """Each process's share of a global batch of ``global_batch`` (``what`` names it in the error)."""
    if global_batch % processes:
        raise ParamsError(f"{what} = {global_batch} does not divide among {processes} training processes",
                          file="params.yaml", field="compute.processes")
    return global_batch // processes


def micro_batches(per_device: int, micro: int | None) -> tuple[int, int]:
    """(sequences per pass, passes per step) for a process's batch of ``per_device`` sequences
    taken in passes of at most ``micro`` (``None``: one pass): the largest divisor of
    ``per_device`` not above ``micro``, so every pass is the same size."""
    size = per_device if micro is None else max(d for d in range(1, min(micro, per_device) + 1) if per_device % d == 0)
    return size, per_device // size


def processes_record(compute: ComputeConfig) -> dict[str, Any]:
    """What a run records about its processes: how many, and what started them if more than one."""
    c = compute.resolved()
    return {"processes": c["processes"], **({"launcher": c["launcher"]} if c["processes"] > 1 else {})}


def world_size() -> int:
    """Processes of this training job (``WORLD_SIZE``, which torchrun and accelerate launch set)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def check_world(args) -> None:
    """The trainer (``args``: its TrainingArguments) runs in the processes its batch was split for."""
    if args.world_size != world_size():
        raise PipelineError(f"the trainer runs in {args.world_size} processes, the batch was split for "
                            f"{world_size()}", field="compute.processes")


def batch_facts(trainer) -> dict[str, int]:
    """What the trainer ran: processes, per-process batch, accumulation, the global batch
    (their product, TRL's and transformers' definition) and the optimizer steps taken."""
    a = trainer.args
    return {"processes": a.world_size, "per_device_batch": a.per_device_train_batch_size,
            "gradient_accumulation_steps": a.gradient_accumulation_steps,
            "global_batch": a.per_device_train_batch_size * a.world_size * a.gradient_accumulation_steps,
            "steps": trainer.state.global_step}


#: What an accelerate config needs installed beyond the project's dependencies, by its
#: ``distributed_type``: (distribution, the pyproject.toml extra that installs it).
ACCELERATE_REQUIRES: dict[str, tuple[tuple[str, str], ...]] = {
    "NO": (), "MULTI_GPU": (), "FSDP": (), "DEEPSPEED": (("deepspeed", "deepspeed"),),
}


def accelerate_requirements(config: str | os.PathLike) -> tuple[tuple[str, str], ...]:
    """(distribution, extra) pairs that the accelerate config file ``config`` needs installed."""
    kind = (read_yaml(config) or {}).get("distributed_type", "NO")
    if kind not in ACCELERATE_REQUIRES:
        raise ParamsError(f"{config}: distributed_type {kind!r} is not one this project knows what to install for "
                          f"({sorted(ACCELERATE_REQUIRES)})", file="params.yaml", field="compute.accelerate_config")
    return ACCELERATE_REQUIRES[kind]


def installed(distribution: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def launcher_command(compute: ComputeConfig, job: Path, hw: Hardware | None = None) -> list[str]:
    """The command that starts ``compute.processes`` processes of this module on ``job``."""
    hw = hw or detect()
    c = compute.resolved(hw)
    entry = ["-m", __name__, str(job)]
    if c["launcher"] == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={c['processes']}",
                *entry]
    if hw.device != "cuda":
        raise ParamsError("accelerate launch starts one process on a CPU; use torchrun (or auto) there",
                          file="params.yaml", field="compute.launcher")
    if not Path(compute.accelerate_config).is_file():
        raise ParamsError(f"accelerate config {compute.accelerate_config!r} not found", file="params.yaml",
                          field="compute.accelerate_config")
    for dist, extra in accelerate_requirements(compute.accelerate_config):
        if not installed(dist):
            raise ParamsError(f"{compute.accelerate_config} needs {dist}, which is not installed (pip install -e "
                              f"'.[{extra}]')", file="params.yaml", field="compute.accelerate_config")
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", compute.accelerate_config,
            "--num_processes", str(c["processes"]), *entry]


def shards_weights(compute: ComputeConfig, hw: Hardware | None = None) -> bool:
    """The processes hold shards of the model's weights, not whole copies: accelerate launch with
    a DeepSpeed ZeRO-3 or FSDP config."""
    c = compute.resolved(hw or detect())
    if c["processes"] == 1 or c["launcher"] != "accelerate" or not Path(compute.accelerate_config).is_file():
        return False
    cfg = read_yaml(compute.accelerate_config) or {}
    return cfg.get("distributed_type") == "FSDP" or (
        cfg.get("distributed_type") == "DEEPSPEED" and (cfg.get("deepspeed_config") or {}).get("zero_stage") == 3)


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value) if isinstance(value, Path) else value


def launch(train: Callable[..., dict], items: pd.DataFrame, *, compute: ComputeConfig, scratch: Path,
           schema: str = "ITEM", **job: Any) -> dict[str, Any]:
    """``train(items=items, compute=compute, scratch=scratch, **job)`` run in ``compute.processes``
    processes; returns what the main process's call returned. ``train`` is a module-level
    function whose arguments are dataclasses, paths and JSON values; ``items`` travel with the
    columns of :mod:`supernova.schema`'s ``schema`` (``ITEM``; ``SFT`` for the SFT set)."""
    from .. import schema as schemas
    from ..io import write_json

    what = train.__name__
    scratch.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{scratch.name}.job-", dir=scratch.parent) as tmp:
        folder = Path(tmp)
        schemas.write_table(folder / "items.parquet", items, getattr(schemas, schema))
        spec = {"train": f"{train.__module__}:{train.__qualname__}", "items": str(folder / "items.parquet"),
                "schema": schema, "result": str(folder / "result.json"),
                "job": {k: _encode(v) for k, v in {**job, "compute": compute, "scratch": scratch}.items()}}
        write_json(folder / "job.json", spec)
        cmd = launcher_command(compute, folder / "job.json")
        log.info("%s: %d training processes: %s", what, compute.processes, " ".join(cmd))
        root = str(Path(__file__).resolve().parents[2])   # the children import this same code
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(cmd, env=env)
        if done.returncode:
            raise PipelineError(f"{what}: the training processes failed (exit {done.returncode}); their log is "
                                "above", file=job.get("model_path"))
        return json.loads((folder / "result.json").read_text())


def _decode(train: Callable[..., dict], job: dict[str, Any]) -> dict[str, Any]:
    """``job``'s values as ``train``'s annotations say: dataclasses and paths rebuilt."""
    from ..config import from_dict

    hints = typing.get_type_hints(train)
    out = {}
    for name, value in job.items():
        hint = hints.get(name)
        out[name] = (from_dict(hint, value, name) if dataclasses.is_dataclass(hint)
                     else Path(value) if hint is Path else value)
    return out


def main(argv: list[str] | None = None) -> None:
    """One training process: rebuild the run from the job file, train, and (main process) write
    the result next to the job."""
    from .. import schema as schemas
    from ..io import write_text

    [job_file] = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(job_file).read_text())
    module, name = spec["train"].split(":")
    train = getattr(importlib.import_module(module), name)
    logging.basicConfig(level=os.environ.get("SUPERNOVA_LOG", "INFO"),
                        format=f"[{name} rank {os.environ.get('RANK', '0')}] %(message)s", stream=sys.stderr)
    items = schemas.read_table(spec["items"], getattr(schemas, spec["schema"]))
    result = train(items=items, **_decode(train, spec["job"]))
    if is_main_process():
        write_text(spec["result"], json.dumps(result))


if __name__ == "__main__":
    main()
