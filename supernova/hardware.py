"""The machine a stage runs on, and the settings that follow from it.

Two kinds of settings:

* **Result settings** change what a stage computes, so they are params the stages declare in
  ``dvc.yaml``: ``generation.dtype``, ``generation.backend`` and every ``mixed_precision``. Their
  ``auto`` value is resolved here from the hardware (:func:`resolve_dtype`,
  :func:`resolve_precision`, :func:`resolve_backend`), logged once per stage, and the resolved
  value is recorded in what the stage writes (:func:`record`), so numbers from two machines can
  be told apart. An explicit value always wins.
* **Execution settings** (:class:`ComputeConfig`, params.yaml section ``compute``) change only
  how fast a stage runs and how much memory it takes: threads, KV-cache size, GPU memory
  fraction, CUDA graphs, the vLLM block size, the number of training processes. No stage
  declares them, so changing them, or moving to another machine, never invalidates a cached
  result.

bf16 is chosen only where it is computed natively *and* measured faster (``bench/``):

=========================================  ===================  ========================
hardware                                   generation dtype     training mixed precision
=========================================  ===================  ========================
CUDA device with bf16 support              bfloat16             bf16
CUDA device without bf16                   float32              no
CPU with AMX-BF16 (torch at AVX512)        bfloat16             bf16
any other CPU (AVX512_BF16 without AMX,    float32              no
AVX2 and older, ARM, ...)
=========================================  ===================  ========================

AVX512_BF16 alone is not enough: on such a CPU without AMX (2-core Xeon, torch 2.13), vLLM
sampled 0.77x as fast in bf16 as in fp32 (``bench/generation.py``), and the model's matmuls
(576x1536, 64 rows) ran at 150 GFLOP/s in bf16 and 104 under bf16 autocast against 209 in fp32.
On an AVX2-only CPU a bf16 matmul is 10-60x slower than fp32, and fp16 is no safe CPU fallback.

Where a stage computes with torch itself (sft-select's loss pass, the gradient proxy, the
transformers backend) is :func:`torch_device`: the CUDA device when one is visible. fp32 matmuls
on a CUDA device may use TensorFloat-32 tensor cores (:func:`fp32_matmul`; Ampere and later,
ignored by older GPUs); on a CPU they stay full fp32.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import check_choice
from .errors import ParamsError

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16")
PRECISIONS = ("auto", "no", "bf16")
LAUNCHERS = ("auto", "torchrun", "accelerate")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
#: ``compute.gpu_memory_utilization: auto``: a vLLM engine alone on its GPU, and TRL's colocated
#: engine beside a training process (TRL's ``GRPOConfig.vllm_gpu_memory_utilization`` default)
GPU_MEMORY_ALONE, GPU_MEMORY_COLOCATED = 0.85, 0.3


@dataclass(frozen=True)
class Hardware:
    """What the resolution rules look at.

    Attributes:
        device: ``cuda`` when a CUDA device is visible, else ``cpu``.
        cpu_capability: the vector ISA torch's CPU kernels use
            (``torch.backends.cpu.get_cpu_capability()``: ``AVX2``, ``AVX512``, ``DEFAULT``, ...).
        cpu_flags: the bf16-related flags of ``/proc/cpuinfo`` the CPU has.
        cuda_bf16: the CUDA device computes bf16 (``torch.cuda.is_bf16_supported()``).
        gpu: the CUDA device's name, if any.
        gpus: CUDA devices visible to this process.
        cores: CPU cores this process may run on.
        memory_gib: memory available to new allocations, in GiB.
    """

    device: str = "cpu"
    cpu_capability: str = "DEFAULT"
    cpu_flags: tuple[str, ...] = ()
    cuda_bf16: bool = False
    gpu: str | None = None
    gpus: int = 0
    cores: int = 1
    memory_gib: float = 4.0

    @property
    def native_bf16(self) -> bool:
        """bf16 computed natively and faster than fp32: a CUDA device with bf16, or a CPU with
        AMX-BF16 whose torch kernels run at AVX512 (see the module's table)."""
        if self.device == "cuda":
            return self.cuda_bf16
        return self.cpu_capability == "AVX512" and "amx_bf16" in self.cpu_flags


def _cpu_flags() -> tuple[str, ...]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return tuple(f for f in BF16_CPU_FLAGS if f in have)
    return ()


def _available_memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 4.0


@functools.lru_cache(maxsize=1)
def detect() -> Hardware:
    """This machine (read once per process)."""
    import torch

    cuda = torch.cuda.is_available()
    return Hardware(
        device="cuda" if cuda else "cpu",
        cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
        cpu_flags=_cpu_flags(),
        cuda_bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        gpu=torch.cuda.get_device_name(0) if cuda else None,
        gpus=torch.cuda.device_count() if cuda else 0,
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
        memory_gib=round(_available_memory_gib(), 1),
    )


def torch_device(hw: Hardware | None = None) -> str:
    """The torch device this process computes on: ``cuda`` (the first visible CUDA device; a
    worker of ``supernova.fanout`` sees only its own) when there is one, else ``cpu``."""
    return (hw or detect()).device


def fp32_matmul(hw: Hardware | None = None) -> str:
    """How fp32 matmuls compute: ``tf32`` on a CUDA device (TensorFloat-32 tensor cores: fp32
    range, a 10-bit mantissa for the products, fp32 accumulation), ``ieee`` (full fp32) on a CPU."""
    return "tf32" if torch_device(hw) == "cuda" else "ieee"


def apply_fp32_matmul(hw: Hardware | None = None) -> str:
    """Let fp32 matmuls use TF32 where :func:`fp32_matmul` says so; a CPU is left as it is.
    Returns what it resolved.

    ``torch.set_float32_matmul_precision("high")`` sets torch's legacy and new TF32 flags together;
    setting only the new ``torch.backends.cuda.matmul.fp32_precision`` makes every later read of
    the legacy ones (``get_float32_matmul_precision``, ``allow_tf32``) raise."""
    mode = fp32_matmul(hw)
    if mode == "tf32":
        import torch

        torch.set_float32_matmul_precision("high")
    return mode


def resolve_dtype(value: str, hw: Hardware | None = None, *, field: str = "generation.dtype") -> str:
    """The dtype to sample in: ``value`` unless it is ``auto`` (see the module's table)."""
    check_choice(value, DTYPES, field)
    if value != "auto":
        return value
    return "bfloat16" if (hw or detect()).native_bf16 else "float32"


def resolve_precision(value: str, hw: Hardware | None = None, *, field: str = "mixed_precision") -> str:
    """Training precision, ``bf16`` (autocast over fp32 weights) or ``no``: ``value`` unless it
    is ``auto`` (see the module's table)."""
    check_choice(value, PRECISIONS, field)
    if value != "auto":
        return value
    return "bf16" if (hw or detect()).native_bf16 else "no"


def vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def resolve_backend(value: str, *, vllm: bool | None = None) -> tuple[str, str]:
    """(backend, why) for ``generation.backend``; an explicit ``vllm`` that is not installed is
    a one-line error."""
    from .generation import BACKENDS

    check_choice(value, BACKENDS, "generation.backend")
    vllm = vllm_installed() if vllm is None else vllm
    if value == "vllm" and not vllm:
        raise ParamsError("backend vllm requested but vLLM is not installed (pip install -e '.[cpu]' or '.[gpu]')",
                          file="params.yaml", field="generation.backend")
    if value != "auto":
        return value, "set in params"
    if vllm:
        return "vllm", "auto: vLLM is installed"
    return "transformers", "auto: vLLM is not installed"


def record(hw: Hardware | None = None, **resolved: Any) -> dict[str, Any]:
    """What a stage writes next to its outputs: the resolved settings and the machine (on a CUDA
    device also how fp32 matmuls computed)."""
    import torch

    hw = hw or detect()
    out = dict(resolved)
    out.update(device=hw.device, gpu=hw.gpu, cpu_capability=hw.cpu_capability, cpu_bf16_flags=list(hw.cpu_flags),
               cores=hw.cores, machine=platform.machine(), torch=torch.__version__)
    if hw.device == "cuda":
        out["fp32_matmul"] = fp32_matmul(hw)
    return out


def log_resolved(what: str, hw: Hardware | None = None, **resolved: Any) -> None:
    """One log line: what ``what`` resolved on this machine (on a CUDA device with how fp32
    matmuls compute)."""
    hw = hw or detect()
    where = hw.gpu if hw.device == "cuda" else f"CPU {hw.cpu_capability}, {hw.cores} cores"
    if hw.device == "cuda":
        resolved = {**resolved, "fp32_matmul": fp32_matmul(hw)}
    log.info("%s on %s: %s", what, where, ", ".join(f"{k}={v}" for k, v in resolved.items()))


@dataclass(frozen=True)
class ComputeConfig:
    """Execution settings (params.yaml section ``compute``): how a stage uses the machine, never
    what it computes. No stage declares this section, so it can differ between a laptop and a
    GPU node under one ``dvc.lock``.

    Attributes:
        threads: CPU threads for torch and vLLM's CPU engine (``auto``: every core this process
            may run on).
        kv_cache_gib: memory vLLM reserves for its KV cache on a CPU (``auto``: 8% of available
            memory, between 0.5 and 4 GiB).
        gpu_memory_utilization: fraction of a GPU's memory a vLLM engine may take (weights + KV
            cache); an explicit value holds for every engine (``auto``: 0.85 for an engine alone on
            the GPU, as in probe, baseline and evaluate; 0.3 for TRL's colocated engine beside a
            training process, TRL's own default, which leaves the trainer its weights, gradients,
            optimizer state and activations).
        max_num_batched_tokens: tokens vLLM schedules per step (at least ``max_model_len``).
        train_micro_batch: sequences per forward and backward pass of a training process; a
            step's batch is accumulated over as many passes as it takes, and TRL normalizes the
            loss over the whole batch, so the update is the same up to rounding (``auto``: the
            whole batch on a GPU; 2 on a CPU, where the activations share memory with the
            colocated vLLM engine: a 135M model's GRPO process peaks at 6.1 GB with 8 sequences
            per pass, 5.2 GB with 2, 3% slower).
        cuda_graphs: capture CUDA graphs in vLLM (``auto``: on a GPU; never on a CPU, where
            compilation costs ~100 s at start and does not pay for short stages).
        block_size: vLLM KV-cache block size (``auto``: 32 on a CPU, the smallest its attention
            kernel takes, so prefix caching shares all but the last <32 prompt tokens between
            the n samples of a prompt; vLLM's default on a GPU).
        cache_dir: where vLLM and torch.compile keep their caches.
        processes: training processes of a GRPO or SFT run (data parallel, one per GPU). With
            more than one, the run's global batch is split among them, so it trains on the same
            data in the same number of steps as one process (:mod:`supernova.training.launch`).
        launcher: what starts them: ``torchrun`` (on a CPU a gloo job), ``accelerate`` (``accelerate
            launch --config_file accelerate_config``), or ``auto``: accelerate on a GPU, torchrun
            on a CPU.
        accelerate_config: accelerate's config file (DDP or DeepSpeed ZeRO-3: ``cluster/accelerate/``).
    """

    threads: int | str = "auto"
    kv_cache_gib: float | str = "auto"
    gpu_memory_utilization: float | str = "auto"
    max_num_batched_tokens: int = 4096
    train_micro_batch: int | str = "auto"
    cuda_graphs: bool | str = "auto"
    block_size: int | str = "auto"
    cache_dir: str = ".cache"
    processes: int = 1
    launcher: str = "auto"
    accelerate_config: str = "cluster/accelerate/ddp.yaml"

    def __post_init__(self):
        for name in ("threads", "kv_cache_gib", "gpu_memory_utilization", "train_micro_batch", "cuda_graphs",
                     "block_size"):
            value = getattr(self, name)
            if isinstance(value, str) and value != "auto":
                raise ParamsError(f"must be 'auto' or a value, got {value!r}", file="params.yaml",
                                  field=f"compute.{name}")
        if self.gpu_memory_utilization != "auto" and not 0 < self.gpu_memory_utilization <= 1:
            raise ParamsError("must lie in (0, 1]", file="params.yaml", field="compute.gpu_memory_utilization")
        if self.processes < 1:
            raise ParamsError(f"must be >= 1, got {self.processes!r}", file="params.yaml", field="compute.processes")
        check_choice(self.launcher, LAUNCHERS, "compute.launcher")

    def resolved(self, hw: Hardware | None = None) -> dict[str, Any]:
        hw = hw or detect()
        gpu = hw.device == "cuda"
        kv = self.kv_cache_gib
        if kv == "auto":
            kv = round(min(4.0, max(0.5, 0.08 * hw.memory_gib)), 2)
        return {
            "threads": hw.cores if self.threads == "auto" else int(self.threads),
            "kv_cache_gib": float(kv),
            "gpu_memory_utilization": (GPU_MEMORY_ALONE if self.gpu_memory_utilization == "auto"
                                       else float(self.gpu_memory_utilization)),
            "colocated_gpu_memory_utilization": (GPU_MEMORY_COLOCATED if self.gpu_memory_utilization == "auto"
                                                 else float(self.gpu_memory_utilization)),
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "train_micro_batch": ((None if gpu else 2) if self.train_micro_batch == "auto"
                                  else int(self.train_micro_batch)),
            "cuda_graphs": gpu if self.cuda_graphs == "auto" else bool(self.cuda_graphs) and gpu,
            "block_size": (None if gpu else 32) if self.block_size == "auto" else int(self.block_size),
            "cache_dir": self.cache_dir,
            "processes": self.processes,
            "launcher": ("accelerate" if gpu else "torchrun") if self.launcher == "auto" else self.launcher,
        }


def local_processes() -> int:
    """Processes of this job on this machine (``LOCAL_WORLD_SIZE``, which torchrun and accelerate
    launch set; 1 outside them)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def apply_threads(compute: ComputeConfig) -> None:
    """Size torch's thread pool from ``compute.threads``, never past the cores this process may
    run on (its CPU affinity: a worker of ``supernova.fanout`` has its slice of the machine), and
    shared among this machine's training processes; on a CUDA device, let fp32 matmuls use TF32
    (:func:`apply_fp32_matmul`)."""
    import torch

    apply_fp32_matmul()
    torch.set_num_threads(max(1, min(compute.resolved()["threads"], detect().cores) // local_processes()))

