"""`dl.train` under torchrun: two CPU processes (gloo) reproduce the single-process run.

The objective is ``"ar"`` on a packed corpus: every row holds the same number of scored tokens,
so the mean of the two half-batch losses is the full-batch loss and the averaged gradient is the
full-batch gradient; what remains is float rounding (summation order in the all-reduce).
Tolerance: 1e-4 nats on every logged loss over 6 steps (float32 rounding is far below it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import distributed

TEXT = "ROMEO: But soft, what light through yonder window breaks? It is the east. " * 20
SETTINGS = dict(objective="ar", steps=6, batch_size=8, seq_len=32, lr=3e-3, warmup=2, seed=0,
                progress=False)

SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
import diffusion_lab as dl
from diffusion_lab import checkpoint

saves = []
real_save = checkpoint.save_checkpoint
def counting_save(*args, **kwargs):
    saves.append(int(os.environ["RANK"]))
    return real_save(*args, **kwargs)
checkpoint.save_checkpoint = counting_save

text, out = {text!r}, sys.argv[1]
tok = dl.CharTokenizer.from_texts([text])
dl.seed_everything(0)
model = dl.tiny_ar(tok, size="xs", max_length=32)
hist = dl.train(model, tok, text, device="cpu", checkpoint_dir=out + "/ckpt", checkpoint_every=3,
                **{settings!r})
rank = os.environ["RANK"]
digest = float(sum(p.double().sum() for p in model.parameters()))
with open(f"{{out}}/rank{{rank}}.json", "w") as f:
    json.dump({{"loss": hist.loss, "saves": saves, "digest": digest}}, f)
"""


def _single_process() -> list[float]:
    tok = dl.CharTokenizer.from_texts([TEXT])
    dl.seed_everything(0)
    model = dl.tiny_ar(tok, size="xs", max_length=32)
    return dl.train(model, tok, TEXT, device="cpu", **SETTINGS).loss


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_and_only_rank0_writes(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(SCRIPT.format(text=TEXT, settings=SETTINGS)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**_clean_env(), "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    single = _single_process()
    assert len(ranks[0]["loss"]) == len(single) == SETTINGS["steps"]
    for got in (ranks[0]["loss"], ranks[1]["loss"]):
        assert max(abs(a - b) for a, b in zip(got, single, strict=True)) < 1e-4, (got, single)
    assert abs(ranks[0]["digest"] - ranks[1]["digest"]) < 1e-6, "ranks hold the same weights"
    assert ranks[0]["saves"] == [0, 0] and ranks[1]["saves"] == [], "only rank 0 checkpoints"
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000003",
                                                                     "step-000006"]


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items()
            if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}


def test_shards_tile_the_global_batch(monkeypatch):
    batch = torch.arange(24).reshape(8, 3)
    monkeypatch.setenv("WORLD_SIZE", "4")
    parts = []
    for rank in range(4):
        monkeypatch.setenv("RANK", str(rank))
        parts.append(distributed.shard(batch))
    assert torch.equal(torch.cat(parts), batch)
    with pytest.raises(ValueError, match="divisible by the 4 processes"):
        distributed.shard(batch[:6])


def test_single_process_is_untouched(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    batch = torch.ones(3, 2)
    assert distributed.world() == (0, 1, 0) and not distributed.active() and distributed.is_main()
    assert distributed.shard(batch) is batch
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be a non-negative int"):
        distributed.world()


def test_readme_documents_the_multi_gpu_command():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "torchrun --nproc_per_node" in readme
