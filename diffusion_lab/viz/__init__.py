"""Watching text appear out of [MASK]: animations, a GIF, and plots of a `Trajectory`.

* `unmasking_widget` — Play / slider / label over the steps of one sample; keeps playing on the
  book's static pages (front-end links only, every frame pre-rendered into the widget state);
* `race` — an autoregressive run and a diffusion run side by side on one clock of forward passes;
* `frame_html` — the pure function behind both: one frame as escaped HTML;
* `save_gif` — the same animation as a GIF (matplotlib + Pillow);
* `confidence_heatmap` — p(token) per step and position;
* `final_state_figure`, `race_figure` — stills for readers with JavaScript off.

All of them read a frame through `slots.SlotReader`, so they agree on what a slot shows.

Each name is imported on first use (PEP 562): HTML needs neither matplotlib nor ipywidgets.
"""

import importlib

_HOME = {"confidence_heatmap": "figures", "final_state_figure": "figures", "race_figure": "figures",
         "save_gif": "figures", "frame_html": "html", "step_label": "html", "race": "widget",
         "unmasking_widget": "widget", "transition_matrices": "matrices"}

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


def __getattr__(name: str):
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
