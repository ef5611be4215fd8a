"""Helpers for the live-panel tests and bench: a minimal static site, a browser, an ORT model.

`build_site` writes what ``book/_ext/live_models.py`` puts into the built book — the panel's
JavaScript and CSS, the vendored onnxruntime-web (fetched by ``scripts/fetch_web_assets.py`` when
missing) with its ``file://`` copies, and the exported models — plus an ``index.html`` holding
one panel, so the tests need no book build.  `OnnxMaskedLM` runs an exported graph under Python
``onnxruntime`` behind the interface ``dl.generate`` expects, so the library's own loop can drive
the exported model.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

import diffusion_lab as dl
from diffusion_lab import export as dl_export

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))
from live_models import LIVE_SCRIPTS  # noqa: E402 - the book's script list, in its order

LIVE = REPO / "book" / "_static" / "live"
VENDOR = REPO / "book" / "_static" / "vendor"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
CHROMIUM = (os.environ.get("DIFFUSION_LAB_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>live panel</title>
<link rel="stylesheet" href="_static/live/live.css">
{scripts}
</head><body>
<p>The recorded animation would be here.</p>
<div class="dl-live" data-model="{model}" data-prompt="{prompt}" data-length="{length}"
     data-steps="{steps}"{extra} hidden></div>
</body></html>
"""


def ort_dir() -> Path:
    """The vendored onnxruntime-web, fetched with npm when missing (ImportError if it cannot)."""
    folder = VENDOR / "onnxruntime-web"
    if not all((folder / f).is_file() for f in ORT_FILES):
        proc = subprocess.run([sys.executable, str(REPO / "scripts" / "fetch_web_assets.py")],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"could not vendor onnxruntime-web:\n{proc.stderr[-1500:]}")
    return folder


BLOCK = "\u2592"  # the panel's mask character


def check_unmasking(seen: list[str], final: str, prompt: str = "JULIET:") -> None:
    """The frames of an 8-step Generate, as the browser tests saw them: the prompt kept, masks
    falling step by step to none, most frames observed (both browsers' tests)."""
    assert final.startswith(prompt) and BLOCK not in final, final
    masks = [t.count(BLOCK) for t in seen]
    assert len(seen) >= 5, seen  # 8 frames at 120 ms: most of them are seen
    assert masks == sorted(masks, reverse=True) and masks[0] > masks[-1] == 0


def build_site(root: Path, exports: dict, prompt: str = "ROMEO:", length: int = 48,
               steps: int = 8, attrs: dict | None = None) -> Path:
    """A folder that serves (or opens from disk) one panel for the first model of ``exports``;
    ``attrs`` adds ``data-*`` attributes to the panel (e.g. ``{"kind": "qa"}``)."""
    static = root / "_static"
    shutil.copytree(LIVE, static / "live", dirs_exist_ok=True)
    ort = static / "vendor" / "onnxruntime-web"
    ort.mkdir(parents=True, exist_ok=True)
    for f in ORT_FILES:
        shutil.copyfile(ort_dir() / f, ort / f)
    dl_export.script_wrapper(ort / ORT_FILES[1], "ort-mjs")
    dl_export.script_wrapper(ort / ORT_FILES[2], "ort-wasm")
    for files in exports.values():
        dl_export.publish(files, static / "live" / "models")
    name = next(iter(exports))
    (root / "index.html").write_text(
        PAGE.format(model=name, prompt=html.escape(prompt), length=length, steps=steps,
                    scripts="\n".join(f'<script src="_static/live/{s}"></script>'
                                      for s in LIVE_SCRIPTS),
                    extra="".join(f' data-{k}="{html.escape(str(v))}"'
                                  for k, v in (attrs or {}).items())),
        encoding="utf-8")
    return root


class Visit:
    """A page with every request that leaves 127.0.0.1 (or file://) recorded and aborted, and
    every console error, page error and HTTP error kept."""

    def __init__(self, browser, url: str, wait_ready: bool = True):
        self.external, self.errors = [], []
        self.context = browser.new_context(service_workers="block",
                                           viewport={"width": 1000, "height": 700})
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}")
                     if r.status >= 400 else None)
        self.page.route("**/*", self._route)
        self.page.goto(url)
        if wait_ready:  # the panel loads its model once it comes near the screen
            self.page.locator(".dl-live").first.scroll_into_view_if_needed()
            self.page.wait_for_selector(".dl-live[data-ready=true]", timeout=60_000)

    def _route(self, route) -> None:
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "file") or parsed.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


# In the page: run the sampler to the end; per row, the step that revealed each text slot
# (0 = prompt), the final ids and the number of slots revealed / remasked at every step.
RUN_JS = """async ([name, settings]) => {
  const {frames} = await DLLive.run(name, settings);
  const last = frames[frames.length - 1], B = last.B, L = last.L;
  const rows = [];
  for (let b = 0; b < B; b++) {
    const order = new Array(L - 1).fill(0), counts = [], back = [];
    for (const f of frames.slice(1)) {
      let c = 0, r = 0;
      for (let i = 1; i < L; i++) {
        if (f.revealed[b * L + i]) { order[i - 1] = f.step; c++; }
        r += f.remasked[b * L + i];
      }
      counts.push(c); back.push(r);
    }
    rows.push({order, counts, back, ids: Array.from(last.ids.slice(b * L + 1, (b + 1) * L))});
  }
  return rows;
}"""


