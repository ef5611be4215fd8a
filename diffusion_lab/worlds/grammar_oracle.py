r"""The perfect denoiser: exact conditionals of a `grammar.Grammar`, behind a model's interface.

A masked-diffusion model learns $p_\theta(x^i \mid z_t)$, the distribution of each hidden token
given the visible ones.  For a grammar we can compute the *true* conditional exactly.  Since each
word fixes its category, the posterior over templates given the visible words $z$ is

$$ P(c \mid z) \propto P(c)\, \mathbf{1}[c_i = \mathrm{cat}(z_i) \text{ for every visible } i] $$

(the word probabilities of the visible slots are the same for every consistent template, so they
cancel), and a hidden slot's marginal is $p(x^i = w \mid z) = \sum_c P(c \mid z)\,P(w \mid c_i)$.
Both are two matrix products over one-hot category tables: vectorised over the batch, the
templates and the positions.

`GrammarOracleForMaskedLM` is a ``transformers`` model whose logits are these log-probabilities, so
``dl.generate`` runs any sampler on it unchanged.  It answers "is this failure the sampler's or
the model's?": with the oracle the model is perfect, so what goes wrong is the rule's.  When the
visible words fit no template (a parallel step can write an ungrammatical pair), the oracle backs
off to the templates with the fewest mismatches, a documented nearest-template guess; on every
consistent state it is exact.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from ..tokenization import SPECIAL_TOKENS
from .grammar import Grammar

N_SPECIAL = len(SPECIAL_TOKENS)  # word id w is token id w + N_SPECIAL (see Grammar.tokenizer)


class GrammarOracleConfig(PretrainedConfig):
    model_type = "grammar_oracle"

    def __init__(self, vocab_size: int = 8, max_position_embeddings: int = 17, **kwargs):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        super().__init__(**kwargs)


class GrammarOracleForMaskedLM(PreTrainedModel):
    """Exact conditionals of ``grammar`` as masked-LM logits: (B, 1 + L) ids -> (B, 1 + L, V)."""

    config_class = GrammarOracleConfig

    def __init__(self, grammar: Grammar):
        if not isinstance(grammar, Grammar):
            raise TypeError(f"grammar must be a dl.worlds.grammar.Grammar, got "
                            f"{type(grammar).__name__}")
        super().__init__(GrammarOracleConfig(N_SPECIAL + len(grammar.words), grammar.max_len + 1))
        self.grammar = grammar
        n_cats = len(grammar.categories)
        onehot = torch.nn.functional.one_hot(grammar.template_ids, n_cats).float()  # (T, L, C)
        self.register_buffer("template_onehot", onehot.reshape(len(grammar.templates), -1))
        self.register_buffer("prior", grammar.template_prob.float())
        self.register_buffer("emission", grammar.emission.float())  # (C, V_words)
        self.register_buffer("word_category", grammar.word_category)
        self._dummy = torch.nn.Parameter(torch.zeros(1))  # so next(parameters()) gives the device

    def _init_weights(self, module):  # nothing to initialise: the oracle has no weights
        pass

    def forward(self, input_ids: torch.Tensor, **_) -> MaskedLMOutput:
        g, mask_id = self.grammar, SPECIAL_TOKENS.index("[MASK]")
        body = input_ids[:, 1:]  # (B, L): the anchor is column 0
        if body.shape[1] != g.max_len:
            raise ValueError(f"input_ids must have 1 + {g.max_len} columns, got {input_ids.shape}")
        seen = (body != mask_id) & (body >= N_SPECIAL)  # (B, L)
        words = (body - N_SPECIAL).clamp(min=0)
        cats = torch.where(seen, self.word_category[words], -1)
        n_cats = len(g.categories)
        seen_onehot = torch.nn.functional.one_hot(cats.clamp(min=0), n_cats).float()
        seen_onehot = (seen_onehot * seen[..., None]).reshape(len(body), -1)  # (B, L * C)
        mismatches = seen.sum(1, keepdim=True) - seen_onehot @ self.template_onehot.T  # (B, T)
        best = mismatches == mismatches.min(1, keepdim=True).values  # exact fits, else nearest
        post = self.prior[None] * best  # (B, T)
        post = post / post.sum(1, keepdim=True)
        cat_post = (post @ self.template_onehot).reshape(len(body), g.max_len, n_cats)
        word_p = cat_post @ self.emission  # (B, L, V_words)
        visible = torch.nn.functional.one_hot(words, word_p.shape[-1]).to(word_p.dtype)
        word_p = torch.where(seen[..., None], visible, word_p)  # a visible word is certain
        logits = torch.full((*input_ids.shape, self.config.vocab_size), float("-inf"),
                            device=input_ids.device)
        logits[:, 1:, N_SPECIAL:] = word_p.clamp_min(0).log()
        logits[:, 0, N_SPECIAL:] = 0.0  # the anchor's row is never used; keep it finite
        return MaskedLMOutput(logits=logits)
