"""The mixing comparison the SuperNova paper reports, and the data-quality theory's claims, as DVC
experiments on DVC's queue, with seeds and a verdict.

    python -m supernova.experiments                 # mixing variants x 3 seeds, then metrics/experiments.md
    python -m supernova.experiments --mode paper    # RL only (no SFT), as in the paper
    python -m supernova.experiments --variants macro bottom --out metrics/ranking_check.md   # does the ranking predict training?
    python -m supernova.experiments --study sft-size     # SFT set size; also sft-order, sft-targets, rl-size
    python -m supernova.experiments --table-only    # rebuild the table from `dvc exp show`

Each variant is trained once per seed as a named experiment queued with ``dvc exp run --queue -n
<name> -S ...`` on top of the committed params (``<variant>-s<seed>``; ``paper-...`` in paper mode,
``<study>-...`` for a study), with ``rl_train.grpo.seed``, ``rl_train.sft.seed``, ``mix.seed`` and
``sft_select.seed`` set to the seed; ``dvc queue start -j <jobs>`` runs the queue and the command
waits for it. A run whose named experiment already finished is not queued again, so an
interrupted study resumes; every run is listed by ``dvc exp show``, and stages whose inputs did
not change (the utility runs, for instance) are restored from DVC's run-cache, not rerun.

Mixing variants: the strategies ``all``, ``random``, ``macro``, ``micro`` and ``micro`` with the
anti-prior intervention by default; ``bottom``, the tasks the ranking puts last, on request. In
the default mode the variants train as params.yaml says, with one SFT set for every variant where
SFT is on (``sft_select.pool=scored``: drawn from every scored task, not from the mixture), so the
variants differ only in the RL mixture; ``--mode paper`` turns SFT off whatever params.yaml says
(SuperNova's comparison is RL only). Studies (:data:`STUDIES`) are the theory's claims: the SFT
set's size, hard versus random versus easy items, answer lines versus reasoning traces (SFT only,
turned on whatever params.yaml says: the SFT-only model is rl-train's output, evaluated like any
other), and the RL mixture's size (GRPO only).

The tables (from each experiment's metrics/eval.json in ``dvc exp show --json``) give, per target
sub-task and for the mean over sub-tasks, each variant's mean pass@k over seeds with a 95%
Student-t CI across seeds (the test items fixed), the seed-paired differences of the contrasts and
each variant - base with their CIs, and the same for the teacher-forced metrics of the test
items: an interval that excludes 0 is a verdict. A sweep also writes its plot data
(``metrics/plots/study_<study>.json``: the swept value on the x-axis, a CI band).
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
from typing import Any

from .io import write_json, write_text
from .report import EVAL, table
from .stats import mean_t_ci

VARIANTS: dict[str, list[str]] = {
    "all": ["mix.strategy=all"],
    "random": ["mix.strategy=random"],
    "macro": ["mix.strategy=macro"],
    "micro-anti-prior": ["mix.strategy=micro", "mix.interventions.anti_prior=0.25"],
    "micro": ["mix.strategy=micro"],
    # the tasks the ranking puts last, against macro's first: does the ranking predict training?
    "bottom": ["mix.strategy=bottom"],
}
MODES: dict[str, list[str]] = {
    "default": ["sft_select.pool=scored"],
    "paper": ["rl_train.sft.enabled=false"],
}
#: What a run's seed sets: every random draw of training, mixing, SFT selection and a teacher's sampling.
SEED_KEYS = ("rl_train.grpo.seed", "rl_train.sft.seed", "mix.seed", "sft_select.seed", "sft_select.teacher.seed")
#: The paired differences reported (first minus second; "base" is the untrained model).
CONTRASTS = [("micro", "macro"), ("macro", "bottom")]
SFT_ONLY = ["rl_train.sft.enabled=true", "rl_train.grpo.enabled=false", "sft_select.pool=scored"]
#: SFT targets sampled from the base model itself under a chain-of-thought prompt.
TRACED = ["sft_select.targets=teacher", "sft_select.teacher.model=embedded:SmolLM2-135M-Instruct",
          "sft_select.teacher.style=cot", "sft_select.teacher.n=8", "sft_select.teacher.max_new_tokens=128"]


@dataclass(frozen=True)
class Study:
    """One claim of the data-quality theory as an experiment: its variants (``-S`` sets each),
    what every run of it also sets, the paired differences that decide it, and for a sweep the
    params key on the x-axis of its plot."""

    variants: dict[str, list[str]]
    fixed: list[str]
    contrasts: list[tuple[str, str]]
    claim: str
    x: str | None = None


#: ``python -m supernova.experiments --study NAME``. The SFT studies train SFT only (the SFT-only
#: model is rl-train's output, evaluated like any other; ``sft-grpo`` is the same SFT set followed by
#: GRPO, for the stage the theory contrasts it with), the RL study GRPO only.
STUDIES: dict[str, Study] = {
    "sft-size": Study(
        {f"sft-{n}": [f"sft_select.n_items={n}"] for n in (2, 4, 8, 16, 32, 64)}
        | {"sft-grpo-8": ["sft_select.n_items=8", "rl_train.grpo.enabled=true"]},
        SFT_ONLY, [("sft-8", "sft-64"), ("sft-2", "sft-8"), ("sft-grpo-8", "sft-8")],
        "SFT works best on a small set: the error is U-shaped in the set's size (optimum below the dimension)",
        x="sft_select.n_items"),
    "sft-order": Study(
        {"hardest": ["sft_select.order=hardest", "sft_select.band=[0.0,0.5]"],
         "random": ["sft_select.order=random", "sft_select.band=[0.0,1.0]"],
         "easiest": ["sft_select.order=easiest", "sft_select.band=[0.5,1.0]"]},
        SFT_ONLY + ["sft_select.n_items=8"], [("hardest", "random"), ("hardest", "easiest")],
        "SFT works best on examples hard for the base model; easy ones dilute"),
    "sft-targets": Study(
        {"answer": ["sft_select.targets=answer"],
         "traced": TRACED,
         "answer-same-items": TRACED + ["sft_select.teach=answer"]},
        SFT_ONLY + ["sft_select.n_items=8"], [("traced", "answer-same-items"), ("traced", "answer")],
        "process supervision (the reasoning as the target) beats the answer alone; the traces here are the "
        "base model's own reasoning (a chain-of-thought prompt, kept where the checker accepts its answer), "
        "and answer-same-items teaches the answer lines of the items that have one"),
    "rl-size": Study(
        {f"mix-{n}": [f"mix.total_size={n}"] for n in (12, 48, 96)},
        # the SFT set is not trained on; drawn from every scored task, it is the same set for every size
        ["rl_train.sft.enabled=false", "sft_select.pool=scored"], [("mix-96", "mix-12"), ("mix-48", "mix-12")],
        "RL wants large, diverse data: more mixture items at the same steps help", x="mix.total_size"),
}


def params_committed() -> bool:
    return subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "params.yaml"]).returncode == 0


def queue_runs(runs: dict[str, list[str]], jobs: int, *, poll: float = 15.0) -> None:
    """Every run not finished yet on DVC's experiment queue (``dvc exp run --queue -n <name>``, on
    top of the committed params), then ``dvc queue start -j <jobs>`` unless a worker is running
    already (it takes them), and wait until the queue is empty. A run that finished before (its
    named experiment has metrics/eval.json) or is queued or running already is not queued again,
    so an interrupted study resumes where it stopped; failed runs stop with one line naming them
    and where their logs are."""
    done = set(exp_metrics(list(runs), missing_ok=True))
    text = queue_text()
    state = queue_state(text)
    for name in (n for n in runs if state.get(n) == "Stale"):
        print(f"experiments: {name} is listed as running but no queue worker is; marked failed and queued again",
              flush=True)
        subprocess.run(["dvc", "queue", "kill", name], capture_output=True)
    pending = set(pending_tasks(state))
    for name in runs:
        if name in done or name in pending:
            print(f"experiments: {name} {'finished before' if name in done else 'is on the queue'}; not queued again",
                  flush=True)
    for name, sets in to_queue(runs, done, pending).items():
        subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], check=True)
        subprocess.run(["dvc", "exp", "remove", name], capture_output=True)  # a failed earlier try, if any
        cmd = ["dvc", "exp", "run", "--queue", "-n", name] + [a for s in sets for a in ("-S", s)]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml"], check=True)
    if len(done) == len(runs):
        return
    if active_workers(queue_text()):   # a running worker takes the new tasks; a second would share its cores
        print("experiments: a queue worker is running already; it runs these runs too", flush=True)
    else:
        subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], check=True, env=own_code_env())
    failed = wait_for_queue(list(runs), poll, jobs)
    if failed:
        raise SystemExit(f"experiments: {len(failed)} run(s) failed: {', '.join(failed)} "
                         "(`dvc queue logs <name>` shows each one's output)")


def to_queue(runs: dict[str, list[str]], done: set[str], pending: set[str]) -> dict[str, list[str]]:
    """The runs to put on the queue: neither finished nor queued or running already."""
    return {name: sets for name, sets in runs.items() if name not in done and name not in pending}


def own_code_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the queue's workers: ``PYTHONPATH`` starts with ``.``, so a stage
    (``python stages/<stage>.py``, run in its experiment's own copy of the project) imports
    ``supernova`` from that copy. Without it the editable install resolves ``supernova`` to the
    project the environment was installed from, and a queued run executes whatever code that
    working tree holds at the time, not the code its experiment recorded."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(["."] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def queue_state(text: str) -> dict[str, str]:
    """Name (or task id, for a task without a name) -> status of the tasks ``dvc queue status``
    lists (columns: task, name, created, status). A task listed as running while no worker is
    active was left so by a worker that stopped (killed, or its machine restarted): ``Stale``."""
    no_worker = active_workers(text) == 0
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] in ("Queued", "Running", "Success", "Failed"):
            named = not re.match(r"^(\d{1,2}:\d{2}|[A-Z][a-z]{2}\b)", parts[1])
            out[parts[1] if named else parts[0]] = "Stale" if no_worker and parts[-1] == "Running" else parts[-1]
    return out


def active_workers(text: str) -> int | None:
    """How many queue workers ``dvc queue status`` says are active (None: it does not say)."""
    found = re.search(r"^Worker status: (\d+) active", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def queue_text() -> str:
    return subprocess.run(["dvc", "queue", "status"], capture_output=True, text=True).stdout


def pending_tasks(state: dict[str, str]) -> list[str]:
    """The tasks of a :func:`queue_state` that are queued or running."""
    return [n for n, st in state.items() if st in ("Queued", "Running")]


def wait_for_queue(names: list[str], poll: float, jobs: int = 1) -> list[str]:
    """Wait until no task is queued or running; the names among ``names`` that failed, or whose
    worker stopped while running them. Tasks left queued with no worker active at two polls in a
    row (a worker stopped between tasks) get a new one (``dvc queue start -j <jobs>``)."""
    idle = 0
    while True:
        text = queue_text()
        state = queue_state(text)
        pending = pending_tasks(state)
        if not pending:
            return [n for n in names if state.get(n) in ("Failed", "Stale")]
        idle = idle + 1 if needs_worker(text) else 0
        if idle >= 2:
            print("experiments: tasks are queued and no queue worker is active; starting one", flush=True)
            subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], check=True, env=own_code_env())
            idle = 0
        print(f"experiments: {len(pending)} queued or running ({', '.join(sorted(pending)[:4])}"
              f"{', ...' if len(pending) > 4 else ''})", flush=True)
        time.sleep(poll)


def needs_worker(text: str) -> bool:
    """``dvc queue status`` lists a queued task and says no worker is active."""
    return active_workers(text) == 0 and "Queued" in queue_state(text).values()


def exp_metrics(names: list[str], *, missing_ok: bool = False) -> dict[str, dict[str, Any]]:
    """metrics/eval.json of each named experiment that finished, from ``dvc exp show --json``
    (with ``missing_ok``, of those that have one)."""
    out = subprocess.run(["dvc", "exp", "show", "--json", "-A"], check=True, capture_output=True, text=True).stdout
    found = finished_runs(json.loads(out), names)
    missing = [n for n in names if n not in found]
    if missing and not missing_ok:
        raise SystemExit(f"experiments: no {EVAL} for {missing} in `dvc exp show` (run them first)")
    return {n: found[n] for n in names if n in found}


def finished_runs(shown: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Name -> metrics/eval.json of the named experiments in ``dvc exp show --json`` output that
    ran to the end. A failed run is listed with an ``error``, and a running one with its queue
    executor's state ``running``, each with metrics that are not its own: neither counts."""
    found: dict[str, dict[str, Any]] = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            state = (exp.get("executor") or {}).get("state", "success")
            for rev in exp.get("revs") or []:
                name = rev.get("name")
                data = ((rev.get("data") or {}).get("metrics") or {}).get(EVAL, {}).get("data")
                if name in names and data and not rev.get("error") and state == "success" and name not in found:
                    found[name] = data
    return found