def summarise(traj) -> list[dict]:
    """`RUN_JS`'s summary of a `dl.generate` trajectory."""
    rows = []
    for b in range(traj.ids.shape[0]):
        order = [0] * (traj.ids.shape[1] - 1)
        counts, back = [], []
        for f in traj.frames:
            rev = f.revealed[b, 1:]
            for i in torch.nonzero(rev).flatten().tolist():
                order[i] = f.step
            counts.append(int(rev.sum()))
            back.append(int(f.remasked[b, 1:].sum()))
        rows.append({"order": order, "counts": counts, "back": back,
                     "ids": traj.ids[b, 1:].tolist()})
    return rows


class OnnxMaskedLM(PreTrainedModel):
    """An exported graph under Python onnxruntime, shaped like a masked LM for ``dl.generate``
    (its ``logits`` are the graph's log-probabilities: the same softmax, the same argmax)."""

    config_class = PretrainedConfig
    _supports_sdpa = True  # no attention here; keeps transformers' init check quiet

    def __init__(self, max_positions: int, onnx_path: str | Path, threads: int = 1):
        super().__init__(PretrainedConfig(max_position_embeddings=max_positions))
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts,
                                            providers=["CPUExecutionProvider"])
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # for .device

    def forward(self, input_ids: torch.Tensor, **_) -> MaskedLMOutput:
        ids = input_ids.cpu().numpy().astype(np.int64)
        logp = self.session.run(None, {"input_ids": ids})[0]
        return MaskedLMOutput(logits=torch.from_numpy(logp))


# ---- chapter 8 (tests/test_live_qa.py)

# The page's sampler on the QA model, fed by Python onnxruntime; the prompt and revisable
# positions from qa.js's plan (what the panel does with a question and "force").
RUN_QA = RUN_JS.replace("async ([name, settings]) => {", """async ([name, settings]) => {
  const {spec: qaSpec} = await DLLive.loadModel(name);
  const plan = DLLiveQA.plan(qaSpec, settings.question, true, settings.length);
  settings = Object.assign({}, settings, {prompt: plan.prompt, revisable: plan.revisable});
""").replace("await DLLive.run(name, settings)", """await (async () => {
      const forward = async (ids, B, L) => {
        const b64 = await window.pyForward(Array.from(ids), B, L);
        return new Float32Array(Uint8Array.from(atob(b64), c => c.charCodeAt(0)).buffer);
      };
      const frames = [];
      for await (const f of DLLiveSampler.generate(forward, qaSpec, settings)) frames.push(f);
      return {frames};
    })()""")

# In the page: the share of `batch` runs of the chapter's settings that revise the forced token.
REVISION_RATE_JS = """async ([question, batch]) => {
  const {spec} = await DLLive.loadModel('qa');
  const plan = DLLiveQA.plan(spec, question, true, spec.defaults.length);
  const {frames} = await DLLive.run('qa', Object.assign({}, spec.defaults,
    {prompt: plan.prompt, revisable: plan.revisable, batch}));
  const last = frames[frames.length - 1], n = plan.revisable[0];
  let revised = 0;
  for (let b = 0; b < batch; b++)
    revised += last.ids[b * last.L + 1 + n] !== DLLiveSampler.encode(spec, plan.forced).ids[0];
  return revised / batch;
}"""


def chapter_questions() -> list[str]:
    """Every question chapter 8 asks: its 150 test questions and its 120 claims."""
    test = [q for q, _ in dl.qa.pairs(150, seed=1)]
    claims = list(dict.fromkeys(q for q, _ in dl.qa.pairs(400, seed=2, families=("claims",))))
    return test + claims[:120]


def near_tie(traj, model) -> float:
    """The smallest score gap that a reveal or remask decision of ``traj`` turned on.

    The rules reveal the most confident masked slots and ``confidence_weighted`` remasks the
    least confident drawn tokens first.  Confidences are float32 in torch (``probability_of``: a
    float32 log-sum-exp) and float64 in the page, so two slots within a few float32 steps of each
    other (two near-certain [EOS]: 0.9999871 and 0.9999869) may be ranked either way; a run with
    such a decision cannot decide parity and is left out (the test says how many were kept)."""
    frames, smallest = [traj.start, *traj.frames], float("inf")
    for prev, f in zip(frames, frames[1:], strict=False):
        free = ~traj.fixed[0]
        was_masked, decoded = prev.mask[0] & free, ~prev.mask[0] & free
        with torch.no_grad():  # the proposals' confidences at this step, as generate computes them
            logp = model(input_ids=prev.ids).logits[0].float()
        p = logp.max(-1).values.sub(logp.logsumexp(-1)).exp()
        shown = f.revealed[0] & was_masked
        if shown.any() and (was_masked & ~shown).any():
            smallest = min(smallest, float(p[shown].min() - p[was_masked & ~shown].max()))
        back, kept = f.remasked[0], decoded & ~f.remasked[0]
        if back.any() and kept.any():
            smallest = min(smallest, float(prev.confidence[0][kept].min()
                                           - prev.confidence[0][back].max()))
    return smallest


def revised_by_chapter(model, tok, claims, seeds=range(4),
                       strategy: str = "reread_remask") -> list[str]:
    """The claims whose forced wrong verdict ("no" on a true claim, "yes" on a false one)
    chapter 8's settings (``strategy``, greedy, 14 steps) take back at every seed, in Python."""
    out = []
    for q in claims:
        forced = dl.qa.wrong_verdict(q)
        answers = [dl.qa.ask(model, tok, [q], length=19, forced=forced, revise_forced=True,
                             strategy=strategy, steps=14, top_k=1, seed=s)[0][0]
                   for s in seeds]
        if all(dl.qa.check(q, a) for a in answers):
            out.append(q)
    return out
