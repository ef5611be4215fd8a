r"""A language whose probabilities we know exactly: a small probabilistic grammar of English.

Every sample-quality number elsewhere in the book is a proxy (a judge model, an entropy).  Here
the truth is a probabilistic context-free grammar (PCFG) in the spirit of the synthetic languages
of "Physics of Language Models" (Allen-Zhu & Li 2023): rules ``A -> B C`` with probabilities, and
*preterminal categories* (``N.sg``, ``V.pl``, ``DET``, ...) that emit real English words.

Exactness comes from two facts.  The grammar is not recursive, so it generates a finite set of
category sequences ("templates") $c = c_1 \dots c_n$, each with probability $P(c)$ (the sum over
its derivations: the inside algorithm, run once, in closed form).  And every word belongs to
exactly one category, so a sentence $w$ determines its template $c(w)$ and

$$ p(w) = P(c(w)) \prod_i P(w_i \mid c_i), \qquad
   H(W) = H(C) + \sum_c P(c) \sum_i H(W_i \mid c_i) $$

(the entropy chain rule with $C$ a function of $W$).  Both are exact; nothing is estimated.

Model view: a sentence of $n \le L$ words is written as $L$ tokens, the words then ``[EOS]``
until the end (``[EOS]`` is an ordinary vocabulary word, so samplers may produce it); the
padding is determined by the sentence, so the $L$-token sequence has the sentence's entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..settings import check_int
from ..tokenization import SPECIAL_TOKENS

EOS = "[EOS]"


def _check_texts(sentences, arg: str = "sentences") -> list[str]:
    items = [sentences] if isinstance(sentences, str) else sentences
    if not isinstance(items, Sequence) or not all(isinstance(s, str) for s in items):
        raise TypeError(f"{arg} must be a str or a list of str, got {type(sentences).__name__}")
    return list(items)


class Grammar:
    """A non-recursive PCFG over categories, plus a lexicon of words per category.

    ``rules``: ``{nonterminal: [(probability, (symbol, ...)), ...]}``, each list summing to 1;
    a symbol is a nonterminal or a category.  ``lexicon``: ``{category: {word: weight}}``
    (weights are normalised per category); a word may belong to one category only.
    ``max_len``: the model's length $L$ in tokens; every sentence must fit.
    """

    def __init__(self, rules: dict, lexicon: dict, *, start: str = "S", max_len: int = 16):
        check_int(max_len, "max_len")
        if start not in rules:
            raise ValueError(f"start symbol {start!r} has no rule; rules define {sorted(rules)}")
        owner = {}
        for cat, words in lexicon.items():
            if not words or any(w <= 0 for w in words.values()):
                raise ValueError(f"lexicon[{cat!r}] must map words to positive weights")
            for word in words:
                if word in owner or word == EOS or not word.strip() or " " in word:
                    raise ValueError(f"word {word!r} of category {cat!r} is reserved, has a space "
                                     f"or already belongs to {owner.get(word)!r}")
                owner[word] = cat
        for lhs, options in rules.items():
            total = sum(p for p, _ in options)
            if abs(total - 1) > 1e-9:
                raise ValueError(f"rules[{lhs!r}] probabilities sum to {total}, not 1")
        self.rules, self.start, self.max_len = rules, start, max_len
        self.categories = sorted(lexicon) + [EOS]  # EOS: the padding category, index C
        self.words = [EOS] + [w for cat in sorted(lexicon) for w in lexicon[cat]]
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.category_of = {w: owner.get(w, EOS) for w in self.words}
        cat_index = {c: i for i, c in enumerate(self.categories)}
        emit = torch.zeros(len(self.categories), len(self.words), dtype=torch.float64)
        for cat, words in lexicon.items():
            total = sum(words.values())
            for w, weight in words.items():
                emit[cat_index[cat], self.word_index[w]] = weight / total
        emit[-1, 0] = 1.0
        self.emission = emit  # (C + 1, V): P(word | category)
        probs = self._templates(start, 0)
        too_long = [t for t in probs if len(t) > max_len]
        if too_long:
            raise ValueError(f"the grammar makes sentences of {max(map(len, too_long))} tokens, "
                             f"more than max_len={max_len}")
        self.templates = sorted(probs, key=lambda t: (-probs[t], t))
        self.template_prob = torch.tensor([probs[t] for t in self.templates], dtype=torch.float64)
        self.template_ids = torch.tensor(  # (T, L) category index per position, EOS-padded
            [[cat_index[c] for c in t] + [len(self.categories) - 1] * (max_len - len(t))
             for t in self.templates], dtype=torch.long)
        self.word_category = torch.tensor([cat_index[self.category_of[w]] if w != EOS else
                                           len(self.categories) - 1 for w in self.words])

    def _templates(self, symbol: str, depth: int) -> dict[tuple, float]:
        """{category sequence: probability} generated by ``symbol`` (derivations summed)."""
        if symbol not in self.rules:
            if symbol not in self.categories[:-1]:
                raise ValueError(f"symbol {symbol!r} is neither a nonterminal nor a category")
            return {(symbol,): 1.0}
        if depth > 50:
            raise ValueError(f"the grammar is recursive (through {symbol!r}); it must be finite")
        out: dict[tuple, float] = {}
        for p, rhs in self.rules[symbol]:
            partial = {(): p}
            for sym in rhs:
                sub = self._templates(sym, depth + 1)
                partial = {a + b: pa * pb for a, pa in partial.items() for b, pb in sub.items()}
            for t, q in partial.items():
                out[t] = out.get(t, 0.0) + q
        return out

    # ---------------------------------------------------------------- words <-> ids
    def encode(self, sentences, arg: str = "sentences") -> torch.Tensor:
        """(B, L) word ids, [EOS]-padded.  Trailing [EOS] words in a text are allowed."""
        rows = []
        for i, text in enumerate(_check_texts(sentences, arg)):
            words = text.split()
            if not words:
                raise ValueError(f"{arg}[{i}] is empty; a sentence has at least one word")
            if len(words) > self.max_len:
                raise ValueError(f"{arg}[{i}] has {len(words)} words, more than the model's "
                                 f"max_len={self.max_len}")
            unknown = [w for w in words if w not in self.word_index]
            if unknown:
                raise ValueError(f"{arg}[{i}] has words outside the vocabulary: {unknown[:5]} "
                                 f"(the {len(self.words)} words are in .words)")
            rows.append([self.word_index[w] for w in words] + [0] * (self.max_len - len(words)))
        return torch.tensor(rows, dtype=torch.long).reshape(-1, self.max_len)

    def canonical(self, sentences) -> list[str]:
        """Each text without its trailing [EOS] padding, unvalidated: sampled text may hold the
        model's special tokens (``[UNK]``, ``[PAD]``), which `log_prob` scores as outside."""
        out = []
        for text in _check_texts(sentences):
            words = text.split()
            while words and words[-1] == EOS:
                words.pop()
            out.append(" ".join(words))
        return out

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Sentences without the [EOS] padding (an [EOS] inside a sentence is kept)."""
        out = []
        for row in ids.tolist():
            words = [self.words[i] for i in row]
            while words and words[-1] == EOS:
                words.pop()
            out.append(" ".join(words))
        return out

    # ---------------------------------------------------------------- exact answers
    def log_prob_ids(self, ids: torch.Tensor) -> torch.Tensor:
        r"""(B,) exact $\log p(w) = \log P(c(w)) + \sum_i \log P(w_i \mid c_i)$ of [EOS]-padded
        id rows; ``-inf`` when the category sequence $c(w)$ is no template.  Vectorised: one
        ``unique`` over the rows finds every sentence's template."""
        cats = self.word_category[ids]  # (B, L)
        both = torch.cat([self.template_ids, cats])
        _, inverse = torch.unique(both, dim=0, return_inverse=True)
        slot = torch.full((int(inverse.max()) + 1,), -1, dtype=torch.long)
        slot[inverse[: len(self.templates)]] = torch.arange(len(self.templates))
        template = slot[inverse[len(self.templates):]]  # (B,) -1 where no template
        words = self.emission[cats, ids].log().sum(1)
        prior = self.template_prob.log()[template.clamp(min=0)]
        return torch.where(template >= 0, prior + words, torch.full_like(words, -math.inf))

    def log_prob(self, sentences) -> torch.Tensor:
        """(B,) exact natural-log probability of each sentence; ``-inf`` outside the language.

        A sentence holding one of the model's special tokens ([PAD], [UNK], ... : a sampler may
        draw them) is outside the language; any other unknown word is an error."""
        texts = _check_texts(sentences, "sentences")
        special = [any(w in SPECIAL_TOKENS for w in t.split()) for t in texts]
        out = torch.full((len(texts),), -math.inf, dtype=torch.float64)
        keep = [i for i, bad in enumerate(special) if not bad]
        if keep:
            out[keep] = self.log_prob_ids(self.encode([texts[i] for i in keep])).double()
        return out

    def is_valid(self, sentences) -> torch.Tensor:
        """(B,) bool: the sentence is in the language (probability > 0)."""
        return torch.isfinite(self.log_prob(sentences))

    def entropy(self) -> float:
        """Exact $H(W) = -\\sum_w p(w) \\log p(w)$ in nats per sentence (see the module)."""
        p = self.template_prob
        emit = self.emission
        cat_entropy = -(emit * emit.clamp_min(1e-300).log()).sum(1)  # (C + 1,)
        words = cat_entropy[self.template_ids].sum(1)  # (T,)
        return float(-(p * p.log()).sum() + (p * words).sum())

    def sample_ids(self, n: int, seed: int = 0) -> torch.Tensor:
        """(n, L) [EOS]-padded id rows drawn from the truth (template, then each word)."""
        check_int(n, "n")
        g = torch.Generator().manual_seed(seed)
        t = torch.multinomial(self.template_prob, n, replacement=True, generator=g)
        cats = self.template_ids[t]  # (n, L)
        ids = torch.zeros_like(cats)
        for c in cats.unique().tolist():  # one draw per category, not per position
            where = cats == c
            ids[where] = torch.multinomial(self.emission[c], int(where.sum()), replacement=True,
                                           generator=g)
        return ids

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` sentences drawn from the true distribution (seeded, offline)."""
        return self.decode(self.sample_ids(n, seed))

    def enumerate(self, limit: int = 200_000, length: int | None = None
                  ) -> tuple[list[str], torch.Tensor]:
        """Every sentence and its probability (for small grammars; ``limit`` guards the size).
        ``length``: only the sentences of that many tokens (probabilities not renormalised)."""
        keep = [i for i, t in enumerate(self.templates) if length in (None, len(t))]
        rows = self.template_ids[keep].tolist()
        size = sum(math.prod(int((self.emission[c] > 0).sum()) for c in row) for row in rows)
        if size > limit:
            raise ValueError(f"the language has {size} sentences, more than limit={limit}")
        ids, probs = [], []
        for row, prior in zip(rows, self.template_prob[keep], strict=True):
            grid = torch.cartesian_prod(*[self.emission[c].nonzero()[:, 0] for c in row])
            grid = grid.reshape(-1, self.max_len)  # (N, L): every sentence of this template
            ids.append(grid)
            probs.append(prior * self.emission[torch.tensor(row)[None], grid].prod(1))
        return self.decode(torch.cat(ids)), torch.cat(probs)

    def texts(self, n: int, seed: int = 0) -> list[str]:
        """``n`` training examples: true samples written as L tokens ([EOS]-padded)."""
        return [" ".join(self.words[i] for i in row) for row in self.sample_ids(n, seed).tolist()]

    def tokenizer(self):
        """A ``transformers`` fast tokenizer: one token per word (``tokenizers`` WordLevel).

        Ids 0..4 are the book's special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]`` (as
        ``dl.CharTokenizer``), then ``[EOS]`` and the words.  ``[EOS]`` is an ordinary token
        (not the tokenizer's ``eos_token``): a sentence is always L tokens, [EOS]-padded, and
        ``generate`` keeps every slot of it in ``texts`` (it cuts texts at an ``eos_token``)."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        from ..tokenization import _SPECIAL_KWARGS, SPECIAL_TOKENS

        vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        vocab.update({w: len(SPECIAL_TOKENS) + i for i, w in enumerate(self.words)})
        backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins with spaces
        backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
        special = {k: v for k, v in _SPECIAL_KWARGS.items() if k != "eos_token"}  # see above
        return PreTrainedTokenizerFast(tokenizer_object=backend, clean_up_tokenization_spaces=False,
                                       **special)


def _split(options: dict) -> list[tuple[float, tuple]]:
    return [(p, tuple(rhs.split())) for rhs, p in options.items()]


def _zipf(words: Sequence[str]) -> dict[str, float]:
    """Weights 1 / (rank + 2): a mild Zipf law, so frequent and rare words both occur."""
    return {w: 1.0 / (r + 2) for r, w in enumerate(words)}


NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds"), ("horse", "horses"),
         ("fox", "foxes"), ("wolf", "wolves"), ("mouse", "mice"), ("child", "children"),
         ("girl", "girls"), ("boy", "boys"), ("king", "kings"), ("queen", "queens"),
         ("teacher", "teachers"), ("farmer", "farmers"), ("man", "men"), ("woman", "women")]
VERBS = [("runs", "run"), ("sleeps", "sleep"), ("sings", "sing"), ("laughs", "laugh"),
         ("waits", "wait"), ("smiles", "smile"), ("dances", "dance"), ("swims", "swim")]
TRANSITIVE = [("sees", "see"), ("likes", "like"), ("chases", "chase"), ("helps", "help"),
              ("follows", "follow"), ("knows", "know"), ("finds", "find"), ("feeds", "feed")]
SAYING = [("says", "say"), ("shouts", "shout")]
ADJECTIVES = ["small", "big", "happy", "quiet", "brave", "clever", "hungry", "young"]
ADVERBS = ["today", "again", "slowly", "now"]


def book_language(max_len: int = 16) -> Grammar:
    """The chapter's language: 92 words, agreement across relative clauses, quotes, a full stop.

    ``S -> NP.n VP.n .`` (80%) or ``NP.n SAY.n " NP.m VP.m " .`` (20%), each number n, m
    sg/pl with probability 1/2.  The subject noun agrees with its determiner (``a``, ``this``,
    ``every``, ``one`` / ``these``, ``some``, ``many``, ``two``; ``the`` fits both) and with its
    verb, also across a relative clause: "the dog that the cats chase runs ." (object relative)
    or "the dog that chases the cats runs ." (subject relative).
    """
    rules: dict = {"S": []}
    lexicon = {"DET": {"the": 1.0}, "REL": {"that": 1.0}, "ADJ": _zipf(ADJECTIVES),
               "ADV": _zipf(ADVERBS), "END": {".": 1.0}, "Q": {'"': 1.0},
               "DET.sg": _zipf(["a", "this", "every", "one"]),
               "DET.pl": _zipf(["these", "some", "many", "two"])}
    for n, k in (("sg", 0), ("pl", 1)):
        lexicon[f"N.{n}"] = _zipf([pair[k] for pair in NOUNS])
        lexicon[f"V.{n}"] = _zipf([pair[k] for pair in VERBS])
        lexicon[f"TV.{n}"] = _zipf([pair[k] for pair in TRANSITIVE])
        lexicon[f"SAY.{n}"] = _zipf([pair[k] for pair in SAYING])
        rules["S"] += [(0.4, (f"NP.{n}", f"VP.{n}", "END")),
                       (0.05, (f"SNP.{n}", f"SAY.{n}", "Q", "SNP.sg", "VP.sg", "Q", "END")),
                       (0.05, (f"SNP.{n}", f"SAY.{n}", "Q", "SNP.pl", "VP.pl", "Q", "END"))]
        rules[f"DP.{n}"] = _split({f"DET.{n}": 0.5, "DET": 0.5})
        rules[f"SNP.{n}"] = _split({f"DP.{n} N.{n}": 0.7, f"DP.{n} ADJ N.{n}": 0.3})
        rules[f"NP.{n}"] = _split({f"DP.{n} N.{n}": 0.5, f"DP.{n} ADJ N.{n}": 0.2,
                                   f"DP.{n} N.{n} REL RC.{n}": 0.3})
        rules[f"RC.{n}"] = _split({f"TV.{n} SNP.sg": 0.25, f"TV.{n} SNP.pl": 0.25,
                                   "SNP.sg TV.sg": 0.25, "SNP.pl TV.pl": 0.25})
        rules[f"VP.{n}"] = _split({f"V.{n}": 0.35, f"V.{n} ADV": 0.15, f"TV.{n} SNP.sg": 0.25,
                                   f"TV.{n} SNP.pl": 0.25})
    return Grammar(rules, lexicon, max_len=max_len)


def tiny_language(max_len: int = 4) -> Grammar:
    """A language small enough to enumerate (30 sentences): determiner-noun-verb agreement."""
    rules = {"S": [(0.5, ("DET.sg", "N.sg", "V.sg", "END")),
                   (0.3, ("DET.pl", "N.pl", "V.pl", "END")), (0.2, ("N.pl", "V.pl", "END"))]}
    lexicon = {"DET.sg": {"a": 2.0, "one": 1.0}, "DET.pl": {"two": 1.0, "some": 1.0},
               "N.sg": {"dog": 3.0, "cat": 1.0}, "N.pl": {"dogs": 1.0, "cats": 1.0},
               "V.sg": {"runs": 1.0, "sleeps": 1.0, "sings": 2.0},
               "V.pl": {"run": 1.0, "sleep": 1.0, "sing": 2.0}, "END": {".": 1.0}}
    return Grammar(rules, lexicon, max_len=max_len)
