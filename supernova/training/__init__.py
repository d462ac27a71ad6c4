"""SFT and GRPO with TRL, split by job:

- :mod:`.settings` — ``GRPOSettings`` and ``SFTSettings``, the only training knobs;
- :mod:`.sft` — ``run_sft`` and the gold-answer batches (sft-select and the gradient proxy);
- :mod:`.grpo` — ``run_grpo`` (score@* and rl-train);
- :mod:`.resume` — checkpoints, resume, saving the final model and its curves.
- :mod:`.launch` — one run split over ``compute.processes`` training processes (torchrun or
  accelerate launch).

The patches of TRL, vLLM, transformers and DVCLive internals they rely on live in
:mod:`supernova.patches`. The names below are also reachable from this package; they are loaded
on first use, so importing one submodule does not import the others.
"""

import importlib

_EXPORTS = {
    "GRPOSettings": "settings", "SFTSettings": "settings",
    "run_sft": "sft", "gold_answer_batch": "sft", "sft_dataset": "sft",
    "run_grpo": "grpo", "grpo_dataset": "grpo",
    "fingerprint": "resume", "model_digest": "resume",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
