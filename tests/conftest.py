"""Shared fixtures: small real models (built once per session) and a scratch copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from supernova.project import make_project  # noqa: F401  (the tests' scratch projects)

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: every core this test session may use, before an xdist worker keeps to its share
MACHINE_CORES = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


@pytest.fixture
def machine_cores():
    """The whole machine's cores for the duration of a test that splits them itself (the
    fan-out), though its xdist worker keeps to its share; subprocesses started meanwhile inherit it."""
    if not MACHINE_CORES:                 # no CPU affinity on this platform: nothing was narrowed
        yield list(range(os.cpu_count() or 1))
        return
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, MACHINE_CORES)
    yield sorted(MACHINE_CORES)
    os.sched_setaffinity(0, mine)


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n 2``), each worker keeps to its own share of the
    cores: its torch threads, and through the CPU affinity its subprocesses inherit, the stages'
    threads and vLLM's thread binding. Two workers then never contend for one core."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        share = cores[int(worker.removeprefix("gw")) % count::count]
        os.sched_setaffinity(0, share)
        import torch

        torch.set_num_threads(len(share))


def built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """``build(path)`` once per test run, at a path every pytest-xdist worker sees (the directory
    their temporary directories share): the first worker to need it builds it while the others
    wait on a file lock; what a failed build left is removed and built again by the next."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent
    shared = root / "built-once"
    shared.mkdir(exist_ok=True)
    path, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, worker_id) -> Path:
    """A 2-layer randomly initialised llama with SmolLM2's tokenizer (safetensors folder)."""
    from supernova.model import prepare_base_model

    return built_once(tmp_path_factory, worker_id, "tiny", lambda p: prepare_base_model("embedded:tiny-random", p))


@pytest.fixture(scope="session")
def smol_model(tmp_path_factory, worker_id) -> Path:
    """The embedded SmolLM2-135M-Instruct, converted from its GGUF once per test run."""
    from supernova.model import prepare_base_model

    return built_once(tmp_path_factory, worker_id, "smol",
                      lambda p: prepare_base_model("embedded:SmolLM2-135M-Instruct", p))


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


SCORE_STAGES = ["promote-r0", "score@syllogism-r0", "score@basic_arithmetic-r0", "score-control@r0", "promote-r1",
                "score@syllogism-r1", "score@basic_arithmetic-r1", "score-control@r1", "promote-r2",
                "score@syllogism-r2", "score@basic_arithmetic-r2", "score-control@r2"]
STAGES = ["prepare-model", "ingest", "probe", "baseline", *SCORE_STAGES, "utility", "mix", "sft-loss", "sft-select",
          "rl-train",
          "evaluate", "decision"]


@pytest.fixture(scope="session")
def ran(tmp_path_factory, worker_id) -> Path:
    """The tiny profile's whole DAG, run once per test run (:func:`built_once`) and committed;
    tests read it or work on copies."""
    def run(project: Path) -> None:
        make_project(project)
        res = dvc(project, "repro")
        assert sorted(ran_stages(res.stdout)) == sorted(STAGES)
        subprocess.run(["git", "add", "-A"], cwd=project, check=True)
        subprocess.run(["git", "commit", "-qm", "tiny run"], cwd=project, check=True)

    return built_once(tmp_path_factory, worker_id, "tiny-dag", run)


def pytest_collection_modifyitems(config, items):
    """Order for ``--dist worksteal``, which hands each worker a contiguous half of this order and
    lets an idle worker take the second half of another's queue: one test on the tiny DAG first
    (the first worker runs the DAG while the other works through its half), the rest of them last
    (by then the DAG is there, and the worker that finishes first takes some of them)."""
    dag = [it for it in items if "ran" in getattr(it, "fixturenames", ())]
    if not dag:
        return
    rest = [it for it in items if it not in dag]
    first = next((it for it in dag if it.name == "test_outputs_metrics_and_manifests"), dag[0])
    items[:] = [first, *rest, *(it for it in dag if it is not first)]
