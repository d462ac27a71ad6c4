"""dvc.yaml lists every dependency a stage has: each module of ``supernova/`` in the stage
script's transitive import closure, and every params key it reads. A code or params change that
dvc.yaml does not know about would leave ``dvc status`` clean while outputs are stale.

Which fields of a config a stage reads is checked where it happens: a stage's params hold only
what it declares, and reading any other field fails (``supernova.config.StageParams``); here, that
every section a stage builds a config from is declared at least in part."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from supernova.config import EXECUTION_SECTIONS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "supernova"


def module_file(module: str) -> Path | None:
    """The file of ``supernova.x.y`` (a module or a package's ``__init__.py``), None if neither."""
    base = ROOT.joinpath(*module.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """``supernova`` modules that ``path`` imports anywhere (top level or inside functions)."""
    name = module_name(path) if path.is_relative_to(ROOT / PACKAGE) else ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)       # `from pkg import module`
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m)}


def closure(script: Path) -> set[Path]:
    """Every file of ``supernova/`` that running ``script`` can execute (parents' ``__init__``
    included: importing ``a.b`` runs ``a/__init__.py``)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for mod in imported_modules(todo.pop()):
            parts = mod.split(".")
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return seen


def stages() -> dict[str, dict]:
    """dvc.yaml's stages, a ``foreach`` stage as its ``do`` body."""
    return {name: st.get("do", st) for name, st in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


def script_of(stage: dict) -> Path:
    [script] = [w for w in stage["cmd"].split() if w.endswith(".py")]
    return ROOT / script


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def missing_code_deps(stage: dict) -> list[str]:
    deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
    needed = {script_of(stage)} | closure(script_of(stage))
    return sorted(str(f.relative_to(ROOT)) for f in needed if not covered(str(f.relative_to(ROOT)), deps))


def params_read(files: set[Path]) -> tuple[set[str], set[str]]:
    """(keys the code reads whole: ``params["key"]``, ``params.get("key")``; sections it builds a
    config from with ``from_section(Cls, params, "section")``, which reads the declared part)."""
    keys, sections = set(), set()
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        # params["a"]["b"] reads a.b, not all of a
        nested = {id(node.value): f"{node.value.slice.value}.{node.slice.value}" for node in ast.walk(tree)
                  if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                  and isinstance(node.value, ast.Subscript) and getattr(node.value.value, "id", None) == "params"
                  and isinstance(node.value.slice, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "from_section":
                sections.add(node.args[2].value)
            elif (isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "params"
                  and isinstance(node.slice, ast.Constant)):
                keys.add(nested.get(id(node), node.slice.value))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                  and getattr(node.func.value, "id", None) == "params" and isinstance(node.args[0], ast.Constant)):
                keys.add(node.args[0].value)
    return keys, sections


def missing_params(stage: dict) -> list[str]:
    """params a stage reads but does not declare (a config's section: not even in part);
    execution-only sections (``compute``) are read by design without being declared."""
    declared = [p for p in stage.get("params", []) if isinstance(p, str)]
    keys, sections = params_read({script_of(stage)} | closure(script_of(stage)))
    missing = {k for k in keys if not any(k == d or k.startswith(d + ".") for d in declared)}
    missing |= {s for s in sections if not any(s == d or s.startswith(d + ".") or d.startswith(s + ".")
                                               for d in declared)}
    return sorted(k for k in missing if k.split(".")[0] not in EXECUTION_SECTIONS)


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_imported_module_is_a_dependency(name):
    missing = missing_code_deps(stages()[name])
    assert not missing, f"stage {name} imports {missing}, which dvc.yaml does not list in its deps"


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_code_dependency_exists(name):
    stage = stages()[name]
    deps = [d for d in stage.get("do", stage).get("deps", []) if d.startswith(("supernova", "stages"))]
    gone = [d for d in deps if not (ROOT / d).exists()]
    assert not gone, f"stage {name} lists {gone} in its deps, which do not exist"


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_param_read_is_declared(name):
    missing = missing_params(stages()[name])
    assert not missing, f"stage {name} reads params {missing}, which dvc.yaml does not list in its params"


def test_the_check_sees_a_removed_dependency_and_a_lazy_import():
    """The closure follows imports inside functions (the gradient proxy is imported lazily)."""
    score = dict(stages()["score"])
    assert "supernova/gradproxy.py" not in missing_code_deps(score)
    score["deps"] = [d for d in score["deps"] if d != "supernova/gradproxy.py"]
    assert missing_code_deps(score) == ["supernova/gradproxy.py"]
    rl = dict(stages()["rl-train"])
    rl["params"] = [p for p in rl["params"] if p != "prompt"]
    assert missing_params(rl) == ["prompt"]


def test_ingest_depends_on_the_data_root_and_entries_must_lie_under_it():
    assert "${data_root}" in stages()["ingest"]["deps"] and "data_root" in stages()["ingest"]["params"]
