"""Every shipped profile on a fixture tree laid out as README's "Getting the data" says (small
copies of each benchmark in its own layout under inputs/), through the ingest stage; and the
README's `dvc import` into inputs/ beside the ingest stage, as a user runs them."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import dvc, make_project
from supernova.config import load_params
from supernova.profile import apply, merge

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PROFILES = sorted(p.name for p in (ROOT / "params").glob("*.yaml"))
README = (ROOT / "README.md").read_text()

#: where the README's commands put each benchmark, relative to the project root
SUPERNI, BBEH, BBH = "inputs/superni/tasks", "inputs/bbeh", "inputs/bbh"
MMLU_HUB, MMLU_SUPERNOVA = "inputs/mmlu_pro/test.parquet", "inputs/mmlu_pro/supernova.json"
DESTINATIONS = {SUPERNI, BBEH, BBH, MMLU_HUB, MMLU_SUPERNOVA}


def readme_destinations() -> set[str]:
    """The paths under inputs/ that README's commands write: `-o <dest>` of `dvc import`, the
    Parquet file of the `datasets` export; a per-task destination counts as its folder."""
    found = set(re.findall(r"-o (inputs/[^\s`]+)", README))
    found |= set(re.findall(r"to_parquet\(\"(inputs/[^\"]+)\"\)", README))
    return {str(Path(d).parent) if "$" in d or "<" in d else d for d in found}


def entries(params: dict) -> list[dict]:
    return list(params["ingest"]["sources"]) + list(params["ingest"]["targets"])


def named(params: dict, kind: str, field: str = "tasks") -> list[str]:
    """Every task a profile's entries of ``kind`` select by name."""
    return [t for e in entries(params) if e["kind"] == kind for t in (e.get(field) or [])]


def profile_params(names: list[str]) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in names:
        merge(params, yaml.safe_load((ROOT / "params" / name).read_text()))
    return params


def superni_copies(dest: Path, tasks: list[str]) -> None:
    """A SuperNI task file for each name, copied from the fixtures (their Definition prefixed with
    the name, so that no two copies are duplicates of each other)."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = sorted((FIXTURES / "superni").glob("*.json"))
    for i, task in enumerate(sorted(set(tasks))):
        doc = json.loads(sources[i % len(sources)].read_text())
        doc["Definition"] = [f"{task}: {d}" for d in doc["Definition"]]
        (dest / f"{task}.json").write_text(json.dumps(doc, indent=1))


def bbeh_tree(dest: Path, subtasks: list[str]) -> None:
    """BBEH's layout (benchmark_tasks/<sub-task>/task.json, mini/data.json): the fixture's sub-tasks,
    and one for each name a profile selects that the fixture lacks (a fixture sub-task's examples,
    inputs prefixed with the name), each with its first example in mini."""
    shutil.copytree(FIXTURES / "bbeh_official" / "bbeh", dest)
    tasks, mini = dest / "benchmark_tasks", json.loads((dest / "mini" / "data.json").read_text())
    fixture = sorted(p.name for p in tasks.iterdir())
    for i, name in enumerate(sorted(set(subtasks) - set(fixture))):
        doc = json.loads((tasks / fixture[i % len(fixture)] / "task.json").read_text())
        for ex in doc["examples"]:
            ex["input"] = f"[{name}] {ex['input']}"
        (tasks / name).mkdir()
        (tasks / name / "task.json").write_text(json.dumps(doc, indent=1))
        mini["examples"].append(doc["examples"][0])
    (dest / "mini" / "data.json").write_text(json.dumps(mini, indent=1))


def fixture_tree(project: Path) -> None:
    """Everything the shipped profiles read, where README's commands put it."""
    wanted = {n: profile_params([n]) for n in PROFILES}
    superni_copies(project / SUPERNI, [t for p in wanted.values() for t in named(p, "superni")])
    bbeh_tree(project / BBEH, [t for p in wanted.values() for t in named(p, "bigbench")])
    shutil.copytree(FIXTURES / "bbh", project / BBH)
    import datasets      # the README's export: a hub split written with Dataset.to_parquet

    rows = datasets.load_dataset("json", data_files=str(FIXTURES / "mmlu_pro" / "test.jsonl"), split="train")
    rows.to_parquet(str(project / MMLU_HUB))
    shutil.copy(FIXTURES / "mmlu_pro" / "supernova.json", project / MMLU_SUPERNOVA)


def test_readme_names_every_destination_and_no_profile_reads_anything_else():
    assert readme_destinations() == DESTINATIONS
    for name in PROFILES:
        params = profile_params([name])
        for e in entries(params):
            for key in ("path", "dev_items", "dataset"):
                value = e.get(key)
                if value and params["data_root"] == "inputs":
                    assert any(value == d or value.startswith(d + "/") for d in DESTINATIONS), (name, value)


@pytest.mark.parametrize("where", ["README.md", "ARCHITECTURE.md", "inputs/README.md",
                                   *(f"params/{p}" for p in PROFILES)])
