"""Question answering: the QA families, SFT rows and loss, [EOS] trimming, threshold decoding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import data
from diffusion_lab.objectives import compute_loss
from diffusion_lab.trajectory import decode_texts
from diffusion_lab.worlds import qa

PAIRS = qa.pairs(200, seed=0)


@pytest.fixture(scope="module")
def tok():
    return dl.train_tokenizer([f"{q} {a}" for q, a in qa.pairs(2000, seed=0)], vocab_size=320)


def test_families_answer_in_the_seed_form():
    assert qa.check("is 3+4=7?", "yes, 3+4=7.") and qa.check("is 3+4=8?", "no, 3+4=7.")
    assert not qa.check("is 3+4=8?", "yes, 3+4=8.") and not qa.check("is 3+4=7?", "no, 3+4=7.")
    assert qa.check("what is 9+8?", "17.") and not qa.check("what is 9+8?", "18.")
    assert qa.check("count 3 to 6?", "3 4 5 6.") and not qa.check("count 3 to 6?", "3 4 5.")
    lengths = {len(a) for _, a in PAIRS}
    assert min(lengths) <= 3 and max(lengths) >= 11  # answers of different lengths
    assert qa.pairs(50, seed=3) == qa.pairs(50, seed=3) != qa.pairs(50, seed=4)
    assert all(qa.check(q, a) for q, a in PAIRS)
    claims = [q for q, _ in PAIRS if q.startswith("is ")]
    true = sum(qa.Claims.is_true(q) for q in claims)
    assert 0.3 < true / len(claims) < 0.7  # both verdicts are common


@pytest.mark.parametrize("question", ["is 3+4=7", "what's 3+4?", "count 6 to 3?", ""])
def test_unparsable_questions_are_value_errors(question):
    with pytest.raises(ValueError, match="question"):
        qa.check(question, "7.")


def test_bad_arguments():
    with pytest.raises(TypeError, match="question"):
        qa.FAMILIES["sums"].check(7, "7.")
    with pytest.raises(ValueError, match="n must"):
        qa.pairs(0)
    with pytest.raises(ValueError, match="families"):
        qa.pairs(3, families=("riddles",))


def test_every_tokenizer_the_library_builds_has_eos(tok):
    assert tok.eos_token == "[EOS]" and dl.CharTokenizer.from_texts(["ab"]).eos_token == "[EOS]"
    # "yes" and "no" are single tokens, so a forced "no" can be revised into "yes" in place
    assert len(tok.encode("yes", add_special_tokens=False)) == 1
    assert len(tok.encode("no", add_special_tokens=False)) == 1
    q = "is 3+4=7?"
    assert tok.encode(q + "no", add_special_tokens=False) == tok.encode(
        q, add_special_tokens=False) + tok.encode("no", add_special_tokens=False)


def test_pad_pairs_layout(tok):
    ids, fixed = data.pad_pairs(tok, [("what is 1+2?", "3.")], 20)
    p = tok.encode("what is 1+2?", add_special_tokens=False)
    r = tok.encode("3.", add_special_tokens=False)
    assert ids[0, 0] == tok.cls_token_id and ids[0, 1:1 + len(p)].tolist() == p
    assert ids[0, 1 + len(p):1 + len(p) + len(r)].tolist() == r
    assert (ids[0, 1 + len(p) + len(r):] == tok.eos_token_id).all()
    assert fixed[0].tolist() == [True] * (1 + len(p)) + [False] * (19 - len(p))


def test_pad_pairs_bad_input(tok):
    with pytest.raises(ValueError, match="seq_len=8"):
        data.pad_pairs(tok, [("count 1 to 6?", "1 2 3 4 5 6.")], 8)
    with pytest.raises(TypeError, match="pairs"):
        data.pad_pairs(tok, ["what is 1+2?"], 20)
    with pytest.raises(TypeError, match="pairs"):
        dl.train(dl.tiny_mlm(tok, "xs", 20), tok, "a text", objective="sft", steps=1, seq_len=20)


def oracle(model, ids_clean, wrong_at):
    """Patch ``model``: near-certain of the clean token everywhere except where ``wrong_at``
    (B, L), where it is uniform; records every input it sees."""
    seen = []

    def forward(input_ids, **kwargs):
        seen.append(input_ids.clone())
        logits = torch.full((*input_ids.shape, model.config.vocab_size), -30.0)
        logits.scatter_(-1, ids_clean[..., None], 30.0)
        logits[wrong_at] = 0.0
        return SimpleNamespace(logits=logits)

    model.forward = forward
    return seen


def test_sft_loss_never_masks_the_prompt_and_scores_eos(tok):
    ids, fixed = data.pad_pairs(tok, PAIRS[:16], 20)
    model = dl.tiny_mlm(tok, "xs", 20)
    prompt_wrong = fixed.clone()
    prompt_wrong[:, 0] = False
    seen = oracle(model, ids, prompt_wrong)  # wrong only on the prompt: not scored
    losses = [compute_loss("sft", model, ids, tok, fixed=fixed,
                           generator=torch.Generator().manual_seed(s)).item() for s in range(8)]
    assert max(losses) < 1e-6
    for x in seen:
        assert (x[fixed] == ids[fixed]).all()  # the prompt is never masked
    assert any((x[~fixed] == tok.mask_token_id).any() for x in seen)  # the response is
    oracle(model, ids, ids == tok.eos_token_id)  # wrong only on [EOS] slots: scored
    loss = compute_loss("sft", model, ids, tok, fixed=fixed,
                        generator=torch.Generator().manual_seed(0))
    assert loss.item() > 0.1


def test_causal_sft_scores_only_the_response(tok):
    ids, fixed = data.pad_pairs(tok, PAIRS[:16], 20)
    model = dl.tiny_ar(tok, "xs", 20)
    shifted = torch.roll(ids, -1, dims=1)  # position i predicts token i + 1
    wrong = torch.roll(fixed, -1, dims=1)  # wrong where the *target* is a prompt token
    wrong[:, -1] = False
    oracle(model, shifted, wrong)
    assert compute_loss("sft", model, ids, tok, fixed=fixed).item() < 1e-6
    oracle(model, shifted, torch.roll(ids == tok.eos_token_id, -1, dims=1))
    assert compute_loss("sft", model, ids, tok, fixed=fixed).item() > 0.1


def test_sft_training_runs_for_both_models(tok):
    for factory in (dl.tiny_mlm, dl.tiny_ar):
        hist = dl.train(factory(tok, "xs", 20), tok, PAIRS, objective="sft", steps=3,
                        batch_size=4, seq_len=20, progress=False, device="cpu")
        assert hist.steps == 3 and all(v > 0 for v in hist.loss)


def test_texts_end_at_the_first_generated_eos():
    tok = dl.CharTokenizer.from_texts(["ab"])
    a, b, e = tok.convert_tokens_to_ids(["a", "b", "[EOS]"])
    ids = torch.tensor([[tok.cls_token_id, a, b, e, a, e]])
    fixed = torch.tensor([[True, True, False, False, False, False]])
    assert decode_texts(tok, ids, fixed) == ["ab"]
    fixed[0, 1:4] = True  # an [EOS] inside the prompt does not end the text
    assert decode_texts(tok, ids, fixed) == ["ab[EOS]a"]
    fixed[0, 1:4] = False  # no [EOS] generated: the whole row
    assert decode_texts(tok, ids[:, :3], fixed[:, :3]) == ["ab"]


class Out(dict):
    """A model output read both ways (``out.logits``, ``out["past_key_values"]``)."""

    __getattr__ = dict.__getitem__


def always(model, token_id, tok):
    """Patch ``model``: certain of ``token_id`` at every position."""
    def forward(input_ids, **kwargs):
        logits = torch.zeros(*input_ids.shape, len(tok))
        logits[..., token_id] = 40.0
        return Out(logits=logits, past_key_values=None)

    model.forward = forward


def test_ar_stops_at_eos_and_diffusion_frames_keep_eos_slots(tok):
    ar = dl.tiny_ar(tok, "xs", 20)
    always(ar, tok.eos_token_id, tok)
    traj = dl.generate(ar, tok, ["what is 1+2?"], length=19, seed=0)
    assert traj.texts == ["what is 1+2?"] and traj.forward_passes == 1
    mlm = dl.tiny_mlm(tok, "xs", 20)
    always(mlm, tok.eos_token_id, tok)
    traj = dl.generate(mlm, tok, ["what is 1+2?"], length=19, steps=4, seed=0)
    assert traj.texts == ["what is 1+2?"]
    assert (traj.frames[-1].ids[0, ~traj.fixed[0]] == tok.eos_token_id).all()


def test_threshold_reveals_at_least_one_slot_and_adapts(tok):
    mlm = dl.tiny_mlm(tok, "xs", 20)
    torch.manual_seed(0)
    traj = dl.generate(mlm, tok, ["what is 1+2?", "count 1 to 3?"], length=19, steps=19,
                       strategy="threshold", threshold=0.9, seed=0)
    before = traj.start.mask
    for frame in traj.frames:  # untrained: nothing is confident, still >= 1 per row and step
        still = before.any(1)
        assert ((frame.revealed.sum(1) >= 1) | ~still).all()
        before = frame.mask
    always(mlm, tok.eos_token_id, tok)  # certain everywhere: one pass decodes everything
    traj = dl.generate(mlm, tok, ["what is 1+2?"], length=19, steps=19, strategy="threshold",
                       threshold=0.9, seed=0)
    assert traj.forward_passes == 1 and not traj.frames[-1].mask.any()
    traj = dl.generate(mlm, tok, ["what is 1+2?"], length=19, steps=19, strategy="threshold",
                       threshold=1.0, seed=0)
    free = int((~traj.fixed).sum())
    assert traj.forward_passes == free and all(f.revealed.sum() == 1 for f in traj.frames)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, True])
def test_threshold_outside_0_1_is_refused(tok, bad):
    mlm = dl.tiny_mlm(tok, "xs", 20)
    with pytest.raises(ValueError, match="threshold"):
        dl.generate(mlm, tok, ["what is 1+2?"], length=19, steps=4, strategy="threshold",
                    threshold=bad)


def test_ask_groups_forces_and_refuses_bad_lengths(tok):
    mlm = dl.tiny_mlm(tok, "xs", 20)
    always(mlm, tok.eos_token_id, tok)
    answers, trajs = qa.ask(mlm, tok, ["is 3+4=7?", "what is 1+2?", "is 1+1=2?"], length=19,
                            forced="no", steps=4, seed=0)
    assert answers == ["no", "no", "no"] and len(trajs) == 2  # two token counts, two batches
    with pytest.raises(ValueError, match="response length"):
        qa.ask(mlm, tok, ["what is 1+2?"], length=5)
    with pytest.raises(ValueError, match="length=40 does not fit"):
        dl.generate(mlm, tok, ["what is 1+2?"], length=40)


def test_ask_forced_wrong_forces_the_wrong_verdict_and_records_events(tok):
    claims = ["is 3+4=7?", "is 3+4=8?", "is 1+1=2?"]
    ar = dl.tiny_ar(tok, "xs", 20)
    always(ar, tok.eos_token_id, tok)
    answers, events = qa.ask_forced_wrong(ar, tok, claims, length=19, seed=0)  # revise ignored
    assert answers == ["no", "yes", "no"] and events == [None] * 3
    mlm = dl.tiny_mlm(tok, "xs", 20)
    always(mlm, tok.eos_token_id, tok)
    answers, events = qa.ask_forced_wrong(mlm, tok, claims, length=19, steps=4, seed=0,
                                          strategy="low_confidence")
    assert answers == ["no", "yes", "no"]  # committed: the forced verdict stays
    assert all(e is not None and e["remasked"] is None and e["sum_written"] is None
               for e in events)  # no "=" written after the verdict: nothing to time
    with pytest.raises(TypeError, match="claims"):
        qa.ask_forced_wrong(mlm, tok, "is 1+1=2?", length=19)
