"""The bad-input corpus (tests/fixtures/bad_inputs): every malformed input is one clear error line
naming the file, the task (where there is one) and the field, or a documented skip with a count,
and a failed ingest writes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets
import pytest
import yaml

from supernova.errors import InputError, ParamsError, PipelineError
from supernova.ingest import IngestConfig, ingest, write_ingest
from supernova.prompts import PromptConfig

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BAD = FIXTURES / "bad_inputs"
GOOD_SOURCE = {"kind": "superni", "path": str(FIXTURES / "superni")}
GOOD_TARGET = {"kind": "bigbench", "path": str(FIXTURES / "bbh"), "format": "exact"}
BBEH_TARGET = {"kind": "bigbench", "path": str(FIXTURES / "bbeh_official" / "bbeh" / "benchmark_tasks"),
               "format": "exact", "verbatim": True}
MAX_PROMPT_TOKENS = 256


@dataclass(frozen=True)
class Err:
    """An expected error: where (file relative to the corpus, task, field) and what."""

    file: str | None
    task: str | None
    field: str | None
    reason: str
    kind: type = InputError


@dataclass(frozen=True)
class Skip:
    """An expected skip: ingest succeeds and reports ``count`` items dropped for ``reason``."""

    task: str
    reason: str
    count: int


def superni(rel: str, **kw) -> dict:
    return {"kind": "superni", "path": str(BAD / rel), **kw}


def bigbench(rel: str, **kw) -> dict:
    return {"kind": "bigbench", "path": str(BAD / rel), "format": "exact", **kw}


def hf(rel: str, **kw) -> dict:
    return {"kind": "hf", "dataset": str(BAD / rel), **kw}


PARAMS = "params.yaml"

# (case, role of the bad entry, entry, expectation)
CASES = [
    ("superni invalid JSON", "sources", superni("superni_invalid_json"),
     Err("superni_invalid_json/task001_truncated.json", "task001_truncated", None,
         "invalid JSON: Unterminated string starting at (line 2, column 24)")),
    ("superni file is a JSON list", "sources", superni("superni_json_list"),
     Err("superni_json_list/task002_list.json", "task002_list", None,
         "expected a JSON object with 'Instances', got a list of objects")),
    ("superni missing Instances", "sources", superni("superni_missing_instances"),
     Err("superni_missing_instances/task003_no_instances.json", "task003_no_instances", "Instances", "missing")),
    ("superni empty task", "sources", superni("superni_empty_instances"),
     Err("superni_empty_instances/task004_no_instances.json", "task004_no_instances", "Instances",
         "task has no instances")),
    ("superni Instances is an object", "sources", superni("superni_instances_object"),
     Err("superni_instances_object/task005_instances_object.json", "task005_instances_object", "Instances",
         "must be a list, got an object")),
    ("superni instance without output", "sources", superni("superni_instance_without_output"),
     Err("superni_instance_without_output/task006_no_output.json", "task006_no_output", "Instances[1].output",
         "missing")),
    ("superni empty output list", "sources", superni("superni_empty_output_list"),
     Err("superni_empty_output_list/task007_empty_output.json", "task007_empty_output", "Instances[0].output",
         "empty output list")),
    ("superni output is a string", "sources", superni("superni_output_not_a_list"),
     Err("superni_output_not_a_list/task008_output_string.json", "task008_output_string", "Instances[0].output",
         "must be a list of strings, got a string")),
    ("superni instance without input", "sources", superni("superni_instance_without_input"),
     Err("superni_instance_without_input/task009_no_input.json", "task009_no_input", "Instances[2].input",
         "missing")),
    ("superni duplicate ids, same content: skipped", "sources", superni("superni_duplicate_ids"),
     Skip("task010_duplicate_ids", "duplicate_id", 1)),
    ("superni duplicate ids, different content", "sources", superni("superni_conflicting_ids"),
     Err("superni_conflicting_ids/task011_conflicting_ids.json", "task011_conflicting_ids", "Instances[3].id",
         "instance id 'x-2' appears twice with different content")),
    ("superni non-UTF-8 bytes", "sources", superni("superni_non_utf8"),
     Err("superni_non_utf8/task012_latin1.json", "task012_latin1", None, "not valid UTF-8: byte 0xe7")),
    ("superni Definition of wrong type", "sources", superni("superni_definition_wrong_type"),
     Err("superni_definition_wrong_type/task013_definition_object.json", "task013_definition_object", "Definition",
         "must be a list of strings, got an object")),
    ("superni Categories of wrong type", "sources", superni("superni_categories_wrong_type"),
     Err("superni_categories_wrong_type/task014_categories_string.json", "task014_categories_string", "Categories",
         "must be a list of strings, got a string")),
    ("superni file name not a task name", "sources", superni("superni_bad_task_name"),
     Err("superni_bad_task_name/task 015 spaces.json", "task 015 spaces", "task", "must match")),
    ("superni positive example without output", "sources",
     superni("superni_positive_example_without_output", few_shot=1),
     Err("superni_positive_example_without_output/task016_bad_positive.json", "task016_bad_positive",
         "Positive Examples[0]", "needs a string 'input' and a string 'output'")),
    ("superni blank output: skipped", "sources", superni("superni_blank_output"),
     Skip("task017_blank_output", "blank_output", 1)),
    ("superni only blank outputs", "sources", superni("superni_all_blank_output"),
     Err("superni_all_blank_output/task018_all_blank.json", "task018_all_blank", None,
         "no usable examples (skipped: {'blank_output': 1})")),
    ("prompt longer than the context: skipped", "sources", superni("superni_one_prompt_too_long"),
     Skip("task019_one_long", "too_long", 1)),
    ("every prompt longer than the context", "sources", superni("superni_all_prompts_too_long"),
     Err("superni_all_prompts_too_long/task020_all_long.json", "task020_all_long", None,
         "no items left after filtering (dropped: {'too_long': 2})")),
    ("superni folder without task files", "sources", superni("superni_no_task_files"),
     Err("superni_no_task_files", None, "path", "no SuperNI task files")),
    ("path does not exist", "sources", superni("no_such_folder"),
     Err("no_such_folder", None, "path", "no such file or folder")),
    ("superni unknown task id", "sources", {**GOOD_SOURCE, "tasks": ["task999"]},
     Err(PARAMS, None, "ingest.sources[0].tasks", "no task file for 'task999'", ParamsError)),
    ("unknown kind", "sources", {"kind": "supernatural", "path": str(BAD)},
     Err(PARAMS, None, "ingest.sources[0].kind", "unknown kind 'supernatural'", ParamsError)),
    ("unknown field", "sources", {**GOOD_SOURCE, "fewshot": 2},
     Err(PARAMS, None, "ingest.sources[0].fewshot", "unknown field for kind superni", ParamsError)),
    ("negative few_shot", "sources", {**GOOD_SOURCE, "few_shot": -1},
     Err(PARAMS, None, "ingest.sources[0].few_shot", "must be an integer >= 0", ParamsError)),
    ("bbh missing examples", "targets", bigbench("bbh_missing_examples"),
     Err("bbh_missing_examples/navigate.json", "navigate", "examples", "missing")),
    ("bbh examples is an object", "targets", bigbench("bbh_examples_not_a_list"),
     Err("bbh_examples_not_a_list/navigate.json", "navigate", "examples", "must be a list, got an object")),
    ("bbh empty sub-task", "targets", bigbench("bbh_no_examples"),
     Err("bbh_no_examples/navigate.json", "navigate", "examples", "sub-task has no examples")),
    ("bbh example without input", "targets", bigbench("bbh_example_without_input"),
     Err("bbh_example_without_input/navigate.json", "navigate", "examples[1].input", "missing")),
    ("bbh example without target", "targets", bigbench("bbh_example_without_target"),
     Err("bbh_example_without_target/navigate.json", "navigate", "examples[1]", "needs a 'target' or 'target_scores'")),
    ("bbh target is a number", "targets", bigbench("bbh_target_number"),
     Err("bbh_target_number/object_counting.json", "object_counting", "examples[0].target",
         "target must be a string or a list of strings, got a number")),
    ("bbh blank target", "targets", bigbench("bbh_target_empty"),
     Err("bbh_target_empty/word_sorting.json", "word_sorting", "examples[1].target", "empty target")),
    ("bbh letter targets outside the options", "targets", bigbench("bbh_letter_targets_not_options"),
     Err("bbh_letter_targets_not_options/date_understanding.json", "date_understanding", None,
         "no usable examples (skipped: {'target_not_an_option': 3})")),
    ("bbh file is a JSON list", "targets", bigbench("bbh_file_is_a_list"),
     Err("bbh_file_is_a_list/navigate.json", "navigate", None,
         "expected a JSON object with 'examples', got a list of objects")),
    ("bbh unknown sub-task", "targets", {**GOOD_TARGET, "tasks": ["navigat"]},
     Err(str(FIXTURES / "bbh"), None, "tasks", "no sub-task 'navigat'")),
    ("bbeh target not a string", "targets", bigbench("bbeh_target_not_a_string"),
     Err("bbeh_target_not_a_string/bbeh_multistep_arithmetic/task.json", "bbeh_multistep_arithmetic",
         "examples[1].target", "target must be a string or a list of strings, got a number")),
    ("bbeh folder without task.json", "targets", bigbench("bbeh_folder_without_task_json"),
     Err("bbeh_folder_without_task_json/bbeh_dyck_languages", None, "path", "folder has no task.json")),
    ("big-bench target_scores without a positive choice", "targets", bigbench("bigbench_no_positive_choice"),
     Err("bigbench_no_positive_choice/task.json", "bigbench_no_positive_choice", "examples[1].target_scores",
         "no positive choice")),
    ("big-bench scores that are not numbers", "targets", bigbench("bigbench_scores_not_numbers"),
     Err("bigbench_scores_not_numbers/task.json", "bigbench_scores_not_numbers", "examples[0].target_scores",
         "scores must be numbers")),
    ("big-bench target_scores on some examples only", "targets", bigbench("bigbench_mixed_targets"),
     Err("bigbench_mixed_targets/task.json", "bigbench_mixed_targets", "examples[1]", "target_scores missing")),
    ("bbh rationale is a number", "targets", bigbench("bbh_rationale_not_a_string", columns={"rationale": "cot"}),
     Err("bbh_rationale_not_a_string/object_counting.json", "object_counting", "examples[0].cot",
         "examples[0]: a rationale must be a string, got a number")),
    ("hf column missing", "sources", hf("hf_missing_column/data.jsonl"),
     Err("hf_missing_column/data.jsonl", "data", "columns.question", "no column 'question'")),
    ("hf null answer", "sources", hf("hf_null_answer/data.jsonl"),
     Err("hf_null_answer/data.jsonl", "data", "columns.answer", "row 1 (column 'answer'): no usable answer, got null")),
    ("hf rationale is a list", "sources", hf("hf_rationale_not_a_string/data.jsonl", columns={"rationale": "solution"}),
     Err("hf_rationale_not_a_string/data.jsonl", "data", "columns.rationale",
         "row 1 (column 'solution'): a rationale must be a string, got a list of strings")),
    ("hf malformed JSONL", "sources", hf("hf_malformed_jsonl/data.jsonl"),
     Err("hf_malformed_jsonl/data.jsonl", None, "dataset", "cannot load: ArrowInvalid: JSON parse error")),
    ("hf unsupported file type", "sources", hf("hf_unsupported_file/data.txt"),
     Err("hf_unsupported_file/data.txt", None, "dataset", "unsupported file type '.txt'")),
    ("hf answer not among the choices", "sources",
     hf("hf_answer_not_a_choice/data.jsonl", columns={"choices": "choices"}),
     Err("hf_answer_not_a_choice/data.jsonl", "data", "columns.answer", "'Pluto' is not a choice")),
    # empty files
    ("superni empty file", "sources", superni("superni_empty_file"),
     Err("superni_empty_file/task021_empty.json", "task021_empty", None, "empty file, expected JSON")),
    ("bbh empty file", "targets", bigbench("bbh_empty_file"),
     Err("bbh_empty_file/navigate.json", "navigate", None, "empty file, expected JSON")),
    ("bbeh empty task.json", "targets", bigbench("bbeh_empty_task_json"),
     Err("bbeh_empty_task_json/bbeh_word_sorting/task.json", "bbeh_word_sorting", None, "empty file, expected JSON")),
    ("bbeh empty dev_items file", "targets", {**BBEH_TARGET, "dev_items": str(BAD / "bbeh_dev_items_empty/data.json")},
     Err("bbeh_dev_items_empty/data.json", None, None, "empty file, expected JSON")),
    ("hf one-option row in an evaluation-only target", "targets",
     hf("hf_target_one_choice/test.jsonl", split="test", role="eval", task_column="category",
        columns={"choices": "options", "answer_index": "answer_index"}),
     Err("hf_target_one_choice/test.jsonl", "math", "columns.choices",
         "row 1 (column 'options'): 1 choice(s); a multiple-choice item needs at least two")),
    ("hf one-option row in a source", "sources",
     hf("hf_target_one_choice/test.jsonl", split="test", task_column="category",
        columns={"choices": "options", "answer_index": "answer_index"}),
     Skip("math", "fewer_than_two_choices", 1)),
    ("hf empty file", "sources", hf("hf_empty_file/data.jsonl"),
     Err("hf_empty_file/data.jsonl", None, "dataset", "empty file")),
    # a folder where a file is expected, a file where a folder is expected
    ("superni folder named like a task file", "sources", superni("superni_folder_named_like_a_task_file"),
     Err("superni_folder_named_like_a_task_file/task023_folder.json", None, "path",
         "is a folder, expected a SuperNI task file")),
    ("bbh folder named like a task file", "targets", bigbench("bbh_folder_named_like_a_task_file"),
     Err("bbh_folder_named_like_a_task_file/navigate.json", None, "path", "is a folder, expected a task file")),
    ("bbeh task.json is a folder", "targets", bigbench("bbeh_task_json_is_a_folder"),
     Err("bbeh_task_json_is_a_folder/bbeh_word_sorting/task.json", None, "path",
         "is a folder, expected the sub-task's task.json file")),
    ("bbeh dev_items is a folder", "targets", {**BBEH_TARGET, "dev_items": str(BAD / "bbeh_dev_items_empty")},
     Err("bbeh_dev_items_empty", None, "dev_items", "is a folder, expected a JSON file of examples")),
    ("superni path is a text file", "sources", superni("superni_path_is_a_text_file/tasks.txt"),
     Err("superni_path_is_a_text_file/tasks.txt", None, "path",
         "is a .txt file, expected a folder of SuperNI task files or one SuperNI task file (.json)")),
    ("bbh path is a TSV file", "targets", bigbench("bbh_path_is_a_text_file/bbh.tsv"),
     Err("bbh_path_is_a_text_file/bbh.tsv", None, "path", "is a .tsv file, expected a folder of task files")),
    ("hf folder without data files", "sources", hf("hf_folder_without_data_files"),
     Err("hf_folder_without_data_files", None, "dataset", "doesn't contain any data files")),
    # input fields of the wrong JSON type
    ("superni output is a number", "sources", superni("superni_output_number"),
     Err("superni_output_number/task024_output_number.json", "task024_output_number", "Instances[1].output",
         "must be a list of strings, got a number")),
    ("superni output is a list of numbers", "sources", superni("superni_output_list_of_numbers"),
     Err("superni_output_list_of_numbers/task025_output_numbers.json", "task025_output_numbers",
         "Instances[0].output", "must be a list of strings, got a list of numbers")),
    ("superni input is null", "sources", superni("superni_input_null"),
     Err("superni_input_null/task026_input_null.json", "task026_input_null", "Instances[1].input",
         "must be a string, got null")),
    ("superni instance is a string", "sources", superni("superni_instance_is_a_string"),
     Err("superni_instance_is_a_string/task027_instance_string.json", "task027_instance_string", "Instances[1]",
         "must be an object, got a string")),
    ("bbh examples is a string", "targets", bigbench("bbh_examples_is_a_string"),
     Err("bbh_examples_is_a_string/navigate.json", "navigate", "examples", "must be a list, got a string")),
    ("bbh input is a number", "targets", bigbench("bbh_input_a_number"),
     Err("bbh_input_a_number/object_counting.json", "object_counting", "examples[1].input",
         "must be a string, got a number")),
    ("big-bench target_scores is a list", "targets", bigbench("bigbench_target_scores_a_list"),
     Err("bigbench_target_scores_a_list/task.json", "bigbench_target_scores_a_list", "examples[0].target_scores",
         "must map at least two choices to scores, got a list of strings")),
    ("big-bench target_scores is null", "targets", bigbench("bigbench_target_scores_null"),
     Err("bigbench_target_scores_null/task.json", "bigbench_target_scores_null", "examples[1].target_scores",
         "must map at least two choices to scores, got null")),
]

# Entries that are each fine but wrong together: (case, sources, targets, expectation)
RG_LEGS = {"kind": "reasoning_gym", "name": "leg_counting", "n_items": 4}
SUPERNI_TASK = str(FIXTURES / "superni" / "task9001_country_capital_mini.json")
TOGETHER = [
    ("the same source twice, with different fields", [GOOD_SOURCE, {**GOOD_SOURCE, "few_shot": 1}], [GOOD_TARGET],
     Err(PARAMS, "task9001_country_capital_mini", "ingest.sources[1]",
         f"task defined twice: ingest.sources[1] reads it from {SUPERNI_TASK}, ingest.sources[0] from {SUPERNI_TASK}",
         ParamsError)),
    ("the same source twice, its path spelled another way",
     [GOOD_SOURCE, {**GOOD_SOURCE, "path": str(FIXTURES / "bbh" / ".." / "superni")}], [GOOD_TARGET],
     Err(PARAMS, "task9001_country_capital_mini", "ingest.sources[1]", "task defined twice", ParamsError)),
    ("the same generator twice, with different sizes", [RG_LEGS, {**RG_LEGS, "n_items": 6}], [GOOD_TARGET],
     Err(PARAMS, "leg_counting", "ingest.sources[1]", "task defined twice: ingest.sources[1] reads it from "
         "reasoning_gym:leg_counting, ingest.sources[0] from reasoning_gym:leg_counting", ParamsError)),
    ("a source that is also a target", [GOOD_SOURCE], [GOOD_TARGET, {**GOOD_SOURCE, "few_shot": 1}],
     Err(PARAMS, "task9001_country_capital_mini", "ingest.targets[1]",
         f"a task cannot be both a source and a target: ingest.targets[1] reads it from {SUPERNI_TASK}, "
         f"ingest.sources[0] from {SUPERNI_TASK}", ParamsError)),
    ("a generator that is also a target", [RG_LEGS], [{**RG_LEGS, "n_items": 6}],
     Err(PARAMS, "leg_counting", "ingest.targets[0]", "a task cannot be both a source and a target", ParamsError)),
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def config(role: str, entry: dict) -> IngestConfig:
    """An ingest config with ``entry`` in ``role`` and a good entry in the other role."""
    sources = [entry] if role == "sources" else [GOOD_SOURCE]
    targets = [entry] if role == "targets" else [GOOD_TARGET]
    return IngestConfig(sources=sources, targets=targets, target_dev_size=1, target_test_size=2,
                        max_prompt_tokens=MAX_PROMPT_TOKENS)


def run_ingest(cfg: IngestConfig, tokenizer, out: Path):
    res = ingest(cfg, seed=0, prompt=PromptConfig(), tokenizer=tokenizer, context_length=2048)
    write_ingest(res, out / "sources", out / "targets" / "dev.parquet", out / "targets" / "test.parquet",
                 out / "ingest.json")
    return res


def expected_file(rel: str | None) -> str | None:
    if rel is None or rel == PARAMS or rel.startswith("/"):
        return rel
    return str(BAD / rel)


def test_corpus_is_large_enough():
    assert sum(isinstance(c[3], Err) for c in CASES) >= 15
    assert len([p for p in BAD.iterdir() if p.is_dir()]) >= 15


@pytest.mark.parametrize("role,entry,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(role, entry, expect, tokenizer, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    if isinstance(expect, Skip):
        res = run_ingest(config(role, entry), tokenizer, out)
        assert res.report[role][expect.task]["dropped"][expect.reason] == expect.count
        assert (out / "sources" / f"{expect.task}.parquet").exists()
        return
    fails_in_one_line(config(role, entry), expect, tokenizer, out)


@pytest.mark.parametrize("sources,targets,expect", [c[1:] for c in TOGETHER], ids=[c[0] for c in TOGETHER])
def test_entries_wrong_together(sources, targets, expect, tokenizer, tmp_path):
    cfg = IngestConfig(sources=sources, targets=targets, target_dev_size=1, target_test_size=2,
                       max_prompt_tokens=MAX_PROMPT_TOKENS)
    fails_in_one_line(cfg, expect, tokenizer, tmp_path)


def fails_in_one_line(cfg: IngestConfig, expect: Err, tokenizer, out: Path) -> None:
    """Ingest of ``cfg`` raises the expected one-line error and writes nothing under ``out``."""
    with pytest.raises(PipelineError) as caught:
        run_ingest(cfg, tokenizer, out)
    err = caught.value
    message = str(err)
    assert type(err) is expect.kind, message
    assert "\n" not in message and "Traceback" not in message
    assert (err.file, err.task, err.field) == (expected_file(expect.file), expect.task, expect.field), message
    assert expect.reason in err.reason, message
    prefix = ": ".join(p for p in (err.file, err.task and f"task {err.task}", err.field and f"field {err.field}") if p)
    assert message.startswith(prefix + ": "), message
    assert not list(out.rglob("*")), "a failed ingest must not write anything"


@pytest.mark.skipif(not datasets.config.HF_HUB_OFFLINE, reason="needs HF_HUB_OFFLINE=1")
def test_hub_id_offline_is_one_line(tokenizer, tmp_path):
    entry = {"kind": "hf", "dataset": "someorg/no-such-dataset-for-supernova"}
    with pytest.raises(InputError) as caught:
        run_ingest(config("sources", entry), tokenizer, tmp_path)
    err = caught.value
    assert (err.file, err.field) == ("someorg/no-such-dataset-for-supernova", "dataset")
    assert "HF_HUB_OFFLINE=1" in err.reason and "\n" not in str(err)
    assert not list(tmp_path.rglob("*"))


# The stage script in a scratch project: one line on stderr, exit code 2, nothing written.

def scratch_project(root: Path, model: Path, ingest_section: dict) -> Path:
    shutil.copytree(ROOT / "stages", root / "stages")
    shutil.copytree(model, root / "data" / "models" / "base")
    write_params(root, ingest_section)
    return root


def write_params(root: Path, ingest_section: dict) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data_root"] = str(FIXTURES)     # the corpus lies under it, as every named file must
    params["ingest"] = {"target_dev_size": 1, "target_test_size": 2, "max_prompt_tokens": MAX_PROMPT_TOKENS,
                        **ingest_section}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stage(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "stages/ingest.py"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "SUPERNOVA_LOG": "WARNING"}, timeout=600)


def written(root: Path) -> list[Path]:
    """The files ingest wrote in a scratch project."""
    return sorted(p for p in (root / "data" / "items").rglob("*") if p.is_file()) + [root / "metrics" / "ingest.json"]


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("ingest: ")]


def test_stage_reports_one_line_and_writes_nothing(tmp_path, tiny_model):
    bad = superni("superni_non_utf8")
    root = scratch_project(tmp_path / "project", tiny_model, {"sources": [bad], "targets": [GOOD_TARGET]})
    proc = run_stage(root)
    assert proc.returncode == 2, proc.stderr
    [line] = error_lines(proc.stderr)
    assert line == (f"ingest: error: {BAD / 'superni_non_utf8/task012_latin1.json'}: task task012_latin1: "
                    "not valid UTF-8: byte 0xe7 at offset 312")
    assert "Traceback" not in proc.stderr
    assert not (root / "data" / "items").exists() and not (root / "metrics").exists()


def test_stage_failure_leaves_previous_outputs_untouched(tmp_path, tiny_model):
    root = scratch_project(tmp_path / "project", tiny_model, {"sources": [GOOD_SOURCE], "targets": [GOOD_TARGET]})
    assert run_stage(root).returncode == 0
    outputs = written(root)
    before = {p: p.read_bytes() for p in outputs}
    write_params(root, {"sources": [GOOD_SOURCE], "targets": [bigbench("bbeh_target_not_a_string")]})
    proc = run_stage(root)
    assert proc.returncode == 2
    [line] = error_lines(proc.stderr)
    assert "task bbeh_multistep_arithmetic: field examples[1].target: target must be a string" in line
    assert written(root) == outputs and all(p.read_bytes() == before[p] for p in outputs)
