"""Teacher-forced scoring: continuous, paired metrics of a model on items, no sampling.

Every item is scored from the log-probabilities the model gives to answers written after the
prompt and the answer marker (``The answer is:``), the way DataDecide and OLMES score small models:

* ``gold_logprob_token`` / ``gold_logprob_byte`` — the gold answer's summed log-probability divided
  by its token count / by its UTF-8 byte count (for multiple choice the gold answer is the option
  letter the prompt asks for, ``(B)``);
* for multiple-choice items, in the **letter form** (the prompt lists the options; the
  continuations are the letters ``(A)``, ``(B)``, ...) and in the **cloze form** (the prompt is the
  question alone; the continuations are the options' texts, compared per byte since their lengths
  differ):

  - ``letter_norm_prob`` / ``cloze_norm_prob`` — the gold option's share of the probability summed
    over the options (DataDecide's NORM CORRECT PROB);
  - ``letter_margin`` / ``cloze_margin`` — the gold option's probability minus the best other
    option's (DataDecide's MARGIN).

The four option metrics are NaN for free-form items.

All of an item's sequences (its letter-form prompt with every letter, its cloze prompt with every
option text) are packed into one row and scored in **one forward pass**: a block-causal attention
mask lets each continuation see its own prompt and itself only, and position ids restart with each
prompt. The logits are computed only where a continuation token is predicted.

:class:`Scorer` can split the model at a layer: :meth:`Scorer.encode` runs the base model once and
keeps the input of that layer for every item; :meth:`Scorer.score` of a model whose layers below it
are the base model's (a checkpoint of a run that trains only its top layers, ``train_top_layers``)
then runs the top layers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .answer import choice_letter
from .prompts import PromptConfig, answer_context, cloze_item
from .schema import METRICS

#: Metrics defined for every item; the others for multiple-choice items only.
ALL_ITEMS = ("gold_logprob_token", "gold_logprob_byte")


@dataclass
class Group:
    """One prompt (token ids) and the continuations scored after it, with each one's byte count."""

    context: list[int]
    continuations: list[list[int]]
    nbytes: list[int]


@dataclass
class Packed:
    """An item's groups in one row: token ids, position ids, for each token the prompt block it
    may attend to and its own block, and per group, per continuation, the positions predicting
    its tokens."""

    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    ctx_block: list[int] = field(default_factory=list)
    own_block: list[int] = field(default_factory=list)
    predictors: list[list[list[int]]] = field(default_factory=list)
    conts: list[list[list[int]]] = field(default_factory=list)
    nbytes: list[list[int]] = field(default_factory=list)


def _encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def item_groups(item: Mapping[str, Any], prompt: PromptConfig, tok) -> list[Group]:
    """What is scored for ``item``: for multiple choice the letter-form group, then the cloze-form
    group; otherwise one group, the prompt and the gold answer. The answer follows the marker with
    one space, tokenised on its own (as lm-eval does), so every option starts on a token boundary."""
    def group(it: Mapping[str, Any], answers: Sequence[str]) -> Group:
        return Group(_encode(tok, answer_context(it, prompt, tok)), [_encode(tok, " " + a) for a in answers],
                     [max(1, len(a.encode("utf-8"))) for a in answers])

    choices = list(item.get("choices") or [])
    if item["answer_type"] == "mcq" and len(choices) >= 2:
        letters = [f"({choice_letter(i)})" for i in range(len(choices))]
        return [group(item, letters), group(cloze_item(item), [str(c) for c in choices])]
    return [group(item, [str(item["answer"])])]


def pack(groups: Sequence[Group]) -> Packed:
    """``groups`` packed into one row (see :class:`Packed`)."""
    p = Packed()
    block = 0
    for g in groups:
        start, n = len(p.ids), len(g.context)
        p.ids += g.context
        p.positions += list(range(n))
        p.ctx_block += [block] * n
        p.own_block += [block] * n
        preds = []
        for j, cont in enumerate(g.continuations):
            cstart = len(p.ids)
            p.ids += cont
            p.positions += list(range(n, n + len(cont)))
            p.ctx_block += [block] * len(cont)
            p.own_block += [block + 1 + j] * len(cont)
            preds.append([start + n - 1] + list(range(cstart, cstart + len(cont) - 1)))
        p.predictors.append(preds)
        p.conts.append([list(c) for c in g.continuations])
        p.nbytes.append(list(g.nbytes))
        block += 1 + len(g.continuations)
    return p


