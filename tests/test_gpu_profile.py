"""The ``gpu`` profile, proven as far as a CPU allows, and its T4 time estimates.

`test_gpu_profile_dry_run` runs the chapters' shared training recipe (``dl.zoo.pretrained``: the
gpu profile's model size, sequence length, learning rate and warm-up; checkpoints and resume;
a cache reload) for every objective the chapters train, and their samplers at the gpu profile's
generation length, for 2 steps on the CPU, so a configuration error surfaces here and not on a
student's Colab. What it cannot run here: the batch of 64 (cut to 8 for time: every row is
computed alike, so the shapes per row are the gpu profile's) and autocast fp16 with the
GradScaler, which `dl.train` enables on CUDA only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import diffusion_lab as dl
from diffusion_lab import estimate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_profile_dry_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_LAB_CACHE", str(tmp_path / "zoo"))
    gpu = dl.profile("gpu")
    prof = gpu.with_(train_steps=2, quick_steps=2, batch_size=8, warmup=1)
    models = {}
    for kind in ("mlm", "variable", "mdlm", "ar"):
        model, tok, info = dl.zoo.pretrained(kind, prof, progress=False)
        assert info["trained_now"] and info["steps"] == 2 and info["held_out_loss"] > 0
        assert dl.models.max_positions(model) >= gpu.seq_len
        models[kind] = model
    hist = dl.train(dl.tiny_mlm(tok, size=gpu.model_size, max_length=gpu.seq_len), tok,
                    dl.zoo.corpus(prof)[0], objective="sundae", steps=2, batch_size=8,
                    seq_len=gpu.seq_len, lr=gpu.lr, warmup=1, progress=False)  # chapter 6's duel
    assert hist.steps == 2
    folder = next((tmp_path / "zoo").glob(f"mdlm-*-{gpu.model_size}-L{gpu.seq_len}-*"))
    assert [p.name for p in sorted((folder / "checkpoints").iterdir())] == [
        "step-000001", "step-000002"]
    again, _, info = dl.zoo.pretrained("mdlm", prof, progress=False)  # the cache reload
    assert not info["trained_now"]
    # resume past the cached run's last checkpoint, as after a Colab disconnect
    hist = dl.train(again, tok, dl.zoo.corpus(prof)[0], objective="mdlm", steps=3, batch_size=8,
                    seq_len=gpu.seq_len, lr=gpu.lr, warmup=1, checkpoint_dir=folder / "checkpoints",
                    checkpoint_every=1, resume=True, progress=False)
    assert hist.steps == 3 and (folder / "checkpoints" / "step-000003").is_dir()
    for strategy in ("ancestral", "low_confidence", "remdm"):
        traj = dl.generate(models["mdlm"], tok, prompts=["ROMEO:", ""], length=gpu.gen_length,
                           steps=4, strategy=strategy, seed=0)
        assert [len(t) for t in traj.texts] and traj.frames[-1].ids.shape[1] >= gpu.gen_length
    ar = dl.generate(models["ar"], tok, prompts=[""], length=gpu.gen_length, seed=0, record=False)
    # one pass per token, until every row has written [EOS] (an untrained model may, early)
    assert 1 <= ar.forward_passes <= gpu.gen_length - 1


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_generation_length_fits_the_model(name):
    """``length`` counts the prompt; the [CLS] anchor takes one more of the seq_len positions."""
    prof = dl.profile(name)
    assert prof.gen_length + 1 <= prof.seq_len


def test_t4_estimates_are_what_the_introduction_states():
    est = estimate.chapter_estimates(dl.profile("gpu"))
    intro = json.loads((ROOT / "book" / "intro.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in intro["cells"] if c["cell_type"] == "markdown")
    stated = [int(m) for m in re.findall(r"\| ~(\d+) min(?: at most)?, estimate", text)]
    keys = ["00_intro", "01_mlm", "02_gibbs", "03_generative_mlm", "04_diffusion", "05_sampling",
            "06_remasking", "07_pretrained_race"]
    assert stated[:8] == [round(est[k] / 60) for k in keys], "rerun the estimate into the table"
    assert stated[8] == round(sum(est.values()) / 60)
    # a bigger share of the peak can only shorten the estimate; fp32 is 65/8.1 slower
    assert estimate.estimate_seconds(1e15, utilisation=0.3) < estimate.estimate_seconds(1e15)
    fp32 = estimate.estimate_seconds(1e15, amp=False) / estimate.estimate_seconds(1e15)
    assert abs(fp32 - 65 / 8.1) < 1e-9
    with pytest.raises(ValueError, match="utilisation must be in"):
        estimate.estimate_seconds(1e15, utilisation=1.5)
