"""params.yaml sections → config dataclasses, with one-line errors naming the key."""

from pathlib import Path

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


def test_a_nested_error_names_the_full_path():
    with pytest.raises(ParamsError) as e:
        from_section(RLTrainConfig, {"rl_train": {"grpo": {"num_generations": 1}}}, "rl_train")
    assert "field rl_train.grpo.num_generations:" in str(e.value)
    with pytest.raises(ParamsError, match="field score.grpo.max_steps:"):
        from_section(ScoreConfig, {"score": {"tasks": ["a"], "grpo": {"max_steps": 0}}}, "score")
    with pytest.raises(ParamsError, match="field rl_train.sft: must be a mapping"):
        from_section(RLTrainConfig, {"rl_train": {"sft": "yes"}}, "rl_train")


def test_score_grpo_seed_is_refused_and_score_stage_reads_neither_tasks_nor_k():
    with pytest.raises(ParamsError, match="field score.grpo.seed: each utility run takes its seed from score.seeds"):
        from_section(ScoreConfig, {"score": {"grpo": {"seed": 3}}}, "score")
    cfg = from_section(ScoreConfig, {"score": {"tasks": "not even a list", "k": 4}}, "score", ignore=("tasks", "k"))
    assert cfg.tasks == () and cfg.k == ScoreConfig.k


def test_a_misspelled_top_level_section_is_refused(tmp_path):
    import shutil

    from supernova.config import load_params

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text() + "evalute:\n  n: 2\n")
    with pytest.raises(ParamsError) as e:
        load_params(tmp_path / "params.yaml")
    assert "field evalute: unknown section" in str(e.value)
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text())
    assert "evaluate" in load_params(tmp_path / "params.yaml")


def test_model_section_goes_through_the_config_layer():
    from supernova.model import ModelConfig

    with pytest.raises(ParamsError, match="field model.name_or_pth: unknown key"):
        from_section(ModelConfig, {"model": {"name_or_pth": "x"}}, "model")


def test_local_entry_files_must_lie_under_data_root(tmp_path, monkeypatch):
    from supernova.config import check_data_root

    monkeypatch.chdir(tmp_path)
    (tmp_path / "inputs" / "superni").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    check_data_root("inputs", {"sources": [{"kind": "superni", "path": "inputs/superni"},
                                           {"kind": "hf", "dataset": "org/hub-dataset"}]})
    with pytest.raises(ParamsError, match=r"field ingest.targets\[1\].path: elsewhere lies outside data_root"):
        check_data_root("inputs", {"targets": [{"kind": "superni", "path": "inputs/superni"},
                                               {"kind": "bigbench", "path": "elsewhere"}]})
    with pytest.raises(ParamsError, match="field data_root: must be a folder"):
        check_data_root("missing", {})
