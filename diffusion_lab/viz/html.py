"""One frame of the reverse process as a small, safe HTML string.

Generated text is untrusted: every token goes through `html.escape` (``<script>``, ``&``, quotes
render as text) and only then is ``\\n`` turned into ``<br>``. Frames are kept small because a
static page embeds every one of them: runs of slots with the same look share one ``<span>``, class
names are one or two letters, and the CSS lives once per widget, in `legend_html` (scoped under
``.dlv``), never inline on a token.

Classes: ``p`` prompt, ``m`` masked (one ``▒`` per slot), ``x`` remasked by a remasking rule
(red block, the old token in its tooltip), ``n`` revealed this step (outlined), ``c0``..``c9``
confidence bins (background), ``s`` special tokens; for an edit run (frames whose length
changes) ``i`` inserted this step (green), ``u`` substituted (orange, the old word in its
tooltip) and ``d`` deleted (struck through, shown once, in the frame that deletes it).
"""

from __future__ import annotations

import html

from diffusion_lab.trajectory import Trajectory
from diffusion_lab.viz.slots import (
    DELETED,
    INSERTED,
    MASK,
    N_BINS,
    PROMPT,
    REMASKED,
    SPECIAL,
    SUBSTITUTED,
    Slot,
    palette,
    reader_for,
)

BLOCK = "\u2592"  # ▒, one per masked slot


def _css() -> str:
    bins = "".join(f".dlv .c{k}{{background:{c}}}" for k, c in enumerate(palette()))
    return (
        "<style>"
        ".dlv{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono',monospace;"
        "font-size:13px;line-height:1.7;white-space:pre-wrap;overflow-wrap:anywhere;"
        "color:#111;background:#fff;padding:6px 8px;border:1px solid #ddd;border-radius:4px}"
        ".dlv .p{font-weight:bold}"
        ".dlv .m{color:#9a9a9a}"
        ".dlv .x{color:#d32f2f;outline:1px solid #d32f2f;text-decoration:line-through}"
        ".dlv .n{outline:2px solid #1565c0;outline-offset:-1px;font-weight:bold}"
        ".dlv .s{color:#888;font-size:80%}"
        ".dlv .i{outline:2px solid #2e7d32;outline-offset:-1px;background:#c8e6c9;"
        "font-weight:bold}"
        ".dlv .u{outline:2px solid #ef6c00;outline-offset:-1px;background:#ffe0b2;"
        "font-weight:bold}"
        ".dlv .d{color:#d32f2f;background:#ffcdd2;text-decoration:line-through}"
        f"{bins}"
        ".dll{font-family:monospace;white-space:nowrap;padding:0 6px}"
        ".dlg{font-size:12px;color:#444;padding:2px 0}"
        "</style>"
    )


def _classes(slot: Slot, confidence: bool = True) -> str:
    if slot.kind == MASK:
        return "m"
    if slot.kind == REMASKED:
        return "x"
    if slot.kind == PROMPT:
        return "p"
    if slot.kind == SPECIAL:
        return "s"
    if slot.kind in EDIT_CLASSES:
        return EDIT_CLASSES[slot.kind]
    if not confidence:
        return "n" if slot.new else ""
    return f"c{slot.bin} n" if slot.new else f"c{slot.bin}"


EDIT_CLASSES = {INSERTED: "i", SUBSTITUTED: "u", DELETED: "d"}
TOOLTIP = {REMASKED: "remasked", SUBSTITUTED: "replaced", DELETED: "deleted"}


def _text(s: str) -> str:
    """Escape first, then turn newlines into line breaks (never the other way round)."""
    return html.escape(s, quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def slots_html(slots: list[Slot], confidence: bool = True) -> str:
    """The ``<div class="dlv">`` for a list of slots; adjacent slots with one look share a span.

    With ``confidence=False`` revealed tokens are plain text (the race: progress, not p(token))."""
    parts = ['<div class="dlv">']
    run_cls, run = None, []

    def flush() -> None:
        if run and run_cls:
            parts.append(f'<span class="{run_cls}">{"".join(run)}</span>')
        elif run:
            parts.append("".join(run))

    for slot in slots:
        cls = _classes(slot, confidence)
        if slot.kind in TOOLTIP:  # own span: its tooltip names the token taken away
            flush()
            run_cls, run = None, []
            was = slot.was if slot.kind != DELETED else slot.text.strip()
            was = html.escape(was, quote=True).replace("\n", "\\n")
            shown = BLOCK if slot.kind == REMASKED else _text(slot.text)
            parts.append(f'<span class="{cls}" title="{TOOLTIP[slot.kind]}: {was}">{shown}</span>')
            continue
        if cls != run_cls:
            flush()
            run_cls, run = cls, []
        run.append(BLOCK if slot.kind == MASK else _text(slot.text))
    flush()
    parts.append("</div>")
    return "".join(parts)


def frame_html(traj: Trajectory, step: int, sample: int = 0) -> str:
    """HTML of one sample after ``step`` (0 = start state): a ``<div class="dlv">`` of spans.

    Masked slots are ``▒`` blocks (one per slot, class ``m``), tokens revealed this step carry
    class ``n``, slots a remasking rule took back class ``x``; revealed tokens have a confidence
    class ``c0``..``c9``. The CSS ships once per widget, in `legend_html`.
    """
    return slots_html(reader_for(traj, sample).slots(step))


def step_label(step: int, num_steps: int, revealed: int, remasked: int = 0) -> str:
    """``"step 7/32, 41 tokens revealed"`` (plus ``", 2 remasked"`` when a rule remasked)."""
    noun = "token" if revealed == 1 else "tokens"
    text = f"step {step}/{num_steps}, {revealed} {noun} revealed"
    if remasked:
        text += f", {remasked} remasked"
    return text


def label_html(text: str) -> str:
    return f'<span class="dll">{html.escape(text)}</span>'


def legend_html(edits: bool = False) -> str:
    """The shared ``<style>`` block plus a one-line legend of the classes and the colour scale
    (``edits``: the legend of an edit run — prompt, inserted, substituted, deleted)."""
    if edits:
        return (_css() + '<div class="dlg"><span class="dlv" style="border:0;padding:0">'
                '<span class="p">prompt</span> <span class="i">inserted</span> '
                '<span class="u">substituted</span> <span class="d">deleted</span> '
                "this step; words after an insertion or a deletion shift</span></div>")
    scale = "".join(f'<span class="c{k}">&nbsp;</span>' for k in range(N_BINS))
    return (
        _css()
        + '<div class="dlg"><span class="dlv" style="border:0;padding:0">'
        + '<span class="p">prompt</span> '
        + f'<span class="m">{BLOCK}</span> masked '
        + '<span class="c7 n">new</span> revealed this step '
        + f'<span class="x">{BLOCK}</span> remasked '
        + f"&nbsp; confidence p(token): 0 {scale} 1</span></div>"
    )
