"""params.yaml sections → config dataclasses, with one-line errors naming the key."""

import pytest

from supernova.config import from_section
from supernova.errors import ParamsError
from supernova.evaluation import EvalConfig
from supernova.rl_train import RLTrainConfig
from supernova.score import ScoreConfig


def test_nested_sections_and_tuples():
    cfg = from_section(RLTrainConfig, {"rl_train": {"sft": {"enabled": False}, "grpo": {"max_steps": 3}}}, "rl_train")
    assert cfg.sft.enabled is False and cfg.grpo.max_steps == 3 and cfg.grpo.beta == 0.0
    ev = from_section(EvalConfig, {"evaluate": {"n": 4, "k": [1, 4]}}, "evaluate")
    assert ev.k == (1, 4)


def test_unknown_key_is_named():
    with pytest.raises(ParamsError) as e:
        from_section(RLTrainConfig, {"rl_train": {"grpo": {"max_stepz": 3}}}, "rl_train")
    assert str(e.value).startswith("params.yaml: field rl_train.grpo.max_stepz: unknown key")
    assert "\n" not in str(e.value)


def test_invalid_values_are_rejected():
    with pytest.raises(ParamsError, match="evaluate.k"):
        from_section(EvalConfig, {"evaluate": {"n": 2, "k": [4]}}, "evaluate")
    with pytest.raises(ParamsError, match="score.method"):
        from_section(ScoreConfig, {"score": {"tasks": ["a"], "method": "vibes"}}, "score")