def test_no_profile_or_doc_points_outside_the_project(where):
    text = (ROOT / where).read_text()
    assert "../shared" not in text and "../bbeh" not in text, where
    if where.startswith("params/"):
        assert "../" not in text, where


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    fixture_tree(root)
    return root


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_ingests_the_fixture_tree(profile, tree, tiny_model, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("params.yaml", "dvc.yaml", "stages", "params", "tests/fixtures/mmlu_pro"):   # the last: tiny.yaml's
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
    shutil.copytree(tree / "inputs", project / "inputs")
    (project / "data" / "models").mkdir(parents=True)
    (project / "data" / "models" / "base").symlink_to(tiny_model)
    apply(str(project / "params" / profile), str(project / "params.yaml"))
    monkeypatch.chdir(project)
    params = load_params()
    runpy.run_path("stages/ingest.py")["main"](params)

    report = json.loads((project / "metrics" / "ingest.json").read_text())
    assert set(params["score"]["tasks"]) <= set(report["sources"])
    root = (project / params["data_root"]).resolve()
    for group in ("sources", "targets"):
        for task, entry in report[group].items():
            if (project / entry["origin"]).exists():              # a file, not a generator
                assert (project / entry["origin"]).resolve().is_relative_to(root), (task, entry["origin"])
    selected = named(params, "bigbench") + named(params, "hf")
    assert set(selected) <= set(report["targets"])
    targets = {t: e for t, e in report["targets"].items() if e.get("role") != "eval"}
    assert targets and all(e["dev"] > 0 and e["test"] > 0 for e in targets.values())
    ood = {t: e for t, e in report["targets"].items() if e.get("role") == "eval"}
    mmlu = [e for e in params["ingest"]["targets"] if e["kind"] == "hf"]
    assert bool(ood) == bool(mmlu)
    if profile == "superni-bbeh.yaml":                       # the hub layout: categories, every row kept
        assert set(ood) == {"computer_science", "math"} and ood["math"]["test"] == 5
        assert ood["math"]["kept_as_given"] == {"gold_text_repeated": 1}
        for task, e in targets.items():                      # BBEH's whole test split, mini as dev
            examples = json.loads((project / e["origin"]).read_text())["examples"]
            assert (e["dev"], e["test"]) == (1, len(examples) - 1), task
    if profile == "superni-bbeh-cpu.yaml":                   # SuperNova's layout: sources, a selection of them
        assert set(ood) == set(named(params, "hf"))
        assert set(targets) == set(named(params, "bigbench"))


def fake_upstream(path: Path, files: dict[str, Path]) -> Path:
    """A git repository holding ``files`` (its path -> a fixture file or folder), as a public
    benchmark repository holds its data."""
    for rel, src in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data"]):
        subprocess.run(cmd, cwd=path, check=True)
    return path


def test_dvc_import_into_inputs_then_the_cpu_profile_ingests(tree, tiny_model, tmp_path):
    """README's commands with local repositories for GitHub's: each import pins a revision in a
    .dvc file git tracks, the data stays out of git, and the ingest stage runs on what came in."""
    ups = tmp_path / "upstream"
    bbeh = fake_upstream(ups / "bbeh", {"bbeh": tree / BBEH})
    superni = fake_upstream(ups / "natural-instructions", {"tasks": tree / SUPERNI})
    supernova = fake_upstream(ups / "supernova", {"evalchemy/eval/chat_benchmarks/MMLUPro_pass/data.json":
                                                  tree / MMLU_SUPERNOVA})
    project = make_project(tmp_path / "project", profile=None)
    for folder in ("inputs/superni", "inputs/mmlu_pro"):    # README: the folder -o puts the data in must exist
        (project / folder).mkdir(parents=True)
    dvc(project, "import", str(bbeh), "bbeh", "-o", BBEH)
    dvc(project, "import", str(superni), "tasks", "-o", SUPERNI)
    dvc(project, "import", str(supernova), "evalchemy/eval/chat_benchmarks/MMLUPro_pass/data.json", "-o",
        MMLU_SUPERNOVA)
    lock = yaml.safe_load((project / "inputs" / "bbeh.dvc").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", lock["deps"][0]["repo"]["rev_lock"])
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project, check=True,
                            capture_output=True, text=True).stdout.split()
    seen = [s for s in status if s.startswith("inputs/")]   # git sees the .dvc files and .gitignore files only
    assert sorted(s for s in seen if s.endswith(".dvc")) == [
        "inputs/bbeh.dvc", "inputs/mmlu_pro/supernova.json.dvc", "inputs/superni/tasks.dvc"]
    assert all(s.endswith((".dvc", "/.gitignore")) for s in seen), seen
    assert (project / SUPERNI / "task891_gap_coreference_resolution.json").is_file()
    apply(str(project / "params" / "superni-bbeh-cpu.yaml"), str(project / "params.yaml"))
    shutil.copytree(tiny_model, project / "data" / "models" / "base")
    res = dvc(project, "repro", "-s", "ingest")
    assert "Running stage 'ingest'" in res.stdout
    report = json.loads((project / "metrics" / "ingest.json").read_text())
    assert {e["origin"].split("/")[1] for e in report["targets"].values()} == {"bbeh", "mmlu_pro"}
