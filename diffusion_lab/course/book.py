"""The book's checkout: the folder that holds ``_toc.yml`` and ``_config.yml``, and what they say.

The editions, the grader, the Colab install cell and the book's extensions read the book's own
files; an installed copy of the library has none of them. `book_root` finds the checkout — the
one this package sits in (an editable install), else the working directory or a folder above it
— and says so clearly when there is none. ``_config.yml`` holds the repository's URL once
(`repository_url`): Colab buttons, the install cell and repository links all derive from it.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE_CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, for an editable install


def _is_book(folder: Path) -> bool:
    return (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file()


def book_root(root: Path | str | None = None) -> Path:
    """``root`` if given, else the checkout this package sits in, else the working directory or
    the nearest folder above it holding ``_toc.yml`` and ``_config.yml``; ValueError if none."""
    if root is not None:
        return Path(root)
    here = Path.cwd().resolve()
    for folder in (PACKAGE_CHECKOUT, here, *here.parents):
        if _is_book(folder):
            return folder
    raise ValueError("no book checkout found (a folder with _toc.yml and _config.yml): run from "
                     "the diffusion-lab repository, or pass root=<path to it>")


def repository_url(root: Path | str | None = None) -> str:
    """``repository.url`` from the checkout's ``_config.yml``."""
    config = (book_root(root) / "_config.yml").read_text(encoding="utf-8")
    m = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", config, re.M)
    if not m:
        raise ValueError("_config.yml has no repository.url")
    return m.group(1).rstrip("/")