def sweep_variants(spec: str) -> dict[str, list[str]]:
    """``key=v1,v2`` → one variant per value, named ``<last key part>-<value>``."""
    key, _, values = spec.partition("=")
    if not key or not values:
        raise SystemExit(f"experiments: --sweep takes key=v1,v2,..., got {spec!r}")
    return {f"{key.rsplit('.', 1)[-1]}-{v}": [f"{key}={v}"] for v in values.split(",")}


def run_name(variant: str, seed: int, prefix: str) -> str:
    """The experiment's name: ``<variant>-s<seed>``, prefixed (by a mode other than ``default``,
    or a study's name) so that runs of a variant in two settings do not replace each other."""
    return f"{variant}-s{seed}" if prefix == "default" else f"{prefix}-{variant}-s{seed}"


def seeded(variants: dict[str, list[str]], seeds: list[int], fixed: list[str], prefix: str) -> dict[str, list[str]]:
    """One run per variant and seed (:func:`run_name`): the ``fixed`` sets, the variant's own sets
    and the seed keys, each key set once; where the variant sets a key ``fixed`` sets too, the
    variant's value is the one the run gets."""
    def merged(*groups: list[str]) -> list[str]:
        out: dict[str, str] = {}
        for s in (s for g in groups for s in g):
            key = s.split("=", 1)[0]
            out.pop(key, None)   # re-inserted last, in the order the run's sets are applied
            out[key] = s
        return list(out.values())

    return {run_name(name, seed, prefix): merged(fixed, variants[name], [f"{key}={seed}" for key in SEED_KEYS])
            for name in variants for seed in seeds}


