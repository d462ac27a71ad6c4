"""params.yaml sections → config dataclasses, with one-line errors naming the key."""

from pathlib import Path

import pytest

from supernova.config import from_section
from supernova.errors import ParamsError
from supernova.evaluation import EvalConfig
from supernova.rl_train import RLTrainConfig
from supernova.scoring import ScoreConfig

ROOT = Path(__file__).resolve().parents[1]


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
    from supernova.config import stage_params

    with pytest.raises(ParamsError, match="field score.grpo.seed: each utility run takes its seed from score.seeds"):
        from_section(ScoreConfig, {"score": {"grpo": {"seed": 3}}}, "score")
    params = {"score": {"tasks": "not even a list", "k": 4, "method": "rl"}}
    cfg = from_section(ScoreConfig, stage_params(params, "score@a-r0", ROOT / "dvc.yaml"), "score")
    assert cfg.method == "rl"                      # declared; tasks and k are not, so not validated either
    for key in ("tasks", "k"):
        with pytest.raises(ParamsError, match=f"dvc.yaml: field score.{key}: stage score@a-r0 reads this key"):
            getattr(cfg, key)


def test_a_stage_reading_a_key_it_does_not_declare_fails_naming_the_key_and_the_stage():
    """A stage's params hold what it declares in dvc.yaml and nothing else: reading another key,
    directly or as a config field, is a one-line error, never a silent default."""
    from supernova.config import StageParams

    params = {"seed": 0, "evaluate": {"n": 4}, "compute": {"threads": 1},
              "score": {"method": "gradient", "k": 2, "tasks": ["a"]},
              "rl_train": {"grpo": {"max_steps": 5, "beta": 0.1}, "sft": {"enabled": False}}}
    sp = StageParams(params, ["score.method", "score.k", "rl_train.grpo.max_steps", "compute"], "demo")
    assert sp["score"]["method"] == "gradient" and sp["compute"] == {"threads": 1}
    cfg = from_section(ScoreConfig, sp, "score")
    assert cfg.method == "gradient" and cfg.k == 2 and isinstance(cfg, ScoreConfig)
    assert "tasks=<not declared>" in repr(cfg)
    rl = from_section(RLTrainConfig, sp, "rl_train")
    assert rl.grpo.max_steps == 5
    reads = [("score.tasks", lambda: cfg.tasks), ("score.tasks", lambda: cfg.units),   # a property reads it too
             ("rl_train.grpo.beta", lambda: rl.grpo.beta), ("rl_train.sft", lambda: rl.sft),
             ("seed", lambda: sp.get("seed", 0)), ("evaluate", lambda: sp["evaluate"]),
             ("score.tasks", lambda: sp["score"]["tasks"]), ("score.control", lambda: "control" in sp["score"])]
    for key, read in reads:
        with pytest.raises(ParamsError) as e:
            read()
        assert str(e.value).startswith(f"dvc.yaml: field {key}: stage demo reads this key") and "\n" not in str(e.value)
    # declared but absent from params.yaml: the default, as anywhere
    assert from_section(EvalConfig, StageParams({}, ["evaluate"], "demo"), "evaluate") == EvalConfig()


def test_a_stage_script_that_reads_an_undeclared_key_exits_with_one_line(tmp_path, monkeypatch, capsys):
    import shutil

    from supernova import stage

    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    seen = {}

    def main(params):
        seen["evaluate"] = from_section(EvalConfig, params, "evaluate").n
        from_section(ScoreConfig, params, "score").k

    with pytest.raises(SystemExit) as e:
        stage.run("score@syllogism-r0", main)
    assert e.value.code == 2 and seen["evaluate"] == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("score@syllogism-r0: error: dvc.yaml: field score.k: stage score@syllogism-r0 reads")


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


def test_dvc_run_cache_ignores_a_key_named_size_so_params_may_not_use_one(tmp_path):
    import shutil

    from dvc.stage.cache import _get_cache_hash

    from supernova.config import load_params

    def key(params):
        return _get_cache_hash({"cmd": "python s.py", "params": {"params.yaml": params}, "outs": []}, key=True)

    # the reason: two values of a param named size give one run-cache key, two of n_items do not
    assert key({"sft_select": {"size": 2}}) == key({"sft_select": {"size": 64}})
    assert key({"sft_select": {"n_items": 2}}) != key({"sft_select": {"n_items": 64}})
    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "dvc.yaml", tmp_path / "dvc.yaml")
    text = (root / "params.yaml").read_text()
    assert "size:" not in text.replace("_size:", "")
    (tmp_path / "params.yaml").write_text(text.replace("name: aiw, n_items: 96", "name: aiw, size: 96"))
    with pytest.raises(ParamsError) as e:
        load_params(tmp_path / "params.yaml")
    assert "field ingest.sources[3].size: DVC's run-cache ignores a key of this name" in str(e.value)


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
