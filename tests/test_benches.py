"""The benchmarks follow the hardware: bf16 variants only where bf16 is native and fast."""

import sys
from pathlib import Path

import pytest

from supernova.hardware import Hardware

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import generation as generation_bench  # noqa: E402  (bench/generation.py)


@pytest.mark.parametrize("hw, dtypes", [
    (Hardware(cpu_capability="AVX2"), "float32"),
    (Hardware(cpu_capability="AVX512", cpu_flags=("avx512_bf16",)), "float32"),
    (Hardware(cpu_capability="AVX512", cpu_flags=("avx512_bf16", "amx_bf16", "amx_tile")), "float32,bfloat16"),
    (Hardware(device="cuda", cuda_bf16=True, gpu="NVIDIA H100"), "float32,bfloat16"),
    (Hardware(device="cuda", cuda_bf16=False, gpu="Tesla T4"), "float32"),
])
def test_the_generation_bench_compares_bf16_only_where_it_is_native(hw, dtypes):
    assert generation_bench.default_dtypes(hw) == dtypes
