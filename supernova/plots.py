"""Pictures of the pipeline's plots that need no network: one SVG per plot declared in dvc.yaml's
top-level ``plots:`` and an HTML page that carries them inline.

``dvc plots show`` writes a page that loads vega, vega-lite and vega-embed from a CDN, so it is
blank offline. Here DVC still fills its templates with the plot data (``dvc plots show --json``);
vl-convert renders each filled Vega-Lite spec to SVG on this machine.

    python -m supernova.plots [--out plots]   # plots/<name>.svg and plots/index.html
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import vl_convert
import yaml

from .errors import PipelineError
from .io import atomic_path

OUT = "plots"
PAGE = "index.html"


def declared_plots(dvc_yaml: str | Path = "dvc.yaml") -> list[str]:
    """The ids of the plots in dvc.yaml's top-level ``plots:`` list, in their order (an entry is
    ``{id: definition}`` or a bare data file path)."""
    return list(data_files(dvc_yaml))


def data_files(dvc_yaml: str | Path = "dvc.yaml") -> dict[str, list[str]]:
    """{plot id: the data files its ``y`` names} for dvc.yaml's top-level ``plots:`` (a bare path
    entry is its own data file)."""
    with open(dvc_yaml, encoding="utf-8") as f:
        entries = (yaml.safe_load(f) or {}).get("plots") or []
    out: dict[str, list[str]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            out[str(entry)] = [str(entry)]
            continue
        for name, spec in entry.items():
            y = (spec or {}).get("y", name)
            out[name] = list(y) if isinstance(y, (dict, list)) else [str(y)]
    return out


def absent_data(cwd: str | Path = ".") -> dict[str, str]:
    """{plot id: why it has no data yet} for the declared plots with a data file not written (a
    stage or command that writes it has not run)."""
    cwd = Path(cwd)
    out = {}
    for name, files in data_files(cwd / "dvc.yaml").items():
        gone = [f for f in files if not (cwd / f).exists()]
        if gone:
            out[name] = f"no data yet: {', '.join(gone)} not written"
    return out


def filled_specs(ids: list[str], cwd: str | Path = ".") -> tuple[dict[str, dict], dict[str, str]]:
    """({id: Vega-Lite spec with its data inline}, {id: why it could not be filled}) from
    ``dvc plots show --json`` in the workspace at ``cwd``. A plot with any data file missing or
    unreadable is left out whole, not drawn from part of its data."""
    res = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json", *ids], cwd=cwd,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise PipelineError(f"dvc plots show failed: {' '.join((res.stderr or res.stdout).split())}")
    shown = json.loads(res.stdout)
    missing: dict[str, str] = {}
    for err in shown.get("errors", []):
        name = err.get("name")
        if name is None:     # an error that is about no single plot (e.g. dvc.yaml cannot be resolved)
            raise PipelineError(f"dvc plots show: {err.get('type')}: {err.get('msg')}")
        missing.setdefault(name, f"{err.get('source', '')}: {err.get('msg')}".lstrip(": "))
    specs = {}
    for name in ids:
        vega = [r["content"] for r in shown.get("data", {}).get(name, []) if r.get("type") == "vega"]
        if name not in missing and len(vega) == 1:
            specs[name] = vega[0]
        elif name not in missing:
            missing[name] = f"dvc plots show gave {len(vega)} Vega-Lite specs, expected one"
    return specs, missing


def file_name(plot_id: str) -> str:
    """The SVG's file name for a plot id: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", plot_id.lower()).strip("-") + ".svg"


def page(svgs: dict[str, str], missing: dict[str, str]) -> str:
    """An HTML page with every SVG inline as a data URI (no script, nothing loaded from elsewhere;
    data URIs keep the SVGs' internal ids apart), and the plots that could not be drawn."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>supernova-pipeline plots</title>',
             "<style>body{font-family:sans-serif;margin:2em}figure{margin:0 0 2em 0}"
             "img{max-width:100%;height:auto}</style></head><body>", "<h1>Plots</h1>"]
    for name, svg in svgs.items():
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/svg+xml;base64,{data}">'
                     f"<figcaption>{html.escape(name)} ({file_name(name)})</figcaption></figure>")
    if missing:
        parts.append("<h2>Not drawn</h2><ul>")
        parts += [f"<li>{html.escape(n)}: {html.escape(why)}</li>" for n, why in missing.items()]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(cwd: str | Path = ".", out: str | Path = OUT) -> tuple[list[Path], dict[str, str]]:
    """Render every plot declared in ``cwd``'s dvc.yaml to ``out/<name>.svg`` and write
    ``out/index.html``; ``out`` is replaced whole, so no picture of an earlier run stays behind.
    Returns (the files written, {plot id: why it was not drawn})."""
    cwd = Path(cwd)
    absent = absent_data(cwd)
    specs, missing = filled_specs([n for n in declared_plots(cwd / "dvc.yaml") if n not in absent], cwd=cwd)
    missing = {**absent, **missing}
    if not specs:
        raise PipelineError("no plot has its data yet (run `dvc repro` first): "
                            + "; ".join(f"{n}: {why}" for n, why in missing.items()))
    svgs: dict[str, str] = {name: vl_convert.vegalite_to_svg(spec) for name, spec in specs.items()}
    out = cwd / out
    with atomic_path(out, is_dir=True) as tmp:
        tmp.mkdir(exist_ok=True)
        for name, svg in svgs.items():
            (tmp / file_name(name)).write_text(svg, encoding="utf-8")
        (tmp / PAGE).write_text(page(svgs, missing), encoding="utf-8")
    return [out / file_name(n) for n in svgs] + [out / PAGE], missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m supernova.plots", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=OUT, help=f"folder for the SVGs and {PAGE} (default: {OUT}/)")
    args = ap.parse_args(argv)
    try:
        written, missing = render(out=args.out)
    except PipelineError as e:
        print(f"plots: error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    for name, why in missing.items():   # data not written yet is no error; data DVC cannot read is
        print(f"plots: not drawn: {name}: {why}", file=sys.stdout if why.startswith("no data yet") else sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