def block_mask(rows: Sequence[Packed], length: int):
    """(batch, 1, length, length) boolean mask: query i sees key j <= i of its prompt block or of its
    own block; padding sees only padding."""
    import torch

    own = torch.full((len(rows), length), -1, dtype=torch.long)
    ctx = torch.full((len(rows), length), -2, dtype=torch.long)
    for b, r in enumerate(rows):
        own[b, :len(r.ids)] = torch.tensor(r.own_block)
        ctx[b, :len(r.ids)] = torch.tensor(r.ctx_block)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    visible = (own[:, None, :] == ctx[:, :, None]) | (own[:, None, :] == own[:, :, None])
    return (visible & causal)[:, None]


def item_metrics(logprobs: Sequence[Sequence[float]], ntokens: Sequence[Sequence[int]],
                 nbytes: Sequence[Sequence[int]], gold: int | None) -> dict[str, float]:
    """The :data:`METRICS` of one item from its continuations' summed log-probabilities.

    ``logprobs[g][j]``, ``ntokens[g][j]`` and ``nbytes[g][j]`` belong to continuation ``j`` of group
    ``g``; ``gold`` is the gold option's index (multiple choice: group 0 the letters, group 1 the
    option texts) or ``None`` (free-form: one group holding the gold answer)."""
    out = dict.fromkeys(METRICS, float("nan"))
    g = 0 if gold is None else gold
    out["gold_logprob_token"] = float(logprobs[0][g] / ntokens[0][g])
    out["gold_logprob_byte"] = float(logprobs[0][g] / nbytes[0][g])
    if gold is None:
        return out
    for name, lp in (("letter", np.asarray(logprobs[0], dtype=float)),
                     ("cloze", np.asarray(logprobs[1], dtype=float) / np.asarray(nbytes[1], dtype=float))):
        probs = np.exp(lp)
        others = np.delete(probs, gold)
        out[f"{name}_norm_prob"] = float(np.exp(lp[gold] - np.logaddexp.reduce(lp)))
        out[f"{name}_margin"] = float(probs[gold] - others.max())
    return out


@dataclass
class Prepared:
    """Items tokenised and packed once, in the batches :class:`Scorer` runs them in."""

    items: pd.DataFrame
    rows: list[Packed]
    batches: list[list[int]]
    hidden: dict[int, Any] = field(default_factory=dict)   # row -> (len, hidden) input of the split layer


class Scorer:
    """Teacher-forced scoring of items with a causal LM (see the module docstring).

    ``split``: the layer whose input :meth:`encode` keeps (``None``: every model is run whole).
    ``batch_tokens`` bounds a batch's padded size (rows x longest row)."""

    def __init__(self, tok, prompt: PromptConfig, *, split: int | None = None, batch_tokens: int = 4096):
        self.tok, self.prompt, self.split, self.batch_tokens = tok, prompt, split, batch_tokens

    def prepare(self, items: pd.DataFrame) -> Prepared:
        rows = [pack(item_groups(r, self.prompt, self.tok)) for r in items.to_dict("records")]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i].ids))
        batches, cur = [], []
        for i in order:
            if cur and (len(cur) + 1) * len(rows[i].ids) > self.batch_tokens:
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return Prepared(items.reset_index(drop=True), rows, batches)

    def _inputs(self, rows: Sequence[Packed], dtype, device):
        import torch

        length = max(len(r.ids) for r in rows)
        ids = torch.full((len(rows), length), self.tok.pad_token_id or 0, dtype=torch.long)
        pos = torch.zeros((len(rows), length), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, :len(r.ids)] = torch.tensor(r.ids)
            pos[b, :len(r.ids)] = torch.tensor(r.positions)
        mask = block_mask(rows, length)
        additive = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        return ids.to(device), pos.to(device), additive.to(device)

    def _logprobs(self, model, hidden, rows: Sequence[Packed]) -> list[list[list[float]]]:
        """Summed log-probability of every continuation of every row, from the last hidden states."""
        import torch

        b_idx, p_idx, t_idx, owner = [], [], [], []
        for b, r in enumerate(rows):
            for g, (preds, conts) in enumerate(zip(r.predictors, r.conts)):
                for j, (pp, cc) in enumerate(zip(preds, conts)):
                    b_idx += [b] * len(pp)
                    p_idx += pp
                    t_idx += cc
                    owner += [(b, g, j)] * len(pp)
        h = hidden[torch.tensor(b_idx), torch.tensor(p_idx)]
        logits = model.lm_head(h).float()
        lp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(t_idx, device=h.device)[:, None])[:, 0]
        out = [[[0.0] * len(c) for c in r.conts] for r in rows]
        for (b, g, j), v in zip(owner, lp.tolist()):
            out[b][g][j] += v
        return out

    def _top(self, model, hidden, pos, mask):
        body = model.model
        pe = body.rotary_emb(hidden, position_ids=pos)
        for layer in body.layers[self.split:]:
            hidden = layer(hidden, attention_mask=mask, position_embeddings=pe, position_ids=pos)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return body.norm(hidden)

    def _run(self, model, prepared: Prepared, keep: bool) -> list[list[list[float]]]:
        import torch

        dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
        out: list[Any] = [None] * len(prepared.rows)
        with torch.inference_mode():
            for batch in prepared.batches:
                rows = [prepared.rows[i] for i in batch]
                ids, pos, mask = self._inputs(rows, dtype, device)
                if self.split is not None and not keep:
                    h = torch.nn.utils.rnn.pad_sequence([prepared.hidden[i] for i in batch], batch_first=True)
                    last = self._top(model, h.to(device, dtype), pos, mask)
                else:
                    res = model.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                      output_hidden_states=keep and self.split is not None)
                    last = res.last_hidden_state
                    if keep and self.split is not None:
                        for k, i in enumerate(batch):
                            prepared.hidden[i] = res.hidden_states[self.split][k, :len(prepared.rows[i].ids)].clone()
                for k, lp in zip(batch, self._logprobs(model, last, rows)):
                    out[k] = lp
        return out

    def _frame(self, prepared: Prepared, logprobs) -> pd.DataFrame:
        recs = []
        for item, row, lp in zip(prepared.items.to_dict("records"), prepared.rows, logprobs):
            mcq = len(row.conts) == 2
            gold = _gold_index(item) if mcq else None
            m = item_metrics(lp, [[len(c) for c in g] for g in row.conts], row.nbytes, gold)
            recs.append({"task": item["task"], "uid": item["uid"], **m})
        return pd.DataFrame.from_records(recs, columns=["task", "uid", *METRICS])

    def encode(self, model, prepared: Prepared) -> pd.DataFrame:
        """Per-item metrics of ``model`` (the base), keeping the split layer's input for :meth:`score`."""
        return self._frame(prepared, self._run(model, prepared, keep=True))

    def score(self, model, prepared: Prepared) -> pd.DataFrame:
        """Per-item metrics of ``model``; with a split, from the inputs :meth:`encode` kept."""
        if self.split is not None and len(prepared.hidden) != len(prepared.rows):
            raise ValueError("encode the base model first: the split layer's inputs are missing")
        return self._frame(prepared, self._run(model, prepared, keep=False))


