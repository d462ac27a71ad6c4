"""Score stages in parallel DVC workers, and through a DVC remote's run-cache between clones."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, dvc, make_project, ran_stages
from supernova.fanout import FanoutError, Slot, auto_workers, has_runs, rounds, run_pool, slots, split
from supernova.hardware import ComputeConfig, Hardware

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
R0 = ["score-control@r0", "score@basic_arithmetic-r0", "score@syllogism-r0"]   # the tiny profile's round r0


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, env={**os.environ, **GIT})


def test_split_gives_contiguous_near_equal_slices_and_refuses_too_few_ids():
    assert split([0, 1, 2, 3, 4], 2, "cores") == [(0, 1), (2, 3, 4)]
    assert split(["0", "0", "1", "1"], 4, "GPUs") == [("0",), ("0",), ("1",), ("1",)]   # two workers per GPU
    with pytest.raises(FanoutError, match=r"field --workers: 3 workers but only 2 GPUs"):
        split(["0", "1"], 3, "GPUs")


def test_each_worker_gets_its_gpus_and_its_share_of_the_thread_budget(machine_cores):
    cores = machine_cores
    if len(cores) < 2:
        pytest.skip("needs 2 CPU cores")
    pool = slots(2, ComputeConfig(threads=2), gpus=["0", "1", "2", "3"])
    assert [s.cores for s in pool] == [(cores[0],), (cores[1],)]
    assert [s.env()["CUDA_VISIBLE_DEVICES"] for s in pool] == ["0,1", "2,3"]
    assert [s.env()["OMP_NUM_THREADS"] for s in pool] == ["1", "1"]
    assert slots(1, ComputeConfig(threads=1)) == [Slot((cores[0],))]


@pytest.mark.parametrize("hw, threads, gpus, memory_per_worker, expected", [
    (Hardware(cores=2, memory_gib=22.0), "auto", None, 6.0, (2, None)),        # a core each
    (Hardware(cores=2, memory_gib=10.0), "auto", None, 6.0, (1, None)),        # memory for one
    (Hardware(cores=16, memory_gib=40.0), "auto", None, 6.0, (6, None)),
    (Hardware(cores=8, memory_gib=64.0), 2, None, 6.0, (2, None)),             # compute.threads caps the cores
    (Hardware(cores=2, memory_gib=3.0), "auto", None, 6.0, (1, None)),         # at least one
    (Hardware(cores=4, memory_gib=30.0), "auto", None, 12.0, (2, None)),
    (Hardware(device="cuda", gpus=4, cores=2), "auto", None, 6.0, (4, ["0", "1", "2", "3"])),
    (Hardware(device="cuda", gpus=4, cores=2), "auto", ["0", "0"], 6.0, (2, ["0", "0"])),
])
def test_auto_workers_from_the_gpus_or_the_cores_and_memory(hw, threads, gpus, memory_per_worker, expected):
    assert auto_workers(ComputeConfig(threads=threads), gpus, memory_per_worker, hw) == expected


def test_auto_workers_refuse_a_worker_without_memory():
    with pytest.raises(FanoutError, match=r"field --worker-memory-gib: must be > 0, got 0"):
        auto_workers(ComputeConfig(), None, 0.0, Hardware(cores=2))


def test_stages_given_no_runs_are_told_from_the_promotion_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for rnd, task, promoted in [("r1", "syllogism", True), ("r1", "basic_arithmetic", False),
                                ("r1", "format_control", False), ("r2", "letter_counting", True)]:
        path = tmp_path / "data" / "halving" / rnd / f"{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"round": rnd, "task": task, "promoted": promoted, "seeds": [0] if promoted else []}))
    assert [has_runs(s) for s in ("score@syllogism-r1", "score@basic_arithmetic-r1", "score-control@r1",
                                  "score@letter_counting-r2", "score@syllogism-r2")] == [True, False, False, True, True]


def test_more_workers_than_cores_is_one_line_naming_the_option(monkeypatch, capsys):
    from supernova.fanout import main

    monkeypatch.chdir(ROOT)
    workers = len(os.sched_getaffinity(0)) + 1
    assert main(["score", "--workers", str(workers)]) == 1
    assert capsys.readouterr().err == (f"fanout: error: field --workers: {workers} workers but only {workers - 1} "
                                       f"CPU cores (compute.threads, within this process's CPU affinity)\n")


def test_a_worker_uses_only_the_cores_of_its_slice():
    # compute.threads asks for 8; the stage's process may run on one core, so torch takes one thread
    code = ("import torch; from supernova.hardware import ComputeConfig, apply_threads; "
            "apply_threads(ComputeConfig(threads=8)); print(torch.get_num_threads())")
    core = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         preexec_fn=lambda: os.sched_setaffinity(0, {core})).stdout
    assert out.strip() == "1"


def test_rounds_come_in_order_with_the_stages_they_depend_on(tmp_path, monkeypatch):
    monkeypatch.chdir(make_project(tmp_path / "p"))
    plan = rounds()
    assert [r.name for r in plan] == ["r0", "r1", "r2"]
    assert list(plan[0].stages) == R0
    assert plan[0].upstream == ("baseline", "ingest", "prepare-model", "probe", "promote-r0")
    assert plan[2].upstream == ("baseline", "ingest", "prepare-model", "probe", "promote-r2")


@pytest.fixture
def meeting(tmp_path) -> Path:
    """A DVC project whose stages ``a`` and ``b`` each finish only once the other has started, and
    whose stage ``bad`` fails."""
    p = tmp_path / "meet"
    p.mkdir()
    (p / "meet.py").write_text(textwrap.dedent("""\
        import sys, time
        from pathlib import Path
        me, other = sys.argv[1:]
        Path(me + ".started").touch()
        deadline = time.time() + 60
        while not Path(other + ".started").exists():
            if time.time() > deadline:
                sys.exit(f"{me}: {other} never started")
            time.sleep(0.1)
        Path(me + ".out").write_text(me)
        """))
    (p / "bad.py").write_text("import sys\nsys.exit('bad: error: the input is missing')\n")
    (p / "dvc.yaml").write_text(textwrap.dedent("""\
        stages:
          a: {cmd: python meet.py a b, deps: [meet.py], outs: [a.out]}
          b: {cmd: python meet.py b a, deps: [meet.py], outs: [b.out]}
          bad: {cmd: python bad.py, outs: [bad.out]}
        """))
    git(p, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=p, check=True)
    return p


def test_workers_compute_side_by_side_in_one_workspace_and_a_failure_is_named(meeting, monkeypatch, capsys):
    monkeypatch.chdir(meeting)
    core = min(os.sched_getaffinity(0))
    pool = [Slot((core,)), Slot((core,))]
    run_pool(["a", "b"], pool)          # a waits for b and b for a: only concurrent workers finish
    assert (meeting / "a.out").read_text() == "a" and (meeting / "b.out").read_text() == "b"
    assert "Data and pipelines are up to date" in dvc(meeting, "repro", "a", "b").stdout
    with pytest.raises(FanoutError, match=r"1 stage\(s\) failed: bad \(logs: .dvc/tmp/fanout/bad.log\)"):
        run_pool(["bad"], pool)
    assert "bad: failed (exit 255): bad: error: the input is missing | ERROR: failed to reproduce 'bad'" in \
        capsys.readouterr().out


@pytest.fixture(scope="module")
def upstream(ran, tmp_path_factory) -> Path:
    """The tiny run, copied, scoring one source task at another learning rate: every stage that
    round r0's score stages (the task's and the control's) depend on is computed and committed,
    the score stages are not."""
    p = Path(shutil.copytree(ran, tmp_path_factory.mktemp("fanout") / "project", symlinks=True))
    params = yaml.safe_load((p / "params.yaml").read_text())
    params["score"].update(tasks=["syllogism"], control_tasks=["syllogism"])
    params["score"]["grpo"]["learning_rate"] = 2.0e-5
    (p / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(p / "data" / "score")
    assert ran_stages(dvc(p, "repro", "promote-r0").stdout) == ["promote-r0"]
    git(p, "add", "-A")
    git(p, "commit", "-qm", "upstream of the score stages")
    return p


@pytest.mark.slow
def test_two_workers_score_a_round_and_dvc_repro_finds_it_up_to_date(upstream, tmp_path, machine_cores):
    p = Path(shutil.copytree(upstream, tmp_path / "p", symlinks=True))
    res = subprocess.run([sys.executable, "-m", "supernova.fanout", "score", "--workers", "2", "--rounds", "r0"],
                         cwd=p, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    round_r0 = ["score-control@r0", "score@syllogism-r0"]
    assert sorted(line.split(":")[0] for line in lines if ": started on cores" in line) == round_r0
    first_done = next(i for i, line in enumerate(lines) if ": done in " in line)
    assert sum(": started on" in line for line in lines[:first_done]) == 2      # the two ran at once
    # the coordinator: nothing of round r0 is rerun
    status = dvc(p, "status").stdout
    assert not [s for s in round_r0 if f"{s}:" in status], status
    assert ran_stages(dvc(p, "repro", *round_r0).stdout) == []


@pytest.mark.slow
def test_a_stage_scored_in_one_clone_is_restored_from_the_remote_in_another(upstream, tmp_path):
    coordinator = Path(shutil.copytree(upstream, tmp_path / "coordinator", symlinks=True))
    dvc(coordinator, "remote", "add", "-d", "store", str(tmp_path / "remote"))
    git(coordinator, "commit", "-qam", "a DVC remote")
    dvc(coordinator, "push")
    # a worker: array task 0 of the Slurm template, in its own clone of the coordinator's commit
    env = {**os.environ, "SRC": str(coordinator), "SLURM_ARRAY_TASK_ID": "0", "ROUND": "r0", "TMPDIR": str(tmp_path)}
    worker = subprocess.run(["bash", str(ROOT / "cluster/slurm/score.sbatch")], env=env, capture_output=True,
                            text=True)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert ran_stages(worker.stdout) == ["score@syllogism-r0"]
    assert not (coordinator / "data/score/r0/syllogism").exists()
    res = dvc(coordinator, "repro", "--pull", "score@syllogism-r0")
    assert ran_stages(res.stdout) == []
    assert "Stage 'score@syllogism-r0' is cached - skipping run, checking out outputs" in res.stdout
    assert (coordinator / "data/score/r0/syllogism/utility.parquet").exists()
