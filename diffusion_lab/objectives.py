r"""Training objectives: from BERT's loss to the masked-diffusion ELBO, plus SUNDAE and AR.

All losses take a batch of clean ids $x$ (B, L) whose column 0 is the [CLS] anchor, and return the
mean cross-entropy in **nats per token** over the tokens they score.

* ``mlm`` — BERT (Devlin et al. 2019): 15% of positions, 80/10/10, CE on the chosen positions.
* ``variable_rate`` (old name ``variable``) — the seed article's generative MLM: one masking rate
  per batch from $\{0.1, \dots, 1.0\}$, unweighted CE on the masked positions (also
  Mask-Predict's "mask a uniform number of tokens").
* ``mdlm`` — the masked-diffusion ELBO (Sahoo et al. 2024; Shi et al. 2024).  With
  $t \sim U(\epsilon, 1)$ and the linear schedule $\alpha_t = 1 - t$:

  $$ \mathcal{L} = \mathbb{E}_t\; \frac{1}{t} \sum_{i:\,z_t^i = m} -\log p_\theta(x^i \mid z_t) $$

  divided by the number of free tokens, an upper bound on the NLL in nats per token.  BERT's loss
  is this integrand at the single slice $t = 0.15$, without the $1/t$ weight (and the 80/10/10
  twist): *BERT is one step of text diffusion*.  SUBS parameterisation: the mask logit is $-\infty$.

Every loss reads the model through `denoiser.denoiser_logits`, the same function the samplers use.
* ``sundae`` — step-unrolled denoising (Savinov et al. 2022): uniform noise at rate $r \sim U(0,1)$,
  a second input sampled from the model's own prediction (stop-gradient), CE on all positions of
  both.
* ``ar`` — next-token prediction for a causal LM (the GPT-2 baseline).
* ``sft`` — conditional fine-tuning on (prompt, response) rows (LLaDA, Nie et al. 2025): the
  prompt is ``fixed`` (never masked, never scored); for a masked LM it is the ``mdlm`` ELBO over
  the response slots only, [EOS] padding included, divided by the number of response tokens:

  $$ \mathcal{L}_{\text{SFT}} = \mathbb{E}_t\; \frac{1}{t\,L'} \sum_{i > |p|:\, z_t^i = m}
     -\log p_\theta(r^i \mid p, z_t) ; $$

  for a causal LM it is next-token CE on the response tokens only (the same-size AR baseline).
* ``block_diffusion`` — BD3-LM (Arriola et al. 2025): autoregressive over blocks, the MDLM ELBO
  inside each, all blocks in one pass (``block_diffusion``); for a model marked with
  ``dl.block_diffusion.as_block_model`` (a GPT-2 or a ModernBERT).
* ``edit_flow`` — Edit Flows (Havasi et al. 2025): the rows' [EOS] padding stripped, a start
  of a few random words aligned with each sentence, and the Bregman loss of the insertion,
  deletion and substitution rates of an `edit_model.EditFlowModel` (see ``edit_flows``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import noise
from .block_diffusion import block_diffusion_loss, is_block_model
from .categorical import sample_categorical
from .denoiser import TokenInfo, denoiser_logits  # noqa: F401 - dl.objectives.* is public
from .edit_flows import edit_flow_loss
from .edit_model import is_edit_model
from .models import is_causal_lm
from .settings import ALIASES

OBJECTIVES = ("mlm", "variable_rate", "mdlm", "sundae", "ar", "sft", "block_diffusion",
              "edit_flow")


def canonical_objective(objective: str) -> str:
    """``objective`` with an old name (`ALIASES`) replaced by its current one."""
    return ALIASES.get(objective, objective)


def check_objective(objective: str, model) -> None:
    """Reject unknown names, and objectives that do not fit the model's direction."""
    given, objective = objective, canonical_objective(objective)
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {given!r}")
    if (objective == "edit_flow") != is_edit_model(model):
        raise ValueError(f"objective {objective!r} and {type(model).__name__} do not fit: "
                         "objective 'edit_flow' trains an edit model (dl.edit_model.tiny_edit), "
                         "and an edit model trains with objective 'edit_flow' only")
    causal = is_causal_lm(model)
    if objective == "sft":  # both kinds of model: the masked-LM ELBO or the causal LM's CE
        return
    if objective == "block_diffusion":  # either backbone, marked with its block size
        if not is_block_model(model):
            raise ValueError(f"objective 'block_diffusion' needs a block model: mark the "
                             f"{type(model).__name__} with dl.block_diffusion.as_block_model("
                             "model, block_size, shift)")
        return
    if causal and objective != "ar":
        raise ValueError(f"objective {objective!r} needs a masked LM (dl.tiny_mlm); "
                         f"{type(model).__name__} is causal: use objective='ar'")
    if not causal and objective == "ar":
        raise ValueError(f"objective 'ar' needs a causal LM (dl.tiny_ar); "
                         f"{type(model).__name__} is a masked LM")


