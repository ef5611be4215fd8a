#!/usr/bin/env python3
"""Vendor the browser assets the built book needs, so the site works with no internet.

The website must play ipywidgets animations and render math with no kernel and no CDN. This
script fetches, with ``npm pack`` (the ordinary npm client and whatever registry it is configured
for), four packages and copies the files the pages load into ``book/_static/vendor/``:

* ``@jupyter-widgets/html-manager`` (the range ipywidgets 8 declares, ``^1``): ``embed-amd.js``
  and the icon fonts its bundled CSS loads relative to itself;
* ``requirejs`` (``^2``): ``require.js``, which ``embed-amd.js`` needs;
* ``mathjax`` (``^3``): ``tex-chtml.js``, the CHTML ``woff-v2`` fonts, and the components it
  loads on demand at run time (TeX extensions via autoload/require, the menu, accessibility and
  the speech rule engine the menu can switch on);
* ``onnxruntime-web`` (``~1.30.0``): ``ort.wasm.min.js``, its WebAssembly loader and binary, which
  run the live panel's model in the reader's browser.

The result is never committed (``book/_static/vendor/`` is git-ignored): ``jupyter-book build .``
calls this at ``builder-inited`` through ``book/_ext/vendor_assets.py`` when files are missing.

    python scripts/fetch_web_assets.py            # fetch what is missing (idempotent)
    python scripts/fetch_web_assets.py --force    # re-fetch everything
    python scripts/fetch_web_assets.py --check    # exit 1 if anything is missing

``VERSIONS.json`` in the vendor folder records the resolved versions, the npm integrity hashes
and the files copied.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR_DIR = REPO / "book" / "_static" / "vendor"
VERSIONS_FILE = "VERSIONS.json"
SCHEMA = 1  # bump when the file selection below changes, so old vendor folders refresh


@dataclass(frozen=True)
class Asset:
    """One npm package: which files of it to copy, and where."""

    name: str  # npm package name
    range: str  # semver range handed to npm
    dest: str  # folder under the vendor dir
    strip: str  # prefix inside the tarball's package/ folder that is dropped
    include: tuple[str, ...]  # fnmatch patterns relative to package/<strip>
    required: tuple[str, ...]  # files (relative to dest) that must exist afterwards
    exclude: tuple[str, ...] = field(default=())

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.range}"


def _html_manager_range() -> str:
    """The html-manager range the installed ipywidgets declares (``^1.0.1`` for 8.x)."""
    try:
        from ipywidgets import _version

        rng = getattr(_version, "__html_manager_version__", "")
        if rng.startswith("^1") or rng.startswith("1"):
            return rng
    except Exception:  # ipywidgets missing: use the range that matches ipywidgets 8
        pass
    return "^1"


ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def assets() -> list[Asset]:
    return [
        Asset(
            name="@jupyter-widgets/html-manager",
            range=_html_manager_range(),
            dest="html-manager",
            strip="dist/",
            # embed-amd.js sets its webpack public path from its own URL and loads these fonts
            # (FontAwesome 4 for the widgets' icons) relative to it.
            include=("embed-amd.js", "*.woff2", "*.woff", "*.ttf"),
            required=("embed-amd.js",),
        ),
        Asset(
            name="requirejs",
            range="^2",
            dest="requirejs",
            strip="",
            include=("require.js",),
            required=("require.js",),
        ),
        Asset(
            name="mathjax",
            range="^3",
            dest="mathjax",
            strip="es5/",
            include=(
                "tex-chtml.js",
                "output/chtml/fonts/woff-v2/*",
                "input/tex/extensions/*",
                "ui/*",
                "a11y/*",
                "sre/*",
            ),
            required=(
                "tex-chtml.js",
                "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
                "output/chtml/fonts/woff-v2/MathJax_Math-Italic.woff",
                "input/tex/extensions/boldsymbol.js",
                "ui/menu.js",
            ),
            exclude=("*.map",),
        ),
        Asset(
            # The live panel's runtime (book/_static/live/panel.js): the WebAssembly build only,
            # its loader (an ES module it imports) and the single-file SIMD binary.
            name="onnxruntime-web",
            range="~1.30.0",
            dest="onnxruntime-web",
            strip="dist/",
            include=ORT_WEB_FILES,
            required=ORT_WEB_FILES,
        ),
    ]


class FetchError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(f"[fetch_web_assets] {msg}", flush=True)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(
            "npm was not found on PATH. The book vendors its browser assets (ipywidgets "
            "html-manager, require.js, MathJax 3) with `npm pack` at build time. Install Node.js "
            "and npm (Debian/Ubuntu: `apt-get install -y npm`; macOS: `brew install node`; "
            "GitHub Actions: `actions/setup-node`), then run `python scripts/fetch_web_assets.py`."
        )
    return npm


def _npm_pack(spec: str, workdir: Path) -> tuple[Path, dict]:
    """`npm pack SPEC` into workdir; return the tarball path and npm's JSON record."""
    env = dict(os.environ)
    env.update(
        npm_config_update_notifier="false",
        npm_config_fund="false",
        npm_config_audit="false",
        npm_config_loglevel="error",
    )
    cmd = [_npm(), "pack", spec, "--json", "--pack-destination", str(workdir)]
    last = None
    for attempt in range(3):
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
        if proc.returncode == 0:
            break
        last = proc
        time.sleep(2 * (attempt + 1))
    else:
        raise FetchError(
            f"`npm pack {spec}` failed (exit {last.returncode}):\n{last.stderr.strip()[-2000:]}\n"
            "Is the npm registry reachable (check `npm config get registry` and your proxy)?"
        )
    out = proc.stdout
    # npm may print lifecycle noise before the JSON array.
    start = out.find("[")
    try:
        info = json.loads(out[start:])[0]
    except (ValueError, IndexError) as e:
        raise FetchError(f"could not parse `npm pack --json` output for {spec}: {out[:500]}") from e
    tgz = workdir / info["filename"]
    if not tgz.is_file():  # older npm names scoped tarballs differently
        found = sorted(workdir.glob("*.tgz"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FetchError(f"`npm pack {spec}` produced no tarball in {workdir}")
        tgz = found[-1]
    return tgz, info


def _selected(rel: str, asset: Asset) -> bool:
    if any(fnmatch.fnmatch(rel, pat) for pat in asset.exclude):
        return False
    return any(fnmatch.fnmatch(rel, pat) for pat in asset.include)


def _extract(tgz: Path, asset: Asset, dest: Path) -> list[str]:
    prefix = "package/" + asset.strip
    copied = []
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            rel = member.name[len(prefix) :]
            if not rel or rel.startswith("/") or ".." in Path(rel).parts:
                continue
            if not _selected(rel, asset):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src, open(target, "wb") as fh:
                shutil.copyfileobj(src, fh)
            copied.append(rel)
    missing = [r for r in asset.required if not (dest / r).is_file()]
    if missing:
        raise FetchError(f"{asset.spec}: the tarball lacks the expected files {missing}")
    return sorted(copied)


def _read_versions(vendor_dir: Path) -> dict:
    try:
        return json.loads((vendor_dir / VERSIONS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def missing_assets(vendor_dir: Path = VENDOR_DIR) -> list[Asset]:
    """The assets whose files are absent or were fetched for another range or schema."""
    versions = _read_versions(vendor_dir)
    if versions.get("schema") != SCHEMA:
        return assets()
    out = []
    for a in assets():
        rec = versions.get("packages", {}).get(a.name, {})
        ok = rec.get("range") == a.range and all(
            (vendor_dir / a.dest / r).is_file() for r in a.required
        )
        if not ok:
            out.append(a)
    return out


def fetch(vendor_dir: Path = VENDOR_DIR, force: bool = False) -> dict:
    """Fetch what is missing (everything with force). Returns the VERSIONS record."""
    vendor_dir = Path(vendor_dir)
    todo = assets() if force else missing_assets(vendor_dir)
    versions = _read_versions(vendor_dir)
    if versions.get("schema") != SCHEMA:
        versions = {}
    if not todo:
        _log(f"assets present in {vendor_dir} (use --force to refresh)")
        return versions
    _npm()  # fail early with the clear message
    versions.setdefault("packages", {})
    vendor_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dl-web-assets-") as tmp:
        tmp = Path(tmp)
        for a in todo:
            _log(f"npm pack {a.spec}")
            tgz, info = _npm_pack(a.spec, tmp)
            stage = tmp / ("stage-" + a.dest)
            files = _extract(tgz, a, stage)
            final = vendor_dir / a.dest
            if final.exists():
                shutil.rmtree(final)
            shutil.move(str(stage), str(final))
            size = sum((final / f).stat().st_size for f in files)
            versions["packages"][a.name] = {
                "range": a.range,
                "version": info.get("version"),
                "integrity": info.get("integrity"),
                "tarball_shasum": info.get("shasum"),
                "dest": a.dest,
                "files": len(files),
                "bytes": size,
            }
            _log(f"  {a.name}@{info.get('version')}: {len(files)} files, {size / 1e6:.2f} MB")
    versions["schema"] = SCHEMA
    versions["fetched_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (vendor_dir / VERSIONS_FILE).write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")
    return versions


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--force", action="store_true", help="re-fetch even if present")
    p.add_argument("--check", action="store_true", help="only report; exit 1 if missing")
    p.add_argument("--dest", type=Path, default=VENDOR_DIR, help="vendor folder")
    args = p.parse_args(argv)
    if args.check:
        miss = missing_assets(args.dest)
        for a in miss:
            _log(f"missing: {a.spec} -> {args.dest / a.dest}")
        return 1 if miss else 0
    try:
        fetch(args.dest, force=args.force)
    except FetchError as e:
        print(f"[fetch_web_assets] ERROR: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
