"""edit_flows: the aligned auxiliary process and the Edit Flows loss.

The alignment is checked by what it must do (applying every remaining edit to x_t gives x_1);
the loss by the theorem it rests on: its expectation over z_t, computed exactly by enumerating
every z_t, is minimised by the posterior expected number of missing words in each gap, which is
computed here a different way — by averaging over the embeddings of x_t in x_1.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import edit_flows as ef
from diffusion_lab.edit_model import EditFlowOutput, tiny_edit
from diffusion_lab.worlds.grammar import tiny_language

ANCHOR, PAD_ID = 1, 0


def draws(x1, n, coupling, trials=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    content = torch.arange(40, 50)
    for _ in range(trials):
        z0, z1 = ef.align(x1, n, content, coupling, g)
        t = torch.rand(len(x1), generator=g, dtype=torch.float64)
        yield z0, z1, ef.mix(z0, z1, t, g)


X1 = torch.tensor([[10, 11, 12, 13], [20, 21, ef.PAD, ef.PAD], [30, ef.PAD, ef.PAD, ef.PAD]])
N1 = torch.tensor([4, 2, 1])


@pytest.mark.parametrize("coupling", [ef.Coupling(0), ef.Coupling(3, 0.5), ef.Coupling(3, 1.0),
                                      ef.Coupling(2, 0.0)])
def test_applying_the_remaining_edits_to_x_t_gives_x_1(coupling):
    kinds = set()
    for _z0, z1, zt in draws(X1, N1, coupling):
        x, lengths = ef.strip(zt, ANCHOR, PAD_ID)
        edits = ef.remaining_edits(zt, z1)
        kinds |= set(edits.kind.tolist())
        for b in range(len(X1)):
            mine = [(int(k), int(p), int(t)) for r, k, p, t in
                    zip(edits.row, edits.kind, edits.pos, edits.token, strict=True) if r == b]
            got = ef.apply_edits(x[b, :lengths[b]].tolist(), mine)
            assert got == [ANCHOR] + X1[b, :N1[b]].tolist()
    expected = {0} if coupling.junk == 0 else {0, 1, 2} - ({2} if coupling.p_substitute == 0
                                                            else set())
    assert expected <= kinds


def test_the_alignment_keeps_both_sequences_and_no_empty_column():
    for z0, z1, _ in draws(X1, N1, ef.Coupling(3, 0.5)):
        assert not ((z0 == ef.BLANK) & (z1 == ef.BLANK)).any()
        for b in range(len(X1)):
            assert [v for v in z1[b].tolist() if v >= 0] == X1[b, :N1[b]].tolist()
            start = [v for v in z0[b].tolist() if v >= 0]
            assert len(start) <= 3 and all(40 <= v < 50 for v in start)


def test_the_start_distribution_has_zero_to_k_words():
    g = torch.Generator().manual_seed(0)
    words, k = ef.Coupling(3).start(4000, torch.arange(40, 50), g)
    assert set(k.tolist()) == {0, 1, 2, 3}
    assert abs(k.double().mean().item() - 1.5) < 0.1
    assert ((words >= 0).sum(1) == k).all()


def _embeddings(x1: list[int], xt: list[int]) -> list[tuple[int, ...]]:
    return [idx for idx in itertools.combinations(range(len(x1)), len(xt))
            if [x1[i] for i in idx] == xt]


@pytest.mark.parametrize("weighting", ["paper", "flat"])
def test_the_loss_is_minimised_by_the_posterior_expected_insertions(weighting):
    """x_1 = a b a c, x_0 empty (only insertions): given x_t = [a], the minimiser of the
    exact expected loss puts in each gap the expected number of missing words there."""
    x1, xt, t, vocab = [10, 11, 10, 12], [10], 0.4, 16
    z1 = torch.tensor([x1])
    z0 = torch.full_like(z1, ef.BLANK)
    cases = []
    for keep in itertools.product([0, 1], repeat=len(x1)):
        zt = torch.where(torch.tensor([keep], dtype=torch.bool), z1, z0)
        x, lengths = ef.strip(zt, ANCHOR, PAD_ID)
        if x[0, 1:lengths[0]].tolist() == xt:
            p = t ** sum(keep) * (1 - t) ** (len(keep) - sum(keep))
            cases.append((p, ef.remaining_edits(zt, z1)))
    assert len(cases) == 2  # "a" is word 1 or word 3
    # brute force, another way: average the gaps over the embeddings of x_t in x_1
    emb = _embeddings(x1, xt)
    want = torch.zeros(2, vocab, dtype=torch.float64)  # gap 0 (front), gap 1 (after "a")
    for (i,) in emb:
        for j in range(len(x1)):
            if j != i:
                want[0 if j < i else 1, x1[j]] += 1 / len(emb)
    rates = torch.zeros(1, 2, 3, dtype=torch.float64)
    rates[0, :, 0] = want.sum(1)
    logits = want.clamp_min(1e-30).log()[None]
    rates.requires_grad_(True)
    logits.requires_grad_(True)

    def expected_loss(r, lg):
        out = EditFlowOutput(rates=r, ins_logits=lg, sub_logits=lg)
        t_row = torch.tensor([t], dtype=torch.float64)
        return sum(p * ef.edit_loss_terms(out, torch.tensor([2]), e, t_row, weighting)[0]
                   for p, e in cases)

    loss = expected_loss(rates, logits)
    loss.backward()
    assert rates.grad[0, :, 0].abs().max() < 1e-9
    assert logits.grad[0][want > 0].abs().max() < 1e-9
    assert want.sum(1).tolist() == pytest.approx([1.0, 2.0])  # 0 or 2 before, 3 or 1 after
    for delta in (-0.2, 0.2):  # and it is a minimum
        moved = rates.detach().clone()
        moved[0, 1, 0] += delta
        assert expected_loss(moved, logits.detach()) > loss.detach()


def test_the_loss_trains_a_tiny_edit_model_and_rejects_bad_input():
    g = tiny_language()
    tok = g.tokenizer()
    model = tiny_edit(tok, size="xs", max_length=g.max_len + 1)
    texts = g.texts(64 * 30, seed=0)
    hist = dl.train(model, tok, texts, objective="edit_flow", steps=30, batch_size=64,
                    seq_len=g.max_len + 1, lr=3e-3, warmup=5, progress=False)
    assert all(math.isfinite(v) for v in hist.loss)
    assert sum(hist.loss[-5:]) < sum(hist.loss[:5])
    with pytest.raises(ValueError, match="edit_flow"):
        dl.train(dl.tiny_mlm(tok, "xs", 5), tok, texts, objective="edit_flow", steps=1,
                 seq_len=5)
    with pytest.raises(ValueError, match="edit_flow"):
        dl.train(model, tok, texts, objective="mdlm", steps=1, seq_len=5)
    with pytest.raises(ValueError, match="weighting"):
        dl.objectives.compute_loss("edit_flow", model, torch.ones(2, 5, dtype=torch.long), tok,
                                   generator=torch.Generator(), weighting="wrong")
    with pytest.raises(ValueError, match="p_substitute"):
        ef.Coupling(2, 1.5)
    with pytest.raises(ValueError, match="junk"):
        ef.Coupling(-1)
