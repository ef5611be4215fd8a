"""A frame's text as a grid of monospace cells: the layout, and two ways to draw it.

Each slot gets a fixed width, the longest text it ever shows in the trajectory (at least one
cell), so the text does not jump around as tokens appear; it moves only where a newline is
revealed.  An edit run has no fixed slots (`slots.EditSlotReader`): each word takes its own
width in each frame, so the words after an insertion visibly move right; inserted words are
green, substituted ones orange, deleted ones red and struck through.  A cell's background says
what the slot is: a confidence colour (the same binned, lightened ``viridis`` as the HTML), grey
for masked (one block per slot), red for remasked by a remasking rule, white for the prompt.
Tokens written at this step get a blue outline.

* `GridPanel` draws on a matplotlib axes (the still figures): one `imshow` for the backgrounds and
  one `ax.text` per row, the axes sized so that a data unit is one glyph advance of DejaVu Sans
  Mono (0.6021 em), which lines cells up with glyphs;
* `GridRaster` draws with Pillow in the same font file (the GIF): matplotlib renders text glyph by
  glyph, ~0.1 ms each, 10x slower for a 64-frame, 256-token animation.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb

from diffusion_lab.trajectory import Trajectory
from diffusion_lab.viz.slots import (
    DELETED,
    INSERTED,
    MASK,
    PROMPT,
    REMASKED,
    SPECIAL,
    SUBSTITUTED,
    TOKEN,
    palette,
    reader_for,
)

FONT = "DejaVu Sans Mono"  # ships with matplotlib
ADVANCE = 0.6021  # glyph advance of FONT, in em
LINE = 1.6  # row height, in em
MASK_RGB, BACK_RGB, PLAIN_RGB = to_rgb("#c8c8c8"), to_rgb("#ef9a9a"), (1.0, 1.0, 1.0)
INSERT_RGB, SUBSTITUTE_RGB = to_rgb("#c8e6c9"), to_rgb("#ffe0b2")  # the HTML's .i and .u
NEW_COLOUR, STRIKE_COLOUR = "#1565c0", "#c62828"
# colour codes after the confidence bins: masked, remasked or deleted, plain, inserted, replaced
EXTRA_RGB = (MASK_RGB, BACK_RGB, PLAIN_RGB, INSERT_RGB, SUBSTITUTE_RGB)
EXTRA_GUTTER = (PLAIN_RGB, PLAIN_RGB, PLAIN_RGB, INSERT_RGB, SUBSTITUTE_RGB)
LEGEND = (
    "grey = masked",
    "blue outline = written this step",
    "red = remasked",
    "white = prompt",
    "colour = confidence",
)
EDIT_LEGEND = (
    "green = inserted this step",
    "orange = substituted",
    "red, struck through = deleted",
    "blue outline = written this step",
)


def legend_lines(width_in: float, fontsize: float = 7, legend: tuple = LEGEND) -> list[str]:
    """``legend`` wrapped to a width (inches), about 0.55 em a character."""
    per_line = max(20, int(width_in * 72 / (0.55 * fontsize)))
    lines = [""]
    for item in legend:
        if lines[-1] and len(lines[-1]) + 3 + len(item) > per_line:
            lines.append("")
        lines[-1] += ("   " if lines[-1] else "") + item
    return lines


class TextGrid:
    """The cell layout of every step of one sample, wrapped at ``cols`` cells."""

    def __init__(self, traj: Trajectory, sample: int = 0, cols: int = 64):
        if not isinstance(cols, int) or cols < 8:
            raise ValueError(f"cols must be an int >= 8, got {cols!r}")
        self.reader = reader_for(traj, sample)
        self.num_steps, self.cols = traj.num_steps, cols
        self.slots = [self.reader.slots(k) for k in range(self.num_steps + 1)]
        self.legend = LEGEND if self.reader.fixed_slots else EDIT_LEGEND
        if self.reader.fixed_slots:  # stable width per slot: its longest text, >= 1 cell
            widths = [1] * len(self.slots[0])
            for step in self.slots:
                for j, s in enumerate(step):
                    widths[j] = max(widths[j], min(cols, len(s.text.replace("\n", ""))))
            self.widths = [widths] * (self.num_steps + 1)
        else:  # an edit run: each word as wide as itself, frame by frame
            self.widths = [[max(1, min(cols, len(s.text.replace("\n", "")))) for s in step]
                           for step in self.slots]
        self.layouts = [self._layout(k) for k in range(self.num_steps + 1)]
        self.rows = max(1, max(len(layout[0]) for layout in self.layouts))

    def _layout(self, step: int):
        """Rows of text, rows of colour codes, rows of slot-end flags, the outlines of new
        tokens and the strike-throughs of deleted ones, each as (row, first col, last col + 1)."""
        chars, codes, ends, boxes, strikes = [[]], [[]], [[]], [], []
        colours = len(palette())

        def new_row() -> None:
            chars.append([])
            codes.append([])
            ends.append([])

        def close(start: int, new: bool, struck: bool = False) -> None:  # a slot's row ends
            if len(chars[-1]) > start:
                ends[-1][-1] = True
                if new:
                    boxes.append((len(chars) - 1, start, len(chars[-1])))
                if struck:
                    strikes.append((len(chars) - 1, start, len(chars[-1])))

        plain = {PROMPT: 2, SPECIAL: 2, DELETED: 1, INSERTED: 3, SUBSTITUTED: 4}
        if not self.reader.fixed_slots:
            plain[TOKEN] = 2  # an edit run's words carry no confidence
        for slot, width in zip(self.slots[step], self.widths[step], strict=True):
            if slot.kind in (MASK, REMASKED):
                text, code = " " * width, colours + (slot.kind == REMASKED)
            else:
                pad = 0 if "\n" in slot.text else width - len(slot.text)  # no pad after a break
                text = slot.text + " " * pad
                code = colours + plain[slot.kind] if slot.kind in plain else slot.bin
            if len(chars[-1]) + width > self.cols and chars[-1] and "\n" not in text:
                new_row()
            start = len(chars[-1])
            struck = slot.kind == DELETED
            for ch in text:
                if ch == "\n" or len(chars[-1]) >= self.cols:
                    close(start, slot.new, struck)
                    new_row()
                    start = 0
                    if ch == "\n":
                        continue
                chars[-1].append(ch)
                codes[-1].append(code)
                ends[-1].append(False)
            close(start, slot.new, struck)
        return ["".join(r) for r in chars], codes, ends, boxes, strikes

    def pixels(self, step: int, cell_w: float = 6, cell_h: int = 8) -> np.ndarray:
        """(rows * cell_h, round(cols * cell_w), 3) uint8 background of ``step``.

        Masked and remasked slots keep a one-pixel white gutter on their right and bottom
        edges, so each masked slot reads as its own block."""
        bins = [to_rgb(c) for c in palette()]
        colours = bins + list(EXTRA_RGB)
        k = len(colours)
        gutter = bins + list(EXTRA_GUTTER)  # code + k on an edge pixel
        table = np.round(255 * np.array(colours + gutter)).astype(np.uint8)  # (2k, 3)
        codes = np.full((self.rows, self.cols), len(bins) + 2)  # plain
        ends = np.zeros((self.rows, self.cols), bool)
        code_rows, end_rows = self.layouts[step][1:3]
        for r, (row, end) in enumerate(zip(code_rows, end_rows, strict=True)):
            codes[r, : len(row)], ends[r, : len(end)] = row, end
        col = (np.arange(round(self.cols * cell_w)) / cell_w).astype(int).clip(0, self.cols - 1)
        edge = (np.r_[col[1:], -1] != col) & ends[:, col]  # (rows, W) last pixel of a slot
        per_col = codes[:, col]  # (rows, W)
        img = np.repeat(table[per_col + k * edge], cell_h, axis=0)  # (rows * cell_h, W, 3)
        img[cell_h - 1 :: cell_h] = table[per_col + k]  # last pixel row of each cell
        return img

    def outlines(self, step: int) -> list[np.ndarray]:
        return [
            np.array([[c0, r], [c1, r], [c1, r + 1], [c0, r + 1], [c0, r]], float)
            for r, c0, c1 in self.layouts[step][3]
        ]

    def strikes(self, step: int) -> list[np.ndarray]:
        """Lines through the words ``step`` deleted, in cell units."""
        return [np.array([[c0, r + 0.5], [c1, r + 0.5]], float)
                for r, c0, c1 in self.layouts[step][4]]

    def size_in(self, fontsize: float) -> tuple[float, float]:
        """Width and height (inches) of the text area."""
        return self.cols * ADVANCE * fontsize / 72, self.rows * LINE * fontsize / 72


class GridPanel:
    """The artists of one `TextGrid` on an axes; `show` switches them to another step."""

    def __init__(self, ax, grid: TextGrid, fontsize: float, step: int = 0):
        self.ax, self.grid = ax, grid
        ax.set_axis_off()
        self.im = ax.imshow(
            grid.pixels(step), extent=(0, grid.cols, grid.rows, 0), interpolation="nearest",
            aspect="auto",
        )  # fmt: skip
        ax.set_xlim(0, grid.cols)
        ax.set_ylim(grid.rows, 0)
        self.texts = [
            ax.text(0, r + 0.68, "", family=FONT, fontsize=fontsize, va="baseline", ha="left")
            for r in range(grid.rows)
        ]
        self.lines = LineCollection([], colors=NEW_COLOUR, linewidths=1.6)
        self.struck = LineCollection([], colors=STRIKE_COLOUR, linewidths=1.4)
        ax.add_collection(self.lines)
        ax.add_collection(self.struck)
        self.show(step)

    def show(self, step: int) -> None:
        rows = self.grid.layouts[step][0]
        self.im.set_data(self.grid.pixels(step))
        for r, t in enumerate(self.texts):
            t.set_text(rows[r] if r < len(rows) else "")
        self.lines.set_segments(self.grid.outlines(step))
        self.struck.set_segments(self.grid.strikes(step))


class GridRaster:
    """Pillow drawing of a `TextGrid` with a title and the legend: a GIF frame in ~10 ms.

    Text is DejaVu Sans Mono from matplotlib's own font files; cells are as wide as the advance
    Pillow uses for it, so they line up with the glyphs."""

    def __init__(self, grid: TextGrid, fontsize: float = 11, dpi: int = 100):
        from matplotlib import font_manager
        from PIL import ImageFont

        def font(family: str, pt: float):
            path = font_manager.findfont(font_manager.FontProperties(family=family))
            return ImageFont.truetype(path, max(6, round(pt * dpi / 72)))

        self.grid = grid
        self.mono = font(FONT, fontsize)
        self.cell_w = self.mono.getlength("M")  # the advance Pillow uses, so cells match glyphs
        self.cell_h = round(LINE * fontsize * dpi / 72)
        self.pad = round(0.15 * dpi)
        text_w = round(grid.cols * self.cell_w)
        self.width = text_w + 2 * self.pad
        self.title = font("DejaVu Sans", min(12.0, self.width * 72 / dpi / (0.6 * 48)))
        self.small = font("DejaVu Sans", 7)
        self.legend = legend_lines(self.width / dpi, 7, grid.legend)
        self.top = round(0.34 * dpi)
        self.line_h = round(0.14 * dpi)
        self.height = self.top + grid.rows * self.cell_h + (len(self.legend) + 1) * self.line_h

    def render(self, step: int, title: str):
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (self.width, self.height), "white")
        img.paste(
            Image.fromarray(self.grid.pixels(step, self.cell_w, self.cell_h)), (self.pad, self.top)
        )
        draw = ImageDraw.Draw(img)
        draw.text((self.width / 2, self.top / 2), title, font=self.title, fill="black", anchor="mm")
        for r, line in enumerate(self.grid.layouts[step][0]):
            y = self.top + (r + 0.5) * self.cell_h
            draw.text((self.pad, y), line, font=self.mono, fill="#111111", anchor="lm")
        for r, c0, c1 in self.grid.layouts[step][3]:
            x0, x1 = self.pad + round(c0 * self.cell_w), self.pad + round(c1 * self.cell_w)
            y0 = self.top + r * self.cell_h
            draw.rectangle((x0, y0, x1 - 1, y0 + self.cell_h - 1), outline=NEW_COLOUR, width=2)
        for r, c0, c1 in self.grid.layouts[step][4]:
            x0, x1 = self.pad + round(c0 * self.cell_w), self.pad + round(c1 * self.cell_w)
            y = self.top + round((r + 0.5) * self.cell_h)
            draw.line((x0, y, x1 - 1, y), fill=STRIKE_COLOUR, width=2)
        y = self.top + self.grid.rows * self.cell_h + self.line_h
        for line in self.legend:
            draw.text((self.width / 2, y), line, font=self.small, fill="#444444", anchor="mm")
            y += self.line_h
        return img
