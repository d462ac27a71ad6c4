import pytest

from supernova.errors import ParamsError
from supernova.sources import load_entry


def test_generator_entry_gives_items_with_skill_and_format():
    [t] = load_entry({"kind": "reasoning_gym", "name": "syllogism", "n_items": 12, "format": "mcq"}, "x", 0)
    assert t.task == "syllogism" and t.format == "mcq_labels" and len(t.items) == 12
    assert t.items[0].skill == "logic" and t.items[0].choices == ["No", "Yes"]
    [again] = load_entry({"kind": "reasoning_gym", "name": "syllogism", "n_items": 12, "format": "mcq"}, "x", 0)
    assert [i.uid for i in again.items] == [i.uid for i in t.items]


def test_rename_cap_and_config():
    [t] = load_entry({"kind": "reasoning_gym", "name": "basic_arithmetic", "task": "arith_easy", "n_items": 10,
                      "max_items": 4, "config": {"min_terms": 2, "max_terms": 2}}, "x", 0)
    assert t.task == "arith_easy" and len(t.items) == 4 and t.format == "numeric"


@pytest.mark.parametrize("entry,field", [
    ({"kind": "reasoning_gym", "name": "no_such_generator"}, "field x.name"),
    ({"kind": "reasoning_gym", "name": "syllogism", "sizee": 3}, "field x.sizee"),
    ({"kind": "nope"}, "field x.kind"),
    ({"kind": "reasoning_gym", "name": "basic_arithmetic", "config": {"bogus": 1}}, "field x.config"),
])
def test_bad_entries_name_the_field(entry, field):
    with pytest.raises(ParamsError, match=field):
        load_entry(entry, "x", 0)


def test_items_are_the_same_under_any_hash_seed_of_the_calling_process():
    """isomorphic_strings iterates over sets of characters: made in the calling process, its items
    follow that process's PYTHONHASHSEED."""
    import os
    import subprocess
    import sys

    code = ("from supernova.sources import load_entry\n"
            "[t] = load_entry({'kind': 'reasoning_gym', 'name': 'isomorphic_strings', 'n_items': 8,"
            " 'config': {'min_string_length': 2, 'max_string_length': 4}}, 'x', 0)\n"
            "print([i.uid for i in t.items])")
    uids = {h: subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": h}).stdout for h in ("1", "2", "0")}
    assert uids["1"] == uids["2"] == uids["0"] and uids["0"].count(",") == 7
