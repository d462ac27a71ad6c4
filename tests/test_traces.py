"""SFT targets from each source (answer line, self, teacher, given): only completions the shared
checker accepts enter the SFT set, and sft_set.yaml shows an excerpt of each.

The tiny random model never writes an answer line, so the items here that it must solve are
built from its own samples: free-form items scored by BBEH's rules (a completion without a marker
is scored whole) whose gold answer is what one of its samples says. The item's uid is kept while
its answer is set, so the sampling seeds, and hence the samples, are the ones drawn before.
"""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from supernova.answer import bbeh_prediction, judge
from supernova.errors import InputError, ParamsError
from supernova.evaluation import sample_and_check
from supernova.generation import GenerationConfig, HFGenerator, load_generator
from supernova.model import generation_source
from supernova.probe import ProbeConfig, probe_items
from supernova.prompts import PromptConfig, gold_completion, messages
from supernova.schema import PROBE, SFT, Item, conform, items_frame, read_table, write_table
from supernova.sft_select import SFTSelectConfig, manifest, targeted
from supernova.sources import load_entry
from supernova.traces import (Found, TeacherConfig, accepted, excerpt, given_found, pick, self_found, teacher_found,
                              with_targets)

ROOT = Path(__file__).resolve().parents[1]
PROMPT = PromptConfig(style="cot", system="")


def free_form(n: int) -> pd.DataFrame:
    """``n`` free-form items scored by BBEH's rules, with placeholder answers."""
    return items_frame([Item("test", "echo", "echo", f"Say something about the number {i}.", f"placeholder {i}",
                             [], "exact", {"checker": "bbeh"}) for i in range(n)])


def solvable_by(samples: list[list[str]], items: pd.DataFrame) -> pd.DataFrame:
    """``items`` with item 0's gold answer set to what its first non-empty sample says (uids kept)."""
    first = next(t for t in samples[0] if bbeh_prediction(t).strip())
    out = items.copy()
    out.loc[0, "answer"] = bbeh_prediction(first).strip()
    row = out.iloc[0].to_dict()
    assert accepted(first, row)
    assert not all(accepted(t, row) for t in samples[0]), "every sample is accepted: nothing is rejected"
    return out


def verdicts(texts: list[str], item: dict) -> list[bool]:
    return [accepted(t, item) for t in texts]


def test_a_self_trace_is_a_probe_completion_the_checker_accepts(tiny_model):
    gen = HFGenerator(tiny_model, GenerationConfig(backend="transformers"))
    cfg = ProbeConfig(n=4, temperature=1.0, max_new_tokens=6, k=(1,))
    placeholders = free_form(3)
    rows = placeholders.to_dict("records")
    drawn = gen.generate([messages(r, PROMPT) for r in rows], cfg.sampling, keys=[r["uid"] for r in rows])
    items = solvable_by(drawn, placeholders)
    probed = probe_items(gen, items, PROMPT, cfg)
    conform(probed, PROBE)
    for r, texts in zip(probed.to_dict("records"), drawn):
        # the probe keeps exactly the samples the checker accepts, in sample order
        assert r["correct_samples"] == [t for t, ok in zip(texts, verdicts(texts, r)) if ok]
        assert len(r["correct_samples"]) == r["correct"]
    assert probed.loc[0, "correct"] >= 1 and (probed.loc[1:, "correct"] == 0).all()

    sft_set, counts = with_targets(probed, self_found(probed), "shortest", 0)
    assert sft_set["uid"].tolist() == [probed.loc[0, "uid"]]      # never-solved items have no self trace
    [r] = sft_set.to_dict("records")
    assert r["target"] in r["correct_samples"] and accepted(r["target"], r)
    assert r["target"] == min(r["correct_samples"], key=len)
    assert counts[r["uid"]] == {"sampled": 4, "candidates": r["correct"], "accepted": r["correct"],
                                "appended": False}


