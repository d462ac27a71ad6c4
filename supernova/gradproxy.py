"""A cheap utility proxy: gradient alignment at the base model (``score.method: gradient``).

For a source task, the mean gradient of the base model's loss on its items' gold answer lines;
for each target sub-task, the same on its dev items. The proxy utility is their cosine
similarity — a source task whose gradient points the way the target's does should help it
(the idea behind LESS). Gradients are taken over the top ``proxy_layers`` decoder layers only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .prompts import PromptConfig


def mean_gradient(model, tok, items: pd.DataFrame, prompt: PromptConfig, params: list, batch_size: int = 8) -> np.ndarray:
    """Mean over items of the gradient of the gold-answer NLL w.r.t. ``params`` (flattened)."""
    import torch

    from .training import gold_answer_batch

    model.zero_grad(set_to_none=True)
    rows = items.to_dict("records")
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        input_ids, mask, lab = gold_answer_batch(tok, batch, prompt)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=lab).loss
        (loss * len(batch) / len(rows)).backward()
    g = torch.cat([p.grad.detach().flatten().float() for p in params]).numpy().copy()
    model.zero_grad(set_to_none=True)
    return g


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def gradient_alignment(model_path, train_items: pd.DataFrame, dev: pd.DataFrame, prompt: PromptConfig,
                       layers: int) -> dict[str, float]:
    """Cosine between the source items' mean gradient and each target sub-task's."""
    from .training import load_trainable

    model, tok = load_trainable(model_path, "float32", layers)
    params = [p for p in model.parameters() if p.requires_grad]
    g_src = mean_gradient(model, tok, train_items, prompt, params)
    return {t: cosine(g_src, mean_gradient(model, tok, g, prompt, params))
            for t, g in dev.groupby("task", sort=True)}
