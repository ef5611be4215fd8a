"""The house (``book/architecture.md``): a flat core that imports no wing, and wings in layers.

Every module's imports are read from its source (``ast``: lazy imports inside functions count
too) and resolved to module names. The core (the flat top level of ``diffusion_lab`` and ``viz/``)
may import only the core; a wing may import the core and the wings below it:

    core  <-  worlds  <-  course  <-  export, classroom

The package facade (``__init__``), ``cli`` and ``__main__`` sit on top and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import diffusion_lab as dl

PACKAGE = Path(dl.__file__).resolve().parent
TOP = {"diffusion_lab", "diffusion_lab.cli", "diffusion_lab.__main__"}
CORE = {"ar_sampling", "block_diffusers", "block_diffusion", "block_sampling", "categorical",
        "checkpoint", "data", "denoiser", "distributed", "edit_flows", "edit_model",
        "edit_sampling", "edit_trajectory", "metrics", "models", "noise", "objectives",
        "reference_samplers", "registry", "runtime", "sampling", "settings", "stats",
        "strategies", "strategies_revision",
        "tokenization", "train", "trajectory"}
# each wing, and the wings it may import (the core always)
WINGS = {"worlds": set(), "course": {"worlds"}, "export": {"worlds", "course"},
         "classroom": {"worlds", "course"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module ``name`` imports, anywhere in its source, as absolute names; ``from x import
    y`` counts as ``x.y`` when ``x.y`` is a module of the package, else as ``x``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{module}.{alias.name}"
                found.add(full if full in MODULES else module)
    return {m for m in found if m == "diffusion_lab" or m.startswith("diffusion_lab.")}


def place(name: str) -> str:
    """"top", "core" or the wing a module belongs to."""
    if name in TOP:
        return "top"
    first = name.split(".")[1]
    return "core" if first in CORE or first == "viz" else first


def test_the_top_level_lists_the_core_and_the_wings():
    top_files = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "cli"}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert top_files == CORE, "a new top-level module is core: add it to CORE (and the page)"
    assert folders == {"viz", *WINGS}, "a new folder is a wing: add it to WINGS (and the page)"


def test_every_module_has_a_place():
    for name in MODULES:
        assert place(name) in {"top", "core", *WINGS}, name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if place(n) == "core"))
def test_the_core_imports_no_wing(name):
    """Not at import time, not lazily inside a function, not through the package facade."""
    bad = sorted(m for m in imports(name) if place(m) != "core")
    assert not bad, f"{name} (core) imports {bad}: move the code into a wing, or invert the call"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if place(n) in WINGS))
def test_a_wing_imports_the_core_and_the_wings_below_it(name):
    wing = place(name)
    allowed = {"core", wing, *WINGS[wing]}
    bad = sorted(m for m in imports(name) if place(m) not in allowed)
    assert not bad, f"{name} ({wing}) imports {bad}; {wing} may import {sorted(allowed)}"


def test_the_import_reader_sees_lazy_and_relative_imports():
    assert "diffusion_lab.sampling" in imports("diffusion_lab.worlds.qa")  # inside ask()
    assert "diffusion_lab.course.zoo" in imports("diffusion_lab.export.onnx")  # inside export()
    assert "diffusion_lab.tokenization" in imports("diffusion_lab.worlds.grammar")  # ..
    assert "diffusion_lab.runtime" in imports("diffusion_lab.train")


def test_dl_exports_a_short_list():
    assert len(dl.__all__) <= 25
    for name in dl.__all__:
        assert getattr(dl, name) is not None, name


def test_the_page_draws_every_module_and_sits_in_the_back_matter():
    page = (PACKAGE.parent / "book" / "architecture.md").read_text()
    toc = (PACKAGE.parent / "_toc.yml").read_text()
    assert "file: book/architecture" in toc.split("caption: Back matter")[1]
    for name in MODULES:  # the core's modules and each wing's (not their own subpackages')
        parts = name.split(".")
        if place(name) != "top" and len(parts) == (2 if place(name) == "core" else 3):
            assert parts[-1] in page, f"book/architecture.md does not name {name}"
