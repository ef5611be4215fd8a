"""The page's JavaScript sampler against ``dl.generate``: same reveal order, same distributions.

The model is the smoke profile's masked-diffusion recipe trained for `TRAIN_STEPS` steps (about
30 s once, then cached by the zoo), exported with ``dl.export`` and run in headless Chromium.
Not the 20-step smoke model: it predicts a space at every slot with confidences equal to 1e-7,
so its reveal order is decided by float32 rounding, not by the sampler.

* greedy (temperature 0 in the page, 1e-9 in Python: Gumbel noise below float32 resolution): the
  page's sampler gets its log-probabilities from the exported graph under Python ``onnxruntime``
  (one session, handed to the page through ``expose_function``) and ``dl.generate`` drives the
  same session; every text slot must be revealed at the same step, with the same final text;
* the in-browser runtime (onnxruntime-web, WebAssembly) returns the log-probabilities of Python
  ``onnxruntime`` within 1e-4 (measured: ~1e-6);
* sampling on (temperature 1), the page's own model against the torch model: the same per-step
  reveal counts (identical for ``low_confidence``; means within 4.5 standard errors for the
  random rules), and character frequencies that a permutation test over samples (the independent
  unit) cannot tell apart (p > 0.01), while it does tell temperature 0.5 from 1 (p < 0.01).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import no_running_asyncio_loop, serve_directory

sys.path.insert(0, str(Path(__file__).parent))
from live_page import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_JS,
    OnnxMaskedLM,
    Visit,
    build_site,
    summarise,
)

import diffusion_lab as dl  # noqa: E402
from diffusion_lab import export as dl_export  # noqa: E402

LENGTH = 48  # the smoke model sees 64 positions; its profile generates 48 tokens
TRAIN_STEPS = 300  # confidences then differ between slots by >= 1e-6, float noise is ~1e-7
N = 64  # samples per side for the distribution checks (one batch each)
PROMPTS = ["ROMEO:", "First Citizen:\nWe", "O"]


@pytest.fixture(scope="module")
def smoke():
    prof = dl.profile("smoke")
    model, tok, _ = dl.zoo.pretrained("mdlm", prof, steps=TRAIN_STEPS, progress=False)
    files = dl_export.export("mdlm", prof, steps=TRAIN_STEPS)
    return model, tok, files


@pytest.fixture(scope="module")
def page(smoke, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    _, _, files = smoke
    try:
        root = build_site(tmp_path_factory.mktemp("live-parity"), {"mdlm": files})
    except RuntimeError as e:
        pytest.skip(str(e))
    onnx = OnnxMaskedLM(LENGTH + 16, files["onnx"])
    with serve_directory(root) as url, no_running_asyncio_loop(), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        v = Visit(browser, f"{url}/index.html")

        def py_forward(ids: list[int], b: int, length: int) -> str:
            x = torch.tensor(ids, dtype=torch.long).view(b, length)
            logp = onnx(input_ids=x).logits.numpy().astype(np.float32)
            return base64.b64encode(logp.tobytes()).decode()

        v.page.expose_function("pyForward", py_forward)
        try:
            yield v, onnx
        finally:
            assert v.errors == [], v.errors
            assert v.external == [], v.external
            v.close()
            browser.close()


# The page's sampler, fed by Python onnxruntime instead of the browser's runtime.
RUN_WITH_PY_FORWARD = RUN_JS.replace(
    "await DLLive.run(name, settings)",
    """await (async () => {
      const {spec} = await DLLive.loadModel(name);
      const forward = async (ids, B, L) => {
        const b64 = await window.pyForward(Array.from(ids), B, L);
        return new Float32Array(Uint8Array.from(atob(b64), c => c.charCodeAt(0)).buffer);
      };
      const frames = [];
      for await (const f of DLLiveSampler.generate(forward, spec, settings)) frames.push(f);
      return {frames};
    })()""",
)


def run_page(v, settings, js=RUN_JS):
    return v.page.evaluate(js, ["mdlm", settings])


@pytest.mark.parametrize("strategy", ["low_confidence", "threshold", "reread_remask"])
@pytest.mark.parametrize("steps", [8, 13])
def test_greedy_reveal_order_matches_generate(page, smoke, strategy, steps):
    v, onnx = page
    _, tok, _ = smoke
    for prompt in PROMPTS:
        js = run_page(v, dict(prompt=prompt, length=LENGTH, steps=steps, strategy=strategy,
                              temperature=0, seed=0), RUN_WITH_PY_FORWARD)[0]
        py = summarise(dl.generate(onnx, tok, [prompt], length=LENGTH, steps=steps,
                                   strategy=strategy, temperature=1e-9, seed=0))[0]
        assert js["order"] == py["order"], (prompt, js["order"], py["order"])
        assert tok.decode(js["ids"]) == tok.decode(py["ids"])
        assert js["counts"] == py["counts"]


def test_browser_runtime_matches_python_onnxruntime(page, smoke):
    v, onnx = page
    _, tok, _ = smoke
    ids, _ = dl.sampling.prepare(tok, ["ROMEO:", "O"], LENGTH)
    ids[:, 20:30] = torch.randint(5, len(tok), (2, 10))  # some decoded slots among the masks
    got = v.page.evaluate(
        """async ([ids, B, L]) => Array.from(await (await DLLive.loadModel('mdlm'))
             .forward(Int32Array.from(ids), B, L), (x) => x === -Infinity ? null : x)""",
        [ids.flatten().tolist(), ids.shape[0], ids.shape[1]])
    want = onnx(input_ids=ids).logits.numpy().reshape(-1)
    got = np.array([-np.inf if g is None else g for g in got], dtype=np.float64)
    finite = np.isfinite(want)
    assert (np.isfinite(got) == finite).all()  # the special tokens, and only they, at -inf
    assert np.abs(got[finite] - want[finite]).max() < 1e-4  # measured 3.8e-6


def _char_freq(rows, tok, vocab: int) -> np.ndarray:
    """(samples, vocab) counts of the generated tokens of each sample."""
    return np.stack([np.bincount(r["ids"], minlength=vocab) for r in rows]).astype(float)


def permutation_p(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple:
    """Total-variation distance between the pooled token frequencies of two groups of samples,
    and its permutation p-value (samples, not tokens, are exchanged: they are the units)."""
    def tv(x, y):
        return 0.5 * np.abs(x.sum(0) / x.sum() - y.sum(0) / y.sum()).sum()

    rng = np.random.default_rng(seed)
    both, observed = np.concatenate([a, b]), tv(a, b)
    hits = 0
    for _ in range(rounds):
        perm = rng.permutation(len(both))
        hits += tv(both[perm[: len(a)]], both[perm[len(a):]]) >= observed
    return observed, (hits + 1) / (rounds + 1)


@pytest.mark.parametrize("strategy", ["low_confidence", "random", "threshold",
                                      "confidence_weighted"])
def test_sampling_distributions_match_generate(page, smoke, strategy):
    v, _ = page
    model, tok, _ = smoke
    settings = dict(prompt="ROMEO:", length=LENGTH, steps=8, strategy=strategy, temperature=1.0,
                    seed=3, batch=N)
    js = run_page(v, settings)
    py = summarise(dl.generate(model, tok, ["ROMEO:"], length=LENGTH, steps=8, strategy=strategy,
                               temperature=1.0, seed=3, num_samples=N))
    counts_js = np.array([r["counts"] + [0] * (8 - len(r["counts"])) for r in js], dtype=float)
    counts_py = np.array([r["counts"] + [0] * (8 - len(r["counts"])) for r in py], dtype=float)
    if strategy == "low_confidence":  # the schedule fixes the counts: identical, every row
        assert (counts_js == counts_py[0]).all() and (counts_py == counts_py[0]).all()
    else:  # random counts: per-step means within 4.5 standard errors (+0.25 for ties at 0)
        se = np.sqrt(counts_js.var(0) / N + counts_py.var(0) / N)
        gap = np.abs(counts_js.mean(0) - counts_py.mean(0))
        assert (gap <= 4.5 * se + 0.25).all(), (counts_js.mean(0), counts_py.mean(0), se)
    back_js = np.array([sum(r["back"]) for r in js], dtype=float)
    back_py = np.array([sum(r["back"]) for r in py], dtype=float)
    se = np.sqrt(back_js.var() / N + back_py.var() / N)
    assert abs(back_js.mean() - back_py.mean()) <= 4.5 * se + 0.25
    for r in js:  # no mask left, the prompt kept
        assert tok.mask_token_id not in r["ids"] and tok.decode(r["ids"]).startswith("ROMEO:")
    tv, p = permutation_p(_char_freq(js, tok, len(tok)), _char_freq(py, tok, len(tok)))
    # observed: p 0.09-0.34, TV 0.05-0.09 across the four rules (the control below: p 0.0005)
    assert p > 0.01, (strategy, tv, p)


def test_frequency_check_tells_temperatures_apart(page, smoke):
    """The control that shows the frequency test can fail: temperature 0.5 against 1."""
    v, _ = page
    model, tok, _ = smoke
    js = run_page(v, dict(prompt="ROMEO:", length=LENGTH, steps=8, strategy="low_confidence",
                          temperature=0.5, seed=3, batch=N))
    py = summarise(dl.generate(model, tok, ["ROMEO:"], length=LENGTH, steps=8,
                               strategy="low_confidence", temperature=1.0, seed=3, num_samples=N))
    tv, p = permutation_p(_char_freq(js, tok, len(tok)), _char_freq(py, tok, len(tok)))
    assert p < 0.01, (tv, p)  # observed: TV 0.54, p 0.0005 (the smallest 2000 rounds give)