def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f}"


def _cell(values: list[float], low: float = 0.0) -> str:
    """Mean and 95% t-CI, the bounds clipped to the metric's range: [0, 1] for a pass@k, [-1, 1]
    (``low=-1``) for a difference of two."""
    m, lo, hi = mean_t_ci(values)
    if len(values) < 2:
        return _pct(m)
    return f"{_pct(m)} [{_pct(max(lo, low))}, {_pct(min(hi, 1.0))}]"


def seed_table(results: dict[str, dict[int, dict[str, Any]]], k: int, *, mode: str = "default",
               contrasts: list[tuple[str, str]] = CONTRASTS) -> str:
    """Markdown: per sub-task and mean over sub-tasks, each variant's mean pass@k over seeds with a
    95% t-CI across seeds; then seed-paired differences (contrasts, and each variant - base)."""
    key = f"pass@{k}"
    first = next(iter(next(iter(results.values())).values()))
    subtasks = sorted(first["subtasks"])
    cols = subtasks + ["mean over sub-tasks"]

    def values(run: dict[str, Any], which: str = "trained") -> list[float]:
        return ([run["subtasks"][t][which][key]["value"] for t in subtasks]
                + [run[which][key]["mean_over_subtasks"]])

    seeds = sorted({s for runs in results.values() for s in runs})
    lines = [f"### pass@{k} (%), mean over {len(seeds)} seeds {seeds} with a 95% t-CI across seeds "
             f"(mode: {mode})", "", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
             "| base | " + " | ".join(_pct(v) for v in values(first, "base")) + " |"]
    per = {name: [values(run) for _, run in sorted(runs.items())] for name, runs in results.items()}
    for name, rows in per.items():
        lines.append(f"| {name} | " + " | ".join(_cell([r[i] for r in rows]) for i in range(len(cols))) + " |")
    base = values(first, "base")
    pairs = [(a, b) for a, b in contrasts if a in results and b in results] + [(n, "base") for n in results]
    lines += ["", f"### Paired differences of pass@{k} (percentage points, same seed; 95% t-CI across seeds)", "",
              "| difference | " + " | ".join(cols) + " | verdict (mean over sub-tasks) |",
              "|---" * (len(cols) + 2) + "|"]
    for a, b in pairs:
        common = sorted(set(results[a]) & (set(results[b]) if b != "base" else set(results[a])))
        diffs = [[x - y for x, y in zip(values(results[a][s]), base if b == "base" else values(results[b][s]))]
                 for s in common]
        cells = [_cell([d[i] for d in diffs], low=-1.0) for i in range(len(cols))]
        _, lo, hi = mean_t_ci([d[-1] for d in diffs])
        verdict = ("undecided (one seed)" if len(diffs) < 2 else f"{a} better" if lo > 0
                   else f"{b} better" if hi < 0 else "no significant difference")
        lines.append(f"| {a} − {b} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def likelihood_table(results: dict[str, dict[int, dict[str, Any]]],
                     contrasts: list[tuple[str, str]] = CONTRASTS) -> str:
    """Markdown: the teacher-forced metrics of each variant's trained model on the test items
    (metrics/eval.json's ``likelihood`` block, mean over sub-tasks), mean over seeds with a 95%
    t-CI across seeds, and the seed-paired differences of the contrasts with a verdict: a
    continuous metric moves where a sampled pass@k on the same items may not."""
    runs = [r for by_seed in results.values() for r in by_seed.values()]
    if not all("likelihood" in r for r in runs):
        return ""
    names = [m for m in next(iter(runs))["likelihood"] if all(m in r["likelihood"] for r in runs)]
    base = next(iter(runs))["likelihood"]
    lines = ["### Teacher-forced metrics on the test items (mean over sub-tasks; mean over seeds, 95% t-CI)", "",
             "| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|",
             "| base | " + " | ".join(f"{base[m]['base']:.4f}" for m in names) + " |"]

    def cell(values: list[float]) -> str:
        m, lo, hi = mean_t_ci(values)
        return f"{m:.4f}" if len(values) < 2 else f"{m:.4f} [{lo:.4f}, {hi:.4f}]"

    for name, by_seed in results.items():
        lines.append(f"| {name} | " + " | ".join(cell([r["likelihood"][m]["trained"] for r in by_seed.values()])
                                                for m in names) + " |")
    pairs = [(a, b) for a, b in contrasts if a in results and b in results]
    if pairs:
        lines += ["", "### Paired differences of the teacher-forced metrics (same seed; 95% t-CI across seeds)", "",
                  "| difference | " + " | ".join(names) + " | verdict (" + names[0] + ") |",
                  "|---" * (len(names) + 2) + "|"]
        for a, b in pairs:
            common = sorted(set(results[a]) & set(results[b]))
            diffs = {m: [results[a][s]["likelihood"][m]["trained"] - results[b][s]["likelihood"][m]["trained"]
                         for s in common] for m in names}
            _, lo, hi = mean_t_ci(diffs[names[0]])
            verdict = ("undecided (one seed)" if len(common) < 2 else f"{a} higher" if lo > 0
                       else f"{b} higher" if hi < 0 else "no significant difference")
            lines.append(f"| {a} − {b} | " + " | ".join(cell(diffs[m]) for m in names) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def sweep_rows(results: dict[str, dict[int, dict[str, Any]]], study: Study, k: int = 1) -> list[dict[str, Any]]:
    """Plot data of a sweep: per value of ``study.x`` and metric (pass@k and each teacher-forced
    metric of the trained model, mean over sub-tasks), the mean over seeds and its 95% t-CI."""
    rows = []
    for name, by_seed in results.items():
        sets = dict(s.split("=", 1) for s in study.variants[name])
        if set(sets) != {study.x}:
            continue                                   # a variant off the sweep (e.g. SFT then GRPO)
        per_metric = {f"pass@{k}": [r["trained"][f"pass@{k}"]["mean_over_subtasks"] for r in by_seed.values()]}
        for m in next(iter(by_seed.values())).get("likelihood", {}):
            per_metric[m] = [r["likelihood"][m]["trained"] for r in by_seed.values()]
        for metric, values in per_metric.items():
            mean, lo, hi = mean_t_ci(values)
            rows.append({study.x: float(sets[study.x]), "metric": metric, "mean": round(mean, 4),
                         "ci_low": None if lo != lo else round(lo, 4), "ci_high": None if hi != hi else round(hi, 4),
                         "seeds": len(values)})
    return sorted(rows, key=lambda r: (r["metric"], r[study.x]))


def finished_variants(found: dict[str, Any], variants: list[str], seeds: list[int],
                      mode: str) -> tuple[list[str], list[str]]:
    """(the variants every seed of which has finished, in order; the names of the runs missing)."""
    missing = [run_name(v, s, mode) for v in variants for s in seeds if run_name(v, s, mode) not in found]
    done = [v for v in variants if all(run_name(v, s, mode) in found for s in seeds)]
    return done, missing


def group_by_variant(found: dict[str, dict[str, Any]], variants: list[str], seeds: list[int], mode: str) -> dict:
    return {v: {s: found[run_name(v, s, mode)] for s in seeds} for v in variants}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.experiments", description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != "bottom"], choices=list(VARIANTS))
    ap.add_argument("--study", choices=list(STUDIES), help="one of the data-quality theory's claims, instead of the "
                                                            "mixing variants")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per variant (0..N-1)")
    ap.add_argument("--mode", choices=list(MODES), default="default",
                    help="default: SFT on with one SFT set for all variants; paper: RL only")
    ap.add_argument("--sweep", metavar="KEY=V1,V2,...", help="instead of the mixing variants, one per value")
    ap.add_argument("--jobs", type=int, default=1, help="queue workers (dvc queue start -j); one per machine "
                                                         "is what DVC runs reliably")
    ap.add_argument("--k", type=int, default=None, help="the k of the per-sub-task table (default: 1)")
    ap.add_argument("--out", default=None, help="the Markdown table (default: metrics/experiments.md, "
                                                "metrics/study-<study>.md for a study)")
    ap.add_argument("--table-only", action="store_true", help="do not run; tabulate existing experiments")
    ap.add_argument("--partial", action="store_true", help="with --table-only: tabulate the variants whose runs "
                                                          "have all finished, and name the runs still missing")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        raise SystemExit("experiments: --seeds must be >= 1")
    if args.partial and not args.table_only:
        raise SystemExit("experiments: --partial tabulates what exists; use it with --table-only")
    study = STUDIES.get(args.study)
    if study:
        variants, fixed, prefix, contrasts = study.variants, study.fixed, args.study, study.contrasts
    else:
        variants = sweep_variants(args.sweep) if args.sweep else {n: VARIANTS[n] for n in args.variants}
        fixed, prefix, contrasts = MODES[args.mode], args.mode, CONTRASTS
    out = args.out or (f"metrics/study-{args.study}.md" if study else "metrics/experiments.md")
    seeds = list(range(args.seeds))
    runs = seeded(variants, seeds, fixed, prefix)
    if not args.table_only:
        if not params_committed():
            raise SystemExit("experiments: params.yaml has uncommitted changes; the variants are defined "
                             "relative to the committed params, so commit them first")
        queue_runs(runs, args.jobs)
    found = exp_metrics(list(runs), missing_ok=args.partial)
    done, missing = finished_variants(found, list(variants), seeds, prefix)
    if not done:
        raise SystemExit(f"experiments: no variant has all its runs finished (missing: {', '.join(missing)})")
    contrasts = [c for c in contrasts if c[0] in done and c[1] in done]
    results = group_by_variant(found, done, seeds, prefix)
    text = (f"Claim: {study.claim}.\n\n" if study else "")
    if missing:
        text += (f"**Partial**: runs not finished: {', '.join(missing)}; their variants and contrasts are not "
                 "in the tables.\n\n")
    text += seed_table(results, args.k or 1, mode=prefix, contrasts=contrasts)
    text += "\n" + likelihood_table(results, contrasts)
    if args.k is None:   # also the largest k's per-sub-task CIs of seed 0, as before
        first = {v: r[seeds[0]] for v, r in results.items()}
        kmax = max(int(key.split("@")[1]) for key in next(iter(first.values()))["base"])
        text += "\n" + seed_table(results, kmax, mode=prefix, contrasts=contrasts) + "\n" + table(first, kmax)
    write_text(out, text)
    if study and study.x:
        write_json(f"metrics/plots/study_{args.study.replace('-', '_')}.json", sweep_rows(results, study, args.k or 1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
