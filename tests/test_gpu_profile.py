"""The ``gpu`` profile, proven as far as a CPU allows, and its T4 time estimates.

`test_gpu_profile_dry_run` runs the chapters' shared training recipe (``dl.zoo.pretrained``: the
gpu profile's model size, sequence length, learning rate and warm-up; checkpoints and resume;
a cache reload) for every objective the chapters train, and their samplers at the gpu profile's
generation length, for 2 steps on the CPU, so a configuration error surfaces here and not on a
student's Colab. What it cannot run here: the batch of 64 (cut to 8 for time: every row is
computed alike, so the shapes per row are the gpu profile's) and autocast fp16 with the
GradScaler, which `dl.train` enables on CUDA only.

The T4 estimates (`diffusion_lab.estimate`) are checked against what the introduction's table and
each chapter's "Running time" note state, so the text cannot drift from the code.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import diffusion_lab as dl
from diffusion_lab.course import estimate

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


@pytest.fixture(scope="module")
def t4_estimates() -> dict[str, float]:
    return estimate.chapter_estimates(dl.profile("gpu"))


def _markdown(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


CHAPTERS = sorted((ROOT / "book" / "chapters").glob("*/*.ipynb"))


def test_t4_estimates_are_what_the_introduction_states(t4_estimates):
    est = t4_estimates
    assert list(est) == ["00_intro"] + [p.parent.name for p in CHAPTERS], "one per chapter"
    text = _markdown(ROOT / "book" / "intro.ipynb")
    stated = [int(m) for m in re.findall(r"\| ~(\d+) min(?: at most)?, estimate", text)]
    assert stated == [round(est[k] / 60) for k in est] + [round(sum(est.values()) / 60)], (
        "rerun the estimate into the table (rows in book order, then the whole book)")
    # a bigger share of the peak can only shorten the estimate; fp32 is 65/8.1 slower
    assert estimate.estimate_seconds(1e15, utilisation=0.3) < estimate.estimate_seconds(1e15)
    fp32 = estimate.estimate_seconds(1e15, amp=False) / estimate.estimate_seconds(1e15)
    assert abs(fp32 - 65 / 8.1) < 1e-9
    with pytest.raises(ValueError, match="utilisation must be in"):
        estimate.estimate_seconds(1e15, utilisation=1.5)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.parent.name)
def test_each_chapter_states_its_t4_estimate(path, t4_estimates):
    """Near its top, each chapter states its cpu time and the T4 estimate the code computes."""
    cells = json.loads(path.read_text())["cells"]
    first = "".join(next(c for c in cells if c["cell_type"] == "markdown")["source"])
    assert ":::{admonition} Running time\n:class: note" in first
    assert "`cpu` profile, 2 CPU cores:" in first
    assert "No GPU was available" in first and "../../intro" in first, "say it is an estimate"
    stated = [int(m) for m in re.findall(r"~(\d+) min, estimate", _markdown(path))]
    assert stated == [round(t4_estimates[path.parent.name] / 60)], (
        f"{path.name} states {stated}: rerun the estimate into its note")


def test_estimate_counts_what_chapter_5b_samples():
    """`PARALLEL_DECODING_SAMPLES` mirrors chapter 5b's (N, N_TV) per profile, and its oracle
    is priced on the CPU, where the notebook leaves it."""
    nb = ROOT / "book" / "chapters" / "05b_parallel_decoding" / "parallel_decoding.ipynb"
    code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                     if c["cell_type"] == "code")
    table = re.search(r"N, N_TV, BOOT = (\{.*?\})\[prof\.name\]", code, flags=re.S)
    assert table, "chapter 5b's sample sizes moved: update estimate.PARALLEL_DECODING_SAMPLES"
    sizes = {name: value[:2] for name, value in ast.literal_eval(table.group(1)).items()}
    assert sizes == estimate.PARALLEL_DECODING_SAMPLES
    assert "GrammarOracleForMaskedLM(lang)\n" in code, "the oracle moved: is it still on the CPU?"
    jobs = estimate.chapter_work(dl.profile("gpu"))["05b_parallel_decoding"].jobs
    assert {job.device for job in jobs if job.net.kind == "oracle"} == {estimate.COLAB_CPU}


def test_a_call_is_no_faster_than_dispatching_its_operators():
    net = estimate.Net("mlm", "s", 20, "qa")
    cost = estimate.PassCost(flops=1e6, ops=100)
    tiny = estimate.passes(net, calls=1000, rows=1)  # launch-bound: 1000 x 100 x 10 us
    assert estimate.job_seconds(tiny, cost) == pytest.approx(1000 * 100 * estimate.SECONDS_PER_OP)
    big = estimate.passes(net, calls=10, rows=10**7)  # compute-bound, at the fp32 peak
    assert estimate.job_seconds(big, cost) == pytest.approx(
        estimate.estimate_seconds(10**8 * 1e6, amp=False))
