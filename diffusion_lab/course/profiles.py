"""The three run profiles (``cpu`` / ``gpu`` / ``smoke``).

One notebook, three sizes: every chapter asks ``dl.profile()`` for its model size, sequence length,
batch size and training steps, so the same cells finish in minutes on a laptop's CPU and scale up
on a Colab GPU.  ``DIFFUSION_LAB_PROFILE`` overrides the automatic choice (gpu on CUDA, else
cpu: `runtime.get_device`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..runtime import get_device

PROFILE_NAMES = ("cpu", "gpu", "smoke")


@dataclass(frozen=True)
class Profile:
    """Sizes for one kind of machine.  Chapters read these instead of hard-coding numbers.

    ``train_steps`` is the budget of the shared book model (the one trained once and cached);
    ``quick_steps`` the budget of the small per-chapter experiments.
    """

    name: str
    model_size: str
    seq_len: int
    batch_size: int
    train_steps: int
    quick_steps: int
    lr: float
    warmup: int
    corpus: str
    gen_length: int
    gen_steps: int
    num_samples: int
    eval_blocks: int

    def with_(self, **changes) -> Profile:
        """A copy with some fields changed (``profile().with_(train_steps=10)``)."""
        return replace(self, **changes)


PROFILES = {
    # Tuned on 2 CPU cores (bench/tune_cpu_profile.py): 600 MDLM steps at lr 2e-3 reached 3.32
    # held-out bits/char; 500 steps keep each shared model near 100 s so the book fits 15 min.
    "cpu": Profile(
        name="cpu", model_size="s", seq_len=128, batch_size=32, train_steps=500,
        quick_steps=250, lr=2e-3, warmup=100, corpus="shakespeare", gen_length=127,
        gen_steps=32, num_samples=16, eval_blocks=64,
    ),
    # A Colab T4 or better: larger model, longer sequences, more steps. gen_length 255: the
    # [CLS] anchor takes one of the seq_len positions (256 made every generate() call fail).
    "gpu": Profile(
        name="gpu", model_size="m", seq_len=256, batch_size=64, train_steps=6000,
        quick_steps=2000, lr=1e-3, warmup=300, corpus="shakespeare", gen_length=255,
        gen_steps=64, num_samples=32, eval_blocks=256,
    ),
    # Seconds: only for quick local loops and tests, never what CI or the website shows.
    "smoke": Profile(
        name="smoke", model_size="xs", seq_len=64, batch_size=8, train_steps=20,
        quick_steps=10, lr=2e-3, warmup=5, corpus="shakespeare", gen_length=48,
        gen_steps=8, num_samples=4, eval_blocks=8,
    ),
}


def profile(name: str | None = None) -> Profile:
    """The run profile: ``name``, else ``DIFFUSION_LAB_PROFILE``, else gpu on CUDA, else cpu."""
    chosen = name or os.environ.get("DIFFUSION_LAB_PROFILE", "").strip()
    if not chosen:
        chosen = "gpu" if get_device().type == "cuda" else "cpu"
    if chosen not in PROFILES:
        raise ValueError(f"profile must be one of {list(PROFILE_NAMES)}, got {chosen!r}")
    return PROFILES[chosen]
