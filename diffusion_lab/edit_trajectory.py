"""What an edit sampler leaves behind: frames whose length changes.

A fixed-canvas `trajectory.Trajectory` keeps (B, L) ids per step: slot j is the same place in
every frame.  An edit run has no slots: a word inserted at the front moves every later word one
place to the right.  So each `EditFrame` keeps the sequences after its step *and* a diff view of
the step, the reading order of what was there and what is there now:

* ``KEPT`` a word that stayed, ``FIXED`` a word of the prompt no edit may touch;
* ``INSERTED`` a word this step put into a gap (everything after it has shifted right);
* ``SUBSTITUTED`` a word this step wrote over another one (``view_old`` holds the old one);
* ``DELETED`` a word this step took out (shown struck through, in the frame that deletes it).

``view_ids`` / ``view_kind`` / ``view_old`` are (B, D), padded with kind ``NONE``; the anchor
is not in the view.  `viz` draws the view (`viz.unmasking_widget`, `viz.save_gif`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

NONE, KEPT, INSERTED, SUBSTITUTED, DELETED, FIXED = range(6)
KIND_NAMES = ("none", "kept", "inserted", "substituted", "deleted", "fixed")


@dataclass
class EditFrame:
    """The state after one step (``t`` its time) and the view of the step's edits."""

    step: int
    t: float
    ids: torch.Tensor  # (B, W) anchor first, padding after each row's length
    lengths: torch.Tensor  # (B,) tokens of each row, the anchor included
    view_ids: torch.Tensor  # (B, D) what the view shows, in reading order
    view_kind: torch.Tensor  # (B, D) NONE KEPT INSERTED SUBSTITUTED DELETED FIXED
    view_old: torch.Tensor  # (B, D) the word a substitution replaced, else -1

    def counts(self) -> dict[str, torch.Tensor]:
        """(B,) insertions, deletions and substitutions this step made in each row."""
        return {name: (self.view_kind == kind).sum(1) for name, kind in
                (("inserted", INSERTED), ("deleted", DELETED), ("substituted", SUBSTITUTED))}


@dataclass
class EditTrajectory:
    """Final texts plus one `EditFrame` per step (``frames``) after the start state (``start``).

    ``forward_passes`` counts model calls (one per step for every row); ``edits`` holds each
    row's total insertions, deletions and substitutions over the run."""

    texts: list[str]
    frames: list[EditFrame]
    start: EditFrame
    tokenizer: object = field(repr=False)
    forward_passes: int = 0
    seconds: float = 0.0
    edits: dict[str, torch.Tensor] = field(default_factory=dict)
    strategy: str = "edit_flow"

    @property
    def num_steps(self) -> int:
        return len(self.frames)

    @property
    def batch_size(self) -> int:
        return self.start.ids.shape[0]

    def frame(self, step: int) -> EditFrame:
        """``frame(0)`` is the start state, ``frame(k)`` the state after step k."""
        if not isinstance(step, int) or not 0 <= step <= len(self.frames):
            raise ValueError(f"step must be an int in [0, {len(self.frames)}], got {step!r}")
        return self.start if step == 0 else self.frames[step - 1]

    def lengths(self, step: int | None = None) -> torch.Tensor:
        """(B,) words of each row after ``step`` (default: the end), the anchor not counted."""
        return self.frame(self.num_steps if step is None else step).lengths - 1

    def words(self, step: int, sample: int = 0) -> list[str]:
        """The words of one row after ``step`` (the anchor excluded)."""
        f = self.frame(step)
        ids = f.ids[sample, 1:int(f.lengths[sample])].tolist()
        return self.tokenizer.convert_ids_to_tokens(ids)
