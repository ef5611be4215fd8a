"""The book's checkout (`diffusion_lab.course.book`): found from an editable install or the working
directory, a clear error outside one, the repository URL read once from ``_config.yml``."""

from __future__ import annotations

import pytest

from diffusion_lab.classroom import editions
from diffusion_lab.course import book


def test_the_checkout_of_this_package_is_found():
    root = book.book_root()
    assert (root / "_toc.yml").is_file() and (root / "book").is_dir()
    assert book.repository_url().startswith("https://github.com/")


def test_outside_a_checkout_is_a_clear_error(tmp_path, monkeypatch):
    """An installed wheel has no _toc.yml next to it: say so, do not guess site-packages."""
    monkeypatch.setattr(book, "PACKAGE_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="no book checkout found"):
        book.book_root()
    with pytest.raises(ValueError, match="pass root="):
        editions.toc_notebooks()


def test_a_checkout_above_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    (tmp_path / "_config.yml").write_text("title: x\nrepository:\n  url: https://github.com/a/b/\n"
                                          "  branch: main\n")
    (tmp_path / "book" / "deep").mkdir(parents=True)
    monkeypatch.setattr(book, "PACKAGE_CHECKOUT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path / "book" / "deep")
    assert book.book_root() == tmp_path.resolve()
    assert book.repository_url() == "https://github.com/a/b"
    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository.url"):
        book.repository_url(tmp_path)
