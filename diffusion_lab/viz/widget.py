"""Animations of the reverse process that keep playing on a static page with no kernel.

Every frame is rendered once, in Python, into a `widgets.HTML`; a `widgets.Stack` holds them and
shows one. The Play button drives the slider and the slider selects the visible child through
front-end links (`widgets.jslink`), so the saved widget state is the whole animation: the book's
HTML pages play it with the vendored ``embed-amd.js`` and nothing else. Colab's front end does not
honour ``jslink``; there (``"google.colab" in sys.modules``) the same links run in Python.

ipywidgets 7 (Colab's preinstalled 7.7.1) has no ``Stack``: there a `PagedHTML` — one HTML widget
that keeps every frame's text and shows the one its ``selected_index`` names — takes its place,
and the links always run in Python (the kernel is there; a static page cannot play it).

``box.links`` keeps the links of the returned box (``widgets.Link`` objects in ``"js"`` mode,
`traitlets.link` / `traitlets.dlink` objects in ``"python"`` mode); ``box.link_mode`` says which.
"""

from __future__ import annotations

import html
import sys

import ipywidgets as widgets
import traitlets

try:  # ipywidgets 8
    from ipywidgets.widgets.widget_string import HTMLStyle as _HTMLStyle
except ImportError:  # ipywidgets 7 styles HTML with a DescriptionStyle
    from ipywidgets.widgets.widget_description import DescriptionStyle as _HTMLStyle

from diffusion_lab.trajectory import Trajectory
from diffusion_lab.viz.html import label_html, legend_html, slots_html
from diffusion_lab.viz.slots import SlotReader, check_sample, reader_for

LINK_MODES = ("auto", "js", "python")
HAS_STACK = hasattr(widgets, "Stack")  # ipywidgets >= 8


class PagedHTML(widgets.HTML):
    """ipywidgets 7's stand-in for a `widgets.Stack` of HTML frames: one HTML widget showing
    ``children[selected_index].value``, switched in the kernel (no front-end state per frame)."""

    selected_index = traitlets.Int(0)  # kernel-side only: the front end sees ``value``

    def __init__(self, children, **kwargs):
        self.children = tuple(children)
        super().__init__(value=self.children[0].value, **kwargs)

    @traitlets.observe("selected_index")
    def _show(self, change) -> None:
        self.value = self.children[change["new"]].value


class _Frame:
    """One frame's HTML where no widget is needed per frame (ipywidgets 7)."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value


def _link_mode(link: str) -> str:
    if link not in LINK_MODES:
        raise ValueError(f"link must be one of {LINK_MODES}, got {link!r}")
    if link == "js" and not HAS_STACK:
        raise ValueError(f"link='js' needs ipywidgets >= 8 (widgets.Stack); this is "
                         f"{widgets.__version__}: use link='python' or 'auto'")
    if link == "auto":
        return "python" if "google.colab" in sys.modules or not HAS_STACK else "js"
    return link


def _interval(interval_ms: int | None, frames: int, seconds: float) -> int:
    """Milliseconds per frame: as given, or about ``seconds`` for the whole run (60..600 ms)."""
    if interval_ms is None:
        return int(min(600, max(60, 1000 * seconds / max(frames, 1))))
    if not isinstance(interval_ms, int) or interval_ms <= 0:
        raise ValueError(f"interval_ms must be a positive int or None, got {interval_ms!r}")
    return interval_ms


def _player(last: int, interval: int, description: str):
    play = widgets.Play(value=0, min=0, max=last, step=1, interval=interval, description="play")
    slider = widgets.IntSlider(
        value=0, min=0, max=last, step=1, description=description, continuous_update=True,
        style={"description_width": "initial"}, layout=widgets.Layout(width="360px"),
    )  # fmt: skip
    return play, slider


def _frame(text: str, layout, style):
    """One frame: an HTML widget for a `widgets.Stack`, or just its text for a `PagedHTML`."""
    return widgets.HTML(text, layout=layout, style=style) if HAS_STACK else _Frame(text)


def _stack(pages: list, layout, style):
    children = [p if isinstance(p, (widgets.HTML, _Frame)) else _frame(p, layout, style)
                for p in pages]
    if HAS_STACK:
        return widgets.Stack(children, selected_index=0)
    return PagedHTML(children, layout=layout, style=style)


def _connect(mode: str, play, slider, stacks: list[widgets.Stack]) -> list:
    """Play -> slider -> each stack's visible child, in the browser or in Python."""
    if mode == "js":
        links = [widgets.jslink((play, "value"), (slider, "value"))]
        links += [widgets.jsdlink((slider, "value"), (s, "selected_index")) for s in stacks]
    else:
        links = [widgets.link((play, "value"), (slider, "value"))]
        links += [widgets.dlink((slider, "value"), (s, "selected_index")) for s in stacks]
    return links


def _shared_look():
    # One Layout and one style model for every frame: each HTML widget would otherwise add two
    # models to the embedded state.
    return widgets.Layout(), _HTMLStyle()


