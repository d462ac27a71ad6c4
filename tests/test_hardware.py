"""Settings resolved from the hardware: precision and backend from the machine's capabilities
(injected here), execution settings, and explicit values winning over ``auto``."""

import pytest

from supernova.errors import ParamsError
from supernova.hardware import (ComputeConfig, Hardware, apply_fp32_matmul, detect, fp32_matmul, log_resolved, record,
                                resolve_backend, resolve_dtype, resolve_precision, torch_device)

AVX2 = Hardware(cpu_capability="AVX2", cpu_flags=())
AVX512 = Hardware(cpu_capability="AVX512", cpu_flags=())
AVX512_BF16 = Hardware(cpu_capability="AVX512", cpu_flags=("avx512_bf16",))
AMX = Hardware(cpu_capability="AVX512", cpu_flags=("avx512_bf16", "amx_bf16", "amx_tile"))
# the flags are there, but torch runs its AVX2 kernels (ATEN_CPU_CAPABILITY=avx2): no native bf16
AMX_AT_AVX2 = Hardware(cpu_capability="AVX2", cpu_flags=("avx512_bf16", "amx_bf16", "amx_tile"))
ARM = Hardware(cpu_capability="DEFAULT", cpu_flags=())
H100 = Hardware(device="cuda", cpu_capability="AVX512", cuda_bf16=True, gpu="NVIDIA H100")
T4 = Hardware(device="cuda", cpu_capability="AVX2", cuda_bf16=False, gpu="Tesla T4")


@pytest.mark.parametrize("hw, dtype, precision", [
    (AVX2, "float32", "no"),
    (AVX512, "float32", "no"),
    (AVX512_BF16, "float32", "no"),
    (AMX, "bfloat16", "bf16"),
    (AMX_AT_AVX2, "float32", "no"),
    (ARM, "float32", "no"),
    (H100, "bfloat16", "bf16"),
    (T4, "float32", "no"),
])
def test_auto_resolves_from_the_hardware(hw, dtype, precision):
    assert resolve_dtype("auto", hw) == dtype
    assert resolve_precision("auto", hw) == precision


@pytest.mark.parametrize("hw", [AVX2, AMX, H100])
def test_an_explicit_value_wins(hw):
    assert resolve_dtype("bfloat16", hw) == "bfloat16" and resolve_dtype("float32", hw) == "float32"
    assert resolve_precision("bf16", hw) == "bf16" and resolve_precision("no", hw) == "no"


def test_unknown_values_name_their_field():
    with pytest.raises(ParamsError, match="generation.dtype"):
        resolve_dtype("float16", AVX2)
    with pytest.raises(ParamsError, match="rl_train.grpo.mixed_precision"):
        resolve_precision("fp16", AVX2, field="rl_train.grpo.mixed_precision")


@pytest.mark.parametrize("value, installed, backend, why", [
    ("auto", True, "vllm", "auto: vLLM is installed"),
    ("auto", False, "transformers", "auto: vLLM is not installed"),
    ("transformers", True, "transformers", "set in params"),
    ("vllm", True, "vllm", "set in params"),
])
def test_backend_choice_says_why(value, installed, backend, why):
    assert resolve_backend(value, vllm=installed) == (backend, why)


def test_a_requested_backend_that_is_missing_is_an_error():
    with pytest.raises(ParamsError, match="not installed"):
        resolve_backend("vllm", vllm=False)


@pytest.mark.parametrize("hw, device, matmul", [
    (AVX2, "cpu", "ieee"),
    (AMX, "cpu", "ieee"),
    (ARM, "cpu", "ieee"),
    (H100, "cuda", "tf32"),
    (T4, "cuda", "tf32"),          # TF32 allowed; a GPU before Ampere computes fp32 as before
])
def test_the_device_and_fp32_matmuls_follow_the_hardware(hw, device, matmul):
    assert torch_device(hw) == device
    assert fp32_matmul(hw) == matmul


