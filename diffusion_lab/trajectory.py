"""What a sampler leaves behind: the reverse process, one frame per model call.

A `Trajectory` is the record that `diffusion_lab.generate` returns.  The book animates it
(`viz.unmasking_widget`), plots it (`viz.confidence_heatmap`) and races it against an
autoregressive run (`viz.race`), so it keeps, for every step, everything a reader may want to see:

* ``ids``        (B, L) token ids after the step; still-masked slots hold ``tok.mask_token_id``
* ``mask``       (B, L) True where the slot is still masked after the step
* ``confidence`` (B, L) the model's probability of the token in each slot when it was decoded
  (1.0 for fixed prompt slots, 0.0 for masked slots)
* ``revealed``   (B, L) True where this step wrote a token (a masked slot decoded, or a decoded
  slot revised)
* ``remasked``   (B, L) True where this step took a decoded token back to the mask

Position 0 of every row is the [CLS] anchor: it is never masked and never shown in ``texts``.
``texts`` end at the first [EOS] the sampler wrote (the [EOS] and what follows are dropped);
the frames keep every slot, [EOS] included.  All tensors are kept on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def decode_texts(tok, ids: torch.Tensor, fixed: torch.Tensor) -> list[str]:
    """Decode rows of ``ids`` (B, L) without the anchor, each cut at its first generated [EOS]."""
    ids, fixed = ids.cpu(), fixed.cpu()
    rows = ids[:, 1:].tolist()
    eos = getattr(tok, "eos_token_id", None)
    if eos is not None:
        is_eos = (ids[:, 1:] == eos) & ~fixed[:, 1:]
        ends = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.tensor(len(rows[0])))
        rows = [row[:end] for row, end in zip(rows, ends.tolist(), strict=True)]
    return tok.batch_decode(rows, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@dataclass
class Frame:
    """The state of the sequence after one reverse step (tensors of shape (B, L))."""

    step: int
    ids: torch.Tensor
    mask: torch.Tensor
    confidence: torch.Tensor
    revealed: torch.Tensor
    remasked: torch.Tensor


@dataclass
class Trajectory:
    """Final samples plus one `Frame` per reverse step.

    ``texts`` are the decoded final samples (prompt included, anchor excluded); ``start`` is the
    state before the first step (all generated slots masked, or random tokens for SUNDAE);
    ``fixed`` (B, L) marks the slots the sampler was not allowed to touch (anchor, prompt, infill
    context); ``forward_passes`` counts model calls; ``seconds`` is the wall-clock of the loop;
    ``passes_per_row`` (B,), where a sampler counts them (``block_sampling``), the passes each row
    needed before it finished (rows of a batch run in lock step).
    """

    texts: list[str]
    frames: list[Frame]
    start: Frame
    fixed: torch.Tensor
    tokenizer: object = field(repr=False)
    strategy: str = ""
    forward_passes: int = 0
    seconds: float = 0.0
    passes_per_row: torch.Tensor | None = None

    @property
    def ids(self) -> torch.Tensor:
        """(B, L) final token ids, anchor included."""
        return self.frames[-1].ids if self.frames else self.start.ids

    @property
    def num_steps(self) -> int:
        return len(self.frames)

    def tokens(self, step: int, sample: int = 0) -> list[str]:
        """The tokens of one sample after ``step`` (0 = the start state), anchor excluded.

        Each token is decoded on its own (so byte-level BPE pieces read as text); masked slots
        come back as the tokenizer's mask token string, e.g. ``"[MASK]"``."""
        frame = self.start if step == 0 else self.frames[step - 1]
        ids = frame.ids[sample, 1:].tolist()
        return self.tokenizer.batch_decode(
            [[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def frame(self, step: int) -> Frame:
        """``frame(0)`` is the start state, ``frame(k)`` the state after step k."""
        if not 0 <= step <= len(self.frames):
            raise ValueError(f"step must be in [0, {len(self.frames)}], got {step!r}")
        return self.start if step == 0 else self.frames[step - 1]
