"""Chapter 8's live panel: how long a forced-answer run takes in the browser.

The QA diffusion model of the profile (``dl.export.export("qa")``, 20 positions, byte-level BPE)
runs in headless Chromium (onnxruntime-web, WebAssembly, one thread) from a page served on
127.0.0.1.  For each of a few true claims with "no" forced and revisable, the chapter's settings
(``confidence_weighted``, greedy, one step per free slot): milliseconds per sampler step (forward
+ the JavaScript proposal/strategy work, the start-state probe included) and whether the forced
token was revised.  Wall-clock numbers on a shared machine are inflated.

    .venv/bin/python bench/bench_live_qa.py [--profile cpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import serve_directory  # noqa: E402
from live_page import CHROMIUM, CHROMIUM_ARGS, Visit, build_site  # noqa: E402

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402

TIME_JS = """async ([question, repeats]) => {
  const {spec} = await DLLive.loadModel('qa');
  const plan = DLLiveQA.plan(spec, question, true, spec.defaults.length);
  const settings = Object.assign({}, spec.defaults,
                                 {prompt: plan.prompt, revisable: plan.revisable});
  const out = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const {frames} = await DLLive.run('qa', settings);
    const last = frames[frames.length - 1];
    out.push({ms: performance.now() - t0, steps: frames.length - 1,
              answer: DLLiveQA.answer(spec, last, plan.revisable[0])});
  }
  return out;
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    files = dl_export.export("qa", dl.profile(args.profile))
    print(f"export: {files['bytes']['onnx'] / 1e6:.2f} MB ONNX, "
          f"{files['bytes']['json'] / 1e3:.1f} kB JSON")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = build_site(Path(tmp), {"qa": files}, prompt="", length=19, steps=14,
                          attrs={"kind": "qa"})
        with serve_directory(root) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            v = Visit(browser, f"{url}/index.html")
            per_step = []
            for q in ("is 4+4=8?", "is 2+6=8?", "is 5+7=12?", "is 9+1=10?"):
                runs = v.page.evaluate(TIME_JS, [q, args.repeats])
                per_step += [r["ms"] / r["steps"] for r in runs]
                print(f"{q:12s} forced 'no' -> {runs[-1]['answer']!r}: "
                      f"{statistics.median(r['ms'] for r in runs):.0f} ms per run, "
                      f"{runs[-1]['steps']} steps")
            print(f"median {statistics.median(per_step):.1f} ms per step (probe pass spread in)")
            assert v.errors == [] and v.external == [], (v.errors, v.external)
            v.close()
            browser.close()


if __name__ == "__main__":
    main()
