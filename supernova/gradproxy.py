"""A cheap utility proxy: gradient alignment at the base model (``score.method: gradient``).

For a source task, the mean gradient of the base model's loss on its items' gold answer lines;
for each target sub-task, the same on its dev items. The proxy utility is their cosine
similarity — a source task whose gradient points the way the target's does should help it
(the idea behind LESS). Gradients are taken over the top ``layers`` decoder layers only, on
:func:`supernova.hardware.torch_device` (the CUDA device when there is one), under bf16 autocast
where ``precision`` resolves to it on that device (:mod:`supernova.hardware`). Target gradients do
not depend on the source task, so they are computed once and kept in a cache file keyed by
everything they depend on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .prompts import PromptConfig

if TYPE_CHECKING:
    from .hardware import Hardware


def proxy_precision(value: str, hw: Hardware | None = None) -> str:
    """The precision the proxy computes in: ``value`` resolved for the device it runs on
    (``hw``: this machine)."""
    from .hardware import resolve_precision

    return resolve_precision(value, hw, field="score.grpo.mixed_precision")


class GradientProxy:
    """The base model with its top ``layers`` trainable, on ``device`` (default:
    :func:`supernova.hardware.torch_device`), ready to produce mean gradients."""

    def __init__(self, model_path: str | os.PathLike, prompt: PromptConfig, layers: int, batch_size: int = 8,
                 precision: str = "auto", device: str | None = None):
        import dataclasses

        import torch

        from .hardware import apply_fp32_matmul, detect, log_resolved, torch_device
        from .model import load_trainable
        from .training.resume import model_digest

        self.device = torch.device(device or torch_device())
        self.precision = proxy_precision(precision, dataclasses.replace(detect(), device=self.device.type))
        apply_fp32_matmul()
        log_resolved(f"gradient proxy ({Path(model_path).name})", device=self.device, mixed_precision=self.precision)

        self.model, self.tok = load_trainable(model_path, "float32", layers)
        self.model.to(self.device)
        self.model_digest = model_digest(model_path)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.prompt, self.batch_size = prompt, batch_size

    def mean_gradient(self, items: pd.DataFrame, desc: str = "gradient") -> np.ndarray:
        """Mean over items of the gradient of the gold-answer NLL (flattened, float32)."""
        import torch
        from tqdm.auto import tqdm

        from .training.sft import gold_answer_batch

        self.model.zero_grad(set_to_none=True)
        rows = items.to_dict("records")
        bar = f"score {desc} gradient [{self.model.config.name_or_path}]"
        for start in tqdm(range(0, len(rows), self.batch_size), desc=bar, unit="batch", leave=False):
            batch = rows[start:start + self.batch_size]
            input_ids, mask, lab = (t.to(self.device) for t in gold_answer_batch(self.tok, batch, self.prompt))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                loss = self.model(input_ids=input_ids, attention_mask=mask, labels=lab).loss
            (loss.float() * len(batch) / len(rows)).backward()
        g = torch.cat([p.grad.detach().flatten().float() for p in self.params]).cpu().numpy().copy()
        self.model.zero_grad(set_to_none=True)
        return g

    def target_gradients(self, dev: pd.DataFrame, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
        """Mean gradient per target sub-task, read from / written to ``cache_dir`` when given."""
        from .io import atomic_path
        from .training.resume import fingerprint

        key = fingerprint(sorted(dev["uid"]), self.model_digest, self.precision, [list(p.shape) for p in self.params],
                          self.prompt.__dict__)
        path = cache_dir / f"target-gradients-{key}.npz" if cache_dir else None
        if path and path.exists():
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        grads = {t: self.mean_gradient(g, f"target {t}") for t, g in dev.groupby("task", sort=True)}
        if path:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
                    np.savez(f, **grads)
        return grads


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def gradient_alignment(model_path, train_items: pd.DataFrame, dev: pd.DataFrame, prompt: PromptConfig,
                       layers: int, cache_dir: Path | None = None, precision: str = "auto") -> dict[str, float]:
    """Cosine between the source items' mean gradient and each target sub-task's."""
    proxy = GradientProxy(model_path, prompt, layers, precision=precision)
    targets = proxy.target_gradients(dev, cache_dir)
    g_src = proxy.mean_gradient(train_items, f"source {', '.join(sorted(set(train_items['task'])))}")
    return {t: cosine(g_src, g) for t, g in targets.items()}
