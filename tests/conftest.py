"""Shared fixtures: small real models (built once per session) and a scratch copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", "params", "inputs", "stages", "supernova", ".dvc/config", ".dvc/plots",
                 ".dvcignore", ".gitignore", "tests/fixtures/mmlu_pro"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer randomly initialised llama with SmolLM2's tokenizer (safetensors folder)."""
    from supernova.model import prepare_base_model

    return prepare_base_model("embedded:tiny-random", tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def smol_model(tmp_path_factory) -> Path:
    """The embedded SmolLM2-135M-Instruct, converted from its GGUF once per session."""
    from supernova.model import prepare_base_model

    return prepare_base_model("embedded:SmolLM2-135M-Instruct", tmp_path_factory.mktemp("models") / "smol")


def make_project(dest: Path, profile: str | None = "params/tiny.yaml") -> Path:
    """A git + DVC project at ``dest`` with this repository's pipeline, optionally a profile applied."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    (dest / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n/site\n")
    if profile:
        from supernova.profile import apply

        apply(str(dest / profile), str(dest / "params.yaml"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``dvc <args>`` in ``project``; a failure (with ``check``) shows DVC's output."""
    res = subprocess.run(["dvc", *args], cwd=project, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res


def ran_stages(output: str) -> list[str]:
    """The stages ``dvc repro`` ran (not those it skipped or restored), from its output."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "project")
