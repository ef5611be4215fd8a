"""diffusion_lab.viz on synthetic trajectories: safe HTML, widget wiring, GIF, race, plots.

The trajectories are built here, without a model: a WordLevel `PreTrainedTokenizerFast` whose
vocabulary is the characters (plus a few hostile whole-word tokens), slots revealed in a seeded
random order over the steps, and one slot remasked by a "remasking rule" and revealed again.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import ipywidgets as widgets
import matplotlib
import pytest
import torch
from ipywidgets.widgets.widget_link import Link
from PIL import Image
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from diffusion_lab.trajectory import Frame, Trajectory
from diffusion_lab.viz import (
    confidence_heatmap,
    final_state_figure,
    frame_html,
    race,
    save_gif,
    transition_matrices,
    unmasking_widget,
)
from diffusion_lab.viz.widget import HAS_STACK

matplotlib.use("Agg")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[MASK]"]
HOSTILE = ["<script>alert(1)</script>", "&", '"', "'", "a&b", "<b>bold</b>"]
TEXT = "ROMEO: But soft, what light\nthrough yonder window breaks?\nIt is the east."


def make_tokenizer(extra: list[str] = ()) -> PreTrainedTokenizerFast:
    chars = sorted(set(TEXT) | set("abcdefghijklmnopqrstuvwxyz "))
    vocab = {t: i for i, t in enumerate(dict.fromkeys(SPECIALS + chars + list(extra)))}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", mask_token="[MASK]",
    )  # fmt: skip


def make_trajectory(
    tokens: list[str] | None = None,
    steps: int = 8,
    *,
    prompt_len: int = 0,
    remask: tuple[int, int] | None = (3, 5),
    tokenizer: PreTrainedTokenizerFast | None = None,
    seed: int = 0,
    forward_passes: int | None = None,
    seconds: float = 0.0,
) -> Trajectory:
    """A one-sample Trajectory revealing ``tokens`` (default: TEXT's characters) over ``steps``.

    The first ``prompt_len`` slots are a fixed prompt. With ``remask=(a, b)`` the first slot
    revealed at step ``a`` is remasked at step ``b`` and revealed again at step ``b + 1``."""
    tokens = list(TEXT) if tokens is None else tokens
    tok = tokenizer or make_tokenizer(tokens)
    L = len(tokens) + 1
    final = torch.tensor([[tok.cls_token_id, *tok.convert_tokens_to_ids(tokens)]])
    fixed = torch.zeros(1, L, dtype=torch.bool)
    fixed[0, : prompt_len + 1] = True
    g = torch.Generator().manual_seed(seed)
    free = (torch.randperm(L - prompt_len - 1, generator=g) + prompt_len + 1).tolist()
    chunks = [free[i::steps] for i in range(steps)]
    conf_final = torch.rand(1, L, generator=g) * 0.95 + 0.05

    mask = ~fixed.clone()
    ids = torch.where(mask, torch.full_like(final, tok.mask_token_id), final)
    conf = torch.where(mask, 0.0, 1.0)
    zeros = torch.zeros(1, L, dtype=torch.bool)
    start = Frame(0, ids.clone(), mask.clone(), conf.clone(), zeros.clone(), zeros.clone())
    frames = []
    taken = chunks[remask[0] - 1][0] if remask else None
    for k in range(1, steps + 1):
        revealed, remasked = zeros.clone(), zeros.clone()
        revealed[0, chunks[k - 1]] = True
        if remask and k == remask[1]:
            remasked[0, taken] = True
        if remask and k == remask[1] + 1:
            revealed[0, taken] = True
        mask = (mask & ~revealed) | remasked
        ids = torch.where(mask, tok.mask_token_id, final)
        conf = torch.where(mask, 0.0, torch.where(fixed, 1.0, conf_final))
        frames.append(Frame(k, ids, mask.clone(), conf, revealed, remasked))
    return Trajectory(
        texts=["".join(tokens)], frames=frames, start=start, fixed=fixed, tokenizer=tok,
        strategy="synthetic", forward_passes=steps if forward_passes is None else forward_passes,
        seconds=seconds,
    )  # fmt: skip


class _Spans(HTMLParser):
    """Collects (classes, text) of every innermost span, and every tag name seen."""

    def __init__(self):
        super().__init__()
        self.tags, self.spans, self._stack = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "span":
            self._stack.append([dict(attrs).get("class", "").split(), ""])

    def handle_endtag(self, tag):
        if tag == "span":
            self.spans.append(tuple(self._stack.pop()))

    def handle_data(self, data):
        if self._stack:
            self._stack[-1][1] += data


def parse(html: str) -> _Spans:
    p = _Spans()
    p.feed(html)
    return p


# ---- frame_html -----------------------------------------------------------------------------


def test_masked_slots_become_one_block_each():
    traj = make_trajectory()
    for k in range(traj.num_steps + 1):
        n_masked = int(traj.frame(k).mask[0, 1:].sum())
        spans = parse(frame_html(traj, k)).spans
        blocks = sum(t.count("\u2592") for cls, t in spans if {"m", "x"} & set(cls))
        assert blocks == n_masked, k
    assert n_masked == 0  # the last frame is fully revealed


def test_revealed_this_step_carry_highlight_and_their_text():
    traj = make_trajectory(remask=None)
    k = 4
    spans = parse(frame_html(traj, k)).spans
    new_text = "".join(t for cls, t in spans if "n" in cls)
    ids = traj.frame(k).ids[0, 1:]
    expect = [traj.tokens(k)[j] for j in traj.frame(k).revealed[0, 1:].nonzero().flatten()]
    assert sorted(new_text) == sorted("".join(expect).replace("\n", ""))
    assert len(ids) == len(TEXT)
    # every revealed, non-new token has a confidence class c0..c9
    assert all(any(re.fullmatch(r"c\d", c) for c in cls) for cls, _ in spans if "n" in cls)


def test_remasked_slot_is_marked_and_counted():
    traj = make_trajectory(remask=(3, 5))
    html = frame_html(traj, 5)
    spans = parse(html).spans
    back = [t for cls, t in spans if "x" in cls]
    assert back == ["\u2592"]
    assert 'title="remasked: ' in html
    assert not any("x" in cls for cls, _ in parse(frame_html(traj, 6)).spans)


def test_hostile_tokens_render_as_text_never_markup():
    tokens = ["h", "i", " ", *HOSTILE, "\n", "o", "k"]
    traj = make_trajectory(tokens, steps=2, remask=None)
    html = frame_html(traj, traj.num_steps)
    p = parse(html)
    assert set(p.tags) <= {"div", "span", "br"}  # no <script>, no <b>
    assert "<script" not in html and "</script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b" in html and "&quot;" in html and "&#x27;" in html
    assert "<br>" in html and "\n" not in html
    text = "".join(t for _, t in p.spans)
    for t in HOSTILE:
        assert t in text  # the parser reads back exactly the tokens
    # newline inside a token, and escaping happens before the <br>
    traj2 = make_trajectory(["x\ny", "<", "&"], steps=1, remask=None)
    html2 = frame_html(traj2, 1)
    assert "x<br>y" in html2 and ">&lt;<" in html2 and ">&amp;<" in html2


def test_prompt_padding_hidden_and_prompt_marked():
    traj = make_trajectory(prompt_len=6, remask=None)
    spans = parse(frame_html(traj, 0)).spans
    assert spans[0] == (["p"], TEXT[:6])


def test_wordpiece_pieces_join_into_words():
    from tokenizers import decoders

    vocab = {t: i for i, t in enumerate(SPECIALS + ["the", "walk", "##ing", "man", "."])}
    wp = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    wp.decoder = decoders.WordPiece()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=wp, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        mask_token="[MASK]",
    )  # fmt: skip
    traj = make_trajectory(
        ["the", "walk", "##ing", "man", "."], steps=2, remask=None, tokenizer=tok
    )
    text = "".join(t for _, t in parse(frame_html(traj, 2)).spans)
    assert text == "the walking man ."


def test_bad_arguments_raise_clear_errors():
    traj = make_trajectory()
    with pytest.raises(ValueError, match="sample"):
        frame_html(traj, 0, sample=1)
    with pytest.raises(ValueError, match="step"):
        frame_html(traj, traj.num_steps + 1)
    with pytest.raises(TypeError, match="traj"):
        unmasking_widget("not a trajectory")
    with pytest.raises(ValueError, match="link"):
        unmasking_widget(traj, link="css")


# ---- unmasking_widget ---------------------------------------------------------------------


def _label_text(w: widgets.HTML) -> str:
    return re.sub(r"<[^>]+>", "", w.value)


# ipywidgets 8 (Jupyter, the static site): front-end links over a widgets.Stack. ipywidgets 7
# (Colab's 7.7.1; the Colab-like CI job runs this file there): kernel-side links over PagedHTML.
LINK = "js" if HAS_STACK else "python"
needs_stack = pytest.mark.skipif(not HAS_STACK, reason="front-end links need ipywidgets 8")


def test_widget_state_matches_trajectory():
    traj = make_trajectory(steps=8)
    box = unmasking_widget(traj, link=LINK)
    n = traj.num_steps
    assert isinstance(box, widgets.VBox)
    assert len(box.stack.children) == n + 1 == len(box.label_stack.children)
    assert box.slider.max == n and box.play.max == n and box.slider.min == box.play.min == 0
    assert box.stack.children[0].value == frame_html(traj, 0)
    assert box.stack.children[n].value == frame_html(traj, n)
    for k in (0, 3, n):
        revealed = int((~traj.frame(k).mask[0, 1:]).sum())
        assert f"step {k}/{n}, {revealed} tokens revealed" in _label_text(
            box.label_stack.children[k]
        )
    assert "1 remasked" in _label_text(box.label_stack.children[5])
    # the CSS ships once, not per frame
    html_values = [w.value for w in box.children if isinstance(w, widgets.HTML)]
    assert sum(v.count("<style>") for v in html_values) == 1
    assert not any("style=" in c.value for c in box.stack.children)


@needs_stack
def test_widget_links_are_front_end_links():
    box = unmasking_widget(make_trajectory(), link="js")
    assert box.link_mode == "js"
    pairs = {(lk.source[0], lk.source[1], lk.target[0], lk.target[1]) for lk in box.links}
    assert all(isinstance(lk, Link) for lk in box.links)
    assert (box.play, "value", box.slider, "value") in pairs
    assert (box.slider, "value", box.stack, "selected_index") in pairs
    assert (box.slider, "value", box.label_stack, "selected_index") in pairs
    # the links are part of the embeddable state of the box
    from ipywidgets.embed import dependency_state

    state = dependency_state(box)
    assert all(lk.model_id in state for lk in box.links)


def test_colab_falls_back_to_python_links(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    box = unmasking_widget(make_trajectory())
    assert box.link_mode == "python"
    assert not any(isinstance(lk, Link) for lk in box.links)
    box.play.value = 4  # what the front end's Play button does
    assert box.slider.value == 4
    assert box.stack.selected_index == 4 and box.label_stack.selected_index == 4


def test_auto_uses_jslink_outside_colab(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert unmasking_widget(make_trajectory()).link_mode == LINK


@pytest.mark.skipif(HAS_STACK, reason="ipywidgets 7 only")
def test_ipywidgets7_shows_the_selected_frame_from_the_kernel():
    traj = make_trajectory(steps=8)
    box = unmasking_widget(traj)
    assert box.link_mode == "python" and isinstance(box.stack, widgets.HTML)
    assert box.stack.value == frame_html(traj, 0)
    box.play.value = 5  # Play ticks in the front end; the kernel-side links do the rest
    assert box.stack.value == frame_html(traj, 5) and "1 remasked" in box.label_stack.value
    with pytest.raises(ValueError, match="ipywidgets >= 8"):
        unmasking_widget(traj, link="js")
    dm = make_trajectory(steps=8)
    rbox = race(make_trajectory(steps=len(TEXT), remask=None), dm)
    rbox.slider.value = 8
    shown = rbox.stacks[1]
    assert shown.value == shown.children[8].value != shown.children[0].value
    assert "(done)" in rbox.label_stack.value


# ---- save_gif -------------------------------------------------------------------------------


def test_gif_has_one_frame_per_step_plus_start_and_holds_the_last(tmp_path):
    traj = make_trajectory(steps=6)
    out = save_gif(traj, tmp_path / "u.gif", fps=5, hold_last=1.5, cols=32)
    assert out == tmp_path / "u.gif"
    with Image.open(out) as im:
        assert im.n_frames == traj.num_steps + 1
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations[0] == 200 and durations[-1] == 1500


def test_gif_comment_is_stored_and_read_back(tmp_path):
    traj = make_trajectory(steps=3, remask=None)
    note = "made by a test\nsentence: the dog runs ."
    with Image.open(save_gif(traj, tmp_path / "c.gif", comment=note)) as im:
        assert im.info["comment"].decode() == note
    with Image.open(save_gif(traj, tmp_path / "n.gif")) as im:
        assert "comment" not in im.info


def test_gif_frames_show_masks_then_text(tmp_path):
    import numpy as np

    traj = make_trajectory(steps=3, remask=None)
    out = save_gif(traj, tmp_path / "u.gif", cols=32)
    with Image.open(out) as im:
        first = np.asarray(im.convert("RGB"), dtype=int)
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB"), dtype=int)
    grey = (np.abs(first - [200, 200, 200]).sum(-1) < 12).mean()
    assert grey > 0.2  # the start is mostly mask blocks
    assert (np.abs(last - [200, 200, 200]).sum(-1) < 12).mean() < 0.01


# ---- race -----------------------------------------------------------------------------------


def test_race_shares_one_clock_of_forward_passes():
    ar = make_trajectory(steps=len(TEXT), remask=None, seconds=3.14)  # one token per pass
    dm = make_trajectory(steps=8, seconds=0.9)
    box = race(ar, dm, link=LINK, confidence=True)
    assert box.slider.max == box.play.max == max(ar.forward_passes, dm.forward_passes)
    caption = box.caption_text
    assert f"AR: {ar.forward_passes} forward passes, 3.1 s" in caption
    assert "diffusion: 8 passes, 0.9 s" in caption
    ar_stack, dm_stack = box.stacks
    assert len(ar_stack.children) == len(dm_stack.children) == box.slider.max + 1
    # diffusion finished after 8 passes and stays on its final frame (one shared widget)
    assert dm_stack.children[8] is dm_stack.children[-1]
    assert dm_stack.children[8].value == frame_html(dm, 8)
    assert ar_stack.children[20].value == frame_html(ar, 20)
    assert "(done)" in _label_text(box.label_stack.children[8])
    assert "(done)" not in _label_text(box.label_stack.children[7])


def test_race_without_confidence_is_plain_text_and_smaller():
    from ipywidgets.embed import dependency_state

    ar = make_trajectory(steps=len(TEXT), remask=None)
    dm = make_trajectory(steps=8, remask=None)
    plain, coloured = race(ar, dm), race(ar, dm, confidence=True)
    html = plain.stacks[0].children[30].value
    assert not re.search(r'class="c\d', html) and 'class="n"' in html and "\u2592" in html
    if HAS_STACK:  # every frame is in the embedded state only where a Stack holds them
        size = [len(json.dumps(dependency_state(b))) for b in (plain, coloured)]
        assert size[0] < size[1]


def test_race_overrides_seconds():
    ar, dm = make_trajectory(steps=4), make_trajectory(steps=2, remask=None)
    box = race(ar, dm, ar_seconds=12.0, diffusion_seconds=0.25)
    assert "12.0 s" in box.caption_text and "0.2 s" in box.caption_text


# ---- plots ----------------------------------------------------------------------------------


def test_confidence_heatmap_axes_labels_and_colourbar():
    import numpy as np

    traj = make_trajectory(steps=5)
    ax = confidence_heatmap(traj)
    assert ax.get_xlabel() == "position" and ax.get_ylabel() == "reverse step"
    assert ax.get_title()
    im = ax.images[0]
    data = im.get_array()
    assert data.shape == (traj.num_steps + 1, len(TEXT))
    assert np.ma.getmaskarray(data)[0].all()  # step 0: all masked -> NaN
    assert im.colorbar is not None
    assert im.colorbar.ax.get_ylabel() == "model confidence p(token)"
    matplotlib.pyplot.close(ax.figure)


def test_final_state_figure_draws_the_final_text():
    traj = make_trajectory(steps=4)
    fig = final_state_figure(traj)
    texts = "".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "ROMEO: But soft" in texts
    fig2 = final_state_figure(traj, steps=[0, 2, 4])
    titles = [ax.get_title() for ax in fig2.axes if ax.get_title()]
    assert titles[0].startswith("step 0/4") and titles[-1].startswith("step 4/4")
    with pytest.raises(ValueError, match="steps"):
        final_state_figure(traj, steps=[9])


def test_race_figure_counts_tokens_per_forward_pass():
    from diffusion_lab.viz import race_figure

    ar = make_trajectory(steps=len(TEXT), remask=None)  # one token per pass
    dm = make_trajectory(steps=4, remask=None)
    ax = race_figure(ar, dm)
    (ar_line, dm_line) = ax.lines
    assert list(ar_line.get_ydata()) == list(range(len(TEXT) + 1))
    assert dm_line.get_xdata()[-1] == 4 and dm_line.get_ydata()[-1] == len(TEXT)
    assert ax.get_xlabel() == "forward passes" and ax.get_ylabel() == "tokens written"
    assert "4 passes" in ax.get_legend().get_texts()[1].get_text()


def test_transition_matrices_draws_one_panel_per_kind():
    fig = transition_matrices(rate=0.2, tokens="abc")
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["uniform (rate 0.2)", "absorbing (rate 0.2)",
                                                   "bert (rate 0.2)"]
    with pytest.raises(ValueError, match="tokens"):
        transition_matrices(tokens="")
