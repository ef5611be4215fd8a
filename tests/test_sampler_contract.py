"""The sampler contract, for every registered strategy, over random inputs (``hypothesis``).

Whatever the length, the number of steps, the prompt (a prefix or an infill template), the block
size and the revisable prompt tokens: given tokens are never changed (revisable ones only by a
strategy that ``revises``), no [MASK] is left at the end, a seed gives the same text, and the
sampler never calls the model more than once per step (plus the one probe for revisable
tokens; a re-reading strategy: its ``rounds`` more steps and, probing, one row per decoded
slot).  The model is an untrained tiny one: these are properties of the loop, not of weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffusion_lab as dl
from diffusion_lab import objectives, sampling

REGISTERED = sorted(dl.STRATEGIES)  # the library's own, before any test registers one
LETTERS = "abcdefgh "
FAST = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def sampling_problems(draw):
    """(prompt, length, steps, block_size, revisable) with the prompt a prefix or a template."""
    length = draw(st.integers(1, 16))
    if draw(st.booleans()):  # a prefix
        given_chars = draw(st.text(LETTERS, max_size=length))
        prompt, given_at = given_chars, list(range(len(given_chars)))
    else:  # an infill template: each slot masked or a given character
        slots = draw(st.lists(st.one_of(st.none(), st.sampled_from(LETTERS)), min_size=length,
                              max_size=length))
        prompt = "".join("[MASK]" if c is None else c for c in slots)
        given_at = [i for i, c in enumerate(slots) if c is not None]
    steps = draw(st.integers(1, 10))
    block_size = draw(st.one_of(st.none(), st.integers(1, 8)))
    revisable = draw(st.lists(st.sampled_from(given_at), unique=True, max_size=3)
                     if given_at else st.just([]))
    return prompt, length, steps, block_size, revisable


def _blocks_needed(length, block_size):
    return 1 if block_size is None else -(-length // block_size)


@pytest.mark.parametrize("name", REGISTERED)
@FAST
@given(problem=sampling_problems(), seed=st.integers(0, 2**16))
def test_every_strategy_keeps_the_contract(model, tok, name, problem, seed):
    prompt, length, steps, block_size, revisable = problem
    steps = max(steps, _blocks_needed(length, block_size))
    if name == "remdm":
        steps = max(steps, 4)  # its "loop" variant is not the default; all variants get >= 4
    run = dict(length=length, steps=steps, strategy=name, block_size=block_size, seed=seed,
               revisable=revisable, num_samples=2)
    traj = dl.generate(model, tok, [prompt], **run)
    mask = tok.mask_token_id
    given_slots = traj.start.ids != mask  # anchor, given characters, revisable tokens
    if dl.STRATEGIES[name].start == "uniform":
        given_slots = traj.fixed.clone()
        given_slots[:, [1 + i for i in revisable]] = True
    kept = traj.fixed if dl.STRATEGIES[name].revises else traj.fixed | given_slots
    for frame in traj.frames:
        assert torch.equal(frame.ids[kept], traj.start.ids[kept]), "a given token changed"
    assert not (traj.ids == mask).any(), "a [MASK] is left at the end"
    rule = dl.STRATEGIES[name]
    if rule.reread:  # `rounds` more steps, each with one probe row per decoded slot at most
        steps = (steps + rule.options["rounds"]) * (
            1 + (length if rule.options["score"] == "probe" else 0))
    assert traj.forward_passes <= steps + (1 if revisable else 0)
    again = dl.generate(model, tok, [prompt], **run)
    assert torch.equal(again.ids, traj.ids), "the same seed gave another text"


def test_an_unknown_option_names_itself_and_the_valid_ones(model, tok):
    with pytest.raises(ValueError) as err:
        dl.generate(model, tok, [""], length=8, steps=2, strategy="threshold", treshold=0.5)
    assert "'treshold'" in str(err.value) and "'threshold'" in str(err.value)


def test_training_and_sampling_give_the_same_probabilities(model, tok):
    """One step of ancestral sampling from all-[MASK] reveals every slot with the probability
    the training losses score: exp(-CE) of the very same denoiser on the very same input."""
    ids, _ = sampling.prepare(tok, [""], 12)
    traj = dl.generate(model, tok, [""], length=12, steps=1, strategy="ancestral", seed=3)
    info = dl.denoiser.TokenInfo.from_tokenizer(tok)
    with torch.no_grad():
        logits = dl.denoiser.denoiser_logits(model, ids, info)  # what every loss calls
    ce = F.cross_entropy(logits[0, 1:], traj.ids[0, 1:], reduction="none")
    assert torch.allclose(traj.frames[-1].confidence[0, 1:].double(), (-ce).exp().double(),
                          rtol=1e-5)


@pytest.mark.parametrize("objective", ["mlm", "variable_rate", "mdlm", "sundae"])
def test_every_loss_reads_the_model_through_the_one_denoiser(model, tok, objective, monkeypatch):
    calls = []
    real = objectives.denoiser_logits
    monkeypatch.setattr(objectives, "denoiser_logits",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    ids, _ = sampling.prepare(tok, ["abcdefgh"], 8)
    objectives.compute_loss(objective, model, ids, tok, generator=torch.Generator().manual_seed(0))
    assert calls


def test_a_registered_strategy_runs_and_can_be_replaced(model, tok):
    @dl.register_strategy("test_left_to_right", options={"per_step": 2})
    def left_to_right(ctx):
        """Reveal the leftmost masked slots, ``per_step`` at a time."""
        pos = torch.arange(ctx.x.shape[1], dtype=torch.float64).expand_as(ctx.p)
        score = (-pos).masked_fill(~(ctx.masked & ctx.region), float("-inf"))
        k = torch.full((ctx.x.shape[0],), ctx.option("per_step"), dtype=torch.long)
        return dl.strategies.top_k_mask(score, k), ctx.nothing()

    try:
        traj = dl.generate(model, tok, ["ab"], length=10, steps=4, strategy="test_left_to_right",
                           seed=0, per_step=3)
        first = traj.frames[0].revealed[0].nonzero()[:, 0].tolist()
        assert first == [3, 4, 5]  # anchor 0, prompt 1-2, then the three leftmost slots
        assert not traj.frames[-1].mask.any()
    finally:
        dl.STRATEGIES.pop("test_left_to_right", None)


def test_the_step_callback_sees_every_frame_and_can_stop(model, tok):
    seen = []

    def stop_after_two(step, frame):
        seen.append((step, frame.step))
        return step == 2

    traj = dl.generate(model, tok, [""], length=12, steps=6, strategy="ancestral", seed=0,
                       callback_on_step_end=stop_after_two)
    assert seen == [(1, 1), (2, 2)] and traj.num_steps == 2
    full = dl.generate(model, tok, [""], length=12, steps=6, strategy="ancestral", seed=0,
                       record=False, callback_on_step_end=lambda step, frame: None)
    assert full.num_steps == 1 and not full.frames[-1].mask.any()


def test_settings_records_and_keywords_agree(model, tok):
    base = dl.SampleSettings(length=10, steps=4, strategy="low_confidence", seed=1)
    by_record = dl.generate(model, tok, ["ab"], base)
    by_keywords = dl.generate(model, tok, ["ab"], length=10, steps=4, strategy="low_confidence",
                              seed=1)
    assert by_record.texts == by_keywords.texts
    assert dl.generate(model, tok, ["ab"], base, steps=2).num_steps <= 2
    with pytest.raises(ValueError, match="steps"):
        base.with_(steps=0)


def test_the_terminal_animation_prints_one_line_per_step(model, tok):
    import io

    from diffusion_lab.cli import terminal_animation

    out = io.StringIO()
    traj = dl.generate(model, tok, ["ab"], length=10, steps=5, strategy="low_confidence",
                       seed=0, callback_on_step_end=terminal_animation(tok, out))
    lines = out.getvalue().splitlines()
    assert len(lines) == traj.num_steps == 5
    assert "\u2592" in lines[0] and "\u2592" not in lines[-1]


# ------------------------------------- parity with the reference implementations (issue 10)


def test_low_confidence_llada_counts_put_the_remainder_first(tok):
    """LLaDA's get_num_transfer_tokens (Nie et al. 2025, Algorithm / generate.py): 60 masked
    slots over 16 steps reveal 4 in each of the first 12 steps and 3 in the last 4."""
    torch.manual_seed(0)
    model = dl.tiny_mlm(tok, size="xs", max_length=64).eval()
    traj = dl.generate(model, tok, [""], length=60, steps=16, strategy="low_confidence",
                       counts="llada", seed=0)
    assert [int(f.revealed.sum()) for f in traj.frames] == [4] * 12 + [3] * 4
    default = dl.generate(model, tok, [""], length=60, steps=16, strategy="low_confidence", seed=0)
    assert [int(f.revealed.sum()) for f in default.frames] != [4] * 12 + [3] * 4
    with pytest.raises(ValueError, match="counts"):
        dl.generate(model, tok, [""], length=8, steps=2, strategy="low_confidence", counts="x")


def test_remdm_conf_reveals_masked_slots_at_mdlm_rate():
    """ReMDM (Wang et al. 2025, eq. for sigma_t^conf): sigma is 0 at a masked slot, so with
    t = 0.75 -> s = 0.71875 (32 linear steps), 64 decoded and 192 masked slots, a step reveals
    192 (alpha_s - alpha_t) / (1 - alpha_t) = 8.0 slots on average (not ~9 as with the row's
    mean sigma)."""
    rows, width = 4000, 256
    masked = torch.zeros(rows, width, dtype=torch.bool)
    masked[:, 64:] = True
    x = torch.full((rows, width), 7)
    ctx = dl.strategies.StepContext(
        x=x, masked=masked, region=torch.ones_like(masked), proposal=x,
        p=torch.full((rows, width), 0.5), conf=torch.rand(rows, width,
                                                          generator=torch.Generator().manual_seed(0)),
        t=0.75, s=0.71875, step=8, n=32, generator=torch.Generator().manual_seed(1),
        options={**dl.STRATEGIES["remdm"].options, "variant": "conf"})
    update, _ = dl.strategies.remdm(ctx)
    per_step = update.sum(1).double()
    assert abs(per_step.mean().item() - 8.0) < 4 * per_step.std().item() / rows ** 0.5


def test_random_remask_always_runs_all_its_steps(model, tok):
    """The article's loop runs its 10 steps whatever happens; at length 8 a step often leaves no
    mask early (the library stopped there before)."""
    for seed in range(6):
        traj = dl.generate(model, tok, [""], length=8, steps=10, strategy="random_remask",
                           seed=seed)
        assert traj.num_steps == 10
