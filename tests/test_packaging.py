"""The package builds with no deprecation of our own making (PEP 639 licence metadata).

setuptools announced that a ``project.license`` TOML table stops building on 2027-02-18; it
only *warns* until then, so a plain build passes the day before it breaks.  This test builds the
wheel with the build backend's deprecations turned into errors, so the next such notice fails
CI the day it appears.  It calls the backend in a subprocess, offline, without build isolation
(the test extra brings ``setuptools>=77``), on a copy of the files a wheel is made of.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What `pip wheel .` reads: the metadata, its readme and licence, and the package.
WHEEL_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "diffusion_lab")

BUILD = textwrap.dedent("""
    import sys, warnings
    from setuptools.warnings import SetuptoolsDeprecationWarning
    for category in (SetuptoolsDeprecationWarning, DeprecationWarning,
                     PendingDeprecationWarning, FutureWarning):
        warnings.simplefilter("error", category)
    from setuptools import build_meta
    print(build_meta.build_wheel(sys.argv[1]))
""")


def _build(tmp_path: Path, pyproject: str | None = None) -> subprocess.CompletedProcess:
    src = tmp_path / "src"
    src.mkdir()
    for name in WHEEL_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    if pyproject is not None:
        (src / "pyproject.toml").write_text(pyproject)
    out = tmp_path / "dist"
    out.mkdir()
    return subprocess.run([sys.executable, "-c", BUILD, str(out)], cwd=src, capture_output=True,
                          text=True, timeout=300)


def _backend_supports_pep639() -> bool:
    try:
        from importlib.metadata import version

        return int(version("setuptools").split(".")[0]) >= 77
    except Exception:  # noqa: BLE001 - no setuptools at all
        return False


needs_backend = pytest.mark.skipif(
    not _backend_supports_pep639(),
    reason="setuptools>=77 is not installed here: `pip install -e '.[test]'` brings it")


@needs_backend
def test_wheel_builds_with_deprecations_as_errors(tmp_path):
    run = _build(tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    wheel = tmp_path / "dist" / run.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta
    assert "License-File: LICENSE" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "diffusion_lab/__init__.py" in names


@needs_backend
def test_the_check_fails_on_the_deprecated_licence_table(tmp_path):
    """The same build on the old ``license = { text = "MIT" }``: the check must catch it."""
    old = (ROOT / "pyproject.toml").read_text()
    old = old.replace('license = "MIT"\nlicense-files = ["LICENSE"]', 'license = { text = "MIT" }')
    assert 'license = { text = "MIT" }' in old
    run = _build(tmp_path, pyproject=old)
    assert run.returncode != 0
    assert "license" in run.stderr.lower() and "deprecat" in run.stderr.lower()


def test_the_build_system_asks_for_a_pep639_backend():
    """pip builds in isolation from ``[build-system]``: it must fetch a backend that reads
    SPDX strings (setuptools 77), or an old cached one would fail on ``license = "MIT"``."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in meta["build-system"]["requires"]
    assert "setuptools>=77" in meta["project"]["optional-dependencies"]["test"]


@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
def test_a_deprecation_from_our_own_modules_is_an_error(category):
    """pyproject's ``filterwarnings``: raised from ``diffusion_lab.*`` it fails the test."""
    with pytest.raises(category):
        warnings.warn_explicit("old form", category, "diffusion_lab/sampling.py", 1,
                               module="diffusion_lab.sampling")


def test_a_third_party_deprecation_is_only_a_warning():
    with pytest.warns(DeprecationWarning):
        warnings.warn_explicit("old form", DeprecationWarning, "torch/x.py", 1, module="torch.x")
