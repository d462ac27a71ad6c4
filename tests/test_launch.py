"""Training under several processes: the global batch split among them, the same data and steps
as one process, one saved model."""

from pathlib import Path

import pytest

from supernova.config import from_dict
from supernova.errors import ParamsError
from supernova.hardware import ComputeConfig, Hardware
from supernova.io import read_yaml
from supernova.prompts import PromptConfig
from supernova.schema import items_frame
from supernova.sources import load_entry
from supernova.training.grpo import run_grpo
from supernova.training import launch
from supernova.training.launch import launcher_command, micro_batches, per_device_batch, shards_weights
from supernova.training.settings import GRPOSettings, SFTSettings
from supernova.training.sft import run_sft

ROOT = Path(__file__).resolve().parents[1]
TINY = read_yaml(ROOT / "params" / "tiny.yaml")


def tiny_items():
    """The tiny profile's first source task."""
    [t] = load_entry(TINY["ingest"]["sources"][0], "params/tiny.yaml", 0)
    return items_frame(t.items)


def test_each_process_takes_an_equal_share_of_the_global_batch():
    assert per_device_batch(8, 1, "batch_size") == 8
    assert per_device_batch(8, 4, "batch_size") == 2


@pytest.mark.parametrize("per_device, micro, passes", [
    (8, None, (8, 1)), (8, 2, (2, 4)), (8, 3, (2, 4)), (8, 16, (8, 1)), (6, 4, (3, 2)), (5, 2, (1, 5)), (1, 2, (1, 1)),
])
def test_a_process_batch_is_taken_in_equal_passes_of_at_most_the_micro_batch(per_device, micro, passes):
    assert micro_batches(per_device, micro) == passes


def test_a_global_batch_that_does_not_divide_among_the_processes_is_a_one_line_error():
    with pytest.raises(ParamsError) as e:
        per_device_batch(6, 4, "prompts_per_step x num_generations")
    assert str(e.value) == ("params.yaml: field compute.processes: prompts_per_step x num_generations = 6 does not "
                            "divide among 4 training processes")


def test_runs_refuse_a_batch_that_does_not_divide_before_any_process_starts(tmp_path):
    grpo = GRPOSettings(prompts_per_step=1, num_generations=3)
    with pytest.raises(ParamsError, match="= 3 does not divide among 2"):
        run_grpo(tmp_path / "no-model", tiny_items(), grpo, PromptConfig(), tmp_path / "out",
                 scratch_dir=tmp_path / "s", compute=ComputeConfig(processes=2))
    with pytest.raises(ParamsError, match="batch_size = 3 does not divide among 2"):
        run_sft(tmp_path / "no-model", tiny_items(), SFTSettings(batch_size=3), PromptConfig(), tmp_path / "out",
                scratch_dir=tmp_path / "s", compute=ComputeConfig(processes=2))
    assert not (tmp_path / "s").exists()


def test_vllm_rollouts_under_several_processes_on_a_cpu_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ParamsError, match="field compute.processes: vLLM rollouts .* one vLLM engine per process"):
        run_grpo(tmp_path / "no-model", tiny_items(), GRPOSettings(use_vllm=True), PromptConfig(), tmp_path / "out",
                 scratch_dir=tmp_path / "s", compute=ComputeConfig(processes=2))


