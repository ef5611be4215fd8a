"""Watching text appear out of [MASK]: animations, a GIF, and plots of a `Trajectory`.

* `unmasking_widget` — Play / slider / label over the steps of one sample; keeps playing on the
  book's static pages (front-end links only, every frame pre-rendered into the widget state);
* `race` — an autoregressive run and a diffusion run side by side on one clock of forward passes;
* `frame_html` — the pure function behind both: one frame as escaped HTML;
* `save_gif` — the same animation as a GIF (matplotlib + Pillow);
* `confidence_heatmap` — p(token) per step and position;
* `final_state_figure`, `race_figure` — stills for readers with JavaScript off.

All of them read a frame through `slots.SlotReader`, so they agree on what a slot shows.
"""

from diffusion_lab.viz.figures import (
    confidence_heatmap,
    final_state_figure,
    race_figure,
    save_gif,
)
from diffusion_lab.viz.html import frame_html, step_label
from diffusion_lab.viz.matrices import transition_matrices
from diffusion_lab.viz.widget import race, unmasking_widget

__all__ = [
    "confidence_heatmap",
    "final_state_figure",
    "frame_html",
    "race",
    "race_figure",
    "save_gif",
    "step_label",
    "transition_matrices",
    "unmasking_widget",
]
