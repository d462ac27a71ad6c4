"""Score stages side by side: a pool of ``dvc repro -s`` workers in one workspace, each on its
own slice of the machine.

    python -m supernova.fanout score --workers auto                  # as many as the machine holds
    python -m supernova.fanout score --workers 2                     # a CPU: the cores split in two
    python -m supernova.fanout score --workers 4 --gpus 0,1,2,3      # one GPU per worker
    python -m supernova.fanout score --workers 4 --gpus 0,0,1,1      # two workers per GPU

``dvc repro`` runs the stages of one pipeline one after another. The score stages of a round
(``score@<task>-r<i>``, ``score-control@r<i>``) do not depend on each other, and DVC releases its
repository lock while a stage's command runs, so several ``dvc --wait-for-lock repro -s <stage>``
processes compute side by side in one workspace: each writes its outputs to the shared cache,
its entry to DVC's run-cache and its entry to ``dvc.lock`` (taking the lock only for that).

Round by round, in order (a round's promotion reads the scores of the rounds before it):

1. ``dvc repro`` of the stages the round's score stages depend on (prepare-model, ingest, probe,
   baseline, promote-r<i>), as DVC's graph of ``dvc.yaml`` says;
2. the round's score stages ``dvc status`` reports changed; those the promotion gives no runs
   (a later round of an exhaustive schedule, a task halving dropped) in one ``dvc repro -s``;
3. a pool of ``--workers`` processes (no more than the round has stages to run), each taking
   the next stage as it finishes the last, each pinned to its slice: ``CUDA_VISIBLE_DEVICES``
   from ``--gpus``, and its share of the CPU cores as its CPU affinity (``compute.threads``,
   ``auto`` or a number, is the budget split; a stage's ``auto`` threads are then the cores of
   its slice). A worker's output goes to ``.dvc/tmp/fanout/<stage>.log``; a failed stage stops
   the fan-out once the running ones end.

``--workers auto`` is one worker per visible GPU on a CUDA machine; on a CPU one per core of
``compute.threads``, as many as the available memory holds at ``--worker-memory-gib`` each (a
default utility run peaks at 5.3 GB). A score stage on one core took 1.27x its time on two
(the default profile, a 2-core CPU), so two one-core workers finish a round sooner than one
two-core process.

Afterwards a plain ``dvc repro`` finds every score stage up to date and runs what follows;
whoever runs it commits ``dvc.lock`` (the workers never do).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .config import from_section, load_params
from .errors import PipelineError
from .hardware import ComputeConfig, Hardware, detect
from .scoring import CONTROL

#: A round's score stages: ``score@<task>-r<i>`` and ``score-control@r<i>``.
ROUND_STAGE = re.compile(r"^score@.+-(r\d+)$|^score-control@(r\d+)$")
LOG_DIR = Path(".dvc/tmp/fanout")


class FanoutError(PipelineError):
    """A worker failed, or the machine cannot be split as asked."""


@dataclass(frozen=True)
class Round:
    name: str
    stages: tuple[str, ...]       # its score stages
    upstream: tuple[str, ...]     # the stages they depend on directly


@dataclass(frozen=True)
class Slot:
    """One worker's slice of the machine."""

    cores: tuple[int, ...]
    gpus: tuple[str, ...] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ, OMP_NUM_THREADS=str(len(set(self.cores))))
        if self.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        return env

    def __str__(self) -> str:
        where = f"cores {','.join(map(str, self.cores))}"
        return where + (f", GPU {','.join(self.gpus)}" if self.gpus is not None else "")


def rounds() -> list[Round]:
    """The scoring rounds of the pipeline in the working directory, in order, each with its score
    stages and the stages they depend on (from DVC's stage graph)."""
    from dvc.repo import Repo

    with Repo() as repo:
        graph = repo.index.graph          # an edge goes from a stage to a stage it depends on
        by_round: dict[str, list] = {}
        for stage in graph:
            m = ROUND_STAGE.match(stage.addressing)
            if m:
                by_round.setdefault(m.group(1) or m.group(2), []).append(stage)
        out = []
        for name in sorted(by_round, key=lambda r: int(r[1:])):
            stages = by_round[name]
            names = {s.addressing for s in stages}
            upstream = {d.addressing for s in stages for d in graph.successors(s)} - names
            out.append(Round(name, tuple(sorted(names)), tuple(sorted(upstream))))
        return out


