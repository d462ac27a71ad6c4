"""The columns of every artifact, defined once.

Every task item, whatever its origin, has the same fields (:data:`ITEM`); the other artifacts
extend it or refer to it by ``uid``. Artifacts are Parquet files readable by pandas and by
``datasets.load_dataset("parquet", data_files=...)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import InputError
from .io import atomic_path

ANSWER_TYPES = ("mcq", "exact", "numeric")

#: One verifiable question. ``meta`` is a JSON object serialised as a string (its keys differ
#: between tasks); ``choices`` is empty unless ``answer_type == "mcq"``, in which case ``answer``
#: is the letter of the gold choice ("A", "B", ...).
ITEM = pa.schema([
    ("uid", pa.string()),          # stable content hash of task, question, choices and answer
    ("source", pa.string()),       # where it came from: "reasoning_gym:<name>", "superni:<path>", ...
    ("task", pa.string()),         # source task or target sub-task name
    ("skill", pa.string()),        # reasoning type / category used for diversity
    ("question", pa.string()),
    ("answer", pa.string()),
    ("choices", pa.list_(pa.string())),
    ("answer_type", pa.string()),
    ("meta", pa.string()),
])

#: Source items with the base model's probe results.
PROBE = pa.schema(list(ITEM) + [
    ("n", pa.int32()),             # samples drawn
    ("correct", pa.int32()),       # samples judged correct by the shared checker
    ("pass_rate", pa.float64()),   # correct / n
    ("kept", pa.bool_()),          # passes the difficulty filter
    ("drop_reason", pa.string()),  # "", "all_correct", "all_wrong", "below_band", "above_band"
    ("correct_samples", pa.list_(pa.string())),  # the samples the checker accepted, in sample order (self traces)
])

#: Per-item evaluation counts of one model on target items.
EVAL = pa.schema([
    ("model", pa.string()),        # "base", "trained", or "score:<source task>"
    ("task", pa.string()),         # target sub-task
    ("uid", pa.string()),
    ("n", pa.int32()),
    ("correct", pa.int32()),
    ("parsed", pa.int32()),        # completions with an answer the item's checker can read (parse rate)
    ("sample", pa.string()),       # first completion, kept for inspection
])

#: Per-item evaluation counts of one utility run (a source task's RL checkpoint, one seed) on the
#: target dev split: what the hierarchical bootstrap of the utility matrix resamples.
SCORE_EVAL = pa.schema(list(EVAL) + [
    ("source_task", pa.string()),  # the source task (or the format control) the checkpoint trained on
    ("seed", pa.int32()),
    ("round", pa.string()),        # scoring round ("r0", "r1", ...; see supernova.halving)
])

#: The teacher-forced metrics of an item, computed by :mod:`supernova.likelihood`: the gold answer's
#: log-probability per token and per byte, and for multiple choice the gold option's normalised
#: probability and margin in the letter form and in the cloze form.
METRICS = ("gold_logprob_token", "gold_logprob_byte", "letter_norm_prob", "letter_margin", "cloze_norm_prob",
           "cloze_margin")

#: Teacher-forced metrics of one model on items (:data:`METRICS`): NaN where a metric does not
#: apply (the option metrics of a free-form item).
LIKELIHOOD = pa.schema([
    ("model", pa.string()),        # "base", "trained", or "score:<source task>"
    ("task", pa.string()),
    ("uid", pa.string()),
] + [(m, pa.float64()) for m in METRICS])

#: Teacher-forced metrics of one utility run's checkpoints: on the target dev items (split ``dev``)
#: and on held-out items of the run's own source task (split ``heldout``), at each scored step.
SCORE_LIKELIHOOD = pa.schema(list(LIKELIHOOD) + [
    ("source_task", pa.string()),
    ("seed", pa.int32()),
    ("round", pa.string()),
    ("split", pa.string()),        # "dev" or "heldout"
    ("step", pa.int32()),          # the optimizer step the checkpoint was scored after
])

#: What one utility run learned, by its own record.
RUNS = pa.schema([
    ("source_task", pa.string()),
    ("seed", pa.int32()),
    ("round", pa.string()),
    ("steps", pa.int32()),
    ("seconds", pa.float64()),        # wall time: training, checkpoint scoring and sampling
    ("reward_first", pa.float64()),   # mean reward of the first quarter of the steps
    ("reward_last", pa.float64()),    # mean reward of the last quarter of the steps
    ("zero_std_share", pa.float64()),  # share of GRPO groups whose rewards were all equal (no gradient)
    ("logprob_drift", pa.float64()),  # mean |gold log-prob per token, last checkpoint - base| on the dev items
])

#: Utility of a source task for a target sub-task from one run (one seed) by one metric
#: (``pass@<k>`` sampled, or a teacher-forced one averaged over the run's last checkpoints): the
#: checkpoint minus the base model on the target's dev items, with a paired item-bootstrap CI.
UTILITY = pa.schema([
    ("source_task", pa.string()),
    ("target_task", pa.string()),
    ("seed", pa.int32()),
    ("round", pa.string()),        # scoring round the run belongs to
    ("metric", pa.string()),
    ("base", pa.float64()),
    ("trained", pa.float64()),
    ("utility", pa.float64()),
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("n_items", pa.int32()),
    ("method", pa.string()),       # "rl" or a proxy such as "gradient"
    ("seconds", pa.float64()),     # wall time of this task's run (training + evaluation, or the proxy)
    ("parse_rate", pa.float64()),  # share of the checkpoint's sampled completions with a readable answer
])

#: The utility matrix: one row per (source task, target sub-task), over every seed and round, with
#: 95% CIs from the hierarchical (seeds x items) bootstrap; ``net_*`` is net of the format control.
UTILITY_MATRIX = pa.schema([
    ("source_task", pa.string()),
    ("target_task", pa.string()),
    ("metric", pa.string()),
    ("utility", pa.float64()),     # mean over seeds of the metric's checkpoint - base
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("net_utility", pa.float64()),  # utility minus the format control's (NaN without a control)
    ("net_ci_low", pa.float64()),
    ("net_ci_high", pa.float64()),
    ("control_utility", pa.float64()),  # the format control's own utility on this sub-task
    ("seeds", pa.int32()),         # runs (seeds) the cell averages
    ("n_items", pa.int32()),
    ("parse_rate", pa.float64()),  # mean over the task's checkpoints' sampled completions
    ("snr", pa.float64()),         # the target sub-task's signal-to-noise ratio (supernova.utility.signal_noise)
    ("low_snr", pa.bool_()),       # below score.min_snr: micro mixing ranks by the mean over sub-tasks there
])

#: Mean utility of each source task over target sub-tasks (what macro ranks by), with CIs.
TASK_UTILITY = pa.schema([
    ("source_task", pa.string()),
    ("metric", pa.string()),
    ("mean_utility", pa.float64()),
    ("ci_low", pa.float64()),
    ("ci_high", pa.float64()),
    ("net_mean_utility", pa.float64()),
    ("net_ci_low", pa.float64()),
    ("net_ci_high", pa.float64()),
    ("seeds", pa.int32()),
])

#: Items selected for SFT, with why they were selected.
SFT = pa.schema(list(ITEM) + [
    ("pass_rate", pa.float64()),
    ("loss", pa.float64()),        # base model's mean token loss on the gold answer given the question
    ("ifd", pa.float64()),         # loss(answer | question) / loss(answer)
    ("sft_score", pa.float64()),   # the score the selection ranked by
    ("target", pa.string()),       # the completion SFT trains on: the answer line or an accepted trace
])


def item_uid(task: str, question: str, answer: str, choices: list[str] | tuple = (), occurrence: int = 0) -> str:
    """A stable 16-hex-digit content hash; the same item always gets the same uid. A benchmark
    that lists the same item twice keeps both: the repeat (``occurrence`` 1, 2, ...) hashes its
    occurrence number too."""
    parts = [task, question, list(choices), answer] + ([occurrence] if occurrence else [])
    payload = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass
class Item:
    """One verifiable question in the shared schema."""

    source: str
    task: str
    skill: str
    question: str
    answer: str
    choices: list[str] = field(default_factory=list)
    answer_type: str = "exact"
    meta: dict[str, Any] = field(default_factory=dict)
    uid: str = ""

    def __post_init__(self):
        if self.answer_type not in ANSWER_TYPES:
            raise InputError(f"answer_type must be one of {ANSWER_TYPES}, got {self.answer_type!r}",
                             task=self.task, field="answer_type")
        if not self.uid:
            self.uid = item_uid(self.task, self.question, self.answer, self.choices)

    def to_row(self) -> dict[str, Any]:
        return {"uid": self.uid, "source": self.source, "task": self.task, "skill": self.skill,
                "question": self.question, "answer": self.answer, "choices": list(self.choices),
                "answer_type": self.answer_type,
                "meta": json.dumps(self.meta, ensure_ascii=False, sort_keys=True, default=str)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Item":
        return cls(source=row["source"], task=row["task"], skill=row["skill"],
                   question=row["question"], answer=row["answer"],
                   choices=list(row["choices"] if row["choices"] is not None else []),
                   answer_type=row["answer_type"], meta=json.loads(row["meta"] or "{}"),
                   uid=row["uid"])


def items_frame(items: list[Item]) -> pd.DataFrame:
    return pd.DataFrame([it.to_row() for it in items], columns=ITEM.names)


def conform(df: pd.DataFrame, schema: pa.Schema, *, name: str = "artifact") -> pa.Table:
    """Check that ``df`` has the schema's columns and convert it to an Arrow table in that order."""
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise InputError(f"missing columns {missing}", file=name, field=missing[0])
    return pa.Table.from_pandas(df[schema.names].reset_index(drop=True), schema=schema,
                                preserve_index=False)


META_KEY = b"supernova"


def write_table(path: str | os.PathLike, df: pd.DataFrame, schema: pa.Schema, meta: dict | None = None) -> None:
    """Write ``df`` as Parquet with exactly ``schema``'s columns, atomically; ``meta`` (e.g. the
    settings a stage resolved on its machine) goes into the file's key-value metadata."""
    table = conform(df, schema, name=str(path))
    if meta is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               META_KEY: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` a Parquet artifact was written with ({} if none)."""
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


def read_table(path: str | os.PathLike, schema: pa.Schema) -> pd.DataFrame:
    """Read a Parquet artifact and check it has ``schema``'s columns."""
    if not os.path.exists(path):
        raise InputError("artifact not found (run the stage that produces it)", file=str(path))
    df = pq.read_table(path).to_pandas()
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise InputError(f"missing columns {missing}", file=str(path), field=missing[0])
    df = df[schema.names]
    for f in schema:                  # list cells as Python lists (Arrow gives arrays, or None)
        if pa.types.is_list(f.type):
            df[f.name] = df[f.name].map(lambda c: [] if c is None else list(c))
    return df
