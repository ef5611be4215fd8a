"""How long a chapter takes on the ``gpu`` profile on a Colab T4, from measured FLOPs.

No GPU was available where this was written, so the book states an *estimate*:

    seconds = FLOPs / (peak * utilisation)

* FLOPs are *measured*, not guessed: `flops_per_sequence` runs one forward (and backward) pass of
  the profile's model over one ``seq_len`` sequence under ``torch.utils.flop_counter`` and the
  totals scale with the tokens a chapter trains on and generates (`chapter_work`);
* peak: NVIDIA's T4 datasheet, 65 TFLOPS fp16 on tensor cores (training runs under autocast fp16
  with a gradient scaler on a T4, which has no bf16), 8.1 TFLOPS fp32;
* utilisation: 15% of peak, an assumption for models this small (d = 256, 6 layers, batch 64 x
  256 tokens): kernel launches and the optimiser step weigh more than in large models. Replace it
  with a measured tokens/s once a chapter has run on a T4 (``info["tokens_per_s"]`` in the zoo).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import Profile


@dataclass(frozen=True)
class Accelerator:
    """A device's published peak throughput (TFLOPS)."""

    name: str
    fp16_tflops: float
    fp32_tflops: float


T4 = Accelerator("Tesla T4", fp16_tflops=65.0, fp32_tflops=8.1)
UTILISATION = 0.15


def flops_per_sequence(model, seq_len: int, backward: bool = True) -> float:
    """FLOPs of one forward (+ backward) pass over one sequence of ``seq_len`` tokens."""
    from torch.utils.flop_counter import FlopCounterMode

    vocab = model.get_input_embeddings().num_embeddings
    ids = torch.randint(0, vocab, (1, seq_len))
    model.train(backward)
    with FlopCounterMode(display=False) as counter:
        out = model(input_ids=ids).logits
        if backward:
            out.float().mean().backward()
    model.zero_grad(set_to_none=True)
    model.eval()
    return float(counter.get_total_flops())


@dataclass(frozen=True)
class Work:
    """What a chapter computes: sequences trained (forward+backward) and generated (forward)."""

    train_sequences: int
    forward_sequences: int
    extra_flops: float = 0.0  # work outside the profile's model (chapter 7's roberta-base)


ROBERTA_BASE_PARAMS = 124.6e6  # fine-tuned in chapter 7 on the gpu profile when online


def chapter_work(prof: Profile) -> dict[str, Work]:
    """Per chapter, on a fresh runtime (the shared models trained in the first chapter that
    needs them; a later chapter in the same session finds them cached and is faster).

    Counts follow the chapters' cells: ``zoo.pretrained`` trains ``train_steps`` x
    ``batch_size`` sequences per model; generation counts forward passes x samples (rounded up:
    the chapters' sweeps over step budgets and strategies).
    """
    zoo = prof.train_steps * prof.batch_size
    quick = prof.quick_steps * prof.batch_size
    sweep = prof.num_samples * prof.gen_steps  # one strategy at the profile's step budget
    hub = (6 * ROBERTA_BASE_PARAMS * prof.quick_steps * 16 * 257  # batch 16, 257 tokens
           if prof.name == "gpu" else 0.0)
    return {
        "00_intro": Work(2 * zoo, prof.num_samples * prof.gen_steps),
        "01_mlm": Work(zoo, prof.eval_blocks * 10),
        "02_gibbs": Work(2 * zoo, 3 * sweep * (1 + 1 / 4 + 4) + prof.gen_length * 8),
        "03_generative_mlm": Work(3 * zoo, 12 * sweep),
        "04_diffusion": Work(4 * zoo, 6 * sweep + 3 * prof.eval_blocks * 8),
        "05_sampling": Work(2 * zoo + quick, 16 * sweep),
        "06_remasking": Work(3 * zoo + 2 * quick + 2 * quick, 20 * sweep),
        "07_pretrained_race": Work(2 * zoo + 2 * quick, 8 * sweep, hub),
    }


def estimate_seconds(flops: float, device: Accelerator = T4, amp: bool = True,
                     utilisation: float = UTILISATION) -> float:
    """``flops / (peak * utilisation)``; peak = fp16 tensor cores under AMP, else fp32."""
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation must be in (0, 1], got {utilisation!r}")
    peak = device.fp16_tflops if amp else device.fp32_tflops
    return flops / (peak * 1e12 * utilisation)


def chapter_estimates(prof: Profile, device: Accelerator = T4,
                      utilisation: float = UTILISATION) -> dict[str, float]:
    """Estimated seconds per chapter for ``prof`` on ``device`` (see the module docstring)."""
    from . import data, models

    tok = data.CharTokenizer.from_texts(["abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
    model = models.tiny_mlm(tok, size=prof.model_size, max_length=prof.seq_len)
    train_f = flops_per_sequence(model, prof.seq_len, backward=True)
    fwd_f = flops_per_sequence(model, prof.seq_len, backward=False)
    return {name: estimate_seconds(w.train_sequences * train_f + w.forward_sequences * fwd_f
                                   + w.extra_flops, device, True, utilisation)
            for name, w in chapter_work(prof).items()}
