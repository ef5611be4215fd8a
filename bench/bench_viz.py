"""How heavy is an unmasking animation? Build time and embedded state for 256 tokens x 64 steps.

The book's pages carry every frame of every animation in their widget state, so the state size is
what a reader downloads. Targets: building the widget < 1 s on a CPU; the embedded state (what
`ipywidgets.embed.embed_data(..., state=dependency_state(box))` writes) <= 2 MB. The same for a race
of a 256-pass autoregressive run against the 64-step run, and the time of a GIF, for context.

    .venv/bin/python bench/bench_viz.py

The trajectory is synthetic (no model): a WordLevel tokenizer of ~150 words, 256 slots revealed in
a seeded random order (4 a step), confidences uniform in [0.05, 1), a few slots remasked.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from ipywidgets.embed import dependency_state
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from diffusion_lab.trajectory import Frame, Trajectory
from diffusion_lab.viz import race, save_gif, unmasking_widget

TOKENS, STEPS = 256, 64
BUILD_TARGET_S, STATE_TARGET_BYTES = 1.0, 2_000_000
WORDS = (
    "the of and to a in is it you that he was for on are with as his they be at one have this "
    "from or had by not word but what some we can out other were all there when up use your how "
    "said an each she which do their time if will way about many then them write would like so "
    "these her long make thing see him two has look more day could go come did number sound no "
    "most people my over know water than call first who may down side been now find any new work "
    "part take get place made live where after back little only round man year came show every "
    "good me give our under name very through just form sentence great think say help low line"
).split()


def tokenizer() -> PreTrainedTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[MASK]", "\n", ".", ","] + [" " + w for w in WORDS]
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, "[UNK]")),
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", mask_token="[MASK]",
    )  # fmt: skip


def synthetic_trajectory(length: int, steps: int, *, seed: int = 0, remask: int = 3) -> Trajectory:
    """``length`` slots revealed over ``steps`` steps; ``remask`` slots remasked mid-way."""
    tok = tokenizer()
    g = torch.Generator().manual_seed(seed)
    L = length + 1
    final = torch.randint(4, len(tok), (1, L), generator=g)
    final[0, 0] = tok.cls_token_id
    fixed = torch.zeros(1, L, dtype=torch.bool)
    fixed[0, 0] = True
    order = (torch.randperm(length, generator=g) + 1).tolist()
    chunks = [order[i::steps] for i in range(steps)]
    conf_final = torch.rand(1, L, generator=g) * 0.95 + 0.05
    mask, zeros = ~fixed, torch.zeros(1, L, dtype=torch.bool)
    ids = torch.where(mask, tok.mask_token_id, final)
    start = Frame(0, ids, mask.clone(), torch.where(mask, 0.0, 1.0), zeros, zeros)
    taken = {steps // 2: chunks[1][:remask]}  # revealed at step 2, remasked mid-way
    frames = []
    for k in range(1, steps + 1):
        revealed, remasked = zeros.clone(), zeros.clone()
        revealed[0, chunks[k - 1]] = True
        remasked[0, taken.get(k, [])] = True
        revealed[0, taken.get(k - 1, [])] = True  # and revealed again at the next step
        mask = (mask & ~revealed) | remasked
        ids = torch.where(mask, tok.mask_token_id, final)
        conf = torch.where(mask, 0.0, torch.where(fixed, 1.0, conf_final))
        frames.append(Frame(k, ids, mask.clone(), conf, revealed, remasked))
    text = tok.decode(final[0, 1:].tolist())
    return Trajectory([text], frames, start, fixed, tok, "synthetic", steps, 0.0)


def state_bytes(box) -> tuple[int, int]:
    """Bytes of the embedded state: as `embed_snippet` writes it (ASCII) and as UTF-8 JSON."""
    state = dependency_state([box])
    return len(json.dumps(state)), len(json.dumps(state, ensure_ascii=False).encode())


def timed(fn, repeat: int = 3) -> tuple[float, float, object]:
    """(first call seconds, median of the rest, last result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times[1:] or times), out


def main() -> None:
    traj = synthetic_trajectory(TOKENS, STEPS)
    cold, warm, box = timed(lambda: unmasking_widget(traj, link="js"))
    ascii_b, utf8_b = state_bytes(box)
    per_frame = statistics.mean(len(c.value) for c in box.stack.children)
    print(f"unmasking_widget, {TOKENS} tokens x {STEPS} steps ({STEPS + 1} frames)")
    print(f"  build time   first {cold:.3f} s, then {warm:.3f} s   target < {BUILD_TARGET_S} s"
          f"   ratio {warm / BUILD_TARGET_S:.2f}")  # fmt: skip
    print(f"  state size   {ascii_b / 1e6:.3f} MB (ASCII JSON, as embed_snippet writes), "
          f"{utf8_b / 1e6:.3f} MB (UTF-8)   target <= {STATE_TARGET_BYTES / 1e6:.1f} MB"
          f"   ratio {ascii_b / STATE_TARGET_BYTES:.2f}")  # fmt: skip
    print(
        f"  frame HTML   {per_frame / 1e3:.1f} kB on average, {len(dependency_state([box]))} models"
    )

    ar = synthetic_trajectory(TOKENS, TOKENS, seed=1, remask=0)  # one token a pass
    cold, warm, rbox = timed(lambda: race(ar, traj, link="js"), repeat=2)
    ascii_b, utf8_b = state_bytes(rbox)
    print(f"race, AR {TOKENS} passes vs diffusion {STEPS} passes")
    print(f"  build time   {warm:.3f} s   state {ascii_b / 1e6:.3f} MB (ASCII), "
          f"{utf8_b / 1e6:.3f} MB (UTF-8)   ratio to 2 MB "
          f"{ascii_b / STATE_TARGET_BYTES:.2f}")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = save_gif(traj, Path(tmp) / "bench.gif")
        gif_s = time.perf_counter() - t0
        print(
            f"save_gif       {gif_s:.2f} s, {path.stat().st_size / 1e3:.0f} kB, {STEPS + 1} frames"
        )


if __name__ == "__main__":
    main()
