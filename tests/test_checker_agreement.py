"""The shared checker judges the default profile's free-form reasoning-gym items as reasoning-gym's
own ``score_answer`` does: correct where it gives full credit, wrong where it gives none. Where it
gives partial credit (the gold answer with a trailing period or in markup: a string-similarity
score, also given to a wrong number that looks like the right one), the lenient checker decides by
the value: the gold answer with a period or in markup is correct, another number is wrong."""

from pathlib import Path

import pytest
import yaml

from supernova.answer import judge
from supernova.formats import RawExample, make_items

ROOT = Path(__file__).resolve().parents[1]


def free_form_entries() -> list[dict]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    entries = params["ingest"]["sources"] + params["ingest"]["targets"]
    return [e for e in entries if e["kind"] == "reasoning_gym" and e.get("format", "auto") != "mcq"]


def variants(answer: str) -> list[str]:
    """What a reply may hold after the marker: the answer as given, with a trailing period, in
    markup, and wrong ones."""
    out = [answer, f"{answer}.", f"**{answer}**", f"{answer} ", "", "0" if answer != "0" else "1"]
    try:
        out.append(str(float(answer) + 1))
    except ValueError:
        out.append(answer + "x")
    return out


@pytest.mark.parametrize("entry", free_form_entries(), ids=lambda e: e["name"])
def test_the_checker_agrees_with_reasoning_gyms_score_answer(entry):
    import reasoning_gym

    ds = reasoning_gym.create_dataset(entry["name"], size=40, seed=3, **(entry.get("config") or {}))
    examples = [RawExample(question=ds[i]["question"], answers=[str(ds[i]["answer"])], meta={"i": i})
                for i in range(len(ds))]
    items, fmt = make_items(examples, source="s", task=entry["name"], skill="x", fmt=entry.get("format", "auto"))
    if fmt.startswith("mcq"):
        pytest.skip(f"{entry['name']} is posed as multiple choice here ({fmt})")
    decided = disagree = partial = 0
    for it in items:
        truth = ds[it.meta["i"]]
        for text in variants(it.answer):
            ours = judge(f"The answer is: {text}", answer=it.answer, answer_type=it.answer_type,
                         choices=it.choices, meta={**it.meta, "checker": "lenient"}).correct
            theirs = float(ds.score_answer(text, truth)) if text.strip() else 0.0
            if 0.0 < theirs < 1.0:       # partial credit: the lenient checker decides by the value
                partial += 1
                assert ours == (text.strip(".* ") == it.answer), (text, it.answer, theirs)
                continue
            decided += 1
            disagree += ours != (theirs == 1.0)
    assert decided >= 150 and disagree == 0, f"{disagree} of {decided} full- or no-credit verdicts differ"
