"""Pictures of the declared plots, rendered without a network: SVGs from DVC's filled specs, an HTML page."""

import json
import re

import pytest
import yaml

from conftest import make_project
from supernova.errors import PipelineError
from supernova.plots import declared_plots, file_name, render

CURVE = [{"k": 1, "base": 0.25, "trained": 0.5}, {"k": 2, "base": 0.375, "trained": 0.625}]
BARS = [{"subtask": t, "model": m, "pass@1": v}
        for t, vals in (("course_schedule", (0.25, 0.5)), ("leg_counting", (0.125, 0.75)))
        for m, v in zip(("base", "trained"), vals)]


def labels(svg: str) -> list[str]:
    return re.findall(r'aria-label="([^"]*)"', svg)


@pytest.fixture
def evaluated(tmp_path):
    """The tiny project with the evaluate stage's plot data written and nothing else run."""
    p = make_project(tmp_path / "project")
    (p / "metrics" / "plots").mkdir(parents=True)
    (p / "metrics" / "plots" / "eval_passk.json").write_text(json.dumps(CURVE))
    (p / "metrics" / "plots" / "eval_subtasks.json").write_text(json.dumps(BARS))
    return p


def test_declared_plots_are_the_top_level_plot_ids(evaluated):
    ids = declared_plots(evaluated / "dvc.yaml")
    top = [next(iter(e)) for e in yaml.safe_load((evaluated / "dvc.yaml").read_text())["plots"]]
    assert ids == top and "pass@k, base vs trained" in ids and "utility, source task x target sub-task" in ids


def test_svgs_carry_the_plotted_data_and_axis_titles_and_the_page_loads_nothing(evaluated):
    written, missing = render(evaluated)
    out = evaluated / "plots"
    assert {p.name for p in written} == {"pass-k-base-vs-trained.svg",
                                         "pass-1-per-target-sub-task-base-vs-trained.svg", "index.html"}
    assert {p.name for p in out.iterdir()} == {p.name for p in written}
    # plots whose data does not exist yet are named, with the missing file
    assert "GRPO reward per step" in missing and "reward.tsv" in missing["GRPO reward per step"]
    assert "mean utility per source task" in missing

    curve = labels((out / "pass-k-base-vs-trained.svg").read_text())
    assert any(label.startswith("X-axis titled 'k' for a linear scale") for label in curve)
    assert any(label.startswith("Y-axis titled 'pass@k (mean over sub-tasks)'") for label in curve)
    for row in CURVE:
        for model in ("base", "trained"):
            assert f"k: {row['k']}; pass@k (mean over sub-tasks): {row[model]}; rev: workspace; field: {model}" in curve

    svg = (out / "pass-1-per-target-sub-task-base-vs-trained.svg").read_text()
    assert svg.count('aria-roledescription="bar"') == len(BARS)
    bars = labels(svg)
    assert any(label.startswith("X-axis titled 'pass@1'") for label in bars)
    assert any(label.startswith("Y-axis titled 'subtask'") and "course_schedule, leg_counting" in label for label in bars)
    for row in BARS:
        assert any(f"pass@1: {row['pass@1']}" in label and row["subtask"] in label and row["model"] in label
                   for label in bars), row

    page = (out / "index.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("data:image/svg+xml;base64,") == 2 and "GRPO reward per step" in page


def test_a_later_render_leaves_no_picture_of_an_earlier_run(evaluated):
    render(evaluated)
    (evaluated / "metrics" / "plots" / "eval_subtasks.json").unlink()
    written, missing = render(evaluated)
    assert sorted(p.name for p in (evaluated / "plots").iterdir()) == ["index.html", "pass-k-base-vs-trained.svg"]
    assert "pass@1 per target sub-task, base vs trained" in missing


def test_no_plot_data_is_one_line_error(tmp_path):
    p = make_project(tmp_path / "project")
    with pytest.raises(PipelineError, match=r"no plot has its data yet \(run `dvc repro` first\)"):
        render(p)
    assert not (p / "plots").exists()


def test_file_names():
    assert file_name("pass@1 per target sub-task, base vs trained") == "pass-1-per-target-sub-task-base-vs-trained.svg"
