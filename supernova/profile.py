"""Apply a params profile: deep-merge a YAML overlay into params.yaml (lists are replaced).

    python -m supernova.profile params/superni-bbh.yaml      # then: dvc repro

The result is an ordinary params.yaml change, so it shows up in ``git diff`` and ``dvc params diff``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import ParamsError
from .io import read_yaml, write_yaml


def merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return overlay


def apply(profile: str, params: str = "params.yaml") -> dict:
    overlay = read_yaml(profile)
    if not isinstance(overlay, dict):
        raise ParamsError("a profile must be a mapping of params sections", file=profile)
    merged = merge(read_yaml(params), overlay)
    write_yaml(params, merged)
    return merged


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