def has_runs(stage: str) -> bool:
    """Whether the round's promotion file (``promote-r<i>`` has run) gives ``stage`` any runs; a
    stage given none writes empty outputs in a second, less than a worker's ``dvc`` start costs,
    so those run one after another in one ``dvc repro``. Without a promotion file: yes."""
    m = ROUND_STAGE.match(stage)
    round_ = m.group(1) or m.group(2)
    task = CONTROL if stage.startswith("score-control@") else stage[len("score@"):-(len(round_) + 1)]
    path = paths.promotion_file(round_, task)
    return not path.exists() or bool(json.loads(path.read_text())["promoted"])


def changed(stages: tuple[str, ...]) -> list[str]:
    """Those of ``stages`` that ``dvc status`` reports changed (never run, or their deps or
    outputs differ from ``dvc.lock``)."""
    from dvc.repo import Repo

    with Repo() as repo:
        status = repo.status(targets=list(stages))
    return [s for s in stages if s in status]


def split(ids: list, workers: int, what: str) -> list[tuple]:
    """``ids`` cut into ``workers`` contiguous, near-equal slices (an id listed twice is shared)."""
    if workers < 1:
        raise FanoutError(f"must be >= 1, got {workers}", field="--workers")
    if len(ids) < workers:
        raise FanoutError(f"{workers} workers but only {len(ids)} {what}", field="--workers")
    return [tuple(ids[i * len(ids) // workers:(i + 1) * len(ids) // workers]) for i in range(workers)]


def slots(workers: int, compute: ComputeConfig, gpus: list[str] | None = None) -> list[Slot]:
    """One slice of the machine per worker: the CPU cores this process may use, ``compute.threads``
    of them (all for ``auto``), split between the workers; with ``gpus``, the GPUs too."""
    cores = sorted(os.sched_getaffinity(0))
    if compute.threads != "auto":
        cores = cores[:int(compute.threads)]
    gpu_slices = split(gpus, workers, "GPUs in --gpus (list an id twice to share a GPU)") if gpus else [None] * workers
    cpu_slices = split(cores, workers, "CPU cores (compute.threads, within this process's CPU affinity)")
    return [Slot(c, g) for c, g in zip(cpu_slices, gpu_slices)]


def auto_workers(compute: ComputeConfig, gpus: list[str] | None, worker_memory_gib: float,
                 hw: Hardware | None = None) -> tuple[int, list[str] | None]:
    """``--workers auto``: (workers, GPUs). One per GPU (``gpus``, or every visible one) on a CUDA
    machine; on a CPU one per core of ``compute.threads``, at most as many as the available memory
    holds at ``worker_memory_gib`` each, and at least one."""
    hw = hw or detect()
    if hw.device == "cuda":
        gpus = gpus or [str(i) for i in range(hw.gpus)]
        return len(gpus), gpus
    if worker_memory_gib <= 0:
        raise FanoutError(f"must be > 0, got {worker_memory_gib}", field="--worker-memory-gib")
    cores = min(compute.resolved(hw)["threads"], hw.cores)
    return max(1, min(cores, int(hw.memory_gib // worker_memory_gib))), gpus


def run_pool(stages: list[str], pool: list[Slot], log_dir: Path = LOG_DIR, dvc: str = "dvc") -> None:
    """Each of ``stages`` as ``dvc --wait-for-lock repro -s <stage>``, at most one per slot at a
    time; a failure stops handing out stages and, once the running ones end, raises naming it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    todo, free = list(stages), list(pool)
    running: dict[subprocess.Popen, tuple[str, Slot, float]] = {}
    failed: list[str] = []
    while running or (todo and not failed):
        while todo and free and not failed:
            stage, slot = todo.pop(0), free.pop(0)
            log = open(log_dir / f"{stage}.log", "w")
            proc = subprocess.Popen([dvc, "--wait-for-lock", "repro", "-s", stage], stdout=log,
                                    stderr=subprocess.STDOUT, env=slot.env(),
                                    preexec_fn=lambda cores=slot.cores: os.sched_setaffinity(0, cores))
            log.close()
            running[proc] = (stage, slot, time.perf_counter())
            print(f"{stage}: started on {slot}", flush=True)
        time.sleep(0.2)
        for proc in [p for p in running if p.poll() is not None]:
            stage, slot, start = running.pop(proc)
            free.append(slot)
            if proc.returncode == 0:
                print(f"{stage}: done in {time.perf_counter() - start:.0f} s", flush=True)
            else:
                failed.append(stage)
                print(f"{stage}: failed (exit {proc.returncode}): {_tail(log_dir / f'{stage}.log')}", flush=True)
    if failed:
        logs = ", ".join(str(log_dir / f"{s}.log") for s in failed)
        raise FanoutError(f"{len(failed)} stage(s) failed: {', '.join(failed)} (logs: {logs}); "
                          f"{len(todo)} not started")


def _tail(path: Path, n: int = 2) -> str:
    """The last ``n`` non-empty lines of a worker's log, joined: the stage's one-line error, then DVC's."""
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "(no output)"


def score(workers: int | str, gpus: list[str] | None = None, only: list[str] | None = None,
          worker_memory_gib: float = 6.0) -> None:
    """Fan out the score stages of every round (or of the rounds in ``only``), in order, on
    ``workers`` workers (``auto``: :func:`auto_workers`)."""
    compute = from_section(ComputeConfig, load_params(), "compute")
    if workers == "auto":
        workers, gpus = auto_workers(compute, gpus, worker_memory_gib)
    slots(workers, compute, gpus)                 # the machine can be split as asked
    plan = rounds()
    unknown = sorted(set(only or []) - {r.name for r in plan})
    if unknown:
        raise FanoutError(f"no score stages of round {unknown[0]} in dvc.yaml", field="--rounds")
    for rnd in plan:
        if only and rnd.name not in only:
            continue
        print(f"{rnd.name}: dvc repro {' '.join(rnd.upstream)}", flush=True)
        subprocess.run(["dvc", "repro", *rnd.upstream], check=True)
        todo = changed(rnd.stages)
        runs = [s for s in todo if has_runs(s)]
        idle = [s for s in todo if s not in runs]
        if idle:
            print(f"{rnd.name}: {len(idle)} score stages given no runs: dvc repro -s {' '.join(idle)}", flush=True)
            subprocess.run(["dvc", "repro", "-s", *idle], check=True)
        if not runs:
            continue
        pool = slots(max(1, min(workers, len(runs))), compute, gpus)
        print(f"{rnd.name}: {len(runs)} of {len(rnd.stages)} score stages to run on {len(pool)} workers", flush=True)
        start = time.perf_counter()
        run_pool(runs, pool)
        print(f"{rnd.name}: score stages done in {time.perf_counter() - start:.0f} s", flush=True)
    print("next: `dvc repro` finds the score stages up to date and runs the rest; commit dvc.lock", flush=True)


def workers_arg(value: str) -> int | str:
    return value if value == "auto" else int(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.fanout", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sc = sub.add_parser("score", help="run the score stages of each round in parallel workers")
    sc.add_argument("--workers", type=workers_arg, required=True,
                    help="concurrent dvc repro -s processes, or auto (one per GPU; on a CPU one per core, "
                         "as many as memory holds)")
    sc.add_argument("--worker-memory-gib", type=float, default=6.0,
                    help="memory one worker may take, for --workers auto on a CPU (default 6)")
    sc.add_argument("--gpus", help="GPU ids split between the workers, e.g. 0,1,2,3 (an id twice: shared)")
    sc.add_argument("--rounds", help="only these rounds, e.g. r0 (default: every round, in order)")
    args = ap.parse_args(argv)
    try:
        score(args.workers, args.gpus.split(",") if args.gpus else None,
              args.rounds.split(",") if args.rounds else None, args.worker_memory_gib)
    except PipelineError as e:
        print(f"fanout: error: {e}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as e:
        print(f"fanout: error: `{' '.join(e.cmd)}` failed (exit {e.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