def _gold_index(item: Mapping[str, Any]) -> int:
    return ord(str(item["answer"]).strip().upper()) - ord("A")


def save_hidden(prepared: Prepared, path) -> None:
    """The split layer's inputs that :meth:`Scorer.encode` kept, as a safetensors file keyed by item uid."""
    from safetensors.torch import save_file

    from .io import atomic_path

    uids = list(prepared.items["uid"])
    with atomic_path(path) as tmp:
        save_file({uids[i]: h.contiguous() for i, h in prepared.hidden.items()}, str(tmp))


def load_hidden(prepared: Prepared, path) -> None:
    """Fill ``prepared`` with the split layer's inputs saved by :func:`save_hidden` (every item's,
    checked against its packed length)."""
    from safetensors import safe_open

    from .errors import InputError

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        for i, (uid, row) in enumerate(zip(prepared.items["uid"], prepared.rows)):
            if uid not in keys:
                raise InputError("no encoded input for this item (rerun the baseline stage)", file=str(path),
                                 field=uid)
            h = f.get_tensor(uid)
            if h.shape[0] != len(row.ids):
                raise InputError(f"encoded for {h.shape[0]} tokens, the item packs into {len(row.ids)}",
                                 file=str(path), field=uid)
            prepared.hidden[i] = h


def split_layer(model_path, train_top_layers: int | None) -> int | None:
    """The first trained layer of a run that trains only its top ``train_top_layers`` layers
    (``None``: every layer trains)."""
    if train_top_layers is None:
        return None
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model_path, trust_remote_code=False).num_hidden_layers) - train_top_layers


def score_model(model_path, items: pd.DataFrame, prompt: PromptConfig, *, dtype: str = "float32",
                train_top_layers: int | None = None, hidden_path=None, model: str = "base") -> pd.DataFrame:
    """LIKELIHOOD rows (``model`` named as given) of the model at ``model_path`` on ``items``. With
    ``hidden_path``, the model is the base of utility runs that train only their top
    ``train_top_layers`` layers (all of them: ``None``), and its encoding of the items below them
    is saved there, so that each run scores its checkpoints on the top layers alone."""
    from transformers import AutoTokenizer

    from .model import load_for_training

    tok = AutoTokenizer.from_pretrained(model_path, trust_remote_code=False)
    split = split_layer(model_path, train_top_layers) if hidden_path is not None else None
    scorer = Scorer(tok, prompt, split=split)
    prepared = scorer.prepare(items)
    net, _ = load_for_training(model_path, dtype)
    rows = scorer.encode(net.eval(), prepared).assign(model=model)
    if hidden_path is not None:
        save_hidden(prepared, hidden_path)
    return rows
