"""scripts/make_pdf.py: a small book (root page in a subfolder, a `hide-input` cell) becomes a
styled PDF with Debian's Chromium, offline."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="needs Debian's chromium (apt-get install chromium)")


def _make_pdf():
    spec = importlib.util.spec_from_file_location("make_pdf", ROOT / "scripts" / "make_pdf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_book(root: Path) -> None:
    (root / "book" / "_ext").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_ext" / "single_page.py", root / "book" / "_ext")
    (root / "_config.yml").write_text(
        "title: tiny\nexecute:\n  execute_notebooks: 'off'\n"
        "sphinx:\n  local_extensions:\n    single_page: book/_ext\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n- file: book/two\n")
    intro = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Tiny intro\n\nPage one."),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["hide-input"]}),
    ])
    nbformat.write(intro, root / "book" / "intro.ipynb")
    (root / "book" / "two.md").write_text("# Page two\n\nAnd $x^2$ on page two.\n")


def test_make_pdf_prints_a_styled_book(tmp_path):
    _tiny_book(tmp_path)
    out = tmp_path / "tiny.pdf"
    _make_pdf().main(["--root", str(tmp_path), "--out", str(out)])
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 1
    # the single page it printed reads its theme from the build folder (unstyled otherwise)
    flat = (tmp_path / "_build" / "singlehtml" / "book.html").read_text()
    css = re.findall(r'href="(_static/[^"?]+\.css)', flat)
    assert css and all((tmp_path / "_build" / "singlehtml" / c).exists() for c in css)
    assert "Page two" in flat and "hide-input" in flat


def test_make_pdf_names_the_missing_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(SystemExit, match="no Chromium found"):
        _make_pdf().chromium()
