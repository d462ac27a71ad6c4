"""Apply a params profile: deep-merge a YAML overlay into params.yaml (lists are replaced).

    python -m supernova.profile params/superni-bbh.yaml      # then: dvc repro

The result is an ordinary params.yaml change, so it shows up in ``git diff`` and ``dvc params diff``.
params.yaml is edited in place through a round-trip YAML parser: its comments, key order and
layout survive, and the profile's own comments come along with the keys it adds.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import ParamsError
from .io import atomic_path, read_yaml


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` deep-merged into ``base`` in place where both are mappings (lists are
    replaced); returns the merged value."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        for k, v in overlay.items():
            if k in base:
                base[k] = merge(base[k], v)
            else:
                base[k] = v
                comment = getattr(overlay, "ca", None) and overlay.ca.items.get(k)
                if comment:  # a key the profile adds keeps the profile's comment on it
                    base.ca.items[k] = comment
        return base
    return overlay


def _round_trip():
    from ruamel.yaml import YAML

    y = YAML()  # round-trip mode: comments and order are kept
    y.preserve_quotes = True
    y.width = 100
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def apply(profile: str, params: str = "params.yaml") -> dict:
    if not isinstance(read_yaml(profile), dict):
        raise ParamsError("a profile must be a mapping of params sections", file=profile)
    y = _round_trip()
    with open(params, encoding="utf-8") as f:
        base = y.load(f)
    with open(profile, encoding="utf-8") as f:
        overlay = y.load(f)
    merged = merge(base, overlay)
    with atomic_path(params) as tmp, open(tmp, "w", encoding="utf-8") as f:
        y.dump(merged, f)
    return read_yaml(params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.profile", description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="YAML overlay, e.g. params/superni-bbh.yaml")
    ap.add_argument("--params", default="params.yaml", help="params file to update (default: params.yaml)")
    args = ap.parse_args(argv)
    try:
        apply(args.profile, args.params)
    except (ParamsError, OSError) as e:
        print(f"profile: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
