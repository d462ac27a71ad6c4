"""A scratch copy of this project: the files a run of the DAG needs, a profile applied, committed
to a fresh git repository (DVC needs one). The tests and ``bench/gpu_check.py`` run the tiny
profile's DAG in such a copy, leaving the working project's outputs and ``dvc.lock`` alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: the project this package belongs to (an editable install's checkout)
ROOT = Path(__file__).resolve().parents[1]
#: what a run of the DAG reads; ``dvc.lock`` stays behind, so every stage of the copy runs
#: what a project copies of this repository: of inputs/ only what git tracks (a developer's
#: imported data stays behind)
PROJECT_FILES = ["dvc.yaml", "params.yaml", "params", "inputs/README.md", "inputs/.gitignore", "stages", "supernova",
                 ".dvc/config", ".dvc/plots", ".dvcignore", ".gitignore", "tests/fixtures/mmlu_pro"]


def make_project(dest: Path, profile: str | None = "params/tiny.yaml", root: Path = ROOT) -> Path:
    """A git + DVC project at ``dest`` with ``root``'s pipeline, optionally a profile applied."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = root / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)
    (dest / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n/site\n")
    if profile:
        from .profile import apply

        apply(str(dest / profile), str(dest / "params.yaml"))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest
