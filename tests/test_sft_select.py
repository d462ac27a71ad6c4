"""sft-loss and sft-select: loss/IFD of every probed item, band filter, diversity across groups, manifest."""

import numpy as np
import pandas as pd
import pytest

from supernova.errors import InputError
from supernova.model import load_for_training
from supernova.prompts import PromptConfig
from supernova.schema import SFT, conform, items_frame
from supernova.sft_select import (SFT_LOSS, SFTSelectConfig, answer_losses, item_losses, manifest, round_robin, select,
                                  targeted)
from supernova.sources import load_entry
from supernova.traces import answer_found, self_found


def probed():
    frames = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "n_items": 8, "format": "mcq"}, "x", 0)
        df = items_frame(t.items)
        df["n"], df["correct"] = 4, [i % 5 for i in range(len(df))]
        df["correct"] = df["correct"].clip(upper=4)
        df["pass_rate"] = df["correct"] / 4
        df["kept"], df["drop_reason"] = True, ""
        df["correct_samples"] = [[] for _ in range(len(df))]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def losses(tiny_model):
    """sft-loss's rows for :func:`probed`, from the tiny model."""
    model, tok = load_for_training(tiny_model)
    return item_losses(probed(), model.eval(), tok, PromptConfig(), batch_size=5, device="cpu")


def test_item_losses_cover_every_probed_item_in_its_schema(losses):
    conform(losses, SFT_LOSS)
    assert losses["uid"].tolist() == probed()["uid"].tolist()
    assert np.all(losses["loss"] > 0) and np.all(losses["ifd"] > 0)


def test_selection_respects_band_size_and_spreads_over_tasks(losses):
    cfg = SFTSelectConfig(n_items=6, band=(0.0, 0.5))
    out = select(probed(), losses, cfg)
    assert len(out) == 6 and out["pass_rate"].max() <= 0.5
    assert out["task"].value_counts().to_dict() == {"basic_arithmetic": 2, "family_relationships": 2, "syllogism": 2}
    sft_set, _ = targeted(out, answer_found(out), cfg)
    conform(sft_set, SFT)  # with its targets, has every SFT column
    assert sft_set["uid"].tolist() == out["uid"].tolist()
    ranked = losses.set_index("uid").loc[out["uid"]]
    assert out["loss"].tolist() == ranked["loss"].tolist() == out["sft_score"].tolist()
    # within each task, the hardest candidates of the band, highest loss first
    band = probed().merge(losses[["uid", "loss"]], on="uid").query("pass_rate <= 0.5")
    for task, chosen in out.groupby("task", sort=False):
        assert chosen["loss"].tolist() == band[band["task"] == task]["loss"].nlargest(2).tolist()


def test_a_candidate_without_a_loss_row_is_a_one_line_error(losses):
    with pytest.raises(InputError, match=r"data/sft_loss/losses.parquet: task \w+: field uid: 1 candidate\(s\) have no "
                                         r"loss row .*rerun sft-loss"):
        select(probed(), losses.iloc[1:], SFTSelectConfig(n_items=6, band=(0.0, 1.0)))


def test_highest_score_first_within_a_group():
    c = pd.DataFrame({"uid": list("abcd"), "sft_score": [0.1, 0.9, 0.5, 0.7], "g": ["x", "x", "y", "y"]})
    out = round_robin(c.set_index(pd.RangeIndex(4)), c["g"], 3, None)
    assert out["uid"].tolist() == ["b", "d", "a"]
    assert round_robin(c, c["g"], 4, 1)["uid"].tolist() == ["b", "d"]


def test_easiest_order_takes_the_lowest_score_first_and_random_is_seeded():
    c = pd.DataFrame({"uid": list("abcdef"), "sft_score": [0.1, 0.9, 0.5, 0.7, 0.3, 0.2], "g": ["x"] * 3 + ["y"] * 3})
    assert round_robin(c, c["g"], 2, None, "easiest")["uid"].tolist() == ["a", "f"]
    r = round_robin(c, c["g"], 4, None, "random", seed=3)
    assert r["uid"].tolist() == round_robin(c, c["g"], 4, None, "random", seed=3)["uid"].tolist()
    draws = {tuple(round_robin(c, c["g"], 2, None, "random", seed=s)["uid"]) for s in range(20)}
    assert len(draws) > 1                        # the order is the seed's, not the score's


def test_loss_is_higher_for_a_wrong_gold_answer(smol_model):
    """The real model: a wrong gold answer costs more than the right one, and the question makes
    the right answer cheaper (the IFD ratio's numerator below its denominator)."""
    from supernova.schema import Item

    model, tok = load_for_training(smol_model)
    model.eval()
    right = items_frame([Item("s", "add", "arithmetic", f"What is {a} + {b}?", str(a + b), [], "numeric")
                         for a, b in ((2, 2), (3, 4), (10, 5), (6, 1))])
    wrong = right.assign(answer=[str(int(x) + 3) for x in right["answer"]])
    with_q = answer_losses(model, tok, right, PromptConfig(), with_question=True)
    assert with_q.shape == (4,)
    assert (answer_losses(model, tok, wrong, PromptConfig(), with_question=True) > with_q).all()
    assert (answer_losses(model, tok, right, PromptConfig(), with_question=False) > with_q).all()


def test_clusters_and_empty_band(losses):
    out = select(probed(), losses, SFTSelectConfig(n_items=4, diversity="cluster", clusters=3, score="ifd"))
    assert len(out) == 4
    sft_set, counts = targeted(out, answer_found(out), SFTSelectConfig(n_items=4))
    man = manifest(SFTSelectConfig(n_items=4), out, sft_set, counts, 20, "f", "h", prompt_style="direct")
    assert man["size"] == 4 and sum(man["per_task"].values()) == 4 and len(man["items"]) == 4
    assert man["targets"] == "answer" and all(i["target"].startswith("The answer is: (") for i in man["items"])
    with pytest.raises(InputError, match="sft_select.band"):
        select(probed(), losses, SFTSelectConfig(band=(0.6, 0.7)))


def test_the_selection_is_the_same_whatever_the_targets(losses):
    """Targets are attached after the selection, so answer-only and traced sets are drawn from the
    same chosen items; an item without a self trace is left out, not replaced."""
    data = probed()
    data["correct_samples"] = [[f"Because.\nThe answer is: ({a})"] * int(c) for a, c in zip(data["answer"],
                                                                                         data["correct"])]
    chosen = {t: select(data, losses, SFTSelectConfig(n_items=6, targets=t))
              for t in ("answer", "self")}
    assert chosen["answer"]["uid"].tolist() == chosen["self"]["uid"].tolist()
    traced, _ = targeted(chosen["self"], self_found(chosen["self"]), SFTSelectConfig(n_items=6, targets="self"))
    assert traced["uid"].tolist() == chosen["self"].loc[chosen["self"]["correct"] > 0, "uid"].tolist()

