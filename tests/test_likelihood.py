"""Teacher-forced metrics: hand-computed values, and the packed forward pass against scoring each
sequence on its own."""

import math

import numpy as np
import pandas as pd
import pytest

from supernova.likelihood import Scorer, item_groups, item_metrics, pack
from supernova.schema import METRICS
from supernova.prompts import PromptConfig


def test_metrics_of_a_two_option_item_by_hand():
    # a 2-token vocabulary {A, B} after the marker: p(A) = 0.8, p(B) = 0.2; gold is B
    la, lb = math.log(0.8), math.log(0.2)
    # cloze options: "yes" (3 bytes, 2 tokens) and "no" (2 bytes, 1 token)
    c_yes, c_no = math.log(0.3), math.log(0.5)
    m = item_metrics([[la, lb], [c_yes, c_no]], [[1, 1], [2, 1]], [[3, 3], [3, 2]], gold=1)
    assert m["gold_logprob_token"] == pytest.approx(lb)
    assert m["gold_logprob_byte"] == pytest.approx(lb / 3)
    assert m["letter_norm_prob"] == pytest.approx(0.2)
    assert m["letter_margin"] == pytest.approx(0.2 - 0.8)
    # cloze: per byte, then normalised over the options
    py, pn = math.exp(c_yes / 3), math.exp(c_no / 2)
    assert m["cloze_norm_prob"] == pytest.approx(pn / (py + pn))
    assert m["cloze_margin"] == pytest.approx(pn - py)


def test_a_free_form_item_has_only_the_gold_answer_metrics():
    m = item_metrics([[math.log(0.25) * 2]], [[2]], [[4]], gold=None)
    assert m["gold_logprob_token"] == pytest.approx(math.log(0.25))
    assert m["gold_logprob_byte"] == pytest.approx(math.log(0.25) / 2)
    assert all(np.isnan(m[k]) for k in ("letter_norm_prob", "letter_margin", "cloze_norm_prob", "cloze_margin"))


def test_packing_positions_and_blocks():
    from supernova.likelihood import Group

    p = pack([Group([1, 2, 3], [[4], [5, 6]], [1, 2]), Group([7, 8], [[9]], [1])])
    assert p.ids == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert p.positions == [0, 1, 2, 3, 3, 4, 0, 1, 2]
    assert p.predictors == [[[2], [2, 4]], [[7]]]
    assert p.own_block == [0, 0, 0, 1, 2, 2, 3, 3, 4]
    assert p.ctx_block == [0, 0, 0, 0, 0, 0, 3, 3, 3]


def _items():
    return pd.DataFrame([
        {"uid": "m1", "task": "t", "question": "Is the sky blue?", "answer": "A", "choices": ["yes", "no way"],
         "answer_type": "mcq"},
        {"uid": "f1", "task": "u", "question": "What is 2 + 2?", "answer": "4", "choices": [], "answer_type": "numeric"},
        {"uid": "m2", "task": "t", "question": "Pick the colour of grass.", "answer": "C",
         "choices": ["red", "blue", "green"], "answer_type": "mcq"},
    ])


def _naive(model, tok, items, prompt):
    """Every continuation scored in its own forward pass."""
    import torch

    out = []
    for r in items.to_dict("records"):
        lps = []
        for g in item_groups(r, prompt, tok):
            row = []
            for cont in g.continuations:
                ids = torch.tensor([g.context + cont])
                with torch.no_grad():
                    lp = torch.log_softmax(model(ids).logits[0].float(), -1)
                row.append(sum(lp[len(g.context) - 1 + i, t].item() for i, t in enumerate(cont)))
            lps.append(row)
        out.append(lps)
    return out


@pytest.mark.parametrize("answer_prefix", [False, True])
def test_packed_scoring_equals_scoring_each_sequence_alone(tiny_model, answer_prefix):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    prompt = PromptConfig(system="", answer_prefix=answer_prefix)
    items = _items()
    scorer = Scorer(tok, prompt, batch_tokens=64)          # small batches: rows of different lengths padded
    got = scorer.score(model, scorer.prepare(items)).set_index("uid")
    for r, lps in zip(items.to_dict("records"), _naive(model, tok, items, prompt)):
        rows = pack(item_groups(r, prompt, tok))
        gold = ord(r["answer"]) - ord("A") if r["answer_type"] == "mcq" else None
        want = item_metrics(lps, [[len(c) for c in g] for g in rows.conts], rows.nbytes, gold)
        for k in METRICS:
            if np.isnan(want[k]):
                assert np.isnan(got.loc[r["uid"], k])
            else:
                assert got.loc[r["uid"], k] == pytest.approx(want[k], rel=1e-4, abs=1e-5)


def test_the_split_scores_the_top_layers_from_the_kept_encoding(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from supernova.likelihood import load_hidden, save_hidden

    tok = AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    prompt = PromptConfig(system="")
    scorer = Scorer(tok, prompt, split=1)                    # the tiny model's top layer of two
    prepared = scorer.prepare(_items())
    encoded = scorer.encode(base, prepared)
    whole_base = Scorer(tok, prompt).score(base, Scorer(tok, prompt).prepare(_items()))
    assert np.allclose(encoded[list(METRICS)].to_numpy(dtype=float), whole_base[list(METRICS)].to_numpy(dtype=float),
                       equal_nan=True, atol=1e-5)
    # a checkpoint that changed only its top layer: the split path equals running it whole
    trained = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in trained.model.layers[1].parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_hidden(prepared, tmp_path / "h.safetensors")
    again = scorer.prepare(_items())
    load_hidden(again, tmp_path / "h.safetensors")
    split = scorer.score(trained, again)[list(METRICS)].to_numpy(dtype=float)
    whole = Scorer(tok, prompt).score(trained, Scorer(tok, prompt).prepare(_items()))[list(METRICS)]
    assert np.allclose(split, whole.to_numpy(dtype=float), equal_nan=True, atol=1e-5)
    assert not np.allclose(split, encoded[list(METRICS)].to_numpy(dtype=float), equal_nan=True, atol=1e-5)
