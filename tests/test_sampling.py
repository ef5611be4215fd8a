"""The reverse process: every strategy must give well-formed, reproducible samples that respect the
prompt, and each one must revise (or not revise) tokens exactly as its paper says.

An untrained tiny model is enough: these are properties of the sampler, not of the model.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import noise, sampling, strategies
from diffusion_lab.sampling import filter_logits, sample_categorical

ALL = sorted(dl.STRATEGIES)
NEVER_REVISE = ["ancestral", "low_confidence", "maskgit", "threshold"]
CHARS = "abcdefgh "






PROMPTS, LENGTH, STEPS = ["ab", "ba"], 24, 8


@pytest.fixture(scope="module")
def runs(model, tok):
    """One trajectory per strategy (2 prompts x 2 samples), shared by the structural checks."""
    return {name: dl.generate(model, tok, PROMPTS, length=LENGTH, steps=STEPS, strategy=name,
                              seed=0, num_samples=2) for name in ALL}


@pytest.mark.parametrize("name", ALL)
def test_output_is_complete_and_keeps_the_prompt(runs, tok, name):
    traj = runs[name]
    assert len(traj.texts) == len(PROMPTS) * 2
    for row, (text, prompt) in enumerate(zip(traj.texts, ["ab", "ab", "ba", "ba"], strict=True)):
        assert "[MASK]" not in text
        assert text.startswith(prompt)
        tokens = traj.tokens(traj.num_steps, row)
        assert len(tokens) == LENGTH and "[MASK]" not in tokens
        # an untrained model may write [EOS]: the text ends there (decode_texts)
        cut = tokens.index("[EOS]") if "[EOS]" in tokens[len(prompt):] else LENGTH
        assert text == "".join(tokens[:cut])
    assert not traj.frames[-1].mask.any()


@pytest.mark.parametrize("name", ALL)
def test_frames_are_well_formed(runs, tok, name):
    traj = runs[name]
    rule = dl.strategies.get_strategy(name)
    rounds = len(rule.time_grid(STEPS, rule.options)) - 1 - STEPS  # checks after the schedule
    assert 1 <= traj.num_steps <= STEPS + rounds
    probes = LENGTH if rule.reread else 0  # a probe row per decoded slot
    assert 1 <= traj.forward_passes <= (STEPS + rounds) * (1 + probes)
    fixed = traj.fixed
    for frame in [traj.start, *traj.frames]:
        for tensor in (frame.ids, frame.mask, frame.confidence, frame.revealed, frame.remasked):
            assert tensor.shape == (4, LENGTH + 1)
        assert not frame.mask[:, 0].any()  # the anchor is never masked
        assert (frame.ids[:, 0] == tok.cls_token_id).all()
        assert torch.equal(frame.ids[fixed], traj.start.ids[fixed])  # prompt slots never touched
        assert not frame.mask[fixed].any()
        assert torch.equal(frame.mask, frame.ids == tok.mask_token_id)
    assert torch.equal(traj.ids, traj.frames[-1].ids)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_text_other_seed_other_text(model, tok, runs, name):
    again = dl.generate(model, tok, PROMPTS, length=LENGTH, steps=STEPS, strategy=name, seed=0,
                        num_samples=2)
    assert again.texts == runs[name].texts
    other = dl.generate(model, tok, PROMPTS, length=LENGTH, steps=STEPS, strategy=name, seed=1,
                        num_samples=2)
    assert other.texts != runs[name].texts


@pytest.mark.parametrize("name", ALL)
def test_infill_keeps_every_given_character(model, tok, name):
    traj = dl.generate(model, tok, ["ab[MASK][MASK]cd", "[MASK]h[MASK]"], length=6, steps=4,
                       strategy=name, seed=0)
    given = traj.fixed  # anchor and context characters
    assert torch.equal(traj.ids[given], traj.start.ids[given])
    assert not torch.isin(traj.ids[~given], torch.tensor(dl.denoiser.banned_token_ids(tok))).any()
    first, second = traj.tokens(len(traj.frames), 0), traj.tokens(len(traj.frames), 1)
    assert len(first) == 6 and len(second) == 6
    assert "".join(first[:2]) == "ab" and "".join(first[4:]) == "cd" and second[1] == "h"


@pytest.mark.parametrize("block_size", [4, 5])
def test_blocks_decode_left_to_right(model, tok, block_size):
    length = 16
    traj = dl.generate(model, tok, [""] * 3, length=length, steps=8, strategy="low_confidence",
                       block_size=block_size, seed=0)
    block_of = (torch.arange(length + 1) - 1) // block_size  # block index of each slot
    n_blocks = int(block_of[1:].max()) + 1
    seen_partial = False
    for frame in traj.frames:
        for k in range(n_blocks - 1):
            later_revealed = (~frame.mask[:, block_of > k]).any()
            if later_revealed:
                assert not frame.mask[:, block_of == k].any(), "a later block started early"
            seen_partial |= bool(frame.mask[:, block_of == k].any() & ~frame.mask[:, block_of == k]
                                 .all())
    assert seen_partial  # the check above is not vacuous: blocks fill over several steps


def test_blocks_start_after_the_prompt_as_in_llada():
    """LLaDA's generate.py: prompt of 6 tokens, gen_length 64, block_length 16, 16 steps ->
    4 blocks of 16 slots with 4 steps each (transcribed from the algorithm, not its code)."""
    free = torch.ones(2, 1 + 6 + 64, dtype=torch.bool)
    free[:, :7] = False  # [CLS] + the prompt
    free[1, 7] = False  # a second row with a 7-token prompt: its blocks start one slot later
    plan = sampling.block_plan(free, 16, 16)
    assert [n for _, n in plan] == [4, 4, 4, 4]
    assert [int(r[0].sum()) for r, _ in plan] == [16, 16, 16, 16]
    assert [int(r[1].sum()) for r, _ in plan] == [16, 16, 16, 15]
    assert plan[0][0][0, 7:23].all() and plan[0][0][1, 8:24].all()


def test_block_size_needs_a_step_per_block(model, tok):
    with pytest.raises(ValueError, match="block_size"):
        dl.generate(model, tok, [""], length=16, steps=2, block_size=4)


@pytest.mark.parametrize("name", NEVER_REVISE)
def test_decoded_tokens_are_final(runs, name):
    traj = runs[name]
    final = traj.frames[-1].ids
    for frame in traj.frames:
        decoded = ~frame.mask
        assert torch.equal(frame.ids[decoded], final[decoded])
        assert not frame.remasked.any()
    assert not strategies.STRATEGIES[name].revises


@pytest.mark.parametrize("name, options", [
    ("remdm", {"variant": "rescale", "eta": 1.0}),
    ("remdm", {"variant": "cap", "eta": 1.0}),
    ("remdm", {"variant": "conf"}),
    ("confidence_weighted", {"remask_scale": 1.0}),
])
def test_remasking_strategies_do_remask(model, tok, name, options):
    traj = dl.generate(model, tok, [""] * 4, length=24, steps=12, strategy=name, seed=0, **options)
    assert any(frame.remasked.any() for frame in traj.frames)
    assert not traj.frames[-1].mask.any()
    assert strategies.STRATEGIES[name].revises


def test_remdm_loop_runs_on_its_own_time_grid(model, tok, monkeypatch):
    """The rule must see the loop grid's (t, s) pairs, plateau included: this fails if
    `generate` ran the linear grid instead."""
    seen, remdm = [], strategies.STRATEGIES["remdm"]

    def spy(ctx):
        seen.append((ctx.t, ctx.s))
        return remdm.rule(ctx)

    monkeypatch.setitem(strategies.STRATEGIES, "remdm", dataclasses.replace(remdm, rule=spy))
    traj = dl.generate(model, tok, [""] * 2, length=24, steps=10, strategy="remdm",
                       variant="loop", seed=0)
    grid = strategies.loop_time_grid(10)
    assert grid[0] == 1 and grid[-1] == 0 and len(grid) == 11
    assert seen == list(zip(grid, grid[1:], strict=False))[:len(seen)] and len(seen) >= 2
    assert any(t == s for t, s in seen), "the plateau t == s of the loop was run"
    assert traj.num_steps <= 10 and not traj.frames[-1].mask.any()


def test_loop_grid_spends_steps_as_remdm():
    """ReMDM-loop (t_on 0.55, t_off 0.05, alpha_on 0.9; Wang et al. 2025): at 32 steps 15
    descend to mask rate 0.1, 16 loop there and 1 finishes."""
    grid = strategies.loop_time_grid(32)
    steps = list(zip(grid, grid[1:], strict=False))
    plateau = [t == s == pytest.approx(0.1) for t, s in steps]
    assert sum(plateau) == 16 and plateau.index(True) == 15
    assert all(t > s for t, s in steps[:15]) and steps[-1] == (pytest.approx(0.1), 0.0)
    assert grid[1] == pytest.approx(1 - 0.9 / 32 / 0.45)  # alpha falls 0.9 over 45% of the clock


def test_remask_probability_falls_as_confidence_rises():
    conf = torch.linspace(0, 1, 101)
    for scale, power in [(0.5, 1.0), (1.0, 2.0), (0.2, 0.5)]:
        p = strategies.remask_probability(conf, scale, power)
        assert (p.diff() < 0).all()
        assert p[0].item() == pytest.approx(scale) and p[-1].item() == 0.0
        assert ((p >= 0) & (p <= scale)).all()


def test_low_confidence_with_top_k_1_is_greedy(model, tok):
    """With one step per token and top_k=1, low_confidence must equal this hand-written loop:
    reveal the single most confident masked slot with its argmax token."""
    length = 12
    traj = dl.generate(model, tok, ["ab"], length=length, steps=length - 2, top_k=1, seed=0)
    other_seed = dl.generate(model, tok, ["ab"], length=length, steps=length - 2, top_k=1, seed=5)
    assert traj.texts == other_seed.texts  # greedy: the seed no longer matters
    x, fixed = sampling.prepare(tok, ["ab"], length)
    with torch.no_grad():
        while (x == tok.mask_token_id).any():
            logits = model(input_ids=x).logits.double()
            logits[..., dl.denoiser.banned_token_ids(tok)] = float("-inf")
            conf, best = logits.softmax(-1).max(-1)
            conf = conf.masked_fill(x != tok.mask_token_id, -1.0)
            slot = int(conf[0].argmax())
            x[0, slot] = best[0, slot]
    assert torch.equal(traj.ids, x)


def test_top_p_tiny_is_greedy():
    logits = torch.randn(50, 30, generator=torch.Generator().manual_seed(0))
    for kwargs in ({"top_k": 1}, {"top_p": 1e-9}, {"top_k": 3, "top_p": 1e-9}):
        logp = filter_logits(logits, **kwargs)
        assert torch.isfinite(logp).sum(-1).eq(1).all()
        for seed in range(3):
            draw = sample_categorical(logp, torch.Generator().manual_seed(seed))
            assert torch.equal(draw, logits.argmax(-1))


def test_filter_logits_keeps_a_normalised_nonempty_support():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(200, 40, generator=gen) * torch.rand(200, 1, generator=gen) * 20
    for temperature in (0.05, 1.0, 3.0):
        for top_k in (None, 1, 5, 40, 100):
            for top_p in (None, 1e-6, 0.5, 0.95, 1.0):
                logp = filter_logits(logits, temperature, top_k, top_p)
                assert logp.dtype == torch.float64
                kept = torch.isfinite(logp).sum(-1)
                assert (kept >= 1).all()
                if top_k is not None:
                    assert (kept <= top_k).all()
                assert torch.allclose(logp.exp().sum(-1), torch.ones(200, dtype=torch.float64))


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64)
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.75))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.5))
    assert kept.tolist() == [[True, False, False, False]]


def test_sample_categorical_frequencies_match_probabilities():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01], dtype=torch.float64)
    n = 200_000
    draws = sample_categorical(probs.log().expand(n, -1), torch.Generator().manual_seed(2))
    counts = torch.bincount(draws, minlength=5).double()
    expected = n * probs
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 30  # 4 degrees of freedom: P(chi2 > 30) is about 5e-6


def test_temperature_sharpens(model, tok):
    cold = dl.generate(model, tok, [""] * 4, length=40, steps=8, temperature=0.1, seed=0)
    hot = dl.generate(model, tok, [""] * 4, length=40, steps=8, temperature=3.0, seed=0)
    assert dl.metrics.unigram_entropy(cold.texts) < dl.metrics.unigram_entropy(hot.texts)


def test_record_false_keeps_one_frame(model, tok):
    traj = dl.generate(model, tok, ["ab"], length=16, steps=8, seed=0, record=False)
    full = dl.generate(model, tok, ["ab"], length=16, steps=8, seed=0)
    assert traj.num_steps == 1 and traj.texts == full.texts


def test_sundae_starts_from_random_tokens(model, tok):
    traj = dl.generate(model, tok, ["ab"] * 3, length=20, steps=6, strategy="sundae",
                       temperature=0.5, seed=0)
    start = traj.start
    assert not start.mask.any()
    free = ~traj.fixed
    assert torch.isin(start.ids[free], noise.content_token_ids(tok)).all()
    assert len(torch.unique(start.ids[free])) > 3  # random, not one repeated token


def test_trajectory_frame_and_tokens(runs):
    traj = runs["low_confidence"]
    assert traj.frame(0) is traj.start and traj.frame(traj.num_steps) is traj.frames[-1]
    with pytest.raises(ValueError, match="step"):
        traj.frame(traj.num_steps + 1)
    assert traj.tokens(0)[:3] == ["a", "b", "[MASK]"]
    # the text is the final frame's tokens, cut at the first generated [EOS] (an untrained
    # model may write one)
    assert "".join(traj.tokens(traj.num_steps)).split("[EOS]")[0] == traj.texts[0]


# ------------------------------------------------------------------------- the AR baseline


def test_ar_path_one_frame_and_one_pass_per_token(ar_model, tok):
    length = 20
    traj = dl.generate(ar_model, tok, ["ab", "cd"], length=length, seed=0)
    generated = length - 2
    assert traj.strategy == "ar"
    assert traj.num_steps == traj.forward_passes <= generated
    assert all(t.startswith(p) for t, p in zip(traj.texts, ["ab", "cd"], strict=True))
    assert traj.ids.shape == (2, length + 1)
    eos = traj.ids == tok.eos_token_id
    stop = torch.where(eos.any(1), eos.int().argmax(1), torch.tensor(length + 1))  # (B,)
    for k, frame in enumerate(traj.frames):  # left to right: frame k writes slot 3 + k
        for row in range(2):
            slot = 3 + k
            if slot > stop[row]:  # the row stopped at its [EOS]: nothing more is written
                assert not frame.revealed[row].any() and not frame.mask[row].any()
                continue
            assert frame.revealed[row, slot]
            if slot == stop[row]:  # the [EOS] and, at once, its padding
                assert frame.revealed[row, slot:].all() and not frame.mask[row].any()
            else:
                assert frame.revealed[row].sum() == 1
                assert frame.mask[row, slot + 1:].all() and not frame.mask[row, :slot + 1].any()


def test_ar_kv_cache_matches_a_full_recompute(ar_model, tok):
    length = 24
    traj = dl.generate(ar_model, tok, ["ab", "ba"], length=length, seed=3)
    ids = traj.ids
    with torch.no_grad():
        logits = ar_model(input_ids=ids).logits.double()  # no cache: the whole sequence at once
    logits[..., dl.denoiser.banned_token_ids(tok)] = float("-inf")
    probs = logits.softmax(-1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]  # (B, L-1)
    recorded = traj.frames[-1].confidence[:, 1:].double()
    eos = ids[:, 1:] == tok.eos_token_id  # a row's slots after its [EOS] are padding, not drawn
    drawn = (eos.cumsum(1) - eos.int()) == 0
    drawn[:, :2] = False  # the prompt
    assert torch.allclose(probs[drawn], recorded[drawn], atol=1e-5)  # the generated slots


def test_ar_greedy_equals_a_no_cache_greedy_loop(ar_model, tok):
    length = 16
    traj = dl.generate(ar_model, tok, ["ab"], length=length, top_k=1, seed=0)
    x = torch.tensor([[tok.cls_token_id] + tok("ab", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        while x.shape[1] < length + 1:
            logits = ar_model(input_ids=x).logits[:, -1]
            logits[:, dl.denoiser.banned_token_ids(tok)] = float("-inf")
            x = torch.cat([x, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(traj.ids, x)


def test_ar_rows_stop_at_their_stop_token_and_are_counted_per_row(ar_model, tok):
    """``stop`` ends each row at its own first stop token, pads the rest with it at once, and
    the frames count each row's passes as a diffusion sampler's (issue 24: the race charged the
    AR model for writing its padding)."""
    from diffusion_lab.worlds.grammar_metrics import passes_per_row

    stop = "e"  # a frequent character: an untrained model writes it early in some rows
    traj = dl.generate(ar_model, tok, [""] * 6, length=40, seed=1, stop=stop)
    stop_id = tok.convert_tokens_to_ids(stop)
    ids = traj.ids[:, 1:]  # without the anchor
    hit = ids == stop_id
    assert hit.any(1).all(), "every row stopped (seed 1)"
    first = hit.int().argmax(1)  # (B,) the slot of each row's first stop token
    assert len(set(first.tolist())) > 1, "rows stop at different slots"
    for row, k in enumerate(first.tolist()):
        assert (ids[row, k:] == stop_id).all()  # the stop token, then its padding
        assert (ids[row, :k] != stop_id).all()
    assert passes_per_row(traj).tolist() == (first + 1).tolist()
    assert traj.forward_passes == int(first.max()) + 1  # the batch ends with its last row


def test_ar_without_a_stop_token_writes_every_slot():
    """The grammar's tokenizer has no ``eos_token``: without ``stop`` an AR row writes all L."""
    lang = dl.worlds.grammar.tiny_language()
    gtok = lang.tokenizer()
    assert gtok.eos_token_id is None
    torch.manual_seed(0)
    ar = dl.tiny_ar(gtok, size="xs", max_length=16).eval()
    traj = dl.generate(ar, gtok, [""] * 3, length=lang.max_len, seed=0)
    assert traj.forward_passes == lang.max_len and not traj.frames[-1].mask.any()
    stopped = dl.generate(ar, gtok, [""] * 3, length=lang.max_len, seed=0, stop="[EOS]")
    assert stopped.forward_passes <= lang.max_len


def test_ar_stop_must_be_a_token(ar_model, tok):
    with pytest.raises(ValueError, match="stop='not a token'"):
        dl.generate(ar_model, tok, [""], length=8, stop="not a token")
    with pytest.raises(ValueError, match="option 'stride'"):
        dl.generate(ar_model, tok, [""], length=8, stride=2)


def test_ar_model_refuses_diffusion_strategies_and_infill(ar_model, model, tok):
    with pytest.raises(ValueError, match="strategy"):
        dl.generate(ar_model, tok, ["ab"], length=8, strategy="low_confidence")
    with pytest.raises(ValueError, match="strategy"):
        dl.generate(model, tok, ["ab"], length=8, strategy="ar")
    with pytest.raises(ValueError, match="infill"):
        dl.generate(ar_model, tok, ["a[MASK]b"], length=8)
