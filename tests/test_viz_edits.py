"""diffusion_lab.viz on frames whose length changes: an edit run drawn as HTML, widget and GIF.

The trajectory is built by hand, without a model: "the dog runs ." gets "clever" inserted after
"the" (everything after it shifts right), then "runs" deleted and "sleeps" inserted, then
"clever" substituted by "big".
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_lab import edit_trajectory as et
from diffusion_lab.edit_trajectory import EditFrame, EditTrajectory
from diffusion_lab.viz import final_state_figure, frame_html, race, save_gif, unmasking_widget
from diffusion_lab.viz.grid import INSERT_RGB, TextGrid
from diffusion_lab.viz.slots import reader_for
from diffusion_lab.worlds.grammar import book_language

K, I, D, U = et.KEPT, et.INSERTED, et.DELETED, et.SUBSTITUTED
STEPS = [  # (view words, view kinds, old words of substitutions)
    ("the dog runs .", [K, K, K, K], {}),
    ("the clever dog runs .", [K, I, K, K, K], {}),
    ("the clever dog runs sleeps .", [K, K, K, D, I, K], {}),
    ("the big dog sleeps .", [K, U, K, K, K], {1: "clever"}),
]


def make_edit_trajectory() -> EditTrajectory:
    tok = book_language().tokenizer()
    frames = []
    for step, (text, kinds, old) in enumerate(STEPS):
        words = text.split()
        view = torch.tensor([tok.convert_tokens_to_ids(words)])
        kind = torch.tensor([kinds])
        was = torch.full_like(view, -1)
        for j, w in old.items():
            was[0, j] = tok.convert_tokens_to_ids(w)
        now = [w for w, k in zip(words, kinds, strict=True) if k != D]
        ids = torch.tensor([[tok.cls_token_id, *tok.convert_tokens_to_ids(now)]])
        frames.append(EditFrame(step, step / 3, ids, torch.tensor([ids.shape[1]]), view, kind,
                                was))
    return EditTrajectory(["the big dog sleeps ."], frames[1:], frames[0], tok, 3, 0.1)


def test_frames_show_insertions_deletions_and_substitutions_distinctly():
    traj = make_edit_trajectory()
    start, inserted, deleted, substituted = (frame_html(traj, k) for k in range(4))
    text = re.sub(r"<[^>]+>", "", inserted)
    assert text == "the clever dog runs ."  # the words after the insertion moved right
    assert '<span class="i"> clever</span>' in inserted
    assert 'class="i"' not in start and 'class="d"' not in start
    assert '<span class="d" title="deleted: runs"> runs</span>' in deleted
    assert '<span class="i"> sleeps</span>' in deleted
    assert '<span class="u" title="replaced: clever"> big</span>' in substituted
    assert re.sub(r"<[^>]+>", "", substituted) == "the big dog sleeps ."


def test_labels_count_the_words_and_the_edits():
    reader = reader_for(make_edit_trajectory())
    assert reader.label(0) == "step 0/3, 4 words"
    assert reader.label(1) == "step 1/3, 5 words: +1 inserted"
    assert reader.label(2) == "step 2/3, 5 words: +1 inserted, -1 deleted"
    assert reader.label(3) == "step 3/3, 5 words: 1 substituted"


def test_widget_embeds_every_variable_length_frame():
    box = unmasking_widget(make_edit_trajectory(), link="js")
    assert box.slider.max == 3
    pages = [child.value for child in box.stack.children]
    assert len(pages) == 4 and 'class="i"' in pages[1] and 'class="d"' in pages[2]
    labels = [child.value for child in box.label_stack.children]
    assert "+1 inserted, -1 deleted" in labels[2]
    legend = box.children[-1].value
    assert "inserted" in legend and ".dlv .i{" in legend and ".dlv .d{" in legend
    state = json.dumps(box.get_state())
    assert box.link_mode == "js" and "Stack" in type(box.stack).__name__ and state


def test_gif_draws_words_moving_with_insertions_in_green(tmp_path):
    traj = make_edit_trajectory()
    path = save_gif(traj, tmp_path / "edits.gif", fps=2)
    with Image.open(path) as im:
        assert im.n_frames == 4
        frames = []
        for k in range(4):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")).astype(int))
    green = np.round(255 * np.array(INSERT_RGB)).astype(int)
    has_green = [bool((np.abs(f - green).sum(-1) < 12).any()) for f in frames]
    assert has_green == [False, True, True, False]
    grid = TextGrid(traj, 0, 64)
    assert grid.layouts[1][0][0].startswith("the clever dog")
    assert grid.layouts[2][4], "the deleted word is struck through"
    assert not grid.layouts[1][4]


def test_still_and_race_and_bad_sample():
    traj = make_edit_trajectory()
    fig = final_state_figure(traj, steps=[1, 3])
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="sample"):
        unmasking_widget(traj, sample=1)
    with pytest.raises(TypeError, match="fixed-canvas"):
        race(traj, traj)
