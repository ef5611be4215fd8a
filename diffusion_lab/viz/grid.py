"""Draw a frame's text as a grid of monospace cells with matplotlib (for the GIF and figures).

Each slot gets a fixed width, the longest text it ever shows in the trajectory (at least one
cell), so the text does not jump around as tokens appear; it moves only where a newline is
revealed. A cell's background says what the slot is: a confidence colour (the same binned,
lightened ``viridis`` as the HTML), grey for masked, red for taken back by a remasking rule, white
for the prompt. Tokens written at this step get a blue outline.

One `ax.text` per row and one `imshow` for all backgrounds keep a 256-slot frame at a few
milliseconds, which is what makes a 65-frame GIF cheap. Cells line up with glyphs because the
axes are sized so that one data unit is one glyph advance of DejaVu Sans Mono (0.6021 em).
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb

from diffusion_lab.trajectory import Trajectory
from diffusion_lab.viz.slots import MASK, PROMPT, SPECIAL, TAKEN_BACK, SlotReader, palette

FONT = "DejaVu Sans Mono"  # ships with matplotlib
ADVANCE = 0.6021  # glyph advance of FONT, in em
LINE = 1.6  # row height, in em
MASK_RGB, BACK_RGB, PLAIN_RGB = to_rgb("#c8c8c8"), to_rgb("#ef9a9a"), (1.0, 1.0, 1.0)
NEW_COLOUR = "#1565c0"
LEGEND = (
    "grey = masked   blue outline = written this step   red = taken back   "
    "white = prompt   colour = confidence"
)


class TextGrid:
    """The cell layout of every step of one sample, wrapped at ``cols`` cells."""

    def __init__(self, traj: Trajectory, sample: int = 0, cols: int = 64):
        if not isinstance(cols, int) or cols < 8:
            raise ValueError(f"cols must be an int >= 8, got {cols!r}")
        self.reader = SlotReader(traj, sample)
        self.num_steps, self.cols = traj.num_steps, cols
        self.slots = [self.reader.slots(k) for k in range(self.num_steps + 1)]
        n_slots = len(self.slots[0])
        self.widths = [1] * n_slots  # stable width per slot: its longest text, >= 1 cell
        for step in self.slots:
            for j, s in enumerate(step):
                self.widths[j] = max(self.widths[j], min(cols, len(s.text.replace("\n", ""))))
        self.layouts = [self._layout(k) for k in range(self.num_steps + 1)]
        self.rows = max(1, max(len(chars) for chars, _, _ in self.layouts))

    def _layout(self, step: int):
        """(rows of text, rows of colour codes, outlines as (row, first col, last col + 1))."""
        chars, codes, boxes = [[]], [[]], []
        colours = len(palette())
        for slot, width in zip(self.slots[step], self.widths, strict=True):
            if slot.kind in (MASK, TAKEN_BACK):
                text, code = " " * width, colours + (slot.kind == TAKEN_BACK)
            else:
                pad = 0 if "\n" in slot.text else width - len(slot.text)  # no pad after a break
                text = slot.text + " " * pad
                code = colours + 2 if slot.kind in (PROMPT, SPECIAL) else slot.bin
            if len(chars[-1]) + width > self.cols and chars[-1] and "\n" not in text:
                chars.append([])
                codes.append([])
            start = (len(chars) - 1, len(chars[-1]))
            for ch in text:
                if ch == "\n" or len(chars[-1]) >= self.cols:
                    if slot.new and len(chars[-1]) > start[1]:
                        boxes.append((start[0], start[1], len(chars[-1])))
                    chars.append([])
                    codes.append([])
                    start = (len(chars) - 1, 0)
                    if ch == "\n":
                        continue
                chars[-1].append(ch)
                codes[-1].append(code)
            if slot.new and len(chars[-1]) > start[1]:
                boxes.append((start[0], start[1], len(chars[-1])))
        return ["".join(r) for r in chars], codes, boxes

    def image(self, step: int) -> np.ndarray:
        """(rows, cols, 3) background colours of ``step``."""
        table = np.array([to_rgb(c) for c in palette()] + [MASK_RGB, BACK_RGB, PLAIN_RGB])
        codes = np.full((self.rows, self.cols), len(table) - 1)
        for r, row in enumerate(self.layouts[step][1]):
            codes[r, : len(row)] = row
        return table[codes]

    def outlines(self, step: int) -> list[np.ndarray]:
        return [
            np.array([[c0, r], [c1, r], [c1, r + 1], [c0, r + 1], [c0, r]], float)
            for r, c0, c1 in self.layouts[step][2]
        ]

    def size_in(self, fontsize: float) -> tuple[float, float]:
        """Width and height (inches) of the text area."""
        return self.cols * ADVANCE * fontsize / 72, self.rows * LINE * fontsize / 72


class GridPanel:
    """The artists of one `TextGrid` on an axes; `show` switches them to another step."""

    def __init__(self, ax, grid: TextGrid, fontsize: float, step: int = 0):
        self.ax, self.grid = ax, grid
        ax.set_axis_off()
        self.im = ax.imshow(
            grid.image(step), extent=(0, grid.cols, grid.rows, 0), interpolation="nearest",
            aspect="auto",
        )  # fmt: skip
        ax.set_xlim(0, grid.cols)
        ax.set_ylim(grid.rows, 0)
        self.texts = [
            ax.text(0, r + 0.68, "", family=FONT, fontsize=fontsize, va="baseline", ha="left")
            for r in range(grid.rows)
        ]
        self.lines = LineCollection([], colors=NEW_COLOUR, linewidths=1.6)
        ax.add_collection(self.lines)
        self.show(step)

    def show(self, step: int) -> None:
        rows = self.grid.layouts[step][0]
        self.im.set_data(self.grid.image(step))
        for r, t in enumerate(self.texts):
            t.set_text(rows[r] if r < len(rows) else "")
        self.lines.set_segments(self.grid.outlines(step))