@pytest.fixture
def matmul_precision():
    import torch

    before = torch.get_float32_matmul_precision()
    yield torch
    torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("hw, after", [(AVX2, "highest"), (AMX, "highest"), (H100, "high")])
def test_tf32_is_allowed_on_a_cuda_device_only(hw, after, matmul_precision):
    torch = matmul_precision
    torch.set_float32_matmul_precision("highest")
    assert apply_fp32_matmul(hw) == fp32_matmul(hw)
    assert torch.get_float32_matmul_precision() == after
    # the legacy flag agrees (libraries that read it do not fail on a mix of the two APIs)
    assert torch.backends.cuda.matmul.allow_tf32 is (after == "high")


def test_what_a_stage_logs_and_records_says_how_fp32_matmuls_ran_on_a_gpu(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="supernova.hardware"):
        log_resolved("generation (m)", H100, dtype="bfloat16")
        log_resolved("generation (m)", AVX2, dtype="float32")
    gpu_line, cpu_line = [r.getMessage() for r in caplog.records]
    assert gpu_line == "generation (m) on NVIDIA H100: dtype=bfloat16, fp32_matmul=tf32"
    assert cpu_line == "generation (m) on CPU AVX2, 1 cores: dtype=float32"
    assert record(H100, generation={})["fp32_matmul"] == "tf32"
    # on a CPU the record keeps its keys: the default run's outputs do not change
    assert "fp32_matmul" not in record(AVX2, generation={})


@pytest.mark.parametrize("value, alone, colocated", [("auto", 0.85, 0.3), (0.5, 0.5, 0.5), (1, 1.0, 1.0)])
def test_the_gpu_memory_share_of_vllm_engines(value, alone, colocated):
    c = ComputeConfig(gpu_memory_utilization=value).resolved(H100)
    assert c["gpu_memory_utilization"] == alone and c["colocated_gpu_memory_utilization"] == colocated


@pytest.mark.parametrize("hw, kv, graphs, block", [
    (Hardware(cores=2, memory_gib=20.0), 1.6, False, 32),
    (Hardware(cores=2, memory_gib=2.0), 0.5, False, 32),
    (Hardware(cores=64, memory_gib=500.0), 4.0, False, 32),
    (Hardware(device="cuda", cuda_bf16=True, cores=16, memory_gib=100.0), 4.0, True, None),
])
def test_execution_settings_are_sized_from_the_machine(hw, kv, graphs, block):
    c = ComputeConfig().resolved(hw)
    assert c["threads"] == hw.cores and c["kv_cache_gib"] == kv
    assert c["cuda_graphs"] is graphs and c["block_size"] == block
    assert c["train_micro_batch"] == (None if hw.device == "cuda" else 2)
    assert ComputeConfig(train_micro_batch=8).resolved(hw)["train_micro_batch"] == 8
    assert ComputeConfig(threads=1, kv_cache_gib=0.25, block_size=64).resolved(hw)["kv_cache_gib"] == 0.25
    assert ComputeConfig(cuda_graphs=True).resolved(Hardware())["cuda_graphs"] is False  # never on a CPU


def test_bad_execution_settings_name_their_field():
    with pytest.raises(ParamsError, match="compute.threads"):
        ComputeConfig(threads="all")
    with pytest.raises(ParamsError, match="compute.train_micro_batch"):
        ComputeConfig(train_micro_batch="all")
    with pytest.raises(ParamsError, match="compute.gpu_memory_utilization"):
        ComputeConfig(gpu_memory_utilization=1.5)
    with pytest.raises(ParamsError, match="compute.gpu_memory_utilization"):
        ComputeConfig(gpu_memory_utilization="most")


def test_the_record_names_the_machine_and_what_was_resolved():
    hw = detect()
    r = record(generation={"backend": "transformers", "dtype": resolve_dtype("auto")})
    assert r["generation"]["dtype"] in ("float32", "bfloat16")
    assert r["device"] == hw.device and r["cpu_capability"] == hw.cpu_capability and r["cores"] >= 1
