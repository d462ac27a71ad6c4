"""bench/gpu_check.py: one line and nothing written without a GPU; the section machinery (own
process and budget per section, results written as they come, skips) with fake sections; the
random timing model has SmolLM2-135M's shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
from gpu_check import Section, Skipped, run_sections, with_needs  # noqa: E402


def test_without_a_gpu_it_says_so_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "gc"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0, res.stderr
    [line] = res.stdout.splitlines()
    assert line.startswith("gpu-check: no CUDA GPU on this machine") and "nothing written" in line
    assert not out.exists()


# fake sections: module-level, so a spawned section process can import them
def quick(ctx):
    ctx.put("first", 1)
    return {"done": True}


def reads_the_results_so_far(ctx):
    """What result.json holds while this section runs."""
    return {"seen": json.loads((ctx.out / "result.json").read_text())["sections"]}


def slow(ctx):
    ctx.put("partial", "measured before the budget ran out")
    time.sleep(60)
    return {"never": True}


def fails(ctx):
    raise RuntimeError("no device\nsecond line")


def without_vllm(ctx):
    raise Skipped("vLLM not installed")


def starts_a_child_and_sleeps(ctx):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (ctx.work / "child.pid").write_text(str(child.pid))
    time.sleep(60)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sections_run_in_order_within_their_budgets_and_results_are_written_as_they_come(tmp_path):
    sections = [Section("quick", 30, quick), Section("reads", 30, reads_the_results_so_far),
                Section("slow", 10, slow), Section("after-slow", 30, quick, needs=("slow",)),
                Section("fails", 30, fails), Section("vllm", 30, without_vllm),
                Section("needs-quick", 30, quick, needs=("quick",))]
    lines = []
    t = time.monotonic()
    result = run_sections(sections, tmp_path / "out", work=tmp_path / "work", header={"gpu": "fake"},
                          echo=lines.append)
    assert time.monotonic() - t < 50                                   # slow was killed at its budget
    on_disk = json.loads((tmp_path / "out" / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(result)) and on_disk["gpu"] == "fake"
    s = on_disk["sections"]
    assert list(s) == [x.name for x in sections]
    assert s["quick"]["status"] == "ok" and s["quick"]["result"] == {"first": 1, "done": True}
    # the earlier section was in result.json before the next one started
    assert s["reads"]["result"]["seen"]["quick"]["status"] == "ok"
    assert s["slow"]["status"] == "timeout" and s["slow"]["budget_s"] == 10
    assert s["slow"]["result"] == {"partial": "measured before the budget ran out"}
    assert s["after-slow"] == {"status": "skipped", "reason": "needs slow, which did not finish"}
    assert s["fails"]["status"] == "failed" and s["fails"]["error"] == "RuntimeError: no device"
    assert s["vllm"]["status"] == "skipped" and s["vllm"]["reason"] == "vLLM not installed"
    assert s["needs-quick"]["status"] == "ok"
    assert lines[5].startswith("gpu-check vllm: skipped") and lines[5].endswith(": vLLM not installed")
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "RuntimeError: no device" in log and "--- section fails ---" in log


def test_a_section_over_its_budget_is_killed_with_the_processes_it_started(tmp_path):
    result = run_sections([Section("sleeper", 10, starts_a_child_and_sleeps)], tmp_path / "out", work=tmp_path)
    assert result["sections"]["sleeper"]["status"] == "timeout"
    pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def test_the_checks_budget_caps_the_sections_and_skips_what_no_longer_fits(tmp_path):
    sections = [Section("slow", 30, slow), Section("quick", 30, quick)]
    result = run_sections(sections, tmp_path / "out", budget=10, work=tmp_path)
    s = result["sections"]
    assert s["slow"]["status"] == "timeout" and s["slow"]["budget_s"] <= 10
    assert s["quick"] == {"status": "skipped", "reason": "the check's budget is spent"}


def test_vllm_sections_skip_where_vllm_is_missing(monkeypatch):
    import supernova.hardware

    monkeypatch.setattr(supernova.hardware, "vllm_installed", lambda: False)
    with pytest.raises(Skipped, match="^vLLM not installed$"):
        gpu_check.require_vllm()


def test_chosen_sections_bring_what_they_need_in_the_checks_order():
    assert [s.name for s in with_needs(["environment"])] == ["environment"]
    assert [s.name for s in with_needs(["dag"])] == ["models", "dag"]
    assert [s.name for s in with_needs(["sft", "generation"])] == ["models", "generation", "sft"]
    with pytest.raises(KeyError):
        with_needs(["nonsense"])


def test_the_timing_model_has_smollm2_135ms_shape(smol_model):
    from transformers import AutoConfig, AutoTokenizer

    from supernova.model import SMOLLM2_135M_SHAPE, random_llama

    real = AutoConfig.from_pretrained(smol_model)
    model = random_llama(AutoTokenizer.from_pretrained(smol_model), SMOLLM2_135M_SHAPE)
    fields = [f for f in SMOLLM2_135M_SHAPE if f not in ("rope_theta", "rms_norm_eps")]
    fields += ["vocab_size", "tie_word_embeddings", "hidden_act", "rope_parameters"]
    assert {f: getattr(model.config, f) for f in fields} == {f: getattr(real, f) for f in fields}
    assert model.config.rms_norm_eps == pytest.approx(real.rms_norm_eps)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
