"""Checkpoints, resume and the end of a run.

A GRPO run keeps its trainer output in a scratch folder, tagged with a fingerprint of everything
that determines the run (settings, prompt, items, the start model's bytes); a rerun with the same
fingerprint resumes from the last complete checkpoint, a rerun with a different one discards the
old checkpoints (and says so) and starts over. SFT runs are a few steps long and keep no
checkpoints: an interrupted SFT run starts over. A finished run saves its model atomically,
publishes its DVCLive curves and removes the scratch folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_path, file_sha256, write_json
from ..prompts import PromptConfig

log = logging.getLogger(__name__)
#: the file ``Trainer.save_model`` pickles its TrainingArguments into; not part of a saved model
TRAINING_ARGS = "training_args.bin"


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_digest(path: str | os.PathLike) -> str:
    """Content hash of a model folder's weights and config: a run resumes only from checkpoints
    of the same start model, whatever folder it sits in."""
    files = sorted(Path(path).glob("*.safetensors")) + [Path(path) / "config.json"]
    return fingerprint([file_sha256(f) for f in files if f.exists()])


def run_fingerprint(cfg: Any, prompt: PromptConfig, items: pd.DataFrame, model_path: str | os.PathLike) -> str:
    """What determines a training run: its settings, the prompt, the items and the start model's bytes."""
    return fingerprint(asdict(cfg), asdict(prompt), sorted(items["uid"]), model_digest(model_path))


def fresh_scratch(scratch: Path, fp: str = "") -> None:
    """An empty ``scratch`` tagged with ``fp``; checkpoints found there are discarded with a log line."""
    if scratch.exists():
        old = sorted(p.name for p in scratch.glob("checkpoint-*"))
        if old:
            log.info("discarding checkpoints %s in %s: they belong to a run with other settings, items or "
                     "start model", ", ".join(old), scratch)
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    (scratch / "fingerprint").write_text(fp)


def resume_checkpoint(scratch: Path, what: str, cfg: Any, prompt: PromptConfig, items: pd.DataFrame,
                      model_path: str | os.PathLike) -> str | None:
    """The checkpoint to resume ``what`` from: the last complete one in ``scratch`` if it was
    written by a run with the same settings, items and start model's bytes, else None."""
    fp = run_fingerprint(cfg, prompt, items, model_path)
    tag = scratch / "fingerprint"
    if tag.exists() and tag.read_text().strip() == fp:
        checkpoint = last_checkpoint(scratch)
    else:
        fresh_scratch(scratch, fp)
        checkpoint = None
    if checkpoint:
        log.info("resuming %s from %s", what, checkpoint)
    return checkpoint


def last_checkpoint(scratch: Path) -> str | None:
    """The newest complete checkpoint in ``scratch``. The trainer writes ``trainer_state.json``
    last, so a checkpoint without a readable one was cut off mid-save (a kill): it is removed."""
    found = sorted(scratch.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in found:
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            return str(ckpt)
        except (OSError, ValueError):
            log.info("discarding incomplete checkpoint %s", ckpt)
            shutil.rmtree(ckpt)
    return None


def live_callbacks(scratch: Path, live_dir: str | None, resume: bool) -> list:
    """DVCLive logging (TRL's DVCLive integration) into the run's scratch folder, so a resumed run
    finds its earlier curves there; none without a ``live_dir`` to publish them to."""
    if not live_dir:
        return []
    from ..patches import resumable_dvclive_callback

    return [resumable_dvclive_callback(scratch / "live", resume)]


#: The curves a run's ``metrics.json`` summarises: (curve, summary name).
SUMMARISED = (("reward", "reward"), ("frac_reward_zero_std", "zero_std_share"), ("loss", "loss"))


def curve_summary(plots: Path) -> dict[str, float | int]:
    """A run's few decision-relevant figures from its DVCLive curves: its steps, and for reward,
    the share of GRPO groups whose rewards were all equal, and loss (those it logged), the mean
    of the first and of the last quarter of the steps. Every other logged value stays a curve."""
    out: dict[str, float | int] = {}
    for curve, name in SUMMARISED:
        tsv = plots / "metrics" / f"{curve}.tsv"
        if not tsv.exists():
            continue
        values = [float(line.split("\t")[1]) for line in tsv.read_text().splitlines()[1:] if line.strip()]
        if not values:
            continue
        q = max(1, len(values) // 4)
        out["steps"] = len(values)
        out[f"{name}_first"] = round(sum(values[:q]) / q, 4)
        out[f"{name}_last"] = round(sum(values[-q:]) / q, 4)
    return out


def _publish_curves(live: Path, live_dir: str | None) -> None:
    """Copy the run's DVCLive curves from the scratch folder to ``live_dir`` and summarise them in
    its ``metrics.json`` (:func:`curve_summary`): the trainer's other last values (runtime, FLOPs,
    importance-sampling ratios, ...) stay curves, out of ``dvc metrics`` and ``dvc exp show``."""
    if not live_dir:
        return
    with atomic_path(Path(live_dir) / "plots", is_dir=True) as tmp:
        shutil.copytree(live / "plots", tmp, dirs_exist_ok=True)
    write_json(Path(live_dir) / "metrics.json", curve_summary(Path(live_dir) / "plots"))


def publish_skipped(live_dir: str) -> None:
    """What :func:`_publish_curves` publishes, for a phase that did not run: no curves (an earlier
    run's are replaced, not shown as this run's) and a ``metrics.json`` that says so."""
    with atomic_path(Path(live_dir) / "plots", is_dir=True):
        pass                                  # the empty folder takes the old one's place
    write_json(Path(live_dir) / "metrics.json", {"enabled": False})


def save_final(trainer, tok, out_dir: str | os.PathLike, merge_lora: bool, scratch: Path,
               live_dir: str | None) -> None:
    """Save the final model and publish the training curves atomically, then drop the run's
    checkpoints: they exist only to resume an interrupted run, and a finished run must not be
    "resumed" by a later one.

    Under several training processes every one of them calls ``trainer.save_model`` (under
    DeepSpeed ZeRO-3 it gathers the sharded weights from all of them); the main process alone
    writes the model, publishes the curves and removes the scratch folder. LoRA adapters are
    merged on the main process, which needs the whole model there (not ZeRO-3: see
    :func:`supernova.training.launch.shards_weights`)."""
    main = trainer.args.process_index == 0
    if main:
        with atomic_path(out_dir, is_dir=True) as tmp:
            if merge_lora:
                trainer.model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)
            else:
                trainer.save_model(str(tmp))
                (tmp / TRAINING_ARGS).unlink(missing_ok=True)   # the trainer's pickled arguments
            tok.save_pretrained(tmp)
        finish_run(scratch, live_dir)
    elif not merge_lora:
        trainer.save_model(str(scratch / f"rank{trainer.args.process_index}"))   # gathers; only the main one writes
    trainer.accelerator.wait_for_everyone()


def finish_run(scratch: Path, live_dir: str | None) -> None:
    """A finished run: publish its curves, drop its checkpoints (and the rest of its scratch)."""
    _publish_curves(scratch / "live", live_dir)
    shutil.rmtree(scratch, ignore_errors=True)