def test_a_teacher_run_with_the_tiny_model_writes_only_accepted_traces(tiny_model, tmp_path):
    """The sft-select stage as DVC runs it, with ``targets: teacher`` and the tiny model as the
    teacher: its accepted and rejected samples are counted against the checker's own verdicts."""
    teacher = TeacherConfig(model="embedded:tiny-random", n=4, temperature=1.0, max_new_tokens=6, seed=0)
    # one prompt per batch: each item's samples are seeded by its uid alone, whatever order the selection gives
    gen = load_generator(generation_source(teacher.model, tmp_path / "teacher"),
                         GenerationConfig(backend="transformers", batch_size=1))
    placeholders = free_form(3)
    rows = placeholders.to_dict("records")
    drawn = gen.generate([messages(r, PROMPT) for r in rows], teacher.sampling, keys=[r["uid"] for r in rows])
    items = solvable_by(drawn, placeholders)
    probed = items.assign(n=2, correct=0, pass_rate=0.0, kept=True, drop_reason="", correct_samples=[[]] * 3)

    project = tmp_path / "project"
    shutil.copytree(tiny_model, project / "data" / "models" / "base")
    write_table(project / "data" / "probe" / "echo.parquet", probed, PROBE)
    (project / "mixture.yaml").write_text(yaml.safe_dump({"tasks": [{"task": "echo"}]}))
    params = {"prompt": {"style": "cot", "system": ""}, "generation": {"backend": "transformers", "batch_size": 1},
              "score": {"tasks": ["echo"]},
              "sft_select": {"n_items": 3, "band": [0.0, 1.0], "targets": "teacher",
                             "teacher": {"model": teacher.model, "n": teacher.n, "temperature": teacher.temperature,
                                         "max_new_tokens": teacher.max_new_tokens, "seed": teacher.seed}}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for script in ("sft_loss.py", "sft_select.py"):
        res = subprocess.run([sys.executable, str(ROOT / "stages" / script)], cwd=project, capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr

    sft_set = read_table(project / "data" / "sft" / "sft.parquet", SFT)
    man = yaml.safe_load((project / "sft_set.yaml").read_text())
    ok = {r["uid"]: verdicts(texts, r) for r, texts in zip(items.to_dict("records"), drawn)}
    assert man["targets"] == "teacher" and man["teacher"]["model"] == "embedded:tiny-random"
    assert {k: man["teacher"][k] for k in ("n", "temperature", "max_new_tokens", "seed")} == \
        {"n": 4, "temperature": 1.0, "max_new_tokens": 6, "seed": 0}
    assert man["traces"]["sampled"] == 12
    assert man["traces"]["accepted"] == sum(map(sum, ok.values())) >= 1
    assert man["traces"]["rejected"] == 12 - man["traces"]["accepted"] >= 1
    assert man["traces"]["without_trace"] == sum(not any(v) for v in ok.values()) == 2
    assert sft_set["uid"].tolist() == [u for u, v in ok.items() if any(v)]
    for r in sft_set.to_dict("records"):
        texts = drawn[rows.index(next(x for x in rows if x["uid"] == r["uid"]))]
        assert r["target"] in [t for t, good in zip(texts, ok[r["uid"]]) if good]
        assert judge(r["target"], answer=r["answer"], answer_type=r["answer_type"], choices=r["choices"],
                     meta=r["meta"]).correct
    [entry] = man["items"]
    assert entry["accepted"] == f"{sum(ok[entry['uid']])}/4" and entry["target"] == excerpt(sft_set.loc[0, "target"])
    assert not (project / "data" / "scratch" / "sft-teacher").exists()     # the converted teacher is removed


def test_teacher_samples_are_judged_by_the_shared_checker(tiny_model):
    """Against a plain evaluation of the same samples: accepted = the checker's correct count."""
    gen = HFGenerator(tiny_model, GenerationConfig(backend="transformers"))
    teacher = TeacherConfig(model="unused", n=3, temperature=1.0, max_new_tokens=5)
    items = free_form(2)
    found = teacher_found(gen, items, PROMPT, teacher)
    counts = sample_and_check(gen, items, PROMPT, teacher.sampling, model="x", desc="x")
    assert [found[u].sampled for u in items["uid"]] == [3, 3]
    assert [len(found[u].texts) for u in items["uid"]] == counts["correct"].tolist() == [0, 0]


def rationale_rows() -> list[dict]:
    return [
        {"question": "What is 7 * 8?", "options": ["54", "56", "58"], "answer_index": 1,
         "cot": "A: 7 * 8 = 56, the second option. The answer is (B)."},
        {"question": "What is 2 + 2?", "options": ["4", "5", "6"], "answer_index": 0,
         "cot": "A: 2 + 2 = 5. The answer is (B)."},                       # wrong: rejected
        {"question": "What is 3 + 3?", "options": ["5", "6", "7"], "answer_index": 1,
         "cot": "Three and three make six."},                              # no answer line: the gold one is appended
        {"question": "What is 9 - 1?", "options": ["8", "7", "6"], "answer_index": 0, "cot": ""},   # none
    ]


def test_given_maps_a_rationale_column_and_only_accepted_rationales_enter(tmp_path):
    data = tmp_path / "cot.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rationale_rows()))
    [t] = load_entry({"kind": "hf", "dataset": str(data), "task": "arith",
                      "columns": {"choices": "options", "answer_index": "answer_index", "rationale": "cot"}}, "x", 0)
    items = items_frame(t.items)
    metas = [json.loads(m) for m in items["meta"]]
    assert [m.get("rationale") for m in metas] == [r["cot"] or None for r in rationale_rows()]
    found = given_found(items)
    sft_set, counts = with_targets(items, found, "shortest", 0)
    uids = items["uid"].tolist()
    assert sft_set["uid"].tolist() == [uids[0], uids[2]]
    assert sft_set["target"].tolist() == ["A: 7 * 8 = 56, the second option. The answer is (B).",
                                          "Three and three make six.\nThe answer is: (B)"]
    assert [counts[u]["accepted"] for u in uids] == [1, 0, 1, 0]
    assert [counts[u]["appended"] for u in uids] == [False, False, True, False]
    assert counts[uids[3]]["sampled"] == 0
    with pytest.raises(ParamsError, match="columns.rational"):
        load_entry({"kind": "hf", "dataset": str(data), "columns": {"rational": "cot"}}, "x", 0)


def test_given_maps_a_bigbench_key(tmp_path):
    doc = {"examples": [{"input": "Is 3 odd?", "target": "yes", "cot": "3 = 2 + 1. The answer is yes."},
                        {"input": "Is 4 odd?", "target": "no"}]}
    (tmp_path / "parity.json").write_text(json.dumps(doc))
    [t] = load_entry({"kind": "bigbench", "path": str(tmp_path / "parity.json"), "format": "exact",
                      "columns": {"rationale": "cot"}}, "x", 0)
    assert [it.meta.get("rationale") for it in t.items] == ["3 = 2 + 1. The answer is yes.", None]
    [plain] = load_entry({"kind": "bigbench", "path": str(tmp_path / "parity.json"), "format": "exact"}, "x", 0)
    assert all("rationale" not in it.meta for it in plain.items)
    with pytest.raises(ParamsError, match="columns.solution"):
        load_entry({"kind": "bigbench", "path": str(tmp_path / "parity.json"), "columns": {"solution": "cot"}}, "x", 0)


def mcq_items(n: int = 3) -> pd.DataFrame:
    [t] = load_entry({"kind": "reasoning_gym", "name": "basic_arithmetic", "n_items": 8, "format": "mcq"}, "x", 0)
    return items_frame(t.items).head(n)


def wrong_letter(r: dict) -> str:
    return next(c for c in "ABCD"[:len(r["choices"])] if c != r["answer"])


def test_a_rejected_trace_never_enters_the_set_even_when_it_would_be_picked():
    items = mcq_items(3)
    rows = items.to_dict("records")
    right = [f"Step one, step two, step three.\nThe answer is: ({r['answer']})" for r in rows]
    wrong = [f"The answer is: ({wrong_letter(r)})" for r in rows]       # shorter: "shortest" would take it
    found = {rows[0]["uid"]: Found([wrong[0], right[0]], 16),
             rows[1]["uid"]: Found([wrong[1]], 16),                     # only a wrong one: no trace
             rows[2]["uid"]: Found([right[2], wrong[2], "no answer here"], 16)}
    for how in ("shortest", "random"):
        sft_set, counts = with_targets(items, found, how, seed=3)
        assert sft_set["uid"].tolist() == [rows[0]["uid"], rows[2]["uid"]]
        assert sft_set["target"].tolist() == [right[0], right[2]]
        assert [counts[r["uid"]]["accepted"] for r in rows] == [1, 0, 1]
    cfg = SFTSelectConfig(targets="self")
    with pytest.raises(InputError, match=r"field sft_select.targets: none of the 1 chosen items .*\(16 self "
                                         r"traces found or sampled, 0 accepted\)"):
        targeted(items.iloc[[1]], found, cfg)


def test_pick_is_the_shortest_or_a_seeded_random_one():
    texts = ["bbb", "a", "cc", "d"]
    assert pick(texts, "shortest", 0, "u") == "a"
    draws = {pick(texts, "random", s, "u") for s in range(20)}
    assert len(draws) > 1 and pick(texts, "random", 5, "u") == pick(texts, "random", 5, "u")


def scored(items: pd.DataFrame) -> pd.DataFrame:
    return items.assign(pass_rate=0.25, loss=1.5, ifd=0.9, sft_score=1.5, n=16, correct=4, kept=True,
                        drop_reason="", correct_samples=[[] for _ in range(len(items))])


def test_the_manifest_shows_an_excerpt_of_each_trace_and_the_counts():
    chosen = scored(mcq_items(3))
    rows = chosen.to_dict("records")
    long = "Let me think. " * 60 + f"So it follows.\nThe answer is: ({rows[0]['answer']})"
    found = {rows[0]["uid"]: Found([long, f"The answer is: ({wrong_letter(rows[0])})"], 16),
             rows[1]["uid"]: Found([], 16),
             rows[2]["uid"]: Found([f"Short.\nThe answer is: ({rows[2]['answer']})"], 16)}
    cfg = SFTSelectConfig(targets="self")
    sft_set, counts = targeted(chosen, found, cfg)
    conform(sft_set, SFT)
    man = manifest(cfg, chosen, sft_set, counts, 10, "f", "h", prompt_style="cot")
    assert man["size"] == 2 and man["targets"] == "self" and man["prompt_style"] == "cot"
    assert man["traces"] == {"pick": "shortest", "chosen": 3, "with_trace": 2, "without_trace": 1,
                             "without_trace_items": [rows[1]["uid"]], "sampled": 48, "accepted": 2, "rejected": 46}
    first, second = man["items"]
    assert first["target"].startswith("Let me think. Let me think.") and first["target"].endswith(
        f"So it follows.\nThe answer is: ({rows[0]['answer']})")
    assert "[... " in first["target"] and len(first["target"]) < 300 and first["target_chars"] == len(long)
    assert first["accepted"] == "1/16"
    assert second["target"] == f"Short.\nThe answer is: ({rows[2]['answer']})"
    yaml.safe_load(yaml.safe_dump(man))


def test_answer_targets_are_the_answer_lines_of_every_chosen_item():
    chosen = scored(mcq_items(3))
    cfg = SFTSelectConfig()
    found = {r["uid"]: Found([gold_completion(r)], 1) for r in chosen.to_dict("records")}
    sft_set, counts = targeted(chosen, found, cfg)
    assert sft_set["uid"].tolist() == chosen["uid"].tolist()
    assert sft_set["target"].tolist() == [gold_completion(r) for r in chosen.to_dict("records")]
    man = manifest(cfg, chosen, sft_set, counts, 3, "f", "h", prompt_style="direct")
    assert "traces" not in man and "teacher" not in man
    assert [i["target"] for i in man["items"]] == sft_set["target"].tolist()


def test_teach_answer_keeps_the_traced_items_and_teaches_their_answer_lines():
    chosen = scored(mcq_items(3))
    rows = chosen.to_dict("records")
    found = {rows[0]["uid"]: Found([f"Because.\nThe answer is: ({rows[0]['answer']})"], 8),
             rows[1]["uid"]: Found([f"The answer is: ({wrong_letter(rows[1])})"], 8),    # rejected: no trace
             rows[2]["uid"]: Found([f"So.\nThe answer is: ({rows[2]['answer']})"], 8)}
    traced, _ = targeted(chosen, found, SFTSelectConfig(targets="self"))
    cfg = SFTSelectConfig(targets="self", teach="answer")
    answered, counts = targeted(chosen, found, cfg)
    assert answered["uid"].tolist() == traced["uid"].tolist() == [rows[0]["uid"], rows[2]["uid"]]
    assert answered["target"].tolist() == [gold_completion(rows[0]), gold_completion(rows[2])]
    assert all(accepted(t, r) for t, r in zip(answered["target"], answered.to_dict("records")))
    man = manifest(cfg, chosen, answered, counts, 3, "f", "h", prompt_style="cot")
    assert man["teach"] == "answer" and man["traces"]["without_trace_items"] == [rows[1]["uid"]]
    assert [i["target"] for i in man["items"]] == answered["target"].tolist()
    with pytest.raises(ParamsError, match="field sft_select.teach"):
        SFTSelectConfig(teach="trace")


def test_targets_and_teacher_are_checked():
    with pytest.raises(ParamsError, match="field sft_select.targets"):
        SFTSelectConfig(targets="gold")
    with pytest.raises(ParamsError, match="field sft_select.trace_pick"):
        SFTSelectConfig(trace_pick="longest")
    with pytest.raises(ParamsError, match="field sft_select.teacher.model"):
        SFTSelectConfig(targets="teacher")
    with pytest.raises(ParamsError, match="field sft_select.teacher.model: no such model folder"):
        generation_source("./no/such/teacher", "unused", field="sft_select.teacher.model")
    with pytest.raises(ParamsError, match="field sft_select.teacher.model: unknown embedded model"):
        generation_source("embedded:nope", "unused", field="sft_select.teacher.model")
    assert generation_source("org/some-model", "unused") == "org/some-model"     # a hub id, loaded where it is


def test_a_new_teacher_reruns_sft_select_and_what_follows_only():
    """The teacher's name and sampling settings are ``sft_select`` params, which sft-select alone
    declares (sft-loss declares the batch size of its loss pass only): DVC reruns sft-select when
    they change, and the stages after it only if its outputs change."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declaring = {name: [p for p in st.get("do", st).get("params", []) if str(p).split(".")[0] == "sft_select"]
                 for name, st in stages.items()}
    assert {name: keys for name, keys in declaring.items() if keys} == {"sft-loss": ["sft_select.batch_size"],
                                                                       "sft-select": ["sft_select"]}
    assert {f.name for f in dataclasses.fields(SFTSelectConfig)} >= {"targets", "trace_pick", "teacher"}
    assert {f.name for f in dataclasses.fields(TeacherConfig)} == {"model", "n", "temperature", "max_new_tokens", "style",
                                                                  "seed"}
