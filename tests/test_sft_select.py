"""sft-select: band filter, loss/IFD scoring, diversity across groups, manifest."""

import numpy as np
import pandas as pd
import pytest

from supernova.errors import InputError
from supernova.model import load_for_training
from supernova.prompts import PromptConfig
from supernova.schema import SFT, conform, items_frame
from supernova.sft_select import SFTSelectConfig, answer_losses, manifest, round_robin, select, targeted
from supernova.sources import load_entry
from supernova.traces import answer_found, self_found


def probed():
    frames = []
    for name in ("syllogism", "basic_arithmetic", "family_relationships"):
        [t] = load_entry({"kind": "reasoning_gym", "name": name, "size": 8, "format": "mcq"}, "x", 0)
        df = items_frame(t.items)
        df["n"], df["correct"] = 4, [i % 5 for i in range(len(df))]
        df["correct"] = df["correct"].clip(upper=4)
        df["pass_rate"] = df["correct"] / 4
        df["kept"], df["drop_reason"] = True, ""
        df["correct_samples"] = [[] for _ in range(len(df))]
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    model, tok = load_for_training(tiny_model)
    return model.eval(), tok


def test_selection_respects_band_size_and_spreads_over_tasks(tiny):
    model, tok = tiny
    cfg = SFTSelectConfig(size=6, band=(0.0, 0.5))
    out = select(probed(), model, tok, PromptConfig(), cfg)
    assert len(out) == 6 and out["pass_rate"].max() <= 0.5
    assert out["task"].value_counts().to_dict() == {"basic_arithmetic": 2, "family_relationships": 2, "syllogism": 2}
    sft_set, _ = targeted(out, answer_found(out), cfg)
    conform(sft_set, SFT)  # with its targets, has every SFT column
    assert sft_set["uid"].tolist() == out["uid"].tolist()
    assert np.all(out["ifd"] > 0)
    again = select(probed(), model, tok, PromptConfig(), cfg)
    assert out["uid"].tolist() == again["uid"].tolist()


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


def test_clusters_and_empty_band(tiny):
    model, tok = tiny
    out = select(probed(), model, tok, PromptConfig(), SFTSelectConfig(size=4, diversity="cluster", clusters=3,
                                                                       score="ifd"))
    assert len(out) == 4
    sft_set, counts = targeted(out, answer_found(out), SFTSelectConfig(size=4))
    man = manifest(SFTSelectConfig(size=4), out, sft_set, counts, 20, "f", "h", prompt_style="direct")
    assert man["size"] == 4 and sum(man["per_task"].values()) == 4 and len(man["items"]) == 4
    assert man["targets"] == "answer" and all(i["target"].startswith("The answer is: (") for i in man["items"])
    with pytest.raises(InputError, match="sft_select.band"):
        select(probed(), model, tok, PromptConfig(), SFTSelectConfig(band=(0.6, 0.7)))


def test_the_selection_is_the_same_whatever_the_targets(tiny):
    """Targets are attached after the selection, so answer-only and traced sets are drawn from the
    same chosen items; an item without a self trace is left out, not replaced."""
    model, tok = tiny
    data = probed()
    data["correct_samples"] = [[f"Because.\nThe answer is: ({a})"] * int(c) for a, c in zip(data["answer"],
                                                                                         data["correct"])]
    chosen = {t: select(data, model, tok, PromptConfig(), SFTSelectConfig(size=6, targets=t))
              for t in ("answer", "self")}
    assert chosen["answer"]["uid"].tolist() == chosen["self"]["uid"].tolist()
    traced, _ = targeted(chosen["self"], self_found(chosen["self"]), SFTSelectConfig(size=6, targets="self"))
    assert traced["uid"].tolist() == chosen["self"].loc[chosen["self"]["correct"] > 0, "uid"].tolist()
