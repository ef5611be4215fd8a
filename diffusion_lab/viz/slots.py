"""What each visible slot of a `Trajectory` frame shows: the one reading every renderer shares.

A *slot* is one sequence position after the [CLS] anchor. At a given step it is a fixed prompt
token, a still-masked position, a position just sent back to the mask by a remasking rule, a
special token, or a generated token with the model's confidence p(token). The HTML frames, the GIF
and the static figures all draw from a reader's ``slots``, so they cannot disagree about a frame.

An edit run (`edit_trajectory.EditTrajectory`) has no fixed slots: `EditSlotReader` reads each
frame's diff view instead — words kept, inserted, substituted (the old word kept for a tooltip)
or deleted (shown struck through in the frame that deletes them) — and `reader_for` picks the
reader a trajectory needs.

Confidence is drawn with one colour scale everywhere: ``viridis`` (the heatmap's map), binned into
`N_BINS` classes and lightened towards white behind text so that dark glyphs stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from diffusion_lab import edit_trajectory as et
from diffusion_lab.trajectory import Trajectory

N_BINS = 10  # confidence classes c0..c9: [0, .1), [.1, .2), ..., [.9, 1]
CMAP = "viridis"
LIGHTEN = 0.55  # share of white mixed into the colour behind text

# kinds of slot
PROMPT, MASK, REMASKED, TOKEN, SPECIAL = "prompt", "mask", "remasked", "token", "special"
INSERTED, DELETED, SUBSTITUTED = "inserted", "deleted", "substituted"  # an edit run's words


@dataclass(frozen=True)
class Slot:
    """One visible position at one step."""

    text: str  # display text ("" for masked slots)
    kind: str  # PROMPT | MASK | REMASKED | TOKEN | SPECIAL | INSERTED | DELETED | SUBSTITUTED
    confidence: float  # p(token) when it was decoded; 0.0 for masked slots
    new: bool  # this step wrote the token (revealed, revised, inserted or substituted)
    was: str = ""  # for REMASKED / SUBSTITUTED: the token the step took away

    @property
    def bin(self) -> int:
        return confidence_bin(self.confidence)


def confidence_bin(p: float) -> int:
    """The colour class of a probability: ``min(N_BINS - 1, floor(p * N_BINS))``."""
    return max(0, min(N_BINS - 1, int(p * N_BINS)))


@cache
def palette() -> tuple[str, ...]:
    """``N_BINS`` hex colours, low to high confidence: lightened ``viridis`` bin centres."""
    import matplotlib

    cmap = matplotlib.colormaps[CMAP]
    out = []
    for k in range(N_BINS):
        r, g, b, _ = cmap((k + 0.5) / N_BINS)
        r, g, b = (LIGHTEN + (1 - LIGHTEN) * c for c in (r, g, b))
        out.append("#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b))))
    return tuple(out)


def check_sample(traj: Trajectory | et.EditTrajectory, sample: int) -> None:
    """Validate the public ``traj`` and ``sample`` arguments."""
    if not isinstance(traj, (Trajectory, et.EditTrajectory)):
        raise TypeError(f"traj must be a diffusion_lab.Trajectory or an EditTrajectory, got "
                        f"{type(traj).__name__}")
    batch = traj.start.ids.shape[0]
    if not isinstance(sample, int) or not 0 <= sample < batch:
        raise ValueError(f"sample must be an int in [0, {batch - 1}], got {sample!r}")


class SlotReader:
    """Decodes a trajectory's slots for one sample, each distinct token id once.

    ``Trajectory.tokens`` decodes every slot of a frame on its own; a 256-slot x 64-step
    animation would decode 16k ids. This reads the same strings (single-id ``batch_decode``,
    special tokens kept, no clean-up) from a per-id cache.
    """

    def __init__(self, traj: Trajectory, sample: int = 0):
        check_sample(traj, sample)
        self.traj, self.sample = traj, sample
        tok = traj.tokenizer
        self.mask_id = getattr(tok, "mask_token_id", None)
        self.special = set(getattr(tok, "all_special_ids", []) or []) - {self.mask_id}
        decoder = getattr(getattr(tok, "backend_tokenizer", None), "decoder", None)
        self.wordpiece = type(decoder).__name__ == "WordPiece"
        self.fixed = traj.fixed[sample, 1:].tolist()
        frames = [traj.start, *traj.frames]
        ids = torch.unique(torch.cat([f.ids[sample, 1:] for f in frames])).tolist()
        pieces = tok.batch_decode(
            [[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        self.text = dict(zip(ids, pieces, strict=True))

    def _display(self, i: int, first: bool) -> str:
        s = self.text[i]
        if self.wordpiece and i not in self.special:  # BERT pieces: "##ing" joins, words space
            s = s[2:] if s.startswith("##") else s if first else " " + s
        return s

    def slots(self, step: int) -> list[Slot]:
        """The visible slots after ``step`` (0 = the start state)."""
        f = self.traj.frame(step)
        b = self.sample
        ids = f.ids[b, 1:].tolist()
        mask = f.mask[b, 1:].tolist()
        conf = f.confidence[b, 1:].tolist()
        new = f.revealed[b, 1:].tolist() if step else [False] * len(ids)
        back = f.remasked[b, 1:].tolist() if step else [False] * len(ids)
        prev = self.traj.frame(step - 1).ids[b, 1:].tolist() if step and any(back) else ids
        out = []
        for j, i in enumerate(ids):
            if self.fixed[j] and i in self.special:
                continue  # prompt padding: not part of the text
            if mask[j]:
                was = self._display(prev[j], not out) if back[j] else ""
                out.append(Slot("", REMASKED if back[j] else MASK, 0.0, False, was))
            elif self.fixed[j]:
                out.append(Slot(self._display(i, not out), PROMPT, 1.0, False))
            else:
                kind = SPECIAL if i in self.special else TOKEN
                out.append(Slot(self._display(i, not out), kind, float(conf[j]), bool(new[j])))
        return out

    fixed_slots = True  # slot j is the same position in every frame

    def label(self, step: int) -> str:
        """The step's caption: ``"step 7/32, 41 tokens revealed"`` (+ remasked)."""
        from diffusion_lab.viz.html import step_label

        return step_label(step, self.traj.num_steps, self.revealed_count(step),
                          self.remasked_count(step))

    def revealed_count(self, step: int) -> int:
        """Generated (non-fixed) slots that hold a token after ``step``."""
        f = self.traj.frame(step)
        free = ~f.mask[self.sample, 1:] & ~self.traj.fixed[self.sample, 1:]
        return int(free.sum())

    def remasked_count(self, step: int) -> int:
        if step == 0:
            return 0
        return int(self.traj.frame(step).remasked[self.sample, 1:].sum())


