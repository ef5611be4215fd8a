"""The release's number is written in three places: pyproject.toml, CITATION.cff and the latest
release of CHANGELOG.md. They must agree, and the citation file must be valid CFF 1.2.0."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_citation_names_this_release():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "version", "date-released", "license"):
        assert cff.get(key), f"CITATION.cff lacks {key!r}"
    assert str(cff["version"]) == _version()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert cff["license"] == project["license"]


def test_changelog_latest_release_is_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\d+\.\d+\.\d+) — (\d{4}-\d{2}-\d{2})$", text, re.M)
    assert releases, "CHANGELOG.md has no '## X.Y.Z — YYYY-MM-DD' release heading"
    version, date = releases[0]
    assert version == _version()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["date-released"]) == date
    # the unreleased section, if any, comes first
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert all(h == "Unreleased" for h in headings[: headings.index(f"{version} — {date}")])
