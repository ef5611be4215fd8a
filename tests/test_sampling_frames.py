"""`dl.generate` frame by frame against a recording: a refactor of the reverse loop changes nothing.

``tests/fixtures/generate_frames.json`` holds, for every registered strategy, seeds, prompts (none,
a prefix, an infill template), ``block_size``, batches > 1, temperature / top-k / top-p,
``revisable`` prompt tokens, an early stop by callback and the AR dispatch, a SHA-256 of every
frame (ids, masks, confidences, revealed and remasked slots), the texts and the forward passes of
a small untrained model. It was recorded before ``sampling.generate`` was split into prepare /
`sampling.reverse_step` / finish (issue 22), with one torch thread:

    PYTHONPATH=$PWD python tests/test_sampling_frames.py --record

A float computed another way (another torch version, another CPU kernel) can flip a draw, so the
comparison runs only on the torch version the fixture names.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch

import diffusion_lab as dl

FIXTURE = Path(__file__).parent / "fixtures" / "generate_frames.json"
TEXT = "the cat sat on the mat. a dog ran far away!\n"
STRATEGIES = ("ancestral", "low_confidence", "maskgit", "threshold", "random_remask",
              "mask_predict", "gibbs", "confidence_weighted", "remdm", "sundae")


def cases() -> list[tuple[str, dict]]:
    """(name, generate keywords) of every recorded run."""
    out = []
    for strategy in STRATEGIES:
        for seed in (0, 1):
            out.append((f"{strategy}-s{seed}", dict(prompts=[""], strategy=strategy, seed=seed)))
        out.append((f"{strategy}-prompts", dict(prompts=["the ", "a d"], strategy=strategy,
                                               seed=2, num_samples=2)))
        out.append((f"{strategy}-blocks", dict(prompts=["the "], strategy=strategy, seed=3,
                                              block_size=5)))
        out.append((f"{strategy}-filtered", dict(prompts=[""], strategy=strategy, seed=4,
                                                temperature=0.7, top_k=5, top_p=0.9,
                                                num_samples=3)))
    out += [
        ("infill", dict(prompts=["the [MASK][MASK]t sat[MASK]"], strategy="low_confidence",
                        seed=5)),
        ("revisable", dict(prompts=["a cat "], strategy="confidence_weighted", seed=6,
                           revisable=[2, 3])),
        ("threshold-options", dict(prompts=[""], strategy="threshold", seed=7, threshold=0.2,
                                   schedule="cosine")),
        ("remdm-loop", dict(prompts=[""], strategy="remdm", seed=8, variant="loop")),
        ("remdm-cap", dict(prompts=["a "], strategy="remdm", seed=8, variant="cap",
                           block_size=4)),
        ("gibbs-one", dict(prompts=[""], strategy="gibbs", seed=9, one_at_a_time=True)),
        ("greedy", dict(prompts=["the"], strategy="low_confidence", seed=10, top_k=1)),
        ("unrecorded", dict(prompts=["the "], strategy="maskgit", seed=11, record=False,
                            num_samples=2)),
        ("stopped", dict(prompts=[""], strategy="ancestral", seed=12, stop_at=3)),
        ("ar", dict(prompts=["the ", "a ca"], strategy="ar", seed=13, temperature=0.8, top_k=7)),
    ]
    return out


def _models():
    dl.seed_everything(0)
    tok = dl.CharTokenizer.from_texts([TEXT])
    mlm = dl.tiny_mlm(tok, size="xs", max_length=32)
    ar = dl.tiny_ar(tok, size="xs", max_length=32)
    return tok, mlm.eval(), ar.eval()


def run(kwargs: dict, tok, mlm, ar) -> dict:
    """The digest of one `dl.generate` call."""
    kwargs = dict(kwargs)
    prompts = kwargs.pop("prompts")
    stop_at = kwargs.pop("stop_at", None)
    callback = None if stop_at is None else (lambda step, frame: step >= stop_at)
    model = ar if kwargs.get("strategy") == "ar" else mlm
    if "[MASK]" in prompts[0]:
        prompts = [p.replace("[MASK]", tok.mask_token) for p in prompts]
    traj = dl.generate(model, tok, prompts, length=14, steps=6, callback_on_step_end=callback,
                       **kwargs)
    h = hashlib.sha256()
    for frame in [traj.start, *traj.frames]:
        h.update(str(frame.step).encode())
        for t in (frame.ids, frame.mask, frame.confidence, frame.revealed, frame.remasked):
            h.update(t.contiguous().numpy().tobytes())
    return {"frames": len(traj.frames), "passes": traj.forward_passes, "texts": traj.texts,
            "sha256": h.hexdigest()}


def record() -> dict:
    torch.set_num_threads(1)
    tok, mlm, ar = _models()
    return {"torch": torch.__version__,
            "runs": {name: run(kwargs, tok, mlm, ar) for name, kwargs in cases()}}


@pytest.fixture(scope="module")
def recorded():
    data = json.loads(FIXTURE.read_text())
    if data["torch"] != torch.__version__:
        pytest.skip(f"recorded with torch {data['torch']}, this is {torch.__version__}")
    return data, _models()


@pytest.mark.parametrize("name,kwargs", cases(), ids=[name for name, _ in cases()])
def test_generate_matches_the_recording(recorded, name, kwargs):
    data, models = recorded
    assert run(kwargs, *models) == data["runs"][name]


if __name__ == "__main__" and "--record" in sys.argv:
    FIXTURE.write_text(json.dumps(record(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
