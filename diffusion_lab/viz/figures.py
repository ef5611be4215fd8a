"""Pictures of a trajectory that need no JavaScript: a GIF, a confidence heatmap, a still.

* `save_gif` draws every frame (start + one per step) with Pillow, in matplotlib's DejaVu Sans
  Mono and the shared colours, and writes the GIF, holding the last frame longer;
* `confidence_heatmap` is steps x positions of p(token), masked slots in a separate colour;
* `final_state_figure` is the static fallback for the animation: the final text (or a few steps)
  with the same cell colours as the GIF.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from diffusion_lab.trajectory import Trajectory
from diffusion_lab.viz.grid import GridPanel, GridRaster, TextGrid, legend_lines
from diffusion_lab.viz.html import step_label
from diffusion_lab.viz.slots import N_BINS, check_sample, palette

PAD_IN, TITLE_IN, LINE_IN, CBAR_IN = 0.15, 0.34, 0.14, 0.75  # margins, inches
LEGEND_PT = 7


def _legend(fig: Figure, fig_h: float, lines: list[str]) -> None:
    """The legend lines, centred, at the bottom of the figure."""
    for i, line in enumerate(reversed(lines)):
        y = (PAD_IN / 2 + (i + 0.5) * LINE_IN) / fig_h
        fig.text(0.5, y, line, ha="center", va="center", fontsize=LEGEND_PT, color="#444")


def _legend_in(lines: list[str]) -> float:
    return PAD_IN / 2 + len(lines) * LINE_IN + 0.05


def _title(grid: TextGrid, step: int) -> str:
    r = grid.reader
    return step_label(step, grid.num_steps, r.revealed_count(step), r.remasked_count(step))


def save_gif(
    traj: Trajectory,
    path: str | Path,
    fps: float = 4,
    sample: int = 0,
    *,
    cols: int = 64,
    hold_last: float = 2.0,
    fontsize: float = 11,
    dpi: int = 100,
    comment: str | None = None,
) -> Path:
    """Write the animation of one sample as a GIF of ``num_steps + 1`` frames; return the path.

    Each frame is the text grid (masked slots as grey blocks, confidence as background colour,
    this step's tokens outlined, remasked slots red) titled "step i/N, k tokens revealed".
    Frames last ``1/fps`` s; the final one ``max(1/fps, hold_last)`` s.  ``comment``: text
    stored in the GIF's comment extension (Pillow reads it back as ``info["comment"]``).
    """
    check_sample(traj, sample)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")

    grid = TextGrid(traj, sample, cols)
    raster = GridRaster(grid, fontsize, dpi)
    images = [raster.render(k, _title(grid, k)) for k in range(grid.num_steps + 1)]
    frame_ms = 1000 / fps
    durations = [round(frame_ms)] * (len(images) - 1) + [round(max(frame_ms, 1000 * hold_last))]
    path = Path(path)
    # Every frame differs (the title counts steps), so Pillow keeps all of them: it merges
    # identical consecutive frames into one.
    from PIL import Image

    frames = [im.quantize(128, method=Image.Quantize.FASTOCTREE) for im in images]  # 3x faster
    extra = {} if comment is None else {"comment": comment.encode()}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   **extra)
    return path


def confidence_heatmap(traj: Trajectory, sample: int = 0, ax=None):
    """Image of p(token) per reverse step (rows) and position (columns); returns the Axes.

    Still-masked slots are NaN, drawn light grey; slots a remasking rule took back at a step are
    marked with a red x. Position 0 is the first slot after the [CLS] anchor.
    """
    check_sample(traj, sample)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    frames = [traj.frame(k) for k in range(traj.num_steps + 1)]
    conf = np.stack([f.confidence[sample, 1:].double().numpy() for f in frames])  # (N+1, L-1)
    masked = np.stack([f.mask[sample, 1:].numpy() for f in frames])
    data = np.where(masked, np.nan, conf)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dcdcdc")
    im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1)
    ax.grid(False)  # a grid over an image hides cells
    back = np.stack([f.remasked[sample, 1:].numpy() for f in frames[1:]]) if frames[1:] else None
    if back is not None and back.any():
        rows, cols = np.nonzero(back)
        ax.scatter(cols, rows + 1, marker="x", s=12, color="#d32f2f", label="remasked")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("position")
    ax.set_ylabel("reverse step")
    who = f" ({traj.strategy})" if traj.strategy else ""
    ax.set_title(f"Confidence of each token as it appears{who}; grey = still masked")
    ax.figure.colorbar(im, ax=ax, label="model confidence p(token)")
    return ax


def final_state_figure(
    traj: Trajectory,
    sample: int = 0,
    *,
    steps: Sequence[int] | None = None,
    cols: int = 64,
    fontsize: float = 11,
) -> Figure:
    """A still of the animation for readers without JavaScript: the final text, or a few steps.

    ``steps`` picks the panels (default: only the last step), each titled like the animation's
    label, with a colour bar of the confidence bins below. Returns the `matplotlib.figure.Figure`,
    already closed in pyplot: a notebook shows it once, as the cell's value (``fig.savefig`` works).
    """
    check_sample(traj, sample)
    grid = TextGrid(traj, sample, cols)
    steps = [grid.num_steps] if steps is None else list(steps)
    if not steps:
        raise ValueError("steps must name at least one step, got an empty sequence")
    for k in steps:
        if not isinstance(k, int) or not 0 <= k <= grid.num_steps:
            raise ValueError(f"steps must be ints in [0, {grid.num_steps}], got {k!r}")
    w, h = grid.size_in(fontsize)
    panel_h = TITLE_IN + h
    fig_w = w + 2 * PAD_IN
    lines = legend_lines(fig_w, LEGEND_PT)
    below = CBAR_IN + _legend_in(lines)
    fig_h = PAD_IN + len(steps) * panel_h + below
    import matplotlib.pyplot as plt  # made by pyplot so Jupyter's inline backend can display it

    fig = plt.figure(figsize=(fig_w, fig_h), dpi=100, facecolor="white")
    plt.close(fig)  # ...but not twice (once at the end of the cell, once as its value)
    for i, k in enumerate(steps):
        bottom = fig_h - PAD_IN - (i + 1) * panel_h
        ax = fig.add_axes((PAD_IN / fig_w, bottom / fig_h, w / fig_w, h / fig_h))
        GridPanel(ax, grid, fontsize, step=k)
        ax.set_title(_title(grid, k), fontsize=11)
    cax = fig.add_axes((0.15, (below - 0.3) / fig_h, 0.7, 0.14 / fig_h))
    cmap = ListedColormap(list(palette()))
    norm = BoundaryNorm(np.linspace(0, 1, N_BINS + 1), N_BINS)
    fig.colorbar(
        matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal",
        label="model confidence p(token)",
    )  # fmt: skip
    _legend(fig, fig_h, lines)
    return fig


def race_figure(ar_traj: Trajectory, diffusion_traj: Trajectory, sample: int = 0, ax=None):
    """The race as a still: tokens written against forward passes, one curve per model.

    An autoregressive run climbs one token per pass; a diffusion run reaches the same length in
    far fewer passes.  Returns the Axes (the static fallback of `race`).
    """
    check_sample(ar_traj, sample)
    check_sample(diffusion_traj, sample)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    for traj, name in ((ar_traj, "autoregressive"), (diffusion_traj, "diffusion")):
        written = [int((~traj.frame(k).mask[sample] & ~traj.fixed[sample]).sum())
                   for k in range(traj.num_steps + 1)]
        passes = np.linspace(0, traj.forward_passes, len(written))
        ax.step(passes, written, where="post", label=f"{name}: {traj.forward_passes} passes, "
                f"{traj.seconds:.2f} s")
    ax.set(xlabel="forward passes", ylabel="tokens written",
           title="Tokens written against forward passes")
    ax.legend(loc="lower right")
    return ax
