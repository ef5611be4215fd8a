r"""Measuring samples and models against a grammar's exact probabilities.

* `error_kinds` — why a sentence is out of the language: ``"agreement"`` (the right parts of
  speech, a wrong singular/plural), ``"quotes"`` (unpaired quote marks), ``"end"`` (the full stop
  or the [EOS] padding out of place) or ``"other"``.
* `agreement_checks` — every agreement a sentence had to respect, with the distance between the
  two words and whether it held: which dependencies parallel decoding breaks.
* `total_variation` — $\tfrac12 \sum_x |\hat q(x) - p(x)|$ between samples and an enumerated
  truth (its own noise floor: the same number for as many samples of the truth).
* `sentence_nll` — a model's $-\log q(x)$ per sentence: exact for an AR model; for a masked LM
  the MDLM bound (the continuous-time ELBO of Sahoo et al. 2024 equals the expected NLL of
  decoding one token at a time in a uniformly random order; estimated over random orders).
  Compare both with ``grammar.entropy()``: the limit is known.
* `hidden_word_excess` — where a model's nats go: hide one word, compare the model's loss with
  the exact conditional's, per part of speech.
* `bootstrap` — `stats.bootstrap`, re-exported: a confidence interval over sentences (the
  independent unit), paired when two samplers are scored on the same sentences.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import is_causal_lm
from ..stats import bootstrap  # noqa: F401  (gm.bootstrap: the chapter's interval over sentences)
from ..tokenization import SPECIAL_TOKENS
from .grammar import EOS, Grammar
from .grammar_oracle import N_SPECIAL, GrammarOracleForMaskedLM

CLS_ID, MASK_ID = SPECIAL_TOKENS.index("[CLS]"), SPECIAL_TOKENS.index("[MASK]")


def _base(cat: str) -> tuple[str, str | None]:
    base, _, number = cat.partition(".")
    return base, number or None


def _projections(g: Grammar) -> dict[tuple, list[tuple[int, int]]]:
    """{template without numbers: agreement links (i, j)} — j agrees with noun i in every
    template of that projection (each numbered word linked to its nearest such noun)."""
    cached = getattr(g, "_agreement_links", None)
    if cached is not None:
        return cached
    groups: dict[tuple, list[tuple]] = {}
    for t in g.templates:
        groups.setdefault(tuple(_base(c)[0] for c in t), []).append(t)
    links = {}
    for proj, members in groups.items():
        pairs = []
        for j in range(len(proj)):
            if not any(_base(t[j])[1] for t in members):
                continue
            nouns = [i for i in range(len(proj)) if i != j and proj[i] == "N" and all(
                _base(t[i])[1] == _base(t[j])[1] for t in members if _base(t[j])[1])]
            if nouns and proj[j] != "N":
                pairs.append((min(nouns, key=lambda i: abs(i - j)), j))
        links[proj] = pairs
    g._agreement_links = links
    return links


def _words(g: Grammar, sentences) -> list[list[str]]:
    return [s.split() for s in g.canonical(sentences)]


def error_kinds(g: Grammar, sentences) -> list[str]:
    """One of ``valid agreement quotes end other`` per sentence (see the module)."""
    valid = g.is_valid(sentences).tolist()
    links = _projections(g)
    out = []
    for ok, words in zip(valid, _words(g, sentences), strict=True):
        proj = tuple(_base(g.category_of.get(w, "?"))[0] for w in words)
        if ok:
            out.append("valid")
        elif proj in links:
            out.append("agreement")
        elif words.count('"') not in (0, 2):
            out.append("quotes")
        elif EOS in words or words.count(".") != 1 or words[-1] != ".":
            out.append("end")
        else:
            out.append("other")
    return out


def agreement_checks(g: Grammar, sentences) -> list[tuple[int, str, int, int, bool]]:
    """``(sentence index, link name, i, j, held?)`` for every agreement of every sentence whose
    parts of speech form a template (others have no defined links): the noun at word i and the
    word j that must share its number; names like ``"N-V"`` (noun, then the other's category)."""
    links = _projections(g)
    out = []
    for k, words in enumerate(_words(g, sentences)):
        cats = [g.category_of.get(w, "?") for w in words]  # "?": a special token
        proj = tuple(_base(c)[0] for c in cats)
        for i, j in links.get(proj, []):
            ni, nj = _base(cats[i])[1], _base(cats[j])[1]
            if nj is not None:  # "the" carries no number: nothing to agree
                out.append((k, f"{proj[i]}-{proj[j]}", i, j, ni == nj))
    return out


def passes_per_row(traj) -> torch.Tensor:
    """(B,) forward passes each sample needed: 1 + the steps after which it still had a mask
    (a recorded `Trajectory`; rows that finish early, as with ``threshold``, count less)."""
    still = torch.stack([f.mask.any(1) for f in traj.frames])  # (steps, B)
    return 1 + still[:-1].sum(0)


def reveal_step(traj) -> torch.Tensor:
    """(B, L) the step at which each text slot was last revealed (from a recorded trajectory)."""
    masks = torch.stack([f.mask[:, 1:] for f in traj.frames])  # (steps, B, L)
    still = masks.flip(0).cumsum(0).flip(0) > 0  # masked at this step or at a later one
    return still.sum(0) + 1


def total_variation(samples: list[str], support: list[str], probs: torch.Tensor) -> float:
    """TV distance between the empirical distribution of ``samples`` and the truth on
    ``support`` (mass outside the support counts fully)."""
    truth = dict(zip(support, probs.tolist(), strict=True))
    counts: dict[str, int] = {}
    for s in samples:
        counts[s] = counts.get(s, 0) + 1
    n = len(samples)
    inside = sum(abs(c / n - truth.get(s, 0.0)) for s, c in counts.items())
    unseen = sum(p for s, p in truth.items() if s not in counts)
    return 0.5 * (inside + unseen)


@torch.no_grad()
def sentence_nll(model, g: Grammar, sentences, orders: int = 1, seed: int = 0,
                 batch_size: int = 64) -> torch.Tensor:
    """(B,) nats per sentence: exact $-\\log q(x)$ for a causal model; for a masked LM the MDLM
    bound, estimated over ``orders`` random decoding orders $\\sigma$ per sentence:
    $\\sum_t -\\log q(x_{\\sigma_t} \\mid x_{\\sigma_{<t}})$ (L rows per order).  Its mean over
    orders is the continuous-time ELBO (the any-order view of MDLM); for exact conditionals every
    order gives $-\\log p(x)$ itself.  The [EOS] padding is scored too."""
    device = next(model.parameters()).device
    body = g.encode(sentences) + N_SPECIAL  # (B, L) token ids
    cls = torch.full((len(body), 1), CLS_ID, dtype=torch.long)
    ids = torch.cat([cls, body], 1)
    L = g.max_len
    out = []
    gen = torch.Generator().manual_seed(seed)
    steps = torch.arange(L)
    for rows in ids.split(batch_size):
        if is_causal_lm(model):
            logits = model(input_ids=rows.to(device)).logits[:, :-1].double()
            nll = F.cross_entropy(logits.transpose(1, 2), rows[:, 1:].to(device), reduction="none")
            out.append(nll.sum(1).cpu())
            continue
        b = len(rows)
        total = torch.zeros(b, dtype=torch.float64)
        for _ in range(orders):
            perm = torch.rand(b, L, generator=gen).argsort(1)  # sigma: perm[:, t] decoded at t
            rank = perm.argsort(1)  # (B, L): when each position is decoded
            masked = rank[:, None, :] >= steps[None, :, None]  # (B, t, L): hidden at step t
            noisy = rows[:, None, :].repeat(1, L, 1)  # (B, L steps, 1 + L)
            noisy[:, :, 1:][masked] = MASK_ID
            logits = model(input_ids=noisy.reshape(b * L, -1).to(device)).logits.double().cpu()
            logits = logits.reshape(b, L, L + 1, -1)[:, :, 1:]  # (B, t, L, V)
            logits[..., :N_SPECIAL] = float("-inf")
            target = perm[:, :, None, None].expand(-1, -1, 1, logits.shape[-1])
            picked = logits.gather(2, target)[:, :, 0]  # (B, t, V): the slot decoded at t
            want = rows[:, 1:].gather(1, perm)  # (B, t)
            total += F.cross_entropy(picked.transpose(1, 2), want, reduction="none").sum(1)
        out.append(total / orders)
    return torch.cat(out)


@torch.no_grad()
def hidden_word_rows(model, g: Grammar, sentences, batch_size: int = 256
                     ) -> tuple[torch.Tensor, list[str]]:
    r"""``(excess (B, L), kinds)``: each word (and [EOS] slot) of each sentence hidden in turn,
    everything else visible; the model's $-\log q(w_i \mid x_{-i})$ minus the exact
    $-\log p(w_i \mid x_{-i})$ of `GrammarOracleForMaskedLM`, and each slot's part of speech
    (row-major ``kinds[k * L + i]``).  Rows are sentences: bootstrap over them."""
    body = g.encode(sentences) + N_SPECIAL  # (B, L) token ids
    b, L = body.shape
    rows = torch.cat([torch.full((b, 1), CLS_ID, dtype=torch.long), body], 1)
    rows = rows.repeat_interleave(L, 0)
    slot = torch.arange(L).repeat(b) + 1  # row k*L + i hides text slot i of sentence k
    every = torch.arange(b * L)
    target = rows[every, slot].clone()
    rows[every, slot] = MASK_ID
    nll = []
    for scorer in (model, GrammarOracleForMaskedLM(g)):
        device = next(scorer.parameters()).device
        out = []
        for chunk, where, want in zip(rows.split(batch_size), slot.split(batch_size),
                                      target.split(batch_size), strict=True):
            logits = scorer(input_ids=chunk.to(device)).logits.double().cpu()
            picked = logits[torch.arange(len(chunk)), where]  # (n, V): the hidden slot
            picked[:, :N_SPECIAL] = float("-inf")
            out.append(-picked.log_softmax(-1).gather(1, want[:, None])[:, 0])
        nll.append(torch.cat(out))
    kinds = [_base(g.category_of[g.words[w - N_SPECIAL]])[0] for w in target.tolist()]
    return (nll[0] - nll[1]).reshape(b, L), kinds


def hidden_word_excess(model, g: Grammar, sentences, batch_size: int = 256
                       ) -> dict[str, tuple[float, int]]:
    r"""``{part of speech: (mean excess nats, count)}``, largest first (see `hidden_word_rows`).
    A word whose number its neighbours fix (a noun after "these", a verb after its subject)
    costs $\ln 2 \approx 0.69$ nats to a model that guesses the number."""
    return by_kind(*hidden_word_rows(model, g, sentences, batch_size))


def by_kind(excess: torch.Tensor, kinds: list[str]) -> dict[str, tuple[float, int]]:
    """`hidden_word_rows`'s output averaged per part of speech, largest first."""
    excess = excess.flatten()
    table = {}
    for kind in set(kinds):
        pick = torch.tensor([k == kind for k in kinds])
        table[kind] = (excess[pick].mean().item(), int(pick.sum()))
    return dict(sorted(table.items(), key=lambda item: -item[1][0]))
