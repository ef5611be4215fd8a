"""Write the Colab install cell (`diffusion_lab.course.colab.install_cell`) into every notebook.

    python scripts/write_install_cells.py          # rewrite the first code cell where it differs
    python scripts/write_install_cells.py --check  # exit 1 if any notebook is out of date

Only that cell's source changes (read and written with nbformat, which keeps the rest of the
notebook as it is); its ``remove-cell`` tag is kept or added.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusion_lab.course.colab import install_cell  # noqa: E402


def notebooks() -> list[Path]:
    """The notebooks named in ``_toc.yml``."""
    toc = (ROOT / "_toc.yml").read_text()
    names = re.findall(r"^\s*(?:root|-\s*file):\s*(\S+)", toc, flags=re.M)
    return [ROOT / f"{n}.ipynb" for n in names if (ROOT / f"{n}.ipynb").exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale notebooks")
    args = parser.parse_args(argv)
    want, stale = install_cell(), []
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        tags = cell.metadata.setdefault("tags", [])
        if cell.source == want and "remove-cell" in tags:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            cell.source = want
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            nbformat.write(nb, path)
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
