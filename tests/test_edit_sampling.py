"""edit_sampling: the tau-leaping sampler's contracts on variable-length rows.

An untrained edit model proposes plenty of edits of every kind, which is what these tests need:
every frame's diff view must agree with the rows before and after the step, the length bound
holds, an infill keeps its words and fills only its gaps, and bad input names the argument.
"""

from __future__ import annotations

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import edit_trajectory as et
from diffusion_lab.edit_model import tiny_edit
from diffusion_lab.edit_sampling import generate_edits
from diffusion_lab.worlds.grammar import tiny_language


@pytest.fixture(scope="module")
def setup():
    g = tiny_language(max_len=6)
    tok = g.tokenizer()
    dl.seed_everything(0)
    return tiny_edit(tok, size="xs", max_length=g.max_len + 1).eval(), tok


def _words(tok, ids):
    return tok.convert_ids_to_tokens(ids)


def test_every_frame_is_the_previous_one_with_its_edits(setup):
    model, tok = setup
    traj = generate_edits(model, tok, [""], steps=6, num_samples=24, seed=0)
    assert traj.num_steps == 6 and traj.forward_passes == 6
    seen = {et.INSERTED: 0, et.DELETED: 0, et.SUBSTITUTED: 0}
    for k in range(1, traj.num_steps + 1):
        before, after = traj.frame(k - 1), traj.frame(k)
        for b in range(traj.batch_size):
            kind = after.view_kind[b].tolist()
            view, old = after.view_ids[b].tolist(), after.view_old[b].tolist()
            now = [v for v, c in zip(view, kind, strict=True) if c not in (et.NONE, et.DELETED)]
            was = [o if c == et.SUBSTITUTED else v for v, o, c in zip(view, old, kind, strict=True)
                   if c not in (et.NONE, et.INSERTED)]
            assert now == after.ids[b, 1:after.lengths[b]].tolist()
            assert was == before.ids[b, 1:before.lengths[b]].tolist()
            for c in seen:
                seen[c] += kind.count(c)
    assert all(count > 0 for count in seen.values()), seen  # each kind of edit happened
    final = [" ".join(_words(tok, traj.frames[-1].ids[b, 1:n].tolist()))
             for b, n in enumerate(traj.frames[-1].lengths.tolist())]
    assert traj.texts == final
    totals = {name: sum(int(f.counts()[name].sum()) for f in traj.frames) for name in traj.edits}
    assert totals == {name: int(v.sum()) for name, v in traj.edits.items()}


def test_the_length_bound_holds_in_every_frame(setup):
    model, tok = setup
    traj = generate_edits(model, tok, ["", "a dog runs ."], steps=8, num_samples=16, seed=1,
                          max_length=4, temperature=2.0)
    for k in range(traj.num_steps + 1):
        assert int(traj.lengths(k).max()) <= 4


def test_infill_keeps_its_words_and_fills_only_its_gap(setup):
    model, tok = setup
    traj = generate_edits(model, tok, ["two [MASK] run ."], steps=6, num_samples=32, seed=2)
    grew = 0
    for text in traj.texts:
        words = text.split()
        assert words[0] == "two" and words[-2:] == ["run", "."]
        grew += len(words) > 3
    assert grew > 0  # some gap received words
    for frame in [traj.start, *traj.frames]:  # the three fixed words are never edited
        assert ((frame.view_kind == et.FIXED).sum(1) == 3).all()
    # words the model inserted into the gap stay editable
    edited = sum(int(f.counts()["deleted"].sum() + f.counts()["substituted"].sum())
                 for f in traj.frames)
    assert edited > 0


def test_revision_starts_from_the_prompt_and_may_change_every_word(setup):
    model, tok = setup
    traj = generate_edits(model, tok, ["a dog runs ."], steps=4, t_start=0.5, num_samples=32,
                          seed=3)
    assert traj.words(0, 0) == ["a", "dog", "runs", "."]
    assert traj.frame(0).t == 0.5 and traj.frames[-1].t == 1.0
    assert int(traj.edits["deleted"].sum()) > 0 and int(traj.edits["substituted"].sum()) > 0


def test_one_insertion_per_gap_per_step_unless_poisson(setup):
    model, tok = setup
    for rule in ("one", "poisson"):
        traj = generate_edits(model, tok, [""], steps=3, num_samples=64, seed=4, insertions=rule)
        longest = 0  # the longest run of words inserted side by side in one step
        for frame in traj.frames:
            for row in frame.view_kind.tolist():
                streak = 0
                for kind in row:
                    streak = streak + 1 if kind == et.INSERTED else 0
                    longest = max(longest, streak)
        assert longest == 1 if rule == "one" else longest >= 2, (rule, longest)


def test_a_seed_gives_the_same_run(setup):
    model, tok = setup
    a = generate_edits(model, tok, [""], steps=5, num_samples=8, seed=7)
    b = generate_edits(model, tok, [""], steps=5, num_samples=8, seed=7)
    assert a.texts == b.texts
    assert all(torch.equal(x.view_ids, y.view_ids) for x, y in zip(a.frames, b.frames,
                                                                    strict=True))


def test_record_false_keeps_the_last_frame_only(setup):
    model, tok = setup
    traj = generate_edits(model, tok, [""], steps=5, num_samples=4, seed=0, record=False)
    assert traj.num_steps == 1 and traj.forward_passes == 5


def test_bad_input_names_the_argument(setup):
    model, tok = setup
    with pytest.raises(ValueError, match="steps"):
        generate_edits(model, tok, [""], steps=0)
    with pytest.raises(ValueError, match="max_length"):
        generate_edits(model, tok, [""], max_length=1000)
    with pytest.raises(ValueError, match="max_length=2: the length bound cannot be met"):
        generate_edits(model, tok, ["a dog runs ."], max_length=2)
    with pytest.raises(ValueError, match="t_start"):
        generate_edits(model, tok, [""], t_start=1.0)
    with pytest.raises(ValueError, match="temperature"):
        generate_edits(model, tok, [""], temperature=0)
    with pytest.raises(ValueError, match="insertions"):
        generate_edits(model, tok, [""], insertions="many")
    with pytest.raises(TypeError, match="prompts"):
        generate_edits(model, tok, "a dog")
    with pytest.raises(TypeError, match="edit model"):
        generate_edits(dl.tiny_mlm(tok, "xs", 8), tok, [""])
