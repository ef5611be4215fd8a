r"""The network of an edit model: one bidirectional encoder, three rates and two token heads.

An Edit Flow (Havasi et al. 2025, `edit_flows`) needs, for a sequence $x$ of $n$ tokens behind
the anchor and a time $t$, the rate of every single edit:

$$ u_t(\mathrm{ins}(x, i, a) \mid x) = \lambda^{\mathrm{ins}}_i\, Q^{\mathrm{ins}}_i(a), \quad
   u_t(\mathrm{del}(x, i) \mid x) = \lambda^{\mathrm{del}}_i, \quad
   u_t(\mathrm{sub}(x, i, a) \mid x) = \lambda^{\mathrm{sub}}_i\, Q^{\mathrm{sub}}_i(a) $$

for every position $i$ (an insertion at $i$ goes right after token $i$; $i = 0$ is the anchor,
so the gap in front of the first word has a rate too; the anchor itself is never deleted or
substituted).  `EditFlowModel` is the book's ModernBERT encoder (`models.tiny_mlm`'s shape and
RoPE, so positions are relative, as the paper asks) with

* a time embedding added to every token embedding (sinusoidal features of $t$, one linear map);
* ``rates`` (B, L, 3): $\hat\lambda^{\mathrm{ins}}, \hat\lambda^{\mathrm{del}},
  \hat\lambda^{\mathrm{sub}} \ge 0$ (softplus).  The rate is
  $\lambda = \frac{\dot\kappa_t}{1 - \kappa_t}\hat\lambda$ (`edit_flows.rate_scale`), so
  $\hat\lambda$ is a count: the expected number of edits of that kind still to come there
  (dllm's EditFlow models factor the rates the same way);
* ``ins_logits``, ``sub_logits`` (B, L, V): $Q^{\mathrm{ins}}$ and $Q^{\mathrm{sub}}$, with the
  specials, the [EOS] padding word (an edit sequence has no padding) and, for a substitution,
  the token already there at $-\infty$.

It is a ``transformers`` model (``save_pretrained`` / ``from_pretrained``, registered with the
Auto classes under ``model_type="edit_flow"``), so the zoo saves and reloads it like the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForMaskedLM, ModernBertConfig, ModernBertModel
from transformers.modeling_outputs import ModelOutput
from transformers.models.modernbert.modeling_modernbert import ModernBertPreTrainedModel

from .denoiser import banned_token_ids
from .models import tiny_mlm
from .settings import check_int

TIME_FEATURES = 16  # sinusoidal features of t: frequencies 2^0 .. 2^7, sine and cosine
OPS = ("ins", "del", "sub")  # the three columns of ``rates``


class EditFlowConfig(ModernBertConfig):
    """A ModernBERT configuration plus the ids an edit sequence never holds (``banned_ids``),
    the padding word that ends a fixed-canvas row (``end_token_id``, e.g. the grammar's [EOS])
    and the start distribution the model is trained from (``junk``, ``p_substitute``:
    `edit_flows.Coupling`), which the sampler draws from too."""

    model_type = "edit_flow"

    def __init__(self, banned_ids: list[int] | None = None, end_token_id: int | None = None,
                 junk: int = 2, p_substitute: float = 0.5, **kwargs):
        self.banned_ids = list(banned_ids or [])
        self.end_token_id = end_token_id
        self.junk, self.p_substitute = junk, p_substitute
        super().__init__(**kwargs)


@dataclass
class EditFlowOutput(ModelOutput):
    """``rates`` (B, L, 3) the scaled-out rates $\\hat\\lambda$ (ins, del, sub); ``ins_logits``
    and ``sub_logits`` (B, L, V) the token distributions, banned ids at -inf."""

    rates: torch.Tensor | None = None
    ins_logits: torch.Tensor | None = None
    sub_logits: torch.Tensor | None = None


def time_features(t: torch.Tensor) -> torch.Tensor:
    """(B,) times in [0, 1] -> (B, `TIME_FEATURES`) sines and cosines of $2^k \\pi t$."""
    freq = math.pi * 2.0 ** torch.arange(TIME_FEATURES // 2, device=t.device, dtype=torch.float32)
    angle = t.float()[:, None] * freq
    return torch.cat([angle.sin(), angle.cos()], -1)


class EditFlowModel(ModernBertPreTrainedModel):
    """ModernBERT encoder + time embedding + edit heads (see the module)."""

    config_class = EditFlowConfig

    def __init__(self, config: EditFlowConfig):
        super().__init__(config)
        self.model = ModernBertModel(config)
        hidden = config.hidden_size
        self.time = torch.nn.Linear(TIME_FEATURES, hidden)
        self.rate_head = torch.nn.Linear(hidden, len(OPS))
        self.ins_head = torch.nn.Linear(hidden, config.vocab_size)
        self.sub_head = torch.nn.Linear(hidden, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                t: torch.Tensor | float = 0.0, **_) -> EditFlowOutput:
        """``input_ids`` (B, L) anchor first, padded after each row's end (``attention_mask``
        0 there); ``t`` the time, a float or (B,)."""
        t = torch.as_tensor(t, device=input_ids.device, dtype=torch.float32).reshape(-1)
        t = t.expand(input_ids.shape[0])
        embeds = self.model.get_input_embeddings()(input_ids)
        embeds = embeds + self.time(time_features(t))[:, None, :]
        hidden = self.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        rates = F.softplus(self.rate_head(hidden).float())  # (B, L, 3)
        ins, sub = self.ins_head(hidden).float(), self.sub_head(hidden).float()
        banned = torch.tensor(self.config.banned_ids, dtype=torch.long, device=ins.device)
        ins[..., banned] = float("-inf")
        sub[..., banned] = float("-inf")
        sub.scatter_(-1, input_ids[..., None], float("-inf"))  # a substitution changes the token
        return EditFlowOutput(rates=rates, ins_logits=ins, sub_logits=sub)


def is_edit_model(model) -> bool:
    """True for an `EditFlowModel` (the edit objective and sampler need one)."""
    return isinstance(model, EditFlowModel)


def tiny_edit(tok, size: str = "s", max_length: int = 128, end_token: str = "[EOS]",
              junk: int = 2, p_substitute: float = 0.5) -> EditFlowModel:
    """A randomly initialised `EditFlowModel` of `models.tiny_mlm`'s shapes for ``tok``.

    ``max_length`` counts the anchor: the longest finished sequence; a state on its way may hold
    ``junk`` more words (random start words not yet deleted), so the model sees
    ``max_length + junk`` positions.  ``end_token``: the padding word of the fixed-canvas data
    (the grammar's ``[EOS]``); the edit objective strips it from each row, and the model never
    inserts it.  A tokenizer without it (a character corpus) pads with [PAD] only.  ``junk``,
    ``p_substitute``: the start distribution and alignment it is trained with
    (`edit_flows.Coupling`)."""
    check_int(junk, "junk", 0)
    base = tiny_mlm(tok, size=size, max_length=max_length + junk).config.to_dict()
    end = tok.convert_tokens_to_ids(end_token) if end_token in tok.get_vocab() else None
    banned = set(banned_token_ids(tok)) | {tok.pad_token_id, tok.unk_token_id, end} - {None}
    for key in ("model_type", "architectures", "transformers_version"):
        base.pop(key, None)
    config = EditFlowConfig(banned_ids=sorted(int(i) for i in banned if i is not None),
                            end_token_id=end, junk=junk, p_substitute=p_substitute, **base)
    return EditFlowModel(config)


AutoConfig.register("edit_flow", EditFlowConfig, exist_ok=True)
AutoModelForMaskedLM.register(EditFlowConfig, EditFlowModel, exist_ok=True)