class EditSlotReader:
    """The words of one row of an `EditTrajectory`, frame by frame, with this step's edits."""

    fixed_slots = False  # words move: an insertion shifts everything after it

    KINDS = {et.KEPT: TOKEN, et.FIXED: PROMPT, et.INSERTED: INSERTED, et.DELETED: DELETED,
             et.SUBSTITUTED: SUBSTITUTED}

    def __init__(self, traj: et.EditTrajectory, sample: int = 0):
        check_sample(traj, sample)
        self.traj, self.sample = traj, sample
        frames = [traj.start, *traj.frames]
        ids = torch.cat([torch.cat([f.view_ids[sample], f.view_old[sample]]) for f in frames])
        ids = torch.unique(ids[ids >= 0]).tolist()
        self.text = dict(zip(ids, traj.tokenizer.batch_decode(
            [[i] for i in ids], skip_special_tokens=False, clean_up_tokenization_spaces=False),
            strict=True))
        decoder = getattr(getattr(traj.tokenizer, "backend_tokenizer", None), "decoder", None)
        self.spaced = type(decoder).__name__ in ("WordPiece", "Metaspace") or " " not in "".join(
            self.text.values())  # words: shown with a space between them

    def _display(self, i: int, first: bool) -> str:
        s = self.text.get(i, "")
        if self.spaced:
            s = s[2:] if s.startswith("##") else s if first else " " + s
        return s

    def slots(self, step: int) -> list[Slot]:
        """The words after ``step`` in reading order, with the ones it deleted still shown."""
        f = self.traj.frame(step)
        out = []
        for i, kind, old in zip(f.view_ids[self.sample].tolist(),
                                f.view_kind[self.sample].tolist(),
                                f.view_old[self.sample].tolist(), strict=True):
            if kind == et.NONE:
                continue
            shown = self.KINDS[kind]
            new = shown in (INSERTED, SUBSTITUTED)
            out.append(Slot(self._display(i, not out), shown, 1.0, new,
                            self._display(old, True) if old >= 0 else ""))
        return out

    def counts(self, step: int) -> dict[str, int]:
        """Words inserted, deleted and substituted by ``step`` in this row (0 at the start)."""
        f = self.traj.frame(step)
        return {name: int(value[self.sample]) for name, value in f.counts().items()}

    def label(self, step: int) -> str:
        """``"step 3/16, 5 words: +2 inserted, -1 deleted, 1 substituted"``."""
        words = int(self.traj.frame(step).lengths[self.sample]) - 1
        c = self.counts(step)
        text = f"step {step}/{self.traj.num_steps}, {words} word{'s' * (words != 1)}"
        edits = [f"+{c['inserted']} inserted"] * bool(c["inserted"])
        edits += [f"-{c['deleted']} deleted"] * bool(c["deleted"])
        edits += [f"{c['substituted']} substituted"] * bool(c["substituted"])
        return text + (": " + ", ".join(edits) if edits else "")


def reader_for(traj, sample: int = 0) -> SlotReader | EditSlotReader:
    """The slot reader of ``traj``: `EditSlotReader` for an edit run, else `SlotReader`."""
    check_sample(traj, sample)
    return EditSlotReader(traj, sample) if isinstance(traj, et.EditTrajectory) else SlotReader(
        traj, sample)