def unmasking_widget(
    traj: Trajectory,
    sample: int = 0,
    *,
    interval_ms: int | None = None,
    link: str = "auto",
) -> widgets.VBox:
    """An animation of one sample of ``traj``: text appearing out of [MASK] blocks step by step.

    Play button, step slider, a label ("step 7/32, 41 tokens revealed"), the text in a monospace
    box (masked slots as ``▒`` blocks, this step's tokens outlined, slots remasked by remasking
    in red, background colour = confidence) and a legend.  For an edit run
    (`edit_trajectory.EditTrajectory`) the frames change length: words inserted this step are
    green, substituted orange, deleted struck through in red, and the label counts them.
    ``interval_ms`` is the time per step (default: about 8 s for the whole run); ``link`` is
    ``"auto"`` (``"python"`` on Colab, else ``"js"``), ``"js"`` or ``"python"``. Returns the
    `widgets.VBox`, with ``.links``, ``.link_mode``, ``.play``, ``.slider``, ``.label_stack``
    and ``.stack`` kept on it.
    """
    check_sample(traj, sample)
    mode = _link_mode(link)
    reader = reader_for(traj, sample)
    n = traj.num_steps
    layout, style = _shared_look()
    pages = [slots_html(reader.slots(k)) for k in range(n + 1)]
    labels = [label_html(reader.label(k)) for k in range(n + 1)]
    stack = _stack(pages, layout, style)
    label_stack = _stack(labels, layout, style)
    play, slider = _player(n, _interval(interval_ms, n, 8.0), "step")
    links = _connect(mode, play, slider, [stack, label_stack])
    box = widgets.VBox(
        [widgets.HBox([play, slider, label_stack]), stack,
         widgets.HTML(legend_html(edits=not reader.fixed_slots))]
    )
    box.links, box.link_mode = links, mode
    box.play, box.slider, box.stack, box.label_stack = play, slider, stack, label_stack
    return box


def _passes(traj: Trajectory) -> int:
    return traj.forward_passes if traj.forward_passes > 0 else traj.num_steps


def _step_at(traj: Trajectory, p: int) -> int:
    """The frame shown after ``p`` forward passes; a finished run stays on its last frame."""
    n, total = traj.num_steps, _passes(traj)
    return min(n, (p * n) // total) if total else 0


def _counts(name: str, passes: int, seconds: float, noun: str = "passes") -> str:
    text = f"{name}: {passes} {noun}"
    return text + (f", {seconds:.1f} s" if seconds and seconds > 0 else "")


def race(
    ar_traj: Trajectory,
    diffusion_traj: Trajectory,
    *,
    ar_seconds: float | None = None,
    diffusion_seconds: float | None = None,
    sample: int = 0,
    confidence: bool = False,
    interval_ms: int | None = None,
    link: str = "auto",
) -> widgets.VBox:
    """Autoregressive vs diffusion decoding side by side, one shared clock of forward passes.

    The slider runs over pass 0..max(passes): the AR text gains one token per pass (its frames are
    one per token), the diffusion text many (its frames are one per step); a run that has finished
    stays on its final frame. The caption reads e.g. "AR: 256 forward passes, 3.1 s; diffusion:
    32 passes, 0.9 s" from ``traj.forward_passes`` and ``traj.seconds`` (or the overrides).
    Tokens are plain text unless ``confidence=True`` colours them (which triples the state of a
    256-pass race, every AR frame being stored).
    Returns the `widgets.VBox`, with ``.links``, ``.link_mode``, ``.play``, ``.slider``,
    ``.label_stack``, ``.stacks`` (AR, diffusion), ``.caption`` and ``.caption_text`` kept on it.
    """
    for traj in (ar_traj, diffusion_traj):
        check_sample(traj, sample)
        if not isinstance(traj, Trajectory):
            raise TypeError(f"race needs two fixed-canvas Trajectory runs, got "
                            f"{type(traj).__name__}")
    mode = _link_mode(link)
    ar_s = ar_traj.seconds if ar_seconds is None else float(ar_seconds)
    dm_s = diffusion_traj.seconds if diffusion_seconds is None else float(diffusion_seconds)
    total = max(_passes(ar_traj), _passes(diffusion_traj))
    layout, style = _shared_look()

    sides, stacks = [], []
    for traj, title in ((ar_traj, "autoregressive"), (diffusion_traj, "diffusion")):
        if traj.strategy:
            title += f" ({traj.strategy})"
        reader = SlotReader(traj, sample)
        frames = [_frame(slots_html(reader.slots(k), confidence), layout, style)
                  for k in range(traj.num_steps + 1)]
        # The same HTML widget repeats once a run is done: the state stores each frame once.
        stack = _stack([frames[_step_at(traj, p)] for p in range(total + 1)], layout, style)
        head = widgets.HTML(f"<b>{html.escape(title)}</b>")
        sides.append(widgets.VBox([head, stack], layout=widgets.Layout(width="50%")))
        stacks.append((traj, reader, stack))

    def label(p: int) -> str:
        parts = [f"forward pass {p}/{total}"]
        for (traj, reader, _), name in zip(stacks, ("AR", "diffusion"), strict=True):
            k = _step_at(traj, p)
            done = " (done)" if k == traj.num_steps else ""
            parts.append(f"{name}: {reader.revealed_count(k)} tokens{done}")
        return label_html(", ".join(parts))

    label_stack = _stack([label(p) for p in range(total + 1)], layout, style)
    play, slider = _player(total, _interval(interval_ms, total, 10.0), "forward pass")
    links = _connect(mode, play, slider, [s for _, _, s in stacks] + [label_stack])
    caption_text = (
        _counts("AR", _passes(ar_traj), ar_s, "forward passes")
        + "; "
        + _counts("diffusion", _passes(diffusion_traj), dm_s)
    )
    caption = widgets.HTML(f'<div class="dlg">{caption_text}</div>')
    box = widgets.VBox(
        [
            widgets.HBox([play, slider, label_stack]),
            widgets.HBox(sides),
            caption,
            widgets.HTML(legend_html()),
        ]
    )
    box.links, box.link_mode, box.slider, box.play = links, mode, slider, play
    box.caption, box.caption_text, box.label_stack = caption, caption_text, label_stack
    box.stacks = tuple(s for _, _, s in stacks)  # (AR, diffusion)
    return box
