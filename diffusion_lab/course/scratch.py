r"""Masked diffusion in one file: an MDLM written from scratch in plain PyTorch.

Chapter 0 of the book (``book/chapters/00_from_scratch``) is this file: its code cells are the
``# %%`` sections below, word for word (``tests/test_scratch.py`` keeps them equal, and checks the
loss and the sampler against the library's). Nothing here comes from ``diffusion_lab`` but the
data: the book's grammar, its words and its exact validity check.

* forward process: $q(z_t \mid x) = \alpha_t\,\delta_x + (1 - \alpha_t)\,\delta_m$,
  $\alpha_t = 1 - t$ (each token becomes [MASK] with probability $t$);
* loss: $\mathbb{E}_t\, \frac{1}{t} \sum_{i:\, z_t^i = m} -\log p_\theta(x^i \mid z_t)$ per token,
  an upper bound on the negative log-likelihood (MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024);
* SUBS: the [MASK] logit is $-\infty$ and visible tokens are copied;
* ancestral sampling: from $t$ to $s < t$ each masked slot is revealed with probability
  $(\alpha_s - \alpha_t) / (1 - \alpha_t) = (t - s) / t$.

    python -m diffusion_lab.course.scratch --steps 2000 --seed 0
"""

# %% The data: sentences of the book's grammar, one token per word
import math

import torch
import torch.nn.functional as F
from torch import nn

from diffusion_lab.worlds.grammar import book_language

lang = book_language()  # a small English grammar: exact probabilities, exact validity
V, L = len(lang.words), lang.max_len  # 93 words, [EOS] among them; sentences padded to L = 16
MASK = V  # one more token id: [MASK]


# %% The forward process q(z_t | x)
def alpha(t):
    """alpha_t, the probability that a token is still visible at time t: 1 - t (linear)."""
    return 1 - t


def corrupt(x, t, g):
    """z_t ~ q(z_t | x): each token of row b becomes [MASK] with probability 1 - alpha(t[b])."""
    hidden = torch.rand(x.shape, generator=g, dtype=torch.float64) < 1 - alpha(t)[:, None]
    return x.masked_fill(hidden, MASK)


# %% The denoiser p(x | z_t): a transformer that sees every position
class Denoiser(nn.Module):
    def __init__(self, width=64, heads=4, layers=4):
        super().__init__()
        self.embed = nn.Embedding(V + 1, width)  # PyTorch's init: standard deviation 1
        self.position = nn.Parameter(torch.randn(L, width))
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, V + 1))

    def forward(self, z):  # (B, L) ids -> (B, L, V + 1) logits
        logits = self.head(self.blocks(self.embed(z) + self.position))
        return logits.masked_fill(torch.arange(V + 1) == MASK, -math.inf)  # SUBS: never [MASK]


# %% The loss: masked cross-entropy, weighted by 1/t
def weight(t):
    """The ELBO's weight -alpha'(t) / (1 - alpha(t)): 1/t on the linear schedule."""
    return 1 / t


def mdlm_loss(model, x, t, g, weight=weight):
    """The MDLM bound in nats per token: each masked slot's cross-entropy, times weight(t)."""
    z = corrupt(x, t, g)
    ce = F.cross_entropy(model(z).transpose(1, 2), x, reduction="none")  # (B, L)
    return (weight(t).float()[:, None] * ce * (z == MASK)).sum() / x.numel()


# %% Training
def train(steps=2000, batch=64, lr=5e-3, seed=0, weight=weight, log_every=500):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = Denoiser()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    warmup_then_decay = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1, (i + 1) / 50) * (1 - i / steps))
    data = lang.sample_ids(steps * batch, seed=seed)  # (steps * batch, L) fresh sentences
    for step in range(steps):
        x = data[step * batch:(step + 1) * batch]
        t = torch.rand(batch, generator=g, dtype=torch.float64).clamp(min=1e-3)  # t ~ U(0, 1)
        loss = mdlm_loss(model, x, t, g, weight)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # a small t makes a large 1/t
        opt.step()
        warmup_then_decay.step()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:5d}  loss {loss.item():.3f} nats/token")
    return model


# %% Sampling: reveal each masked slot from t to s with probability (t - s) / t
def reveal(z, t, s, g, alpha=alpha):
    """Which masked slots a step from t to s reveals: each with probability
    (alpha(s) - alpha(t)) / (1 - alpha(t)), independently."""
    p = (alpha(s) - alpha(t)) / (1 - alpha(t))
    return (z == MASK) & (torch.rand(z.shape, generator=g, dtype=torch.float64) < p)


@torch.no_grad()
def sample(model, n, steps=L, seed=0, alpha=alpha, reveal=reveal):
    g = torch.Generator().manual_seed(seed)
    z = torch.full((n, L), MASK)  # t = 1: every slot masked
    for i in range(steps):
        t, s = 1 - i / steps, 1 - (i + 1) / steps
        probs = model(z).double().softmax(-1).reshape(n * L, V + 1)  # p(x | z_t)
        x = torch.multinomial(probs, 1, generator=g).reshape(n, L)  # a guess for every slot
        z = torch.where(reveal(z, t, s, g, alpha), x, z)  # visible tokens are copied (SUBS)
    return z  # at s = 0 the reveal probability is 1: no [MASK] is left


def validity(z):
    """The fraction of sampled rows that are sentences of the language (exact log p > -inf)."""
    return torch.isfinite(lang.log_prob_ids(z)).double().mean().item()


# %% From the command line
def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Train a masked-diffusion language model on "
                                     "the book's grammar, then sample sentences from it.")
    parser.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights, samples")
    parser.add_argument("--samples", type=int, default=1000, help="sentences to sample")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.samples < 1:
        parser.error(f"--steps and --samples must be >= 1, got {args.steps} and {args.samples}")
    model = train(args.steps, seed=args.seed)
    z = sample(model, args.samples, seed=args.seed)
    print(*lang.decode(z[:10]), sep="\n")
    print(f"validity: {validity(z):.3f} of {args.samples} sampled sentences are grammatical")


if __name__ == "__main__":
    main()
