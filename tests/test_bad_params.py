"""The bad-params corpus: impossible values, wrong types and repeated names in params.yaml each
end in one line naming the full key, never in a bare exception or a silent acceptance."""

import pytest

from supernova.config import check_data_root, check_entries, from_section
from supernova.errors import ParamsError
from supernova.evaluation import EvalConfig
from supernova.mix import MixConfig
from supernova.probe import ProbeConfig
from supernova.rl_train import RLTrainConfig
from supernova.scoring import ScoreConfig
from supernova.sft_select import SFTSelectConfig

CASES = [
    (ScoreConfig, "score", {"target_size": 0}, "score.target_size", "must be >= 1"),
    (ScoreConfig, "score", {"seeds": [0, 0]}, "score.seeds", "names 0 twice"),
    (ScoreConfig, "score", {"proxy_layers": -1}, "score.proxy_layers", "must be >= 1"),
    (ScoreConfig, "score", {"tasks": "syllogism"}, "score.tasks", "must be a list, got str"),
    (ScoreConfig, "score", {"tasks": ["a", "b", "a"]}, "score.tasks", "names 'a' twice"),
    (ScoreConfig, "score", {"grpo": {"prompts_per_step": 0}}, "score.grpo.prompts_per_step", "must be >= 1"),
    (ScoreConfig, "score", {"grpo": {"learning_rate": -1e-5}}, "score.grpo.learning_rate", "must be > 0"),
    (ScoreConfig, "score", {"grpo": {"temperature": -0.5}}, "score.grpo.temperature", "must be >= 0"),
    (ScoreConfig, "score", {"grpo": "fast"}, "score.grpo", "must be a mapping, got str"),
    (RLTrainConfig, "rl_train", {"grpo": {"save_steps": -1}}, "rl_train.grpo.save_steps", "must be >= 0"),
    (RLTrainConfig, "rl_train", {"grpo": {"max_steps": "3"}}, "rl_train.grpo.max_steps", "must be an integer, got str"),
    (RLTrainConfig, "rl_train", {"grpo": {"use_vllm": "yes"}}, "rl_train.grpo.use_vllm", "must be true or false"),
    (RLTrainConfig, "rl_train", {"sft": {"batch_size": 0}}, "rl_train.sft.batch_size", "must be >= 1"),
    (RLTrainConfig, "rl_train", {"sft": {"max_steps": 2.5}}, "rl_train.sft.max_steps", "must be an integer"),
    (MixConfig, "mix", {"per_task_cap": 0}, "mix.per_task_cap", "must be >= 1"),
    (MixConfig, "mix", {"manual_tasks": "a"}, "mix.manual_tasks", "must be a list"),
    (MixConfig, "mix", {"total_size": -4}, "mix.total_size", "must be >= 1"),
    (SFTSelectConfig, "sft_select", {"batch_size": 0}, "sft_select.batch_size", "must be >= 1"),
    (SFTSelectConfig, "sft_select", {"clusters": 0}, "sft_select.clusters", "must be >= 1"),
    (ProbeConfig, "probe", {"max_new_tokens": 0}, "probe.max_new_tokens", "must be >= 1"),
    (ProbeConfig, "probe", {"k": [1, 1]}, "probe.k", "names 1 twice"),
    (EvalConfig, "evaluate", {"bootstrap": 0}, "evaluate.bootstrap", "must be >= 1"),
    (EvalConfig, "evaluate", {"max_new_tokens": -5}, "evaluate.max_new_tokens", "must be >= 1"),
    (EvalConfig, "evaluate", ["n", 4], "evaluate", "must be a mapping, got list"),
]


@pytest.mark.parametrize("cls,section,value,field,reason", CASES, ids=[c[3] + ":" + c[4] for c in CASES])
def test_bad_param_is_one_line_naming_the_key(cls, section, value, field, reason):
    with pytest.raises(ParamsError) as e:
        from_section(cls, {section: value}, section)
    message = str(e.value)
    assert message.startswith(f"params.yaml: field {field}: ") and reason in message and "\n" not in message


@pytest.mark.parametrize("entries,field,reason", [
    ({"sources": ["syllogism"]}, "ingest.sources[0]", "an entry must be a mapping"),
    ({"sources": [{"kind": "reasoning_gym", "name": "x"}, {"name": "x", "kind": "reasoning_gym"}]},
     "ingest.sources[1]", "the same entry as ingest.sources[0]"),
    ({"sources": [{"kind": "reasoning_gym", "name": "x"}], "targets": [{"kind": "reasoning_gym", "name": "x"}]},
     "ingest.targets[0]", "the same entry as ingest.sources[0]"),
])
def test_bad_entries_are_refused(entries, field, reason):
    with pytest.raises(ParamsError) as e:
        check_entries(entries)
    assert str(e.value).startswith(f"params.yaml: field {field}: {reason}")


@pytest.mark.parametrize("make_root", [lambda d: d / "params.yaml", lambda d: d / "no_such_folder", lambda d: None],
                         ids=["a file", "missing", "null"])
def test_data_root_must_be_a_folder(make_root, tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    root = make_root(tmp_path)
    with pytest.raises(ParamsError) as e:
        check_data_root(None if root is None else str(root), {"sources": []})
    assert str(e.value).startswith("params.yaml: field data_root: must be a folder") and "\n" not in str(e.value)
