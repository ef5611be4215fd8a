"""Revision that re-reads the present context (strategies_revision): the re-read score is the
model's probability of a token with its slot masked *now*, and a token contradicted by what is
written after it is remasked (or edited) after, and only after, that is written.

A "claim checker" oracle stands in for a trained model: the token at text position 0 (the
verdict) should equal the token at text position 2 (the evidence); the model is unsure of the
verdict while the evidence is masked, certain once it is visible, and sure of the evidence
("a") from the start.  Forced to "b" and revisable, the verdict is contradicted the moment the
evidence is written.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab.strategies_revision import reread_scores


def claim_checker(tok, evidence_last: bool = False):
    """A tiny_mlm patched into the claim checker (module docstring); records its inputs.
    ``evidence_last``: less sure of the evidence (p 0.73) than of any other slot."""
    model = dl.tiny_mlm(tok, size="xs", max_length=16).eval()
    a, b = tok.convert_tokens_to_ids(["a", "b"])
    V, M = len(tok), tok.mask_token_id
    seen = []

    def forward(input_ids, **kwargs):
        seen.append(input_ids.clone())
        logits = torch.full((*input_ids.shape, V), -30.0)
        logits[..., a] = 4.0  # every slot: "a", fairly sure (p ~ 0.98)
        if evidence_last:
            logits[:, 3, a], logits[:, 3, b] = 1.0, 0.0
        evidence = input_ids[:, 3]  # text position 2
        verdict = logits[:, 1]
        verdict[:] = -30.0
        unsure = evidence == M
        verdict[unsure, a], verdict[unsure, b] = 0.0, 0.405  # 0.4 / 0.6 while it is masked
        verdict[~unsure, a] = torch.where(evidence[~unsure] == a, 9.0, -9.0)
        verdict[~unsure, b] = torch.where(evidence[~unsure] == b, 9.0, -9.0)
        return SimpleNamespace(logits=logits)

    model.forward = forward
    return model, seen


@pytest.fixture
def oracle(tok):
    return claim_checker(tok)


def first_step(traj, attr: str, slot: int) -> int | None:
    """The first step whose frame has ``attr`` (revealed / remasked) at ``slot`` of row 0."""
    return next((f.step for f in traj.frames if getattr(f, attr)[0, slot]), None)


def test_probe_score_is_the_probability_with_the_slot_masked(model, tok):
    x = torch.tensor([[tok.cls_token_id] + tok("abcab", add_special_tokens=False)["input_ids"]])
    decoded = torch.zeros_like(x, dtype=torch.bool)
    decoded[0, [2, 4, 5]] = True
    info = dl.objectives.TokenInfo.from_tokenizer(tok)
    with torch.no_grad():
        now, top, p_top, passes = reread_scores(model, x, None, decoded, info, "probe", chunk=2)
    assert passes == 3
    for i in range(x.shape[1]):
        if not decoded[0, i]:
            assert now[0, i] == 0 and top[0, i] == x[0, i]
            continue
        probe = x.clone()
        probe[0, i] = tok.mask_token_id
        with torch.no_grad():
            p = dl.denoiser.denoiser_logits(model, probe, info)[0, i].double().softmax(-1)
        assert now[0, i].item() == pytest.approx(p[x[0, i]].item(), rel=1e-5)
        assert top[0, i] == p.argmax() and p_top[0, i].item() == pytest.approx(p.max().item())


def test_self_score_reads_the_visible_slot(model, tok):
    x = torch.tensor([[tok.cls_token_id] + tok("abc", add_special_tokens=False)["input_ids"]])
    decoded = torch.tensor([[False, True, False, True]])
    info = dl.objectives.TokenInfo.from_tokenizer(tok)
    with torch.no_grad():
        logits = dl.denoiser.denoiser_logits(model, x, info)
        now, top, _, passes = reread_scores(model, x, logits, decoded, info, "self")
    p = logits.double().softmax(-1)
    assert passes == 0 and now[0, 1].item() == pytest.approx(p[0, 1, x[0, 1]].item())
    assert now[0, 2] == 0 and top[0, 3] == p[0, 3].argmax()
    with pytest.raises(ValueError, match="score"):
        reread_scores(model, x, logits, decoded, info, "peek")


def test_reread_remask_revises_the_verdict_after_the_evidence_is_written(oracle, tok):
    model, _ = oracle
    traj = dl.generate(model, tok, ["b"], length=5, steps=5, strategy="reread_remask",
                       revisable=[0], top_k=1, seed=0)
    assert traj.texts[0][0] == "a", traj.texts  # the forced "b" was revised
    evidence = first_step(traj, "revealed", 3)
    remasked = first_step(traj, "remasked", 1)
    assert evidence is not None and remasked is not None
    assert remasked == evidence + 1  # the step after the evidence is written, not before
    # its confidence, re-read at every step and shown in the frames: 0.6 until the evidence
    assert traj.start.confidence[0, 1].item() == pytest.approx(0.6, abs=1e-3)
    assert traj.frames[evidence - 1].confidence[0, 1].item() == pytest.approx(0.6, abs=1e-3)


def test_evidence_written_last_is_checked_after_the_schedule(tok):
    """The least certain slot is written at the schedule's last step, where nothing may be
    remasked: the rounds at t = 0 take the verdict back and write it again."""
    model, _ = claim_checker(tok, evidence_last=True)
    traj = dl.generate(model, tok, ["b"], length=5, steps=5, strategy="reread_remask",
                       revisable=[0], top_k=1, seed=0)
    assert first_step(traj, "revealed", 3) == 5 and first_step(traj, "remasked", 1) == 6
    assert traj.num_steps == 7 and traj.texts[0][0] == "a"
    unforced = dl.generate(model, tok, ["a"], length=5, steps=5, strategy="reread_remask",
                           revisable=[0], top_k=1, seed=0)
    assert unforced.num_steps == 6 and unforced.texts[0][0] == "a"  # one round: nothing doubted
    no_rounds = dl.generate(model, tok, ["b"], length=5, steps=5, strategy="reread_remask",
                            revisable=[0], top_k=1, seed=0, rounds=0)
    assert no_rounds.num_steps == 5 and no_rounds.texts[0][0] == "b"


def test_decode_time_rule_cannot_tell_when_the_evidence_arrives(oracle, tok):
    """confidence_weighted keeps the start probe's 0.6 for the forced token: its remask chance
    is 0.5 (1 - 0.6) at every step, so rows remask it at step 1, before the evidence."""
    model, _ = oracle
    traj = dl.generate(model, tok, ["b"] * 64, length=5, steps=5, strategy="confidence_weighted",
                       revisable=[0], top_k=1, seed=0)
    step1 = traj.frames[0]
    early = step1.remasked[:, 1] & step1.mask[:, 3]  # remasked while the evidence is masked
    assert 0.08 < early.float().mean() < 0.35  # 0.2 expected


def test_token_editing_replaces_in_place(oracle, tok):
    model, _ = oracle
    for score in ("self", "probe"):
        traj = dl.generate(model, tok, ["b"], length=5, steps=5, strategy="token_editing",
                           revisable=[0], top_k=1, seed=0, score=score)
        assert traj.texts[0][0] == "a", (score, traj.texts)
        assert not any(f.remasked.any() for f in traj.frames)  # an edit, never a [MASK]
        edit = next(f.step for f in traj.frames if f.revealed[0, 1])
        assert edit > first_step(traj, "revealed", 3)


@pytest.mark.parametrize("name, option", [("reread_remask", "remask_below"),
                                          ("token_editing", "editing_threshold")])
@pytest.mark.parametrize("bad", [0, 1.5, True, "high"])
def test_bad_thresholds_are_refused(model, tok, name, option, bad):
    with pytest.raises(ValueError, match=option):
        dl.generate(model, tok, ["ab"], length=8, steps=4, strategy=name, **{option: bad})


def test_an_untrained_model_is_remasked_everywhere_it_doubts(model, tok):
    traj = dl.generate(model, tok, [""] * 4, length=16, steps=8, strategy="reread_remask",
                       seed=0)
    assert any(f.remasked.any() for f in traj.frames) and not traj.frames[-1].mask.any()
    assert dl.strategies.get_strategy("reread_remask").revises
