"""Probe: difficulty filter rules, per-task summary, and identical results for the same seed."""

import pandas as pd
import pytest

from supernova.errors import ParamsError
from supernova.generation import GenerationConfig, HFGenerator
from supernova.probe import ProbeConfig, drop_reason, probe_items, task_summary
from supernova.prompts import PromptConfig
from supernova.schema import PROBE, conform, items_frame
from supernova.sources import load_entry


@pytest.mark.parametrize("correct,n,cfg,expected", [
    (4, 4, ProbeConfig(), "all_correct"),
    (0, 4, ProbeConfig(), ""),
    (0, 4, ProbeConfig(drop_all_wrong=True), "all_wrong"),
    (1, 4, ProbeConfig(band=(0.3, 0.9)), "below_band"),
    (3, 4, ProbeConfig(band=(0.0, 0.5)), "above_band"),
    (2, 4, ProbeConfig(band=(0.5, 0.5)), ""),
])
def test_drop_reason(correct, n, cfg, expected):
    assert drop_reason(correct, n, cfg) == expected


def test_band_and_k_are_validated():
    with pytest.raises(ParamsError, match="probe.band"):
        ProbeConfig(band=(0.8, 0.2))
    with pytest.raises(ParamsError, match="probe.k"):
        ProbeConfig(n=2, k=(4,))


def test_probe_on_the_real_model_is_reproducible(smol_model):
    [t] = load_entry({"kind": "reasoning_gym", "name": "syllogism", "n_items": 12, "format": "mcq"}, "x", 0)
    items = items_frame(t.items)
    cfg = ProbeConfig(n=4, max_new_tokens=12, k=(1, 4), seed=3)
    gen = HFGenerator(smol_model, GenerationConfig(backend="transformers", batch_size=12))
    a = probe_items(gen, items, PromptConfig(), cfg)
    b = probe_items(gen, items, PromptConfig(), cfg)
    pd.testing.assert_frame_equal(a, b)
    conform(a, PROBE)
    assert a["correct"].sum() > 0, "the base model never answers correctly: no signal to probe"
    s = task_summary(a, cfg)
    assert s["items"] == 12 and s["kept"] == 12 - s["dropped"]["all_correct"]
    assert s["pass@4"] >= s["pass@1"] == pytest.approx(a["pass_rate"].mean(), abs=1e-4)