def test_the_launcher_starts_the_configured_number_of_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "installed", lambda dist: True)     # DeepSpeed, for zero3.yaml
    job = tmp_path / "job.json"
    cpu, gpu = Hardware(device="cpu"), Hardware(device="cuda", gpu="H100")
    torchrun = launcher_command(ComputeConfig(processes=2), job, cpu)          # auto on a CPU: torchrun
    assert torchrun[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    assert torchrun[-2:] == ["supernova.training.launch", str(job)]
    config = str(ROOT / "cluster" / "accelerate" / "zero3.yaml")
    acc = launcher_command(ComputeConfig(processes=4, accelerate_config=config), job, gpu)   # auto on a GPU
    assert acc[1:8] == ["-m", "accelerate.commands.launch", "--config_file", config, "--num_processes", "4", "-m"]
    with pytest.raises(ParamsError, match="field compute.accelerate_config"):
        launcher_command(ComputeConfig(processes=2, accelerate_config="nowhere.yaml"), job, gpu)
    with pytest.raises(ParamsError, match="field compute.launcher: accelerate launch starts one process on a CPU"):
        launcher_command(ComputeConfig(processes=2, launcher="accelerate", accelerate_config=config), job, cpu)


def test_a_config_whose_library_is_missing_is_refused_in_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "installed", lambda dist: dist != "deepspeed")
    gpu = Hardware(device="cuda", gpu="H100")
    config = str(ROOT / "cluster" / "accelerate" / "zero3.yaml")
    with pytest.raises(ParamsError) as e:
        launcher_command(ComputeConfig(processes=2, accelerate_config=config), tmp_path / "job.json", gpu)
    assert str(e.value) == (f"params.yaml: field compute.accelerate_config: {config} needs deepspeed, which is not "
                            "installed (pip install -e '.[deepspeed]')")
    ddp = str(ROOT / "cluster" / "accelerate" / "ddp.yaml")
    assert launcher_command(ComputeConfig(processes=2, accelerate_config=ddp), tmp_path / "job.json", gpu)
    unknown = tmp_path / "tpu.yaml"
    unknown.write_text("distributed_type: XLA\n")
    with pytest.raises(ParamsError, match="field compute.accelerate_config: .*distributed_type 'XLA'"):
        launcher_command(ComputeConfig(processes=2, accelerate_config=str(unknown)), tmp_path / "job.json", gpu)


def test_only_a_zero3_config_shards_the_weights():
    gpu = Hardware(device="cuda", gpu="H100")
    configs = {name: str(ROOT / "cluster" / "accelerate" / f"{name}.yaml") for name in ("ddp", "zero3")}
    assert shards_weights(ComputeConfig(processes=2, accelerate_config=configs["zero3"]), gpu)
    assert not shards_weights(ComputeConfig(processes=2, accelerate_config=configs["ddp"]), gpu)
    assert not shards_weights(ComputeConfig(processes=1, accelerate_config=configs["zero3"]), gpu)
    assert not shards_weights(ComputeConfig(processes=2, launcher="torchrun", accelerate_config=configs["zero3"]), gpu)


@pytest.mark.parametrize("name, kind", [("ddp.yaml", "MULTI_GPU"), ("zero3.yaml", "DEEPSPEED")])
def test_the_accelerate_configs_load_and_leave_the_precision_to_the_run(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "cluster" / "accelerate" / name))
    assert cfg.distributed_type == kind and cfg.mixed_precision == "no"   # the run's mixed_precision param decides
    if kind == "DEEPSPEED":
        assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.deepspeed_config["zero3_save_16bit_model"]


def test_compute_processes_and_launcher_are_checked():
    with pytest.raises(ParamsError, match="field compute.processes"):
        ComputeConfig(processes=0)
    with pytest.raises(ParamsError, match="field compute.launcher"):
        ComputeConfig(launcher="mpirun")


@pytest.mark.slow
def test_two_gloo_processes_train_on_the_global_batch_and_steps_of_one_and_save_one_model(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = from_dict(GRPOSettings, TINY["rl_train"]["grpo"], "rl_train.grpo")
    items = tiny_items()
    one = run_grpo(tiny_model, items, cfg, PromptConfig(), tmp_path / "one", scratch_dir=tmp_path / "s1")
    two = run_grpo(tiny_model, items, cfg, PromptConfig(), tmp_path / "two", scratch_dir=tmp_path / "s2",
                   live_dir=str(tmp_path / "live"), compute=ComputeConfig(processes=2))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert (two["per_device_batch"], two["gradient_accumulation_steps"]) == (1, 1)
    assert two["global_batch"] == one["global_batch"] == cfg.prompts_per_step * cfg.num_generations
    assert two["steps"] == one["steps"] == cfg.max_steps
    # the trainers' own logs: the same prompt and completion tokens over the run, the same epoch
    assert (two["num_tokens"], two["epoch"]) == (one["num_tokens"], one["epoch"])
    assert two["compute"]["processes"] == 2 and two["compute"]["launcher"] == "torchrun"
    AutoModelForCausalLM.from_pretrained(tmp_path / "two")
    assert not (tmp_path / "two" / "training_args.bin").exists()
    assert (tmp_path / "live" / "plots" / "metrics" / "reward.tsv").read_text().count("\n") == cfg.max_steps + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live", "one", "two"]   # no scratch, no job left
