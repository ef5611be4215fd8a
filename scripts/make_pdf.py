"""The book as one PDF, offline: Jupyter Book 1's single-page HTML printed by Debian's Chromium.

    python scripts/make_pdf.py            # -> _build/pdf/diffusion-lab.pdf
    python scripts/make_pdf.py --root DIR --out FILE

Why not `jupyter-book build --builder pdfhtml`: it launches Playwright's own Chromium download,
which an offline machine does not have (the book's browser tests use Debian's `chromium` for the
same reason). Why not `--builder pdflatex`: it needs a TeX installation (texlive-xetex, ~1 GB) and
drops the widgets and the HTML tables. This script does what `pdfhtml` does (the `singlehtml`
builder, then Chromium's print to PDF, cells kept whole across pages) with the Chromium the
machine has. The notebooks execute as in the HTML build: a warm `_build/.jupyter_cache` from
`jupyter-book build .` is reused, so after the site build the PDF costs only the print.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

KEEP_CELLS_WHOLE = """
div.cell_input, div.cell_output { break-inside: avoid; page-break-inside: avoid; }
"""


def chromium() -> str:
    """Debian's Chromium (or `DIFFUSION_LAB_CHROMIUM`); a clear error when there is none."""
    path = os.environ.get("DIFFUSION_LAB_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        raise SystemExit("make_pdf: no Chromium found; install Debian's `chromium` "
                         "(apt-get install chromium) or set DIFFUSION_LAB_CHROMIUM to its path")
    return path


def build_single_page(root: Path) -> Path:
    """Run Jupyter Book's `singlehtml` builder on `root`; return the page it writes."""
    subprocess.run([sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
                    "build", str(root), "--builder", "singlehtml"], check=True)
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    out = root / "_build" / "singlehtml"
    page = out / f"{toc['root']}.html"  # index.html only redirects here
    if not page.exists():
        raise SystemExit(f"make_pdf: the singlehtml build wrote no {page}")
    # Sphinx writes the page's links (_static/, _images/) relative to the build folder, not to
    # the root document's subfolder (book/): read it from there, or it prints unstyled.
    flat = out / "book.html"
    flat.write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    return flat


def print_to_pdf(page: Path, out: Path, browser: str) -> Path:
    """Print one HTML page to `out` with Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        tab = b.new_page()
        tab.goto(page.resolve().as_uri(), wait_until="networkidle")
        tab.add_style_tag(content=KEEP_CELLS_WHOLE)
        tab.pdf(path=str(out), format="A4",
                margin={"left": "0.4in", "right": "0.4in", "top": "0.5in", "bottom": "0.5in"})
        b.close()
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--out", type=Path, default=None,
                        help="the PDF to write (default: ROOT/_build/pdf/diffusion-lab.pdf)")
    args = parser.parse_args(argv)
    out = args.out or args.root / "_build" / "pdf" / "diffusion-lab.pdf"
    browser = chromium()
    pdf = print_to_pdf(build_single_page(args.root), out, browser)
    print(f"make_pdf: wrote {pdf} ({pdf.stat().st_size / 1e6:.1f} MB)")
    return pdf


if __name__ == "__main__":
    main()