def _ce(logits: torch.Tensor, targets: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Per-position cross-entropy in nats where ``scored``, exactly 0 elsewhere.

    (``where``, not a product: the anchor's target is the banned [CLS], whose CE is inf.)"""
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return torch.where(scored, ce, torch.zeros_like(ce))


def mlm_loss(model, ids, fixed, info: TokenInfo, generator, rate: float = 0.15):
    """BERT's masked-LM loss: mean CE over the 15% chosen positions."""
    noisy, chosen = noise.bert_mask(ids.cpu(), mask_id=info.mask_id, content_ids=info.content_ids,
                                    fixed=fixed.cpu(), rate=rate, generator=generator)
    chosen = chosen.to(ids.device)
    ce = _ce(denoiser_logits(model, noisy.to(ids.device), info), ids, chosen)
    return ce.sum() / chosen.sum().clamp(min=1)


def variable_rate_loss(model, ids, fixed, info: TokenInfo, generator):
    """The seed article's collator: one rate from {0.1, ..., 1.0} per batch, mean CE on masks."""
    rate = noise.DISCRETE_LEVELS[torch.randint(0, 10, (1,), generator=generator)].item()
    noisy, masked = noise.absorbing_mask(ids.cpu(), rate, mask_id=info.mask_id,
                                         fixed=fixed.cpu(), generator=generator)
    masked = masked.to(ids.device)
    ce = _ce(denoiser_logits(model, noisy.to(ids.device), info), ids, masked)
    return ce.sum() / masked.sum().clamp(min=1)


def mdlm_loss(model, ids, fixed, info: TokenInfo, generator, schedule: str = "linear",
              eps: float = 1e-3, corrupt: float = 0.0):
    r"""MDLM's continuous-time ELBO in nats per free token (an upper bound on the NLL).

    ``corrupt`` > 0 adds a second term and is no longer the ELBO: each free token left visible
    is replaced by a uniformly random content token with probability ``corrupt``, and the CE of
    the clean token is scored at *every* visible free slot, replaced or not (weight 1).  So the
    model's output at a visible slot is trained: $p_\theta(x^i \mid z)$ judges the token
    there (BERT's 10% random tokens, Devlin et al. 2019; GIDD's mix of uniform and masking
    noise, von Rütte et al. 2025), which `strategies_revision`'s ``score="self"`` reads."""
    if isinstance(corrupt, bool) or not isinstance(corrupt, (int, float)) or not 0 <= corrupt < 1:
        raise ValueError(f"corrupt must be a number in [0, 1), got {corrupt!r}")
    t = noise.sample_t(ids.shape[0], generator=generator, eps=eps, schedule=schedule)  # (B,)
    rate = noise.mask_rate(t, schedule)
    noisy, masked = noise.absorbing_mask(ids.cpu(), rate, mask_id=info.mask_id,
                                         fixed=fixed.cpu(), generator=generator)
    visible = ~masked & ~fixed.cpu()
    if corrupt:
        noisy, _ = noise.uniform_noise(noisy, corrupt, content_ids=info.content_ids,
                                       fixed=~visible, generator=generator)
    weight = noise.elbo_weight(t, schedule).float().to(ids.device)[:, None]  # (B, 1): 1/t
    masked = masked.to(ids.device)
    logits = denoiser_logits(model, noisy.to(ids.device), info)
    loss = (_ce(logits, ids, masked) * weight).sum()  # (B, L) CE, 0 where not masked
    if corrupt:
        loss = loss + _ce(logits, ids, visible.to(ids.device)).sum()
    return loss / (~fixed).to(ids.device).sum().clamp(min=1)


def sundae_loss(model, ids, fixed, info: TokenInfo, generator):
    """SUNDAE's unrolled denoising: CE of f(x1) and of f(x2), x2 ~ f(x1) with stop-gradient."""
    rate = torch.rand(ids.shape[0], generator=generator, dtype=torch.float64)
    x1, _ = noise.uniform_noise(ids.cpu(), rate, content_ids=info.content_ids, fixed=fixed.cpu(),
                                generator=generator)
    fixed_d, x1 = fixed.to(ids.device), x1.to(ids.device)
    logits1 = denoiser_logits(model, x1, info)
    with torch.no_grad():  # noise drawn on the CPU, like every other draw of the losses
        x2 = sample_categorical(logits1.double().log_softmax(-1).cpu(), generator).to(ids.device)
        x2 = torch.where(fixed_d, ids, x2)
    logits2 = denoiser_logits(model, x2, info)
    free = ~fixed_d
    ce = _ce(logits1, ids, free) + _ce(logits2, ids, free)
    return ce.sum() / (2 * free.sum().clamp(min=1))


def ar_loss(model, ids, fixed, info, generator):
    """Next-token CE for a causal LM; the anchor is the BOS token and is never a target."""
    logits = denoiser_logits(model, ids, info)[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def sft_loss(model, ids, fixed, info, generator, **kwargs):
    """SFT: the prompt (``fixed``) is never noised or scored; only the response (+[EOS]) is.

    A masked LM: `mdlm_loss` with the prompt fixed.  A causal LM: next-token CE on the response
    positions (each predicted from everything before it)."""
    if not is_causal_lm(model):
        return mdlm_loss(model, ids, fixed, info, generator, **kwargs)
    logits = denoiser_logits(model, ids, info)[:, :-1]
    scored = ~fixed[:, 1:].to(ids.device)
    ce = _ce(logits, ids[:, 1:], scored)
    return ce.sum() / scored.sum().clamp(min=1)


variable_loss = variable_rate_loss  # the old name
LOSSES = {"mlm": mlm_loss, "variable_rate": variable_rate_loss, "mdlm": mdlm_loss,
          "sundae": sundae_loss, "ar": ar_loss, "sft": sft_loss,
          "block_diffusion": block_diffusion_loss, "edit_flow": edit_flow_loss}


def compute_loss(objective: str, model, ids: torch.Tensor, tok, *,
                 fixed: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 **kwargs) -> torch.Tensor:
    """The ``objective``'s loss on clean ``ids`` (B, L); ``fixed`` defaults to the anchor column.

    ``tok``: the tokenizer, or its `denoiser.TokenInfo` (built once by a training loop).  Noise
    is drawn on the CPU from ``generator`` so a seed gives the same batch on every device.
    """
    check_objective(objective, model)
    objective = canonical_objective(objective)
    info = tok if isinstance(tok, TokenInfo) else TokenInfo.from_tokenizer(
        tok, need_mask=not is_causal_lm(model))  # the AR losses need no mask token
    fixed = noise.anchor_fixed(ids) if fixed is None else fixed.bool()
    return LOSSES[objective](model, ids, fixed, info, generator, **kwargs)
