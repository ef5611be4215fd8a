r"""Measuring writers of any length against a grammar: lengths, planted errors, gaps to fill.

* `length_distribution` — the exact $P(n) = \sum_{c:\,|c| = n} P(c)$ of a sentence having $n$
  words (a sum over the grammar's templates: nothing sampled).
* `length_kl` — $\mathrm{KL}(p \,\|\, \hat q)$ in nats between that truth and the lengths of
  samples, $\hat q$ their add-½ (Krichevsky–Trofimov) smoothed frequencies over $0..L$ (so a
  length the samples never hit costs a finite amount).  An estimate from $N$ samples is above 0
  even for the truth's own samples: compare with that floor.
* `log_prob` — the exact $\log p$ of any text: $-\infty$ for an empty one, one longer than the
  grammar's $L$, or one outside the language.
* `plant` — one error per sentence, the kind the discussion asks about: ``"agreement"`` (a verb
  turned to the other number: *the dog run .*), ``"missing"`` (a word taken out) or
  ``"extra"`` (a random word put in); every planted sentence is outside the language.
* `word_distance` — Levenshtein distance in words (insertions, deletions, substitutions).
* `cut_gaps` — infill cases: each sentence with a span of 1..3 words cut out.
"""

from __future__ import annotations

import math
import random

import torch

from ..settings import check_int
from .grammar import EOS, Grammar, _check_texts

KINDS = ("agreement", "missing", "extra")


def length_distribution(g: Grammar) -> torch.Tensor:
    """(L + 1,) float64: the exact probability that a sentence has n words, n = 0..L."""
    p = torch.zeros(g.max_len + 1, dtype=torch.float64)
    lengths = torch.tensor([len(t) for t in g.templates])
    return p.index_add(0, lengths, g.template_prob)


def length_kl(lengths, g: Grammar) -> float:
    """$\\mathrm{KL}(p \\| \\hat q)$ (nats) of the exact length distribution ``p`` against the
    add-½ smoothed frequencies of ``lengths`` (words per sample, each in 0..L)."""
    lengths = torch.as_tensor(lengths).long().reshape(-1)
    if len(lengths) == 0 or int(lengths.min()) < 0 or int(lengths.max()) > g.max_len:
        raise ValueError(f"lengths must be a non-empty list of word counts in 0..{g.max_len}")
    p = length_distribution(g)
    counts = torch.bincount(lengths, minlength=g.max_len + 1).double()
    q = (counts + 0.5) / (len(lengths) + 0.5 * len(counts))
    keep = p > 0
    return float((p[keep] * (p[keep] / q[keep]).log()).sum())


def log_prob(g: Grammar, texts) -> torch.Tensor:
    """(B,) exact log-probability of each text; ``-inf`` when empty, longer than ``L`` words or
    outside the language (a variable-length writer may write any of these)."""
    items = g.canonical(texts)
    out = torch.full((len(items),), -math.inf, dtype=torch.float64)
    keep = [i for i, s in enumerate(items) if 0 < len(s.split()) <= g.max_len]
    if keep:
        out[keep] = g.log_prob([items[i] for i in keep])
    return out


def number_pairs(g: Grammar) -> dict[str, str]:
    """{verb: the same verb in the other number} for every ``X.sg``/``X.pl`` pair of verb
    categories (``V``, ``TV``, ``SAY``): their word lists are parallel."""
    out = {}
    for base in ("V", "TV", "SAY"):
        sg = [w for w in g.words if g.category_of[w] == f"{base}.sg"]
        pl = [w for w in g.words if g.category_of[w] == f"{base}.pl"]
        if len(sg) == len(pl):
            out.update(zip(sg, pl, strict=True))
            out.update(zip(pl, sg, strict=True))
    return out


def plant(g: Grammar, sentences, kind: str, seed: int = 0) -> list[str]:
    """Each sentence with one planted error of ``kind`` (`KINDS`), chosen at random among the
    changes that take it out of the language (seeded).  A sentence with no such change (e.g.
    no verb, for ``"agreement"``) is a ValueError naming it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    rng = random.Random(seed)
    flip, vocab = number_pairs(g), [w for w in g.words if w != EOS]
    out = []
    for i, sentence in enumerate(g.canonical(_check_texts(sentences))):
        words = sentence.split()
        if kind == "agreement":
            options = [words[:j] + [flip[w]] + words[j + 1:] for j, w in enumerate(words)
                       if w in flip]
        elif kind == "missing":
            options = [words[:j] + words[j + 1:] for j in range(len(words))]
        else:
            options = [words[:j] + [rng.choice(vocab)] + words[j:] for j in range(len(words) + 1)]
            options = [o for o in options if len(o) <= g.max_len]
        bad = [" ".join(o) for o in options if not math.isfinite(log_prob(g, [" ".join(o)])[0])]
        if not bad:
            raise ValueError(f"sentences[{i}] ({sentence!r}) has no {kind!r} error to plant")
        out.append(rng.choice(bad))
    return out


def word_distance(a: str, b: str) -> int:
    """Levenshtein distance between two texts, counted in words."""
    x, y = a.split(), b.split()
    row = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        prev, row[0] = row[0], i
        for j, wy in enumerate(y, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (wx != wy))
    return row[-1]


def cut_gaps(g: Grammar, sentences, seed: int = 0, max_span: int = 3
             ) -> list[tuple[str, str, str]]:
    """(left, span, right) per sentence: a contiguous span of 1..``max_span`` words (never the
    whole sentence) cut out at a random place (seeded)."""
    check_int(max_span, "max_span", 1)
    rng = random.Random(seed)
    out = []
    for sentence in g.canonical(_check_texts(sentences)):
        words = sentence.split()
        if len(words) < 2:
            raise ValueError(f"{sentence!r} is too short to cut a gap from (2 words at least)")
        size = rng.randint(1, min(max_span, len(words) - 1))
        at = rng.randint(0, len(words) - size)
        out.append((" ".join(words[:at]), " ".join(words[at:at + size]),
                    " ".join(words[at + size:])))
    return out
